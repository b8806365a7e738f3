"""Delivery channels, one adapter each, and the explicit registry of them.

A channel renders a warning version for one recipient's language, sends it through the real
provider client (or, without credentials, into an inspectable outbox) and classifies failures as
auth / temporary / permanent (`publisher.dispatch.channel`). Channels that receive (SMS keywords, Telegram
updates) contribute webhook routes through `WEBHOOK_ROUTES`.
"""

from __future__ import annotations

from aiohttp import web

from publisher.dispatch.channel import Channel, ChannelContext


def build_channels(ctx: ChannelContext) -> dict[str, Channel]:
    from channels.partners.channel import PartnerChannel
    from channels.sms.channel import SmsChannel
    from channels.telegram.channel import TelegramChannel

    channels: list[Channel] = [SmsChannel(ctx), TelegramChannel(ctx), PartnerChannel(ctx)]
    return {channel.name: channel for channel in channels}


def webhook_routes() -> list[web.RouteTableDef]:
    from channels.sms.webhooks import routes as sms_routes
    from channels.telegram.webhook import routes as telegram_routes

    return [sms_routes, telegram_routes]
