"""A city-wide warning to subscribers whose keys sit on every primary of a real Redis Cluster (and,
in the standalone pass, on the one server): exactly one delivery each, and the keys of subscribers
and of the warning's delivery state spread over the primaries."""

from __future__ import annotations

from typing import Any

import pytest

from foundation.store import keys
from foundation.store.cluster import is_cluster, primaries
from publisher.dispatch.jobs import SHARDS
from publisher.policy import DEFAULT_MIN_GRADE
from tests.delivery_helpers import drain, sms_settings
from tests.publisher.test_dispatch import subscribe
from tests.publisher.test_workflow import published
from tests.standins.twilio import TwilioStandIn

CITY = "990100"


@pytest.fixture
def settings(settings: Any, twilio: TwilioStandIn) -> Any:
    return sms_settings(settings, twilio.url)


async def nodes_of(services: Any, key_names: list[str]) -> set[str]:
    """The primaries (host:port) that serve these keys; one name for a single server."""
    redis = services.redis
    if not is_cluster(redis):
        return {"standalone"}
    await primaries(redis)
    return {redis.get_node_from_key(key).name for key in key_names}


async def test_a_city_wide_warning_reaches_each_subscriber_once_wherever_their_keys_live(
    client, services, staff, clock, twilio
):
    districts = [
        code for code in services.registry.descendants(CITY) if services.registry.get(code).level == "district"
    ]
    phones: list[str] = []
    for n, district in enumerate(districts):
        phones += await subscribe(services, 8, district, start=100 * n)
    index_keys = [keys.area_subscribers(d, "sms", DEFAULT_MIN_GRADE["sms"]) for d in districts]
    subscriber_keys = [keys.subscriber("sms", p) for p in phones]
    if is_cluster(services.redis):
        assert len(await nodes_of(services, index_keys)) == 3, "the districts' index sets sit on all three primaries"
        assert len(await nodes_of(services, subscriber_keys)) == 3

    message = await published(client, staff, clock, grade="red", areas=[CITY])
    await drain(services)

    assert sorted(twilio.counts) == sorted(phones), "every subscriber, and nobody else"
    assert set(twilio.counts.values()) == {1}, "exactly one message each"
    state_keys = [keys.delivery_state(message["id"], "sms", shard) for shard in range(SHARDS)]
    delivered = 0
    for key in state_keys:
        delivered += sum(1 for value in (await services.redis.hgetall(key)).values() if value.startswith("sent"))
    assert delivered == len(phones), "each recipient's state is written once, in its shard"
    if is_cluster(services.redis):
        assert len(await nodes_of(services, state_keys)) == 3, "a warning's delivery state spreads over the primaries"
