"""Display screens: the kiosk page, its JSON, LED text and live stream; the registry API and console.

What screens fetch keeps working while Redis is away, from the screen records and states last read
(marked stale, see channels.screens); only a screen this process never served gets 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime
from typing import Any

from aiohttp import web

from channels.screens import Screen
from channels.screens.hub import CLOSE, sse_event
from channels.screens.registry import ENCODINGS, LANGUAGES, ORIENTATIONS, TEXT_SIZES, parse_screen, screen_status
from foundation.errors import Conflict, NotFound, ValidationFailed
from foundation.i18n import N_, tag_for
from warncast.app_keys import AREAS, AUDIT, REDIS, SETTINGS
from warncast.web.conditional import respond
from warncast.web.limits import live_streams
from warncast.web.live import outlets
from warncast.web.pages import page
from warncast.web.requests import client_ip, form_body, json_body, locale, login_required, require_actor, t

routes = web.RouteTableDef()
SCREEN = "{id:[a-z0-9][a-z0-9-]{0,39}}"
PING_SECONDS = 20  # keeps proxies from closing an idle stream, and renews the heartbeat
RETRY_MS = 3000


async def _screen(request: web.Request, via: str) -> Screen:
    screens = outlets(request).screens
    screen = await screens.screen(request.match_info["id"])
    await screens.heartbeat(screen.id, via)
    return screen


# What screens fetch (public: a screen shows public information and holds no credentials).


@routes.get(f"/screens/{SCREEN}")
async def kiosk(request: web.Request) -> web.Response:
    screen = await _screen(request, "page")
    return await page(request, "screens/kiosk.html", screen=screen, lang=screen.languages[0])


@routes.get(f"/screens/{SCREEN}.json")
async def screen_json(request: web.Request) -> web.Response:
    screen = await _screen(request, "json")
    return respond(request, await outlets(request).screens.state(screen))


@routes.get(f"/screens/{SCREEN}.txt")
async def screen_txt(request: web.Request) -> web.Response:
    screen = await _screen(request, "txt")
    return respond(request, await outlets(request).screens.text(screen))


@routes.get(f"/screens/{SCREEN}/events")
async def screen_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the state now, then each change; a comment every PING_SECONDS.

    Each client address may hold WARNCAST_SSE_PER_IP streams (a control room's screens share one
    address); more are refused with 429, so that one client cannot hold all of this process's sockets."""
    streams, ip = live_streams(request), client_ip(request)
    streams.open(ip, request)
    try:
        return await _stream(request)
    finally:
        streams.close(ip, request)


async def _stream(request: web.Request) -> web.StreamResponse:
    live = outlets(request)
    screen = await _screen(request, "events")
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    conn = live.hub.connect(screen)
    try:
        state = await live.screens.state(screen)
        conn.sent_etag = state.etag
        await response.write(f"retry: {RETRY_MS}\n\n".encode() + sse_event("state", state.body))
        while True:
            try:
                payload = await asyncio.wait_for(conn.queue.get(), PING_SECONDS)
            except TimeoutError:
                payload = b": ping\n\n"
                await live.screens.heartbeat(screen.id, "events", force=True)
            if payload == CLOSE:
                break
            await response.write(payload)
    except ConnectionResetError:
        return response  # the screen went away; nothing to tell it
    finally:
        live.hub.disconnect(conn)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


# The registry: API (read for staff, edit for admins) and console pages.


@routes.get("/api/v1/screens")
async def list_screens(request: web.Request) -> web.Response:
    require_actor(request, "screens.read")
    return web.json_response({"screens": await _overview(request)})


@routes.post("/api/v1/screens")
async def create_screen(request: web.Request) -> web.Response:
    screen = await _save(request, await json_body(request), None)
    response = web.json_response(screen.as_json(), status=201)
    response.headers["Location"] = f"/api/v1/screens/{screen.id}"
    return response


@routes.get("/api/v1/screens/{id}")
async def get_screen(request: web.Request) -> web.Response:
    require_actor(request, "screens.read")
    wanted = request.match_info["id"]
    for item in await _overview(request):
        if item["id"] == wanted:
            return web.json_response(item)
    raise NotFound(N_("No screen with this id."))


@routes.put("/api/v1/screens/{id}")
async def put_screen(request: web.Request) -> web.Response:
    screen = await _save(request, await json_body(request), request.match_info["id"])
    return web.json_response(screen.as_json())


@routes.delete("/api/v1/screens/{id}")
async def delete_screen(request: web.Request) -> web.Response:
    await _delete(request)
    return web.json_response({"deleted": request.match_info["id"]})


async def _save(request: web.Request, body: Any, screen_id: str | None) -> Screen:
    """Create (no id given: it comes from the body) or replace the screen `screen_id`."""
    actor = require_actor(request, "screens.manage")
    registry = outlets(request).screens.registry
    create = screen_id is None
    await request.app[AREAS].refresh(request.app[REDIS])
    screen = parse_screen(body, request.app[AREAS], screen_id=screen_id)
    before = (await registry.all(fresh=True)).get(screen.id)
    if not await registry.save(screen, create=create):
        if create:
            raise Conflict(N_("A screen with this id exists already."))
        raise NotFound(N_("No screen with this id."))
    await request.app[AUDIT].append(
        actor.label,
        "screen.create" if create else "screen.edit",
        screen.id,
        before=before.as_json() if before else None,
        after=screen.as_json(),
    )
    await outlets(request).hub.refresh()  # open streams of an edited screen get its new state now
    return screen


async def _delete(request: web.Request) -> None:
    actor = require_actor(request, "screens.manage")
    screen_id = request.match_info["id"]
    if not await outlets(request).screens.registry.delete(screen_id):
        raise NotFound(N_("No screen with this id."))
    await request.app[AUDIT].append(actor.label, "screen.delete", screen_id)
    await outlets(request).hub.refresh()


async def _overview(request: web.Request) -> list[dict[str, Any]]:
    """Every screen with its status (online / stale / offline) and the warnings it shows now."""
    screens = outlets(request).screens
    seen = await screens.registry.last_seen()
    now = time.time()
    out = []
    for screen in sorted((await screens.registry.all(fresh=True)).values(), key=lambda s: s.id):
        beat = seen.get(screen.id, {})
        shown = await screens.shown(screen)
        out.append(
            {
                **screen.as_json(),
                "status": screen_status(beat.get("at"), now),
                "last_seen": beat.get("at"),
                "via": beat.get("via"),
                "showing": [
                    {
                        "id": m.id,
                        "grade": m.content.grade,
                        "headline": {k: v.headline for k, v in m.content.info.items()},
                    }
                    for m in shown
                ],
                "links": {"page": f"/screens/{screen.id}", "json": f"/screens/{screen.id}.json"},
            }
        )
    return out


def _form_body(form: Any) -> dict[str, Any]:
    body: dict[str, Any] = {k: str(form.get(k, "")) for k in ("id", "name", "location", "area")}
    body.update({k: str(form[k]) for k in ("orientation", "text_size", "encoding") if form.get(k)})
    body.update({k: str(form[k]).strip() for k in ("line_width", "rotate_seconds") if form.get(k)})
    body["languages"] = [str(v) for v in form.getall("languages", [])]
    body["show_map"] = form.get("show_map") == "on"
    return body


async def _console_page(request: web.Request, *, status: int = 200, **context: Any) -> web.Response:
    login_required(request)
    require_actor(request, "screens.read")
    overview = await _overview(request)
    edit = context.get("edit")
    if "values" not in context:
        found = next((item for item in overview if item["id"] == edit), None)
        context["values"] = found or {}
    return await page(
        request,
        "console/screens.html",
        status=status,
        screens=overview,
        areas=request.app[AREAS].areas,
        registry=request.app[AREAS],
        seen={
            i["id"]: datetime.fromtimestamp(i["last_seen"], request.app[SETTINGS].tz)
            for i in overview
            if i["last_seen"]
        },
        tag=tag_for(locale(request)),
        choices={"orientation": ORIENTATIONS, "text_size": TEXT_SIZES, "encoding": ENCODINGS},
        screen_languages=LANGUAGES,
        errors=context.pop("errors", {}),
        **context,
    )


@routes.get("/console/screens")
async def console_screens(request: web.Request) -> web.Response:
    return await _console_page(request, edit=request.query.get("edit"))


@routes.post("/console/screens")
async def console_save(request: web.Request) -> web.Response:
    form = await form_body(request)
    edit = str(form.get("id", "")) if form.get("mode") == "edit" else None
    try:
        screen = await _save(request, _form_body(form), edit)
    except ValidationFailed as failed:
        errors = {e.field: t(request, e.message, **e.params) for e in failed.errors}
        return await _console_page(request, status=422, values=_form_body(form), errors=errors, edit=edit)
    raise web.HTTPSeeOther(f"/console/screens#screen-{screen.id}")


@routes.post("/console/screens/{id}/delete")
async def console_delete(request: web.Request) -> web.Response:
    await _delete(request)
    raise web.HTTPSeeOther("/console/screens")
