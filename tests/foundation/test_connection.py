"""One connection layer for every Redis mode, on real redis-server processes (the bundled binary):
Sentinel failover, durable acknowledgements, one secret key per deployment,
starting before Redis, blocking reads past the socket timeout, and the embedded server's fsync."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis as sync_redis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from foundation.errors import Unavailable
from foundation.settings import Settings, SettingsError
from foundation.store import keys
from foundation.store.batched_script import BatchedScript
from foundation.store.connection import open_redis, redis_server_binary
from foundation.store.durable import durable, required_replicas
from foundation.store.modes import HUNG_SECONDS, blocking_seconds, connect, secret_fingerprint
from tests.redis_cluster import free_port

MASTER = "warncast-test"
COUNT = "return redis.call('INCR', KEYS[1])"
NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self) -> sync_redis.Redis:
        return sync_redis.Redis(port=self.port, decode_responses=True, socket_timeout=2)


class Servers:
    """redis-servers (and Sentinels) this test started; the fixture stops them, by PID."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str, port: int | None = None, config: Path | None = None) -> Server:
        port = port or free_port()
        directory = self.directory / name
        directory.mkdir(parents=True, exist_ok=True)
        argv = [str(redis_server_binary()), *([str(config)] if config else [])]
        argv += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), *args]
        with open(directory / "log", "ab") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=directory)
        self.started.append(process)
        server = Server(process, port)
        wait_answers(server)
        return server

    def sentinel(self, name: str, primary: Server, quorum: int = 2, extra: str = "") -> Server:
        directory = self.directory / name
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "sentinel.conf"
        config.write_text(
            f"sentinel monitor {MASTER} 127.0.0.1 {primary.port} {quorum}\n"
            f"sentinel down-after-milliseconds {MASTER} 500\n"
            f"sentinel failover-timeout {MASTER} 3000\n"
            f"sentinel parallel-syncs {MASTER} 1\n" + extra
        )
        return self.start(name, "--sentinel", config=config)

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a SIGSTOPped one would not see SIGTERM
                process.terminate()
        for process in self.started:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_answers(server: Server, within: float = 10.0) -> None:
    client = server.client()
    deadline = time.monotonic() + within
    try:
        while True:
            try:
                client.ping()
                return
            except sync_redis.AuthenticationError:
                return  # it answers: with a password wanted
            except (sync_redis.ConnectionError, sync_redis.TimeoutError):
                assert server.process.poll() is None, f"redis-server on {server.port} exited"
                assert time.monotonic() < deadline, f"redis-server on {server.port} did not start"
                time.sleep(0.02)
    finally:
        client.close()


def wait_until(check: Callable[[], bool], within: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def replicated(primary: Server, replica_count: int = 1) -> bool:
    client = primary.client()
    try:
        info = client.info("replication")
        return int(info.get("connected_slaves", 0)) >= replica_count and all(
            info[f"slave{i}"]["state"] == "online" for i in range(replica_count)
        )
    finally:
        client.close()


@pytest.fixture
def primary_and_replica(servers: Servers) -> tuple[Server, Server]:
    primary = servers.start("primary", *NO_PERSISTENCE)
    replica = servers.start("replica", *NO_PERSISTENCE, "--replicaof", "127.0.0.1", str(primary.port))
    wait_until(lambda: replicated(primary), what="the replica to sync")
    return primary, replica


def external(url: str | None = None, tmp_path: Path = Path("var"), **changes: object) -> Settings:
    return Settings(redis_url=url, data_dir=tmp_path, secret_key="test-secret", log_json=False).with_(**changes)


# --- Sentinel -------------------------------------------------------------------------------------


async def test_sentinel_client_follows_a_failover_without_restart(
    servers: Servers, primary_and_replica: tuple[Server, Server], tmp_path: Path
) -> None:
    primary, replica = primary_and_replica
    sentinels = [servers.sentinel(f"sentinel{i}", primary) for i in range(3)]

    def sentinels_see_everyone() -> bool:
        for sentinel in sentinels:
            client = sentinel.client()
            try:
                state = client.sentinel_master(MASTER)
            finally:
                client.close()
            if state["num-other-sentinels"] < 2 or state["num-slaves"] < 1:
                return False
        return True

    wait_until(sentinels_see_everyone, what="the sentinels to find each other and the replica")
    settings = external(
        tmp_path=tmp_path,
        redis_sentinels=tuple(("127.0.0.1", s.port) for s in sentinels),
        redis_sentinel_master=MASTER,
    )
    async with open_redis(settings) as redis:
        assert int((await redis.info("server"))["tcp_port"]) == primary.port
        min_replicas = await required_replicas(redis, settings)
        assert min_replicas == 1, "the primary has a replica: durable writes wait for it"
        await redis.set("before", "acknowledged")
        await durable(redis, min_replicas, near="before")

        primary.process.send_signal(signal.SIGKILL)
        primary.process.wait()
        killed = time.monotonic()
        while True:
            try:
                await redis.set("after", "written")
                port = int((await redis.info("server"))["tcp_port"])
                break
            except (RedisConnectionError, RedisTimeoutError, ReadOnlyError):
                assert time.monotonic() - killed < 20, "no new primary within 20 s"
                await asyncio.sleep(0.1)
        took = time.monotonic() - killed
        logging.getLogger(__name__).warning("failover: writes work again %.1f s after SIGKILL", took)
        assert port == replica.port, "the same client now writes to the promoted replica"
        assert await redis.get("before") == "acknowledged", "a durable write survives the failover"
        assert await redis.get("after") == "written"


# --- durable acknowledgements ------------------------------------------------------------------------


async def test_durable_waits_for_the_replica_and_refuses_without_it(
    primary_and_replica: tuple[Server, Server], tmp_path: Path
) -> None:
    primary, replica = primary_and_replica
    settings = external(primary.url, tmp_path)
    async with open_redis(settings) as redis:
        min_replicas = await required_replicas(redis, settings)
        assert min_replicas == 1
        await redis.set("report", "1")
        await durable(redis, min_replicas, near="report")

        replica.process.send_signal(signal.SIGSTOP)
        try:
            other = primary.client()  # a write on another connection (WAIT alone would not count it)
            other.set("report", "2")
            other.close()
            started = time.monotonic()
            with pytest.raises(Unavailable) as refused:
                await durable(redis, min_replicas, near="report")
            assert refused.value.status == 503 and refused.value.retry_after > 0
            assert time.monotonic() - started < 1.9, "at most the WAIT timeout, within the socket timeout"
            await durable(redis, 0, near="report")  # nothing to wait for
        finally:
            replica.process.send_signal(signal.SIGCONT)
        await durable(redis, min_replicas, near="report")  # the replica catches up
        replica_client = replica.client()
        try:
            assert replica_client.get("report") == "2"
        finally:
            replica_client.close()


async def test_a_batch_of_calls_waits_for_the_replica_once(
    primary_and_replica: tuple[Server, Server], tmp_path: Path
) -> None:
    primary, replica = primary_and_replica
    async with open_redis(external(primary.url, tmp_path)) as redis:
        script = BatchedScript(redis, COUNT, replicas=1, near="t:{batch}")
        waits_before = await _waits(redis)
        replies = await asyncio.gather(*(script(["t:{batch}:n"], []) for _ in range(40)))
        assert sorted(replies) == list(range(1, 41))
        waits = await _waits(redis) - waits_before
        assert waits == script.round_trips < 40, "one WAIT per batch, not one per call"
        replica_client = replica.client()
        try:
            assert replica_client.get("t:{batch}:n") == "40", "answered only once the replica had it"
        finally:
            replica_client.close()

        replica.process.send_signal(signal.SIGSTOP)
        try:
            outcomes = await asyncio.gather(*(script(["t:{batch}:n"], []) for _ in range(5)), return_exceptions=True)
            assert all(isinstance(o, Unavailable) for o in outcomes), outcomes
        finally:
            replica.process.send_signal(signal.SIGCONT)
        assert await script(["t:{batch}:n"], []) == 46, "the refused calls ran (a retry replays them)"
    with pytest.raises(ValueError, match="near"):
        BatchedScript(redis, COUNT, replicas=1)


async def _waits(redis: aioredis.Redis) -> int:
    return int((await redis.info("commandstats")).get("cmdstat_wait", {}).get("calls", 0))


async def test_how_many_replicas_a_durable_write_waits_for(servers: Servers, tmp_path: Path) -> None:
    alone = servers.start("alone", *NO_PERSISTENCE)
    settings = external(alone.url, tmp_path)
    async with open_redis(settings) as redis:
        assert await required_replicas(redis, settings) == 0, "no replica: the primary's own persistence"
        assert await required_replicas(redis, settings.with_(redis_min_replicas=2)) == 2, "as configured"
    embedded = external(None, tmp_path)
    async with open_redis(embedded) as redis:
        assert await required_replicas(redis, embedded) == 0


# --- refused at start ----------------------------------------------------------------------------------


async def test_another_secret_key_is_refused(redis_socket: str, tmp_path: Path) -> None:
    settings = external(redis_socket, tmp_path)
    async with open_redis(settings) as redis:
        stored = await redis.get(keys.SECRET_FINGERPRINT)
        assert stored == secret_fingerprint("test-secret") and "test-secret" not in stored
    async with open_redis(settings):
        pass  # the same key again: fine
    with pytest.raises(SettingsError, match="WARNCAST_SECRET_KEY differs"):
        async with open_redis(settings.with_(secret_key="another-secret")):
            pass


# --- waiting for Redis, timeouts ------------------------------------------------------------------------


async def test_open_redis_waits_for_a_redis_that_starts_later(
    servers: Servers, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()

    async def connect() -> str:
        async with open_redis(external(f"redis://127.0.0.1:{port}", tmp_path)) as redis:
            return str(await redis.ping())

    caplog.set_level(logging.WARNING, "foundation.store.connection")
    waiting = asyncio.create_task(connect())
    await asyncio.sleep(0.8)
    assert not waiting.done(), "still waiting, not failed"
    servers.start("late", *NO_PERSISTENCE, port=port)
    assert await asyncio.wait_for(waiting, 10) == "True"
    assert any("does not answer" in r.getMessage() and "trying again in" in r.getMessage() for r in caplog.records)


async def test_waiting_for_redis_stops_at_once_when_cancelled(tmp_path: Path) -> None:
    async def connect() -> None:
        async with open_redis(external(f"redis://127.0.0.1:{free_port()}", tmp_path)):
            pass

    waiting = asyncio.create_task(connect())
    await asyncio.sleep(0.5)
    cancelled = time.monotonic()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert time.monotonic() - cancelled < 0.2


async def test_a_hung_redis_costs_one_timeout_and_blocking_reads_wait_their_own_time(
    servers: Servers, tmp_path: Path
) -> None:
    server = servers.start("hung", *NO_PERSISTENCE)
    async with open_redis(external(server.url, tmp_path, redis_timeout=0.4)) as redis:
        started = time.monotonic()
        assert await redis.xread({"nothing": "$"}, block=700) == []  # longer than the socket timeout
        assert 0.65 < time.monotonic() - started < 1.5
        server.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(RedisTimeoutError):
                await redis.get("anything")
            assert time.monotonic() - started < 0.8, "one socket timeout, not retried"
        finally:
            server.process.send_signal(signal.SIGCONT)


def test_blocking_seconds() -> None:
    assert blocking_seconds(("XREADGROUP", "GROUP", "g", "c", "COUNT", 4, "BLOCK", 1000, "STREAMS", "s", ">")) == 1.0
    assert blocking_seconds(("XREAD", "BLOCK", 0, "STREAMS", "s", "$")) is None
    assert blocking_seconds(("XREAD", "STREAMS", "s", "$")) == 0
    assert blocking_seconds(("WAIT", 1, 500)) == 0.5
    assert blocking_seconds(("GET", "block")) == 0
    assert blocking_seconds(("XREAD", b"COUNT", 5, b"BLOCK", b"250", b"STREAMS", "s", "$")) == 0.25
    assert blocking_seconds(("XREAD", "STREAMS", "BLOCK", "$")) == 0, "a stream called BLOCK"


# --- embedded --------------------------------------------------------------------------------------------


async def test_embedded_redis_fsyncs_before_answering(tmp_path: Path) -> None:
    async with open_redis(external(None, tmp_path)) as redis:
        assert await redis.config_get("appendfsync") == {"appendfsync": "always"}
        assert await redis.config_get("appendonly") == {"appendonly": "yes"}
        # A second process on the same data dir shares the server and applies its setting.
        async with open_redis(external(None, tmp_path, redis_fsync="everysec")) as shared:
            assert await shared.config_get("appendfsync") == {"appendfsync": "everysec"}


# --- settings ----------------------------------------------------------------------------------------------


def test_redis_settings_from_the_environment(tmp_path: Path) -> None:
    base = {"WARNCAST_DATA_DIR": str(tmp_path), "WARNCAST_SECRET_KEY": "k"}
    default = Settings.from_env(base)
    assert (default.redis_mode, default.redis_fsync, default.redis_timeout) == ("auto", "always", 2.0)
    assert default.embedded_redis and default.redis_min_replicas is None
    sentinel = Settings.from_env(
        {
            **base,
            "WARNCAST_REDIS_SENTINELS": "10.0.0.5:26379, [::1]:26380",
            "WARNCAST_REDIS_SENTINEL_MASTER": "warncast",
            "WARNCAST_REDIS_MIN_REPLICAS": "2",
            "WARNCAST_REDIS_TIMEOUT": "5",
        }
    )
    assert sentinel.redis_sentinels == (("10.0.0.5", 26379), ("::1", 26380)) and not sentinel.embedded_redis
    assert (sentinel.redis_min_replicas, sentinel.redis_timeout) == (2, 5.0)
    for env, named in [
        ({"WARNCAST_REDIS_MODE": "sharded"}, "WARNCAST_REDIS_MODE"),
        ({"WARNCAST_REDIS_FSYNC": "never"}, "WARNCAST_REDIS_FSYNC"),
        ({"WARNCAST_REDIS_TIMEOUT": "0.1"}, "WARNCAST_REDIS_TIMEOUT"),
        ({"WARNCAST_REDIS_MIN_REPLICAS": "x", "REDIS_URL": "redis://r"}, "WARNCAST_REDIS_MIN_REPLICAS"),
        ({"WARNCAST_REDIS_MIN_REPLICAS": "1"}, "WARNCAST_REDIS_MIN_REPLICAS"),  # the embedded has none
        ({"WARNCAST_REDIS_SENTINELS": "10.0.0.5"}, "WARNCAST_REDIS_SENTINELS"),
        ({"WARNCAST_REDIS_SENTINELS": "10.0.0.5:26379"}, "WARNCAST_REDIS_SENTINEL_MASTER"),
        ({"REDIS_URL": "http://r"}, "REDIS_URL"),
    ]:
        with pytest.raises(SettingsError, match=named):
            Settings.from_env({**base, **env})


async def test_sentinel_mode_with_passwords(servers: Servers, tmp_path: Path) -> None:
    """Sentinels and the primary each with their own password (WARNCAST_REDIS_SENTINEL_PASSWORD,
    WARNCAST_REDIS_PASSWORD); a wrong one is a clear configuration error, not an endless wait."""
    primary = servers.start("primary", *NO_PERSISTENCE)
    primary_client = primary.client()
    primary_client.config_set("requirepass", "primary-pw")
    primary_client.close()
    guarded = f"sentinel auth-pass {MASTER} primary-pw\nrequirepass sentinel-pw\n"
    sentinel = servers.sentinel("sentinel", primary, quorum=1, extra=guarded)
    settings = external(
        tmp_path=tmp_path,
        redis_sentinels=(("127.0.0.1", sentinel.port),),
        redis_sentinel_master=MASTER,
        redis_password="primary-pw",
        redis_sentinel_password="sentinel-pw",
    )
    async with open_redis(settings) as redis:
        await redis.set("guarded", "yes")
        assert await redis.get("guarded") == "yes"
    with pytest.raises(SettingsError, match="refused the credentials"):
        async with open_redis(settings.with_(redis_password="wrong")):
            pass


async def test_a_handshake_that_timed_out_drops_its_connection(tmp_path: Path) -> None:
    """A server that answers a new connection's handshake too late: the call fails (once, not
    retried), and its connection is not reused, so the late reply is never read as the answer to
    the next command."""
    connections = 0

    async def late_then_prompt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        late = connections == 1
        try:
            while data := await reader.read(65536):
                replies = data.count(b"\r\n*") + data.startswith(b"*")
                if late:
                    await asyncio.sleep(2.0)  # past the 1.5 s timeout
                body = b"$5\r\nvalue\r\n" if b"GET" in data else b"+OK\r\n" * replies
                writer.write(body)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(late_then_prompt, path=str(tmp_path / "late.sock"))
    settings = external(f"unix://{tmp_path}/late.sock", tmp_path, redis_timeout=1.5, redis_mode="standalone")
    try:
        target = connect(settings, settings.redis_url or "")
        try:
            started = time.monotonic()
            with pytest.raises((RedisConnectionError, RedisTimeoutError)):
                await target.client.get("key")
            assert time.monotonic() - started < 2.5, "one timeout, not retried"
            await asyncio.sleep(HUNG_SECONDS)  # not asked again meanwhile
            assert await target.client.get("key") == "value", "not the late reply of the first connection"
        finally:
            await target.aclose()
    finally:
        server.close()
        await server.wait_closed()
