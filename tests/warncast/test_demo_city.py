"""Checks on the Lanjiang demo registry: hierarchy, geometry and tiling."""

from __future__ import annotations

from collections import Counter

import pytest
from shapely.geometry import Point, Polygon
from shapely.ops import unary_union

from warncast.demo_city import demo_areas, representative_point

LEVELS = ("city", "district", "street", "community")
CODE_LENGTH = {"city": 6, "district": 6, "street": 9, "community": 12}
# Coordinates are rounded to 1e-5 degrees; allow far less than that.
TOLERANCE = 1e-6


def _shape(area: dict) -> Polygon:
    return Polygon([(lon, lat) for lat, lon in area["polygon"]])


@pytest.fixture(scope="module")
def areas() -> list[dict]:
    return demo_areas()


@pytest.fixture(scope="module")
def by_code(areas: list[dict]) -> dict[str, dict]:
    return {area["code"]: area for area in areas}


@pytest.fixture(scope="module")
def children(areas: list[dict]) -> dict[str, list[dict]]:
    result: dict[str, list[dict]] = {}
    for area in areas:
        if area["parent"] is not None:
            result.setdefault(area["parent"], []).append(area)
    return result


def test_counts_per_level(areas: list[dict]) -> None:
    counts = Counter(area["level"] for area in areas)
    assert set(counts) == set(LEVELS)
    assert counts["city"] == 1
    assert counts["district"] == 4
    assert counts["street"] >= 14
    assert counts["community"] >= 48


def test_children_per_parent(children: dict[str, list[dict]], by_code: dict[str, dict]) -> None:
    assert len(children["990100"]) == 4
    for code, area in by_code.items():
        if area["level"] == "district":
            assert 3 <= len(children[code]) <= 5, code
        elif area["level"] == "street":
            assert 3 <= len(children[code]) <= 4, code
        elif area["level"] == "community":
            assert code not in children


def test_codes_and_hierarchy(areas: list[dict], by_code: dict[str, dict]) -> None:
    assert len(by_code) == len(areas), "codes must be unique"
    city = by_code["990100"]
    assert city["level"] == "city" and city["parent"] is None
    assert sorted(c for c, a in by_code.items() if a["level"] == "district") == [
        "990101",
        "990102",
        "990103",
        "990104",
    ]
    for area in areas:
        code, level = area["code"], area["level"]
        assert level in LEVELS
        assert code.isdigit() and len(code) == CODE_LENGTH[level], code
        if level == "city":
            continue
        parent = by_code[area["parent"]]
        assert LEVELS.index(parent["level"]) == LEVELS.index(level) - 1, code
        if level == "district":
            assert code.startswith("9901")
        else:
            assert code.startswith(parent["code"]), code
            assert 1 <= int(code[-3:]) <= 5, code


def test_names_present_and_unique_within_parent(children: dict[str, list[dict]], by_code: dict[str, dict]) -> None:
    assert by_code["990100"]["name"] == {"zh-CN": "澜江市", "en": "Lanjiang City"}
    suffixes = {
        "district": (("区",), ("District",)),
        "street": (("街道", "镇"), ("Subdistrict", "Town")),
        "community": (("社区", "村"), ("Community", "Village")),
    }
    for siblings in children.values():
        for locale in ("zh-CN", "en"):
            names = [area["name"][locale] for area in siblings]
            assert all(name.strip() for name in names)
            assert len(set(names)) == len(names), names
        for area in siblings:
            zh_suffixes, en_suffixes = suffixes[area["level"]]
            assert area["name"]["zh-CN"].endswith(zh_suffixes), area["name"]
            assert area["name"]["en"].endswith(en_suffixes), area["name"]


def test_polygons_are_closed_valid_and_in_the_city_box(areas: list[dict]) -> None:
    for area in areas:
        ring = area["polygon"]
        assert len(ring) >= 4 and len(ring) < 40, area["code"]
        assert ring[0] == ring[-1], area["code"]
        for lat, lon in ring:
            assert isinstance(lat, float) and isinstance(lon, float)
            assert round(lat, 5) == lat and round(lon, 5) == lon
            assert 30.54 <= lat <= 30.86 and 120.84 <= lon <= 121.26
        shape = _shape(area)
        assert shape.is_valid and shape.area > 0, area["code"]
        assert shape.exterior.is_ccw, "all rings wound the same way"


def test_children_tile_their_parent(children: dict[str, list[dict]], by_code: dict[str, dict]) -> None:
    for parent_code, kids in children.items():
        parent = _shape(by_code[parent_code])
        grown = parent.buffer(TOLERANCE)
        shapes = [_shape(kid) for kid in kids]
        for kid, shape in zip(kids, shapes, strict=True):
            assert grown.contains(shape), kid["code"]
        for i, first in enumerate(shapes):
            for second in shapes[i + 1 :]:
                assert first.intersection(second).area < 1e-9 * parent.area
        covered = unary_union(shapes).intersection(parent).area
        assert covered / parent.area > 0.999, parent_code


def test_every_level_tiles_the_city(areas: list[dict], by_code: dict[str, dict]) -> None:
    city = _shape(by_code["990100"])
    for level in LEVELS[1:]:
        total = sum(_shape(a).area for a in areas if a["level"] == level)
        assert total == pytest.approx(city.area, rel=1e-6), level


def test_deterministic() -> None:
    assert demo_areas() == demo_areas()


def test_result_is_a_fresh_copy() -> None:
    first = demo_areas()
    first[0]["name"]["en"] = "changed"
    first[0]["polygon"].clear()
    second = demo_areas()
    assert second[0]["name"]["en"] == "Lanjiang City"
    assert second[0]["polygon"]


def test_representative_point_is_inside(areas: list[dict]) -> None:
    for area in areas:
        lat, lon = representative_point(area["polygon"])
        assert _shape(area).contains(Point(lon, lat)), area["code"]
