"""The Redis modes behind `open_redis`: the client for each, and what a start refuses.

- embedded and standalone: a client from a URL (the embedded server's unix socket, or REDIS_URL);
- sentinel: redis-py's Sentinel client for the primary of one service, which asks the Sentinels
  again whenever it connects, so it follows a failover by itself;
- cluster: detected (`INFO cluster`) or forced (`WARNCAST_REDIS_MODE=cluster`), and refused until
  every feature has been checked on it.

Every client has the same timeouts (WARNCAST_REDIS_TIMEOUT for a reply, beyond what a blocking
command itself asks to wait) and reconnects once, at once, when a pooled connection turns out
broken; a timeout is never retried, so a hung Redis costs a request at most one timeout.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from foundation.settings import Settings, SettingsError
from foundation.store import keys

_MAX_CONNECTIONS = 1024  # enough for a worker's concurrent sends; redis-py's default pool caps far lower
_FINGERPRINT_MESSAGE = b"warncast: the secret key of one deployment"

# Commands that may wait on the server, and where their wait is: (argument after which, unit).
_BLOCKING = {"XREAD": ("BLOCK", 1000), "XREADGROUP": ("BLOCK", 1000)}
_BLOCKING_LAST = {"WAIT": 1000, "BLPOP": 1, "BRPOP": 1, "BZPOPMIN": 1, "BZPOPMAX": 1, "BRPOPLPUSH": 1, "BLMOVE": 1}


def blocking_seconds(args: tuple[Any, ...]) -> float | None:
    """How long the command `args` may block on the server: 0 for most, None for ever."""
    name = _word(args[0]) if args else ""
    wait: Any = None  # the argument that says how long
    unit = 1
    if name in _BLOCKING:
        word, unit = _BLOCKING[name]
        for position, arg in enumerate(args[1:-1], start=1):
            if (found := _word(arg)) == "STREAMS":  # keys and ids follow, and a key may be called BLOCK
                break
            if found == word:
                wait = args[position + 1]
                break
    elif name in _BLOCKING_LAST and len(args) > 1:
        wait, unit = args[-1], _BLOCKING_LAST[name]
    if wait is None:
        return 0.0
    try:
        seconds = float(wait) / unit
    except ValueError:  # not a number: the server will say what is wrong
        return 0.0
    return None if seconds == 0 else seconds


def _word(arg: object) -> str:
    return (arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)).upper()


class _PatientReads:
    """Mixed into a connection class: a blocking command's reply may take its own wait plus the socket
    timeout (an XREADGROUP BLOCK 5000 on a 2 s timeout would otherwise always time out). The socket
    timeout itself is stretched for that one read, so a timeout still raises and disconnects (a
    `timeout` argument would make redis-py return None and leave the late reply on the socket)."""

    socket_timeout: float | None
    _blocks: float | None = 0.0

    async def send_command(self, *args: Any, **kwargs: Any) -> None:
        self._blocks = blocking_seconds(args)
        await super().send_command(*args, **kwargs)  # type: ignore[misc]

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        blocks, self._blocks = self._blocks, 0.0
        socket_timeout = self.socket_timeout
        if blocks == 0 or socket_timeout is None:
            return await super().read_response(*args, **kwargs)  # type: ignore[misc]
        self.socket_timeout = None if blocks is None else socket_timeout + blocks
        try:
            return await super().read_response(*args, **kwargs)  # type: ignore[misc]
        finally:
            self.socket_timeout = socket_timeout


_patient: dict[type, type] = {}


def _patient_reads(pool: aioredis.ConnectionPool) -> None:
    """Swap the pool's connection class for one with patient reads (before it makes a connection)."""
    base = pool.connection_class
    if base not in _patient:
        _patient[base] = type(f"Patient{base.__name__}", (_PatientReads, base), {})
    pool.connection_class = _patient[base]


def _client_options(settings: Settings) -> dict[str, Any]:
    return {
        "decode_responses": True,
        "socket_timeout": settings.redis_timeout,
        "socket_connect_timeout": settings.redis_timeout,
        "health_check_interval": 30,
        "max_connections": _MAX_CONNECTIONS,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }


@dataclass
class Target:
    """A client of the primary, what to call it in logs, and what else closes with it."""

    client: aioredis.Redis
    where: str
    sentinel: Sentinel | None = None

    async def aclose(self) -> None:
        await self.client.aclose()
        if self.sentinel is not None:
            await self.sentinel.aclose()


def connect(settings: Settings, url: str) -> Target:
    """A client for `url`, or for the Sentinel service when Sentinels are configured (`url` unused)."""
    options = _client_options(settings)
    if settings.redis_sentinels:
        sentinel = Sentinel(
            list(settings.redis_sentinels),
            sentinel_kwargs={
                "socket_timeout": settings.redis_timeout,
                "socket_connect_timeout": settings.redis_timeout,
            },
        )
        client = sentinel.master_for(settings.redis_sentinel_master, **options)
        addresses = ",".join(f"{host}:{port}" for host, port in settings.redis_sentinels)
        target = Target(client, f"the primary of {settings.redis_sentinel_master!r} (Sentinels {addresses})", sentinel)
    else:
        target = Target(aioredis.from_url(url, **options), _without_password(url))
    _patient_reads(target.client.connection_pool)
    return target


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


CLUSTER_REFUSED = (
    "Redis Cluster is not supported yet ({why}): use a standalone Redis (REDIS_URL) or Sentinel "
    "(WARNCAST_REDIS_SENTINELS and WARNCAST_REDIS_SENTINEL_MASTER)"
)


def refuse_forced_cluster(settings: Settings) -> None:
    if settings.redis_mode == "cluster":
        raise SettingsError(CLUSTER_REFUSED.format(why="WARNCAST_REDIS_MODE=cluster"))


async def refuse_cluster(target: Target, settings: Settings) -> None:
    """WARNCAST_REDIS_MODE=auto asks the server; standalone trusts the operator."""
    if settings.redis_mode == "auto" and int((await target.client.info("cluster")).get("cluster_enabled", 0)) == 1:
        why = f"{target.where} is a cluster node, found by WARNCAST_REDIS_MODE=auto"
        raise SettingsError(CLUSTER_REFUSED.format(why=why))


def secret_fingerprint(secret_key: str) -> str:
    """Names the key without revealing it: an HMAC of a constant, keyed with it."""
    return hmac.new(secret_key.encode(), _FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()


async def check_secret(target: Target, settings: Settings) -> None:
    """Every process of a deployment signs with one key: the first start records its fingerprint,
    and a process with another key refuses to start."""
    mine = secret_fingerprint(settings.secret_key)
    if await target.client.set(keys.SECRET_FINGERPRINT, mine, nx=True):
        return
    if await target.client.get(keys.SECRET_FINGERPRINT) not in (mine, None):  # None: deleted just now
        raise SettingsError(
            f"WARNCAST_SECRET_KEY differs from the key this deployment's Redis ({target.where}) was first "
            "used with: every process of one deployment needs the same WARNCAST_SECRET_KEY. (To change "
            f"the key on purpose, delete the key {keys.SECRET_FINGERPRINT} in Redis; audit entries signed "
            "with the old key then no longer verify.)"
        )
