"""The python-telegram-bot Application behind the channel: the subscription bot and the report
conversation registered on it, the webhook set, and one update handled at a time (webhook mode,
no Updater)."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Bot, Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder

from channels.context import ChannelContext
from channels.telegram.bot import SubscriptionBot
from channels.telegram.reporting import ReportConversation
from foundation.settings import Settings

log = logging.getLogger(__name__)


class BadUpdate(ValueError):
    """The webhook body is JSON but not a Telegram update PTB can read."""


async def build_bot_application(ctx: ChannelContext, bot: Bot | None) -> Application[Any, Any, Any, Any, Any, Any]:
    """The PTB Application that runs the subscription bot and the report conversation, initialized
    and started; `bot`: the channel's Bot, to share its connection pool."""
    builder = ApplicationBuilder().updater(None).job_queue(None)
    app: Application[Any, Any, Any, Any, Any, Any]  # a Bot given, or an ExtBot built from the token
    if bot is not None:
        app = builder.bot(bot).build()
    else:
        settings = ctx.settings
        app = (
            builder.token(settings.telegram_bot_token)
            .base_url(f"{settings.telegram_api_base}/bot")
            .base_file_url(f"{settings.telegram_api_base}/file/bot")
            .build()
        )
    subscriptions = SubscriptionBot(ctx)
    subscriptions.register(app)
    ReportConversation(subscriptions).register(app)  # group -1: ahead of these while a report is open
    await app.initialize()
    await app.start()
    await _set_webhook(app, ctx.settings)
    return app


async def _set_webhook(app: Application[Any, Any, Any, Any, Any, Any], settings: Settings) -> None:
    """Point Telegram at our webhook when we have a public HTTPS address (Telegram requires one)."""
    if not (settings.telegram_webhook_secret and settings.public_url.startswith("https://")):
        return
    try:
        await app.bot.set_webhook(
            f"{settings.public_url}/webhooks/telegram",
            secret_token=settings.telegram_webhook_secret,
            allowed_updates=["message", "callback_query"],
        )
    except TelegramError:
        # Warnings still go out; only the bot's inbound side waits for an operator.
        log.exception("telegram setWebhook failed; the subscription bot receives nothing until fixed")


async def stop_bot_application(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    if app.running:
        await app.stop()
    await app.shutdown()


async def process_update(app: Application[Any, Any, Any, Any, Any, Any], data: dict[str, Any]) -> None:
    """Handle one webhook update to the end (replies sent) before the webhook answers."""
    try:
        update = Update.de_json(data, app.bot)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadUpdate(str(exc)) from exc
    await app.process_update(update)
