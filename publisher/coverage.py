"""Where a warning applies: the one answer every output uses (SMS, Telegram and partner reach, the
preview, feeds, screens and the warnings API).

A warning affects an area when one of its target areas is that area, lies under it or contains it
(a district warning covers the screens of its communities; a city-wide subscriber hears of a
district warning), or when a drawn polygon or circle touches the area's polygon. Its footprint is
the union of its target areas' polygons and its drawn shapes; a point is concerned when it lies in
the footprint.

Geometries are shapely lon/lat (x = lon, y = lat) like the area registry's.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import shapely
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from shapely.strtree import STRtree

from foundation.areas.registry import Area, AreaRegistry
from publisher.model import Circle, Content

# A spherical earth of the IUGG mean radius: within ~0.5 % of the WGS84 ellipsoid's geodesic
# distances, far below what matters for a warning's circle (pyproj is not a dependency).
EARTH_RADIUS_KM = 6371.0088
CIRCLE_VERTICES = 128  # an inscribed polygon: its edges come within 0.03 % of the radius


def destination(lat: float, lon: float, bearing_deg: float, distance_km: float) -> tuple[float, float]:
    """The point `distance_km` along the great circle leaving (lat, lon) at `bearing_deg` (clockwise
    from north), as (lat, lon); the longitude stays within 180° of `lon` (not wrapped)."""
    phi1, lam1 = math.radians(lat), math.radians(lon)
    theta, delta = math.radians(bearing_deg), distance_km / EARTH_RADIUS_KM
    sin_phi2 = math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    phi2 = math.asin(max(-1.0, min(1.0, sin_phi2)))
    dlam = math.atan2(math.sin(theta) * math.sin(delta) * math.cos(phi1), math.cos(delta) - math.sin(phi1) * sin_phi2)
    return math.degrees(phi2), math.degrees(lam1 + dlam)


def circle_geometry(circle: Circle, vertices: int = CIRCLE_VERTICES) -> Polygon | MultiPolygon:
    """The points within `radius_km` great-circle distance of the centre, as a lon/lat polygon.

    Degrees of longitude shrink with latitude, so the polygon is wider in longitude than in
    latitude. A circle around a pole becomes the polar cap it is in lon/lat: its boundary from
    180° west of the centre to 180° east of it, closed along the pole's latitude. What lies past
    the antimeridian is moved into -180..180, where the registry's longitudes are.
    """
    lat, lon, radius = circle.lat, circle.lon, circle.radius_km
    ring = [destination(lat, lon, 360.0 * i / vertices, radius) for i in range(vertices)]
    to_north_pole = math.radians(90.0 - lat) * EARTH_RADIUS_KM
    to_south_pole = math.radians(90.0 + lat) * EARTH_RADIUS_KM
    if radius < to_north_pole and radius < to_south_pole:
        return _within_antimeridian(Polygon([(x, y) for y, x in ring]))
    pole = 90.0 if radius >= to_north_pole else -90.0
    # Straight over the pole (or straight away from it): where the boundary meets 180° from the centre.
    far_lat, _ = destination(lat, lon, 0.0 if pole > 0 else 180.0, radius)
    edge = sorted((x - lon, y) for y, x in ring if -180.0 < x - lon < 180.0)
    boundary = [(lon - 180.0, far_lat), *((lon + dx, y) for dx, y in edge), (lon + 180.0, far_lat)]
    return _within_antimeridian(Polygon([*boundary, (lon + 180.0, pole), (lon - 180.0, pole)]))


_WORLD = Polygon([(-180.0, -90.0), (180.0, -90.0), (180.0, 90.0), (-180.0, 90.0)])


def _within_antimeridian(shape: Polygon) -> Polygon | MultiPolygon:
    west, _, east, _ = shape.bounds
    if -180.0 <= west and east <= 180.0:
        return shape
    pieces = [affinity.translate(shape, xoff=shift).intersection(_WORLD) for shift in (-360.0, 0.0, 360.0)]
    return as_multipolygon(unary_union([p for p in pieces if not p.is_empty]))


def polygon_geometry(polygon: list[tuple[float, float]]) -> Polygon:
    """A drawn polygon, given as (lat, lon) points."""
    return Polygon([(lon, lat) for lat, lon in polygon])


def drawn_geometries(content: Content) -> list[BaseGeometry]:
    """The polygons and circles drawn on the warning, as lon/lat geometries."""
    shapes: list[BaseGeometry] = [polygon_geometry(poly) for poly in content.polygons]
    return shapes + [circle_geometry(c) for c in content.circles]


def target_areas(content: Content, registry: AreaRegistry) -> list[Area]:
    """The target areas the registry knows."""
    return [a for code in content.areas if (a := registry.get(code)) is not None]


# The registry's polygons in a spatial index, rebuilt when the registry reloads its areas.
_trees: weakref.WeakKeyDictionary[AreaRegistry, tuple[list[Area], STRtree]] = weakref.WeakKeyDictionary()


def _area_tree(registry: AreaRegistry) -> STRtree:
    cached = _trees.get(registry)
    if cached is None or cached[0] is not registry.areas:
        cached = (registry.areas, STRtree([a.geometry for a in registry.areas]))
        _trees[registry] = cached
    return cached[1]


def touched_areas(shape: BaseGeometry, registry: AreaRegistry) -> set[str]:
    """The codes of the areas whose polygon `shape` intersects (touching borders included)."""
    if shape.is_empty or not registry.areas:
        return set()
    return {registry.areas[i].code for i in _area_tree(registry).query(shape, predicate="intersects")}


def affected_areas(content: Content, registry: AreaRegistry) -> set[str]:
    """The areas a warning concerns: its targets, everything under them and everything containing
    them, and every area a drawn polygon or circle touches."""
    codes: set[str] = set()
    for code in content.areas:
        codes.add(code)
        codes.update(registry.descendants(code))
        codes.update(registry.ancestors(code))
    for shape in drawn_geometries(content):
        codes |= touched_areas(shape, registry)
    return codes


def concerns_area(content: Content, registry: AreaRegistry, code: str) -> bool:
    """Whether the warning concerns the area `code` (see `affected_areas`)."""
    return code in affected_areas(content, registry)


def footprint_parts(content: Content, registry: AreaRegistry) -> list[BaseGeometry]:
    """The target areas' polygons and the drawn shapes: together, the footprint."""
    return [a.geometry for a in target_areas(content, registry)] + drawn_geometries(content)


def concerns_point(content: Content, registry: AreaRegistry, lat: float, lon: float) -> bool:
    """Whether the point lies in the warning's footprint (its border included)."""
    return any(shapely.intersects_xy(part, lon, lat) for part in footprint_parts(content, registry))


def footprint(content: Content, registry: AreaRegistry) -> BaseGeometry | None:
    """Everything a warning targets as one lon/lat geometry (None when nothing is known)."""
    parts = footprint_parts(content, registry)
    return unary_union(parts) if parts else None


def as_multipolygon(geometry: BaseGeometry) -> MultiPolygon:
    if isinstance(geometry, MultiPolygon):
        return geometry
    if isinstance(geometry, Polygon):
        return MultiPolygon([geometry])
    return MultiPolygon([g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon)])


def impact(content: Content, registry: AreaRegistry) -> dict[str, Any]:
    """Who a warning reaches before it is approved: the residents of every community it alerts
    (subscriptions are by community, so a community a drawn shape only grazes is alerted whole),
    those inside the warning's own footprint, and for each alerted community the share of it the
    footprint covers (below 1: over-alerting)."""
    targeted = set(content.areas)
    footprint = unary_union(footprint_parts(content, registry))
    communities: list[dict[str, Any]] = []
    residents, inside = 0, 0.0
    for code in sorted(c for c in affected_areas(content, registry) if c not in registry.children):
        area = registry.get(code)
        if area is None:
            continue
        covered = 1.0
        if not targeted & {code, *registry.ancestors(code)} and area.geometry.area:
            covered = min(1.0, area.geometry.intersection(footprint).area / area.geometry.area)
        people = registry.population(code)
        residents, inside = residents + people, inside + people * covered
        communities.append({"code": code, "population": people, "covered": round(covered, 3)})
    return {"residents": residents, "residents_inside": round(inside), "communities": communities}
