"""What anyone can see: the active warnings with a map, a page per warning, and its CAP."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlparse

from aiohttp import web

from channels.cache import Rendering
from foundation.areas.registry import AreaRegistry
from foundation.areas.svg_map import render_svg
from foundation.errors import NotFound
from foundation.i18n import LANG_COOKIE, N_, normalize_locale, tag_for
from publisher.cap_xml import render_cap
from publisher.model import PUBLISHED, Message
from publisher.taxonomy import EVENTS, GRADE_COLOUR, GRADES
from warncast.app_keys import AREAS, CATALOGS, REDIS, SETTINGS, SUPERVISOR, WARNINGS
from warncast.web.conditional import respond
from warncast.web.live import outlets
from warncast.web.pages import page
from warncast.web.requests import locale

routes = web.RouteTableDef()


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


@routes.get("/")
async def index(request: web.Request) -> web.Response:
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
        request, "public/index.html", warnings=active, map_svg=svg, events=EVENTS, tag=tag, registry=request.app[AREAS]
    )


async def _published(request: web.Request, message_id: str) -> Message:
    message = await request.app[WARNINGS].get(message_id)
    if message.state != PUBLISHED:
        raise NotFound(N_("No warning with this id."))
    return message


@routes.get("/warnings/{id}")
async def warning_page(request: web.Request) -> web.Response:
    """The public page of one message: the verify link in every SMS and chat message."""
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
    """A published message never changes, so its CAP is rendered once (per area registry version)."""
    message = await _published(request, request.match_info["id"])

    async def render() -> Rendering:
        references = [await request.app[WARNINGS].get(ref) for ref in message.references]
        body = render_cap(
            message,
            references=references,
            registry=request.app[AREAS],
            settings=request.app[SETTINGS],
            catalogs=request.app[CATALOGS],
        )
        sent = datetime.fromisoformat(message.sent) if message.sent else None
        return Rendering(body, "application/cap+xml; charset=utf-8", last_modified=sent)

    rendering = await outlets(request).cache.get(("cap", message.id), request.app[AREAS].version, 0.0, render)
    return respond(request, rendering)


@routes.get("/lang/{code}")
async def switch_language(request: web.Request) -> web.Response:
    chosen = normalize_locale(request.match_info["code"]) or "zh_Hans"
    target = request.query.get("next", "/")
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        target = "/"  # only local redirects: no open redirect
    response = web.HTTPSeeOther(target)
    response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="Lax", httponly=True)
    raise response


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready: Redis answers and no background loop has been failing for more than a few seconds
    (the supervisor's grace); otherwise 503, naming what is wrong."""
    body: dict[str, object] = {"status": "ok", "redis": "ok"}
    ready = True
    try:
        await request.app[REDIS].ping()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        body["redis"], ready = str(exc)[:200], False
    supervisor = request.app[SUPERVISOR]
    body["loops"] = {name: health.state for name, health in supervisor.health().items()}
    if failing := supervisor.failing():
        body["failing"] = {health.name: health.as_dict() for health in failing}
        ready = False
    if not ready:
        body["status"] = "unavailable"
        return web.json_response(body, status=503)
    return web.json_response(body)
