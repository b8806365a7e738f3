"""Issuing units: the registry API and console page (staff read, admins edit), users' units, and
what a unit issued (`/api/v1/units/{id}/warnings`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from foundation.access.audit import Actor
from foundation.access.roles import allowed
from foundation.access.units import KIND_NAMES, KINDS, Organisation, Unit, Units, parse_unit
from foundation.errors import Conflict, FieldError, NotFound, ValidationFailed
from foundation.i18n import N_, tag_for
from publisher.dispatch.stats import COUNTS, delivery_stats
from publisher.serialize import message_json
from publisher.taxonomy import EVENTS
from warncast.app_keys import ACCOUNTS, AREAS, AUDIT, DISPATCH, REDIS, SETTINGS, WARNINGS
from warncast.web.pages import page
from warncast.web.requests import current_actor, json_body, json_dumps, locale, login_required, require_actor, t

routes = web.RouteTableDef()
UNIT = "{id:[a-z0-9][a-z0-9_-]{0,39}}"


def _units(request: web.Request) -> Units:
    return request.app[WARNINGS].units


def _public(unit: Unit) -> dict[str, Any]:
    links = {"self": f"/api/v1/units/{unit.id}", "warnings": f"/api/v1/units/{unit.id}/warnings"}
    return {**unit.as_json(), "links": links}


async def _parse(request: web.Request, body: Any, unit_id: str | None = None) -> Unit:
    await request.app[AREAS].refresh(request.app[REDIS])
    return parse_unit(body, request.app[AREAS], set(EVENTS), unit_id=unit_id)


# Operations (shared by the API and the console).


async def _save(request: web.Request, actor: Actor, body: Any, *, unit_id: str | None) -> Unit:
    unit = await _parse(request, body, unit_id)
    before = await _units(request).save(unit, request.app[AREAS], create=unit_id is None)
    action = "unit.create" if before is None else "unit.edit"
    await request.app[AUDIT].append(
        actor.label, action, unit.id, unit=unit.id, before=before.as_json() if before else None, after=unit.as_json()
    )
    return unit


async def _delete(request: web.Request, actor: Actor, unit_id: str) -> None:
    members = [str(u["name"]) for u in await request.app[ACCOUNTS].list_users() if u.get("unit") == unit_id]
    if members:
        raise Conflict(N_("Move the users of this unit to another one first: %(users)s."), users=", ".join(members[:5]))
    before = await _units(request).delete(unit_id, request.app[AREAS])
    await request.app[AUDIT].append(actor.label, "unit.delete", unit_id, unit=unit_id, before=before.as_json())


async def _assign(request: web.Request, actor: Actor, user: Any, unit_id: Any) -> None:
    org = await _units(request).organisation()
    if not isinstance(unit_id, str) or (unit_id and org.find(unit_id) is None):
        raise ValidationFailed([FieldError("unit", "unknown", N_("Choose one of the units."))])
    if not isinstance(user, str) or not await request.app[ACCOUNTS].user_exists(user):
        raise ValidationFailed([FieldError("user", "unknown", N_("No user with this name."))])
    await request.app[ACCOUNTS].set_unit(user, unit_id)
    await request.app[AUDIT].append(actor.label, "user.unit", user, unit=unit_id)


# API


@routes.get("/api/v1/units")
async def list_units(request: web.Request) -> web.Response:
    require_actor(request, "units.read")
    org = await _units(request).organisation()
    return web.json_response(
        {"configured": org.configured, "root": org.root.id, "units": [_public(u) for u in org.units.values()]},
        dumps=json_dumps,
    )


@routes.post("/api/v1/units")
async def create_unit(request: web.Request) -> web.Response:
    actor = require_actor(request, "units.manage")
    unit = await _save(request, actor, await json_body(request), unit_id=None)
    response = web.json_response(_public(unit), status=201, dumps=json_dumps)
    response.headers["Location"] = f"/api/v1/units/{unit.id}"
    return response


@routes.get(f"/api/v1/units/{UNIT}")
async def get_unit(request: web.Request) -> web.Response:
    require_actor(request, "units.read")
    return web.json_response(_public(await _units(request).get(request.match_info["id"])), dumps=json_dumps)


@routes.put(f"/api/v1/units/{UNIT}")
async def put_unit(request: web.Request) -> web.Response:
    actor = require_actor(request, "units.manage")
    unit = await _save(request, actor, await json_body(request), unit_id=request.match_info["id"])
    return web.json_response(_public(unit), dumps=json_dumps)


@routes.delete(f"/api/v1/units/{UNIT}")
async def delete_unit(request: web.Request) -> web.Response:
    actor = require_actor(request, "units.manage")
    await _delete(request, actor, request.match_info["id"])
    return web.json_response({"deleted": request.match_info["id"]})


@routes.put("/api/v1/users/{name}/unit")
async def put_user_unit(request: web.Request) -> web.Response:
    actor = require_actor(request, "users.manage")
    body = await json_body(request)
    unit_id = body.get("unit") if isinstance(body, dict) else None
    await _assign(request, actor, request.match_info["name"], unit_id)
    return web.json_response({"user": request.match_info["name"], "unit": unit_id})


@routes.get(f"/api/v1/units/{UNIT}/warnings")
async def unit_warnings(request: web.Request) -> web.Response:
    """What a unit issued (?under=true: and the units under it; ?limit=, at most 500), newest
    first, from the units' own index. The public record is shared (platform sharing): staff see
    every state, everybody else the published messages."""
    org = await _units(request).organisation()
    unit_id = request.match_info["id"]
    if org.find(unit_id) is None:
        raise NotFound(N_("No unit with this id."))
    actor = current_actor(request)
    staff = actor is not None and allowed(actor.roles, "units.read")
    limit = _limit(request, 100)
    wanted = await _indexes(request, org, [u.id for u in org.under(unit_id)] if _under(request) else [unit_id])
    messages = await request.app[WARNINGS].of_units(wanted, limit=limit if staff else 500)
    chosen = [m for m in messages if staff or m.state == "published"][:limit]
    settings = request.app[SETTINGS]
    bodies = [message_json(m, registry=request.app[AREAS], settings=settings, staff=staff) for m in chosen]
    return web.json_response({"unit": unit_id, "warnings": bodies}, dumps=json_dumps)


def _unit_of(org: Organisation, unit_id: str) -> str:
    return unit_id if org.find(unit_id) else org.root.id


async def _indexes(request: web.Request, org: Organisation, units: list[str]) -> list[str]:
    """The unit indexes to read for `units`: the release centre's also holds what no current unit
    issued (from before units were configured, or of a unit since deleted)."""
    if org.root.id not in units:
        return units
    return units + await request.app[WARNINGS].units_answered_by_centre(org)


async def unit_deliveries(request: web.Request, unit_id: str, *, under: bool, limit: int = 200) -> dict[str, Any]:
    """Delivery statistics of what a unit published (of its newest `limit` messages): per message
    and summed per channel."""
    org = await _units(request).organisation()
    if org.find(unit_id) is None:
        raise NotFound(N_("No unit with this id."))
    wanted = await _indexes(request, org, [u.id for u in org.under(unit_id)] if under else [org.get(unit_id).id])
    messages = await request.app[WARNINGS].of_units(wanted, limit=limit * 2)
    chosen = [m for m in messages if m.state == "published"][:limit]
    rows: list[dict[str, Any]] = []
    totals: dict[str, dict[str, int]] = {}
    for message in chosen:
        stats = await delivery_stats(request.app[DISPATCH], message.id)
        rows.append({"id": message.id, "unit": _unit_of(org, message.unit), "channels": stats["channels"]})
        for channel, row in stats["channels"].items():
            total = totals.setdefault(channel, dict.fromkeys(COUNTS, 0))
            for name in COUNTS:
                total[name] += row[name]
    return {"unit": unit_id, "warnings": rows, "totals": totals}


def _limit(request: web.Request, default: int) -> int:
    """?limit=: a whole number, clamped to 1-500."""
    try:
        return max(1, min(500, int(request.query.get("limit", str(default)))))
    except ValueError:
        raise ValidationFailed([FieldError("limit", "type", N_("Must be a whole number."))]) from None


def _under(request: web.Request) -> bool:
    """?under=: true or 1 (with the units under it), false or 0, or left out."""
    value = request.query.get("under", "")
    if value not in ("", "true", "false", "1", "0"):
        raise ValidationFailed(
            [FieldError("under", "choice", N_("Choose one of: %(choices)s."), {"choices": "true, false"})]
        )
    return value in ("true", "1")


@routes.get(f"/api/v1/units/{UNIT}/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    """Delivery statistics of a unit's published messages (?under=true: with the units under it)."""
    require_actor(request, "delivery.read")
    body = await unit_deliveries(request, request.match_info["id"], under=_under(request), limit=_limit(request, 200))
    return web.json_response(body, dumps=json_dumps)


# Console


def _form_body(form: Any) -> dict[str, Any]:
    contacts = []
    for line in str(form.get("contacts", "")).splitlines():
        name, _, phone = line.partition(",")
        if name.strip():
            contacts.append({"name": name.strip(), "phone": phone.strip()})
    return {
        "id": str(form.get("id", "")).strip(),
        "names": {"zh-CN": str(form.get("names.zh-CN", "")), "en": str(form.get("names.en", ""))},
        "kind": str(form.get("kind", "")),
        "parent": str(form.get("parent", "")),
        "areas": [str(v) for v in form.getall("areas", []) if str(v)],
        "events": [str(v) for v in form.getall("events", []) if str(v)],
        "sender": str(form.get("sender", "")).strip(),
        "code": str(form.get("code", "")).strip(),
        "contacts": contacts,
    }


async def _console_page(request: web.Request, *, status: int = 200, **context: Any) -> web.Response:
    login_required(request)
    require_actor(request, "units.read")
    await request.app[AREAS].refresh(request.app[REDIS])
    org = await _units(request).organisation()
    edit = context.setdefault("edit", None)
    if "values" not in context:
        found = org.units.get(edit) if edit else None
        context["values"] = found.as_json() if found else {}
    users = await request.app[ACCOUNTS].list_users()
    response = await page(
        request,
        "console/units.html",
        status=status,
        org=org,
        users=users,
        kinds=KINDS,
        kind_names=KIND_NAMES,
        events=EVENTS,
        areas=[a for a in request.app[AREAS].areas if a.level in ("city", "district", "street")],
        registry=request.app[AREAS],
        tag=tag_for(locale(request)),
        errors=context.pop("errors", {}),
        **context,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.get("/console/units")
async def console_units(request: web.Request) -> web.Response:
    return await _console_page(request, edit=request.query.get("edit"))


@routes.post("/console/units")
async def console_save(request: web.Request) -> web.Response:
    actor = require_actor(request, "units.manage")
    form = await request.post()
    edit = str(form.get("id", "")) if form.get("mode") == "edit" else None
    body = _form_body(form)
    try:
        unit = await _save(request, actor, body, unit_id=edit)
    except ValidationFailed as failed:
        errors = {e.field: t(request, e.message, **e.params) for e in failed.errors}
        return await _console_page(request, status=422, values=body, errors=errors, edit=edit)
    raise web.HTTPSeeOther(f"/console/units#unit-{unit.id}")


@routes.post(f"/console/units/{UNIT}/delete")
async def console_delete(request: web.Request) -> web.Response:
    actor = require_actor(request, "units.manage")
    await _delete(request, actor, request.match_info["id"])
    raise web.HTTPSeeOther("/console/units")


@routes.post("/console/units/assign")
async def console_assign(request: web.Request) -> web.Response:
    actor = require_actor(request, "users.manage")
    form = await request.post()
    try:
        await _assign(request, actor, str(form.get("user", "")), str(form.get("unit", "")))
    except ValidationFailed as failed:
        errors = {e.field: t(request, e.message, **e.params) for e in failed.errors}
        return await _console_page(request, status=422, errors=errors)
    raise web.HTTPSeeOther("/console/units#users")
