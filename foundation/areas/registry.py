"""The area registry: city → district → street/town → community, each with a code and polygon.

The registry is small (thousands of areas) and changes rarely, so it lives in Redis as one hash and
in memory as shapely geometries with a spatial index; `refresh` reloads it when the version
counter moved (another process loaded new data).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from shapely.geometry import Polygon

from foundation.areas.grid import AreaGrid
from foundation.store import keys

LEVELS = ("city", "district", "street", "community")


@dataclass(frozen=True)
class Area:
    code: str
    level: str
    parent: str | None
    name: dict[str, str]  # BCP 47 tag -> name
    polygon: tuple[tuple[float, float], ...]  # (lat, lon), closed
    geometry: Polygon = field(compare=False, repr=False)
    point: tuple[float, float] = (0.0, 0.0)  # representative point inside the area
    population: int = 0  # residents (a community's own; a larger area's is the sum of its communities)

    def name_in(self, tag: str) -> str:
        return self.name.get(tag) or self.name.get("en") or next(iter(self.name.values()))

    def as_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "level": self.level,
            "parent": self.parent,
            "name": self.name,
            "lat": self.point[0],
            "lon": self.point[1],
        }

    def as_record(self) -> dict[str, object]:
        return {
            "code": self.code,
            "level": self.level,
            "parent": self.parent,
            "name": self.name,
            "polygon": [list(p) for p in self.polygon],
            **({"population": self.population} if self.population else {}),
        }


def area_from_record(record: dict) -> Area:
    polygon = tuple((float(lat), float(lon)) for lat, lon in record["polygon"])
    geometry = Polygon([(lon, lat) for lat, lon in polygon])  # shapely: x = lon, y = lat
    rep = geometry.representative_point()
    return Area(
        code=str(record["code"]),
        level=record["level"],
        parent=record.get("parent"),
        name=dict(record["name"]),
        polygon=polygon,
        geometry=geometry,
        point=(round(rep.y, 6), round(rep.x, 6)),
        population=max(0, int(record.get("population") or 0)),
    )


class AreaRegistry:
    def __init__(self, areas: Iterable[Area] = ()) -> None:
        self.version = -1
        self._set(list(areas))

    def _set(self, areas: list[Area]) -> None:
        order = {level: i for i, level in enumerate(LEVELS)}
        self.areas = sorted(areas, key=lambda a: (order.get(a.level, 9), a.code))
        self.by_code = {a.code: a for a in self.areas}
        self.children: dict[str, list[str]] = {}
        for a in self.areas:
            if a.parent:
                self.children.setdefault(a.parent, []).append(a.code)
        self._grid = AreaGrid([a.geometry for a in self.areas])
        self._population: dict[str, int] = {}
        for a in reversed(self.areas):  # communities first: a parent's sum is ready when it is reached
            below = self.children.get(a.code)
            self._population[a.code] = sum(self._population.get(c, 0) for c in below) if below else a.population

    def population(self, code: str) -> int:
        """The residents of an area: a community's own figure, or the sum over its communities."""
        return self._population.get(code, 0)

    def __len__(self) -> int:
        return len(self.areas)

    def get(self, code: str) -> Area | None:
        return self.by_code.get(code)

    def containing(self, lat: float, lon: float) -> list[Area]:
        """Every area that contains the point, most general first."""
        return [self.areas[i] for i in self._grid.containing(lon, lat)]

    def descendants(self, code: str) -> list[str]:
        """All codes under `code` (not including it), breadth first."""
        out: list[str] = []
        queue = list(self.children.get(code, []))
        while queue:
            current = queue.pop(0)
            out.append(current)
            queue.extend(self.children.get(current, []))
        return out

    def ancestors(self, code: str) -> list[str]:
        out: list[str] = []
        area = self.by_code.get(code)
        while area and area.parent:
            out.append(area.parent)
            area = self.by_code.get(area.parent)
        return out

    def leaves_under(self, codes: Iterable[str]) -> set[str]:
        """The communities (leaves) covered by any of `codes`."""
        out: set[str] = set()
        for code in codes:
            below = [code, *self.descendants(code)]
            out.update(c for c in below if c not in self.children)
        return out

    async def refresh(self, redis: aioredis.Redis) -> None:
        version = int(await redis.get(keys.AREAS_VERSION) or 0)
        if version == self.version:
            return
        raw = await redis.hgetall(keys.AREAS)
        self._set([area_from_record(json.loads(v)) for v in raw.values()])
        self.version = version


async def store_areas(redis: aioredis.Redis, records: list[dict]) -> int:
    """Replace the registry with `records` (validated), bumping the version for other processes."""
    for r in records:
        population = r.get("population", 0)
        if isinstance(population, bool) or not isinstance(population, int) or population < 0:
            raise ValueError(
                f"area {r.get('code')}: population must be a whole number of residents, got {population!r}"
            )
    areas = [area_from_record(r) for r in records]
    codes = {a.code for a in areas}
    for a in areas:
        if a.level not in LEVELS:
            raise ValueError(f"area {a.code}: unknown level {a.level!r}")
        if a.parent and a.parent not in codes:
            raise ValueError(f"area {a.code}: parent {a.parent} is not in the registry")
        if not a.geometry.is_valid:
            raise ValueError(f"area {a.code}: polygon is not valid")
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.AREAS)
        pipe.hset(keys.AREAS, mapping={a.code: json.dumps(a.as_record(), ensure_ascii=False) for a in areas})
        pipe.incr(keys.AREAS_VERSION)
        await pipe.execute()
    return len(areas)
