"""Point-in-area lookups give the same answer by the vectorised path and by the tree."""

from __future__ import annotations

from publisher import areas
from publisher.areas import AreaRegistry, area_from_record
from publisher.demo_city import demo_areas


def test_vectorised_and_tree_lookups_agree_everywhere_including_borders(monkeypatch):
    records = demo_areas()
    small = AreaRegistry([area_from_record(r) for r in records])
    monkeypatch.setattr(areas, "VECTOR_LOOKUP_MAX", 0)  # as a registry too big for the vector path
    big = AreaRegistry([area_from_record(r) for r in records])
    assert small._all is not None and big._all is None
    minx, miny, maxx, maxy = small.by_code["990100"].geometry.bounds
    points = [
        (miny + (maxy - miny) * i / 23, minx + (maxx - minx) * j / 23) for i in range(-1, 25) for j in range(-1, 25)
    ]
    corner = small.by_code[next(a.code for a in small.areas if a.level == "community")].polygon[0]
    points.append(corner)  # on a border: both count it as inside
    found_any = 0
    for lat, lon in points:
        by_vector = [a.code for a in small.containing(lat, lon)]
        assert by_vector == [a.code for a in big.containing(lat, lon)], (lat, lon)
        found_any += bool(by_vector)
    assert 0 < found_any < len(points)  # inside and outside the city were both tried
    assert len(small.containing(*corner)) >= 2
