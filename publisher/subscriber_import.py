"""Bulk import of an existing subscriber base: CSV rows of channel, address, area, language,
minimum grade (and optionally drill). Idempotent: importing the same file twice changes nothing.
Imported residents count as opted in (they were subscribers of the system being replaced), but
anyone who has sent STOP to us stays stopped."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from foundation.areas.registry import AreaRegistry
from foundation.i18n import normalize_locale
from publisher.subscribers import (
    CHANNELS,
    STOPPED,
    Subscriber,
    SubscriberError,
    Subscribers,
    find_area,
    normalize_address,
)
from publisher.taxonomy import GRADES

REQUIRED = ("channel", "address", "area", "language", "min_grade")
MAX_ROWS = 5_000_000
REPLICATED_EVERY = 1000  # rows written before one wait for the replicas


@dataclass
class ImportReport:
    imported: int = 0
    unchanged: int = 0
    skipped_stopped: int = 0
    errors: list[str] = field(default_factory=list)


async def import_subscribers(subscribers: Subscribers, registry: AreaRegistry, text: str) -> ImportReport:
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        report.errors.append(f"line 1: missing column(s): {', '.join(missing)}")
        return report
    imported: list[Subscriber] = []
    for line, row in enumerate(reader, start=2):
        if line > MAX_ROWS:
            report.errors.append(f"line {line}: more than {MAX_ROWS} rows; split the file")
            break
        try:
            if (sub := await _import_row(subscribers, registry, row, report)) is not None:
                imported.append(sub)
        except SubscriberError as exc:
            report.errors.append(f"line {line}: {exc}")
        if len(imported) >= REPLICATED_EVERY:
            await subscribers.replicated(*imported)
            imported = []
    await subscribers.replicated(*imported)  # one wait for the replicas per batch, not one per row
    return report


async def _import_row(
    subscribers: Subscribers, registry: AreaRegistry, row: dict[str, str], report: ImportReport
) -> Subscriber | None:
    channel = (row.get("channel") or "").strip().lower()
    if channel not in CHANNELS:
        raise SubscriberError(f"channel must be one of {', '.join(CHANNELS)}, got {channel[:20]!r}")
    address = normalize_address(channel, row.get("address") or "")
    area = find_area(registry, row.get("area") or "")
    if area is None:
        raise SubscriberError(f"unknown area {(row.get('area') or '')[:40]!r}")
    lang = normalize_locale(row.get("language") or "")
    if lang is None:
        raise SubscriberError(f"language must be zh or en, got {(row.get('language') or '')[:20]!r}")
    grade = (row.get("min_grade") or "").strip().lower()
    if grade not in GRADES:
        raise SubscriberError(f"min_grade must be one of {', '.join(GRADES)}, got {grade[:20]!r}")
    drill = (row.get("drill") or "").strip().lower() in ("1", "true", "yes")
    existing = await subscribers.get(channel, address)
    if existing and existing.status == STOPPED:
        report.skipped_stopped += 1  # a STOP is honoured forever, even against an old list
        return None
    if (
        existing
        and existing.active
        and area.code in existing.areas
        and existing.lang == lang
        and existing.min_grade == grade
        and existing.drill == drill
    ):
        report.unchanged += 1
        return None
    await subscribers.subscribe(channel, address, area.code, lang=lang, source="import", wait=False)
    report.imported += 1
    return await subscribers.update(channel, address, min_grade=grade, drill=drill)
