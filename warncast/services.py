"""The process's composition root: every service built once, from the bottom layer up.

`Services` owns what it builds; nothing below this layer sees it. Handlers reach each service through
its own AppKey (`warncast.app_keys`), and the lower layers get only the context they work with:
`DispatchContext` (publisher.dispatch), `ReportDesk` (citizen_report), `ChannelContext` (channels).
"""

from __future__ import annotations

from dataclasses import dataclass

import jinja2
import redis.asyncio as aioredis

from channels.context import ChannelContext
from channels.duty_groups.pages import Pager
from citizen_report.desk import ReportDesk
from foundation.access.audit import AuditLog
from foundation.access.auth import Accounts
from foundation.areas.registry import AreaRegistry
from foundation.clock import Clock
from foundation.i18n import Catalogs
from foundation.settings import Settings
from foundation.store.durable import required_replicas
from foundation.templating import build_environment
from foundation.xml_signature import Signer
from publisher.approval_pages import ApprovalPages
from publisher.cap_signing import cap_signer
from publisher.dispatch.channel import Channel
from publisher.dispatch.context import DispatchContext
from publisher.policy import ChannelPolicy
from publisher.subscribers import Subscribers
from publisher.taxonomy import template_names
from publisher.workflow import Warnings
from warncast.channel_registry import build_channels
from warncast.threshold_plans import PlanDrafter


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
    pager: Pager  # duty-group pages: approvals waiting on a unit, incidents routed to one
    approval_pages: ApprovalPages  # the people who may approve a waiting warning, paged and escalated
    dispatch: DispatchContext
    channel_context: ChannelContext
    cap_signer: Signer  # the key published CAP is signed with

    @property
    def channels(self) -> dict[str, Channel]:
        """The started channels (empty until `start_channels`)."""
        return self.dispatch.channels

    @classmethod
    async def build(cls, settings: Settings, redis: aioredis.Redis, clock: Clock | None = None) -> Services:
        settings = settings.with_(redis_min_replicas=await required_replicas(redis, settings))
        catalogs = Catalogs.load()
        registry = AreaRegistry()
        await registry.refresh(redis)
        audit = AuditLog(redis, settings.secret_key, settings.redis_min_replicas)
        warnings = Warnings(redis, registry, audit, settings, catalogs, clock)
        await warnings.index_messages_from_before_units()
        subscribers = Subscribers(redis, settings.redis_min_replicas)
        policy = ChannelPolicy(redis)
        env = build_environment(names=template_names())
        reports = ReportDesk(settings, redis, registry, catalogs, audit, build_environment(enable_async=False), clock)
        signer = cap_signer(settings)
        pager = Pager(redis, settings, catalogs)
        warnings.on_submitted.append(pager.submitted)
        accounts = Accounts(redis, settings.password_memory_kib)
        approval_pages = ApprovalPages(redis, warnings, accounts, catalogs)
        warnings.on_submitted.append(approval_pages.submitted)
        reports.on_breach.append(PlanDrafter(redis, warnings, registry, settings).breach)
        return cls(
            settings=settings,
            redis=redis,
            catalogs=catalogs,
            registry=registry,
            audit=audit,
            accounts=accounts,
            warnings=warnings,
            subscribers=subscribers,
            policy=policy,
            env=env,
            reports=reports,
            pager=pager,
            approval_pages=approval_pages,
            dispatch=DispatchContext(settings, redis, registry, warnings, subscribers, policy),
            channel_context=ChannelContext(
                settings, redis, env, catalogs, registry, subscribers, warnings, audit, reports, signer
            ),
            cap_signer=signer,
        )

    async def start_channels(self) -> None:
        self.channels.update(build_channels(self.channel_context))
        for channel in self.channels.values():
            await channel.start()
        # Compile message templates now, not while the first warning waits to be sent.
        for name in self.env.list_templates(filter_func=lambda name: name.startswith("messages/")):
            self.env.get_template(name)

    async def close_channels(self) -> None:
        for channel in self.channels.values():
            await channel.close()
        self.channels.clear()
