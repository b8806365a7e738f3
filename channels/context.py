"""What a channel may use, built once per process by the app that registers the channels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import jinja2
import redis.asyncio as aioredis

from citizen_report.desk import ReportDesk
from foundation.access.audit import AuditLog
from foundation.areas.registry import AreaRegistry
from foundation.i18n import Catalogs
from foundation.settings import Settings
from foundation.xml_signature import Signer
from publisher.subscribers import Subscribers
from publisher.workflow import Warnings


@dataclass
class ChannelContext:
    settings: Settings
    redis: aioredis.Redis
    env: jinja2.Environment  # the shared Jinja environment (templates/messages/*)
    catalogs: Catalogs
    registry: AreaRegistry
    subscribers: Subscribers
    warnings: Warnings  # the published record that feeds, screens and partners read
    audit: AuditLog  # inbound webhooks record what residents asked for
    reports: ReportDesk  # channels that take citizen reports (SMS, Telegram) hand them to the desk
    cap_signer: Signer | None = None  # partners receive CAP signed as the public feed serves it

    def now(self) -> datetime:
        """The process's clock (the one the workflow publishes by, injected in tests), in the city's
        time zone: what renderers measure a warning's remaining validity against."""
        return self.warnings.now()
