"""Deterministic demo area registry for the fictional city 澜江市 (Lanjiang).

The registry follows the domain model: city → district → street/town →
community, each area with a GB/T 2260-style code (prefix 99, unused by real
provinces) and a polygon of ``[lat, lon]`` pairs.

How the geometry is made:

1. A hand-drawn city outline (with a river mouth notched into the east side)
   is cut into four districts along hand-drawn, slightly wiggly lines.
2. Districts are cut into streets/towns and those into communities with
   Lloyd-relaxed Voronoi cells from seeded random points, clipped to the parent.
3. All community boundaries are then noded together on a 1e-5° grid and every
   higher level is rebuilt as the union of its children.  That last step is
   what keeps the tiling exact *after* rounding to five decimals: neighbours
   share identical vertices, and a parent carries every vertex its children
   put on its boundary.
"""

from __future__ import annotations

import copy
import functools
import math
import random
import zlib
from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPoint, Point, Polygon
from shapely.geometry.polygon import orient
from shapely.ops import split

# Output precision: five decimals of a degree (about 1 m).
_GRID = 1e-5
_SCALE = 100_000  # grid units per degree; exact integer arithmetic uses these

# Shapely works in (x, y) = (lon, lat); everything below is in that order.
_CITY_OUTLINE: tuple[tuple[float, float], ...] = (
    (120.872, 30.566),
    (120.935, 30.552),
    (121.010, 30.561),
    (121.082, 30.556),
    (121.150, 30.571),
    (121.214, 30.590),
    (121.238, 30.632),
    (121.231, 30.676),
    # The Lan river mouth, a narrow notch reaching inland from the east.
    (121.172, 30.690),
    (121.118, 30.700),
    (121.117, 30.703),
    (121.170, 30.710),
    (121.236, 30.714),
    (121.228, 30.758),
    (121.196, 30.812),
    (121.140, 30.842),
    (121.072, 30.848),
    (121.004, 30.836),
    (120.948, 30.845),
    (120.893, 30.822),
    (120.858, 30.780),
    (120.866, 30.726),
    (120.852, 30.672),
    (120.861, 30.612),
)
# A north-south trunk road separating the west from the east.
_WEST_EAST_CUT = (
    (121.035, 30.50),
    (121.028, 30.600),
    (121.046, 30.660),
    (121.020, 30.720),
    (121.002, 30.790),
    (121.012, 30.90),
)
# A canal across the west half.
_WEST_CUT = ((120.80, 30.665), (120.900, 30.672), (120.950, 30.690), (121.060, 30.680))
# The river itself, running up the notch and on inland to the trunk road.
_RIVER_CUT = (
    (121.30, 30.7015),
    (121.118, 30.7015),
    (121.085, 30.697),
    (121.050, 30.703),
    (120.99, 30.700),
)

# District names and their streets/towns, keyed by the piece of the city they
# get: "se", "sw", "nw", "ne".  Codes follow this order (990101 ... 990104).
_DISTRICTS: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "se",
        "滨江区",
        "Binjiang District",
        (
            ("江湾街道", "Jiangwan Subdistrict"),
            ("望潮街道", "Wangchao Subdistrict"),
            ("临澜街道", "Linlan Subdistrict"),
            ("码头街道", "Matou Subdistrict"),
        ),
    ),
    (
        "sw",
        "澜湖区",
        "Lanhu District",
        (
            ("湖滨街道", "Hubin Subdistrict"),
            ("柳岸街道", "Liu'an Subdistrict"),
            ("荷塘镇", "Hetang Town"),
        ),
    ),
    (
        "nw",
        "云岭区",
        "Yunling District",
        (
            ("松坪街道", "Songping Subdistrict"),
            ("翠屏街道", "Cuiping Subdistrict"),
            ("石门镇", "Shimen Town"),
            ("竹溪镇", "Zhuxi Town"),
        ),
    ),
    (
        "ne",
        "青沙区",
        "Qingsha District",
        (
            ("青沙街道", "Qingsha Subdistrict"),
            ("白鹭镇", "Bailu Town"),
            ("沙港镇", "Shagang Town"),
            ("芦花镇", "Luhua Town"),
            ("东滩镇", "Dongtan Town"),
        ),
    ),
)

# Community / village name stems, handed out in order so every name is unique.
_COMMUNITY_STEMS: tuple[tuple[str, str], ...] = (
    ("望湖", "Wanghu"),
    ("春晖", "Chunhui"),
    ("桂园", "Guiyuan"),
    ("明珠", "Mingzhu"),
    ("新桥", "Xinqiao"),
    ("锦绣", "Jinxiu"),
    ("紫荆", "Zijing"),
    ("长乐", "Changle"),
    ("和平", "Heping"),
    ("东升", "Dongsheng"),
    ("花港", "Huagang"),
    ("枫林", "Fenglin"),
    ("清泉", "Qingquan"),
    ("梅苑", "Meiyuan"),
    ("兰亭", "Lanting"),
    ("金沙", "Jinsha"),
    ("银杏", "Yinxing"),
    ("晓月", "Xiaoyue"),
    ("观澜", "Guanlan"),
    ("半山", "Banshan"),
    ("石桥", "Shiqiao"),
    ("茶园", "Chayuan"),
    ("杨柳", "Yangliu"),
    ("桃源", "Taoyuan"),
    ("朝阳", "Chaoyang"),
    ("文昌", "Wenchang"),
    ("福寿", "Fushou"),
    ("渔港", "Yugang"),
    ("潮音", "Chaoyin"),
    ("凤鸣", "Fengming"),
    ("云栖", "Yunqi"),
    ("翠竹", "Cuizhu"),
    ("南塘", "Nantang"),
    ("北苑", "Beiyuan"),
    ("西溪", "Xixi"),
    ("鹿鸣", "Luming"),
    ("安澜", "Anlan"),
    ("永宁", "Yongning"),
    ("瑞丰", "Ruifeng"),
    ("盐仓", "Yancang"),
    ("芦荡", "Ludang"),
    ("白塔", "Baita"),
    ("柏树", "Baishu"),
    ("荷花", "Hehua"),
    ("杏林", "Xinglin"),
    ("燕归", "Yangui"),
    ("丰收", "Fengshou"),
    ("新塘", "Xintang"),
    ("上林", "Shanglin"),
    ("下沙", "Xiasha"),
    ("渡口", "Dukou"),
    ("古井", "Gujing"),
    ("莲花", "Lianhua"),
    ("鸥鹭", "Oulu"),
    ("晴川", "Qingchuan"),
    ("云水", "Yunshui"),
    ("海晏", "Haiyan"),
    ("槐荫", "Huaiyin"),
    ("蓬莱", "Penglai"),
    ("玉泉", "Yuquan"),
)

_LLOYD_ROUNDS = 3
_MAX_ATTEMPTS = 300


def _residents(code: str, name: dict[str, str]) -> int:
    """A plausible, fixed population: urban communities 6,000-18,000 residents, villages 1,500-4,500."""
    spread = zlib.crc32(code.encode()) % 1000 / 1000
    if name["zh-CN"].endswith("村"):
        return int(round(1500 + 3000 * spread, -1))
    return int(round(6000 + 12000 * spread, -1))


def demo_areas() -> list[dict]:
    """Return the Lanjiang registry, parents before children; identical on every call (worked out
    once per process: a copy of it, so a caller may change what it gets)."""
    return copy.deepcopy(_demo_areas())


@functools.cache
def _demo_areas() -> list[dict]:
    city = Polygon(_CITY_OUTLINE)
    quarters = _district_pieces(city)

    # Build the tree top-down with float geometry: (code, level, parent, name, polygon).
    nodes: list[tuple[str, str, str | None, dict[str, str], Polygon]] = [
        ("990100", "city", None, {"zh-CN": "澜江市", "en": "Lanjiang City"}, city),
    ]
    stems = iter(_COMMUNITY_STEMS)
    street_no = 0
    for d_index, (key, d_zh, d_en, streets) in enumerate(_DISTRICTS, start=1):
        d_code = f"9901{d_index:02d}"
        district = quarters[key]
        nodes.append((d_code, "district", "990100", {"zh-CN": d_zh, "en": d_en}, district))
        street_polys = _voronoi_split(district, len(streets), seed=int(d_code))
        for s_index, ((s_zh, s_en), street) in enumerate(zip(streets, street_polys, strict=True), start=1):
            s_code = f"{d_code}{s_index:03d}"
            nodes.append((s_code, "street", d_code, {"zh-CN": s_zh, "en": s_en}, street))
            is_town = s_zh.endswith("镇")
            count = 3 + street_no % 2  # alternate 3 and 4 communities per street
            street_no += 1
            for c_index, piece in enumerate(_voronoi_split(street, count, seed=int(s_code)), start=1):
                zh, en = next(stems)
                name = (
                    {"zh-CN": f"{zh}村", "en": f"{en} Village"}
                    if is_town
                    else {"zh-CN": f"{zh}社区", "en": f"{en} Community"}
                )
                nodes.append((f"{s_code}{c_index:03d}", "community", s_code, name, piece))

    polygons = _snap_hierarchy(nodes)
    return [
        {
            "code": code,
            "level": level,
            "parent": parent,
            "name": dict(name),
            "polygon": _to_latlon(polygons[code]),
            **({"population": _residents(code, name)} if level == "community" else {}),
        }
        for code, level, parent, name, _ in nodes
    ]


def representative_point(polygon: Sequence[Sequence[float]]) -> tuple[float, float]:
    """Return a ``(lat, lon)`` point strictly inside a ``[[lat, lon], ...]`` polygon."""
    point = Polygon([(lon, lat) for lat, lon in polygon]).representative_point()
    return (point.y, point.x)


def _district_pieces(city: Polygon) -> dict[str, Polygon]:
    """Cut the city into the four district quarters along the hand-drawn lines."""
    west, east = _split_in_two(city, _WEST_EAST_CUT, by="x")
    north_west, south_west = _split_in_two(west, _WEST_CUT, by="y")
    north_east, south_east = _split_in_two(east, _RIVER_CUT, by="y")
    return {"nw": north_west, "sw": south_west, "ne": north_east, "se": south_east}


def _split_in_two(polygon: Polygon, line: Sequence[tuple[float, float]], *, by: str) -> tuple[Polygon, Polygon]:
    """Split along ``line``; return (west, east) for by="x" or (north, south) for by="y"."""
    pieces = [p for p in split(polygon, LineString(line)).geoms if isinstance(p, Polygon)]
    if len(pieces) != 2:
        raise RuntimeError(f"cut produced {len(pieces)} pieces, expected 2")
    if by == "x":
        first, second = sorted(pieces, key=lambda p: p.centroid.x)
    else:
        first, second = sorted(pieces, key=lambda p: -p.centroid.y)
    return first, second


def _voronoi_split(parent: Polygon, count: int, *, seed: int) -> list[Polygon]:
    """Cut ``parent`` into ``count`` simple, roughly even pieces, in reading order.

    Seeded per parent so the result never depends on call order; a layout whose
    clipped cells fall apart (MultiPolygon) or are lopsided is simply retried.
    """
    for attempt in range(_MAX_ATTEMPTS):
        rng = random.Random(seed * 1000 + attempt)
        points = _sample_points(parent, count, rng)
        pieces: list = []
        for _ in range(_LLOYD_ROUNDS + 1):
            cells = shapely.voronoi_polygons(MultiPoint(points), extend_to=parent).geoms
            pieces = [parent.intersection(cell) for cell in cells]
            # Lloyd relaxation: move each seed to its cell's centroid for even sizes.
            points = [piece.centroid for piece in pieces if not piece.is_empty]
        if _acceptable(pieces, parent, count):
            # Reading order (north to south, then west to east) makes codes predictable.
            return sorted(pieces, key=lambda p: (-round(p.centroid.y, 2), p.centroid.x))
    raise RuntimeError(f"no acceptable split into {count} pieces for seed {seed}")


def _sample_points(parent: Polygon, count: int, rng: random.Random) -> list[Point]:
    """Draw ``count`` uniform random points inside ``parent`` (rejection sampling)."""
    min_x, min_y, max_x, max_y = parent.bounds
    points: list[Point] = []
    while len(points) < count:
        point = Point(rng.uniform(min_x, max_x), rng.uniform(min_y, max_y))
        if parent.contains(point):
            points.append(point)
    return points


def _acceptable(pieces: list, parent: Polygon, count: int) -> bool:
    """A split is usable if it gives ``count`` simple, not-too-small, not-too-busy polygons."""
    if len(pieces) != count:
        return False
    fair_share = parent.area / count
    return all(
        isinstance(p, Polygon) and not p.interiors and p.area > 0.5 * fair_share and len(p.exterior.coords) <= 24
        for p in pieces
    )


def _snap_hierarchy(nodes: list[tuple[str, str, str | None, dict[str, str], Polygon]]) -> dict[str, Polygon]:
    """Node all community edges on the output grid, then rebuild parents as unions.

    Returns the final polygon for every code.
    """
    leaves = [(code, poly) for code, level, _, _, poly in nodes if level == "community"]
    # One noded arrangement of every community edge: shared edges become identical.
    linework = shapely.unary_union([poly.exterior for _, poly in leaves], grid_size=_GRID)
    linework = shapely.transform(linework, _pin_to_outline)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(linework)))
    owned: dict[str, list[Polygon]] = {code: [] for code, _ in leaves}
    for face in faces:
        inside = face.representative_point()
        owner = next((code for code, poly in leaves if poly.contains(inside)), None)
        if owner is None:  # a snapping sliver on the boundary: give it to the best overlap
            owner = max(leaves, key=lambda leaf: leaf[1].intersection(face).area)[0]
        owned[owner].append(face)

    children: dict[str, list[str]] = {}
    for code, _, parent, _, _ in nodes:
        if parent is not None:
            children.setdefault(parent, []).append(code)

    result: dict[str, Polygon] = {}
    depth = {"community": 0, "street": 1, "district": 2, "city": 3}
    # Deepest levels first, so each parent is built from finished children.
    for code, level, _, _, _ in sorted(nodes, key=lambda n: depth[n[1]]):
        if level == "community":
            parts = owned[code]
            merged = parts[0] if len(parts) == 1 else shapely.unary_union(parts, grid_size=_GRID)
        else:
            merged = shapely.unary_union([result[c] for c in children[code]], grid_size=_GRID)
            if isinstance(merged, Polygon):  # anything else is refused just below
                merged = _drop_collinear(merged)
        if not isinstance(merged, Polygon) or merged.interiors or not merged.is_valid:
            raise RuntimeError(f"area {code} is not a simple polygon after snapping")
        result[code] = orient(merged, sign=1.0)
    return result


def _pin_to_outline(coords: np.ndarray) -> np.ndarray:
    """Move grid points lying on a city-outline edge to grid points exactly on it.

    Where a cut meets the outline, snapping its crossing point to the grid
    leaves it a fraction of a metre off the edge, so the city polygon would
    have to carry every such point.  The outline vertices sit on a 0.001°
    grid, so each edge passes exactly through a run of 1e-5° grid points;
    moving the crossing to the nearest of them (a few metres at most) keeps
    it exactly on the edge and lets the parents drop it as collinear.
    """
    outline = [(round(x * _SCALE), round(y * _SCALE)) for x, y in _CITY_OUTLINE]
    edges = list(zip(outline, outline[1:] + outline[:1], strict=True))
    pinned = coords.copy()
    for i, (x, y) in enumerate(coords):
        px, py = round(x * _SCALE), round(y * _SCALE)
        for (ax, ay), (bx, by) in edges:
            dx, dy = bx - ax, by - ay
            length2 = dx * dx + dy * dy
            t = ((px - ax) * dx + (py - ay) * dy) / length2
            off = abs((px - ax) * dy - (py - ay) * dx) / math.sqrt(length2)
            if 0 < t < 1 and off < 1.5:
                steps = math.gcd(dx, dy)
                k = min(max(round(t * steps), 1), steps - 1)
                px, py = ax + k * dx // steps, ay + k * dy // steps
                break
        pinned[i] = (px / _SCALE, py / _SCALE)
    return pinned


def _drop_collinear(polygon: Polygon) -> Polygon:
    """Remove vertices exactly collinear with their neighbours (exact, in grid units)."""
    ring = [(round(x * _SCALE), round(y * _SCALE)) for x, y in polygon.exterior.coords[:-1]]
    kept = [
        (x, y)
        for (px, py), (x, y), (nx, ny) in zip(ring[-1:] + ring[:-1], ring, ring[1:] + ring[:1], strict=True)
        if (x - px) * (ny - y) - (y - py) * (nx - x) != 0
    ]
    return Polygon([(x / _SCALE, y / _SCALE) for x, y in kept])


def _to_latlon(polygon: Polygon) -> list[list[float]]:
    """Closed ``[[lat, lon], ...]`` ring rounded to the output grid."""
    return [[round(y, 5), round(x, 5)] for x, y in polygon.exterior.coords]
