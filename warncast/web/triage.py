"""The triage board in the console: incidents from the monitoring queue, live, with their actions."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from citizen_report.incidents import MERGED, Incident, board
from citizen_report.intake import load_reports
from citizen_report.model import CATEGORIES, STATUS_NAMES, TERMINAL
from citizen_report.routing import load_routing, save_routing, unit_departments, validate_routing
from citizen_report.triage import ACTION_NAMES, act
from foundation.areas.svg_map import MapPoint, render_svg
from foundation.errors import NotFound, ValidationFailed
from foundation.i18n import N_, tag_for
from foundation.store import keys
from foundation.store.streams import read_entries
from publisher.taxonomy import GRADE_COLOUR
from warncast.app_keys import AREAS, AUDIT, CATALOGS, REDIS, REPORTS, WARNINGS
from warncast.threshold_plans import incident_plans
from warncast.web.middleware import error_body
from warncast.web.pages import page
from warncast.web.requests import form_body, locale, login_required, require_actor

routes = web.RouteTableDef()
FILTERS = ("status", "priority", "department", "category", "kind", "area")
PRIORITY_GRADE = {1: "orange", 2: "yellow", 3: "blue", 4: "blue"}
HEARTBEAT_SECONDS = 15.0


def matches(incident: Incident, filters: dict[str, str], registry: Any) -> bool:
    status = filters.get("status", "open")
    if status == "open" and (incident.status in TERMINAL or incident.status == MERGED):
        return False
    if status not in ("open", "all") and incident.status != status:
        return False
    if filters.get("priority") and str(incident.priority) != filters["priority"]:
        return False
    for name in ("department", "category", "kind"):
        if filters.get(name) and getattr(incident, name) != filters[name]:
            return False
    area = filters.get("area")
    return not area or incident.area == area or area in registry.ancestors(incident.area or "")


def incident_points(incidents: list[Incident], registry: Any) -> list[dict[str, Any]]:
    """The triage map's points (static/triage-map.js): where each incident was reported, or else a
    point inside its area; an incident with neither has no point."""
    points = []
    for incident in incidents:
        lat, lon = incident.lat, incident.lon
        if (lat is None or lon is None) and (area := registry.get(incident.area or "")) is not None:
            lat, lon = area.point
        if lat is not None and lon is not None:
            points.append({"id": incident.id, "lat": lat, "lon": lon, "priority": incident.priority})
    return points


async def _board_context(request: web.Request) -> dict[str, Any]:
    filters = {name: request.query.get(name, "") for name in FILTERS}
    filters["status"] = filters["status"] or "open"
    incidents = [i for i in await board(request.app[REPORTS]) if matches(i, filters, request.app[AREAS])]
    incidents.sort(key=lambda i: (i.lane != "priority", i.priority, i.deadline))
    shown = incidents[:200]
    reports = await load_reports(request.app[REPORTS], [rid for i in shown for rid in i.reports[:5]])
    table = await load_routing(request.app[REDIS])
    breaches = [i.id for i in shown if i.kind == "breach"]
    drafted = await asyncio.gather(  # what the threshold plans drafted for each sensor's breach, at once
        *(incident_plans(request.app[REDIS], request.app[WARNINGS], i[1:], locale(request)) for i in breaches)
    )
    plans = dict(zip(breaches, drafted, strict=True))
    return {
        "incidents": shown,
        "reports": reports,
        "plans": plans,
        "filters": filters,
        "query": urlencode({k: v for k, v in filters.items() if v}),
        "categories": CATEGORIES,
        "statuses": STATUS_NAMES,
        "departments": table["departments"],
        "tag": tag_for(locale(request)),
        "now": request.app[REPORTS].now().isoformat(),
        "actions": ACTION_NAMES,
        "priority_grade": PRIORITY_GRADE,
        "registry": request.app[AREAS],
    }


@routes.get("/console/triage")
async def triage_board(request: web.Request) -> web.Response:
    login_required(request)
    require_actor(request, "report.read")
    context = await _board_context(request)
    if request.query.get("fragment") == "list":
        return await page(request, "console/triage_list.html", **context)
    if request.query.get("fragment") == "points":
        return web.json_response({"incidents": incident_points(context["incidents"], request.app[AREAS])})
    colours = {1: GRADE_COLOUR["red"], 2: GRADE_COLOUR["orange"], 3: GRADE_COLOUR["yellow"], 4: GRADE_COLOUR["blue"]}
    fills: dict[str, str] = {}
    for incident in sorted(context["incidents"], key=lambda i: -i.priority):
        for code in request.app[AREAS].leaves_under([incident.area] if incident.area else []):
            fills[code] = colours[incident.priority]
    svg = render_svg(
        [a.as_record() for a in request.app[AREAS].areas],
        fills,
        locale=context["tag"],
        href=lambda area: f"/console/triage?area={area['code']}",
        title=request.app[CATALOGS].text(locale(request), N_("Map of open incidents")),
        points=_incident_points(request, context["incidents"]),
    )
    return await page(request, "console/triage.html", map_svg=svg, **context)


def _incident_points(request: web.Request, incidents: list[Incident]) -> list[MapPoint]:
    """Each located incident as a dot (a GPS point from a report), linked to its row on the board."""
    catalogs, lang = request.app[CATALOGS], locale(request)
    points = []
    for incident in incidents:
        if incident.lat is None or incident.lon is None:
            continue
        name = catalogs.text(lang, CATEGORIES[incident.category].name) if incident.kind == "reports" else incident.title
        label = f"P{incident.priority} {name} ({incident.count})"
        points.append(
            MapPoint(incident.lat, incident.lon, label, f"prio-{incident.priority}", f"#incident-{incident.id}")
        )
    return points


@routes.post(r"/console/triage/{id}/{action:verify|assign|progress|resolve|reject|merge}")
async def triage_action(request: web.Request) -> web.Response:
    actor = require_actor(request, "report.triage")
    form = await form_body(request)
    back = str(form.get("back", ""))
    try:
        await act(
            request.app[REPORTS],
            actor,
            request.match_info["id"],
            request.match_info["action"],
            reason=str(form.get("reason", "")),
            department=str(form.get("department", "")),
            into=str(form.get("into", "")).strip(),
        )
    except ValidationFailed as error:
        body = error_body(request, error)
        return await page(
            request, "error.html", status=422, status_code=422, error=body["error"], back="/console/triage"
        )
    raise web.HTTPSeeOther("/console/triage" + (f"?{back}" if back and "/" not in back else ""))


@routes.get("/console/triage/events")
async def triage_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one `board` event per change, so the page reloads its list."""
    require_actor(request, "report.read")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    last = "$"
    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        await response.write(b"retry: 3000\n\n")
        while True:
            found = await request.app[REDIS].xread(
                {keys.BOARD_EVENTS: last}, block=int(HEARTBEAT_SECONDS * 1000), count=50
            )
            if not found:
                await response.write(b": keep-alive\n\n")
                continue
            for entry_id, fields in read_entries(found):
                last = entry_id
                data = json.dumps(fields, ensure_ascii=False)
                await response.write(f"event: board\nid: {entry_id}\ndata: {data}\n\n".encode())
    return response


@routes.get("/console/triage/photos/{photo_id:[0-9a-f]{32}}.jpg")
async def triage_photo(request: web.Request) -> web.Response:
    """Staff only: the re-encoded photo, never the upload."""
    require_actor(request, "report.read")
    data = await request.app[REDIS].get(keys.report_photo(request.match_info["photo_id"]))
    if data is None:
        raise NotFound(N_("Not found."))
    return web.Response(
        body=base64.b64decode(data),
        content_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=3600", "Content-Disposition": "inline"},
    )


@routes.get("/console/routing")
async def routing_page(request: web.Request) -> web.Response:
    login_required(request)
    require_actor(request, "report.read")
    table = await load_routing(request.app[REDIS])
    return await _routing_page(request, table, {}, saved=False)


async def _routing_page(
    request: web.Request, table: dict[str, Any], errors: dict[str, str], *, saved: bool, status: int = 200
) -> web.Response:
    tag = tag_for(locale(request))
    areas = [(a.code, a.name_in(tag)) for a in request.app[AREAS].areas if a.level != "community"]
    rows = list(table["rules"]) + [{"category": "", "area": "", "department": ""}] * 3
    return await page(
        request,
        "console/routing.html",
        status=status,
        table=table,
        rows=rows,
        areas=areas,
        categories=CATEGORIES,
        tag=tag,
        errors=errors,
        saved=saved,
    )


@routes.post("/console/routing")
async def save_routing_form(request: web.Request) -> web.Response:
    actor = require_actor(request, "routing.edit")
    form = await form_body(request)
    before = await load_routing(request.app[REDIS])
    rules = []
    for category, area, department in zip(
        form.getall("category", []), form.getall("area", []), form.getall("department", []), strict=False
    ):
        if str(category).strip():  # a row with no category is a deleted (or unused) row
            rules.append({"category": str(category), "area": str(area), "department": str(department)})
    body = {"default": str(form.get("default", "")), "departments": before["departments"], "rules": rules}
    try:
        table = validate_routing(body, request.app[AREAS], await unit_departments(request.app[REDIS]))
    except ValidationFailed as error:
        fields = error_body(request, error)["error"]["fields"]
        return await _routing_page(request, body, {f["field"]: f["message"] for f in fields}, saved=False, status=422)
    await save_routing(request.app[REDIS], table)
    await request.app[AUDIT].append(actor.label, "policy.routing", "routing", before=before, after=table)
    return await _routing_page(request, table, {}, saved=True)
