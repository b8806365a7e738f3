"""The SMS channel: texts within the segment budget, sent with the twilio client (async)."""

from __future__ import annotations

import functools
import json
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from channels.context import ChannelContext
from channels.outbox import OutboxTransport
from channels.sms.segments import count_segments, fit
from channels.sms.twilio_http import TwilioHttp
from publisher.dispatch.channel import (
    AuthError,
    ChannelError,
    PermanentError,
    Rendition,
    SendResult,
    TemporaryError,
    Transport,
)
from publisher.model import Message
from publisher.subscribers import Subscriber
from publisher.wording import template_context, word

# Twilio error codes that mean this number will never take the message.
PERMANENT_CODES = {21211, 21214, 21217, 21408, 21612, 21614, 21635, 30003, 30005, 30006}
UNSUBSCRIBED = 21610  # the resident replied STOP to our sender
TEMPORARY_CODES = {20429, 21611, 30001, 30008}


class TwilioTransport:
    """Sends through the twilio client's Messages resource, the way `client.messages.create_async`
    does, with what is the same for every message worked out once at start: the resource's URL, the
    client's headers (its User-Agent is built from `platform` calls) and credentials. Per message
    only the form and the reply's sid and status are handled; a refusal is turned into the twilio
    client's own exception (`Version.exception`), so `classify` sees exactly what it would see."""

    def __init__(self, ctx: ChannelContext) -> None:
        self.settings = ctx.settings
        self.session: aiohttp.ClientSession | None = None
        self.client: Client | None = None
        self.http: TwilioHttp | None = None

    async def start(self) -> None:
        # One session for every send; the twilio client needs a running loop to be built.
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        s = self.settings
        self.http = TwilioHttp(self.session, s.twilio_api_base, s.provider_timeout)
        self.client = Client(s.twilio_account_sid, s.twilio_auth_token, environment={}, http_client=self.http)
        messages = self.client.messages  # imports the Messages API modules now, not on the first warning
        self._version = messages._version
        self._uri = messages._uri
        self._url = self.http.target(self._version.absolute_url(self._uri))
        # What create_async asks the client for (ClientBase.request_async), once: the same on every send.
        self._headers = self.client.get_headers(
            "POST", {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        )
        self._auth = self.client.get_auth(None)
        self._sender = (
            {"From": s.twilio_from} if s.twilio_from else {"MessagingServiceSid": s.twilio_messaging_service_sid}
        )

    async def send(self, address: str, rendition: Rendition, *, reference: str) -> SendResult:
        assert self.http is not None, "start() first"
        # The fields in the order twilio's create_async puts them; unset ones are left out as it does.
        data: dict[str, object] = {
            "To": address,
            # The plan id rides in the callback URL (Twilio signs it with the query), so a
            # receipt needs no per-message lookup table.
            "StatusCallback": status_callback(self.settings.public_url, reference),
            "ValidityPeriod": rendition.ttl,
            **self._sender,
            "Body": rendition.text,
        }
        data = {name: value for name, value in data.items() if value is not None}
        try:
            response = await self.http.send_form(self._url, data, dict(self._headers), self._auth)
            if not 200 <= response.status_code < 300:
                raise self._version.exception("POST", self._uri, response, "Unable to create record")
            reply = json.loads(response.text) if response.text else {}
        except TwilioRestException as exc:
            raise classify(exc) from exc
        except (TimeoutError, aiohttp.ClientError, TwilioException) as exc:
            raise TemporaryError(f"Twilio unreachable: {exc.__class__.__name__}") from exc
        return SendResult(provider_id=reply.get("sid") or "", status=str(reply.get("status") or "queued"))

    async def close(self) -> None:
        if self.session:
            await self.session.close()


@functools.lru_cache(maxsize=64)
def status_callback(public_url: str, reference: str) -> str:
    """Where Twilio reports a message's status: the same URL for every recipient of one plan."""
    return f"{public_url}/webhooks/twilio/status?{urlencode({'ref': reference})}"


def classify(exc: TwilioRestException) -> ChannelError:
    code = int(exc.code or 0)
    text = f"Twilio {exc.status}/{code}: {exc.msg}"
    if exc.status in (401, 403) or code in (20003, 20005):
        return AuthError(text, code=str(code))
    if exc.status == 429 or exc.status >= 500 or code in TEMPORARY_CODES:
        return TemporaryError(text, code=str(code))
    if code == UNSUBSCRIBED:
        return PermanentError(text, code=str(code), unsubscribe=True)
    return PermanentError(text, code=str(code))


class SmsChannel:
    name = "sms"
    subscriber_channel = True
    takes_notices = True
    per_address_interval_ms: int | None = None

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        self.outbox_mode = not ctx.settings.twilio_configured
        self.rate = ctx.settings.sms_rate  # segments per second: what the Twilio account allows
        self.max_units = ctx.settings.sms_max_segments
        self.transport: Transport = (
            OutboxTransport(ctx.redis, self.name, keep_days=ctx.settings.delivery_retention_days)
            if self.outbox_mode
            else TwilioTransport(ctx)
        )

    async def render(self, message: Message, locale: str, *, kind: str | None = None) -> Rendition:
        ctx = self.ctx
        view = word(message, locale, kind=kind, registry=ctx.registry, catalogs=ctx.catalogs, settings=ctx.settings)
        template = ctx.env.get_template("messages/sms.txt")
        module = await template.make_module_async(template_context(view, ctx.catalogs, ctx.settings))
        # The template's {% set body %} and {% set tail %} blocks, exported as module attributes.
        body, tail = (" ".join(str(getattr(module, part)).split()) for part in ("body", "tail"))
        text = fit(body, ctx.settings.sms_max_segments, keep_tail=" " + tail if tail else "")
        counted = count_segments(text)
        remaining = int((message.content.expires - ctx.now()).total_seconds())
        return Rendition(
            text=text, units=max(1, counted.segments), encoding=counted.encoding, ttl=min(36_000, max(60, remaining))
        )

    def render_text(self, text: str) -> Rendition:
        counted = count_segments(text)
        return Rendition(text=text, units=max(1, counted.segments), encoding=counted.encoding)

    async def recipients(self, message: Message, areas: set[str]) -> list[str]:
        return []  # residents, found by the planner in the subscriber index

    async def lookup(self, addresses: list[str]) -> list[Subscriber | None]:
        return await self.ctx.subscribers.get_many(self.name, addresses)

    async def send(self, address: str, rendition: Rendition, *, reference: str) -> SendResult:
        return await self.transport.send(address, rendition, reference=reference)

    async def start(self) -> None:
        if isinstance(self.transport, TwilioTransport):
            await self.transport.start()

    async def close(self) -> None:
        await self.transport.close()
