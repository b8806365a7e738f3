"""Point-in-area lookup through a grid laid over the areas' bounds.

Most of a city lies well inside its areas: for a grid cell that an area covers whole, the answer
is the same for every point in it. Only in the cells an area's border crosses is the point tested
against those areas' polygons (in C, all at once). A cell is worked out the first time a point
falls in it and kept, so a registry is ready at once (a process starts, or a test sets up, without
laying the whole grid) and a citizen report's or a resident's lookup is, after the first in its
cell, a little arithmetic and a list read instead of a polygon test per area of the city.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy
import shapely
from shapely import STRtree
from shapely.geometry import Polygon

CELLS = 64  # per side: 4,096 cells; borders cross a third of those the demo city covers


class _Cell:
    __slots__ = ("covered", "crossing", "geometries")

    def __init__(self, covered: list[int], crossing: list[int], geometries: Sequence[Polygon]) -> None:
        self.covered = covered  # areas that contain the whole cell
        self.crossing = numpy.array(crossing, dtype=numpy.intp)  # areas whose border crosses it
        self.geometries = numpy.array([geometries[i] for i in crossing], dtype=object)


class AreaGrid:
    """Which of `geometries` (x = lon, y = lat) contain a point, borders included, as their indices."""

    def __init__(self, geometries: Sequence[Polygon], cells: int = CELLS) -> None:
        self.cells = cells
        self._geometries = list(geometries)
        self._lookup: dict[int, _Cell | None] = {}  # cell index (row * cells + col) -> its areas; None: none
        if not geometries:
            self.min_x = self.min_y = 1.0
            self.max_x = self.max_y = 0.0  # no point is inside
            return
        self.min_x, self.min_y, self.max_x, self.max_y = (float(v) for v in shapely.total_bounds(geometries))
        self._width = max(self.max_x - self.min_x, 1e-9)
        self._height = max(self.max_y - self.min_y, 1e-9)
        self._per_x, self._per_y = cells / self._width, cells / self._height
        shapely.prepare(self._geometries)
        self._tree = STRtree(self._geometries)

    def containing(self, lon: float, lat: float) -> list[int]:
        """Indices of the geometries that contain or touch the point, in ascending order."""
        if not (self.min_x <= lon <= self.max_x and self.min_y <= lat <= self.max_y):
            return []
        col = min(int((lon - self.min_x) * self._per_x), self.cells - 1)
        row = min(int((lat - self.min_y) * self._per_y), self.cells - 1)
        index = row * self.cells + col
        if index in self._lookup:
            cell = self._lookup[index]
        else:
            cell = self._lookup[index] = self._cell(row, col)
        if cell is None:
            return []
        if not len(cell.crossing):
            return list(cell.covered)
        hits = cell.crossing[shapely.intersects_xy(cell.geometries, lon, lat)].tolist()
        return sorted(cell.covered + hits) if cell.covered else hits

    def _cell(self, row: int, col: int) -> _Cell | None:
        # The cell is widened by far more than the rounding of the arithmetic that picks a point's
        # cell, so a point near a cell's edge is still judged by a box that holds it.
        margin = max(self._width, self._height) / self.cells * 1e-6
        step_x, step_y = self._width / self.cells, self._height / self.cells
        box = shapely.box(
            self.min_x + col * step_x - margin,
            self.min_y + row * step_y - margin,
            self.min_x + (col + 1) * step_x + margin,
            self.min_y + (row + 1) * step_y + margin,
        )
        touched = {int(i) for i in self._tree.query(box, predicate="intersects")}
        if not touched:
            return None
        whole = {int(i) for i in self._tree.query(box, predicate="within")}  # the box within the area
        return _Cell(sorted(whole), sorted(touched - whole), self._geometries)
