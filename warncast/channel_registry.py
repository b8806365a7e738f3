"""The one place where concrete channels are registered: which exist, and the webhook routes of
those that receive. Dispatch knows them only through `publisher.dispatch.channel.Channel`."""

from __future__ import annotations

from aiohttp import web

from channels.context import ChannelContext
from channels.duty_groups.channel import DutyGroupChannel
from channels.duty_groups.tools import TOOLS
from channels.partners.channel import PartnerChannel
from channels.sms import webhooks as sms_webhooks
from channels.sms.channel import SmsChannel
from channels.telegram import webhook as telegram_webhook
from channels.telegram.channel import TelegramChannel
from publisher.dispatch.channel import Channel


def build_channels(ctx: ChannelContext) -> dict[str, Channel]:
    channels: list[Channel] = [SmsChannel(ctx), TelegramChannel(ctx), PartnerChannel(ctx)]
    channels += [DutyGroupChannel(ctx, tool) for tool in TOOLS]  # the units' group robots
    return {channel.name: channel for channel in channels}


def add_webhook_routes(app: web.Application) -> None:
    app.add_routes(sms_webhooks.routes)
    app.add_routes(telegram_webhook.routes)


def bind_webhooks(app: web.Application, channels: dict[str, Channel]) -> None:
    """Hand each receiving channel's handlers the started channel, once the process has started them."""
    sms, telegram = channels["sms"], channels["telegram"]
    assert isinstance(sms, SmsChannel) and isinstance(telegram, TelegramChannel)
    app[sms_webhooks.SMS_CHANNEL] = sms
    app[telegram_webhook.TELEGRAM_CHANNEL] = telegram
