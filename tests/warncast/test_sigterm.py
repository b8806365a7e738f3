"""SIGTERM ends `warncast serve` and `warncast worker` within 10 s, whatever their loops are doing:
here every loop is stuck in a call to a Redis that has stopped answering (SIGSTOP; with the longest
Redis timeout allowed, 60 s, no call returns by itself meanwhile), and requests are in flight, stuck
the same way. The real CLI, on a temporary data dir, with a redis-server of the test's own
(REDIS_URL), which is continued (SIGCONT) afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from foundation.store.connection import redis_server_binary
from tests.warncast.test_cli import free_port

BIN = Path(sys.executable).parent / "warncast"
DEADLINE = 10.0


def _get(url: str, timeout: float = 5) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _request(url: str) -> None:
    """A request left in flight: the server drops it when it stops."""
    try:
        _get(url, timeout=60)
    except OSError:
        pass


def _wait(what: str, condition, within: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.timeout(120)
def test_sigterm_ends_serve_and_worker_within_10_s_while_redis_hangs(tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    redis = subprocess.Popen(
        [str(redis_server_binary()), "--port", "0", "--unixsocket", str(sock), "--dir", str(tmp_path)]
        + ["--save", "", "--appendonly", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": f"unix://{sock}",
        "WARNCAST_DATA_DIR": str(tmp_path / "data"),
        "WARNCAST_SECRET_KEY": "sigterm-test",
        "WARNCAST_PORT": str(port),
        "WARNCAST_LOG_FORMAT": "text",
        "WARNCAST_REDIS_TIMEOUT": "60",  # a hung Redis holds every call for the whole test
    }
    logs = {name: tmp_path / f"{name}.log" for name in ("serve", "worker")}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        _wait("redis-server starts", sock.exists, within=10)
        for name in ("serve", "worker"):
            with open(logs[name], "wb") as out:
                procs[name] = subprocess.Popen([str(BIN), name], env=env, stdout=out, stderr=subprocess.STDOUT)

        def serve_ready() -> bool:
            assert procs["serve"].poll() is None, logs["serve"].read_text()
            try:
                return _get(f"http://127.0.0.1:{port}/readyz") == 200
            except OSError:
                return False

        _wait("serve is ready", serve_ready)
        _wait("the worker runs", lambda: "worker running" in logs["worker"].read_text())
        time.sleep(1.5)  # every loop in its rounds: blocking reads, beats, the scheduler's round

        os.kill(redis.pid, signal.SIGSTOP)
        for path in ("/", "/readyz", "/api/v1/warnings"):
            url = f"http://127.0.0.1:{port}{path}"
            threading.Thread(target=_request, args=(url,), daemon=True).start()
        time.sleep(1.0)  # each loop is now waiting on Redis
        signalled = time.monotonic()
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        took: dict[str, float] = {}
        while len(took) < len(procs) and time.monotonic() < signalled + DEADLINE:
            took.update(
                {n: time.monotonic() - signalled for n, p in procs.items() if n not in took and p.poll() is not None}
            )
            time.sleep(0.02)
        for name in procs.keys() - took.keys():
            pytest.fail(f"{name} still running {DEADLINE:.0f} s after SIGTERM:\n{logs[name].read_text()[-3000:]}")
        for name, proc in procs.items():
            text = logs[name].read_text()
            assert proc.returncode == 0, (
                f"{name} exited with {proc.returncode} after {took[name]:.1f} s:\n{text[-3000:]}"
            )
            assert "exiting now" not in text, "an orderly stop, not the last-resort exit"
        print(logs["serve"].read_text()[-6000:])
        print(logs["worker"].read_text()[-6000:])
        print("\nstopped after SIGTERM with Redis hung: " + ", ".join(f"{n} {t:.1f} s" for n, t in took.items()))
    finally:
        os.kill(redis.pid, signal.SIGCONT)
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        redis.terminate()
        redis.wait(10)
