"""Limits on public reads (a token bucket per client address in this process), live-stream caps, and
the client address behind trusted proxies.

The app's clock is the test's `clock`, frozen unless a test advances it, so buckets refill only when
a test says so: every count below is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from ipaddress import ip_network
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from foundation.settings import Settings, SettingsError
from tests.channels.test_screens import add_screen, read_event
from tests.citizen_report.test_reports import BODY, post_report
from tests.warncast.test_browser import browser  # noqa: F401
from tests.warncast.test_console import login
from warncast.web.app import create_app
from warncast.web.limits import AUTH_FAILURE_BURST, LIVE_STREAMS, PUBLIC_LIMITS
from warncast.web.requests import forwarded_client

CJK = re.compile(r"[\u4e00-\u9fff]")
TOO_MANY = "Too many requests from your address. Wait %(seconds)s s and try again."
TOO_MANY_STREAMS = "Too many live connections from your address (at most %(limit)s)."
PROXY = (ip_network("127.0.0.1/32"),)  # the test client connects from 127.0.0.1


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """Two requests at once per address, one more per second; tests change more by parametrizing."""
    return settings.with_(**{"public_rate": 1.0, "public_burst": 2, **getattr(request, "param", {})})


def limits(**changes: Any) -> Any:
    return pytest.mark.parametrize("settings", [changes], indirect=True, ids=["limits"])


def via(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def tracking_code(client: Any) -> str:
    resp = await post_report(client, BODY)  # a write: not a public read, spends nothing here
    assert resp.status == 201, await resp.text()
    return (await resp.json())["tracking_code"]


@pytest.mark.parametrize(
    "path, kind",
    [
        ("/feeds/warnings.atom", "json"),
        ("/feeds/cap.atom", "json"),
        ("/api/v1/warnings", "json"),
        ("/api/v1/reports/{code}", "json"),
        ("/", "html"),
        ("/report/{code}", "html"),
    ],
)
async def test_over_the_limit_answers_429_with_retry_after_in_the_users_language(client, services, clock, path, kind):
    path = path.format(code=await tracking_code(client))
    for _ in range(2):
        assert (await client.get(path)).status == 200
    en = await client.get(path, headers={"Accept-Language": "en"})
    zh = await client.get(path, headers={"Accept-Language": "zh-CN"})
    for resp in (en, zh):
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "1", "one token per second: one second to wait"
    english = services.catalogs.text("en", TOO_MANY, seconds=1)
    chinese = services.catalogs.text("zh_Hans", TOO_MANY, seconds=1)
    assert english == "Too many requests from your address. Wait 1 s and try again."
    if kind == "json":
        assert (await en.json())["error"] == {"code": "rate_limited", "message": english}
        assert (await zh.json())["error"] == {"code": "rate_limited", "message": chinese}
    else:
        page_en, page_zh = await en.text(), await zh.text()
        assert '<html lang="en">' in page_en and english in page_en
        assert '<html lang="zh-CN">' in page_zh and chinese in page_zh and "抱歉" in page_zh
        assert 'http-equiv="refresh"' not in page_en, "no reload the reader cannot stop (WCAG 2.2.1)"
        assert 'id="retry" data-seconds="1"' in page_en and "retry.js" in page_en, "a kiosk tries again by itself"
        assert 'id="retry-now"' in page_en, "without JavaScript, a link tries again"
    clock.advance(seconds=1)
    assert (await client.get(path)).status == 200, "a second later there is a token again"
    assert (await client.get(path)).status == 429, "only one"


@pytest.mark.parametrize("message", [TOO_MANY, TOO_MANY_STREAMS])
def test_the_limit_messages_are_in_chinese(services, message) -> None:
    """Fails until the lead has run `make translations` and translated the new strings."""
    assert CJK.search(services.catalogs.text("zh_Hans", message, seconds=1, limit=2))


async def test_open311_reads_are_limited_in_the_open311_format(client, services):
    for _ in range(2):
        assert (await client.get("/open311/v2/services.json")).status == 200
    resp = await client.get("/open311/v2/services.json?lang=en")
    assert resp.status == 429 and resp.headers["Retry-After"] == "1"
    assert await resp.json() == [{"code": 429, "description": services.catalogs.text("en", TOO_MANY, seconds=1)}]
    xml = await client.get("/open311/v2/discovery.xml", headers={"Accept-Language": "zh-CN"})
    assert xml.status == 429 and xml.headers["Content-Type"] == "text/xml; charset=utf-8"
    text = await xml.text()
    assert "<code>429</code>" in text and services.catalogs.text("zh_Hans", TOO_MANY, seconds=1) in text


async def test_staff_with_a_token_are_not_limited_nor_are_probes(client, services, staff):
    for _ in range(5):
        assert (await client.get("/api/v1/warnings", headers=staff["drafter"])).status == 200
        assert (await client.get("/feeds/warnings.rss", headers=staff["drafter"])).status == 200
    bogus = await client.get("/api/v1/warnings", headers={"Authorization": "Bearer not-a-token"})
    assert bogus.status == 401
    assert [(await client.get("/api/v1/warnings")).status for _ in range(3)] == [200, 200, 429], (
        "staff calls spent nothing of the address's allowance"
    )
    for probe in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(probe)).status == 200, f"{probe}: the operator's probes are never limited"
    assert (await client.get("/static/app.css")).status == 200, "nor static files"


async def test_guessing_api_tokens_is_refused_but_valid_tokens_are_not(client, services, staff, clock):
    bad = {"Authorization": "Bearer guess"}
    statuses = [
        (await client.post("/api/v1/warnings", json={}, headers=bad)).status for _ in range(AUTH_FAILURE_BURST + 2)
    ]
    assert statuses == [401] * AUTH_FAILURE_BURST + [429, 429]
    refused = await client.get("/api/v1/warnings", headers={**bad, "Accept-Language": "en"})
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    # A valid token from the same address (behind the same NAT) is let in all the same.
    assert (await client.get("/api/v1/warnings", headers=staff["drafter"])).status == 200
    clock.advance(seconds=10)
    assert (await client.post("/api/v1/warnings", json={}, headers=bad)).status == 401


async def test_a_session_is_not_limited(client, services, users):
    await login(client, "drafter", users["drafter"])  # spends one token: the form is a public read
    for _ in range(5):
        assert (await client.get("/api/v1/warnings")).status == 200
        assert (await client.get("/")).status == 200
    client.session.cookie_jar.clear()
    assert (await client.get("/")).status == 200
    assert (await client.get("/")).status == 429


async def test_a_forged_forwarded_for_from_an_untrusted_peer_is_ignored(client, services):
    assert (await client.get("/feeds/warnings.atom", headers=via("203.0.113.1"))).status == 200
    assert (await client.get("/feeds/warnings.atom", headers=via("203.0.113.2"))).status == 200
    dodge = await client.get("/feeds/warnings.atom", headers=via("203.0.113.3"))
    assert dodge.status == 429, "the peer 127.0.0.1 is no trusted proxy: its X-Forwarded-For is not believed"


@limits(trusted_proxies=PROXY)
async def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_bucket(client, services):
    async def status(forwarded: str | None) -> int:
        return (await client.get("/api/v1/warnings", headers=via(forwarded) if forwarded else {})).status

    assert [await status("203.0.113.1") for _ in range(3)] == [200, 200, 429]
    assert await status("203.0.113.2") == 200, "another client behind the same proxy"
    assert await status("198.51.100.7, 203.0.113.1") == 429, "hops left of the proxy's are the client's own words"
    assert await status(None) == 200, "the proxy's own requests count for the proxy"
    # IPv6 clients are counted per /64
    assert [await status("2001:db8:1::1"), await status("2001:db8:1::2")] == [200, 200]
    assert await status("2001:db8:1::3") == 429
    assert await status("2001:db8:2::1") == 200


@limits(trusted_proxies=PROXY)
async def test_intake_and_console_see_the_forwarded_address(client, services, users):
    services.reports.config = services.reports.config.__class__(per_ip=(1, 600))
    first = await client.post("/api/v1/reports", json=BODY, headers=via("203.0.113.1"))
    assert first.status == 201
    again = await client.post("/api/v1/reports", json=BODY, headers=via("203.0.113.1"))
    assert again.status == 429 and 1 <= int(again.headers["Retry-After"]) <= 600
    other = await client.post("/api/v1/reports", json=BODY, headers=via("203.0.113.2"))
    assert other.status == 201, "intake's per-IP limit counts the client, not the proxy"
    form = await (await client.get("/console/login")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    failed = {"username": "chief", "password": "wrong", "csrf_token": csrf}
    assert (await client.post("/console/login", data=failed, headers=via("203.0.113.9"))).status == 401
    entries = await services.audit.entries(0, -1)
    assert [e["details"]["client"] for e in entries if e["action"] == "login_failed"] == ["203.0.113.9"]


@limits(trusted_proxies=PROXY, public_max_ips=2)
async def test_at_most_max_ips_addresses_are_remembered_least_recently_seen_first_out(client, services):
    buckets = client.app[PUBLIC_LIMITS]

    async def status(address: str) -> int:
        return (await client.get("/feeds/warnings.rss", headers=via(address))).status

    assert [await status("192.0.2.1") for _ in range(3)] == [200, 200, 429]
    assert await status("192.0.2.2") == 200
    assert await status("192.0.2.1") == 429  # seen again: now the most recent
    assert await status("192.0.2.3") == 200  # forgets 192.0.2.2, the stalest
    assert len(buckets) == 2
    assert await status("192.0.2.1") == 429, "a recently seen address is kept, with its empty bucket"
    for address in ("192.0.2.4", "192.0.2.5"):
        assert await status(address) == 200
    assert len(buckets) == 2
    assert await status("192.0.2.1") == 200, "forgotten at last: it starts again with a full bucket"


@contextlib.asynccontextmanager
async def served(settings: Settings, clock: Any) -> AsyncIterator[tuple[web.Application, str]]:
    """The app as `warncast serve` runs it: unlike the test client's server, aiohttp does not cancel
    a handler whose client went away, so a live stream learns of it only when it next writes."""
    app = create_app(settings, clock=clock)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield app, f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@limits(trusted_proxies=PROXY, sse_per_ip=2, public_burst=100)
async def test_live_streams_are_capped_per_address(client, services, staff, settings, clock):
    await add_screen(client, staff)  # in the shared redis; the served app below sees it
    async with served(settings, clock) as (app, base), aiohttp.ClientSession() as http:
        url = f"{base}/screens/station-1/events"
        streams = [await http.get(url, headers=via("203.0.113.1")) for _ in range(2)]
        for stream in streams:
            assert stream.status == 200
            await read_event(stream.content)
        refused = await http.get(url, headers={**via("203.0.113.1"), "Accept-Language": "en"})
        assert refused.status == 429 and refused.headers["Retry-After"] == "60"
        assert services.catalogs.text("en", TOO_MANY_STREAMS, limit=2) in await refused.text()
        other = await http.get(url, headers=via("203.0.113.2"))
        assert other.status == 200, "another address behind the same proxy has its own allowance"
        assert (await http.get(f"{base}/screens/station-1.json", headers=via("203.0.113.1"))).status == 200
        streams[0].close()  # a screen goes away: its place is free once its connection is gone
        for _ in range(100):
            again = await http.get(url, headers=via("203.0.113.1"))
            if again.status == 200:
                break
            await asyncio.sleep(0.02)
        assert again.status == 200, "not held until the next ping"
        assert (await http.get(url, headers=via("203.0.113.1"))).status == 429, "still two at most"
        gone = await http.delete(f"{base}/api/v1/screens/station-1", headers=staff["admin"])
        assert gone.status == 200
        for resp in (streams[1], other, again):  # the server ends every stream of a deleted screen
            await asyncio.wait_for(resp.content.read(), 5)
            assert resp.content.at_eof()
        cap = app[LIVE_STREAMS]
        for _ in range(100):
            if cap.count("203.0.113.1") == cap.count("203.0.113.2") == 0:
                break
            await asyncio.sleep(0.02)
        assert cap.count("203.0.113.1") == cap.count("203.0.113.2") == 0, "ended streams free their places"


def test_forwarded_client() -> None:
    trusted = (ip_network("10.0.0.0/8"), ip_network("fd00::/8"))
    assert forwarded_client("192.0.2.1", ["203.0.113.5"], trusted) == "192.0.2.1", "untrusted peer"
    assert forwarded_client("10.0.0.1", [], trusted) == "10.0.0.1", "no header: the proxy itself"
    assert forwarded_client("10.0.0.1", ["203.0.113.5, 10.0.0.7"], trusted) == "203.0.113.5", "two proxies"
    assert forwarded_client("10.0.0.1", ["1.1.1.1, 203.0.113.5"], trusted) == "203.0.113.5", "right-most untrusted"
    assert forwarded_client("10.0.0.1", ["1.1.1.1", "203.0.113.5"], trusted) == "203.0.113.5", "header lines in order"
    assert forwarded_client("10.0.0.1", ["203.0.113.5:4711"], trusted) == "203.0.113.5", "with a port"
    assert forwarded_client("10.0.0.1", ["[2001:db8::5]:443"], trusted) == "2001:db8::5"
    assert forwarded_client("::ffff:10.0.0.1", ["203.0.113.5"], trusted) == "203.0.113.5", "IPv4-mapped peer"
    assert forwarded_client("fd00::1", ["2001:db8::5"], trusted) == "2001:db8::5"
    assert forwarded_client("10.0.0.1", ["10.0.0.3, 10.0.0.2"], trusted) == "10.0.0.3", "all trusted: the first"
    assert forwarded_client("10.0.0.1", ["<script>, 10.0.0.2"], trusted) == "10.0.0.2", "garbage is not an address"
    assert forwarded_client("", ["203.0.113.5"], trusted) == "", "no peer address (a unix socket)"


def test_settings_from_the_environment(tmp_path) -> None:
    env = {"WARNCAST_DATA_DIR": str(tmp_path), "WARNCAST_SECRET_KEY": "k"}
    default = Settings.from_env(env)
    assert (default.trusted_proxies, default.public_rate, default.public_burst) == ((), 20.0, 60)
    assert (default.public_max_ips, default.sse_per_ip) == (50_000, 50)
    chosen = Settings.from_env(
        {
            **env,
            "WARNCAST_TRUSTED_PROXIES": " 10.0.0.0/8, 192.0.2.7 ,fd00::/8,",
            "WARNCAST_PUBLIC_RATE": "5",
            "WARNCAST_PUBLIC_BURST": "10",
            "WARNCAST_PUBLIC_MAX_IPS": "1000",
            "WARNCAST_SSE_PER_IP": "200",
        }
    )
    assert chosen.trusted_proxies == (ip_network("10.0.0.0/8"), ip_network("192.0.2.7/32"), ip_network("fd00::/8"))
    assert (chosen.public_rate, chosen.public_burst, chosen.public_max_ips, chosen.sse_per_ip) == (5.0, 10, 1000, 200)
    with pytest.raises(SettingsError, match="WARNCAST_TRUSTED_PROXIES: '10.0.0.1/8'"):
        Settings.from_env({**env, "WARNCAST_TRUSTED_PROXIES": "10.0.0.1/8"})
    with pytest.raises(SettingsError, match="WARNCAST_TRUSTED_PROXIES: 'proxy.local'"):
        Settings.from_env({**env, "WARNCAST_TRUSTED_PROXIES": "proxy.local"})
    with pytest.raises(SettingsError, match="WARNCAST_PUBLIC_BURST"):
        Settings.from_env({**env, "WARNCAST_PUBLIC_BURST": "0"})
    with pytest.raises(SettingsError, match="WARNCAST_PUBLIC_RATE"):
        Settings.from_env({**env, "WARNCAST_PUBLIC_RATE": "-1"})


async def test_openapi_documents_429_on_public_operations(client, services):
    doc = await (await client.get("/api/v1/openapi.json")).json()
    public = doc["paths"]["/api/v1/warnings"]["get"]["responses"]["429"]
    assert "Retry-After" in public["headers"]
    assert "429" in doc["paths"]["/api/v1/reports"]["post"]["responses"], "intake's limits"
    assert "429" not in doc["paths"]["/api/v1/warnings"]["post"]["responses"], "staff are not limited"


async def test_a_refused_page_tries_again_by_itself_unless_the_reader_stops_it(client, services, clock, browser):  # noqa: F811
    base = str(client.make_url("/")).rstrip("/")
    context = await browser.new_context()
    page = await context.new_page()
    for _ in range(2):
        assert (await client.get("/")).status == 200  # the address's two reads are spent
    await page.goto(f"{base}/?lang=en")
    assert await page.locator("#retry").count() == 1
    await page.click("#retry-stop")
    clock.advance(seconds=5)  # tokens again: a reload would now succeed
    await asyncio.sleep(2.5)
    assert await page.locator("#retry").count() == 1, "stopped: the page stays as the reader left it"
    assert "Stopped" in await page.locator("[data-countdown]").text_content()
    await page.click("#retry-now")
    await page.wait_for_selector("#retry", state="detached")
    for _ in range(3):
        await client.get("/")  # spent again
    await page.goto(f"{base}/?lang=en")
    assert "Trying again in" in await page.locator("[data-countdown]").text_content()
    clock.advance(seconds=5)
    await page.wait_for_selector("#retry", state="detached", timeout=10_000)  # reloaded by itself
    await context.close()
