"""The processes of the fault suite, as plain classes (no pytest): a redis-server (standalone with
its append-only file, or a Sentinel set of one primary, one replica and three sentinels), the
Twilio stand-in, and `warncast serve` / `warncast worker` through the installed console script.

Every process is started through one `Processes` set, which stops only what it started, by PID
(SIGCONT first, in case a scenario left one stopped). Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import redis as sync_redis

from foundation.store.connection import redis_server_binary
from tests.redis_cluster import free_port

ROOT = Path(__file__).resolve().parents[2]
WARNCAST = Path(sys.executable).parent / "warncast"  # the installed console script
ACCOUNT, TOKEN, SENDER = "ACfaults", "faults-secret", "+15550001111"
SECRET_KEY = "faults-secret-key"  # every process of one deployment shares it
MASTER_NAME = "warncast"


def wait_until(what: str, condition, timeout: float, interval: float = 0.05) -> float:  # type: ignore[no-untyped-def]
    """Poll `condition()` until it is true; return the seconds it took, or raise TimeoutError."""
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


class Processes:
    """Every process a scenario starts, so that teardown stops exactly those, by PID."""

    def __init__(self) -> None:
        self._started: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._logs: list[IO[bytes]] = []

    def popen(
        self, name: str, args: list[str], *, log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab")  # noqa: SIM115 - closed in stop_all, after the process is gone
        self._logs.append(out)
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self._started.append((name, proc))
        return proc

    def popen_pipe(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        """A process whose first stdout line the caller reads (the stand-in prints its port)."""
        proc = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        self._started.append((name, proc))
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL one process of ours, by its PID, and reap it."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)  # a stopped process is killed all the same; be sure
                os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for _name, proc in reversed(self._started):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGCONT)
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _name, proc in reversed(self._started):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill(proc)
            if proc.stdout is not None:
                proc.stdout.close()
        self._started.clear()
        for out in self._logs:
            out.close()
        self._logs.clear()


# Redis


@dataclass
class RedisServer:
    """One redis-server on 127.0.0.1:`port`, append-only file on, data in `directory`; SIGKILLed,
    stopped and restarted in place (same port, same files) by the scenarios."""

    processes: Processes
    directory: Path
    port: int = field(default_factory=free_port)
    # always, as the embedded server: a lone Redis keeps every write it answered through a SIGKILL
    # only so; under disk pressure everysec may answer before it writes the AOF, for up to 2 s.
    fsync: str = "always"
    replica_of: tuple[str, int] | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def args(self) -> list[str]:
        args = [
            str(redis_server_binary()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.fsync,
            "--save",
            "",
            "--daemonize",
            "no",
            "--loglevel",
            "notice",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        if self.replica_of:
            args += ["--replicaof", self.replica_of[0], str(self.replica_of[1])]
        return args

    def start(self, timeout: float = 30.0) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = self.processes.popen(f"redis:{self.port}", self.args(), log=self.directory / "stdout.log")
        self.wait_ready(timeout)
        return self

    def client(self, timeout: float = 2.0) -> sync_redis.Redis:
        return sync_redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout, decode_responses=True)

    def answers(self) -> bool:
        """True when the server answers PING (not while it is still loading its AOF)."""
        client = self.client(timeout=0.5)
        try:
            return bool(client.ping())
        except (sync_redis.ConnectionError, sync_redis.TimeoutError, sync_redis.exceptions.BusyLoadingError):
            return False
        finally:
            client.close()

    def wait_ready(self, timeout: float = 30.0) -> float:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}; see {self.directory}/redis.log")
            return self.answers()

        return wait_until(f"redis-server on port {self.port}", ready, timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final AOF rewrite or fsync by redis itself."""
        assert self.proc is not None
        Processes.kill(self.proc)

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def restart(self, timeout: float = 30.0) -> None:
        """Start again on the same port and files: the server reads its append-only file back."""
        self.start(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Sentinel:
    processes: Processes
    directory: Path
    monitor: tuple[str, int]
    port: int = field(default_factory=free_port)
    down_after_ms: int = 500
    failover_timeout_ms: int = 2000
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sentinel:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "sentinel.conf"  # sentinel rewrites its config file: one each
        conf.write_text(
            f"bind 127.0.0.1\nport {self.port}\ndir {self.directory}\n"
            f"logfile {self.directory / 'sentinel.log'}\n"
            f"sentinel monitor {MASTER_NAME} {self.monitor[0]} {self.monitor[1]} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
            f"sentinel failover-timeout {MASTER_NAME} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        args = [str(redis_server_binary()), str(conf), "--sentinel"]
        self.proc = self.processes.popen(f"sentinel:{self.port}", args, log=self.directory / "stdout.log")
        return self

    def client(self) -> sync_redis.Redis:
        return sync_redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1, decode_responses=True)

    def ask(self, *command: str) -> object:
        client = self.client()
        try:
            return client.execute_command(*command)
        finally:
            client.close()


@dataclass
class SentinelSet:
    """One primary, one replica, three sentinels (quorum 2), small timeouts so failover is quick."""

    processes: Processes
    directory: Path
    primary: RedisServer = field(init=False)
    replica: RedisServer = field(init=False)
    sentinels: list[Sentinel] = field(default_factory=list)

    def start(self, timeout: float = 30.0) -> SentinelSet:
        self.primary = RedisServer(self.processes, self.directory / "node-a").start()
        self.replica = RedisServer(
            self.processes, self.directory / "node-b", replica_of=("127.0.0.1", self.primary.port)
        ).start()
        monitor = ("127.0.0.1", self.primary.port)
        self.sentinels = [Sentinel(self.processes, self.directory / f"sentinel-{i}", monitor).start() for i in range(3)]
        wait_until("replica in sync", lambda: self._replica_synced(self.primary, self.replica), timeout)
        wait_until("sentinels see the replica and each other", self._sentinels_settled, timeout, interval=0.2)
        return self

    @property
    def addresses(self) -> str:
        """WARNCAST_REDIS_SENTINELS"""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    @staticmethod
    def _replica_synced(primary: RedisServer, replica: RedisServer) -> bool:
        client = replica.client()
        try:
            info = client.info("replication")
        except sync_redis.RedisError:
            return False
        finally:
            client.close()
        return info.get("master_link_status") == "up" and info.get("master_port") == primary.port

    def _sentinels_settled(self) -> bool:
        try:
            for sentinel in self.sentinels:
                replicas = sentinel.ask("SENTINEL", "REPLICAS", MASTER_NAME)
                peers = sentinel.ask("SENTINEL", "SENTINELS", MASTER_NAME)
                if not isinstance(replicas, list) or len(replicas) != 1:
                    return False
                if not isinstance(peers, list) or len(peers) != len(self.sentinels) - 1:
                    return False
        except sync_redis.RedisError:
            return False
        return True

    def primary_address(self) -> tuple[str, int] | None:
        """What the sentinels' majority says the primary is now."""
        votes: dict[tuple[str, int], int] = {}
        for sentinel in self.sentinels:
            try:
                host, port = sentinel.ask("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)  # type: ignore[misc]
            except (sync_redis.RedisError, TypeError, ValueError):
                continue
            votes[(host, int(port))] = votes.get((host, int(port)), 0) + 1
        best = max(votes.items(), key=lambda item: item[1], default=None)
        return best[0] if best and best[1] >= 2 else None

    def kill_primary(self) -> RedisServer:
        """SIGKILL the current primary; returns it (it is the node whose port the sentinels named)."""
        killed = self.primary
        killed.kill()
        return killed

    def wait_promoted(self, timeout: float = 30.0) -> float:
        """Until the sentinels name the replica as primary and it accepts writes; the seconds it took."""
        old = ("127.0.0.1", self.primary.port)

        def promoted() -> bool:
            address = self.primary_address()
            if address is None or address == old:
                return False
            client = self.replica.client()
            try:
                return client.info("replication").get("role") == "master"
            except sync_redis.RedisError:
                return False
            finally:
                client.close()

        seconds = wait_until("replica promoted", promoted, timeout, interval=0.05)
        self.primary, self.replica = self.replica, self.primary
        return seconds

    def rejoin_old_primary(self, timeout: float = 30.0) -> None:
        """Bring the killed node back as a replica of the new primary (as an operator would), so that
        writes waiting for a replica (WARNCAST_REDIS_MIN_REPLICAS) are acknowledged again."""
        self.replica.replica_of = ("127.0.0.1", self.primary.port)
        self.replica.restart(timeout)
        wait_until("old primary back as a replica", lambda: self._replica_synced(self.primary, self.replica), timeout)


# The Twilio stand-in


@dataclass
class TwilioProcess:
    processes: Processes
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""

    def start(self) -> TwilioProcess:
        args = [sys.executable, "-m", "tests.faults.twilio_counts", "--port", "0"]
        self.proc = self.processes.popen_pipe("twilio", [*args, "--account", ACCOUNT, "--token", TOKEN])
        assert self.proc.stdout is not None
        port = json.loads(self.proc.stdout.readline())["port"]
        self.url = f"http://127.0.0.1:{port}"
        return self


# warncast


def warncast_env(
    data_dir: Path,
    redis: dict[str, str],
    twilio_url: str,
    *,
    sms_rate: float,
    concurrency: int,
    port: int | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of one warncast process. `redis`: REDIS_URL, or the Sentinel variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARNCAST_", "TWILIO_", "TELEGRAM_", "REDIS_"))}
    env.update(
        {
            **redis,
            "WARNCAST_DATA_DIR": str(data_dir),
            "WARNCAST_SECRET_KEY": SECRET_KEY,
            "WARNCAST_LOG_FORMAT": "text",
            "WARNCAST_PASSWORD_MEMORY_KIB": "8192",
            "TWILIO_ACCOUNT_SID": ACCOUNT,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_FROM": SENDER,
            "TWILIO_API_BASE": twilio_url,
            "WARNCAST_SMS_RATE": str(sms_rate),
            "WARNCAST_DISPATCH_CONCURRENCY": str(concurrency),
            "WARNCAST_DISPATCH_RECLAIM_AFTER": "2",
            "WARNCAST_PROVIDER_TIMEOUT": "5",
            "WARNCAST_DISPATCH_BACKOFF": "0.2",
            # The load generators pose as many clients behind a proxy on 127.0.0.1 (X-Forwarded-For):
            # intake's limits per IP hold per report, and public reads are not what is measured here.
            "WARNCAST_TRUSTED_PROXIES": "127.0.0.1",
            "WARNCAST_PUBLIC_RATE": "1000000",
            "WARNCAST_PUBLIC_BURST": "1000000",
            "WARNCAST_REDIS_TIMEOUT": "2",  # the connection layer's (colleague A's) default, said out loud
            **extra,
        }
    )
    if port is not None:
        env["WARNCAST_PORT"] = str(port)
        env["WARNCAST_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    return env


@dataclass
class Warncast:
    """One `warncast serve` or `warncast worker` process."""

    processes: Processes
    kind: str  # serve | worker
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)  # every PID this process has had (restarts)
    _log_mark: int = 0  # the log's size when the current process started

    @property
    def port(self) -> int:
        return int(self.env["WARNCAST_PORT"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Warncast:
        self._log_mark = self.log.stat().st_size if self.log.exists() else 0
        self.proc = self.processes.popen(
            f"warncast-{self.kind}", [str(WARNCAST), self.kind], log=self.log, env=self.env
        )
        self.pids.append(self.proc.pid)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        Processes.kill(self.proc)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_ready(self, timeout: float = 60.0) -> float:
        """serve: /readyz answers 200; worker: it logged "worker running"."""

        def ready() -> bool:
            if not self.alive():
                raise RuntimeError(f"warncast {self.kind} exited: {self.log_tail()}")
            if self.kind == "worker":
                with open(self.log, "rb") as fh:
                    fh.seek(self._log_mark)
                    return b"worker running" in fh.read()
            return readyz(self.url) == 200

        return wait_until(f"warncast {self.kind}", ready, timeout, interval=0.1)


def readyz(url: str, timeout: float = 3.0) -> int:
    """The status /readyz answers, 0 when it does not."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code
    except OSError:
        return 0
