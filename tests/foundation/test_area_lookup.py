"""Point-in-area lookups through the grid give exactly what testing every polygon gives."""

from __future__ import annotations

import random

import shapely
from shapely.geometry import Polygon

from foundation.areas.grid import AreaGrid
from foundation.areas.registry import AreaRegistry, area_from_record
from warncast.demo_city import demo_areas


def brute_force(registry: AreaRegistry, lat: float, lon: float) -> list[str]:
    return [a.code for a in registry.areas if shapely.intersects_xy(a.geometry, lon, lat)]


def test_grid_agrees_with_every_polygon_tested_inside_outside_and_on_borders():
    registry = AreaRegistry([area_from_record(r) for r in demo_areas()])
    minx, miny, maxx, maxy = registry.by_code["990100"].geometry.bounds
    rng = random.Random(7)
    points = [(rng.uniform(miny - 0.05, maxy + 0.05), rng.uniform(minx - 0.05, maxx + 0.05)) for _ in range(3000)]
    for area in registry.areas:  # every vertex, every edge's midpoint: on borders, where cells are crossed
        ring = area.polygon
        points += list(ring)
        points += [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in zip(ring, ring[1:], strict=False)]
    points += [(miny, minx), (maxy, maxx), (maxy + 1e-12, maxx)]  # the city's own corners, and just outside
    inside = 0
    for lat, lon in points:
        found = [a.code for a in registry.containing(lat, lon)]
        assert found == brute_force(registry, lat, lon), (lat, lon)
        inside += bool(found)
    assert 1000 < inside < len(points)  # inside and outside the city were both tried
    corner = registry.by_code[next(a.code for a in registry.areas if a.level == "community")].polygon[0]
    assert len(registry.containing(*corner)) >= 2  # a shared corner is in every area that meets there


def test_grid_on_shapes_that_cross_many_cells_and_leave_holes():
    ring = Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], holes=[[(3, 3), (7, 3), (7, 7), (3, 7)]])
    triangle = Polygon([(0, 0), (10, 0), (0, 10)])
    sliver = Polygon([(0, 5), (10, 5.000001), (10, 5.000002), (0, 5.000001)])
    shapes = [ring, triangle, sliver]
    grid = AreaGrid(shapes, cells=16)
    rng = random.Random(3)
    for _ in range(5000):
        x, y = rng.uniform(-1, 11), rng.uniform(-1, 11)
        expected = [i for i, shape in enumerate(shapes) if shapely.intersects_xy(shape, x, y)]
        assert grid.containing(x, y) == expected, (x, y)
    assert grid.containing(5, 5) == [1]  # in the hole of the ring, inside the triangle
    assert grid.containing(3, 5) == [0, 1]  # on the hole's edge
    assert grid.containing(10, 5.0000015) == [0, 2]


def test_empty_registry_finds_nothing():
    assert AreaGrid([]).containing(0.0, 0.0) == []
    assert AreaRegistry([]).containing(31.2, 121.4) == []
