"""Threshold plans and warning templates as JSON: read by staff, replaced whole by an admin (the
routing table's pattern), every change in the audit log. The console's editors (plans_pages.py)
save through `replace_templates` and `replace_plans`, so their rules are the API's."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from citizen_report.signals import load_thresholds
from foundation.access.audit import Actor
from foundation.errors import Conflict
from foundation.i18n import N_
from publisher.warning_templates import as_json, load_templates, save_templates, validate_templates
from warncast.app_keys import AREAS, AUDIT, REDIS, SETTINGS
from warncast.threshold_plans import Plan, load_plans, save_plans, validate_plans
from warncast.web.requests import json_body, json_dumps, require_actor

routes = web.RouteTableDef()


@routes.get("/api/v1/warning-templates")
async def get_templates(request: web.Request) -> web.Response:
    require_actor(request, "warning.read")
    return web.json_response({"templates": as_json(await load_templates(request.app[REDIS]))}, dumps=json_dumps)


@routes.put("/api/v1/warning-templates")
async def put_templates(request: web.Request) -> web.Response:
    actor = require_actor(request, "plans.edit")
    return web.json_response(
        {"templates": await replace_templates(request, actor, await json_body(request))}, dumps=json_dumps
    )


async def replace_templates(request: web.Request, actor: Actor, body: Any) -> list[dict[str, Any]]:
    redis = request.app[REDIS]
    templates = validate_templates(body, request.app[SETTINGS].languages)
    ids = {t.id for t in templates}
    if used := [p for p in await load_plans(redis) if p.template not in ids]:
        raise Conflict(
            N_("Plan %(plan)s drafts from template %(template)s: change the plan before removing the template."),
            plan=used[0].id,
            template=used[0].template,
        )
    before = as_json(await load_templates(redis))
    await save_templates(redis, templates)
    after = as_json({t.id: t for t in templates})
    await request.app[AUDIT].append(actor.label, "policy.templates", "warning-templates", before=before, after=after)
    return after


@routes.get("/api/v1/plans")
async def get_plans(request: web.Request) -> web.Response:
    require_actor(request, "report.read")
    return web.json_response({"plans": plans_json(await load_plans(request.app[REDIS]))}, dumps=json_dumps)


@routes.put("/api/v1/plans")
async def put_plans(request: web.Request) -> web.Response:
    actor = require_actor(request, "plans.edit")
    return web.json_response({"plans": await replace_plans(request, actor, await json_body(request))}, dumps=json_dumps)


async def replace_plans(request: web.Request, actor: Actor, body: Any) -> list[dict[str, Any]]:
    redis = request.app[REDIS]
    plans = validate_plans(
        body,
        readings=await load_thresholds(redis),
        templates=await load_templates(redis),
        registry=request.app[AREAS],
        languages=request.app[SETTINGS].languages,
    )
    before = plans_json(await load_plans(redis))
    await save_plans(redis, plans)
    await request.app[AUDIT].append(actor.label, "policy.plans", "plans", before=before, after=plans_json(plans))
    return plans_json(plans)


def plans_json(plans: list[Plan]) -> list[dict[str, Any]]:
    return [asdict(p) for p in plans]
