"""Warnings in force come most serious first, in the taxonomy's grade order, then oldest first."""

from __future__ import annotations

from typing import Any

from publisher.taxonomy import GRADES
from tests.publisher.test_workflow import published


async def test_active_warnings_most_serious_first(client: Any, services: Any, staff: Any, clock: Any) -> None:
    ids = {}
    for grade in ("yellow", "blue", "red", "orange", "yellow"):
        clock.advance(seconds=1)
        ids.setdefault(grade, []).append((await published(client, staff, clock, grade=grade))["id"])
    active = await services.warnings.active()
    assert [m.content.grade for m in active] == ["red", "orange", "yellow", "yellow", "blue"]
    assert [m.id for m in active if m.content.grade == "yellow"] == ids["yellow"], "then the oldest first"
    assert [m.content.grade for m in active] == sorted((m.content.grade for m in active), key=GRADES.index)[::-1]
