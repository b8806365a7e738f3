"""Middlewares: language, identity, CSRF, errors in the user's language, security headers, limits.

Redis away (refused, hung past the socket timeout, loading, read-only in a failover) is not our
bug: every such failure, and `Unavailable`, is answered 503 with Retry-After in the area's format
(JSON for machines, a page that tries again by itself for people, stoppably, Open311's error list), never 500.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import NotRequired, TypedDict
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from channels.cache import redis_away
from foundation.access.auth import csrf_matches
from foundation.errors import TooManyRequests, Unavailable, ValidationFailed, WarncastError
from foundation.i18n import LANG_COOKIE, N_, negotiate, normalize_locale
from warncast.app_keys import ACCOUNTS, SETTINGS
from warncast.web.limits import AUTH_FAILURES, public_limit_middleware, too_many_requests
from warncast.web.open311 import open311_error
from warncast.web.pages import page
from warncast.web.requests import (
    ACTOR,
    AUTH_KIND,
    CSRF,
    LOCALE,
    SESSION_COOKIE,
    BadRequest,
    client_ip,
    form_body,
    json_dumps,
    keep_language,
    t,
)

log = logging.getLogger("warncast.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@functools.cache  # the setting of a process: one value, asked on every response
def content_security_policy(map_tiles: str) -> str:
    """The site's CSP; a configured tile server (WARNCAST_MAP_TILES) is the one other origin images
    may come from."""
    if not map_tiles:
        return CSP
    parts = urlsplit(map_tiles)
    host = parts.netloc.replace("{s}", "*")  # Leaflet's subdomain placeholder
    return CSP.replace("img-src 'self' data:", f"img-src 'self' data: {parts.scheme}://{host}", 1)


SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
NO_COOKIES: Mapping[str, str] = MappingProxyType({})
# Public outputs that keep their last rendering while Redis is away (see channels.cache): a visitor
# whose session or token cannot be checked then reads them as anyone would.
PUBLIC_READS = ("/warnings/", "/cap/", "/feeds/", "/screens/")


class FieldProblem(TypedDict):
    field: str
    code: str
    message: str


class ErrorDetail(TypedDict):
    """The `error` member of an error response."""

    code: str
    message: str
    fields: NotRequired[list[FieldProblem]]  # a ValidationFailed's, one per invalid field


def wants_json(request: web.Request) -> bool:
    """Machines get JSON errors: the API, CAP, feeds (a reader shows no HTML), provider webhooks and
    .json outputs."""
    path = request.path
    return (
        path.startswith(("/api/", "/cap/", "/feeds/", "/healthz", "/readyz", "/webhooks/"))
        or path.endswith(".json")
        or (
            "application/json" in request.headers.get("Accept", "")
            and "text/html" not in request.headers.get("Accept", "")
        )
    )


@web.middleware
async def locale_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A page opened with `?lang=` keeps that language for the next clicks: the choice is kept in
    the language cookie (as the language switch does), on pages for people only."""
    asked = (
        normalize_locale(request.query.get("lang")) if request.query_string else None
    )  # parsed only when there is one
    kept = cookies(request).get(LANG_COOKIE)
    request[LOCALE] = negotiate(asked, kept, request.headers.get("Accept-Language"))
    response = await handler(request)
    if asked and asked != normalize_locale(kept) and not wants_json(request) and not response.prepared:
        keep_language(response, asked)
    return response


def cookies(request: web.Request) -> Mapping[str, str]:
    """The request's cookies; an API client sends none, and then none are parsed."""
    return request.cookies if "Cookie" in request.headers else NO_COOKIES


@web.middleware
async def identity_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve a bearer token or a console session; check CSRF on session-authenticated writes."""
    try:
        await _identify(request)
    except Exception as exc:
        if not (redis_away(exc) and _public_read(request)):
            raise
        log.warning("identity not checked (redis away: %r): %s %s read anonymously", exc, request.method, request.path)
    return await handler(request)


def _public_read(request: web.Request) -> bool:
    """A read of a public output: served from its last rendering while Redis is away."""
    path = request.path
    return request.method in ("GET", "HEAD") and (path == "/" or path.startswith(PUBLIC_READS))


async def _identify(request: web.Request) -> None:
    accounts = request.app[ACCOUNTS]
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer":  # auth schemes are case-insensitive (RFC 9110 11.1)
        # A valid token is always let in: one behind the same NAT as a guesser must not be locked
        # out by the guesses. A wrong one from an address that has been guessing is a 429.
        actor = await accounts.token_actor(credentials.strip())
        if actor is None:
            failures, ip = request.app[AUTH_FAILURES], client_ip(request)
            if wait := failures.take(ip):
                raise too_many_requests(wait)
            raise _http_error(request, 401, "unauthorized", N_("The API token is not valid."))
        request[ACTOR], request[AUTH_KIND] = actor, "token"
    elif session_id := cookies(request).get(SESSION_COOKIE):
        found = await accounts.session(session_id)
        if found:
            request[ACTOR], request[CSRF] = found
            request[AUTH_KIND] = "session"
            if request.method in UNSAFE:
                await _check_csrf(request)


async def _check_csrf(request: web.Request) -> None:
    """A write made with a console session must carry the session's CSRF token."""
    given: object = request.headers.get("X-CSRF-Token")  # a form field may be a file: checked below
    if given is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        given = (await form_body(request)).get("csrf_token")
    if not csrf_matches(request[CSRF], given if isinstance(given, str) else None):
        raise _http_error(
            request,
            403,
            "csrf",
            N_("The form has expired or did not come from this site. Reload the page and try again."),
        )


def _http_error(request: web.Request, status: int, code: str, message: str) -> WarncastError:
    error = WarncastError(message)
    error.status, error.code = status, code
    return error


def error_body(request: web.Request, error: WarncastError) -> dict[str, ErrorDetail]:
    body: ErrorDetail = {"code": error.code, "message": t(request, error.message, **error.params)}
    if isinstance(error, ValidationFailed):
        body["fields"] = [
            {"field": e.field, "code": e.code, "message": t(request, e.message, **e.params)} for e in error.errors
        ]
    return {"error": body}


async def error_page(
    request: web.Request, status: int, body: Mapping[str, object], retry_after: int | None = None
) -> web.Response:
    """The error page; with `retry_after` a GET tries again after that many seconds, in a browser
    with JavaScript, unless the reader stops it (a form's POST does not: reloading would lose what
    was typed, the page says to send it again)."""
    return await page(
        request,
        "error.html",
        status=status,
        status_code=status,
        error=body["error"],
        retry_after=retry_after,
        reload=bool(retry_after) and request.method in ("GET", "HEAD"),
    )


def retry_after_of(error: WarncastError) -> int | None:
    return error.retry_after if isinstance(error, (TooManyRequests, Unavailable)) else None


async def error_response(request: web.Request, error: WarncastError) -> web.Response:
    """`error` in the format of the request's area, with Retry-After when it has one."""
    if request.path.startswith("/open311/"):
        return open311_error(request, error)  # raised outside the Open311 handlers: still its format
    retry_after = retry_after_of(error)
    body = error_body(request, error)
    if wants_json(request):
        response = web.json_response(body, status=error.status, dumps=json_dumps)
    else:
        response = await error_page(request, error.status, body, retry_after)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except WarncastError as error:
        if isinstance(error, Unavailable):
            log.warning("unavailable on %s %s: %s", request.method, request.path, error)
        return await error_response(request, error)
    except HttpProcessingError:  # a body that breaks the parser while read (a line past its limit)
        return await error_response(request, BadRequest(N_("The request body is malformed.")))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = {
            404: N_("Not found."),
            405: N_("Method not allowed."),
            413: N_("The request body is too large."),
        }.get(exc.status, exc.reason)
        problem = _http_error(request, exc.status, exc.reason.lower().replace(" ", "_"), message)
        response = await error_response(request, problem)
        if "Allow" in exc.headers:  # a 405 says which methods the resource has (RFC 9110 15.5.6)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception as exc:
        if redis_away(exc):
            log.warning("redis away on %s %s: %r", request.method, request.path, exc)
            return await error_response(request, Unavailable())
        reference = secrets.token_hex(6)
        log.exception("unhandled error %s on %s %s", reference, request.method, request.path)
        body = {
            "error": {
                "code": "internal",
                "message": t(
                    request, N_("Something went wrong on our side (reference %(reference)s)."), reference=reference
                ),
            }
        }
        if wants_json(request):
            return web.json_response(body, status=500, dumps=json_dumps)
        return await error_page(request, 500, body)


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    response = await handler(request)
    headers = response.headers
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)  # a handler may have set its own
    if tiles := request.app[SETTINGS].map_tiles:
        headers["Content-Security-Policy"] = content_security_policy(tiles)
    if request.path.startswith("/console") or ACTOR in request:
        headers["Cache-Control"] = "no-store"
    if response.prepared or not log.isEnabledFor(logging.INFO):
        return response
    log.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status,
        extra={"status": response.status, "ms": round((time.perf_counter() - started) * 1000, 1)},
    )
    return response


# The limit runs after identity (staff are not limited) and inside the error middleware (its 429
# is rendered like every other error, in the user's language).
MIDDLEWARES = [headers_middleware, locale_middleware, error_middleware, identity_middleware, public_limit_middleware]
