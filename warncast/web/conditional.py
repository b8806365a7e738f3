"""Conditional GET for cached renderings: strong ETag, Last-Modified, 304 Not Modified.

`Cache-Control: public, no-cache` lets browsers, proxies and feed readers keep a copy but ask
every time; the answer to a matching If-None-Match is a bodiless 304, so revalidating is cheap
and a new warning is visible at the very next poll.

A stale rendering (the last one, served while Redis is away) says so: `Warning: 110` (RFC 7234's
"Response is Stale") and `X-Warncast-Stale: 1`, and no cache may keep it.
"""

from __future__ import annotations

from datetime import UTC
from email.utils import format_datetime, parsedate_to_datetime

from aiohttp import web

from channels.cache import Rendering

CACHE_CONTROL = "public, no-cache"
STALE_HEADERS = {"Warning": '110 - "Response is Stale"', "X-Warncast-Stale": "1", "Cache-Control": "no-store"}


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    # Weak comparison, as RFC 9110 asks for If-None-Match: W/"x" matches "x".
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def not_modified(request: web.Request, rendering: Rendering) -> bool:
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, rendering.etag)
    since = request.headers.get("If-Modified-Since")
    if since and rendering.last_modified is not None:
        try:
            return rendering.last_modified <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


def respond(request: web.Request, rendering: Rendering, *, vary: str | None = None) -> web.Response:
    headers = {"ETag": rendering.etag, "Cache-Control": CACHE_CONTROL}
    if rendering.last_modified is not None:
        headers["Last-Modified"] = format_datetime(rendering.last_modified.astimezone(UTC), usegmt=True)
    if vary:
        headers["Vary"] = vary
    if rendering.stale:
        headers.update(STALE_HEADERS)
    if not_modified(request, rendering):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = rendering.content_type
    return web.Response(body=rendering.body, headers=headers)
