"""Delivery in the API and console: previews, progress, outbox, dead letters, channel policy,
Prometheus metrics and the short verify link used in messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from channels.duty_groups.tools import TOOLS
from channels.outbox import read_outbox
from foundation.errors import NotFound
from foundation.i18n import N_, tag_for
from foundation.store import keys
from foundation.store.streams import decoded_hash
from publisher.coverage import affected_areas
from publisher.dispatch.deadletters import list_dead, replay
from publisher.dispatch.preview import preview
from publisher.dispatch.stats import delivery_stats
from publisher.identifiers import is_identifier
from publisher.model import DRAFT, Message
from publisher.policy import PUSH_CHANNELS, validate_policy
from warncast.app_keys import AREAS, AUDIT, CHANNELS, DISPATCH, POLICY, REDIS, SETTINGS, WARNINGS
from warncast.web.live import outlets
from warncast.web.pages import page
from warncast.web.requests import form_body, json_body, json_dumps, locale, require_actor
from warncast.web.units import unit_deliveries

routes = web.RouteTableDef()


@routes.get("/w/{id}")
async def short_link(request: web.Request) -> web.Response:
    """The verify link in every SMS and chat message: short, and redirects to the public page."""
    message_id = request.match_info["id"]
    if not is_identifier(message_id):
        raise NotFound(N_("No warning with this id."))
    raise web.HTTPFound(f"/warnings/{message_id}")


@routes.get("/api/v1/warnings/{id}/preview")
async def preview_saved(request: web.Request) -> web.Response:
    require_actor(request, "warning.read")
    message = await request.app[WARNINGS].get(request.match_info["id"])
    return web.json_response(await _preview(request, message), dumps=json_dumps)


@routes.post("/api/v1/warnings/preview")
async def preview_unsaved(request: web.Request) -> web.Response:
    """The compose page's live preview: the same body as a new warning, validated, not stored."""
    require_actor(request, "warning.create")
    content = request.app[WARNINGS]._parse(await json_body(request))
    now = request.app[WARNINGS].now().isoformat()
    draft = Message(
        id="preview",
        thread="preview",
        msg_type="Alert",
        state=DRAFT,
        content=content,
        drafter="",
        created=now,
        updated=now,
    )
    return web.json_response(await _preview(request, draft), dumps=json_dumps)


async def _preview(request: web.Request, message: Message) -> dict[str, Any]:
    """The dispatch preview, and the display screens that would show the warning."""
    result = await preview(request.app[DISPATCH], message)
    areas = affected_areas(message.content, request.app[AREAS])
    screens = await outlets(request).screens.screens()
    result["impact"]["screens"] = sum(1 for s in screens.values() if s.area in areas)
    return result


@routes.get("/api/v1/warnings/{id}/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    require_actor(request, "warning.read")
    message = await request.app[WARNINGS].get(request.match_info["id"])
    body = await delivery_stats(request.app[DISPATCH], message.id)
    if message.id == (await request.app[WARNINGS].thread(message.thread)).current:
        body["expiry_notice"] = await delivery_stats(request.app[DISPATCH], f"{message.id}:expired")
    return web.json_response(body, dumps=json_dumps)


def _channel(request: web.Request) -> str:
    name = request.match_info["channel"]
    if name not in (*PUSH_CHANNELS, *TOOLS):  # resident channels and the duty-group robots
        raise NotFound(N_("No such channel."))
    return name


@routes.get("/api/v1/outbox/{channel}")
async def outbox(request: web.Request) -> web.Response:
    require_actor(request, "delivery.read")
    entries = await read_outbox(request.app[REDIS], _channel(request), count=200)
    return web.json_response({"channel": request.match_info["channel"], "entries": entries}, dumps=json_dumps)


@routes.get("/api/v1/dispatch/dead-letters")
async def dead_letters(request: web.Request) -> web.Response:
    require_actor(request, "delivery.read")
    total, entries = await list_dead(request.app[DISPATCH])
    return web.json_response(
        {"total": total, "entries": [{k: v for k, v in e.items() if k != "raw"} for e in entries]}, dumps=json_dumps
    )


async def _replay_dead_letters(request: web.Request) -> int:
    actor = require_actor(request, "delivery.replay")
    count = await replay(request.app[DISPATCH])
    await request.app[AUDIT].append(actor.label, "dispatch.replay", "dead-letters", count=count)
    return count


@routes.post("/api/v1/dispatch/dead-letters/replay")
async def replay_dead(request: web.Request) -> web.Response:
    return web.json_response({"replayed": await _replay_dead_letters(request)})


@routes.get("/api/v1/channel-policy")
async def get_policy(request: web.Request) -> web.Response:
    require_actor(request, "warning.read")
    return web.json_response(await request.app[POLICY].get())


@routes.put("/api/v1/channel-policy")
async def put_policy(request: web.Request) -> web.Response:
    actor = require_actor(request, "rules.edit")
    policy = validate_policy(await json_body(request))
    before = await request.app[POLICY].get()
    await request.app[POLICY].save(policy)
    await request.app[AUDIT].append(actor.label, "policy.channels", "channel-policy", before=before, after=policy)
    return web.json_response(policy)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus: delivery counters summed over every worker (kept in Redis), queue gauges."""
    totals = decoded_hash(await request.app[REDIS].hgetall(keys.DELIVERY_TOTALS))
    registry = CollectorRegistry()
    counter = Counter(
        "warncast_deliveries", "Deliveries by channel and outcome", ["channel", "outcome"], registry=registry
    )
    for name, total in totals.items():
        channel, _, outcome = name.partition(".")
        counter.labels(channel, outcome).inc(int(total))
    gauges = {
        "warncast_dispatch_queue_length": (
            "Segments waiting on the dispatch queue",
            await request.app[REDIS].xlen(keys.DISPATCH_QUEUE),
        ),
        "warncast_dispatch_retries_scheduled": (
            "Deliveries waiting for a retry",
            await request.app[REDIS].zcard(keys.DISPATCH_RETRY),
        ),
        "warncast_dispatch_dead_letters": (
            "Deliveries that failed every attempt",
            await request.app[REDIS].llen(keys.DISPATCH_DEAD),
        ),
        "warncast_warnings_active": ("Warnings in force", len(await request.app[WARNINGS].active())),
    }
    for name, (doc, value) in gauges.items():
        Gauge(name, doc, registry=registry).set(value)
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


# console pages


@routes.get("/console/delivery")
async def delivery_page(request: web.Request) -> web.Response:
    require_actor(request, "delivery.read")
    outboxes = {ch: await read_outbox(request.app[REDIS], ch, count=50) for ch in PUSH_CHANNELS}
    total, dead = await list_dead(request.app[DISPATCH], count=100)
    org = await request.app[WARNINGS].units.organisation()
    unit = request.query.get("unit", "")
    by_unit = await unit_deliveries(request, unit, under=True) if unit and org.find(unit) else None
    return await page(
        request,
        "console/delivery.html",
        outboxes=outboxes,
        dead_total=total,
        dead=dead,
        outbox_mode={ch: request.app[CHANNELS][ch].outbox_mode for ch in request.app[CHANNELS]},
        policy=await request.app[POLICY].get(),
        channels=PUSH_CHANNELS,
        now=datetime.now(request.app[SETTINGS].tz),
        org=org,
        unit_filter=unit,
        by_unit=by_unit,
        tag=tag_for(locale(request)),
    )


@routes.post("/console/delivery/replay")
async def delivery_replay(request: web.Request) -> web.Response:
    await _replay_dead_letters(request)
    raise web.HTTPSeeOther("/console/delivery")


@routes.post("/console/delivery/policy")
async def delivery_policy(request: web.Request) -> web.Response:
    actor = require_actor(request, "rules.edit")
    form = await form_body(request)
    body = {
        grade: {ch: str(form.get(f"{grade}.{ch}", "")) for ch in PUSH_CHANNELS}
        for grade in ("blue", "yellow", "orange", "red")
    }
    policy = validate_policy(body)
    before = await request.app[POLICY].get()
    await request.app[POLICY].save(policy)
    await request.app[AUDIT].append(actor.label, "policy.channels", "channel-policy", before=before, after=policy)
    raise web.HTTPSeeOther("/console/delivery")
