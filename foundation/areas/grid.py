"""Point-in-area lookup through a grid laid over the areas' bounds.

Most of a city lies well inside its areas: for a grid cell that an area covers whole, the answer
is known before any point arrives. Only in the cells an area's border crosses is the point tested
against those areas' polygons (in C, all at once). A citizen report's or a resident's lookup is a
little arithmetic and a list read, instead of a polygon test per area of the city.
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
        self._lookup: dict[int, _Cell] = {}
        if not geometries:
            self.min_x = self.min_y = 1.0
            self.max_x = self.max_y = 0.0  # no point is inside
            return
        self.min_x, self.min_y, self.max_x, self.max_y = (float(v) for v in shapely.total_bounds(geometries))
        width = max(self.max_x - self.min_x, 1e-9)
        height = max(self.max_y - self.min_y, 1e-9)
        self._per_x, self._per_y = cells / width, cells / height
        # Each cell is widened by far more than the rounding of the arithmetic that picks a point's
        # cell, so a point near a cell's edge is still judged by a box that holds it.
        margin = max(width, height) / cells * 1e-6
        col_grid, row_grid = numpy.meshgrid(numpy.arange(cells), numpy.arange(cells))
        cols, rows = col_grid.ravel(), row_grid.ravel()
        boxes = shapely.box(
            self.min_x + cols * width / cells - margin,
            self.min_y + rows * height / cells - margin,
            self.min_x + (cols + 1) * width / cells + margin,
            self.min_y + (rows + 1) * height / cells + margin,
        )
        shapely.prepare(list(geometries))
        tree = STRtree(list(geometries))
        covered: dict[int, set[int]] = {}
        touched: dict[int, set[int]] = {}
        for box, area in zip(*tree.query(boxes, predicate="within"), strict=True):  # the box within the area
            covered.setdefault(int(box), set()).add(int(area))
        for box, area in zip(*tree.query(boxes, predicate="intersects"), strict=True):
            touched.setdefault(int(box), set()).add(int(area))
        for box, areas in touched.items():  # a box's index is row * cells + col
            whole = covered.get(box, set())
            self._lookup[box] = _Cell(sorted(whole), sorted(areas - whole), geometries)

    def containing(self, lon: float, lat: float) -> list[int]:
        """Indices of the geometries that contain or touch the point, in ascending order."""
        if not (self.min_x <= lon <= self.max_x and self.min_y <= lat <= self.max_y):
            return []
        col = min(int((lon - self.min_x) * self._per_x), self.cells - 1)
        row = min(int((lat - self.min_y) * self._per_y), self.cells - 1)
        cell = self._lookup.get(row * self.cells + col)
        if cell is None:
            return []
        if not len(cell.crossing):
            return list(cell.covered)
        hits = cell.crossing[shapely.intersects_xy(cell.geometries, lon, lat)].tolist()
        return sorted(cell.covered + hits) if cell.covered else hits
