"""`warncast serve --processes 2` on real processes: the installed CLI, its embedded redis-server in
a temporary data dir (started once, by the parent), on a free port of 127.0.0.1.

Which process answered is in the `X-Warncast-Process` header (1 or 2); every request below opens a
fresh connection, which the kernel gives to either child (SO_REUSEPORT). The clients pose as
addresses behind a proxy on 127.0.0.1 (X-Forwarded-For), one address per test, so that the tests
do not spend each other's allowances. The module's tests share one server and run in order: the
last two kill a child and stop the whole host.

Then the shared-memory table itself: two real processes hammering one bucket, stream counts per
process slot, and the same answers as the per-process buckets.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from foundation.access.auth import Accounts
from foundation.areas.registry import store_areas
from foundation.errors import TooManyRequests
from foundation.settings import Settings, SettingsError
from foundation.store.connection import open_redis
from tests.channels.test_screens import COMMUNITY_IN_990101, read_event
from tests.warncast.test_cli import free_port
from warncast.cli import main
from warncast.demo_city import demo_areas
from warncast.processes import PROCESS_HEADER
from warncast.web.limits import TokenBuckets
from warncast.web.shared_limits import SharedLimits, SharedStreamCap, SharedTokenBuckets

pytestmark = pytest.mark.timeout(120)  # the shared server's start counts towards the first test
BIN = Path(sys.executable).parent / "warncast"
# Anonymous reads per address, refilled at 1 per 1000 s: nothing refills during a test. Opening a live
# stream is a read too, so the stream tests poll within this budget.
BURST = 40
STREAMS = 3  # live streams per address
START = re.compile(r"started process (\d) \(pid (\d+)\)")


@dataclass
class Host:
    """The running `warncast serve --processes 2`, its log, and API tokens."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    env: dict[str, str]
    tokens: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self) -> dict[int, int]:
        """slot -> the pid of its latest child, from the parent's log."""
        return {int(slot): int(pid) for slot, pid in START.findall(self.text())}

    def staff(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


async def seed(env: dict[str, str]) -> dict[str, str]:
    """The demo city's areas and two API tokens, written through the data dir's embedded Redis
    (started and stopped here, as an admin command does), before any serving process starts."""
    settings = Settings.from_env(env)
    async with open_redis(settings) as redis:
        await store_areas(redis, demo_areas())
        accounts = Accounts(redis, settings.password_memory_kib)
        roles = {"drafter": ["drafter", "admin"], "approver": ["approver"]}
        return {name: await accounts.create_token(name, given) for name, given in roles.items()}


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 5) -> tuple[int, str]:
    """(status, the process that answered) over a new connection."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            resp.read()
            return resp.status, resp.headers.get(PROCESS_HEADER, "")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers.get(PROCESS_HEADER, "")


def wait_for(what: str, condition: Any, within: float = 60.0, host: Host | None = None) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if host is not None:
            assert host.proc.poll() is None, f"serve exited with {host.proc.returncode}:\n{host.text()[-4000:]}"
        assert time.monotonic() < deadline, f"{what}: not within {within:.0f} s" + (
            f"\n{host.text()[-4000:]}" if host else ""
        )
        time.sleep(0.05)


def via(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def children_of(pid: int) -> dict[int, str]:
    """pid -> command name of every process whose parent is `pid`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name, rest = stat.split("(", 1)[1].rsplit(")", 1)
            if int(rest.split()[1]) == pid:
                found[int(entry.name)] = name
    return found


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    directory = tmp_path_factory.mktemp("processes")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARNCAST_", "TWILIO_", "TELEGRAM_", "REDIS_"))}
    env.update(
        {
            "WARNCAST_DATA_DIR": str(directory / "data"),
            "WARNCAST_SECRET_KEY": "processes-test",
            "WARNCAST_PORT": str(port),
            "WARNCAST_LOG_FORMAT": "text",
            "WARNCAST_PASSWORD_MEMORY_KIB": "8192",
            "WARNCAST_TRUSTED_PROXIES": "127.0.0.1",
            "WARNCAST_PUBLIC_BURST": str(BURST),
            "WARNCAST_PUBLIC_RATE": "0.001",
            "WARNCAST_SSE_PER_IP": str(STREAMS),
        }
    )
    tokens = asyncio.run(seed(env))
    log = directory / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN), "serve", "--processes", "2"], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    host = Host(proc, port, log, env, tokens)
    pids: set[int] = set()
    try:
        wait_for("both processes ready", lambda: all(f"process {n} ready" in host.text() for n in (1, 2)), host=host)
        pids = set(host.pids().values()) | set(children_of(proc.pid))
        yield host
    finally:
        pids |= set(children_of(proc.pid))
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in pids:  # anything of ours a failed test left behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_both_processes_serve_the_port_and_share_one_embedded_redis(host: Host) -> None:
    text = host.text()
    assert text.count("started embedded redis-server") == 1, "the parent starts it, once"
    assert text.count("using the embedded redis-server already running") == 2, "each child shares it"
    pids = host.pids()
    assert sorted(pids) == [1, 2] and len(set(pids.values())) == 2
    children = children_of(host.proc.pid)
    assert set(pids.values()) <= set(children), "both are the parent's children"
    assert sorted(children.values()).count("redis-server") == 1
    seen: set[str] = set()
    for _ in range(60):
        status, process = get(f"{host.url}/readyz")
        assert status == 200
        seen.add(process)
        if seen == {"1", "2"}:
            break
    assert seen == {"1", "2"}, "fresh connections reach both processes"


def test_the_anonymous_read_limit_holds_across_the_processes(host: Host) -> None:
    answers = [get(f"{host.url}/api/v1/warnings", via("203.0.113.10")) for _ in range(3 * BURST)]
    statuses = [status for status, _ in answers]
    assert {process for _, process in answers} == {"1", "2"}, "the requests were spread over both"
    assert statuses.count(200) == BURST, f"the burst once for the host, not once per process: {answers}"
    assert statuses == [200] * BURST + [429] * (2 * BURST)
    assert get(f"{host.url}/api/v1/warnings", via("203.0.113.11"))[0] == 200, "another address has its own"

    wrong = {**via("203.0.113.12"), "Authorization": "Bearer wct_not-a-token"}
    guesses = [get(f"{host.url}/api/v1/warnings", wrong) for _ in range(15)]
    assert [status for status, _ in guesses] == [401] * 10 + [429] * 5, f"ten wrong tokens per host: {guesses}"
    assert {process for _, process in guesses} == {"1", "2"}


async def open_stream(http: aiohttp.ClientSession, host: Host, address: str) -> tuple[aiohttp.ClientResponse, str]:
    resp = await http.get(f"{host.url}/screens/station-1/events", headers=via(address))
    if resp.status == 200:
        await read_event(resp.content, within=10)
    else:
        await resp.read()
        resp.release()
    return resp, resp.headers.get(PROCESS_HEADER, "")


@pytest.fixture(scope="module")
def screen(host: Host) -> str:
    body = {"id": "station-1", "name": "Binjiang Station", "area": COMMUNITY_IN_990101}
    request = urllib.request.Request(
        f"{host.url}/api/v1/screens",
        data=json.dumps(body).encode(),
        headers={**host.staff("drafter"), "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 201
    seen: set[str] = set()  # each process reads the screen records again within 2 s (CACHE_SECONDS)
    addresses = (f"192.0.2.{n}" for n in range(1, 255))  # a fresh allowance for each look

    def known() -> bool:
        status, process = get(f"{host.url}/screens/station-1.json", via(next(addresses)))
        if status == 200:
            seen.add(process)
        return seen == {"1", "2"}

    wait_for("both processes know the screen", known, within=10, host=host)
    return "station-1"


def session() -> aiohttp.ClientSession:
    """Every request on a connection of its own, so the kernel picks the process each time."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))


async def test_the_live_stream_cap_holds_across_the_processes(host: Host, screen: str) -> None:
    address = "203.0.113.20"
    async with session() as http:
        held: list[tuple[aiohttp.ClientResponse, str]] = []
        refused_by: set[str] = set()
        for _ in range(40):  # until both processes have refused one, with places held on either
            resp, process = await open_stream(http, host, address)
            if resp.status == 200:
                held.append((resp, process))
            else:
                assert resp.status == 429 and resp.headers["Retry-After"] == "60"
                refused_by.add(process)
            if refused_by == {"1", "2"}:
                break
        assert len(held) == STREAMS, "at most three for the host, whichever process holds them"
        assert refused_by == {"1", "2"}, "each process refuses once the host's three are open"

        gone, _ = held.pop(0)
        gone.close()  # a screen goes away: its place is free for the host soon after
        # Seen within about PRUNE_SECONDS (0.5 s); each try spends one of the address's reads, so try
        # every 0.5 s, which leaves a loaded CI machine over 10 s.
        deadline = time.monotonic() + 15
        while True:
            await asyncio.sleep(0.5)
            again, process = await open_stream(http, host, address)
            if again.status == 200 or time.monotonic() > deadline:
                break
            assert again.headers["Retry-After"] == "60", "refused by the read limit, not the stream cap"
        if again.status == 200:
            held.append((again, process))
        assert again.status == 200, "the freed place is seen by every process"
        assert (await open_stream(http, host, address))[0].status == 429, "still three at most"
        for resp, _ in held:
            resp.close()


def warning(grade: str = "blue") -> dict[str, Any]:
    expires = datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(hours=6)
    return {
        "grade": grade,
        "event": "rainstorm",
        "category": "Met",
        "areas": ["990101"],
        "expires": expires.replace(microsecond=0).isoformat(),
        "info": {
            "zh-CN": {"headline": "滨江区暴雨蓝色预警", "description": "预计有强降雨。", "instruction": "注意防范。"},
            "en": {"headline": "Blue rainstorm warning", "description": "Heavy rain.", "instruction": "Take care."},
        },
    }


async def test_a_warning_published_through_one_process_reaches_screens_on_every_process(
    host: Host, screen: str
) -> None:
    async with session() as http:
        streams: list[tuple[aiohttp.ClientResponse, str]] = []
        for n in range(30):  # one address each: until both processes hold a few streams
            resp, process = await open_stream(http, host, f"198.51.100.{n + 1}")
            assert resp.status == 200, await resp.text()
            streams.append((resp, process))
            held = [p for _, p in streams]
            if held.count("1") >= 2 and held.count("2") >= 2:
                break
        assert {p for _, p in streams} == {"1", "2"}, "screens connected to both processes"

        async def call(path: str, who: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
            resp = await http.post(f"{host.url}{path}", json=body or {}, headers=host.staff(who))
            assert resp.status in (200, 201), await resp.text()
            return {**await resp.json(), "_process": resp.headers[PROCESS_HEADER]}

        draft = await call("/api/v1/warnings", "drafter", warning())
        await call(f"/api/v1/warnings/{draft['id']}/submit", "drafter")
        published = await call(f"/api/v1/warnings/{draft['id']}/approve", "approver")
        assert published["state"] == "published"

        async def shown(resp: aiohttp.ClientResponse) -> None:
            while draft["id"] not in [w["id"] for w in (await read_event(resp.content, within=10))["warnings"]]:
                pass

        await asyncio.wait_for(asyncio.gather(*(shown(resp) for resp, _ in streams)), 15)
        for resp, _ in streams:
            resp.close()
        print(f"published through process {published['_process']}; shown by {len(streams)} streams on both")


async def test_a_killed_child_is_logged_and_restarted_and_the_port_keeps_answering(host: Host, screen: str) -> None:
    address = "203.0.113.30"
    async with session() as http:
        held: list[tuple[aiohttp.ClientResponse, str]] = []
        while len(held) < STREAMS:
            resp, process = await open_stream(http, host, address)
            assert resp.status == 200
            held.append((resp, process))
        victim = int(held[0][1])  # a process that holds at least one of the address's streams
        on_victim = [p for _, p in held].count(str(victim))
        old_pid = host.pids()[victim]
        mark = len(host.text())
        os.kill(old_pid, signal.SIGKILL)

        def after_kill() -> str:
            return host.text()[mark:]

        died = f"process {victim} (pid {old_pid}) was killed by SIGKILL"
        wait_for("the parent notices", lambda: died in after_kill(), within=10, host=host)
        freed = int(re.findall(r"\((\d+) live streams freed\)", after_kill())[0])
        assert freed >= on_victim, "its column zeroed (with any stream of an earlier test not yet noticed gone)"
        answered: list[tuple[int, str]] = []
        while f"process {victim} ready" not in after_kill():  # meanwhile the other process answers all
            answered.append(get(f"{host.url}/readyz"))
            assert host.proc.poll() is None
            await asyncio.sleep(0.05)
        assert answered and all(status == 200 for status, _ in answered), answered
        new_pid = host.pids()[victim]
        assert new_pid != old_pid and alive(new_pid) and not alive(old_pid)
        logged = rf"{re.escape(died)} after [\d.]+ s \({freed} live streams freed\); restarting in [\d.]+ s"
        assert re.search(logged, host.text())

        wait_for("the restarted process serves", lambda: get(f"{host.url}/readyz")[1] == str(victim), 10, host)

        # The dead process's streams were freed; the survivor's still count.
        reopened = [await open_stream(http, host, address) for _ in range(on_victim + 2)]
        assert [resp.status for resp, _ in reopened] == [200] * on_victim + [429, 429]
        for resp, _ in held + reopened:
            resp.close()


def test_sigterm_to_the_parent_stops_every_process_within_10_s(host: Host) -> None:
    processes = children_of(host.proc.pid)
    assert sorted(processes.values()).count("redis-server") == 1 and len(processes) == 3, processes
    stream = urllib.request.urlopen(f"{host.url}/screens/station-1/events", timeout=15)  # one screen connected
    try:
        signalled = time.monotonic()
        host.proc.send_signal(signal.SIGTERM)
        everyone = [host.proc.pid, *processes]
        while any(alive(pid) for pid in everyone if pid != host.proc.pid) or host.proc.poll() is None:
            assert time.monotonic() - signalled < 10, f"still running: {[p for p in everyone if alive(p)]}"
            time.sleep(0.02)
        took = time.monotonic() - signalled
    finally:
        stream.close()
    text = host.text()
    assert host.proc.returncode == 0, text[-3000:]
    assert "exiting now" not in text and "still running: killed" not in text, "an orderly stop"
    assert "stopped embedded redis-server" in text
    print(f"\nevery process stopped {took:.1f} s after SIGTERM")


# The shared table


HAMMER = textwrap.dedent(
    """
    import sys
    from warncast.web.shared_limits import SharedLimits, SharedTokenBuckets
    table = SharedLimits.attach(int(sys.argv[1]))
    buckets = SharedTokenBuckets(table.public, rate=1e-6, burst=int(sys.argv[2]))
    print("ready", flush=True)
    sys.stdin.readline()
    print(sum(1 for _ in range(int(sys.argv[3])) if buckets.take("192.0.2.7") == 0), flush=True)
    """
)


def test_two_processes_hammering_one_bucket_spend_exactly_its_burst() -> None:
    table = SharedLimits.create(slots=2, max_ips=1000)
    burst, tries = 4000, 12000
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", HAMMER, str(table.fileno()), str(burst), str(tries)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                pass_fds=(table.fileno(),),
            )
            for _ in range(2)
        ]
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:  # both at once
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        spent = [int(proc.communicate(timeout=60)[0]) for proc in procs]
        assert sum(spent) == burst, f"no token spent twice, none lost: {spent}"  # without the locks: more
        mine = SharedTokenBuckets(table.public, rate=1e-6, burst=burst)
        assert mine.take("192.0.2.7") > 0 and mine.take("192.0.2.8") == 0, "one address's bucket, not another's"
        assert len(mine) == 2
    finally:
        table.close()


def test_shared_buckets_answer_as_the_per_process_ones() -> None:
    table = SharedLimits.create(slots=1, max_ips=100)
    now = [1000.0]
    shared = SharedTokenBuckets(table.public, rate=0.5, burst=3, now=lambda: now[0])
    local = TokenBuckets(0.5, 3, 100, now=lambda: now[0])
    try:
        for step, address in enumerate(["192.0.2.1"] * 5 + ["2001:db8::1", "2001:db8::2"] * 3 + ["192.0.2.1"] * 3):
            now[0] += 0.7 * (step % 3)
            assert (shared.wait(address), shared.take(address)) == (local.wait(address), local.take(address)), step
        assert len(shared) == len(local) == 2, "IPv6 counted per /64, as per process"
    finally:
        table.close()


class Request:
    """Stands in for aiohttp's request: the cap only looks at its transport (None once it is gone)."""

    transport: object | None = object()


def test_stream_counts_add_up_across_slots_and_a_dead_slot_is_cleared() -> None:
    table = SharedLimits.create(slots=2, max_ips=100)
    first, second = SharedStreamCap(table, 0, per_ip=3), SharedStreamCap(table, 1, per_ip=3)
    try:
        ours = [Request(), Request()]
        for request in ours:
            first.open("192.0.2.1", request)
        theirs = Request()
        second.open("192.0.2.1", theirs)
        assert first.count("192.0.2.1") == second.count("192.0.2.1") == 3
        with pytest.raises(TooManyRequests):
            second.open("192.0.2.1", Request())
        second.open("192.0.2.2", Request())  # another address
        theirs.transport = None  # its screen went away: the process that held it frees the place
        second.open("192.0.2.1", Request())
        with pytest.raises(TooManyRequests):
            first.open("192.0.2.1", Request())
        assert table.clear_slot(0) == 2, "the first process died with its two streams"
        assert first.count("192.0.2.1") == 1
        second.open("192.0.2.1", Request())
        second.open("192.0.2.1", Request())
        with pytest.raises(TooManyRequests):
            second.open("192.0.2.1", Request())
        assert second.count("192.0.2.2") == 1
    finally:
        table.close()


def test_the_processes_setting_and_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    env = {"WARNCAST_DATA_DIR": str(tmp_path), "WARNCAST_SECRET_KEY": "k"}
    assert Settings.from_env(env).processes == 1
    assert Settings.from_env({**env, "WARNCAST_PROCESSES": "4"}).processes == 4
    assert Settings.from_env({**env, "WARNCAST_PROCESSES": "auto"}).processes == len(os.sched_getaffinity(0))
    for bad in ("0", "two", "1.5", "2000"):
        with pytest.raises(SettingsError, match="WARNCAST_PROCESSES"):
            Settings.from_env({**env, "WARNCAST_PROCESSES": bad})
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--processes", "none"])
    assert exited.value.code == 2
    assert "--processes must be a whole number of processes or 'auto', got 'none'" in capsys.readouterr().err
