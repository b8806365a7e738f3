"""Twilio webhooks: inbound SMS (keywords, answered with TwiML) and delivery receipts.

Both check X-Twilio-Signature against the public URL Twilio called; an unsigned or forged request
gets 403 and changes nothing. While Redis is away both answer 503 with Retry-After (nothing was
done; Twilio's retry, or the fallback URL, takes it).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from channels.cache import redis_away
from channels.sms.channel import SmsChannel
from channels.sms.keywords import handle_keyword
from foundation.phones import PhoneError, normalize_phone
from publisher.dispatch.receipts import record_receipt

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
# The app that registers this channel puts the started channel here (the handlers' one dependency).
SMS_CHANNEL = web.AppKey("sms_channel", SmsChannel)
RETRY_AFTER_SECONDS = 5
Handler = Callable[[web.Request], Awaitable[web.Response]]


def unavailable_503(handler: Handler) -> Handler:
    """Redis away: 503 with Retry-After, in this webhook's error format, instead of a failure."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except Exception as exc:
            if not redis_away(exc):
                raise
            log.warning("twilio webhook %s answered 503 (redis away: %r)", request.path, exc)
            return web.json_response(
                {"error": {"code": "unavailable", "message": "Briefly unavailable; retry later."}},
                status=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )

    return wrapped


async def _verified_form(request: web.Request) -> dict[str, str] | None:
    settings = request.app[SMS_CHANNEL].ctx.settings
    token = settings.twilio_auth_token
    try:
        form = await request.post()
    except ValueError:  # not a form: Twilio never sends that
        return None
    url = settings.public_url + request.path_qs  # what Twilio signed, not our bind address
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature or not RequestValidator(token).validate(url, form, signature):
        return None
    return {k: str(v) for k, v in form.items()}


def _forbidden() -> web.Response:
    return web.json_response({"error": {"code": "forbidden", "message": "Invalid Twilio signature."}}, status=403)


@routes.post("/webhooks/twilio/sms")
@unavailable_503
async def inbound_sms(request: web.Request) -> web.Response:
    form = await _verified_form(request)
    if form is None:
        return _forbidden()
    channel = request.app[SMS_CHANNEL]
    try:
        phone = normalize_phone(form.get("From", ""))
    except PhoneError:
        return web.json_response(
            {"error": {"code": "bad_request", "message": "From is not a phone number."}}, status=400
        )
    body = form.get("Body", "")[:1600]
    reply = await handle_keyword(channel.ctx, phone, body, message_sid=form.get("MessageSid", "")[:64])
    target = "report" if reply.action.startswith("report") else "subscription"
    await channel.ctx.audit.append(f"sms:{phone[:-4]}****", f"sms.{reply.action}", target)
    twiml = MessagingResponse()
    twiml.message(reply.text)
    return web.Response(text=str(twiml), content_type="application/xml")


@routes.post("/webhooks/twilio/status")
@unavailable_503
async def status_callback(request: web.Request) -> web.Response:
    form = await _verified_form(request)
    if form is None:
        return _forbidden()
    ctx = request.app[SMS_CHANNEL].ctx
    await record_receipt(
        ctx.redis,
        ctx.subscribers,
        request.query.get("ref", ""),
        form.get("To", ""),
        form.get("MessageStatus", ""),
        form.get("ErrorCode", ""),
    )
    return web.Response(status=204)
