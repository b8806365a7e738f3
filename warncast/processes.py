"""`warncast serve --processes N`: one host's cores all serving.

The parent (the supervisor) serves nothing itself. Before it starts any child it makes sure that
nothing else listens on the port and holds it for its children (`reserve_port`), creates the
host's shared limits (warncast/web/shared_limits.py) and, without REDIS_URL or Sentinels, starts
the embedded redis-server through `open_redis`, so that every child finds it running
(`_socket_alive` in foundation/store/connection.py) and none starts one of its own: no two
processes race to start a server on one data dir. Then it starts N children, `python -m warncast
serve --host H --port P --child SLOT,LIMITS_FD,LIFELINE_FD`, each exactly what a single
`warncast serve` runs (the web app and every background loop: dispatch workers, consumers,
scheduler), listening on the same host:port with SO_REUSEPORT: the kernel spreads the connections
over the children, and a dead child's share goes to the others at once.

Why new interpreters (subprocess) and not fork: the children are ordinary `warncast serve`
processes started from scratch, so nothing of the parent's state (its event loop, its Redis
client, a lock some thread held at fork time) is copied into them, and a child is exactly what
`warncast serve` is. What a child needs from its parent is two inherited file descriptors
(`pass_fds`): the shared limits (a memfd) and the read end of a pipe, the lifeline, whose write end
only the parent holds; when the parent dies, however it dies, the pipe reads EOF and the child
stops by itself instead of serving on unsupervised.

The parent supervises: a child that ends is logged (exit code or signal) and started again after a
back-off (0.5 s doubling to 30 s, from the first again once a child has run SETTLE seconds), so a
child that crashes at start does not spin; its column of live-stream counts is zeroed first (its
streams are gone). A child that ends with a configuration error (exit 2) is not restarted: the
parent stops the others and exits 2. While the embedded Redis does not answer, no child is started
(it would start a second server on the same data dir). SIGTERM or SIGINT: every child gets SIGTERM
(a child stops within its SIGNAL_DEADLINE, see warncast/cli.py), what still runs KILL_MARGIN later
is killed, then the embedded Redis stops and the parent exits: all within 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from foundation.settings import Settings
from foundation.store.connection import open_redis
from foundation.supervisor import RESTARTS
from warncast.web.shared_limits import SharedLimits, install_shared_limits

log = logging.getLogger("warncast.processes")
CHILD_OPTION = "--child"  # internal: SLOT,LIMITS_FD,LIFELINE_FD (the supervisor's child)
PROCESS_HEADER = "X-Warncast-Process"  # which process (slot 1..N) answered: not secret, useful to operators
SETTLE = 30.0  # seconds a child must run for its next failure to count as the first again
KILL_MARGIN = 0.3  # seconds after the children's own deadline before what is left is killed
CONFIGURATION_ERROR = 2  # the exit code of `warncast` for a configuration error


# The child's side


@dataclass(frozen=True)
class Child:
    """What a child of the supervisor got from it: its slot (1..N) and the two descriptors."""

    slot: int
    limits_fd: int
    lifeline_fd: int

    @classmethod
    def parse(cls, value: str) -> Child:
        slot, limits_fd, lifeline_fd = (int(part) for part in value.split(","))
        return cls(slot, limits_fd, lifeline_fd)

    def argument(self) -> str:
        return f"{self.slot},{self.limits_fd},{self.lifeline_fd}"

    def install(
        self, app: web.Application, settings: Settings, loop: asyncio.AbstractEventLoop, stop: Callable[[], None]
    ) -> None:
        """Make `app` one of the host's processes: the host's limits, the process header on every
        response, the slot in every log record; and stop (`stop`) when the parent is gone."""
        install_shared_limits(app, settings, SharedLimits.attach(self.limits_fd), self.slot - 1)
        slot = str(self.slot)

        async def mark(request: web.Request, response: web.StreamResponse) -> None:
            response.headers[PROCESS_HEADER] = slot

        async def ready(app: web.Application) -> None:
            log.info("process %d ready (pid %d)", self.slot, os.getpid())

        app.on_response_prepare.append(mark)
        app.on_startup.append(ready)  # after the services' start (cleanup contexts run first)

        def tag(record: logging.LogRecord) -> bool:
            record.process_slot = self.slot  # a field of the JSON log lines
            return True

        for handler in logging.getLogger().handlers:
            handler.addFilter(tag)

        def parent_gone() -> None:
            loop.remove_reader(self.lifeline_fd)
            log.error("process %d: the supervising process is gone; stopping", self.slot)
            stop()

        loop.add_reader(self.lifeline_fd, parent_gone)  # readable only at EOF: nothing is ever written


# The parent's side


@dataclass
class _Slot:
    number: int
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0


@dataclass
class _Host:
    settings: Settings
    count: int
    child_deadline: float
    table: SharedLimits
    lifeline: int  # the read end, passed to every child
    redis: aioredis.Redis | None  # the embedded server's client, None with an external Redis
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    exit_code: int = 0
    slots: list[_Slot] = field(default_factory=list)

    async def run(self) -> int:
        self.slots = [_Slot(n) for n in range(1, self.count + 1)]
        keepers = [asyncio.create_task(self._keep(slot), name=f"process-{slot.number}") for slot in self.slots]
        await self.stop.wait()
        stopped = time.monotonic()
        for slot in self.slots:
            self._signal(slot, signal.SIGTERM)
        _, pending = await asyncio.wait(keepers, timeout=self.child_deadline + KILL_MARGIN)
        if pending:
            for slot in self.slots:
                if self._signal(slot, signal.SIGKILL):
                    log.error("process %d (pid %d) still running: killed", slot.number, _pid(slot))
                    self.exit_code = self.exit_code or 1
            await asyncio.wait(pending)
        for task in keepers:
            if not task.cancelled() and task.exception() is not None:
                log.error("supervising a process failed", exc_info=task.exception())
        log.info("every process has stopped, %.1f s after the signal", time.monotonic() - stopped)
        return self.exit_code

    async def _keep(self, slot: _Slot) -> None:
        """Run the slot's child for as long as the host serves, starting it again when it ends."""
        attempt = 0
        while not self.stop.is_set():
            if not await self._redis_answers(slot):
                return
            try:
                proc = await asyncio.create_subprocess_exec(
                    *self._command(slot),
                    stdin=subprocess.DEVNULL,
                    pass_fds=(self.table.fileno(), self.lifeline),
                )
            except OSError as exc:  # out of processes or descriptors, for now
                attempt += 1
                delay = RESTARTS.delay(attempt)
                log.error("cannot start process %d (%s); trying again in %.1f s", slot.number, exc, delay)
                if await self._stopped_within(delay):
                    return
                continue
            slot.proc = proc
            started = time.monotonic()
            log.info("started process %d (pid %d)", slot.number, proc.pid)
            if self.stop.is_set():  # the stop came while it was starting: it gets its SIGTERM too
                self._signal(slot, signal.SIGTERM)
            code = await proc.wait()
            ran = time.monotonic() - started
            if self.stop.is_set():
                log.info("process %d (pid %d) %s", slot.number, proc.pid, _ended(code))
                if code not in (0, -signal.SIGTERM, -signal.SIGINT):  # e.g. its last-resort exit (1)
                    self.exit_code = self.exit_code or 1
                return
            if code == CONFIGURATION_ERROR:
                log.error(
                    "process %d (pid %d) %s: a configuration error; stopping every process",
                    slot.number,
                    proc.pid,
                    _ended(code),
                )
                self.exit_code = CONFIGURATION_ERROR
                self.stop.set()
                return
            freed = self.table.clear_slot(slot.number - 1)  # it holds no stream any more
            attempt = 1 if ran >= SETTLE else attempt + 1
            delay = RESTARTS.delay(attempt)
            log.error(
                "process %d (pid %d) %s after %.1f s (%d live streams freed); restarting in %.1f s",
                slot.number,
                proc.pid,
                _ended(code),
                ran,
                freed,
                delay,
            )
            if await self._stopped_within(delay):
                return
            slot.restarts += 1

    def _command(self, slot: _Slot) -> list[str]:
        child = Child(slot.number, self.table.fileno(), self.lifeline)
        host, port = self.settings.host, str(self.settings.port)
        return [
            sys.executable,
            "-m",
            "warncast",
            "serve",
            "--host",
            host,
            "--port",
            port,
            CHILD_OPTION,
            child.argument(),
        ]

    async def _redis_answers(self, slot: _Slot) -> bool:
        """Wait until the embedded Redis answers (at once with an external one); False: stopping."""
        attempt = 0
        while self.redis is not None:
            try:
                async with asyncio.timeout(self.settings.redis_timeout):
                    await self.redis.ping()
                return True
            except Exception as exc:  # noqa: BLE001 - whatever the failure, the child waits for Redis
                attempt += 1
                delay = RESTARTS.delay(attempt)
                log.error(
                    "the embedded redis-server does not answer (%s); process %d waits %.1f s before it starts",
                    exc,
                    slot.number,
                    delay,
                )
                if await self._stopped_within(delay):
                    return False
        return not self.stop.is_set()

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.stop.wait()
        return self.stop.is_set()

    @staticmethod
    def _signal(slot: _Slot, sig: signal.Signals) -> bool:
        """Send `sig` to the slot's child if it is still running (True if it was)."""
        if slot.proc is None or slot.proc.returncode is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            slot.proc.send_signal(sig)
        return True


def _pid(slot: _Slot) -> int:
    return slot.proc.pid if slot.proc is not None else 0


def _ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def reserve_port(host: str, port: int) -> list[socket.socket]:
    """Hold `host:port` for this host's children, or raise OSError when something else listens there.

    The children listen with SO_REUSEPORT, which would let them share the port with another server
    of the same user (a second `serve --processes`) without a word. So first a probe binds without
    it, which any socket on the port conflicts with; then a guard binds with SO_REUSEPORT alone
    (no SO_REUSEADDR, not listening: it takes no connection), which the children may share but a
    later probe may not, so the port stays ours while children restart."""
    guards: list[socket.socket] = []
    try:
        for family, kind, proto, address in _addresses(host, port):
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a server: TIME_WAIT is no conflict
                _v6only(probe)
                probe.bind(address)
            guard = socket.socket(family, kind, proto)
            guards.append(guard)
            guard.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            _v6only(guard)
            guard.bind(address)
    except OSError:
        for guard in guards:
            guard.close()
        raise
    return guards


def _addresses(host: str, port: int) -> set[tuple[int, int, int, tuple[Any, ...]]]:
    """The addresses a server on `host:port` listens on (asyncio binds each), IPv4 and IPv6 only."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return {(f, k, p, a) for f, k, p, _, a in found if f in (socket.AF_INET, socket.AF_INET6) and isinstance(a, tuple)}


def _v6only(sock: socket.socket) -> None:
    if sock.family == socket.AF_INET6:  # as asyncio's create_server: one socket per family
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)


def serve(settings: Settings, count: int, child_deadline: float) -> int:
    """Run `count` serving children on `settings.host:port` until SIGTERM or SIGINT; the exit code."""
    try:
        guards = reserve_port(settings.host, settings.port)
    except OSError as exc:
        print(f"warncast: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_supervise(settings, count, child_deadline))
    finally:
        for guard in guards:
            guard.close()


async def _supervise(settings: Settings, count: int, child_deadline: float) -> int:
    loop = asyncio.get_running_loop()
    main, host = asyncio.current_task(), None
    stop = asyncio.Event()

    def on_signal() -> None:
        stop.set()
        if host is None and main is not None:
            main.cancel()  # still starting (the embedded Redis): stop starting

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    table = SharedLimits.create(count, settings.public_max_ips)
    lifeline, lifeline_end = os.pipe()  # the parent holds the write end until it exits
    try:
        async with contextlib.AsyncExitStack() as stack:
            redis = None
            if settings.embedded_redis:  # started once, here, before any child looks for it
                redis = await stack.enter_async_context(open_redis(settings))
            host = _Host(settings, count, child_deadline, table, lifeline, redis, stop)
            print(f"warncast: serving on http://{settings.host}:{settings.port} with {count} processes", flush=True)
            return await host.run()
    except asyncio.CancelledError:
        if host is not None or not stop.is_set():
            raise
        log.info("stopped before the processes started")
        return 0
    finally:
        os.close(lifeline_end)
        os.close(lifeline)
        table.close()
