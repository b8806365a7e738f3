"""POST /webhooks/telegram: updates from Telegram, checked against the secret-token header.

While Redis is away an update is answered 503 with Retry-After: Telegram keeps an update that was
not answered with 2xx and sends it again, so nothing a citizen sent is lost. The bot's handlers run
inside python-telegram-bot, which hands their failures to error handlers rather than raising; the
one added here notes a Redis failure of the update being handled, so the webhook can say 503, and
stops the update's further handlers (each would wait for Redis again).
"""

from __future__ import annotations

import hmac
import json
import logging
from contextvars import ContextVar
from typing import Any

from aiohttp import web
from telegram.ext import ApplicationHandlerStop

from channels.cache import redis_away
from channels.telegram.application import BadUpdate, process_update
from channels.telegram.channel import TelegramChannel

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
# The app that registers this channel puts the started channel here (the handler's one dependency).
TELEGRAM_CHANNEL = web.AppKey("telegram_channel", TelegramChannel)
RETRY_AFTER_SECONDS = 5
# The Redis failure met while handling the current update (one webhook request, one task).
_redis_failure: ContextVar[list[BaseException] | None] = ContextVar("telegram_redis_failure", default=None)


async def _note_redis_failure(update: object, context: Any) -> None:
    """A PTB error handler: remember a Redis failure for the webhook answering this update, and
    stop handling it (Telegram sends it again)."""
    failures = _redis_failure.get()
    if failures is not None and isinstance(context.error, BaseException) and redis_away(context.error):
        failures.append(context.error)
        raise ApplicationHandlerStop


def _unavailable() -> web.Response:
    return web.json_response(
        {"error": {"code": "unavailable", "message": "Briefly unavailable; retry later."}},
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


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
    if _note_redis_failure not in channel.bot_app.error_handlers:
        channel.bot_app.add_error_handler(_note_redis_failure)
    failures: list[BaseException] = []
    token = _redis_failure.set(failures)
    try:
        await process_update(channel.bot_app, data)
    except BadUpdate:
        return web.json_response({"error": {"code": "bad_request", "message": "Not a Telegram update."}}, status=400)
    except Exception as exc:
        if not redis_away(exc):
            raise
        failures.append(exc)
    finally:
        _redis_failure.reset(token)
    if failures:
        log.warning("telegram update %s answered 503 (redis away: %r)", data["update_id"], failures[0])
        return _unavailable()
    return web.Response(status=200)
