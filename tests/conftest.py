"""Test fixtures: one real redis-server (the embedded binary) per session, a clean db per test,
the real app built by create_app, and operators of every role."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
import redis as sync_redis
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from redis.asyncio.cluster import RedisCluster

from foundation.areas.registry import store_areas
from foundation.settings import Settings
from foundation.store.connection import redis_server_binary
from tests.redis_cluster import LocalCluster
from tests.standins.twilio import TwilioStandIn
from warncast.app_keys import SERVICES
from warncast.demo_city import demo_areas
from warncast.services import Services
from warncast.web.app import create_app

TZ = ZoneInfo("Asia/Shanghai")
ROLE_USERS = {
    "drafter": ["drafter"],
    "drafter2": ["drafter"],
    "approver": ["approver"],
    "approver2": ["approver"],
    "chief": ["chief"],
    "chief2": ["chief"],
    "triage": ["triage"],
    "admin": ["admin"],
    "sensor": ["sensor"],
}


# Every test that touches Redis runs twice: on one redis-server and on a 3-primary Redis Cluster
# (WARNCAST_TEST_STORES=standalone runs only the first, e.g. while working on something else).
STORES = [kind.strip() for kind in os.environ.get("WARNCAST_TEST_STORES", "standalone,cluster").split(",")]


@dataclass
class RedisStore:
    """The real Redis of a test session: `url` is what REDIS_URL would say."""

    kind: str  # standalone | cluster
    url: str
    cluster: LocalCluster | None = None

    def flush(self) -> None:
        if self.cluster is not None:
            self.cluster.flush()
        else:
            client = sync_redis.Redis.from_url(self.url)
            client.flushall()
            client.close()

    def async_client(self) -> aioredis.Redis:
        """A client of the kind the service would make for `url` (the tests' own reads and writes)."""
        if self.cluster is not None:
            return cast(aioredis.Redis, RedisCluster.from_url(self.url, decode_responses=True))
        return aioredis.from_url(self.url, decode_responses=True)


@pytest.fixture(scope="session", params=STORES)
def redis_store(request: pytest.FixtureRequest) -> Iterator[RedisStore]:
    if request.param == "cluster":
        cluster = LocalCluster().start()
        yield RedisStore("cluster", cluster.url, cluster)
        cluster.stop()
        return
    directory = Path(tempfile.mkdtemp(prefix="wc-redis-"))
    sock = directory / "redis.sock"
    proc = subprocess.Popen(
        [
            str(redis_server_binary()),
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "no",
            "--loglevel",
            "warning",
        ]
    )
    deadline = time.monotonic() + 10
    while not sock.exists():
        assert proc.poll() is None, "redis-server exited"
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.02)
    yield RedisStore("standalone", f"unix://{sock}")
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def redis_socket(redis_store: RedisStore) -> str:
    """The session's Redis, emptied for this test: its URL."""
    redis_store.flush()
    return redis_store.url


@dataclass
class Clock:
    """The time the app sees; tests move it forward instead of sleeping."""

    now: datetime = field(default_factory=lambda: datetime.now(TZ).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(redis_socket: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_socket,
        data_dir=tmp_path,
        secret_key="test-secret",
        log_json=False,
        run_scheduler=False,
        run_workers=False,  # tests drive workers in burst mode (Worker.run_once)
        password_memory_kib=8192,  # the minimum we allow: fast tests, same algorithm
        public_url="http://warncast.test",
        # A loaded 2-core machine can stall a cluster node past the 2 s default; the tests of a hung
        # Redis set their own timeout.
        redis_timeout=5.0,
    )


@dataclass
class Staff:
    """Bearer-token headers per operator name (see ROLE_USERS)."""

    tokens: dict[str, dict[str, str]]

    def __getitem__(self, name: str) -> dict[str, str]:
        return self.tokens[name]


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings, clock: Clock) -> TestClient:
    return await aiohttp_client(create_app(settings, clock=clock))


@pytest.fixture
async def services(client: TestClient) -> AsyncIterator[Services]:
    svc = client.app[SERVICES]
    await store_areas(svc.redis, demo_areas())
    await svc.registry.refresh(svc.redis)
    yield svc


@pytest.fixture
async def staff(services: Services) -> Staff:
    """API tokens named like the operators (cheap: no password hashing)."""
    tokens = {}
    for name, roles in ROLE_USERS.items():
        tokens[name] = {"Authorization": f"Bearer {await services.accounts.create_token(name, roles)}"}
    return Staff(tokens)


@pytest.fixture
async def users(services: Services) -> dict[str, str]:
    """Console users of every role; name -> password."""
    passwords = {}
    for name, roles in ROLE_USERS.items():
        passwords[name] = f"{name}-password"
        await services.accounts.create_user(name, roles, passwords[name])
    return passwords


def warning_body(clock: Clock, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "grade": "red",
        "event": "rainstorm",
        "category": "Met",
        "areas": ["990101"],
        "expires": (clock.now + timedelta(hours=6)).isoformat(),
        "info": {
            "zh-CN": {
                "headline": "滨江区暴雨红色预警",
                "description": "预计3小时内降雨量将达100毫米以上。",
                "instruction": "停止户外活动，远离低洼地带。",
            },
            "en": {
                "headline": "Red rainstorm warning",
                "description": "Over 100 mm of rain expected within 3 hours.",
                "instruction": "Stop outdoor activities.",
            },
        },
    }
    body.update(overrides)
    return body


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioStandIn]:
    """A Twilio Messages API stand-in; tests that send SMS point TWILIO_API_BASE at it."""
    async with TwilioStandIn("ACtest", "secret") as standin:
        yield standin
