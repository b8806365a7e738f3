"""Tables of figures as the console shows them: an HTML table, a bar chart drawn as SVG on the
server (readable without JavaScript: a title, a description and a text label on every bar, so no
figure is told by colour alone), and a CSV download that a spreadsheet opens safely."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

CHART_WIDTH, LABEL_WIDTH, VALUE_WIDTH, ROW_HEIGHT, BAR_HEIGHT = 720, 200, 150, 26, 18
NEUTRAL = "#3b5f8f"  # dark enough for white-on-blue contrast; bars carry text labels anyway
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may run as a formula


@dataclass
class Bar:
    label: str
    value: float
    text: str  # the figure as written beside the bar (with its unit, and "over the target")
    colour: str = NEUTRAL
    x: float = 0
    y: float = 0
    width: float = 0


@dataclass
class Chart:
    title: str
    desc: str  # what the chart shows, for screen readers
    bars: list[Bar]
    target: float | None = None
    target_label: str = ""
    width: int = CHART_WIDTH
    height: int = 0
    target_x: float | None = None

    def __post_init__(self) -> None:
        """Lay the bars out: one row each, scaled to the largest value (or the target)."""
        top = max([b.value for b in self.bars] + [self.target or 0] + [0]) or 1
        span = self.width - LABEL_WIDTH - VALUE_WIDTH
        for n, bar in enumerate(self.bars):
            bar.x, bar.y, bar.width = LABEL_WIDTH, 20 + n * ROW_HEIGHT, round(span * bar.value / top, 1)
        self.height = 30 + len(self.bars) * ROW_HEIGHT
        if self.target is not None:
            self.target_x = round(LABEL_WIDTH + span * self.target / top, 1)


@dataclass
class Table:
    name: str  # as in ?table=
    title: str
    columns: list[str]
    rows: list[list[Any]]
    chart: Chart | None = None
    note: str = ""
    links: dict[int, str] = field(default_factory=dict)  # row index -> URL of its first cell


def safe_cell(value: Any) -> Any:
    """A cell as CSV writes it: numbers as they are, no value at all as empty, and text that a
    spreadsheet would take for a formula behind an apostrophe (OWASP's CSV injection advice)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def to_csv(table: Table) -> str:
    """RFC 4180 CSV (quoted where needed, CRLF), with a byte-order mark so that spreadsheets read
    the Chinese as UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(c) for c in table.columns])
    writer.writerows([safe_cell(c) for c in row] for row in table.rows)
    return "\ufeff" + out.getvalue()
