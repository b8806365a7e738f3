"""Which warnings concern a place: an area of the registry or a point.

A warning concerns an area when one of its target areas is that area, lies under it or contains
it (a district warning covers the screens of its communities; a district feed carries warnings for
any community in the district and for the whole city), or when a drawn polygon or circle overlaps
the area's polygon.
"""

from __future__ import annotations

import math

from shapely import affinity
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from foundation.areas.registry import AreaRegistry
from publisher.model import Circle, Content

KM_PER_DEGREE = 111.32


def circle_geometry(circle: Circle) -> Polygon:
    """A circle of radius_km as a lon/lat ellipse (degrees of longitude shrink with latitude)."""
    radius = circle.radius_km / KM_PER_DEGREE
    squeeze = max(math.cos(math.radians(circle.lat)), 0.01)
    return affinity.scale(Point(circle.lon, circle.lat).buffer(radius, 32), xfact=1 / squeeze, yfact=1)


def drawn_geometries(content: Content) -> list[BaseGeometry]:
    shapes: list[BaseGeometry] = [Polygon([(lon, lat) for lat, lon in poly]) for poly in content.polygons]
    return shapes + [circle_geometry(c) for c in content.circles]


def related_codes(registry: AreaRegistry, code: str) -> set[str]:
    """The area, everything under it and everything containing it."""
    return {code, *registry.descendants(code), *registry.ancestors(code)}


def concerns_area(content: Content, registry: AreaRegistry, code: str, related: set[str] | None = None) -> bool:
    related = related if related is not None else related_codes(registry, code)
    if related.intersection(content.areas):
        return True
    area = registry.get(code)
    return area is not None and any(shape.intersects(area.geometry) for shape in drawn_geometries(content))


def concerns_point(content: Content, registry: AreaRegistry, lat: float, lon: float) -> bool:
    containing = {a.code for a in registry.containing(lat, lon)}
    if containing.intersection(content.areas):
        return True
    point = Point(lon, lat)
    return any(shape.intersects(point) for shape in drawn_geometries(content))


def footprint(content: Content, registry: AreaRegistry) -> BaseGeometry | None:
    """Everything a warning targets as one lon/lat geometry (None when nothing is known)."""
    shapes = [a.geometry for code in content.areas if (a := registry.get(code)) is not None]
    shapes += drawn_geometries(content)
    if not shapes:
        return None
    return unary_union(shapes)


def as_multipolygon(geometry: BaseGeometry) -> MultiPolygon:
    if isinstance(geometry, MultiPolygon):
        return geometry
    if isinstance(geometry, Polygon):
        return MultiPolygon([geometry])
    return MultiPolygon([g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon)])
