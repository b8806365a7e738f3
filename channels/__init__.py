"""Delivery channels, one adapter each, and the explicit registry of them.

A channel renders a warning version for one recipient's language, sends it through the real
provider client (or, without credentials, into an inspectable outbox) and classifies failures as
auth / temporary / permanent (`channels.base`). Channels that receive (SMS keywords, Telegram
updates) contribute webhook routes through `WEBHOOK_ROUTES`.
"""

from __future__ import annotations

from aiohttp import web

from .base import Channel, ChannelContext


def build_channels(ctx: ChannelContext) -> dict[str, Channel]:
    from .partners.channel import PartnerChannel
    from .sms.channel import SmsChannel
    from .telegram.channel import TelegramChannel

    channels: list[Channel] = [SmsChannel(ctx), TelegramChannel(ctx), PartnerChannel(ctx)]
    return {channel.name: channel for channel in channels}


def webhook_routes() -> list[web.RouteTableDef]:
    from .sms.webhooks import routes as sms_routes
    from .telegram.webhook import routes as telegram_routes

    return [sms_routes, telegram_routes]
