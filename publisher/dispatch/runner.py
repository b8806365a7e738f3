"""The background loops of dispatch, run inside `warncast serve` and by `warncast worker`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from publisher.dispatch.context import DispatchContext
from publisher.dispatch.notifications import Notifier
from publisher.dispatch.planner import Planner
from publisher.dispatch.worker import Worker

log = logging.getLogger(__name__)


async def _forever(name: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Keep a loop running: log a failure, wait a moment, start again (Redis may be restarting)."""
    while True:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; restarting in 1 s", name)
            await asyncio.sleep(1)


def start_dispatch(ctx: DispatchContext, worker: Worker | None = None) -> list[asyncio.Task[None]]:
    worker = worker or Worker(ctx)
    planner = Planner(ctx, consumer=worker.id)
    notifier = Notifier(ctx, consumer=worker.id)
    return [
        asyncio.create_task(_forever("planner", planner.run), name="planner"),
        asyncio.create_task(_forever("dispatch worker", worker.run), name="dispatch"),
        asyncio.create_task(_forever("reporter notifications", notifier.run), name="report-notifications"),
    ]
