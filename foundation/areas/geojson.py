"""The registry's areas as GeoJSON for the maps, simplified for the zoom level they are drawn at.

A community ring drawn at city zoom needs a handful of points, not the surveyed hundreds: each ring
is thinned with Douglas-Peucker to a tolerance of about one screen pixel at the requested zoom (Web
Mercator, 256-pixel tiles), never below 4 points, so it stays a closed ring. Rings are not
re-checked for validity: these are drawings, the registry's own polygons stay the truth for coverage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from foundation.areas.registry import Area

MIN_ZOOM, MAX_ZOOM = 0, 18
PIXELS = 1.0  # the tolerance: one screen pixel
DIGITS = 6  # ~10 cm; more only makes the file bigger

Point = tuple[float, float]  # (lat, lon)


def tolerance_deg(zoom: int) -> float:
    """Degrees of longitude in one screen pixel at `zoom` (256-pixel tiles)."""
    return 360.0 / (256 * 2**zoom) * PIXELS


def simplify(ring: Sequence[Point], tolerance: float) -> list[Point]:
    """Douglas-Peucker on a closed ring (first point == last); keeps at least 4 points."""
    points = [(float(a), float(b)) for a, b in ring]
    if tolerance <= 0 or len(points) <= 4:
        return points
    # Split the ring at its first point and the point farthest from it: two open lines.
    far = max(range(1, len(points) - 1), key=lambda i: _dist2(points[0], points[i]))
    first = _douglas_peucker(points[: far + 1], tolerance)
    second = _douglas_peucker(points[far:], tolerance)
    out = first[:-1] + second
    return out if len(out) >= 4 else _keep_four(points)


def _douglas_peucker(line: list[Point], tolerance: float) -> list[Point]:
    keep = [False] * len(line)
    keep[0] = keep[-1] = True
    stack = [(0, len(line) - 1)]
    limit = tolerance * tolerance
    while stack:
        start, end = stack.pop()
        worst, worst_d = -1, limit
        for i in range(start + 1, end):
            d = _segment_dist2(line[i], line[start], line[end])
            if d > worst_d:
                worst, worst_d = i, d
        if worst >= 0:
            keep[worst] = True
            stack.append((start, worst))
            stack.append((worst, end))
    return [p for p, k in zip(line, keep, strict=True) if k]


def _keep_four(points: list[Point]) -> list[Point]:
    """The first point, two spread over the ring, and the closing point."""
    n = len(points) - 1
    return [points[0], points[n // 3], points[2 * n // 3], points[0]]


def _dist2(a: Point, b: Point) -> float:
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2


def _segment_dist2(p: Point, a: Point, b: Point) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    if length2 == 0:
        return _dist2(p, a)
    t = max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2))
    return _dist2(p, (a[0] + t * dx, a[1] + t * dy))


def feature_collection(areas: Iterable[Area], zoom: int | None, tag: str) -> dict[str, object]:
    """Every area as a GeoJSON Feature ([lon, lat] order), properties: code, level, parent, name
    (in `tag`), label point. `zoom` None: the raw rings."""
    tolerance = 0.0 if zoom is None else tolerance_deg(zoom)
    features = []
    for area in areas:
        ring = simplify(area.polygon, tolerance) if tolerance else list(area.polygon)
        features.append(
            {
                "type": "Feature",
                "id": area.code,
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[round(lon, DIGITS), round(lat, DIGITS)] for lat, lon in ring]],
                },
                "properties": {
                    "code": area.code,
                    "level": area.level,
                    "parent": area.parent,
                    "name": area.name_in(tag),
                    "label": [area.point[0], area.point[1]],
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}
