"""One answer to "where does this warning apply": the SMS reach (the planner's affected areas), the
preview's reach, feeds, screens and the warnings API agree, and a circle is a geodesic circle."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from shapely.geometry import Point, Polygon, shape

from channels.feeds.select import FeedQuery, matching
from channels.screens.registry import Screen
from channels.screens.render import screen_warnings
from foundation.areas.registry import AreaRegistry, area_from_record
from publisher.coverage import EARTH_RADIUS_KM, circle_geometry, concerns_point
from publisher.dispatch import planner
from publisher.dispatch.preview import preview
from publisher.model import PUBLISHED, Circle, Content, InfoText, Message
from publisher.policy import DEFAULT_POLICY
from warncast.web.warnings_query import WarningFilter, feature

LATITUDES = [0.0, 23.0, 31.0, 45.0, 60.0, -38.0, 70.0]
LON = 121.0
RADIUS_KM = 10.0
BEARINGS = {"n": 0.0, "e": 90.0, "s": 180.0, "w": 270.0}
CITY, DISTRICT, FAR_DISTRICT, FAR_COMMUNITY = "100000", "110000", "120000", "120001"


def to_vector(lat: float, lon: float) -> tuple[float, float, float]:
    phi, lam = math.radians(lat), math.radians(lon)
    return (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))


def from_vector(v: tuple[float, float, float]) -> tuple[float, float]:
    x, y, z = v
    return math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x))


def walk(lat: float, lon: float, bearing: float, km: float) -> tuple[float, float]:
    """Where `km` along the great circle at `bearing` ends, by rotating unit vectors (a different
    computation from the one under test): p cos(d) + (east sin(b) + north cos(b)) sin(d)."""
    p = to_vector(lat, lon)
    phi, lam = math.radians(lat), math.radians(lon)
    east = (-math.sin(lam), math.cos(lam), 0.0)
    north = (-math.sin(phi) * math.cos(lam), -math.sin(phi) * math.sin(lam), math.cos(phi))
    d, b = km / EARTH_RADIUS_KM, math.radians(bearing)
    heading = [e * math.sin(b) + n * math.cos(b) for e, n in zip(east, north, strict=True)]
    end = tuple(pc * math.cos(d) + hc * math.sin(d) for pc, hc in zip(p, heading, strict=True))
    return from_vector(end)  # type: ignore[arg-type]


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine) between two (lat, lon)."""
    (phi1, lam1), (phi2, lam2) = [(math.radians(p[0]), math.radians(p[1])) for p in (a, b)]
    h = math.sin((phi2 - phi1) / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin((lam2 - lam1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def box(lat: float, lon: float, half_km: float) -> list[list[float]]:
    """A small square (lat, lon ring) around a point, `half_km` from its centre to each side."""
    dlat = half_km / (EARTH_RADIUS_KM * math.pi / 180)
    dlon = dlat / math.cos(math.radians(lat))
    ring = [(lat - dlat, lon - dlon), (lat - dlat, lon + dlon), (lat + dlat, lon + dlon), (lat + dlat, lon - dlon)]
    return [list(p) for p in [*ring, ring[0]]]


def synthetic_city(lat: float) -> tuple[AreaRegistry, dict[str, tuple[float, float]]]:
    """A city with a district around the circle's centre and, in that district, small square
    communities whose nearest side lies 0.98 r (inside) or 1.02 r (outside) from the centre to the
    north, east, south and west; plus a district (and its community) far to the east. Returns the
    registry and, per community, the point of it nearest the centre."""
    half = RADIUS_KM * 0.004
    city = walk(lat, LON, 90.0, 30)
    records: list[dict[str, Any]] = [
        {"code": CITY, "level": "city", "parent": None, "name": {"en": "City"}, "polygon": box(*city, 80)},
        {"code": DISTRICT, "level": "district", "parent": CITY, "name": {"en": "D"}, "polygon": box(lat, LON, 30)},
    ]
    far = walk(lat, LON, 90.0, 60)
    records.append(
        {"code": FAR_DISTRICT, "level": "district", "parent": CITY, "name": {"en": "F"}, "polygon": box(*far, 10)}
    )
    records.append(
        {
            "code": FAR_COMMUNITY,
            "level": "community",
            "parent": FAR_DISTRICT,
            "name": {"en": "FC"},
            "polygon": box(*far, 2),
        }
    )
    nearest: dict[str, tuple[float, float]] = {}
    for direction, bearing in BEARINGS.items():
        for where, factor in (("in", 0.98), ("out", 1.02)):
            code = f"{direction}-{where}"
            nearest[code] = walk(lat, LON, bearing, RADIUS_KM * factor)
            centre = walk(lat, LON, bearing, RADIUS_KM * factor + half)
            records.append(
                {
                    "code": code,
                    "level": "community",
                    "parent": DISTRICT,
                    "name": {"en": code},
                    "polygon": box(*centre, half),
                }
            )
    return AreaRegistry([area_from_record(r) for r in records]), nearest


def message(lat: float, areas: list[str] | None = None, grade: str = "red") -> Message:
    content = Content(
        grade=grade,
        event="flood",
        category="Met",
        areas=areas or [],
        expires=datetime(2030, 1, 1, tzinfo=UTC),
        info={"en": InfoText("Flood", "Water is rising.")},
        circles=[Circle(lat, LON, RADIUS_KM)],
    )
    now = "2029-12-31T00:00:00+00:00"
    return Message(
        id="m1",
        thread="m1",
        msg_type="Alert",
        state=PUBLISHED,
        content=content,
        drafter="d",
        created=now,
        updated=now,
        sent=now,
    )


def covered_by_outputs(m: Message, registry: AreaRegistry, code: str) -> dict[str, bool]:
    """What each public output says about the warning and one area."""
    return {
        "screens": screen_warnings([m], Screen(id="s", name="s", area=code), registry) == [m],
        "feeds": matching([m], FeedQuery(tag="en", area=code), registry) == [m],
        "api": WarningFilter(area=code).apply([m], registry) == [m],
    }


@pytest.mark.parametrize("lat", LATITUDES)
def test_sms_reach_is_what_screens_feeds_and_the_api_cover(lat):
    registry, nearest = synthetic_city(lat)
    m = message(lat)
    reach = planner.affected_areas(SimpleNamespace(registry=registry), m)  # type: ignore[arg-type]
    inside = {f"{d}-in" for d in BEARINGS}
    assert reach == {CITY, DISTRICT, *inside}  # every just-inside community, no just-outside one
    geometry = shape(feature(m, {"links": {"self": "/api/v1/warnings/m1"}}, registry)["geometry"])
    for area in registry.areas:
        expected = area.code in reach
        assert covered_by_outputs(m, registry, area.code) == dict.fromkeys(("screens", "feeds", "api"), expected), (
            area.code
        )
        assert geometry.intersects(area.geometry) == expected, area.code  # the GeoJSON footprint drawn
    for code, (plat, plon) in nearest.items():  # the API's point filter, at each community's nearest side
        expected = code.endswith("-in")
        assert (WarningFilter(point=(plat, plon)).apply([m], registry) == [m]) == expected, code
        assert concerns_point(m.content, registry, plat, plon) == expected, code


@pytest.mark.parametrize("lat", LATITUDES)
def test_targets_reach_up_and_down_the_same_everywhere(lat):
    registry, _ = synthetic_city(lat)
    for targets, extra in (
        ([FAR_COMMUNITY], {FAR_DISTRICT, FAR_COMMUNITY}),
        ([FAR_DISTRICT], {FAR_DISTRICT, FAR_COMMUNITY}),
    ):
        m = message(lat, areas=targets)
        reach = planner.affected_areas(SimpleNamespace(registry=registry), m)  # type: ignore[arg-type]
        assert reach == {CITY, DISTRICT, *(f"{d}-in" for d in BEARINGS), *extra}
        for area in registry.areas:
            expected = area.code in reach
            assert covered_by_outputs(m, registry, area.code) == dict.fromkeys(("screens", "feeds", "api"), expected)


async def test_preview_reach_counts_the_planners_areas():
    registry, _ = synthetic_city(31.0)
    m = message(31.0, areas=[FAR_COMMUNITY])
    asked: list[set[str]] = []

    async def count_active(areas, channel, grades, drill=False):
        asked.append(set(areas))
        return 1

    async def policy():
        return DEFAULT_POLICY

    ctx = SimpleNamespace(
        registry=registry,
        channels={},
        policy=SimpleNamespace(get=policy),
        subscribers=SimpleNamespace(count_active=count_active),
    )
    shown = await preview(ctx, m)  # type: ignore[arg-type]
    assert shown["channels"]["sms"]["reach"] == 1
    assert asked and all(a == planner.affected_areas(ctx, m) for a in asked)  # type: ignore[arg-type]


@pytest.mark.parametrize("lat", [*LATITUDES, 78.2, -54.8])
@pytest.mark.parametrize("radius", [0.5, 10.0, 250.0])
def test_circle_is_geodesic(lat, radius):
    circle = circle_geometry(Circle(lat, LON, radius))
    assert circle.is_valid
    for bearing in (*BEARINGS.values(), 45.0, 135.0, 225.0, 315.0):
        for factor, inside in ((0.98, True), (1.02, False)):
            plat, plon = walk(lat, LON, bearing, radius * factor)
            assert circle.contains(Point(plon, plat)) == inside, (bearing, factor)
    assert isinstance(circle, Polygon)  # one piece, away from the poles and the antimeridian
    ring = list(circle.exterior.coords)
    assert len(ring) > 64
    for lon, vlat in ring:
        assert distance_km((lat, LON), (vlat, lon)) == pytest.approx(radius, rel=1e-6)


def wrapped(lon: float) -> float:
    return (lon + 180.0) % 360.0 - 180.0


GRIDS = {  # (lat, lon, radius): lons and lats of the grid tried around it
    (88.0, LON, 300.0): ([-180.0 + 5 * i for i in range(73)], [83.0 + 0.25 * j for j in range(29)]),
    (-87.0, LON, 400.0): ([-180.0 + 5 * i for i in range(73)], [-90.0 + 0.25 * j for j in range(29)]),
    (45.0, 179.95, 20.0): ([wrapped(179.6 + 0.02 * i) for i in range(36)], [44.7 + 0.02 * j for j in range(31)]),
}


@pytest.mark.parametrize(("lat", "lon", "radius"), list(GRIDS))
def test_circle_around_a_pole_or_across_the_antimeridian(lat, lon, radius):
    """A polar cap, and a circle reaching past 180°: every point of a lon/lat grid within -180..180
    is inside exactly when its great-circle distance is under the radius."""
    circle = circle_geometry(Circle(lat, lon, radius))
    assert circle.is_valid and all(-180 <= x <= 180 for x in circle.bounds[::2])
    tried = {True: 0, False: 0}
    lons, lats = GRIDS[(lat, lon, radius)]
    for plon in lons:
        for plat in lats:
            d = distance_km((lat, lon), (plat, plon))
            if abs(d - radius) > 0.01 * radius:
                assert circle.intersects(Point(plon, plat)) == (d < radius), (plat, plon, d)
                tried[d < radius] += 1
    assert tried[True] > 20 and tried[False] > 20
    assert {x < 0 for x in lons if circle.intersects(Point(x, lat))} == {True, False}  # on both sides of 180°
