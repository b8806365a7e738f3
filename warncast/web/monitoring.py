"""The monitoring queue's JSON API: items for machines, readings and CAP alerts in, incidents and
their actions, and the routing table."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from citizen_report.incidents import Incident, board, load_incident
from citizen_report.model import Report
from citizen_report.queue import items
from citizen_report.routing import load_routing, save_routing, unit_departments, validate_routing
from citizen_report.signals import MAX_CAP_BYTES, ingest_cap_alert, ingest_readings
from citizen_report.triage import act
from foundation.errors import FieldError, NotFound, ValidationFailed
from foundation.i18n import N_
from foundation.store import keys
from warncast.app_keys import AREAS, AUDIT, REDIS, REPORTS, SETTINGS, WARNINGS
from warncast.threshold_plans import incident_plans
from warncast.web.requests import json_body, json_dumps, locale, require_actor
from warncast.web.triage import matches

routes = web.RouteTableDef()


def _limit(request: web.Request) -> int:
    try:
        return max(1, min(1000, int(request.query.get("limit", "100"))))
    except ValueError:
        raise ValidationFailed([FieldError("limit", "type", N_("Must be a whole number."))]) from None


@routes.get("/api/v1/monitoring/items")
async def monitoring_items(request: web.Request) -> web.Response:
    """Queue items in order; poll with ?after=<the last id seen>&limit=."""
    require_actor(request, "report.read")
    after = request.query.get("after", "-")
    if after != "-" and not all(part.isdigit() for part in after.split("-", 1)):
        raise ValidationFailed([FieldError("after", "format", N_("Use a queue item id like 1700000000000-0."))])
    found: list[dict[str, Any]] = list(await items(request.app[REPORTS], after=after, limit=_limit(request)))
    reports = await _staff_reports(request, [i["ref"] for i in found if i.get("kind") == "report" and i.get("ref")])
    for item in found:
        if item.get("kind") == "report":
            item["report"] = reports.get(item.get("ref", ""))
    return web.json_response({"items": found, "last": found[-1]["id"] if found else after}, dumps=json_dumps)


async def _staff_reports(request: web.Request, report_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The reports by id as staff see them, with absolute links to their photos (staff only too)."""
    ids = sorted(set(report_ids))
    raws = await request.app[REDIS].mget([keys.report(i) for i in ids]) if ids else []
    base = request.app[SETTINGS].public_url
    out = {}
    for raw in raws:
        if raw:
            view = Report.from_record(json.loads(raw)).staff_json()
            view["photos"] = [f"{base}/console/triage/photos/{photo}.jpg" for photo in view["photos"]]
            out[view["id"]] = view
    return out


async def _incident_json(request: web.Request, incidents: list[Incident]) -> list[dict[str, Any]]:
    """Incidents with their reports' texts, places and photo links: what the triage board shows."""
    reports = await _staff_reports(request, [r for i in incidents for r in i.reports])
    out = []
    for i in incidents:
        found = {**i.as_json(), "report_details": [reports[r] for r in i.reports if r in reports]}
        if i.kind == "breach":  # what the threshold plans drafted for its sensor
            found["plans"] = await incident_plans(request.app[REDIS], request.app[WARNINGS], i.id[1:], locale(request))
        out.append(found)
    return out


@routes.post("/api/v1/monitoring/readings")
async def monitoring_readings(request: web.Request) -> web.Response:
    require_actor(request, "monitoring.ingest")
    results = await ingest_readings(request.app[REPORTS], await json_body(request))
    return web.json_response({"readings": results}, status=202)


@routes.post("/api/v1/monitoring/alerts")
async def monitoring_alerts(request: web.Request) -> web.Response:
    """An upstream CAP 1.2 alert as XML (application/cap+xml or application/xml)."""
    require_actor(request, "monitoring.ingest")
    if request.content_length and request.content_length > MAX_CAP_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_CAP_BYTES, actual_size=request.content_length)
    raw = await request.content.read(MAX_CAP_BYTES + 1)
    if len(raw) > MAX_CAP_BYTES:  # a chunked body says no length: counted as it arrives
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_CAP_BYTES, actual_size=len(raw))
    item = await ingest_cap_alert(request.app[REPORTS], raw)
    return web.json_response(item, status=202, dumps=json_dumps)


@routes.get("/api/v1/incidents")
async def list_incidents(request: web.Request) -> web.Response:
    """Triage board entries; the same filters as the board (?status=open|all|..., ?department=...)."""
    require_actor(request, "report.read")
    filters = {k: request.query.get(k, "") for k in ("status", "priority", "department", "category", "kind", "area")}
    filters["status"] = filters["status"] or "open"
    found = [i for i in await board(request.app[REPORTS]) if matches(i, filters, request.app[AREAS])]
    return web.json_response({"incidents": await _incident_json(request, found[: _limit(request)])}, dumps=json_dumps)


@routes.get("/api/v1/incidents/{id}")
async def get_incident(request: web.Request) -> web.Response:
    require_actor(request, "report.read")
    incident = await load_incident(request.app[REPORTS], request.match_info["id"])
    if incident is None:
        raise NotFound(N_("No incident with this id."))
    [found] = await _incident_json(request, [incident])
    return web.json_response(found, dumps=json_dumps)


@routes.post(r"/api/v1/incidents/{id}/{action:verify|assign|progress|resolve|reject|merge}")
async def incident_action(request: web.Request) -> web.Response:
    actor = require_actor(request, "report.triage")
    body = await json_body(request) if request.can_read_body else {}
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "type", N_("The body must be a JSON object."))])
    text = {k: body.get(k) or "" for k in ("reason", "department", "into")}
    for name, value in text.items():
        if not isinstance(value, str):
            raise ValidationFailed([FieldError(name, "type", N_("Must be text."))])
    incident = await act(request.app[REPORTS], actor, request.match_info["id"], request.match_info["action"], **text)
    [found] = await _incident_json(request, [incident])
    return web.json_response(found, dumps=json_dumps)


@routes.get("/api/v1/routing")
async def get_routing(request: web.Request) -> web.Response:
    require_actor(request, "report.read")
    return web.json_response(await load_routing(request.app[REDIS]), dumps=json_dumps)


@routes.put("/api/v1/routing")
async def put_routing(request: web.Request) -> web.Response:
    actor = require_actor(request, "routing.edit")
    table = validate_routing(await json_body(request), request.app[AREAS], await unit_departments(request.app[REDIS]))
    before = await load_routing(request.app[REDIS])
    await save_routing(request.app[REDIS], table)
    await request.app[AUDIT].append(actor.label, "policy.routing", "routing", before=before, after=table)
    return web.json_response(table, dumps=json_dumps)
