"""Typed application keys, declared together: one per service a handler may use.

Handlers take only what they use (`request.app[WARNINGS]`); `SERVICES` is the process's composition
root (`warncast.services`), for the wiring in `warncast.web.app` and for tests.
"""

from __future__ import annotations

import jinja2
import redis.asyncio as aioredis
from aiohttp import web

from citizen_report.desk import ReportDesk
from foundation.access.audit import AuditLog
from foundation.access.auth import Accounts
from foundation.areas.registry import AreaRegistry
from foundation.i18n import Catalogs
from foundation.settings import Settings
from foundation.supervisor import Supervisor
from foundation.xml_signature import Signer
from publisher.dispatch.channel import Channel
from publisher.dispatch.context import DispatchContext
from publisher.policy import ChannelPolicy
from publisher.subscribers import Subscribers
from publisher.workflow import Warnings
from warncast.services import Services

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
SUPERVISOR = web.AppKey("supervisor", Supervisor)  # the background loops, started with the app

REDIS = web.AppKey("redis", aioredis.Redis)
CATALOGS = web.AppKey("catalogs", Catalogs)
AREAS = web.AppKey("areas", AreaRegistry)
AUDIT = web.AppKey("audit", AuditLog)
ACCOUNTS = web.AppKey("accounts", Accounts)
WARNINGS = web.AppKey("warnings", Warnings)
SUBSCRIBERS = web.AppKey("subscribers", Subscribers)
POLICY = web.AppKey("policy", ChannelPolicy)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
REPORTS = web.AppKey("reports", ReportDesk)
DISPATCH = web.AppKey("dispatch", DispatchContext)
CHANNELS = web.AppKey("channels", dict[str, Channel])
CAP_SIGNER = web.AppKey("cap_signer", Signer)


def install(app: web.Application, services: Services) -> None:
    """Hand each service to the handlers under its own key."""
    app[SERVICES] = services
    app[REDIS] = services.redis
    app[CATALOGS] = services.catalogs
    app[AREAS] = services.registry
    app[AUDIT] = services.audit
    app[ACCOUNTS] = services.accounts
    app[WARNINGS] = services.warnings
    app[SUBSCRIBERS] = services.subscribers
    app[POLICY] = services.policy
    app[TEMPLATES] = services.env
    app[REPORTS] = services.reports
    app[DISPATCH] = services.dispatch
    app[CHANNELS] = services.channels
    app[CAP_SIGNER] = services.cap_signer
