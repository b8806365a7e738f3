"""Impact before release: the compose preview says how many residents the warning alerts (from the
registry's populations), how many of them live inside what was drawn, the display screens and
partner systems it reaches, and how much of each alerted community a drawn shape really covers."""

from __future__ import annotations

from typing import Any

import pytest

from channels.partners.registry import PartnerRegistry, parse_partner
from foundation.areas.registry import store_areas
from tests.channels.test_screens import COMMUNITY_IN_990101, add_screen
from tests.conftest import warning_body
from warncast.demo_city import demo_areas

D1, D2 = "990101", "990102"


async def preview(client: Any, staff: Any, clock: Any, **overrides: Any) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/warnings/preview", json=warning_body(clock, **overrides), headers=staff["drafter"]
    )
    assert resp.status == 200, await resp.text()
    return (await resp.json())["impact"]  # type: ignore[no-any-return]


def test_the_demo_city_has_residents_in_every_community(services):
    registry = services.registry
    communities = [a for a in registry.areas if a.level == "community"]
    assert communities and all(a.population > 0 for a in communities)
    assert registry.population("990100") == sum(a.population for a in communities)
    assert 200_000 < registry.population("990100") < 2_000_000
    assert registry.population(D1) == sum(registry.population(c) for c in registry.children[D1])


async def test_selected_areas_alert_their_residents_whole(client, services, staff, clock):
    registry = services.registry
    impact = await preview(client, staff, clock, areas=[D1])
    assert impact["residents"] == impact["residents_inside"] == registry.population(D1)
    assert {c["code"] for c in impact["communities"]} == registry.leaves_under([D1])
    assert all(c["covered"] == 1.0 for c in impact["communities"])
    one = await preview(client, staff, clock, areas=[COMMUNITY_IN_990101])
    assert one["residents"] == registry.population(COMMUNITY_IN_990101)


async def test_a_drawn_circle_shows_over_alerting(client, services, staff, clock):
    community = services.registry.get(COMMUNITY_IN_990101)
    lat, lon = community.point
    impact = await preview(client, staff, clock, areas=[], circles=[{"lat": lat, "lon": lon, "radius_km": 0.2}])
    alerted = {c["code"]: c for c in impact["communities"]}
    assert COMMUNITY_IN_990101 in alerted, "the community under the circle is alerted"
    assert impact["residents"] == sum(services.registry.population(code) for code in alerted)
    assert 0 < alerted[COMMUNITY_IN_990101]["covered"] < 0.5, "a small circle covers a small part of it"
    assert 0 < impact["residents_inside"] < impact["residents"], "fewer live inside the circle than are alerted"


async def test_screens_and_partners_reached_are_counted(client, services, staff, clock):
    await add_screen(client, staff)  # in a community of D1
    partners = PartnerRegistry(services.redis)
    await partners.create(
        parse_partner(
            {"id": "p1", "name": "Metro", "url": "https://metro.example/hook", "areas": [D1]}, services.registry
        )
    )
    in_d1 = await preview(client, staff, clock, areas=[D1])
    assert (in_d1["screens"], in_d1["partners"]) == (1, 1)
    in_d2 = await preview(client, staff, clock, areas=[D2])
    assert (in_d2["screens"], in_d2["partners"]) == (0, 0)


async def test_a_registry_refuses_a_population_that_is_not_a_count(services):
    records = demo_areas()
    records[-1] = {**records[-1], "population": -5}
    with pytest.raises(ValueError, match="population"):
        await store_areas(services.redis, records)
