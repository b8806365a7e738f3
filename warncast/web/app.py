"""`create_app(settings)`: the only way the web app is built, in production and in tests."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

from aiohttp import web

from channels.cache import redis_away
from citizen_report.desk import ReportDesk
from citizen_report.queue import consume, give_up
from foundation.clock import Clock
from foundation.settings import Settings
from foundation.store.connection import open_redis
from foundation.supervisor import Loop, Supervisor
from publisher.approval_pages import CHECK_SECONDS as ESCALATION_CHECK_SECONDS
from publisher.dispatch.runner import dispatch_loops
from publisher.scheduler import scheduler_loop
from warncast import app_keys
from warncast.app_keys import DISPATCH, REPORTS, SERVICES, SETTINGS, SUPERVISOR
from warncast.channel_registry import add_webhook_routes, bind_webhooks
from warncast.services import Services
from warncast.web import (
    api,
    console,
    delivery,
    duty_groups,
    feeds,
    live,
    maps,
    monitoring,
    open311,
    partners,
    plans,
    plans_pages,
    public,
    record,
    reports,
    screens,
    triage,
    units,
)
from warncast.web.limits import install_limits
from warncast.web.middleware import MIDDLEWARES

log = logging.getLogger(__name__)
LEASE_GIVE_UP_SECONDS = 0.5  # at shutdown, how long handing on the monitoring lease may take
STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY = 1024 * 1024  # warnings are text; nothing legitimate is larger


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    app[SUPERVISOR] = Supervisor()  # the app's background loops; /readyz reads their health
    install_limits(app, settings, clock)
    app.add_routes(public.routes)
    app.add_routes(api.routes)
    app.add_routes(console.routes)
    for module in (
        delivery,
        feeds,
        screens,
        partners,
        units,
        duty_groups,
        reports,
        triage,
        monitoring,
        open311,
        maps,
        record,
        plans,
        plans_pages,
    ):
        app.add_routes(module.routes)
    add_webhook_routes(app)
    maps.add_vendor_static(app)  # before /static, which would otherwise take /static/vendor/…
    app.router.add_static("/static", STATIC_DIR, name="static", append_version=True)
    app.cleanup_ctx.append(_services_ctx(clock))
    app.cleanup_ctx.append(_background_ctx)
    app.cleanup_ctx.append(live.outlets_ctx)
    app.on_shutdown.append(live.close_streams)
    return app


def _services_ctx(clock: Clock | None):
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
    """Start the app's background loops under its supervisor (more join it, see `live`); on
    shutdown every one of them is cancelled and awaited."""
    settings, services, supervisor = app[SETTINGS], app[SERVICES], app[SUPERVISOR]
    consumer = f"{socket.gethostname()}-{os.getpid()}"  # this process's in the monitoring queue's group
    if settings.run_scheduler:
        supervisor.add(scheduler_loop(services.registry, services.redis, services.warnings))
        supervisor.add(monitoring_loop(app[REPORTS], consumer))
        supervisor.add(Loop("duty-pages", partial(services.pager.follow_incidents, app[REPORTS]), within=30.0))
        supervisor.add(Loop("approval-escalation", services.approval_pages.run, within=4 * ESCALATION_CHECK_SECONDS))
    if settings.run_workers:
        supervisor.add(*dispatch_loops(app[DISPATCH]))
    supervisor.start()
    try:
        yield
    finally:
        await supervisor.stop()
        if settings.run_scheduler:
            await _give_up_lease(app[REPORTS], consumer)


def monitoring_loop(desk: ReportDesk, consumer: str) -> Loop:
    """Consume the monitoring queue into triage-board incidents; every process runs one, and the
    holder of the queue's lease works (citizen_report.queue)."""
    return Loop("monitoring", partial(consume, desk, consumer, block_ms=1000), within=30.0)  # rounds of ≤ 1 s waits


async def _give_up_lease(desk: ReportDesk, consumer: str) -> None:
    """A stopping process hands the monitoring lease on at once; with Redis away or slow it does
    not wait (the 10 s to stop are for everything), and the lease lapses by itself."""
    try:
        await asyncio.wait_for(give_up(desk, consumer), LEASE_GIVE_UP_SECONDS)
    except Exception as exc:
        if not redis_away(exc):
            raise
        log.info("monitoring lease not given back (redis away: %r); it lapses by itself", exc)
