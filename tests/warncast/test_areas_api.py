"""The area registry as the service uses it: lookups, hierarchy and the areas API."""

from __future__ import annotations

from publisher.identifiers import is_identifier, new_identifier


async def test_point_lookup_and_hierarchy(client, services):
    registry = services.registry
    community = next(a for a in registry.areas if a.level == "community")
    lat, lon = community.point
    found = [a.code for a in registry.containing(lat, lon)]
    street, district = community.parent, registry.get(community.parent).parent
    assert found == ["990100", district, street, community.code]
    assert registry.ancestors(community.code) == [street, district, "990100"]
    under = registry.descendants(district)
    assert street in under and community.code in under and district not in under
    assert registry.leaves_under([district]) == {c for c in under if registry.get(c).level == "community"}
    assert registry.containing(0.0, 0.0) == []


async def test_areas_api(client, services):
    body = await (await client.get("/api/v1/areas")).json()
    areas = body["areas"]
    assert len(areas) == len(services.registry)
    city = areas[0]
    assert city["code"] == "990100" and city["parent"] is None
    for area in areas:
        assert set(area) == {"code", "level", "parent", "name", "lat", "lon"}
        assert area["name"]["zh-CN"] and area["name"]["en"]
        inside = [a.code for a in services.registry.containing(area["lat"], area["lon"])]
        assert area["code"] in inside, "the representative point lies inside the area"
    districts = await (await client.get("/api/v1/areas?level=district")).json()
    assert len(districts["areas"]) >= 3
    point = areas[-1]
    hits = await (await client.get(f"/api/v1/areas?point={point['lat']},{point['lon']}")).json()
    assert hits["areas"][-1]["code"] == point["code"]
    bad = await client.get("/api/v1/areas?point=north")
    assert bad.status == 422 and (await bad.json())["error"]["fields"][0]["field"] == "point"


async def test_identifiers_follow_gbt_35965(client, services, clock):
    ids = [await new_identifier(services.redis, "99010000000100", clock.now) for _ in range(12)]
    assert len(set(ids)) == 12
    assert all(len(i) == 31 and is_identifier(i) for i in ids)
    second = clock.now.strftime("%Y%m%d%H%M%S")
    assert [i.rsplit("_", 1)[1] for i in ids[:10]] == [str(n) for n in range(10)]
    assert all(i.split("_")[1] == second for i in ids[:10])
    assert ids[10].split("_")[1] > second, "the eleventh in one second takes the next second"
