"""The `warncast` command end to end, on its own embedded redis-server in a temporary data dir."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "warncast"


def run(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WARNCAST_DATA_DIR": str(data_dir), "WARNCAST_LOG_FORMAT": "text"}
    env.pop("REDIS_URL", None)
    result = subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_admin_commands_on_embedded_redis(tmp_path: Path) -> None:
    demo = run(tmp_path, "admin", "load-demo")
    assert "published demo warning" in demo.stdout and "chief2" in demo.stdout
    assert (tmp_path / "redis" / "appendonly.aof").exists(), "append-only file on"
    again = run(tmp_path, "admin", "load-demo")
    assert "published demo warning" not in again.stdout, "idempotent: the demo warning is still in force"

    user = run(tmp_path, "admin", "create-user", "wang", "--role", "approver", "--role", "chief")
    assert "created user wang (approver, chief)" in user.stdout and "password: " in user.stdout
    token = run(tmp_path, "admin", "create-token", "radar", "--role", "drafter").stdout.strip()
    assert token.startswith("wct_")
    bad = run(tmp_path, "admin", "create-user", "x", "--role", "approver", check=False)
    assert bad.returncode == 2
    wrong_role = run(tmp_path, "admin", "create-token", "y", "--role", "emperor", check=False)
    assert wrong_role.returncode == 2 and "invalid choice" in wrong_role.stderr
    assert "wang\tapprover,chief" in run(tmp_path, "admin", "list-users").stdout
    # The demo city's units: a user and a token in the meteorological bureau, a move, a wrong unit.
    assert "loaded 11 issuing units" in demo.stdout
    run(tmp_path, "admin", "create-user", "li", "--role", "drafter", "--unit", "meteorology")
    run(tmp_path, "admin", "set-unit", "wang", "binjiang_centre")
    listed = run(tmp_path, "admin", "list-users").stdout
    assert "li\tdrafter\tmeteorology" in listed and "wang\tapprover,chief\tbinjiang_centre" in listed
    assert "wang is paged by sms" in run(tmp_path, "admin", "set-pager", "wang", "--sms", "138 0013 8000").stdout
    bad_number = run(tmp_path, "admin", "set-pager", "wang", "--sms", "12345", check=False)
    assert bad_number.returncode == 2 and "not a" in bad_number.stderr
    assert run(tmp_path, "admin", "set-pager", "wang", "--telegram", "abc", check=False).returncode == 2
    nowhere = run(tmp_path, "admin", "create-token", "z1", "--role", "drafter", "--unit", "nowhere", check=False)
    assert nowhere.returncode != 0 and "no unit nowhere" in nowhere.stderr

    assert "audit log intact" in run(tmp_path, "admin", "verify-audit").stdout
    # Edit one audit entry directly in the stored data, then verify again.
    server = subprocess.Popen(
        [
            str(_redis_server()),
            "--port",
            "0",
            "--unixsocket",
            str(tmp_path / "t.sock"),
            "--dir",
            str(tmp_path / "redis"),
            "--appendonly",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_for(tmp_path / "t.sock")
        import redis

        client = redis.Redis(unix_socket_path=str(tmp_path / "t.sock"), decode_responses=True)
        first = client.lindex("wc:{audit}:log", 0)
        client.lset("wc:{audit}:log", 0, first.replace('"action": "create"', '"action": "nothing"'))
        client.close()
    finally:
        server.terminate()
        server.wait(10)
    tampered = run(tmp_path, "admin", "verify-audit", check=False)
    assert tampered.returncode == 1 and "edited" in tampered.stderr


def _redis_server() -> Path:
    from foundation.store.connection import redis_server_binary

    return redis_server_binary()


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 10
    while not path.exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.timeout(90)
def test_serve_starts_and_stops_cleanly_and_data_survives(tmp_path: Path) -> None:
    run(tmp_path, "admin", "load-demo")
    port = free_port()
    env = {**os.environ, "WARNCAST_DATA_DIR": str(tmp_path), "WARNCAST_PORT": str(port)}
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen([str(BIN), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/readyz")
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.1)
        assert status == 200 and '"redis": "ok"' in body
        status, home = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and "暴雨" in home
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "stopped embedded redis-server" in stderr
    assert '"level": "info"' in stderr, "structured JSON logs by default"
    assert not (tmp_path / "redis" / "redis.sock").exists() or not _socket_answers(tmp_path / "redis" / "redis.sock")
    # The data is on disk: a new process sees the same warning and operators.
    assert "published demo warning" not in run(tmp_path, "admin", "load-demo").stdout


def _socket_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(path))
            return True
        except OSError:
            return False


def test_import_subscribers_is_idempotent_with_row_errors(tmp_path: Path) -> None:
    run(tmp_path, "admin", "load-demo")
    csv_file = tmp_path / "base.csv"
    csv_file.write_text(
        "channel,address,area,language,min_grade,drill\n"
        "sms,13800000001,990101,zh,yellow,\n"
        "sms,+8613800000002,Binjiang District,en,red,yes\n"
        "telegram,777,990102,zh-CN,blue,\n"
        "fax,123,990101,zh,red,\n"
        "sms,not-a-number,990101,zh,red,\n"
        "sms,13800000003,Atlantis,zh,red,\n"
        "sms,13800000004,990101,fr,red,\n"
        "sms,13800000005,990101,zh,purple,\n",
        encoding="utf-8",
    )
    first = run(tmp_path, "admin", "import-subscribers", str(csv_file), check=False)
    assert first.returncode == 1
    assert "imported 3, unchanged 0" in first.stdout
    for line in (
        "line 5: channel",
        "line 6: not a phone",
        "line 7: unknown area",
        "line 8: language",
        "line 9: min_grade",
    ):
        assert line in first.stderr, first.stderr
    second = run(tmp_path, "admin", "import-subscribers", str(csv_file), check=False)
    assert "imported 0, unchanged 3" in second.stdout
    missing = tmp_path / "bad.csv"
    missing.write_text("phone,area\n1,2\n")
    result = run(tmp_path, "admin", "import-subscribers", str(missing), check=False)
    assert result.returncode == 1 and "missing column(s): channel, address" in result.stderr
