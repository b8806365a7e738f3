"""What the maps load, over HTTP: the areas as GeoJSON simplified per zoom, the grade in force per
community, the triage board's points, Leaflet from the app itself, the CSP with and without tiles;
and what composing on the map sends: drawn polygons and circles in the compose form."""

from __future__ import annotations

import html
import json
import math
import re
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


def _shape_form(csrf: str, clock, **fields: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "grade": "blue",
        "event": "fog",
        "expires": (clock.now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "zh-CN.headline": "大雾蓝色预警",
        "zh-CN.description": "能见度低于500米。",
        "en.headline": "Blue fog warning",
        "en.description": "Visibility below 500 m.",
        "then": "draft",
        **fields,
    }


async def test_compose_form_takes_shapes_typed_as_cap_text(client, services, users, clock):
    """Without JavaScript (and from the keyboard) the coordinates fields are how a polygon or a
    circle is given: CAP's own text, one shape per line."""
    csrf = await login(client, "drafter", users["drafter"])
    compose = await (await client.get("/console/compose?lang=en")).text()
    assert 'id="compose-map"' in compose and "compose-map.js" in compose
    assert '<label for="polygons-text">Polygons</label>' in compose
    assert '<label for="circles-text">Circles</label>' in compose
    assert 'type="hidden" name="polygons"' not in compose  # one record of the shapes, not two
    ring = "30.6,121.0 30.6,121.1 30.7,121.1 30.6,121.0"
    form = _shape_form(csrf, clock, polygons=ring + "\n\n", circles="30.65,121.05 3.25\r\n30.61,121.02 0.5")
    resp = await client.post("/console/compose", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    message = await services.warnings.get(resp.headers["Location"].rsplit("/", 1)[1])
    assert message.content.areas == []
    assert message.content.polygons == [[(30.6, 121.0), (30.6, 121.1), (30.7, 121.1), (30.6, 121.0)]]
    circles = [(c.lat, c.lon, c.radius_km) for c in message.content.circles]
    assert circles == [(30.65, 121.05, 3.25), (30.61, 121.02, 0.5)]
    # Editing the draft shows the shapes again as the same text; an edit that empties them leaves none.
    edit = await (await client.get(f"/console/warnings/{message.id}/edit?lang=en")).text()
    assert f">{ring}</textarea>" in edit and ">30.65,121.05 3.25\n30.61,121.02 0.5</textarea>" in edit
    assert '<details id="shape-text" class="shape-text" open>' in edit
    form.update(polygons="", circles="", areas="990101")
    resp = await client.post(f"/console/warnings/{message.id}/edit", data=form, allow_redirects=False)
    assert resp.status == 303
    edited = await services.warnings.get(message.id)
    assert edited.content.polygons == [] and edited.content.circles == [] and edited.content.areas == ["990101"]


BAD_SHAPES = [
    ("polygons", "30.6,121.0 30.6,north 30.7,121.1 30.6,121.0", "polygons[0][1]"),  # not a number
    ("polygons", "30.6,121.0 95,121.1 30.7,121.1 30.6,121.0", "polygons[0][1]"),  # latitude out of range
    ("polygons", "30.6,121.0 30.6,121.1 30.6,121.0", "polygons[0]"),  # fewer than 4 points
    ("polygons", "30.6,121.0 30.6,121.1 30.7,121.1 30.7,121.0", "polygons[0]"),  # not closed
    ("polygons", "30.6,121.0 30.7,121.1 30.7,121.0 30.6,121.1 30.6,121.0", "polygons[0]"),  # crossed
    ("circles", "30.65,121.05 0", "circles[0].radius_km"),  # radius <= 0
    ("circles", "30.65,200 2", "circles[0]"),  # longitude out of range
    ("circles", "30.65,121.05", "circles[0]"),  # no radius
]


@pytest.mark.parametrize(("name", "typed", "field"), BAD_SHAPES, ids=[c[2] + "-" + c[1] for c in BAD_SHAPES])
async def test_bad_typed_shapes_get_the_apis_field_errors_and_stay_typed(
    client, services, users, clock, name, typed, field
):
    csrf = await login(client, "drafter", users["drafter"])
    # The second line is the bad one, after a blank line: the error names line 3, as the drafter sees it.
    good = {"polygons": "30.6,121.0 30.6,121.1 30.7,121.1 30.6,121.0", "circles": "30.6,121.0 1"}[name]
    text = f"{good}\n\n{typed}"
    wrong = field.replace("[0]", "[1]", 1)
    for lang in ("en", "zh"):
        resp = await client.post(f"/console/compose?lang={lang}", data=_shape_form(csrf, clock, **{name: text}))
        assert resp.status == 422
        page = await resp.text()
        api = await client.post(
            f"/api/v1/warnings/preview?lang={lang}", json={name: [good, typed]}, headers={"X-CSRF-Token": csrf}
        )
        fields = {f["field"]: f["message"] for f in (await api.json())["error"]["fields"]}
        assert wrong in fields, fields
        reason = html.escape(fields[wrong], quote=False)
        point = re.search(r"\]\[(\d+)\]$", wrong)
        if lang == "en":
            where = f"Line 3, point {int(point.group(1)) + 1}: " if point else "Line 3: "
        else:
            where = f"第 3 行第 {int(point.group(1)) + 1} 个点：" if point else "第 3 行："
        assert f"<span>{where}{reason}</span>" in page
        assert f">{html.escape(text, quote=False)}</textarea>" in page  # kept as typed
        assert 'aria-invalid="true"' in page
        if lang == "zh":
            assert not re.search(r"[A-Za-z]{4,}", fields[wrong].split(":")[0]), fields[wrong]  # translated
    assert await services.warnings.list(limit=10) == []


async def test_the_api_and_the_map_agree_on_a_crossed_polygon(client, services, users, clock):
    csrf = await login(client, "drafter", users["drafter"])
    bow_tie = [[30.6, 121.0], [30.7, 121.1], [30.7, 121.0], [30.6, 121.1], [30.6, 121.0]]
    api = await client.post(
        "/api/v1/warnings/preview?lang=en", json={"polygons": [bow_tie]}, headers={"X-CSRF-Token": csrf}
    )
    fields = {f["field"]: f["message"] for f in (await api.json())["error"]["fields"]}
    assert fields["polygons[0]"] == "The polygon is not valid: its edges cross near 30.65,121.05."
    text = " ".join(f"{lat},{lon}" for lat, lon in bow_tie)
    resp = await client.post("/console/compose?lang=en", data=_shape_form(csrf, clock, polygons=text))
    assert resp.status == 422
    assert html.escape(fields["polygons[0]"], quote=False) in await resp.text()
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


async def test_the_benchmarks_5000_areas_load_simplified(client, services, users):
    """The registry of benchmarks/maps.py (5,011 areas; the benchmark prints the sizes and the time
    to interactive): what the compose map loads at its first zoom is simplified, far smaller than
    the registry's rings, and keeps every area a closed ring. Sizes, not times: nothing here is timed."""
    from benchmarks.maps import synthetic_registry
    from foundation.areas.registry import store_areas

    records = synthetic_registry(10)
    assert await store_areas(services.redis, records) == 5011
    raw = await (await client.get("/api/v1/areas.geojson?zoom=raw")).read()
    first = await (await client.get("/api/v1/areas.geojson?zoom=10")).read()
    collection = json.loads(first)
    assert len(collection["features"]) == 5011
    assert all(
        len(ring := f["geometry"]["coordinates"][0]) >= 4 and ring[0] == ring[-1] for f in collection["features"]
    )
    points = [sum(len(f["geometry"]["coordinates"][0]) for f in json.loads(body)["features"]) for body in (raw, first)]
    assert points[1] * 5 < points[0], points  # the jittered edges thinned to about their corners
    assert len(first) * 3 < len(raw), (len(first), len(raw))
    await login(client, "drafter", users["drafter"])
    compose = await (await client.get("/console/compose?lang=en")).text()
    assert 'data-geojson="/api/v1/areas.geojson"' in compose and f"({records[-1]['code']})" in compose
