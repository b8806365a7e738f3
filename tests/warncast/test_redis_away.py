"""Redis away: the real app against a redis-server of its own, killed (SIGKILL), hung (SIGSTOP) and
brought back. Whatever needs Redis answers 503 with Retry-After in its area's format (never 500),
fast; public pages, feeds, CAP and screens keep answering with their last rendering, marked stale;
once Redis is back every answer is current again and the stale marks are gone."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient

from foundation.settings import Settings
from foundation.store import keys
from foundation.store.connection import redis_server_binary
from tests.channels.test_screens import add_screen, read_event
from tests.channels.test_telegram import SECRET, TOKEN, message_update
from tests.conftest import RedisStore, Staff, warning_body
from tests.delivery_helpers import signed_post, sms_settings
from tests.publisher.test_workflow import published
from tests.redis_cluster import ClusterNode, LocalCluster
from tests.standins.telegram import TelegramStandin
from tests.standins.twilio import TwilioStandIn
from tests.warncast.test_browser import base_url, browser  # noqa: F401 - fixtures
from tests.warncast.test_console import login

UNAVAILABLE_EN = "The service is briefly unavailable. Please try again in a moment."
STALE_OUTPUTS = ("/feeds/warnings.rss", "/feeds/warnings.atom", "/feeds/cap.atom", "/screens/station-1.txt")
REPORT = {"category": "waterlogging", "description": "Underpass flooded", "lat": 30.666165, "lon": 121.062489}
BOUND = 5.0  # seconds an answer may take while Redis hangs (one 2 s socket timeout, generous for CI)


@dataclass
class RedisProcess:
    """A redis-server on a unix socket of its own, its append-only file fsynced on every write, so a
    restart after SIGKILL finds every warning again. Only this process is ever signalled, by PID."""

    directory: Path
    process: subprocess.Popen[bytes] | None = None
    stopped: bool = False
    started: list[int] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.socket.unlink(missing_ok=True)
        args = ["--port", "0", "--unixsocket", str(self.socket), "--dir", str(self.directory)]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--loglevel", "warning"]
        self.process = subprocess.Popen([str(redis_server_binary()), *args], stdin=subprocess.DEVNULL)
        self.started.append(self.process.pid)
        deadline = time.monotonic() + 10
        while True:
            assert self.process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            try:
                client = sync_redis.Redis(unix_socket_path=str(self.socket))
                if client.ping():
                    client.close()
                    return
            except sync_redis.exceptions.RedisError:
                time.sleep(0.02)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def hang(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        self.stopped = True

    def resume(self) -> None:
        if self.process is not None and self.stopped:
            os.kill(self.process.pid, signal.SIGCONT)
            self.stopped = False

    def close(self) -> None:
        self.resume()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class ClusterNodeAway:
    """The cluster pass: a 3-primary Redis Cluster of the app's own, one of whose primaries (the one
    that holds the warnings) is killed or hung and brought back, while REDIS_URL names another node.
    Once the others see it gone the whole cluster refuses (CLUSTERDOWN), so the answers must be the
    same as with a single Redis away."""

    cluster: LocalCluster
    victim: ClusterNode
    stopped: bool = False

    @property
    def url(self) -> str:
        other = next(n for n in self.cluster.nodes if n is not self.victim)
        return f"redis://127.0.0.1:{other.port}/0"

    def survivors(self) -> list[ClusterNode]:
        return [n for n in self.cluster.nodes if n is not self.victim]

    def kill(self) -> None:
        assert self.victim.proc is not None
        os.kill(self.victim.proc.pid, signal.SIGKILL)
        self.victim.proc.wait(10)
        self.cluster.wait_state("fail", self.survivors())

    def start(self) -> None:
        self.cluster.run(self.victim)
        self.cluster.wait_state("ok", self.cluster.nodes)

    def hang(self) -> None:
        assert self.victim.proc is not None
        os.kill(self.victim.proc.pid, signal.SIGSTOP)
        self.stopped = True
        self.cluster.wait_state("fail", self.survivors())

    def resume(self) -> None:
        if self.victim.proc is not None and self.stopped:
            os.kill(self.victim.proc.pid, signal.SIGCONT)
            self.stopped = False

    def close(self) -> None:
        self.resume()
        self.cluster.stop()


@pytest.fixture
def own_redis(tmp_path: Path, redis_store: RedisStore) -> Iterator[RedisProcess | ClusterNodeAway]:
    if redis_store.kind == "cluster":
        cluster = LocalCluster(appendonly=True, directory=tmp_path / "cluster").start()
        away = ClusterNodeAway(cluster, cluster.node_of(keys.WARNINGS_INDEX))
        yield away
        away.close()
        return
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisProcess(directory)
    server.start()
    yield server
    server.close()


@pytest.fixture
async def telegram_api() -> AsyncIterator[TelegramStandin]:
    async with TelegramStandin(TOKEN, hang_seconds=5) as api:
        yield api


@pytest.fixture
def settings(
    settings: Settings, own_redis: RedisProcess, twilio: TwilioStandIn, telegram_api: TelegramStandin
) -> Settings:
    """The app on its own Redis, with SMS and Telegram configured (their webhooks are tested too)."""
    return sms_settings(settings, twilio.url).with_(
        redis_url=own_redis.url,
        redis_timeout=2.0,
        telegram_bot_token=TOKEN,
        telegram_api_base=telegram_api.url,
        telegram_webhook_secret=SECRET,
        public_rate=10_000.0,
        public_burst=10_000,
    )


@dataclass
class Before:
    """What was rendered while Redis was there: bodies by path, the session cookie, a warning id."""

    warning_id: str
    session: str
    bodies: dict[str, bytes]
    api_key: str
    events: Any  # the open live stream of the screen station-1


async def before(client: TestClient, staff: Staff, users: dict[str, str], clock: Any) -> Before:
    await login(client, "drafter", users["drafter"])
    session = next(c.value for c in client.session.cookie_jar if c.key == "wc_session")
    client.session.cookie_jar.clear()  # public reads go without it (the console sends it by hand)
    await add_screen(client, staff)
    warning = await published(client, staff, clock, grade="red", areas=["990101"])
    paths = [
        "/",
        "/?lang=en",
        f"/warnings/{warning['id']}",
        f"/cap/{warning['id']}.xml",
        "/screens/station-1.json",
        "/screens/station-1",
        *STALE_OUTPUTS,
    ]
    bodies = {}
    for path in paths:
        resp = await client.get(path)
        assert resp.status == 200, (path, await resp.text())
        assert "X-Warncast-Stale" not in resp.headers
        bodies[path] = await resp.read()
    events = await client.get("/screens/station-1/events")
    state = await read_event(events.content)
    assert [w["id"] for w in state["warnings"]] == [warning["id"]] and state["stale"] is False
    api_key = staff["chief"]["Authorization"].split()[1]
    return Before(warning["id"], session, bodies, api_key, events)


async def timed(request: Any) -> tuple[Any, bytes, float]:
    started = time.monotonic()
    resp = await request
    body = await resp.read()
    return resp, body, time.monotonic() - started


async def check_away(client: TestClient, staff: Staff, clock: Any, seen: Before) -> None:
    """Every answer while Redis is away, all asked at once; each within BOUND seconds. First the live
    screen is told (once the warnings follower's read fails: at once when Redis is refused, after the
    socket timeout when it hangs); from then on what was rendered before is served marked stale."""
    live = await read_event(seen.events.content, within=BOUND)
    assert live["stale"] is True and [w["id"] for w in live["warnings"]] == [seen.warning_id]
    console = {"Cookie": f"wc_session={seen.session}"}
    open311 = {"api_key": seen.api_key, "service_code": "waterlogging", "lat": "30.666", "long": "121.0625"}
    sms = {"From": "+8613800000001", "To": "+15557654321", "Body": "JOIN 990101", "MessageSid": "SMx"}
    telegram = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    unavailable = {
        "api list": client.get("/api/v1/warnings?lang=en", headers=staff["drafter"]),
        "api create": client.post("/api/v1/warnings?lang=en", json=warning_body(clock), headers=staff["drafter"]),
        "report json": client.post("/api/v1/reports?lang=en", json=REPORT),
        "report form": client.post("/report?lang=en", data={k: str(v) for k, v in REPORT.items()}),
        "open311 json": client.post("/open311/v2/requests.json?lang=en", data=open311),
        "open311 xml": client.post("/open311/v2/requests.xml?lang=en", data=open311),
        "console": client.get("/console?lang=en", headers=console),
        "sms": signed_post(client, "/webhooks/twilio/sms", sms),
        "telegram": client.post("/webhooks/telegram", json=message_update(4242, "/start"), headers=telegram),
        "never rendered feed": client.get("/feeds/warnings.rss?area=990102", headers={"Accept-Language": "en"}),
        "never rendered page": client.get("/warnings/no-such-warning?lang=en"),
        "api zh": client.get("/api/v1/warnings?lang=zh", headers=staff["drafter"]),  # pages above kept lang=en
    }
    stale = {path: client.get(path) for path in seen.bodies}
    stale["/ with a session"] = client.get("/", headers=console)
    asked = {**unavailable, **stale}
    answers = dict(zip(asked, await asyncio.gather(*(timed(r) for r in asked.values())), strict=True))
    for name, (resp, body, seconds) in answers.items():
        assert resp.status != 500, (name, body[:300])
        assert seconds < BOUND, (name, seconds)
    for name in unavailable:
        resp, body, _ = answers[name]
        assert resp.status == 503 and resp.headers["Retry-After"] == "5", (name, resp.status, body[:300])
    for name in ("api list", "api create", "report json", "never rendered feed"):
        error = json.loads(answers[name][1])["error"]
        assert error == {"code": "unavailable", "message": UNAVAILABLE_EN}, name
    zh = json.loads(answers["api zh"][1])["error"]["message"]
    assert zh != UNAVAILABLE_EN and re.search(r"[\u4e00-\u9fff]", zh), "in the user's language"
    for name in ("never rendered page", "console"):  # people get a page that tries again by itself
        resp, body, _ = answers[name]
        page = body.decode()
        assert resp.content_type == "text/html" and 'http-equiv="refresh"' not in page, name
        assert 'id="retry" data-seconds="5"' in page and "retry.js" in page, name  # stoppable (WCAG 2.2.1)
        assert UNAVAILABLE_EN in page and "Wait 5 s, then try again." in page, name
    form = answers["report form"][1].decode()
    assert 'http-equiv="refresh"' not in form and "send it again" in form, "a POST is not repeated blindly"
    assert json.loads(answers["open311 json"][1]) == [{"code": 503, "description": UNAVAILABLE_EN}]
    assert "<errors>" in answers["open311 xml"][1].decode() and "<code>503</code>" in answers["open311 xml"][1].decode()
    for name in ("sms", "telegram"):
        assert json.loads(answers[name][1])["error"]["code"] == "unavailable", name
    for path, was in seen.bodies.items():
        resp, body, _ = answers[path]
        assert resp.status == 200, (path, resp.status, body[:300])
        if path == "/screens/station-1":
            continue  # the kiosk's page holds no warning: it draws the JSON and the live stream
        assert resp.headers["X-Warncast-Stale"] == "1" and resp.headers["Warning"] == '110 - "Response is Stale"', path
        if path.startswith(("/feeds/", "/cap/")) or path.endswith(".txt"):
            assert body == was, f"{path}: the last rendering, as it was"
    for path in ("/", "/?lang=en", "/ with a session"):
        # The warnings page follows /live: it offers the latest once it can, never reloads under its reader.
        page = answers[path][1].decode()
        assert 'class="notice stale-notice"' in page and 'http-equiv="refresh"' not in page, path
        assert "public.js" in page, path
    page = answers[f"/warnings/{seen.warning_id}"][1].decode()
    assert 'class="notice stale-notice"' in page and 'http-equiv="refresh"' not in page
    assert page.count('id="retry" data-seconds="30"') == 1 and page.count("retry.js") == 1, "tries again, stoppably"
    assert "cannot reach its data right now" in answers["/?lang=en"][1].decode()
    assert "Red rainstorm warning" in answers["/?lang=en"][1].decode(), "the last known warnings"
    state = json.loads(answers["/screens/station-1.json"][1])
    assert state["stale"] is True and [w["id"] for w in state["warnings"]] == [seen.warning_id]
    assert state["labels"]["en"]["lost"] == "Connection to the server lost: showing the last known warnings."


async def check_back(client: TestClient, staff: Staff, seen: Before) -> None:
    """Redis is back: within a few seconds every answer is current again, not stale."""
    deadline = time.monotonic() + 15
    while True:
        resp = await client.get("/api/v1/warnings", headers=staff["drafter"])
        if resp.status == 200:
            break
        assert resp.status == 503 and time.monotonic() < deadline, resp.status
        await asyncio.sleep(0.2)
    live = await read_event(seen.events.content, within=10)  # the follower is back: screens are current
    assert live["stale"] is False and [w["id"] for w in live["warnings"]] == [seen.warning_id]
    for path in [*seen.bodies, "/feeds/warnings.rss?area=990102"]:
        resp = await client.get(path)
        assert resp.status == 200 and "X-Warncast-Stale" not in resp.headers and "Warning" not in resp.headers, path
        body = await resp.read()
        assert b"stale-notice" not in body, path
        if path in seen.bodies and (path.startswith(("/feeds/", "/cap/")) or path.endswith(".txt")):
            assert body == seen.bodies[path], path
    assert json.loads(await (await client.get("/screens/station-1.json")).read())["stale"] is False
    created = await client.post("/api/v1/reports", json=REPORT)
    assert created.status == 201, await created.text()
    console = await client.get("/console", headers={"Cookie": f"wc_session={seen.session}"}, allow_redirects=False)
    assert console.status == 200


async def test_killed_redis_answers_503_or_stale_then_recovers(client, services, staff, users, clock, own_redis):
    seen = await before(client, staff, users, clock)
    own_redis.kill()
    await check_away(client, staff, clock, seen)
    own_redis.start()  # its append-only file brings every warning back
    await check_back(client, staff, seen)
    seen.events.close()


async def test_hung_redis_answers_fast_then_recovers(client, services, staff, users, clock, own_redis):
    seen = await before(client, staff, users, clock)
    own_redis.hang()
    try:
        await check_away(client, staff, clock, seen)
    finally:
        own_redis.resume()
    await check_back(client, staff, seen)
    seen.events.close()


async def test_read_only_redis_in_a_failover_answers_writes_503(client, services, staff, clock, own_redis):
    """A primary demoted to replica mid-failover refuses writes (READONLY): writes answer 503 with
    Retry-After, reads go on."""
    if not isinstance(own_redis, RedisProcess):
        pytest.skip("a cluster's primaries are demoted by its own failover (tests/foundation/test_cluster.py)")
    admin = sync_redis.Redis(unix_socket_path=str(own_redis.socket))
    admin.replicaof("127.0.0.1", "1")  # a primary that is not there: the data stays, read-only
    try:
        created = await client.post("/api/v1/warnings?lang=en", json=warning_body(clock), headers=staff["drafter"])
        assert created.status == 503 and created.headers["Retry-After"] == "5", await created.text()
        assert (await created.json())["error"]["message"] == UNAVAILABLE_EN
        report = await client.post("/api/v1/reports", json=REPORT)
        assert report.status == 503 and report.headers["Retry-After"] == "5", await report.text()
        listed = await client.get("/api/v1/warnings", headers=staff["drafter"])
        assert listed.status == 200, await listed.text()
    finally:
        admin.replicaof("NO", "ONE")
        admin.close()
    created = await client.post("/api/v1/warnings", json=warning_body(clock), headers=staff["drafter"])
    assert created.status == 201, await created.text()


@pytest.mark.timeout(60)
async def test_kiosk_in_a_browser_keeps_its_warning_and_says_the_server_lost_its_data(
    browser,  # noqa: F811
    base_url,  # noqa: F811
    clock,
    own_redis,
):
    """The kiosk page in chromium: Redis killed, it keeps the warning on screen and says the
    connection to the server is lost; Redis back, the notice goes."""
    from foundation.areas.registry import store_areas
    from warncast.app_keys import SERVICES
    from warncast.demo_city import demo_areas

    base, server = base_url
    services = server.app[SERVICES]
    await store_areas(services.redis, demo_areas())
    await services.registry.refresh(services.redis)
    tokens = {name: await services.accounts.create_token(name, [name]) for name in ("drafter", "approver", "admin")}

    async def call(name: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with http.post(f"{base}{path}", json=body, headers={"Authorization": f"Bearer {tokens[name]}"}) as resp:
            assert resp.status in (200, 201), await resp.text()
            return await resp.json()  # type: ignore[no-any-return]

    async with ClientSession() as http:
        await call("admin", "/api/v1/screens", {"id": "plaza", "name": "Plaza", "area": "990101001001"})
        draft = await call("drafter", "/api/v1/warnings", warning_body(clock, grade="blue"))
        await call("drafter", f"/api/v1/warnings/{draft['id']}/submit", {})
        await call("approver", f"/api/v1/warnings/{draft['id']}/approve", {})
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    page = await context.new_page()
    await page.goto(f"{base}/screens/plaza")
    await page.wait_for_selector("body[data-warning-count='1']", timeout=5000)
    assert await page.locator("#status").is_hidden()
    own_redis.kill()
    await page.wait_for_selector("body[data-stale='1']", timeout=5000)
    # In the screen's first language (zh-CN, the default).
    assert await page.locator("#status").text_content() == "与服务器的连接已中断，当前显示最后获取的预警信息。"
    assert await page.get_attribute("body", "data-warning-count") == "1"
    assert await page.get_attribute("body", "data-warning") == draft["id"]
    own_redis.start()
    await page.wait_for_selector("body:not([data-stale])", timeout=15000)
    assert await page.locator("#status").is_hidden()
    assert await page.get_attribute("body", "data-warning-count") == "1"
    await context.close()
