"""The JSON API under /api/v1 (described by /api/v1/openapi.json)."""

from __future__ import annotations

from aiohttp import web

from channels.cache import Rendering
from foundation.access.roles import allowed
from foundation.errors import FieldError, NotFound, ValidationFailed
from foundation.i18n import N_
from publisher.approval_rules import validate_rules
from publisher.model import PUBLISHED, Message
from publisher.serialize import message_json
from publisher.taxonomy import CAP_CATEGORIES, EVENTS, GRADE_COLOUR, GRADE_SEVERITY, GRADES
from warncast.app_keys import AREAS, AUDIT, REDIS, SETTINGS, WARNINGS
from warncast.web.conditional import respond
from warncast.web.live import outlets
from warncast.web.openapi import openapi_document
from warncast.web.requests import current_actor, json_body, json_dumps, optional_text, require_actor, t
from warncast.web.warnings_query import parse_filter, render_list, wants_geojson

routes = web.RouteTableDef()
AUDIT_SCAN = 10_000  # entries a filtered audit read looks through


def _staff(request: web.Request) -> bool:
    actor = current_actor(request)
    return actor is not None and allowed(actor.roles, "warning.read")


def _json(request: web.Request, message: Message, status: int = 200) -> web.Response:
    body = message_json(message, registry=request.app[AREAS], settings=request.app[SETTINGS], staff=_staff(request))
    return web.json_response(body, status=status, dumps=json_dumps)


@routes.get("/api/v1/areas")
async def list_areas(request: web.Request) -> web.Response:
    """The area registry; ?level=, ?parent= and ?point=lat,lon filter it."""
    await request.app[AREAS].refresh(request.app[REDIS])
    areas = request.app[AREAS].areas
    if point := request.query.get("point"):
        try:
            lat, lon = (float(x) for x in point.split(","))
        except ValueError:
            raise ValidationFailed([FieldError("point", "format", N_("Use point=lat,lon."))]) from None
        areas = request.app[AREAS].containing(lat, lon)
    if level := request.query.get("level"):
        areas = [a for a in areas if a.level == level]
    if parent := request.query.get("parent"):
        areas = [a for a in areas if a.parent == parent]
    return web.json_response({"areas": [a.as_json() for a in areas]}, dumps=json_dumps)


@routes.get("/api/v1/taxonomy")
async def taxonomy(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "grades": [{"code": g, "severity": GRADE_SEVERITY[g], "colour": GRADE_COLOUR[g]} for g in GRADES],
            "categories": list(CAP_CATEGORIES),
            "events": [{"code": e.code, "category": e.category, "name": t(request, e.name)} for e in EVENTS.values()],
        },
        dumps=json_dumps,
    )


@routes.get("/api/v1/warnings")
async def list_warnings(request: web.Request) -> web.Response:
    """Staff see every message; everybody else sees published ones, as cached renderings.

    ?active=true: in force now; filters and GeoJSON: see warnings_query.
    """
    staff = _staff(request)
    filters = parse_filter(request, request.app[AREAS])
    try:
        limit = max(1, min(500, int(request.query.get("limit", "100"))))
    except ValueError:
        raise ValidationFailed([FieldError("limit", "type", N_("Must be a whole number."))]) from None
    state = request.query.get("state")
    geo = wants_geojson(request)

    async def render(version: str) -> Rendering:
        if filters.active:
            messages = await request.app[WARNINGS].active()
        else:
            messages = await request.app[WARNINGS].list(limit=limit)
            if not staff:
                messages = [m for m in messages if m.state == PUBLISHED]
            if state:
                messages = [m for m in messages if m.state == state]
        messages = filters.apply(messages, request.app[AREAS])
        bodies = [
            message_json(m, registry=request.app[AREAS], settings=request.app[SETTINGS], staff=staff) for m in messages
        ]
        return render_list(messages, bodies, request.app[AREAS], geo=geo, version=version, active=filters.active)

    if staff:  # the workflow record changes without lifecycle events: never cached
        return respond(request, await render(""), vary="Accept")
    live = outlets(request)
    key = ("api-warnings", filters, limit, state, geo)

    async def fresh() -> Rendering:
        version = await live.follower.current()
        now = request.app[WARNINGS].now().timestamp()
        return await live.cache.get(key, (version, request.app[AREAS].version), now, lambda: render(version))

    # Like the feeds: while Redis is away, the last answer, marked stale (machines poll this list).
    return respond(request, await live.cache.fresh_or_stale(key, fresh), vary="Accept")


@routes.post("/api/v1/warnings")
async def create_warning(request: web.Request) -> web.Response:
    actor = require_actor(request)
    message = await request.app[WARNINGS].create(actor, await json_body(request))
    response = _json(request, message, status=201)
    response.headers["Location"] = f"/api/v1/warnings/{message.id}"
    return response


async def _visible(request: web.Request) -> Message:
    message = await request.app[WARNINGS].get(request.match_info["id"])
    if message.state != PUBLISHED and not _staff(request):
        raise NotFound(N_("No warning with this id."))
    return message


# A message id's shape, so /api/v1/warnings/preview is not taken for one (its 405 then says POST).
MESSAGE_ID = "{id:[0-9]+_[0-9]+_[0-9]+}"


@routes.get(f"/api/v1/warnings/{MESSAGE_ID}")
async def get_warning(request: web.Request) -> web.Response:
    return _json(request, await _visible(request))


@routes.patch(f"/api/v1/warnings/{MESSAGE_ID}")
async def edit_warning(request: web.Request) -> web.Response:
    actor = require_actor(request)
    message = await request.app[WARNINGS].edit(actor, request.match_info["id"], await json_body(request))
    return _json(request, message)


@routes.post("/api/v1/warnings/{id}/submit")
async def submit(request: web.Request) -> web.Response:
    actor = require_actor(request)
    return _json(request, await request.app[WARNINGS].submit(actor, request.match_info["id"]))


@routes.post("/api/v1/warnings/{id}/approve")
async def approve(request: web.Request) -> web.Response:
    actor = require_actor(request)
    comment = await optional_text(request, "comment")
    return _json(request, await request.app[WARNINGS].approve(actor, request.match_info["id"], comment))


@routes.post("/api/v1/warnings/{id}/reject")
async def reject(request: web.Request) -> web.Response:
    actor = require_actor(request)
    comment = await optional_text(request, "comment")
    return _json(request, await request.app[WARNINGS].reject(actor, request.match_info["id"], comment))


@routes.post("/api/v1/warnings/{id}/publish")
async def publish(request: web.Request) -> web.Response:
    """The emergency fast path: a chief publishes at once with a written reason."""
    actor = require_actor(request)
    reason = await optional_text(request, "reason")
    return _json(request, await request.app[WARNINGS].fast_path(actor, request.match_info["id"], reason))


@routes.post("/api/v1/warnings/{id}/review")
async def review(request: web.Request) -> web.Response:
    actor = require_actor(request)
    comment = await optional_text(request, "comment")
    return _json(request, await request.app[WARNINGS].review(actor, request.match_info["id"], comment))


@routes.post("/api/v1/warnings/{id}/update")
async def update(request: web.Request) -> web.Response:
    actor = require_actor(request)
    message = await request.app[WARNINGS].update(actor, request.match_info["id"], await json_body(request))
    return _json(request, message, status=201)


@routes.post("/api/v1/warnings/{id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    actor = require_actor(request)
    reason = await optional_text(request, "reason") if request.can_read_body else ""
    message = await request.app[WARNINGS].cancel(actor, request.match_info["id"], reason)
    return _json(request, message, status=201)


@routes.get("/api/v1/approval-rules")
async def get_rules(request: web.Request) -> web.Response:
    require_actor(request, "warning.read")
    return web.json_response(await request.app[WARNINGS].rules.all())


@routes.put("/api/v1/approval-rules")
async def put_rules(request: web.Request) -> web.Response:
    actor = require_actor(request, "rules.edit")
    rules = validate_rules(await json_body(request))
    before = await request.app[WARNINGS].rules.all()
    await request.app[WARNINGS].rules.save(rules)
    await request.app[AUDIT].append(actor.label, "policy.approval_rules", "approval-rules", before=before, after=rules)
    return web.json_response(rules)


@routes.get("/api/v1/audit")
async def audit(request: web.Request) -> web.Response:
    require_actor(request, "audit.read")
    total = await request.app[AUDIT].count()
    unit = request.query.get("unit")
    if not unit:
        entries = await request.app[AUDIT].entries(max(0, total - 200), -1)
        return web.json_response({"total": total, "entries": entries[::-1]}, dumps=json_dumps)
    # ?unit=: the newest 200 entries about that unit's warnings and the unit itself, from the
    # newest AUDIT_SCAN entries (the whole chain stays for `warncast admin verify-audit`).
    recent = await request.app[AUDIT].entries(max(0, total - AUDIT_SCAN), -1)
    chosen = [e for e in reversed(recent) if e.get("details", {}).get("unit") == unit][:200]
    return web.json_response({"total": total, "unit": unit, "entries": chosen}, dumps=json_dumps)


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[SETTINGS]), dumps=json_dumps)
