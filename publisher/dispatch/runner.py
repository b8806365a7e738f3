"""The background loops of dispatch, run inside `warncast serve` and by `warncast worker`.

`dispatch_loops` only defines them; the process's supervisor (foundation/supervisor.py) runs them,
restarts one that fails (Redis may be restarting) and stops them all on shutdown.
"""

from __future__ import annotations

from foundation.supervisor import Loop
from publisher.dispatch.context import DispatchContext
from publisher.dispatch.notifications import Notifier
from publisher.dispatch.planner import Planner
from publisher.dispatch.worker import Worker


def dispatch_loops(ctx: DispatchContext, worker: Worker | None = None) -> list[Loop]:
    worker = worker or Worker(ctx)
    planner = Planner(ctx, consumer=worker.id)
    notifier = Notifier(ctx, consumer=worker.id)
    return [
        Loop("planner", planner.run),
        Loop("dispatch", worker.run),
        Loop("dispatch-heartbeat", worker.heartbeat, every=1.0),  # well inside its HEARTBEAT_SECONDS
        Loop("report-notifications", notifier.run),
    ]
