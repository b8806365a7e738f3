"""The partner channel: each published message POSTed to the partner systems that want it, signed.

It rides the same dispatch machinery as SMS (planner segments, per-version claims, retries with
backoff, dead letters); only the recipients come from the partner registry instead of the
subscriber records (see `lookup`).

Every request carries
    X-Warncast-Timestamp: <unix seconds>
    X-Warncast-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
    X-Warncast-Event: alert | update | cancel
    X-Warncast-Delivery: <message id> (the same on every retry: receivers deduplicate by it)
and a receiver checks it with `verify_signature` (copy it: it needs only the standard library).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import aiohttp

from channels.context import ChannelContext
from channels.partners.addresses import PublicOnlyResolver, RefusedDestination, literal_host, refused
from channels.partners.registry import PartnerRegistry
from foundation.access.audit import SYSTEM, AuditLog
from foundation.store import keys
from publisher.cap_xml import render_cap
from publisher.dispatch.channel import PermanentError, Rendition, SendResult, TemporaryError
from publisher.model import Message, message_kind
from publisher.serialize import message_json
from publisher.subscribers import ACTIVE, STOPPED, Subscriber

log = logging.getLogger(__name__)
NAME = "partner"
CONTENT_TYPES = {"json": "application/json; charset=utf-8", "cap": "application/cap+xml; charset=utf-8"}
MAX_RETRY_AFTER = 3600.0
RATE = 200.0  # posts per second over all partners: partner systems are many small servers


@dataclass(frozen=True)
class PartnerRendition(Rendition):
    """The request body, with what the headers need to say about it."""

    content_type: str = CONTENT_TYPES["json"]
    event: str = "alert"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str, timestamp: str, body: bytes, header: str, tolerance: int = 300, *, now: float | None = None
) -> bool:
    """For receivers: True when `header` (X-Warncast-Signature) signs `body` with `secret`, its time
    equals `timestamp` (X-Warncast-Timestamp) and lies within `tolerance` seconds of now (which
    stops an old request from being replayed)."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    signed_at = (fields.get("t") or [""])[0]
    if not signed_at.isdigit() or signed_at != timestamp.strip():
        return False
    if abs((time.time() if now is None else now) - int(signed_at)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{signed_at}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, given) for given in fields.get("v1", []))


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (it may be a number of seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when.timestamp() - time.time()), MAX_RETRY_AFTER)


class PartnerChannel:
    name = NAME
    outbox_mode = False  # a partner's URL is its own "credential": there is nothing to hold back
    subscriber_channel = False  # partners are kept in their own registry
    takes_notices = False
    rate = RATE
    max_units = 1
    per_address_interval_ms: int | None = None

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        self.registry = PartnerRegistry(ctx.redis)
        self.audit = AuditLog(ctx.redis, ctx.settings.secret_key, ctx.settings.redis_min_replicas)
        self.session: aiohttp.ClientSession | None = None

    def render_text(self, text: str) -> Rendition:
        return Rendition(text=text)

    async def recipients(self, message: Message, areas: set[str]) -> list[str]:
        """The partners a message concerns by grade, area (`areas`: those it affects) and drill flag."""
        return await self.registry.matching(message.content.grade, areas, message.content.is_drill)

    async def lookup(self, addresses: list[str]) -> list[Subscriber | None]:
        """Partners as recipients for the dispatch worker. The worker caches renditions per
        recipient `lang`; a partner's rendition depends on its format, not a language, so the
        format goes there."""
        out: list[Subscriber | None] = []
        for partner in await self.registry.many(addresses):
            out.append(
                None
                if partner is None
                else Subscriber(
                    channel=NAME,
                    address=partner.id,
                    status=ACTIVE if partner.active else STOPPED,
                    areas=list(partner.areas),
                    lang=partner.format,
                    min_grade=partner.min_grade,
                    drill=partner.include_drills,
                )
            )
        return out

    async def render(self, message: Message, locale: str, *, kind: str | None = None) -> Rendition:
        """`locale` is the partner's format ("json" or "cap"); anything else gets the JSON."""
        ctx = self.ctx
        event = kind or message_kind(message.msg_type)
        if locale == "cap":
            references = [await self._message(ref) for ref in message.references]
            body = render_cap(
                message,
                references=[m for m in references if m],
                registry=ctx.registry,
                settings=ctx.settings,
                catalogs=ctx.catalogs,
                signer=ctx.cap_signer,
            ).decode()
            return PartnerRendition(text=body, content_type=CONTENT_TYPES["cap"], event=event)
        data = message_json(message, registry=ctx.registry, settings=ctx.settings, staff=False)
        data.update(kind=event, cap_url=f"{ctx.settings.public_url}/cap/{message.id}.xml")
        return PartnerRendition(
            text=json.dumps(data, ensure_ascii=False, separators=(",", ":")),
            content_type=CONTENT_TYPES["json"],
            event=event,
        )

    async def send(self, address: str, rendition: Rendition, *, reference: str) -> SendResult:
        assert self.session is not None, "start() first"
        partner, secret = await self.registry.with_secret(address)
        if partner is None or secret is None:
            raise PermanentError(f"partner {address} was removed", code="removed")
        body = rendition.text.encode()
        stamp = int(time.time())
        headers = {
            "Content-Type": getattr(rendition, "content_type", CONTENT_TYPES["json"]),
            "User-Agent": "warncast-webhooks/1",
            "X-Warncast-Timestamp": str(stamp),
            "X-Warncast-Signature": sign(secret, stamp, body),
            "X-Warncast-Event": getattr(rendition, "event", "alert"),
            "X-Warncast-Delivery": reference,
        }
        timeout = aiohttp.ClientTimeout(total=self.ctx.settings.provider_timeout)
        allowed = self.ctx.settings.partner_allow_networks
        if (host := literal_host(partner.url)) and refused(host, allowed):  # an address: nothing to resolve
            raise PermanentError(f"partner {address}: {host} may not be posted to", code="refused_address")
        try:
            async with self.session.post(
                partner.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                await response.content.read(65536)  # small answers are read so the connection is reused
                status, retry_after = response.status, response.headers.get("Retry-After")
        except TimeoutError as exc:
            raise TemporaryError(f"partner {address} did not answer in time", code="timeout") from exc
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, RefusedDestination):
                raise PermanentError(f"partner {address}: {exc.os_error}", code="refused_address") from exc
            raise TemporaryError(f"partner {address} unreachable: {exc.__class__.__name__}", code="connection") from exc
        except aiohttp.ClientError as exc:
            raise TemporaryError(f"partner {address} unreachable: {exc.__class__.__name__}", code="connection") from exc
        if 200 <= status < 300:
            return SendResult(provider_id=f"http-{status}", status="delivered")
        text = f"partner {address} answered HTTP {status}"
        if status == 429 or status == 408 or status >= 500:
            raise TemporaryError(text, code=f"http_{status}", retry_after=retry_after_seconds(retry_after))
        if status == 410:
            # The endpoint is gone for good: stop posting to it until an admin reactivates it. The
            # registry does this itself (partners are not subscribers), so no unsubscribe flag.
            if await self.registry.deactivate(address, "HTTP 410 Gone"):
                await self.audit.append(SYSTEM.label, "partner.deactivate", address, reason="HTTP 410 Gone")
                log.warning("partner %s answered 410 Gone: deactivated", address)
        raise PermanentError(text, code=f"http_{status}")

    async def _message(self, message_id: str) -> Message | None:
        raw = await self.ctx.redis.get(keys.warning(message_id))
        return Message.from_json(json.loads(raw)) if raw else None

    async def start(self) -> None:
        # One session for every partner post, closed with the app.
        resolver = PublicOnlyResolver(self.ctx.settings.partner_allow_networks)
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64, resolver=resolver))

    async def close(self) -> None:
        if self.session:
            await self.session.close()
            self.session = None
