"""`create_app(settings)`: the only way the web app is built, in production and in tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from citizen_report.desk import ReportDesk
from citizen_report.queue import consume
from foundation.clock import Clock
from foundation.settings import Settings
from foundation.store.connection import open_redis
from publisher.dispatch.runner import start_dispatch
from warncast import app_keys
from warncast.app_keys import BACKGROUND, DISPATCH, REPORTS, SERVICES, SETTINGS
from warncast.channel_registry import add_webhook_routes, bind_webhooks
from warncast.services import Services
from warncast.web import (
    api,
    console,
    delivery,
    feeds,
    live,
    monitoring,
    open311,
    partners,
    public,
    reports,
    screens,
    triage,
)
from warncast.web.limits import install_limits
from warncast.web.middleware import MIDDLEWARES

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY = 1024 * 1024  # warnings are text; nothing legitimate is larger


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    install_limits(app, settings, clock)
    app.add_routes(public.routes)
    app.add_routes(api.routes)
    app.add_routes(console.routes)
    for module in (delivery, feeds, screens, partners, reports, triage, monitoring, open311):
        app.add_routes(module.routes)
    add_webhook_routes(app)
    app.router.add_static("/static", STATIC_DIR, name="static", append_version=True)
    app.cleanup_ctx.append(_services_ctx(clock))
    app.cleanup_ctx.append(_background_ctx)
    app.cleanup_ctx.append(live.outlets_ctx)
    app.on_shutdown.append(live.close_streams)
    return app


def _services_ctx(clock: Clock | None):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_redis(app[SETTINGS]) as redis:
            services = await Services.build(app[SETTINGS], redis, clock)
            app_keys.install(app, services)
            await services.start_channels()
            bind_webhooks(app, services.channels)
            try:
                yield
            finally:
                await services.close_channels()

    return ctx


async def _background_ctx(app: web.Application) -> AsyncIterator[None]:
    tasks: list[asyncio.Task[None]] = []
    if app[SETTINGS].run_scheduler:
        tasks.append(asyncio.create_task(run_scheduler(app[SERVICES]), name="scheduler"))
        tasks.append(asyncio.create_task(run_monitoring(app[REPORTS]), name="monitoring"))
    if app[SETTINGS].run_workers:
        tasks.extend(start_dispatch(app[DISPATCH]))
    app[BACKGROUND] = tasks
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_scheduler(services: Services, interval: float = 1.0) -> None:
    """Publish scheduled warnings and expire lapsed ones, once a second, in every process.

    Every step is a guarded transaction, so several processes running this loop do no harm.
    """
    while True:
        try:
            await services.registry.refresh(services.redis)
            await services.warnings.run_due()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduler round failed; retrying")
        await asyncio.sleep(interval)


async def run_monitoring(desk: ReportDesk) -> None:
    """Consume the monitoring queue into triage-board incidents; every process may run one."""
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    while True:
        try:
            await consume(desk, consumer, block_ms=1000)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("monitoring consumer round failed; retrying")
            await asyncio.sleep(1)
