"""GET /api/v1/warnings for machines: NWS-style filters, GeoJSON, conditional GET; staff unchanged."""

from __future__ import annotations

from shapely.geometry import Point, shape

from tests.channels.test_feeds import COMMUNITY_IN_990102, city
from tests.publisher.test_workflow import create


async def ids(client, query: str = "", **headers) -> list[str]:
    resp = await client.get(f"/api/v1/warnings{query}", headers=headers)
    assert resp.status == 200, await resp.text()
    return [w["id"] for w in (await resp.json())["warnings"]]


async def test_filters(client, services, staff, clock):
    w = await city(client, staff, clock)  # red thread is lifted; blue and the drill are in force
    assert set(await ids(client, "?active=true")) == {w["blue"]["id"], w["drill"]["id"]}
    assert await ids(client, f"?active=true&area={COMMUNITY_IN_990102}&grade=blue") == [w["blue"]["id"]]
    assert set(await ids(client, "?area=990101&grade=red")) == {w["red"]["id"], w["update"]["id"], w["cancel"]["id"]}
    assert await ids(client, "?msg_type=Cancel") == [w["cancel"]["id"]]
    assert await ids(client, "?status=Exercise") == [w["drill"]["id"]]
    assert await ids(client, "?event=heat") == [w["blue"]["id"]]
    assert set(await ids(client, "?grade=blue,yellow")) == {w["blue"]["id"], w["drill"]["id"]}
    # A point inside the blue warning's community: that warning and the city-wide drill.
    area = services.registry.get(COMMUNITY_IN_990102)
    lat, lon = area.point
    assert set(await ids(client, f"?active=true&point={lat},{lon}")) == {w["blue"]["id"], w["drill"]["id"]}
    # A point in district 990101: only the drill is still in force there.
    lat, lon = services.registry.get("990101").point
    assert await ids(client, f"?active=true&point={lat},{lon}") == [w["drill"]["id"]]


async def test_drawn_circle_matches_points_inside_it(client, services, staff, clock):
    from tests.publisher.test_workflow import published

    circle = await published(
        client, staff, clock, grade="blue", areas=[], circles=[{"lat": 30.7, "lon": 121.0, "radius_km": 1}]
    )
    assert await ids(client, "?point=30.705,121.0") == [circle["id"]]
    assert await ids(client, "?point=30.72,121.0") == []  # 2.2 km north


async def test_bad_parameters_are_named(client, services):
    resp = await client.get(
        "/api/v1/warnings?point=abc&grade=pink&event=meteor&status=Real&area=x&active=maybe&lang=en"
    )
    assert resp.status == 422
    body = await resp.json()
    fields = {f["field"]: f["message"] for f in body["error"]["fields"]}
    assert set(fields) == {"point", "grade", "event", "status", "area", "active"}
    assert fields["point"] == "Use point=lat,lon."


async def test_geojson_feature_collection(client, services, staff, clock):
    w = await city(client, staff, clock)
    resp = await client.get("/api/v1/warnings?active=true", headers={"Accept": "application/geo+json"})
    assert resp.status == 200 and resp.content_type == "application/geo+json"
    assert "Accept" in resp.headers["Vary"]
    doc = await resp.json(content_type=None)
    assert doc["type"] == "FeatureCollection"
    by_id = {f["properties"]["id"]: f for f in doc["features"]}
    assert set(by_id) == {w["blue"]["id"], w["drill"]["id"]}
    blue = by_id[w["blue"]["id"]]
    assert blue["type"] == "Feature" and blue["id"].endswith(f"/api/v1/warnings/{w['blue']['id']}")
    assert blue["geometry"]["type"] == "MultiPolygon"
    lon, lat = blue["geometry"]["coordinates"][0][0][0]
    assert 120.8 < lon < 121.3 and 30.5 < lat < 30.9  # GeoJSON order: lon, lat
    community = services.registry.get(COMMUNITY_IN_990102)
    assert shape(blue["geometry"]).contains(Point(community.point[1], community.point[0]))
    props = blue["properties"]
    assert props["grade"] == "blue" and props["severity"] == "Minor" and props["links"]["cap"].endswith(".xml")
    assert "drafter" not in props and "approvals" not in props  # no personal data in public outputs


async def test_public_reads_are_conditional_and_staff_reads_unchanged(client, services, staff, clock):
    draft = await create(client, staff, clock, grade="blue")
    first = await client.get("/api/v1/warnings")
    assert (await first.json())["warnings"] == []  # the public never sees drafts
    etag = first.headers["ETag"]
    assert (await client.get("/api/v1/warnings", headers={"If-None-Match": etag})).status == 304
    geo = await client.get("/api/v1/warnings", headers={"Accept": "application/geo+json"})
    assert geo.headers["ETag"] != etag
    mine = await client.get("/api/v1/warnings", headers=staff["drafter"])
    body = await mine.json()
    assert [m["id"] for m in body["warnings"]] == [draft["id"]] and body["warnings"][0]["drafter"] == "drafter"
    assert mine.headers["Cache-Control"] == "no-store"
