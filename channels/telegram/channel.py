"""The Telegram channel: HTML-formatted warnings sent with python-telegram-bot's Bot."""

from __future__ import annotations

from typing import Any

from telegram import Bot, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import Application
from telegram.request import HTTPXRequest

from channels.context import ChannelContext
from channels.outbox import OutboxTransport
from channels.telegram.application import build_bot_application, stop_bot_application
from channels.telegram.errors import classify
from publisher.dispatch.channel import (
    Rendition,
    SendResult,
    TemporaryError,
)
from publisher.model import Message
from publisher.subscribers import Subscriber
from publisher.wording import render_template, word


class TelegramChannel:
    name = "telegram"
    threads_replies = True  # an update answers the first message of its warning in the chat
    subscriber_channel = True
    takes_notices = True
    max_units = 1
    per_address_interval_ms: int | None = 1000  # Telegram allows about one message a second into one chat

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        self.outbox_mode = not ctx.settings.telegram_configured
        self.rate = ctx.settings.telegram_rate  # messages per second over all chats
        self.outbox = OutboxTransport(ctx.redis, self.name, keep_days=ctx.settings.delivery_retention_days)
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
        view = word(message, locale, kind=kind, registry=ctx.registry, catalogs=ctx.catalogs, settings=ctx.settings)
        text = await render_template(ctx.env, "messages/telegram.html", view, ctx.catalogs, ctx.settings)
        remaining = int((message.content.expires - ctx.now()).total_seconds())
        return Rendition(text=text, units=1, parse_mode=ParseMode.HTML, ttl=max(60, remaining))

    def render_text(self, text: str) -> Rendition:
        return Rendition(text=text)

    async def recipients(self, message: Message, areas: set[str]) -> list[str]:
        return []  # residents, found by the planner in the subscriber index

    async def lookup(self, addresses: list[str]) -> list[Subscriber | None]:
        return await self.ctx.subscribers.get_many(self.name, addresses)

    async def send(self, address: str, rendition: Rendition, *, reference: str, reply_to: str = "") -> SendResult:
        """`reply_to`: the first message of the warning's thread in this chat, which an update
        answers (a message that is gone no longer matters: it is sent on its own then)."""
        if self.outbox_mode:
            return await self.outbox.send(address, rendition, reference=reference, reply_to=reply_to)
        if self.bot is None:
            raise TemporaryError("Telegram channel not started yet")
        reply = (
            ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True) if reply_to.isdigit() else None
        )
        try:
            sent = await self.bot.send_message(
                chat_id=int(address),
                text=rendition.text,
                parse_mode=rendition.parse_mode,
                link_preview_options=None,
                reply_parameters=reply,
            )
        except TelegramError as exc:
            raise classify(exc) from exc
        return SendResult(provider_id=str(sent.message_id), status="delivered")

    async def start(self) -> None:
        if self.outbox_mode:
            return
        self.bot = self.make_bot()
        await self.bot.initialize()  # calls getMe: fails fast on a wrong token
        self.bot_app = await build_bot_application(self.ctx, self.bot)

    async def close(self) -> None:
        if self.bot_app is not None:
            await stop_bot_application(self.bot_app)
            self.bot_app = None
        if self.bot is not None:
            await self.bot.shutdown()
            self.bot = None
