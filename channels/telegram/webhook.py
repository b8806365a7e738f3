"""POST /webhooks/telegram: updates from Telegram, checked against the secret-token header."""

from __future__ import annotations

import hmac
import json

from aiohttp import web

from warncast.app_keys import SERVICES

routes = web.RouteTableDef()


@routes.post("/webhooks/telegram")
async def telegram_webhook(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    channel = services.channels.get("telegram")
    secret = services.settings.telegram_webhook_secret
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
    from channels.telegram.bot import BadUpdate, process_update

    try:
        await process_update(channel, data, services)  # type: ignore[arg-type]
    except BadUpdate:
        return web.json_response({"error": {"code": "bad_request", "message": "Not a Telegram update."}}, status=400)
    return web.Response(status=200)
