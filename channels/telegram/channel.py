"""The Telegram channel: HTML-formatted warnings sent with python-telegram-bot's Bot."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application
from telegram.request import HTTPXRequest

from channels.outbox import OutboxTransport
from channels.telegram.bot import build_bot_application, stop_bot_application
from publisher.dispatch.channel import (
    AuthError,
    ChannelContext,
    ChannelError,
    PermanentError,
    Rendition,
    SendResult,
    TemporaryError,
)
from publisher.model import Message
from publisher.rendering import build_view, render_template


def classify(exc: TelegramError) -> ChannelError:
    if isinstance(exc, RetryAfter):
        seconds = exc._retry_after.total_seconds()  # the public attribute warns about its type
        return TemporaryError(f"Telegram flood control: {exc}", code="429", retry_after=seconds)
    if isinstance(exc, Forbidden):
        return PermanentError(f"Telegram: {exc}", code="403", unsubscribe=True)  # blocked by the user
    if isinstance(exc, InvalidToken):
        return AuthError(f"Telegram: {exc}", code="401")
    if isinstance(exc, BadRequest):
        return PermanentError(f"Telegram: {exc}", code="400", unsubscribe="chat not found" in str(exc).lower())
    if isinstance(exc, TimedOut | NetworkError):
        return TemporaryError(f"Telegram unreachable: {exc}")
    return TemporaryError(f"Telegram: {exc}")


class TelegramChannel:
    name = "telegram"

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        self.outbox_mode = not ctx.settings.telegram_configured
        self.outbox = OutboxTransport(ctx.redis, self.name)
        self.bot: Bot | None = None
        self.bot_app: Application[Any, Any, Any, Any, Any, Any] | None = None  # the subscription bot (.bot)

    def make_bot(self, pool: int = 128, timeout: float = 10.0) -> Bot:
        s = self.ctx.settings
        request = HTTPXRequest(
            connection_pool_size=pool,
            read_timeout=timeout,
            write_timeout=timeout,
            connect_timeout=min(5.0, timeout),
            pool_timeout=timeout,
        )
        return Bot(
            s.telegram_bot_token,
            base_url=f"{s.telegram_api_base}/bot",
            base_file_url=f"{s.telegram_api_base}/file/bot",
            request=request,
        )

    async def render(self, message: Message, locale: str, *, kind: str | None = None) -> Rendition:
        ctx = self.ctx
        view = build_view(
            message, locale, kind=kind, registry=ctx.registry, settings=ctx.settings, catalogs=ctx.catalogs
        )
        text = await render_template(ctx.env, "messages/telegram.html", view, locale, ctx.catalogs, ctx.settings)
        remaining = int((message.content.expires - datetime.now(ctx.settings.tz)).total_seconds())
        return Rendition(text=text, units=1, parse_mode=ParseMode.HTML, ttl=max(60, remaining))

    async def send(self, address: str, rendition: Rendition, *, reference: str) -> SendResult:
        if self.outbox_mode:
            return await self.outbox.send(address, rendition, reference=reference)
        if self.bot is None:
            raise TemporaryError("Telegram channel not started yet")
        try:
            sent = await self.bot.send_message(
                chat_id=int(address), text=rendition.text, parse_mode=rendition.parse_mode, link_preview_options=None
            )
        except TelegramError as exc:
            raise classify(exc) from exc
        return SendResult(provider_id=str(sent.message_id), status="delivered")

    async def start(self) -> None:
        if self.outbox_mode:
            return
        self.bot = self.make_bot()
        await self.bot.initialize()  # calls getMe: fails fast on a wrong token
        self.bot_app = await build_bot_application(self)

    async def close(self) -> None:
        if self.bot_app is not None:
            await stop_bot_application(self.bot_app)
            self.bot_app = None
        if self.bot is not None:
            await self.bot.shutdown()
            self.bot = None
