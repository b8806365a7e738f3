"""Feeds: RSS 2.0 and Atom of published warnings, and the CAP Atom index; all conditional GETs."""

from __future__ import annotations

from aiohttp import web

from channels.feeds import ATOM, RSS, FeedQuery
from foundation.errors import ValidationFailed
from foundation.i18n import N_, normalize_locale, tag_for
from publisher.taxonomy import GRADES
from publisher.validation import Collector
from warncast.app_keys import AREAS
from warncast.web.conditional import respond
from warncast.web.live import outlets
from warncast.web.requests import locale

routes = web.RouteTableDef()


def feed_query(request: web.Request) -> tuple[FeedQuery, str | None]:
    """The reader's filters, checked; and what the answer varies by when the language was implicit."""
    registry = request.app[AREAS]
    errs = Collector()
    vary = None
    raw_lang = request.query.get("lang")
    if raw_lang is None:
        tag, vary = tag_for(locale(request)), "Accept-Language, Cookie"
    elif found := normalize_locale(raw_lang):
        tag = tag_for(found)
    else:
        tag = ""
        errs.add("lang", "choice", N_("Choose one of: %(choices)s."), choices="zh-CN, en")
    area = request.query.get("area") or None
    if area is not None and registry.get(area) is None:
        errs.add("area", "unknown", N_("No area with this code; see /api/v1/areas."))
    min_grade = request.query.get("min_grade") or None
    if min_grade is not None and min_grade not in GRADES:
        errs.add("min_grade", "choice", N_("Choose one of: %(choices)s."), choices=", ".join(GRADES))
    if errs.errors:
        raise ValidationFailed(errs.errors)
    return FeedQuery(tag=tag, area=area, min_grade=min_grade), vary


@routes.get("/feeds/warnings.rss")
async def rss(request: web.Request) -> web.Response:
    query, vary = feed_query(request)
    return respond(request, await outlets(request).feeds.warnings(RSS, query), vary=vary)


@routes.get("/feeds/warnings.atom")
async def atom(request: web.Request) -> web.Response:
    query, vary = feed_query(request)
    return respond(request, await outlets(request).feeds.warnings(ATOM, query), vary=vary)


@routes.get("/feeds/cap.atom")
async def cap_atom(request: web.Request) -> web.Response:
    query, vary = feed_query(request)
    return respond(request, await outlets(request).feeds.cap(query), vary=vary)
