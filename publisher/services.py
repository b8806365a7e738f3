"""The service objects every handler and worker shares, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from citizen_report.desk import ReportDesk

from .areas import AreaRegistry
from .audit import AuditLog
from .auth import Accounts
from .i18n import Catalogs
from .settings import Settings
from .web.templating import build_environment
from .workflow import Clock, Warnings


@dataclass
class Services:
    settings: Settings
    redis: aioredis.Redis
    catalogs: Catalogs
    registry: AreaRegistry
    audit: AuditLog
    accounts: Accounts
    warnings: Warnings
    reports: ReportDesk

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
            accounts=Accounts(redis),
            warnings=Warnings(redis, registry, audit, settings, catalogs, clock),
            reports=ReportDesk(settings.tz, build_environment(enable_async=False), clock),
        )
