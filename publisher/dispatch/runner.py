"""The background loops of dispatch, run inside `warncast serve` and by `warncast worker`.

`dispatch_loops` only defines them; the process's supervisor (foundation/supervisor.py) runs them,
restarts one that fails (Redis may be restarting) and stops them all on shutdown. Each says how
long it may go without reporting in (`Loop.within`) before `/readyz` calls it stuck.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from foundation.store import keys
from foundation.store.streams import ensure_group
from foundation.supervisor import Loop
from publisher.dispatch.context import DispatchContext
from publisher.dispatch.notifications import Notifier
from publisher.dispatch.planner import Planner
from publisher.dispatch.worker import HEARTBEAT_SECONDS, Worker

# Planning one publication reads every affected area's subscribers: a round may take a while.
PLANNER_WITHIN = 60.0


def dispatch_loops(ctx: DispatchContext, worker: Worker | None = None) -> list[Loop]:
    worker = worker or Worker(ctx)
    planner = Planner(ctx, consumer=worker.id)
    notifier = Notifier(ctx, consumer=worker.id)
    # A send waits at most a provider timeout; sending loops report in between sends.
    sending = max(30.0, 3 * ctx.settings.provider_timeout)
    return [
        Loop("planner", rounds(_planner_group(ctx), lambda: planner.run_once(block_ms=1000)), within=PLANNER_WITHIN),
        Loop("dispatch", worker.run, within=sending),
        # Every second, well inside its HEARTBEAT_SECONDS: silent for that long, its claims are taken over.
        Loop("dispatch-heartbeat", worker.heartbeat, every=1.0, within=float(HEARTBEAT_SECONDS)),
        Loop("report-notifications", notifier.run, within=sending),
    ]


def _planner_group(ctx: DispatchContext) -> Callable[[], Awaitable[Any]]:
    return lambda: ensure_group(ctx.redis, keys.WARNINGS_EVENTS, keys.PLANNER_GROUP)


def rounds(prepare: Callable[[], Awaitable[Any]], one: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
    """A loop run as rounds for the supervisor, each of which reports in when it returns: `prepare`
    (e.g. create a consumer group) before the first round, and again after a failure."""
    prepared = False

    async def run() -> None:
        nonlocal prepared
        if not prepared:
            await prepare()
            prepared = True
        try:
            await one()
        except BaseException:
            prepared = False
            raise

    return run
