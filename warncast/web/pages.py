"""Rendering a page: the template context every page shares."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from foundation.access.roles import allowed
from foundation.i18n import SUPPORTED
from foundation.templating import render
from warncast.app_keys import SETTINGS, TEMPLATES
from warncast.web.requests import ACTOR, CSRF, locale, translations


async def page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    actor = request.get(ACTOR)
    html = await render(
        request.app[TEMPLATES],
        template,
        {
            "translations": translations(request),
            "locale": locale(request),
            "tz": request.app[SETTINGS].tz,
            "languages": SUPPORTED,
            "request": request,
            "actor": actor,
            "can": (lambda action: actor is not None and allowed(actor.roles, action)),
            "csrf_token": request.get(CSRF, ""),
            "map_tiles": request.app[SETTINGS].map_tiles,  # macros/map.html: raster tiles, if configured
            "map_tiles_attribution": request.app[SETTINGS].map_tiles_attribution,
            **context,
        },
    )
    return web.Response(text=html, status=status, content_type="text/html")
