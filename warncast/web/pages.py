"""Rendering a page: the template context every page shares."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from foundation.access.roles import allowed
from foundation.i18n import SUPPORTED, language_name, locale_for_tag
from foundation.templating import render
from warncast.app_keys import CATALOGS, SETTINGS, TEMPLATES
from warncast.web.requests import ACTOR, CSRF, locale, translations


async def page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    return web.Response(text=await render_page(request, template, **context), status=status, content_type="text/html")


async def render_page(request: web.Request, template: str, **context: Any) -> str:
    """A template (a page, or a fragment of one) rendered with the context every page shares."""
    actor = request.get(ACTOR)
    catalogs = request.app[CATALOGS]

    def text_in(tag: str, message: str, **params: object) -> str:
        """A label in another language than the page's: a card in its own language."""
        return catalogs.text(locale_for_tag(tag) or locale(request), message, **params)

    return await render(
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
            "text_in": text_in,
            # Where the language switch comes back to: this page without its ?lang=, which would
            # otherwise choose the old language again.
            "here": str(request.rel_url.without_query_params("lang")),
            "language_name": lambda tag: language_name(tag, locale(request)),
            "map_tiles_attribution": request.app[SETTINGS].map_tiles_attribution,
            **context,
        },
    )
