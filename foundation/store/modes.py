"""The Redis modes behind `open_redis`: the client for each, and what a start refuses.

- embedded and standalone: a client from a URL (the embedded server's unix socket, or REDIS_URL);
- sentinel: redis-py's Sentinel client for the primary of one service, which asks the Sentinels
  again whenever it connects, so it follows a failover by itself;
- cluster: detected (`INFO cluster` on the node REDIS_URL names) or forced
  (`WARNCAST_REDIS_MODE=cluster`): redis-py's asyncio cluster client, which finds the other nodes,
  routes each command to the node of its key's slot and follows MOVED and ASK. The places where a
  cluster differs (raw pipelines, scripts run in bulk, durable acknowledgements, scans) go through
  `foundation.store.cluster`.

Every client has the same timeouts (WARNCAST_REDIS_TIMEOUT for a reply, beyond what a blocking
command itself asks to wait) and reconnects once, at once, when a pooled connection turns out
broken; a timeout is never retried, so a hung Redis costs a request at most one timeout.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import SlotNotCoveredError
from redis.exceptions import TimeoutError as RedisTimeoutError

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


# A server that did not answer in time is not waited for again at once: for HUNG_SECONDS every command
# to it fails at once (as a timeout), so one request, whose calls may all go to that server, costs
# one timeout and not one per call; the first command after that waits (and finds out) again.
HUNG_SECONDS = 1.0
_hung_until: dict[tuple[Any, ...], float] = {}


def _address(connection: object) -> tuple[Any, ...]:
    return tuple(getattr(connection, name, None) for name in ("host", "port", "path"))


def note_hung(connection: object) -> None:
    _hung_until[_address(connection)] = time.monotonic() + HUNG_SECONDS


def refuse_if_hung(connection: object) -> None:
    """Raise a timeout at once when this connection's server did not answer a moment ago."""
    address = _address(connection)
    until = _hung_until.get(address)
    if until is None:
        return
    if time.monotonic() < until:
        raise RedisTimeoutError(f"Redis at {address[2] or f'{address[0]}:{address[1]}'} did not answer a moment ago")
    _hung_until.pop(address, None)


class _PatientReads:
    """Mixed into a connection class: a blocking command's reply may take its own wait plus the socket
    timeout (an XREADGROUP BLOCK 5000 on a 2 s timeout would otherwise always time out). The socket
    timeout itself is stretched for that one read, so a timeout still raises and disconnects (a
    `timeout` argument would make redis-py return None and leave the late reply on the socket)."""

    socket_timeout: float | None
    _packed: float | None = 0.0  # how long the command packed last may block
    _blocks: float | None = 0.0  # how long the command whose reply comes next may block

    def pack_command(self, *args: Any) -> Any:
        # Every command is packed before it is sent (`send_command` on one server, a cluster node's
        # `execute_command`): the one place to see what its reply may wait for.
        refuse_if_hung(self)
        self._packed = blocking_seconds(args)
        return super().pack_command(*args)  # type: ignore[misc]

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        # A health check may PING (pack, send and read its own reply) before this command goes out:
        # the wait is taken first, and stands for this command's reply once it is sent.
        blocks, self._packed = self._packed, 0.0
        await super().send_packed_command(command, check_health)  # type: ignore[misc]
        self._blocks = blocks

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        blocks, self._blocks = self._blocks, 0.0
        socket_timeout = self.socket_timeout
        if blocks != 0 and socket_timeout is not None:
            self.socket_timeout = None if blocks is None else socket_timeout + blocks
        try:
            return await super().read_response(*args, **kwargs)  # type: ignore[misc]
        except RedisTimeoutError:
            note_hung(self)
            raise
        finally:
            self.socket_timeout = socket_timeout


_patient: dict[type, type] = {}


def _patient_class(base: type) -> type:
    if base not in _patient:
        _patient[base] = type(f"Patient{base.__name__}", (_PatientReads, base), {})
    return _patient[base]


def _patient_reads(pool: aioredis.ConnectionPool) -> None:
    """Swap the pool's connection class for one with patient reads (before it makes a connection)."""
    pool.connection_class = _patient_class(pool.connection_class)


def _patient_cluster_reads(client: RedisCluster) -> None:
    """The same for every node of a cluster: the nodes it knows now and those it finds later (redis-py
    makes each node's connections from the client's shared connection kwargs)."""
    patient = _patient_class(Connection)
    client.nodes_manager.connection_kwargs["connection_class"] = patient
    for node in client.nodes_manager.startup_nodes.values():
        node.connection_class = patient


class _ReconnectOnce(Retry):
    """Retry once, at once, what a broken pooled connection fails: never a hung server. redis-py
    reports a handshake that timed out as a ConnectionError caused by a TimeoutError, and retrying
    that would make a hung Redis cost two timeouts instead of one. Not retried, the connection is
    still dropped (`fail`), as for every failure: the late reply to what timed out may yet arrive on
    it, and would be read as the answer to the next command."""

    async def call_with_retry(
        self, do: Any, fail: Any, is_retryable: Any = None, with_failure_count: bool = False
    ) -> Any:
        def retryable(error: Exception) -> bool:
            return not _timed_out(error) and (is_retryable is None or is_retryable(error))

        try:
            return await super().call_with_retry(do, fail, retryable, with_failure_count)
        except RedisConnectionError as error:
            if _timed_out(error):  # raised before redis-py's own `fail`: drop the connection here
                await (fail(error, 1) if with_failure_count else fail(error))
            raise


def _timed_out(error: BaseException) -> bool:
    timeouts = (RedisTimeoutError, TimeoutError)
    return isinstance(error, timeouts) or isinstance(error.__cause__, timeouts)


def _client_options(settings: Settings) -> dict[str, Any]:
    return {
        "decode_responses": True,
        "socket_timeout": settings.redis_timeout,
        "socket_connect_timeout": settings.redis_timeout,
        "health_check_interval": 30,
        "max_connections": _MAX_CONNECTIONS,
        "retry": _ReconnectOnce(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
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


def connect(settings: Settings, url: str, *, cluster: bool = False) -> Target:
    """A client for `url` (a cluster client when `cluster`), or for the Sentinel service when
    Sentinels are configured (`url` unused)."""
    options = _client_options(settings)
    if cluster:
        return Target(_cluster_client(url, options), f"the Redis Cluster of {_without_password(url)}")
    if settings.redis_sentinels:
        tls: dict[str, Any] = {"ssl": True} if settings.redis_tls else {}
        sentinel = Sentinel(
            list(settings.redis_sentinels),
            sentinel_kwargs={
                "socket_timeout": settings.redis_timeout,
                "socket_connect_timeout": settings.redis_timeout,
                "password": settings.redis_sentinel_password or None,
                **tls,
            },
        )
        options |= tls | {"username": settings.redis_username or None, "password": settings.redis_password or None}
        client = sentinel.master_for(settings.redis_sentinel_master, **options)
        addresses = ",".join(f"{host}:{port}" for host, port in settings.redis_sentinels)
        target = Target(client, f"the primary of {settings.redis_sentinel_master!r} (Sentinels {addresses})", sentinel)
    else:
        target = Target(aioredis.from_url(url, **options), _without_password(url))
    _patient_reads(target.client.connection_pool)
    return target


class _Cluster(RedisCluster):
    """redis-py's cluster client, retrying (after asking the cluster where the slots are now) only a
    node that refused the connection or a slot it lost: what a finished failover looks like. A node
    that timed out is not asked again (a hung node costs a request one timeout, not three), and
    CLUSTERDOWN is answered at once: the caller answers 503 and the client retries."""

    ERRORS_ALLOW_RETRY = (RedisConnectionError, SlotNotCoveredError)  # type: ignore[assignment]  # fewer on purpose

    _hung: str | None = None  # the node that last timed out: asked last when learning the cluster again

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except AttributeError as exc:
            raise closed_under_us(exc) from exc
        except RedisTimeoutError as exc:
            self._hung = getattr(exc, "last_failed_node_name", None)
            raise

    async def initialize(self, *args: Any, **kwargs: Any) -> RedisCluster:
        """After a failure the client learns the cluster again, asking its nodes in a random order: a
        hung one would cost that request a second timeout, so the last node that timed out is asked
        last (harmless once it answers again)."""
        if self._hung is not None and kwargs.get("last_failed_node_name") is None and not args:
            kwargs["last_failed_node_name"] = self._hung
        return await super().initialize(*args, **kwargs)


def closed_under_us(exc: AttributeError) -> RedisConnectionError:
    """redis-py 8.1: after a node fails, the cluster client disconnects its idle connections while
    another task may already have taken one, whose socket then vanishes mid-write (`None` has no
    `writelines`). To us that is what it is: a connection lost to a failing node."""
    return RedisConnectionError(f"connection closed while in use ({exc})")


def _cluster_client(url: str, options: dict[str, Any]) -> aioredis.Redis:
    options = {key: value for key, value in options.items() if key != "retry"}
    options["retry"] = Retry(ExponentialBackoff(cap=0.2, base=0.1), 2)
    client = _Cluster.from_url(url, require_full_coverage=True, **options)
    _patient_cluster_reads(client)
    # The command methods are those of a Redis client (redis-py shares them); what differs between the
    # two is handled in foundation.store.cluster, so the rest of the service is typed against one.
    return cast(aioredis.Redis, client)


async def is_cluster_node(target: Target) -> bool:
    return int((await target.client.info("cluster")).get("cluster_enabled", 0)) == 1


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


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
