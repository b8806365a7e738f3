"""Duty-group channels: warnings, approval pages and incidents posted to the units' group robots.

One channel per tool (`wecom`, `dingtalk`, `feishu`), each keeping its own recipients (the duty
groups of units whose jurisdiction a warning reaches) and riding the same dispatch as every other
channel: the planner's segments, per-version claims, the channel's rate and a per-group interval
inside the tool's own limit, retries with back-off and dead letters. A group registered without a
key delivers into the channel's outbox; a robot the tool says was removed is stopped.
"""

from __future__ import annotations

import json
import logging
import time

import aiohttp

from channels.context import ChannelContext
from channels.duty_groups.registry import DutyGroups
from channels.duty_groups.tools import build_request, classify, result_code
from channels.outbox import OutboxTransport
from foundation.access.audit import SYSTEM, AuditLog
from foundation.access.units import Units
from publisher.dispatch.channel import PermanentError, Rendition, SendResult, TemporaryError
from publisher.model import Message
from publisher.subscribers import ACTIVE, STOPPED, Subscriber
from publisher.wording import render_template, word

log = logging.getLogger(__name__)
RATE = 20.0  # posts per second over all groups of one tool: a city has hundreds of groups, not millions


class DutyGroupChannel:
    subscriber_channel = False  # duty groups are kept in their own registry
    takes_notices = True
    outbox_mode = False  # per group: one registered without a key delivers into the outbox
    rate = RATE
    max_units = 1

    def __init__(self, ctx: ChannelContext, tool: str) -> None:
        self.ctx = ctx
        self.name = tool
        self.tool = tool
        self.per_address_interval_ms: int | None = ctx.settings.duty_group_interval_ms or None
        self.groups = DutyGroups(ctx.redis)
        self.units = Units(ctx.redis, ctx.settings)
        self.audit = AuditLog(ctx.redis, ctx.settings.secret_key, ctx.settings.redis_min_replicas)
        self.outbox = OutboxTransport(ctx.redis, tool, keep_days=ctx.settings.delivery_retention_days)
        self.session: aiohttp.ClientSession | None = None

    async def recipients(self, message: Message, areas: set[str]) -> list[str]:
        org = await self.units.organisation()
        grade, drill = message.content.grade, message.content.is_drill
        return await self.groups.for_warning(self.tool, grade, drill, areas, org, self.ctx.registry)

    async def lookup(self, addresses: list[str]) -> list[Subscriber | None]:
        out: list[Subscriber | None] = []
        for group in await self.groups.many(addresses):
            out.append(
                None
                if group is None
                else Subscriber(
                    channel=self.name,
                    address=group.id,
                    status=ACTIVE if group.active else STOPPED,
                    lang=group.lang,
                    min_grade=group.min_grade,
                    drill=group.include_drills,
                )
            )
        return out

    async def render(self, message: Message, locale: str, *, kind: str | None = None) -> Rendition:
        ctx = self.ctx
        view = word(message, locale, kind=kind, registry=ctx.registry, catalogs=ctx.catalogs, settings=ctx.settings)
        text = await render_template(ctx.env, "messages/duty_group.txt", view, ctx.catalogs, ctx.settings)
        return Rendition(text=text)

    def render_text(self, text: str) -> Rendition:
        return Rendition(text=text)

    async def send(self, address: str, rendition: Rendition, *, reference: str) -> SendResult:
        group, creds = await self.groups.with_credentials(address)
        if group is None:
            raise PermanentError(f"duty group {address} was removed", code="removed")
        if not group.active:
            raise PermanentError(f"duty group {address} is stopped", code="stopped")
        if not creds.token:
            return await self.outbox.send(address, rendition, reference=reference)
        assert self.session is not None, "start() first"
        request = build_request(self.tool, self.ctx.settings, creds.token, creds.secret, rendition.text, time.time())
        timeout = aiohttp.ClientTimeout(total=self.ctx.settings.provider_timeout)
        try:
            async with self.session.post(request.url, json=request.body, timeout=timeout) as response:
                status = response.status
                raw = await response.content.read(65536)
        except TimeoutError as exc:
            raise TemporaryError(f"{self.tool} robot {address} did not answer in time", code="timeout") from exc
        except aiohttp.ClientError as exc:
            raise TemporaryError(f"{self.tool} unreachable: {exc.__class__.__name__}", code="connection") from exc
        if status == 429 or status >= 500:
            raise TemporaryError(f"{self.tool} answered HTTP {status}", code=f"http_{status}")
        try:
            code, text = result_code(self.tool, json.loads(raw))
        except ValueError:
            code, text = -1, f"HTTP {status}, not JSON"
        if code == 0 and status == 200:
            return SendResult(provider_id=f"{self.tool}-ok", status="delivered")
        error = classify(self.tool, address, code, text)
        if isinstance(error, PermanentError) and error.code == "removed":
            reason = f"{self.tool} {code}: robot removed or key unknown"
            if await self.groups.deactivate(address, reason):
                await self.audit.append(SYSTEM.label, "duty_group.deactivate", address, unit=group.unit, reason=reason)
                log.warning("duty group %s: %s; stopped", address, reason)
        raise error

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32))

    async def close(self) -> None:
        if self.session:
            await self.session.close()
            self.session = None
