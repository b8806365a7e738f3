"""Limits on public reads: a token bucket per client address, and a cap on the live screen streams
one address may hold open. Kept in this process's memory, or with `warncast serve --processes N` in
memory shared by the host's processes (`shared_limits`): the same classes' interface either way.

Why not in Redis, when intake's limits live there (citizen_report/limits.py): public reads are
cached and cheap, so a Redis round trip per request would cost more than the read itself, and what a
flood of reads exhausts is this host (its processes' event loops, their sockets), so the limit
protects the host. Behind a load balancer a client gets the allowance once per host (once per
process for processes started on their own), which is enough for that. Intake keeps its shared
Redis limits: every report is a write and its limit must hold across all processes.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from ipaddress import ip_network
from typing import Protocol

from aiohttp import web

from foundation.clock import Clock
from foundation.errors import TooManyRequests
from foundation.i18n import N_
from foundation.settings import Settings
from warncast.web.requests import AUTH_KIND, client_ip

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
READS = frozenset({"GET", "HEAD"})
# Not limited: probes and scrapers of the operator, static files (versioned, cached by browsers) and
# provider webhooks (POSTs with signature checks; listed in case one ever reads).
EXEMPT = ("/healthz", "/readyz", "/metrics", "/static/", "/favicon.ico", "/webhooks/")  # the icon: static too
STREAM_RETRY_SECONDS = 60  # a refused kiosk polls the JSON meanwhile (static/screens.js)


class Buckets(Protocol):
    """What the middlewares ask of a table of token buckets (`TokenBuckets`, or shared_limits')."""

    def wait(self, ip: str) -> int: ...

    def take(self, ip: str) -> int: ...

    def __len__(self) -> int: ...


class StreamLimit(Protocol):
    """What the live screen streams ask of their cap (`StreamCap`, or shared_limits')."""

    def count(self, ip: str) -> int: ...

    def open(self, ip: str, request: web.Request) -> None: ...

    def close(self, ip: str, request: web.Request) -> None: ...


class TokenBuckets:
    """A bucket per client address holding up to `burst` tokens, refilled at `rate` per second; a
    request spends one. At most `max_clients` addresses are remembered, the least recently seen
    forgotten first, so memory stays bounded (about 13 MB for 50,000) whatever a flood comes from."""

    def __init__(self, rate: float, burst: int, max_clients: int, now: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.max_clients, self.now = rate, float(burst), max_clients, now
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)

    def __len__(self) -> int:
        return len(self._buckets)

    def wait(self, ip: str) -> int:
        """Whole seconds until `ip`'s bucket has a token (0: it has one); spends nothing."""
        found = self._buckets.get(bucket_key(ip))
        if found is None:
            return 0
        tokens = min(self.burst, found[0] + max(0.0, self.now() - found[1]) * self.rate)
        return 0 if tokens >= 1 else max(1, math.ceil((1 - tokens) / self.rate))

    def take(self, ip: str) -> int:
        """Spend a token of `ip`'s bucket: 0 if it had one, else the whole seconds until it has."""
        key = bucket_key(ip)
        now = self.now()
        found = self._buckets.get(key)
        if found is None:
            tokens = self.burst
            if len(self._buckets) >= self.max_clients:
                self._buckets.popitem(last=False)
        else:
            tokens = min(self.burst, found[0] + max(0.0, now - found[1]) * self.rate)
            self._buckets.move_to_end(key)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0
        self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1 - tokens) / self.rate))


class StreamCap:
    """Live streams open at once per client address, at most `per_ip`."""

    def __init__(self, per_ip: int) -> None:
        self.per_ip = per_ip
        self._open: dict[str, list[web.Request]] = {}

    def count(self, ip: str) -> int:
        return len(self._open.get(bucket_key(ip), ()))

    def open(self, ip: str, request: web.Request) -> None:
        held = self._open.setdefault(bucket_key(ip), [])
        if len(held) >= self.per_ip:
            # A screen that went away is noticed by its handler only at the next write (a ping, up
            # to 20 s later); its lost connection must not keep a reconnecting screen out.
            held[:] = [r for r in held if r.transport is not None]
            if len(held) >= self.per_ip:
                raise too_many_streams(self.per_ip)
        held.append(request)

    def close(self, ip: str, request: web.Request) -> None:
        forget_stream(self._open, bucket_key(ip), request)


def forget_stream(held_by: dict[str, list[web.Request]], key: str, request: web.Request) -> int:
    """Drop a stream that ended from its address's open streams; how many of them stay open."""
    held = [r for r in held_by.get(key, ()) if r is not request]
    if held:
        held_by[key] = held
    else:
        held_by.pop(key, None)
    return len(held)


def bucket_key(ip: str) -> str:
    """IPv6 clients are counted per /64, the block one subscriber gets, so walking through one's own
    addresses does not dodge the limit."""
    if ":" not in ip:
        return ip
    try:
        return str(ip_network(f"{ip}/64", strict=False))
    except ValueError:
        return ip


PUBLIC_LIMITS: web.AppKey[Buckets] = web.AppKey("public_limits")
# Wrong API tokens per address: a few typos pass, guessing does not (a valid token always does).
AUTH_FAILURES: web.AppKey[Buckets] = web.AppKey("auth_failures")
AUTH_FAILURE_RATE, AUTH_FAILURE_BURST = 0.2, 10  # the burst: WARNCAST_AUTH_FAILURE_BURST (this default)
LIVE_STREAMS: web.AppKey[StreamLimit] = web.AppKey("live_streams")


def install_limits(app: web.Application, settings: Settings, clock: Clock | None) -> None:
    """The limits of this process; an injected clock (tests) also drives the buckets' refill. A child
    of `warncast serve --processes N` then swaps in the host's (`shared_limits.install_shared_limits`)."""
    now = (lambda: clock().timestamp()) if clock is not None else time.monotonic
    app[PUBLIC_LIMITS] = TokenBuckets(settings.public_rate, settings.public_burst, settings.public_max_ips, now)
    app[LIVE_STREAMS] = StreamCap(settings.sse_per_ip)
    app[AUTH_FAILURES] = TokenBuckets(AUTH_FAILURE_RATE, settings.auth_failure_burst, settings.public_max_ips, now)


def too_many_streams(limit: int) -> TooManyRequests:
    return TooManyRequests(
        N_("Too many live connections from your address (at most %(limit)s)."),
        limit=limit,
        retry_after=STREAM_RETRY_SECONDS,
    )


def too_many_requests(wait: int) -> TooManyRequests:
    return TooManyRequests(
        N_("Too many requests from your address. Wait %(seconds)s s and try again."),
        seconds=wait,
        retry_after=wait,
    )


def live_streams(request: web.Request) -> StreamLimit:
    return request.app[LIVE_STREAMS]


@web.middleware
async def public_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every anonymous read spends from its address's bucket unless exempt, so a new public route is
    covered without anyone remembering to. Staff (a valid token or session) are not limited; writes
    are not (intake has its own limits, the console needs a login, webhooks check signatures)."""
    if request.method in READS and AUTH_KIND not in request and not request.path.startswith(EXEMPT):
        if wait := request.app[PUBLIC_LIMITS].take(client_ip(request)):
            raise too_many_requests(wait)
    return await handler(request)
