"""Duty groups: the units' group robots (WeCom, DingTalk, Feishu), the API and the console page
(staff read, admins register; keys and secrets are never shown back, only a hint)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from channels.duty_groups.registry import LANGUAGES, RECEIVES, DutyGroup, DutyGroups, parse_group
from channels.duty_groups.tools import TOOLS
from channels.outbox import read_outbox
from foundation.access.audit import Actor
from foundation.errors import ValidationFailed
from foundation.i18n import tag_for
from publisher.taxonomy import GRADE_NAMES, GRADES
from warncast.app_keys import AUDIT, REDIS, WARNINGS
from warncast.web.pages import page
from warncast.web.requests import json_body, json_dumps, locale, login_required, require_actor, t

routes = web.RouteTableDef()
GROUP = "{id:[a-z0-9][a-z0-9-]{0,39}}"


def _groups(request: web.Request) -> DutyGroups:
    return DutyGroups(request.app[REDIS])


def _public(group: DutyGroup) -> dict[str, Any]:
    return {**group.as_json(), "links": {"self": f"/api/v1/duty-groups/{group.id}"}}


async def _save(request: web.Request, actor: Actor, body: Any, *, group_id: str | None) -> DutyGroup:
    org = await request.app[WARNINGS].units.organisation()
    keep = await _groups(request).credentials(group_id) if group_id else None
    group, creds = parse_group(body, org, group_id=group_id, keep=keep)
    before = await _groups(request).save(group, creds, create=group_id is None)
    saved = await _groups(request).get(group.id)
    action = "duty_group.create" if before is None else "duty_group.edit"
    await request.app[AUDIT].append(
        actor.label,
        action,
        group.id,
        unit=group.unit,
        before=before.as_json() if before else None,
        after=saved.as_json(),
    )
    return saved


# API


@routes.get("/api/v1/duty-groups")
async def list_groups(request: web.Request) -> web.Response:
    require_actor(request, "units.read")
    groups = list((await _groups(request).all()).values())
    if unit := request.query.get("unit"):
        groups = [g for g in groups if g.unit == unit]
    return web.json_response({"duty_groups": [_public(g) for g in groups]}, dumps=json_dumps)


@routes.post("/api/v1/duty-groups")
async def create_group(request: web.Request) -> web.Response:
    actor = require_actor(request, "duty_groups.manage")
    group = await _save(request, actor, await json_body(request), group_id=None)
    response = web.json_response(_public(group), status=201, dumps=json_dumps)
    response.headers["Location"] = f"/api/v1/duty-groups/{group.id}"
    return response


@routes.get(f"/api/v1/duty-groups/{GROUP}")
async def get_group(request: web.Request) -> web.Response:
    require_actor(request, "units.read")
    return web.json_response(_public(await _groups(request).get(request.match_info["id"])), dumps=json_dumps)


@routes.put(f"/api/v1/duty-groups/{GROUP}")
async def put_group(request: web.Request) -> web.Response:
    actor = require_actor(request, "duty_groups.manage")
    group = await _save(request, actor, await json_body(request), group_id=request.match_info["id"])
    return web.json_response(_public(group), dumps=json_dumps)


@routes.delete(f"/api/v1/duty-groups/{GROUP}")
async def delete_group(request: web.Request) -> web.Response:
    actor = require_actor(request, "duty_groups.manage")
    before = await _groups(request).delete(request.match_info["id"])
    await request.app[AUDIT].append(
        actor.label, "duty_group.delete", before.id, unit=before.unit, before=before.as_json()
    )
    return web.json_response({"deleted": before.id})


# Console


def _form_body(form: Any) -> dict[str, Any]:
    body: dict[str, Any] = {k: str(form.get(k, "")) for k in ("id", "unit", "tool", "name", "min_grade", "lang")}
    body["receives"] = [str(v) for v in form.getall("receives", []) if str(v)]
    body["active"] = form.get("active") == "on"
    body["include_drills"] = form.get("include_drills") == "on"
    for secret in ("token", "secret"):  # left empty on an edit: keep what is stored
        if str(form.get(secret, "")).strip():
            body[secret] = str(form[secret]).strip()
    return body


async def _console_page(request: web.Request, *, status: int = 200, **context: Any) -> web.Response:
    login_required(request)
    require_actor(request, "units.read")
    groups = list((await _groups(request).all()).values())
    context.setdefault("values", {"active": True, "include_drills": True, "receives": list(RECEIVES)})
    outbox = {tool: await read_outbox(request.app[REDIS], tool, count=5) for tool in TOOLS}
    response = await page(
        request,
        "console/duty_groups.html",
        status=status,
        groups=groups,
        org=await request.app[WARNINGS].units.organisation(),
        tools=TOOLS,
        receives=RECEIVES,
        group_languages=LANGUAGES,
        grades=GRADES,
        grade_names=GRADE_NAMES,
        outbox=outbox,
        tag=tag_for(locale(request)),
        errors=context.pop("errors", {}),
        **context,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.get("/console/duty-groups")
async def console_groups(request: web.Request) -> web.Response:
    return await _console_page(request)


@routes.post("/console/duty-groups")
async def console_save(request: web.Request) -> web.Response:
    actor = require_actor(request, "duty_groups.manage")
    form = await request.post()
    body = _form_body(form)
    existing = str(form.get("id", "")) if form.get("mode") == "edit" else None
    try:
        group = await _save(request, actor, body, group_id=existing)
    except ValidationFailed as failed:
        errors = {e.field: t(request, e.message, **e.params) for e in failed.errors}
        return await _console_page(request, status=422, values=body, errors=errors)
    raise web.HTTPSeeOther(f"/console/duty-groups#group-{group.id}")
