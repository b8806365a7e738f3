"""The one owner of a process's background loops (`warncast serve`'s app, `warncast worker`).

A `Loop` is a name and a coroutine factory. The supervisor runs each loop as its own task: every
time the coroutine returns (one round done) it counts as a success and runs again after `every`
seconds; when it raises, the failure is logged and the loop restarts after an exponential back-off
with jitter and a cap (`RetryPolicy`). A coroutine that runs for good (a stream reader) counts as
recovered once it has run for `settle` seconds without raising.

Each loop keeps its health (state, restarts, last error, last success) for readiness checks:
`failing()` names the loops that have been failing for longer than `grace` seconds.

Running is not working: a loop must also *report in* at least every `Loop.within` seconds, or
`silent()` names it. A round that returns reports in by itself; a loop that runs for good (or a
long round) calls `beat()` each time it completes a unit of work or an idle wait, from any task it
started (the loop is found through a context variable, so the code that beats needs no handle).

`stop()` (or leaving `async with`) cancels every task and waits for each to end, so a process
shutting down never waits on a background loop that goes on by itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from foundation.retry import RetryPolicy

log = logging.getLogger(__name__)
RESTARTS = RetryPolicy(base=0.5, cap=30.0)  # 0.5 s, 1 s, 2 s ... at most 30 s between restarts
RUNNING, RESTARTING, STOPPED, DEAD = "running", "restarting", "stopped", "dead"
WITHIN = 30.0  # default: a loop silent for longer than this is stuck
RECANCEL = 0.5  # seconds between cancellations of a loop that does not end on `stop()`


@dataclass(frozen=True)
class Loop:
    """`run()` makes one run of the loop: one round that returns, or a coroutine that never does.

    `within`: the longest silence allowed (a few times the loop's natural period): a returning
    round and each `beat()` report in. `restart`: this loop's back-off, instead of the supervisor's."""

    name: str
    run: Callable[[], Awaitable[Any]]
    every: float = 0.0  # seconds between the end of a round and the start of the next
    within: float = WITHIN
    restart: RetryPolicy | None = None


@dataclass
class LoopHealth:
    name: str
    state: str = STOPPED
    restarts: int = 0
    last_error: str | None = None
    last_error_at: float | None = None  # wall-clock times (time.time())
    last_ok: float | None = None  # the end of the last round that returned
    running_since: float | None = None  # the start of the current run
    failing_since: float | None = None  # monotonic time of the first failure not yet recovered from
    within: float = WITHIN  # the longest silence allowed
    reported: float = field(default_factory=time.monotonic)  # the last report (or the start)

    def beat(self) -> None:
        """Report in: a unit of work or an idle wait completed. A running loop that reports in has
        recovered from any earlier failure."""
        self.reported = time.monotonic()
        if self.state == RUNNING:
            self.failing_since = None

    def silent_for(self, now: float | None = None) -> float:
        """Seconds since this loop last reported in (or started)."""
        return (time.monotonic() if now is None else now) - self.reported

    def is_silent(self, now: float | None = None) -> bool:
        """Running (or restarting) without having reported within `within` seconds."""
        return self.state in (RUNNING, RESTARTING) and self.silent_for(now) > self.within

    def failing_for(self, now: float | None = None) -> float:
        """Seconds since this loop last worked, when it has been failing since; else 0."""
        if self.state == DEAD:
            return float("inf")
        if self.failing_since is None:
            return 0.0
        return (time.monotonic() if now is None else now) - self.failing_since

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_ok": self.last_ok,
            "running_since": self.running_since,
            "failing_for": round(min(self.failing_for(), 1e9), 3),
            "since_report": round(self.silent_for(), 3),
            "within": self.within,
        }


# The health of the loop whose task (or a task it started) is running: what `beat()` reports to.
_CURRENT: contextvars.ContextVar[LoopHealth | None] = contextvars.ContextVar("supervised_loop", default=None)


def beat() -> None:
    """Report in for the supervised loop this code runs in (a no-op outside one, e.g. in tests that
    call a loop's round directly)."""
    health = _CURRENT.get()
    if health is not None:
        health.beat()


def _describe(exc: BaseException) -> str:
    text = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
    return text[:200]


class Supervisor:
    def __init__(
        self,
        *,
        restart: RetryPolicy = RESTARTS,
        grace: float = 5.0,
        settle: float = 5.0,
        stop_timeout: float = 3.0,
    ) -> None:
        self.restart = restart  # the back-off between restarts of a failing loop
        self.grace = grace  # a loop failing for longer than this makes the process not ready
        self.settle = settle  # a run that lasts this long without raising has recovered
        self.stop_timeout = stop_timeout  # `stop()` gives up on loops still running after this
        self._loops: dict[str, Loop] = {}
        self._health: dict[str, LoopHealth] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = False

    # lifecycle

    def add(self, *loops: Loop) -> None:
        """Supervise these loops too; they start now when the supervisor is running."""
        for loop in loops:
            if loop.name in self._loops:
                raise ValueError(f"a loop named {loop.name!r} is supervised already")
            self._loops[loop.name] = loop
            self._health[loop.name] = LoopHealth(loop.name, within=loop.within)
            if self._running:
                self._spawn(loop)

    def start(self) -> None:
        if self._running:
            return
        self._running = True
        for loop in self._loops.values():
            self._spawn(loop)

    async def stop(self) -> None:
        """Cancel every loop and wait until each has ended (cancelling again, every RECANCEL seconds,
        one whose cleanup awaits something stuck), for at most `stop_timeout` seconds."""
        self._running = False
        tasks = list(self._tasks.values())
        self._tasks.clear()
        pending = {task for task in tasks if not task.done()}
        deadline = time.monotonic() + self.stop_timeout
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=min(RECANCEL, max(0.0, deadline - time.monotonic())))
            if pending and time.monotonic() >= deadline:
                names = ", ".join(sorted(task.get_name() for task in pending))
                log.error("background loops did not stop within %.0f s: %s", self.stop_timeout, names)
                break
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("background loop %s had ended with %r", task.get_name(), task.exception())
        for health in self._health.values():
            health.state = STOPPED

    async def __aenter__(self) -> Supervisor:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # health

    def health(self) -> dict[str, LoopHealth]:
        """Every loop's health, by name."""
        for name, task in self._tasks.items():
            if task.done():  # only a BaseException other than cancellation gets out of `_supervise`
                self._health[name].state = DEAD
        return dict(self._health)

    def failing(self, grace: float | None = None) -> list[LoopHealth]:
        """The loops that are dead, or have been failing for longer than `grace` seconds."""
        limit = self.grace if grace is None else grace
        now = time.monotonic()
        return [h for h in self.health().values() if h.failing_for(now) > limit]

    def silent(self) -> list[LoopHealth]:
        """The loops that run but have not reported in within their `within` seconds: stuck in a
        call that does not return, or failing inside without letting it out."""
        now = time.monotonic()
        return [h for h in self.health().values() if h.is_silent(now)]

    def beat(self, name: str) -> None:
        """Report in for the loop `name` (for code that is not running inside that loop's task)."""
        self._health[name].beat()

    # one loop

    def _spawn(self, loop: Loop) -> None:
        health = self._health[loop.name]
        health.reported = time.monotonic()  # silence counts from the start
        context = contextvars.copy_context()
        context.run(_CURRENT.set, health)  # what `beat()` finds in this loop's tasks
        self._tasks[loop.name] = asyncio.create_task(self._supervise(loop, health), name=loop.name, context=context)

    async def _supervise(self, loop: Loop, health: LoopHealth) -> None:
        me = asyncio.current_task()
        assert me is not None
        attempt = 0  # failures since the loop last worked
        while self._running:
            health.state = RUNNING
            health.running_since = time.time()
            settled = asyncio.get_running_loop().call_later(self.settle, self._recovered, health)
            try:
                await loop.run()
            except asyncio.CancelledError as exc:
                if me.cancelling() or not self._running:
                    raise
                failure: BaseException = exc  # a cancellation from inside, not ours: a failure
            except Exception as exc:  # noqa: BLE001 - whatever a loop raises, it is restarted
                failure = exc
            else:
                health.last_ok = time.time()
                health.beat()
                health.failing_since = None
                attempt = 0
                self._check_cancelled(me)
                await asyncio.sleep(loop.every)
                continue
            finally:
                settled.cancel()
            self._check_cancelled(me)
            attempt = attempt + 1 if health.failing_since is not None else 1
            delay = (loop.restart or self.restart).delay(attempt)
            health.state = RESTARTING
            health.last_error = _describe(failure)
            health.last_error_at = time.time()
            if health.failing_since is None:
                health.failing_since = time.monotonic()
            log.error(
                "background loop %s failed (%d in a row): %s; restarting in %.1f s",
                loop.name,
                attempt,
                health.last_error,
                delay,
                exc_info=failure if attempt == 1 else None,  # the traceback once, not every second of an outage
            )
            await asyncio.sleep(delay)
            health.restarts += 1

    @staticmethod
    def _recovered(health: LoopHealth) -> None:
        if health.state == RUNNING:
            health.failing_since = None

    @staticmethod
    def _check_cancelled(me: asyncio.Task[Any]) -> None:
        """A loop that swallowed our cancellation does not get to run again."""
        if me.cancelling():
            raise asyncio.CancelledError
