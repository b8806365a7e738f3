"""What anyone can see: the active warnings with a map, a page per warning, and its CAP.

Each keeps its last rendering: while Redis is away a visitor gets the page as last shown (with a
notice; the warnings page offers the latest once /live is back, a warning's page tries again by itself, stoppably)
and a reader the last CAP, both marked stale, instead of an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

from aiohttp import web

from channels.cache import Rendering
from foundation.areas.registry import AreaRegistry
from foundation.areas.svg_map import render_svg
from foundation.errors import NotFound
from foundation.i18n import N_, normalize_locale, tag_for
from foundation.store import keys
from publisher.cap_xml import render_cap
from publisher.model import PUBLISHED, Message
from publisher.taxonomy import EVENTS, GRADE_COLOUR, GRADES
from warncast.app_keys import AREAS, CAP_SIGNER, CATALOGS, REDIS, SETTINGS, SUPERVISOR, WARNINGS
from warncast.web.conditional import STALE_HEADERS, respond
from warncast.web.limits import live_streams
from warncast.web.live import outlets
from warncast.web.pages import page, render_page
from warncast.web.requests import ACTOR, client_ip, keep_language, locale, t

routes = web.RouteTableDef()
PING_SECONDS = 20  # keeps proxies from closing an idle page stream
RETRY_MS = 5000
FAVICON = Path(__file__).resolve().parent / "static" / "favicon.svg"
STALE_RELOAD_SECONDS = 30  # a page served stale tries again this often, until it is current again
STALE_NOTICE = N_("The warning service cannot reach its data right now: this page shows the warnings as last known.")
STALE_NOTICE_LIVE = N_(  # the warnings page, which follows /live
    "The warning service cannot reach its data right now: this page shows the warnings as last known. "
    "It offers the latest as soon as it can."
)


def grade_fills(messages: list[Message], registry: AreaRegistry) -> dict[str, str]:
    """Community code -> colour of the highest grade in force there."""
    rank = {g: i for i, g in enumerate(GRADES)}
    best: dict[str, str] = {}
    for message in messages:
        grade = message.content.grade
        for code in registry.leaves_under(message.content.areas):
            if code not in best or rank[grade] > rank[best[code]]:
                best[code] = grade
    return {code: GRADE_COLOUR[grade] for code, grade in best.items()}


async def public_page(request: web.Request, make: Callable[[], Awaitable[web.Response]]) -> web.Response:
    """The page `make` renders; for visitors without a login also remembered (per path and
    language), so that while Redis is away the last one is served, marked stale. Staff pages carry
    their name and session token: those are never remembered."""
    if ACTOR in request:
        return await make()
    cache = outlets(request).cache
    key = ("page", request.path, locale(request))
    made: list[web.Response] = []

    async def render() -> Rendering:
        response = await make()
        made.append(response)
        assert isinstance(response.body, bytes)
        rendering = Rendering(response.body, "text/html; charset=utf-8")
        cache.keep(key, rendering)
        return rendering

    rendering = await cache.fresh_or_stale(key, render)
    if made:
        return made[0]
    return await stale_page(request, rendering)


async def stale_page(request: web.Request, rendering: Rendering) -> web.Response:
    """A remembered page with a notice that it may be out of date. A page that follows /live (the
    warnings page) offers the latest once it can, without reloading under its reader; any other
    tries again every STALE_RELOAD_SECONDS with JavaScript, saying so with a button to stop it
    (static/retry.js, as the error page), or by its reader following the link."""
    if b'id="live"' in rendering.body:
        notice = f'<p class="notice stale-notice" role="status">{html.escape(t(request, STALE_NOTICE_LIVE))}</p>\n'
        body = rendering.body
    else:
        notice = await render_page(
            request,
            "_retry.html",
            seconds=STALE_RELOAD_SECONDS,
            box_class="notice stale-notice",
            notice=t(request, STALE_NOTICE),
            first_line="",
        )
        script = request.app.router["static"].url_for(filename="retry.js")
        body = rendering.body.replace(b"</body>", f'<script src="{script}" defer></script>\n</body>'.encode(), 1)
    body = body.replace(b"<main>", b"<main>\n" + notice.encode(), 1)
    return web.Response(body=body, headers={"Content-Type": rendering.content_type, **STALE_HEADERS})


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return await public_page(request, lambda: _index(request))


async def _index(request: web.Request) -> web.Response:
    await request.app[AREAS].refresh(request.app[REDIS])
    active = await request.app[WARNINGS].active()
    tag = tag_for(locale(request))
    svg = render_svg(
        [a.as_record() for a in request.app[AREAS].areas],
        grade_fills(active, request.app[AREAS]),
        locale=tag,
        title=request.app[CATALOGS].text(locale(request), N_("Map of warnings in force")),
    )
    return await page(
        request,
        "public/index.html",
        warnings=active,
        map_svg=svg,
        events=EVENTS,
        tag=tag,
        registry=request.app[AREAS],
        warned=_warned_communities(active, request.app[AREAS], tag),
        version=await outlets(request).follower.current(),
        now=request.app[WARNINGS].now(),
    )


def _warned_communities(messages: list[Message], registry: AreaRegistry, tag: str) -> list[tuple[str, str]]:
    """(name, grade) of each community under a warning, highest grade there: the map's colours as
    text, for a phone (no hover tooltips) and a screen reader."""
    rank = {g: i for i, g in enumerate(GRADES)}
    best: dict[str, str] = {}
    for message in messages:
        for code in registry.leaves_under(message.content.areas):
            if code not in best or rank[message.content.grade] > rank[best[code]]:
                best[code] = message.content.grade
    named = [(area.name_in(tag), grade) for code, grade in best.items() if (area := registry.get(code))]
    return sorted(named, key=lambda item: (-rank[item[1]], item[0]))


@routes.get("/live")
async def live_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events for the public page: the version of what is published now, then each new
    one. The page offers the latest to its reader (never reloads under them); it is what replaces a
    timed refresh. Each address may hold WARNCAST_SSE_PER_IP streams, like the screens'."""
    streams, ip = live_streams(request), client_ip(request)
    streams.open(ip, request)
    try:
        return await _live_stream(request)
    finally:
        streams.close(ip, request)


async def _live_stream(request: web.Request) -> web.StreamResponse:
    live = outlets(request)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    queue = live.pages.join()
    try:
        version = await live.follower.current()
        await response.write(f"retry: {RETRY_MS}\n\nevent: version\ndata: {version}\n\n".encode())
        while True:
            try:
                version = await asyncio.wait_for(queue.get(), PING_SECONDS)
            except TimeoutError:
                await response.write(b": ping\n\n")
                continue
            if not version:  # shutting down
                break
            await response.write(f"event: version\ndata: {version}\n\n".encode())
    except ConnectionResetError:
        return response
    finally:
        live.pages.leave(queue)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


@routes.get("/favicon.ico")
async def favicon(request: web.Request) -> web.Response:
    """Browsers ask for it on every site; an SVG answers for all of them."""
    return web.Response(
        body=FAVICON.read_bytes(), content_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


async def _published(request: web.Request, message_id: str) -> Message:
    message = await request.app[WARNINGS].get(message_id)
    if message.state != PUBLISHED:
        raise NotFound(N_("No warning with this id."))
    return message


@routes.get("/warnings/{id}")
async def warning_page(request: web.Request) -> web.Response:
    """The public page of one message: the verify link in every SMS and chat message."""
    return await public_page(request, lambda: _warning_page(request))


async def _warning_page(request: web.Request) -> web.Response:
    message = await _published(request, request.match_info["id"])
    thread = await request.app[WARNINGS].thread(message.thread)
    history = await request.app[WARNINGS].thread_messages(message.thread)
    return await page(
        request,
        "public/warning.html",
        message=message,
        thread=thread,
        history=history,
        events=EVENTS,
        tag=tag_for(locale(request)),
        registry=request.app[AREAS],
        now=request.app[WARNINGS].now(),
    )


@routes.get("/cap/{id}.xml")
async def cap(request: web.Request) -> web.Response:
    """A published message never changes, so its CAP is rendered once (per area registry version);
    while Redis is away, the last rendering is served, marked stale."""
    cache = outlets(request).cache
    message_id = request.match_info["id"]
    return respond(request, await cache.fresh_or_stale(("cap", message_id), lambda: _cap(request, message_id)))


async def _cap(request: web.Request, message_id: str) -> Rendering:
    message = await _published(request, message_id)

    async def render() -> Rendering:
        references = [await request.app[WARNINGS].get(ref) for ref in message.references]
        body = render_cap(
            message,
            references=references,
            registry=request.app[AREAS],
            settings=request.app[SETTINGS],
            catalogs=request.app[CATALOGS],
            signer=request.app[CAP_SIGNER],
        )
        sent = datetime.fromisoformat(message.sent) if message.sent else None
        return Rendering(body, "application/cap+xml; charset=utf-8", last_modified=sent)

    return await outlets(request).cache.get(("cap", message_id), request.app[AREAS].version, 0.0, render)


@routes.get("/cap/certificates.pem")
async def cap_certificates(request: web.Request) -> web.Response:
    """Every certificate published CAP may be signed with, the current one first: what a partner
    verifies our signatures against (each signature also carries its certificate)."""
    body = b"".join(request.app[CAP_SIGNER].certificates)
    return web.Response(
        body=body,
        content_type="application/x-pem-file",
        headers={"Cache-Control": "public, max-age=3600", "Content-Disposition": 'inline; filename="warncast-cap.pem"'},
    )


@routes.get("/cap/{id}.html")
async def cap_page(request: web.Request) -> web.Response:
    """The CAP message for a person: its main fields, read, beside the raw XML (which the .xml
    link downloads for machines)."""
    return await public_page(request, lambda: _cap_page(request))


async def _cap_page(request: web.Request) -> web.Response:
    message_id = request.match_info["id"]
    xml = await _cap(request, message_id)
    message = await _published(request, message_id)
    return await page(
        request,
        "public/cap.html",
        message=message,
        xml=xml.body.decode(),
        events=EVENTS,
        tag=tag_for(locale(request)),
        registry=request.app[AREAS],
    )


@routes.get("/lang/{code}")
async def switch_language(request: web.Request) -> web.Response:
    chosen = normalize_locale(request.match_info["code"]) or "zh_Hans"
    target = request.query.get("next", "/")
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        target = "/"  # only local redirects: no open redirect
    response = web.HTTPSeeOther(target)
    keep_language(response, chosen)
    raise response


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready, for a load balancer: Redis takes a write (a short-lived SET: a replica, or a primary
    short of its replicas, refuses it) within a few seconds, and every background loop runs and has
    reported in within its `within` seconds (none stuck, none failing for longer than the
    supervisor's grace). Otherwise 503. The body names each check: `redis` ("ok" or the error),
    and per loop its state, seconds since it last reported and its limit; `failing` says why."""
    body: dict[str, object] = {"status": "ok", "redis": "ok"}
    ready = True
    try:
        async with asyncio.timeout(READY_WRITE_SECONDS):
            await request.app[REDIS].set(keys.READY_PROBE, f"{time.time():.3f}", px=READY_PROBE_MS)
    except TimeoutError:
        body["redis"], ready = f"no answer to a write within {READY_WRITE_SECONDS:g} s", False
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        body["redis"], ready = f"{exc.__class__.__name__}: {exc}"[:200], False
    supervisor = request.app[SUPERVISOR]
    health = supervisor.health()
    body["loops"] = {
        name: {
            "state": h.state,
            "since_report": round(h.silent_for(), 3),
            "within": h.within,
            "restarts": h.restarts,
            "last_error": h.last_error,
        }
        for name, h in health.items()
    }
    failing = {h.name: {**h.as_dict(), "why": "failing"} for h in supervisor.failing()}
    for h in supervisor.silent():
        why = f"no report for {h.silent_for():.1f} s (at most {h.within:g} s)"
        failing[h.name] = {**failing.get(h.name, h.as_dict()), "why": why}
    if failing:
        body["failing"], ready = failing, False
    if not ready:
        body["status"] = "unavailable"
        return web.json_response(body, status=503)
    return web.json_response(body)


READY_WRITE_SECONDS = 3.0  # a Redis that takes longer to answer a write is not ready
READY_PROBE_MS = 10_000  # the probe key lives this long
