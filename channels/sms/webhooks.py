"""Twilio webhooks: inbound SMS (keywords, answered with TwiML) and delivery receipts.

Both check X-Twilio-Signature against the public URL Twilio called; an unsigned or forged request
gets 403 and changes nothing.
"""

from __future__ import annotations

import logging

from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from channels.sms.channel import SmsChannel
from channels.sms.keywords import handle_keyword
from foundation.phones import PhoneError, normalize_phone
from publisher.dispatch.receipts import record_receipt

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
# The app that registers this channel puts the started channel here (the handlers' one dependency).
SMS_CHANNEL = web.AppKey("sms_channel", SmsChannel)


async def _verified_form(request: web.Request) -> dict[str, str] | None:
    settings = request.app[SMS_CHANNEL].ctx.settings
    token = settings.twilio_auth_token
    form = await request.post()
    url = settings.public_url + request.path_qs  # what Twilio signed, not our bind address
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature or not RequestValidator(token).validate(url, form, signature):
        return None
    return {k: str(v) for k, v in form.items()}


def _forbidden() -> web.Response:
    return web.json_response({"error": {"code": "forbidden", "message": "Invalid Twilio signature."}}, status=403)


@routes.post("/webhooks/twilio/sms")
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
