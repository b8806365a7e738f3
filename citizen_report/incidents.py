"""Incidents: what the triage board shows, built from monitoring-queue items.

Reports of one category within `corroboration_metres` (default 250 m) of an open incident and
within `corroboration_hours` of its last report join it (corroboration); otherwise they open a new
incident. Priority (1 highest .. 4) comes from the category, the life-safety flag and the number of
reports; life-safety incidents go to the priority lane; every incident carries a deadline by which
it must be acted on. Threshold breaches and upstream alerts become incidents of their own kinds.
Absorbing is idempotent, so a queue item delivered twice changes nothing the second time.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import WatchError

from citizen_report.desk import ReportDesk
from citizen_report.intake import load_report
from citizen_report.model import CATEGORIES, RECEIVED, TERMINAL
from citizen_report.record import count_report
from citizen_report.routing import RoutingForBatch, route
from citizen_report.signals import signal_events
from foundation.access.units import organisation_of, stored_units
from foundation.store import keys
from foundation.store.raw_pipeline import execute_raw
from foundation.store.streams import decoded_list

MERGED = "merged"
SEVERITY_PRIORITY = {"Extreme": 1, "Severe": 2, "Moderate": 3}
COLOUR_PRIORITY = {"red": 2, "yellow": 3, "green": 4}


@dataclass
class Incident:
    id: str
    kind: str  # reports | breach | alert
    category: str  # report category, reading type, or CAP event
    title: str
    lat: float | None
    lon: float | None
    area: str | None
    created: str
    updated: str
    deadline: str
    priority: int
    life_safety: bool = False
    status: str = RECEIVED
    department: str | None = None
    reports: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)  # queue entry ids absorbed (idempotency)
    note: str = ""
    merged_into: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    by_area: bool = False  # placed at its area's centre: its first report gave an area, no point

    @property
    def count(self) -> int:
        return len(self.reports)

    @property
    def lane(self) -> str:
        return "priority" if self.life_safety else "normal"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "count": self.count, "lane": self.lane}


def priority_for(category: str, life_safety: bool, count: int) -> int:
    base = CATEGORIES[category].base_priority if category in CATEGORIES else 3
    if life_safety:
        base = 1
    corroboration = 2 if count >= 6 else 1 if count >= 3 else 0
    return max(1, base - corroboration)


async def load_incident(desk: ReportDesk, incident_id: str) -> Incident | None:
    raw = await desk.redis.get(keys.incident(incident_id))
    return Incident(**json.loads(raw)) if raw else None


async def board(desk: ReportDesk, limit: int = 500) -> list[Incident]:
    """Open and recent incidents, newest change first."""
    ids = decoded_list(await desk.redis.zrevrange(keys.BOARD_INDEX, 0, limit - 1))
    if not ids:
        return []
    raws = await desk.redis.mget([keys.incident(i) for i in ids])
    return [Incident(**json.loads(r)) for r in raws if r]


async def absorb(
    desk: ReportDesk, entry_id: str, fields: dict[str, str], routing: RoutingForBatch | None = None
) -> None:
    """One queue item onto the board; `routing`: the table as read for the item's batch."""
    routing = routing or RoutingForBatch(desk.redis)
    kind = fields.get("kind")
    if kind == "report":
        await _absorb_report(desk, entry_id, fields["ref"], fields.get("category", ""), routing)
    elif kind in ("breach", "alert"):
        await _absorb_signal(desk, entry_id, fields, routing)


def _deadline(desk: ReportDesk, created: str, priority: int) -> str:
    minutes = desk.config.deadline_for(priority)
    return (datetime.fromisoformat(created) + timedelta(minutes=minutes)).isoformat()


async def _absorb_report(
    desk: ReportDesk, entry_id: str, report_id: str, category: str, routing: RoutingForBatch
) -> None:
    redis = desk.redis
    for _attempt in range(20):
        async with redis.pipeline(transaction=True) as pipe:
            # The report is read after it is watched, so that an absorb of the same report that
            # ends in between (its item claimed again) fails this one instead of going unseen.
            geo_key = keys.open_incidents(category)  # the item's category: the report's own
            await pipe.watch(geo_key, keys.report(report_id))
            report = await load_report(desk, report_id)
            if report is None or report.incident:
                return
            if report.category != category:  # an item written without it
                geo_key = keys.open_incidents(report.category)
                await pipe.watch(geo_key)
            incident = await _nearby_open(desk, report) if report.lat is not None else None
            if incident is not None:  # joining: guard its count against a concurrent join (WATCH adds keys)
                await pipe.watch(keys.incident(incident.id))
                incident = await load_incident(desk, incident.id)
            now = desk.now().isoformat()
            if incident is None:
                table = await routing.table()
                incident = Incident(
                    id=f"R{report.id}",
                    kind="reports",
                    category=report.category,
                    title="",
                    lat=report.lat,
                    lon=report.lon,
                    area=report.area,
                    created=report.created,
                    updated=now,
                    deadline="",
                    priority=4,
                    department=route(table, desk.registry, report.category, report.area),
                    by_area=report.location_source == "area",
                )
            moved = incident.by_area and report.location_source != "area" and report.lat is not None
            if moved:  # the first real point of a place known only by its area: the incident moves there
                incident.lat, incident.lon, incident.by_area = report.lat, report.lon, False
            incident.reports.append(report.id)
            incident.items.append(entry_id)
            incident.life_safety = incident.life_safety or report.life_safety
            incident.priority = priority_for(incident.category, incident.life_safety, incident.count)
            incident.deadline = _deadline(desk, incident.created, incident.priority)
            incident.updated = now
            report.incident = incident.id
            report.department = incident.department
            pipe.multi()
            pipe.set(keys.report(report.id), json.dumps(report.as_record(), ensure_ascii=False))
            count_report(pipe, report, desk.tz)  # once: the report now names its incident
            store_incident(pipe, incident, desk.now())
            if incident.lat is not None and incident.lon is not None and (incident.count == 1 or moved):
                pipe.geoadd(geo_key, (incident.lon, incident.lat, incident.id))
            try:
                await pipe.execute()
                return
            except WatchError:
                continue
    raise RuntimeError(f"could not absorb report {report_id}: too much contention")


async def _nearby_open(desk: ReportDesk, report: Any) -> Incident | None:
    """The open incident this report corroborates: one of its category within the corroboration
    radius, reported to recently. A place given only as an area (no GPS) has no radius: it joins an
    incident inside that area; and a GPS report joins an incident known only by an area containing
    its point. So one spot reported with and without GPS stays one incident."""
    config = desk.config
    searches = [(report.lat, report.lon, config.corroboration_metres, 20)]
    if report.location_source == "area" and report.area:
        searches.append((report.lat, report.lon, AREA_SEARCH_METRES, 50))
    else:  # an incident placed at the centre of an area that holds the point
        searches += [(*area.point, 1, 5) for area in desk.registry.containing(report.lat, report.lon)]
    found: list[str] = []
    for hits in await _search(desk, report.category, searches):
        found += [i for i in hits if i not in found]
    oldest = datetime.fromisoformat(report.created) - timedelta(hours=config.corroboration_hours)
    for incident_id in found:
        incident = await load_incident(desk, incident_id)
        if incident is None or incident.status in TERMINAL or incident.status == MERGED:
            continue
        if not _same_place(desk, report, incident):
            continue
        last = await load_report(desk, incident.reports[-1]) if incident.reports else None
        if last and datetime.fromisoformat(last.created) >= oldest:
            return incident
    return None


AREA_SEARCH_METRES = 20_000  # an area-only report looks this far from its area's centre (then by area)


async def _search(desk: ReportDesk, category: str, searches: list[tuple[float, float, float, int]]) -> list[list[str]]:
    """The open incidents of `category` near each (lat, lon) within its metres, at most count each,
    nearest first: all in one round trip (one key, so one node on a cluster)."""
    key = keys.open_incidents(category)
    commands = [
        ("GEOSEARCH", key, "FROMLONLAT", lon, lat, "BYRADIUS", metres, "m", "ASC", "COUNT", count)
        for lat, lon, metres, count in searches
    ]
    found = await execute_raw(desk.redis, commands)
    for reply in found:
        if isinstance(reply, Exception):
            raise reply
    return [decoded_list(ids) for ids in found]


def _same_place(desk: ReportDesk, report: Any, incident: Incident) -> bool:
    """Within the radius (the geo search said so), or one of the two is placed only by an area
    that holds the other."""
    registry = desk.registry
    if incident.lat is None or incident.lon is None:
        return False
    near = _metres(report.lat, report.lon, incident.lat, incident.lon) <= desk.config.corroboration_metres
    if near:
        return True
    if report.location_source == "area" and report.area:
        return report.area in {a.code for a in registry.containing(incident.lat, incident.lon)}
    return incident.by_area and incident.area in {a.code for a in registry.containing(report.lat, report.lon)}


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), as Redis measures it."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_372_797.560856 * math.asin(math.sqrt(a))


def store_incident(pipe: Any, incident: Incident, now: datetime) -> None:
    """Write an incident, index it on the board and tell live boards (inside a transaction)."""
    # vars, not asdict: the fields are JSON values already, and asdict copies every one of them.
    pipe.set(keys.incident(incident.id), json.dumps(vars(incident), ensure_ascii=False))
    pipe.zadd(keys.BOARD_INDEX, {incident.id: now.timestamp()})
    pipe.xadd(keys.BOARD_EVENTS, {"incident": incident.id, "status": incident.status}, maxlen=1000, approximate=True)


async def _absorb_signal(desk: ReportDesk, entry_id: str, fields: dict[str, str], routing: RoutingForBatch) -> None:
    """A breach updates the open incident of its sensor (or opens one); an alert is one incident
    per CAP identifier."""
    redis = desk.redis
    kind = fields["kind"]
    incident_id = f"S{fields['sensor']}" if kind == "breach" else f"A{fields['key']}"
    async with redis.pipeline(transaction=True) as pipe:
        await pipe.watch(keys.incident(incident_id))
        incident = await load_incident(desk, incident_id)
        if incident and entry_id in incident.items:
            return
        now = desk.now()
        if incident is None or incident.status in TERMINAL:
            department = (await routing.table())["default"]
            if units := await stored_units(redis):  # the unit responsible for its event type and area
                org = organisation_of(units, desk.settings)
                events = await signal_events(desk, fields)
                department = org.responsible(events, fields.get("area") or None, desk.registry).id
            incident = Incident(
                id=incident_id,
                kind=kind,
                category=fields.get("type") or fields.get("event", ""),
                title="",
                lat=float(fields["lat"]) if fields.get("lat") else None,
                lon=float(fields["lon"]) if fields.get("lon") else None,
                area=fields.get("area") or None,
                created=now.isoformat(),
                updated=now.isoformat(),
                deadline="",
                priority=4,
                department=department,
            )
        incident.items.append(entry_id)
        incident.title = fields.get("title", "")
        incident.details = {k: v for k, v in fields.items() if k not in ("kind", "key")}
        if kind == "breach":
            incident.priority = COLOUR_PRIORITY.get(fields["colour"], 3)
        else:
            incident.priority = SEVERITY_PRIORITY.get(fields.get("severity", ""), 4)
        incident.life_safety = incident.priority == 1
        incident.deadline = _deadline(desk, incident.created, incident.priority)
        incident.updated = now.isoformat()
        pipe.multi()
        store_incident(pipe, incident, now)
        await pipe.execute()
