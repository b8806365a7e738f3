"""What the maps load, over HTTP: the areas as GeoJSON simplified per zoom, the grade in force per
community, the triage board's points, Leaflet from the app itself, the CSP with and without tiles;
and what composing on the map sends: drawn polygons and circles in the compose form."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest
from shapely.geometry import Polygon

from foundation.areas.geojson import simplify, tolerance_deg
from foundation.settings import Settings, SettingsError
from tests.warncast.test_console import login
from warncast.web.middleware import CSP, content_security_policy


def _wiggly_ring(n: int, lat: float = 30.6, lon: float = 121.0, r: float = 0.01) -> list[tuple[float, float]]:
    """A closed ring of n points on a circle with a small ripple: what a surveyed boundary looks like."""
    points = []
    for i in range(n):
        a = 2 * math.pi * i / n
        rr = r * (1 + 0.02 * math.sin(17 * a))
        points.append((round(lat + rr * math.sin(a), 7), round(lon + rr * math.cos(a), 7)))
    return [*points, points[0]]


def test_simplify_keeps_a_closed_ring_within_the_tolerance():
    ring = _wiggly_ring(2000)
    for zoom in (8, 12, 16):
        out = simplify(ring, tolerance_deg(zoom))
        assert out[0] == out[-1] and len(out) >= 4
        original = Polygon([(b, a) for a, b in ring])
        thinned = Polygon([(b, a) for a, b in out])
        assert original.hausdorff_distance(thinned) <= tolerance_deg(zoom) * 1.01
    assert len(simplify(ring, tolerance_deg(8))) < len(simplify(ring, tolerance_deg(16))) < len(ring)
    tiny = [(0.0, 0.0), (0.0, 1e-9), (1e-9, 1e-9), (1e-9, 0.0), (0.0, 0.0)]
    assert len(simplify(tiny, 1.0)) == 4  # never fewer than 4 points, however coarse


async def test_areas_geojson_per_zoom_is_smaller_and_revalidates(client, services):
    from foundation.areas.registry import store_areas

    city = {"code": "990100", "level": "city", "parent": None, "name": {"en": "City"}}
    district = {"code": "990101", "level": "district", "parent": "990100", "name": {"en": "Riverside", "zh-CN": "滨江"}}
    records = [{**city, "polygon": _wiggly_ring(400, r=0.2)}, {**district, "polygon": _wiggly_ring(1500, r=0.05)}]
    await store_areas(services.redis, records)
    raw = await client.get("/api/v1/areas.geojson?zoom=raw&lang=en")
    assert raw.status == 200 and raw.content_type == "application/geo+json"
    raw_body = await raw.read()
    resp = await client.get("/api/v1/areas.geojson?zoom=10&lang=en", headers={"Accept-Encoding": "gzip"})
    assert resp.headers["Content-Encoding"] == "gzip"
    body = await resp.read()
    collection = json.loads(body)
    assert collection["type"] == "FeatureCollection"
    district = next(f for f in collection["features"] if f["id"] == "990101")
    assert district["properties"] == {
        "code": "990101",
        "level": "district",
        "parent": "990100",
        "name": "Riverside",
        "label": district["properties"]["label"],
    }
    ring = district["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and 4 <= len(ring) < 1501
    assert len(body) * 3 < len(raw_body)
    again = await client.get("/api/v1/areas.geojson?zoom=10&lang=en", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304
    zh = json.loads(await (await client.get("/api/v1/areas.geojson?zoom=10&lang=zh")).read())
    assert next(f for f in zh["features"] if f["id"] == "990101")["properties"]["name"] == "滨江"


async def test_areas_geojson_refuses_a_bad_zoom_by_name(client, services):
    resp = await client.get("/api/v1/areas.geojson?zoom=99&lang=en")
    assert resp.status == 422
    fields = (await resp.json())["error"]["fields"]
    assert fields[0]["field"] == "zoom" and "0 to 18" in fields[0]["message"]
    resp = await client.get("/api/v1/areas.geojson?zoom=10&level=planet&lang=en")
    assert resp.status == 422 and (await resp.json())["error"]["fields"][0]["field"] == "level"
    districts = await (await client.get("/api/v1/areas.geojson?zoom=10&level=district")).json()
    assert {f["properties"]["level"] for f in districts["features"]} == {"district"}


async def test_leaflet_is_served_by_the_app(client, services):
    page = await (await client.get("/?lang=en")).text()
    for name in ("leaflet.js", "leaflet.css", "map.js", "public-map.js"):
        assert name in page
    resp = await client.get("/static/vendor/leaflet/leaflet.js")
    assert resp.status == 200 and "Leaflet" in (await resp.text())[:400]


async def test_map_warnings_give_each_community_its_highest_grade(client, services, staff, clock):
    from tests.publisher.test_workflow import published

    low = await published(client, staff, clock, grade="blue", areas=["990101"])
    high = await published(client, staff, clock, grade="orange", areas=["990101001"])
    body = await (await client.get("/map/warnings.json?lang=en")).json()
    leaves = services.registry.leaves_under(["990101"])
    assert set(body["areas"]) == leaves
    inner = next(code for code in leaves if code.startswith("990101001"))
    assert body["areas"][inner]["grade"] == "orange"
    assert [w["id"] for w in body["areas"][inner]["warnings"]] == [high["id"], low["id"]]
    outer = next(code for code in leaves if not code.startswith("990101001"))
    assert body["areas"][outer] == {
        "grade": "blue",
        "colour": "#1f6fd1",
        "warnings": [{"id": low["id"], "grade": "blue", "headline": "Red rainstorm warning"}],
    }
    assert "drafter" not in json.dumps(body)


def test_tiles_are_off_unless_configured_and_then_the_only_other_image_origin():
    assert Settings.from_env({"WARNCAST_SECRET_KEY": "x"}).map_tiles == ""
    assert content_security_policy("") == CSP
    policy = content_security_policy("https://{s}.tiles.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://*.tiles.example.org;" in policy
    assert "connect-src 'self'" in policy and "script-src 'self'" in policy
    for bad in ("javascript:alert(1)", "https://tiles.example.org/tile.png", "ftp://x/{z}/{x}/{y}"):
        with pytest.raises(SettingsError, match="WARNCAST_MAP_TILES"):
            Settings.from_env({"WARNCAST_SECRET_KEY": "x", "WARNCAST_MAP_TILES": bad})


async def test_configured_tiles_reach_the_page_and_its_csp(aiohttp_client, settings, clock):
    from warncast.web.app import create_app

    tiles = "https://tiles.example.org/{z}/{x}/{y}.png"
    credit = "© Tiles <Example>"
    app = create_app(settings.with_(map_tiles=tiles, map_tiles_attribution=credit), clock=clock)
    client = await aiohttp_client(app)
    resp = await client.get("/?lang=en")
    assert "img-src 'self' data: https://tiles.example.org;" in resp.headers["Content-Security-Policy"]
    page = await resp.text()
    assert f'data-tiles="{tiles}"' in page and 'data-tiles-attribution="© Tiles &lt;Example&gt;"' in page


async def test_compose_form_carries_drawn_polygons_and_circles(client, services, users, clock):
    csrf = await login(client, "drafter", users["drafter"])
    compose = await (await client.get("/console/compose?lang=en")).text()
    assert 'id="compose-map"' in compose and 'name="polygons"' in compose and "compose-map.js" in compose
    ring = [[30.6, 121.0], [30.6, 121.1], [30.7, 121.1], [30.6, 121.0]]
    form = {
        "csrf_token": csrf,
        "grade": "blue",
        "event": "fog",
        "expires": (clock.now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "polygons": json.dumps([ring]),
        "circles": json.dumps([{"lat": 30.65, "lon": 121.05, "radius_km": 3.25}]),
        "zh-CN.headline": "大雾蓝色预警",
        "zh-CN.description": "能见度低于500米。",
        "en.headline": "Blue fog warning",
        "en.description": "Visibility below 500 m.",
        "then": "draft",
    }
    resp = await client.post("/console/compose", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    message = await services.warnings.get(resp.headers["Location"].rsplit("/", 1)[1])
    assert message.content.areas == [] and message.content.polygons == [[tuple(p) for p in ring]]
    assert [(c.lat, c.lon, c.radius_km) for c in message.content.circles] == [(30.65, 121.05, 3.25)]
    # Editing the draft shows the shapes again; an edit that deletes them leaves none.
    edit = await (await client.get(f"/console/warnings/{message.id}/edit?lang=en")).text()
    assert "radius_km&#34;: 3.25" in edit or "&#34;radius_km&#34;: 3.25" in edit
    form.update(polygons="", circles="", areas="990101")
    resp = await client.post(f"/console/warnings/{message.id}/edit", data=form, allow_redirects=False)
    assert resp.status == 303
    edited = await services.warnings.get(message.id)
    assert edited.content.polygons == [] and edited.content.circles == [] and edited.content.areas == ["990101"]


async def test_a_crossed_polygon_from_the_form_gets_the_apis_field_error(client, services, users, clock, staff):
    csrf = await login(client, "drafter", users["drafter"])
    bow_tie = [[30.6, 121.0], [30.7, 121.1], [30.7, 121.0], [30.6, 121.1], [30.6, 121.0]]
    form = {
        "csrf_token": csrf,
        "grade": "blue",
        "event": "fog",
        "expires": (clock.now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "polygons": json.dumps([bow_tie]),
        "en.headline": "x",
        "zh-CN.headline": "x",
    }
    resp = await client.post("/console/compose?lang=en", data=form)
    assert resp.status == 422
    page = await resp.text()
    assert "The polygon is not valid: Self-intersection" in page
    api = await client.post(
        "/api/v1/warnings/preview?lang=en", json={"polygons": [bow_tie]}, headers={"X-CSRF-Token": csrf}
    )
    fields = {f["field"]: f["message"] for f in (await api.json())["error"]["fields"]}
    assert fields["polygons[0]"] in page  # the map shows the same words (compose-map.js asks this endpoint)
    assert await services.warnings.active() == []


async def test_the_preview_names_the_communities_a_warning_reaches(client, services, staff, clock):
    from tests.conftest import warning_body

    body = warning_body(clock, areas=["990101001"])
    resp = await client.post("/api/v1/warnings/preview", json=body, headers=staff["drafter"])
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["coverage"] == sorted(services.registry.leaves_under(["990101001"]))


async def test_triage_points_follow_the_boards_filters(client, services, users):
    from citizen_report.intake import submit_report
    from citizen_report.model import ReportInput
    from citizen_report.queue import consume

    community = [a for a in services.registry.areas if a.level == "community"][2]
    lat, lon = community.point
    flooded = ReportInput(category="waterlogging", description="Flooded underpass", lat=lat, lon=lon, consent=True)
    await submit_report(services.reports, flooded)
    await submit_report(
        services.reports,
        ReportInput(category="road_damage", description="Hole in the road", area=community.code, consent=True),
    )
    assert await consume(services.reports, "test") == 2
    await login(client, "triage", users["triage"])
    body = await (await client.get("/console/triage?fragment=points")).json()
    assert len(body["incidents"]) == 2
    flood = next(p for p in body["incidents"] if p["priority"] == 2)
    assert (flood["lat"], flood["lon"]) == community.point
    only = await (await client.get("/console/triage?fragment=points&category=waterlogging")).json()
    assert [p["id"] for p in only["incidents"]] == [flood["id"]]
    page = await (await client.get("/console/triage?lang=en")).text()
    assert 'id="triage-map"' in page and "leaflet.markercluster.js" in page


async def test_a_screen_may_show_a_small_map_on_its_kiosk_page(client, services, staff):
    body = {"id": "hall", "name": "Hall", "area": "990101"}
    resp = await client.post("/api/v1/screens", json=body, headers=staff["admin"])
    assert resp.status == 201, await resp.text()
    assert 'id="kiosk-map"' not in await (await client.get("/screens/hall")).text()
    resp = await client.put("/api/v1/screens/hall", json={**body, "show_map": True}, headers=staff["admin"])
    assert resp.status == 200, await resp.text()
    kiosk = await (await client.get("/screens/hall")).text()
    assert 'id="kiosk-map"' in kiosk and "kiosk-map.js" in kiosk
    state = await (await client.get("/screens/hall.json")).json()
    assert state["screen"]["show_map"] is True
    bad = await client.put("/api/v1/screens/hall", json={**body, "show_map": "yes"}, headers=staff["admin"])
    assert bad.status == 422 and (await bad.json())["error"]["fields"][0]["field"] == "show_map"
