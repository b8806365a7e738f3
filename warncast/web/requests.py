"""Per-request helpers: who is asking, in which language, and reading bodies safely."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from foundation.access.audit import Actor
from foundation.access.roles import allowed
from foundation.errors import FieldError, Forbidden, Unauthorized, ValidationFailed, WarncastError
from foundation.i18n import LANG_COOKIE, N_, PoTranslations
from foundation.text import BIDI_CONTROLS, json_without_bidi, without_bidi
from warncast.app_keys import CATALOGS, SETTINGS

ACTOR = web.RequestKey("actor", Actor)
CSRF = web.RequestKey("csrf", str)
AUTH_KIND = web.RequestKey("auth_kind", str)  # "session" | "token"
LOCALE = web.RequestKey("locale", str)
SESSION_COOKIE = "wc_session"


JSON_UTF8 = "application/json; charset=utf-8"  # what web.json_response sends


def json_dumps(value: Any) -> str:
    """JSON for responses (orjson: several times faster than json on the hot intake and feed
    paths); Chinese stays readable instead of \\u escapes."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def locale(request: web.Request) -> str:
    return request.get(LOCALE, "zh_Hans")


def translations(request: web.Request) -> PoTranslations:
    return request.app[CATALOGS].get(locale(request))


def t(request: web.Request, message: str, **params: object) -> str:
    return request.app[CATALOGS].text(locale(request), message, **params)


def client_ip(request: web.Request) -> str:
    """The address of whoever sent the request: the peer, or, when the peer is a trusted proxy
    (WARNCAST_TRUSTED_PROXIES), the right-most untrusted hop of X-Forwarded-For. Hops left of that
    one are whatever the client chose to send, so they are never believed."""
    peer = request.remote or ""
    trusted = request.app[SETTINGS].trusted_proxies
    if not trusted:
        return peer
    return forwarded_client(peer, request.headers.getall("X-Forwarded-For", ()), trusted)


def forwarded_client(peer: str, forwarded: Iterable[str], trusted: tuple[IPv4Network | IPv6Network, ...]) -> str:
    """`client_ip` without the request: `forwarded` are the X-Forwarded-For header lines in order."""
    address = _address(peer)
    if address is None or not _trusted(address, trusted):
        return peer
    hops = [hop.strip() for line in forwarded for hop in line.split(",")]
    for hop in reversed(hops):
        found = _address(hop)
        if found is None:  # garbage: no proxy writes that; keep the last hop a trusted proxy vouched for
            break
        address = found
        if not _trusted(address, trusted):
            break
    return str(address)


def _address(text: str) -> IPv4Address | IPv6Address | None:
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: IPv4Address | IPv6Address, trusted: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    return any(address in network for network in trusted)


def current_actor(request: web.Request) -> Actor | None:
    return request.get(ACTOR)


def login_required(request: web.Request) -> None:
    """Console pages: send a visitor without a session to the login page, then back here."""
    if current_actor(request) is None:
        raise web.HTTPSeeOther(f"/console/login?next={request.path}")


def require_actor(request: web.Request, action: str | None = None) -> Actor:
    actor = current_actor(request)
    if actor is None:
        raise Unauthorized(N_("Log in or send an API token."))
    if action and not allowed(actor.roles, action):
        raise Forbidden(N_("Your role does not allow this action."))
    return actor


class BadRequest(WarncastError):
    status = 400
    code = "bad_request"


async def json_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise BadRequest(N_("Send a JSON body with Content-Type: application/json."))
    raw = await request.read()
    try:
        return json_without_bidi(raw, orjson.loads(raw)) if raw else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(N_("The body is not valid JSON: %(reason)s."), reason=str(exc)[:120]) from None


async def form_body(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """The request's form (URL-encoded or multipart), read within the app's size and field limits;
    a body that is not one (a part without a name, a nested multipart) is a 400, not our error."""
    try:
        form = await request.post()
    except ValueError:
        raise BadRequest(N_("The body is not a valid form.")) from None
    if not any(isinstance(v, str) and BIDI_CONTROLS.search(v) for v in form.values()):
        return form
    return MultiDictProxy(MultiDict((k, without_bidi(v) if isinstance(v, str) else v) for k, v in form.items()))


async def optional_text(request: web.Request, field: str) -> str:
    """A single text field from a JSON body (API) or a form (console)."""
    if request.content_type == "application/json":
        body = await json_body(request)
        if not isinstance(body, dict):
            raise ValidationFailed([FieldError("", "type", N_("The body must be a JSON object."))])
        value = body.get(field, "")
    else:
        form = await form_body(request)
        value = form.get(field, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed([FieldError(field, "type", N_("Must be text."))])
    return value


def keep_language(response: web.StreamResponse, locale: str) -> None:
    """Remember a reader's language choice for the pages they open next."""
    response.set_cookie(LANG_COOKIE, locale, max_age=365 * 86400, samesite="Lax", httponly=True)
