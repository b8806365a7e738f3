"""POST /webhooks/telegram: updates from Telegram, checked against the secret-token header."""

from __future__ import annotations

import hmac
import json

from aiohttp import web

from channels.telegram.application import BadUpdate, process_update
from channels.telegram.channel import TelegramChannel

routes = web.RouteTableDef()
# The app that registers this channel puts the started channel here (the handler's one dependency).
TELEGRAM_CHANNEL = web.AppKey("telegram_channel", TelegramChannel)


@routes.post("/webhooks/telegram")
async def telegram_webhook(request: web.Request) -> web.Response:
    channel = request.app.get(TELEGRAM_CHANNEL)
    secret = channel.ctx.settings.telegram_webhook_secret if channel else ""
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if channel is None or channel.outbox_mode or not secret:
        return web.json_response(
            {"error": {"code": "not_configured", "message": "Telegram is not configured."}}, status=404
        )
    if not hmac.compare_digest(given.encode(), secret.encode()):
        return web.json_response({"error": {"code": "forbidden", "message": "Bad secret token."}}, status=403)
    try:
        data = json.loads(await request.read())
    except ValueError:
        return web.json_response({"error": {"code": "bad_request", "message": "Not JSON."}}, status=400)
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        return web.json_response({"error": {"code": "bad_request", "message": "Not a Telegram update."}}, status=400)
    if channel.bot_app is None:
        return web.json_response(
            {"error": {"code": "not_configured", "message": "Telegram is not running."}},
            status=503,
            headers={"Retry-After": "5"},
        )
    try:
        await process_update(channel.bot_app, data)
    except BadUpdate:
        return web.json_response({"error": {"code": "bad_request", "message": "Not a Telegram update."}}, status=400)
    return web.Response(status=200)
