"""The service objects every handler and worker shares, built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import jinja2
import redis.asyncio as aioredis

from citizen_report.desk import ReportDesk
from foundation.access.audit import AuditLog
from foundation.access.auth import Accounts
from foundation.areas.registry import AreaRegistry
from foundation.i18n import Catalogs
from foundation.settings import Settings
from foundation.templating import build_environment
from publisher.policy import ChannelPolicy
from publisher.subscribers import Subscribers
from publisher.workflow import Clock, Warnings

if TYPE_CHECKING:
    from publisher.dispatch.channel import Channel


@dataclass
class Services:
    settings: Settings
    redis: aioredis.Redis
    catalogs: Catalogs
    registry: AreaRegistry
    audit: AuditLog
    accounts: Accounts
    warnings: Warnings
    subscribers: Subscribers
    policy: ChannelPolicy
    env: jinja2.Environment
    reports: ReportDesk
    channels: dict[str, Channel] = field(default_factory=dict)  # started by start_channels()

    @classmethod
    async def build(cls, settings: Settings, redis: aioredis.Redis, clock: Clock | None = None) -> Services:

        catalogs = Catalogs.load()
        registry = AreaRegistry()
        await registry.refresh(redis)
        audit = AuditLog(redis, settings.secret_key)
        return cls(
            settings=settings,
            redis=redis,
            catalogs=catalogs,
            registry=registry,
            audit=audit,
            accounts=Accounts(redis, settings.password_memory_kib),
            warnings=Warnings(redis, registry, audit, settings, catalogs, clock),
            subscribers=Subscribers(redis),
            policy=ChannelPolicy(redis),
            env=build_environment(),
            reports=ReportDesk(settings.tz, build_environment(enable_async=False), clock),
        )

    async def start_channels(self) -> None:
        from channels import ChannelContext, build_channels

        ctx = ChannelContext(self.settings, self.redis, self.env, self.catalogs, self.registry, self.subscribers)
        self.channels = build_channels(ctx)
        for channel in self.channels.values():
            await channel.start()
        # Compile message templates now, not while the first warning waits to be sent.
        for name in self.env.list_templates(filter_func=lambda name: name.startswith("messages/")):
            self.env.get_template(name)

    async def close_channels(self) -> None:
        for channel in self.channels.values():
            await channel.close()
        self.channels = {}
