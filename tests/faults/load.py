"""Load and measurement for the fault scenarios (no pytest): seeding the city and its subscribers,
publishing a red warning over the API, citizen-report intake with Idempotency-Key retries, public
page reads, and the stand-in's view of the fan-out. Everything goes to 127.0.0.1, every load is
finite and stops by itself, and every HTTP answer is counted."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import redis as sync_redis
import redis.asyncio as aioredis

from foundation.access.auth import Accounts
from foundation.areas.registry import store_areas
from foundation.store import keys
from publisher.subscribers import Subscriber
from warncast.demo_city import demo_areas

TZ = ZoneInfo("Asia/Shanghai")
REPORT = {"category": "waterlogging", "description": "Underpass flooded (fault suite)", "lat": 30.666, "lon": 121.0625}
PUBLIC_READS = ("/", "/feeds/warnings.atom", "/api/v1/warnings?active=true")


# Seeding


@dataclass
class City:
    token: str  # a drafter + chief API token
    phones: list[str]


async def seed(redis_url: str, recipients: int, *, replicas: int = 0) -> City:
    """The demo city's areas, a chief's API token and `recipients` active SMS subscribers spread
    over its communities, written straight into Redis before any warncast process starts."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        areas = demo_areas()
        await store_areas(client, areas)
        token = await Accounts(client, 8192).create_token("fault-chief", ["drafter", "chief"])
        communities = [a["code"] for a in areas if a["level"] == "community"]
        phones = [f"+86139{i:08d}" for i in range(recipients)]
        for start in range(0, recipients, 5000):
            async with client.pipeline(transaction=False) as pipe:
                for i in range(start, min(recipients, start + 5000)):
                    area = communities[i % len(communities)]
                    lang = "zh_Hans" if i % 3 else "en"
                    sub = Subscriber("sms", phones[i], status="active", areas=[area], lang=lang, source="faults")
                    pipe.hset(keys.subscriber("sms", phones[i]), mapping=sub.to_hash())  # type: ignore[arg-type]
                    pipe.sadd(keys.area_subscribers(area, "sms", sub.min_grade), phones[i])
                await pipe.execute()
        if replicas:
            await client.wait(replicas, 10_000)
        return City(token, phones)
    finally:
        await client.aclose()


# Answers


@dataclass
class Answers:
    """Every answer to the requests of one load (or of a scenario's own calls)."""

    statuses: Counter[int] = field(default_factory=Counter)
    unanswered: Counter[str] = field(default_factory=Counter)  # why no answer came
    no_retry_after: int = 0  # 503s without Retry-After
    server_errors: list[str] = field(default_factory=list)  # "<status> <path>" of the first 5xx other than 503

    def count(self, status: int, path: str, headers: object = None) -> None:
        self.statuses[status] += 1
        if status == 503 and headers is not None and "Retry-After" not in headers:  # type: ignore[operator]
            self.no_retry_after += 1
        if status >= 500 and status != 503 and len(self.server_errors) < 10:
            self.server_errors.append(f"{status} {path}")

    def failed(self, exc: BaseException) -> None:
        self.unanswered[type(exc).__name__] += 1

    def merge(self, other: Answers) -> None:
        self.statuses.update(other.statuses)
        self.unanswered.update(other.unanswered)
        self.no_retry_after += other.no_retry_after
        self.server_errors.extend(other.server_errors[: max(0, 10 - len(self.server_errors))])

    @property
    def five_hundreds(self) -> int:
        """5xx answers other than 503 (503 with Retry-After is the answer while Redis is away)."""
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)


def session(limit: int = 64, timeout: float = 15.0) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, force_close=False),
        timeout=aiohttp.ClientTimeout(total=timeout),
    )


# Publishing


def red_warning(area: str = "990100") -> dict[str, object]:
    return {
        "grade": "red",
        "event": "rainstorm",
        "category": "Met",
        "areas": [area],
        "expires": (datetime.now(TZ) + timedelta(hours=6)).replace(microsecond=0).isoformat(),
        "info": {
            "zh-CN": {"headline": "全市暴雨红色预警", "description": "特大暴雨。", "instruction": "停止户外活动。"},
            "en": {
                "headline": "City-wide red rainstorm warning",
                "description": "Extreme rain.",
                "instruction": "Stop outdoor activities.",
            },
        },
    }


async def publish_red(http: aiohttp.ClientSession, base: str, token: str, answers: Answers) -> str:
    """Create and publish (the chief's fast path) a city-wide red warning; returns its id once the
    publication answered 200."""
    headers = {"Authorization": f"Bearer {token}"}
    async with http.post(f"{base}/api/v1/warnings", json=red_warning(), headers=headers) as resp:
        answers.count(resp.status, "/api/v1/warnings", resp.headers)
        body = await resp.json(content_type=None)
        if resp.status != 201:
            raise RuntimeError(f"create warning: {resp.status} {body}")
    message_id = body["id"]
    path = f"/api/v1/warnings/{message_id}/publish"
    async with http.post(f"{base}{path}", json={"reason": "fault suite"}, headers=headers) as resp:
        answers.count(resp.status, path, resp.headers)
        body = await resp.json(content_type=None)
        if resp.status != 200 or body.get("state") != "published":
            raise RuntimeError(f"publish: {resp.status} {body}")
    return message_id


# Intake


def client_address(i: int) -> str:
    """One client address per report (intake's per-IP limit is per person, not per test)."""
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


@dataclass
class Intake:
    """`reports` JSON reports to POST /api/v1/reports, started at `rate` per second by `clients`
    concurrent clients; each is retried with its own Idempotency-Key (honouring Retry-After) until
    it is acknowledged (201, or 200 for a replay) or `give_up_after` seconds have passed."""

    base: str
    reports: int
    rate: float
    clients: int = 8
    give_up_after: float = 60.0
    run: str = field(default_factory=lambda: secrets.token_hex(4))
    answers: Answers = field(default_factory=Answers)
    acked: dict[int, str] = field(default_factory=dict)  # report -> tracking code of its first acknowledgement
    codes: dict[int, set[str]] = field(default_factory=dict)  # report -> every tracking code answered for it
    acked_at: list[float] = field(default_factory=list)  # wall-clock times of the acknowledgements
    refused: int = 0  # answered 4xx other than 429: never acknowledged
    given_up: int = 0
    attempted: int = 0
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def key(self, i: int) -> str:
        return f"faults-{self.run}-{i}"

    async def go(self) -> Intake:
        started = time.monotonic()
        todo = iter(range(self.reports))
        async with session(self.clients) as http:

            async def client() -> None:
                for i in todo:
                    delay = started + i / self.rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await self.submit(http, i)

            try:
                await asyncio.gather(*(client() for _ in range(self.clients)))
            finally:
                self.finished.set()
        return self

    async def submit(self, http: aiohttp.ClientSession, i: int) -> None:
        self.attempted += 1
        headers = {"Idempotency-Key": self.key(i), "X-Forwarded-For": client_address(i)}
        give_up = time.monotonic() + self.give_up_after
        while time.monotonic() < give_up:
            wait = 0.2
            try:
                async with http.post(f"{self.base}/api/v1/reports", json=REPORT, headers=headers) as resp:
                    self.answers.count(resp.status, "/api/v1/reports", resp.headers)
                    body = await resp.json(content_type=None) if resp.status in (200, 201) else None
                    if body is not None:
                        code = body["tracking_code"]
                        self.codes.setdefault(i, set()).add(code)
                        self.acked.setdefault(i, code)
                        self.acked_at.append(time.time())
                        return
                    if resp.status in (429, 503):
                        wait = min(2.0, float(resp.headers.get("Retry-After", "0.2") or 0.2))
                    elif resp.status < 500:
                        self.refused += 1
                        return
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                self.answers.failed(exc)
            await asyncio.sleep(wait)
        self.given_up += 1

    @property
    def acknowledged(self) -> int:
        return len(self.acked)

    def first_ack_after(self, t: float) -> float | None:
        later = [at for at in self.acked_at if at >= t]
        return min(later) if later else None

    @property
    def duplicates_answered(self) -> int:
        """Reports answered with more than one tracking code (a retry filed twice)."""
        return sum(len(codes) - 1 for codes in self.codes.values())

    async def lost(self, answers: Answers, clients: int = 16) -> int:
        """Acknowledged reports that are not readable by their tracking code now."""
        codes = iter(list(self.acked.values()))
        missing = 0
        async with session(clients) as http:

            async def reader() -> None:
                nonlocal missing
                for code in codes:
                    for _attempt in range(20):  # a 503 or no answer is asked again; 404 is final
                        try:
                            path = f"/api/v1/reports/{code}"
                            async with http.get(f"{self.base}{path}", headers={"X-Forwarded-For": "10.255.0.1"}) as r:
                                answers.count(r.status, "/api/v1/reports/{code}", r.headers)
                                if r.status in (200, 404):
                                    missing += r.status == 404
                                    break
                        except (TimeoutError, aiohttp.ClientError) as exc:
                            answers.failed(exc)
                        await asyncio.sleep(0.2)
                    else:
                        missing += 1

            await asyncio.gather(*(reader() for _ in range(clients)))
        return missing

    def stored_reports(self, client: sync_redis.Redis) -> int:
        return int(client.hlen(keys.REPORTS_BY_TRACKING))


# Public reads


@dataclass
class Reads:
    """GETs of public outputs at `rate` per second until `stop` is set (or `limit` seconds pass),
    each answer kept with its time, to see what readers got during a fault."""

    base: str
    paths: tuple[str, ...]
    rate: float = 20.0
    limit: float = 120.0
    answers: Answers = field(default_factory=Answers)
    log: list[tuple[float, float, str, int]] = field(default_factory=list)  # (sent, answered, path, status or 0)
    stale: int = 0  # answers marked stale (`Warning: 110` or `X-Warncast-Stale`): the last rendering
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def go(self) -> Reads:
        started = time.monotonic()
        async with session(8, timeout=15.0) as http:
            tasks: set[asyncio.Task[None]] = set()
            n = 0
            while not self.stop.is_set() and time.monotonic() - started < self.limit:
                path = self.paths[n % len(self.paths)]
                task = asyncio.create_task(self.read(http, path))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), 1 / self.rate)
            if tasks:
                await asyncio.gather(*tasks)
        return self

    async def read(self, http: aiohttp.ClientSession, path: str) -> None:
        sent = time.time()
        status = 0
        try:
            async with http.get(f"{self.base}{path}") as resp:
                await resp.read()
                status = resp.status
                self.answers.count(resp.status, path, resp.headers)
                if resp.headers.get("Warning", "").startswith("110") or resp.headers.get("X-Warncast-Stale"):
                    self.stale += 1
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.answers.failed(exc)
        self.log.append((sent, time.time(), path, status))

    def during(self, start: float, end: float) -> Counter[tuple[str, int]]:
        """(path, status) of the reads sent between `start` and `end` (wall clock); status 0: no answer."""
        return Counter((path, status) for sent, _, path, status in self.log if start <= sent <= end)


# Fan-out, as the stand-in saw it


@dataclass
class Fanout:
    twilio: str
    phones: list[str]
    redis: Callable[[], sync_redis.Redis]  # a client of the current primary

    async def stats(self, http: aiohttp.ClientSession) -> dict[str, int]:
        async with http.get(f"{self.twilio}/stats") as resp:
            return await resp.json()

    async def counts(self, http: aiohttp.ClientSession) -> dict[str, int]:
        async with http.get(f"{self.twilio}/counts") as resp:
            return (await resp.json())["counts"]

    async def first_after(self, http: aiohttp.ClientSession, t: float) -> float | None:
        async with http.get(f"{self.twilio}/first-after", params={"t": str(t)}) as resp:
            return (await resp.json())["at"]

    async def missing(self, http: aiohttp.ClientSession, numbers: list[str]) -> int:
        async with http.post(f"{self.twilio}/missing", json=numbers) as resp:
            return (await resp.json())["missing"]

    async def wait_reached(self, http: aiohttp.ClientSession, fraction: float, within: float) -> int:
        """Until at least `fraction` of the recipients have a message (or `within` seconds have
        passed); returns how many have."""
        deadline = time.monotonic() + within
        while True:
            reached = (await self.stats(http))["recipients"]
            if reached >= fraction * len(self.phones) or time.monotonic() > deadline:
                return reached
            await asyncio.sleep(0.02)

    def dispatch_idle(self) -> bool:
        """Nothing queued, pending or waiting for a retry on the dispatch (False when Redis is away)."""
        try:
            client = self.redis()
            try:
                queued = client.xlen(keys.DISPATCH_QUEUE)
                retrying = client.zcard(keys.DISPATCH_RETRY)
                try:
                    pending = client.xpending(keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP)["pending"]
                except sync_redis.ResponseError:  # no group yet
                    pending = 0
                events = client.xpending(keys.WARNINGS_EVENTS, keys.PLANNER_GROUP)["pending"]
            finally:
                client.close()
        except sync_redis.RedisError:
            return False
        return not (queued or retrying or pending or events)

    async def wait_complete(self, http: aiohttp.ClientSession, within: float, settle: float = 1.5) -> float | None:
        """Until every recipient has a message, the dispatch is idle and the stand-in has accepted
        nothing more for `settle` seconds (so late duplicates are counted). Returns the wall time at
        which the last recipient was first reached, or None if that is not so `within` seconds."""
        deadline = time.monotonic() + within
        complete_at: float | None = None
        last_received, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            stats = await self.stats(http)
            if stats["received"] != last_received:
                last_received, quiet_since = stats["received"], time.monotonic()
            if stats["recipients"] >= len(self.phones) and complete_at is None:
                complete_at = time.time()
            idle = await asyncio.to_thread(self.dispatch_idle)
            if complete_at is not None and idle and time.monotonic() - quiet_since >= settle:
                return complete_at
            await asyncio.sleep(0.1)
        return None

    async def outcome(self, http: aiohttp.ClientSession) -> tuple[int, int]:
        """(lost, duplicates): subscribers without a message, and messages beyond one per subscriber."""
        counts = await self.counts(http)
        lost = sum(1 for phone in self.phones if not counts.get(phone))
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
        strangers = set(counts) - set(self.phones)
        if strangers:
            raise AssertionError(f"messages to numbers nobody subscribed: {sorted(strangers)[:5]}")
        return lost, duplicates


def pending_of(connect: Callable[[], sync_redis.Redis], consumer: str) -> list[str]:
    """The recipients of the dispatch segments a consumer holds unacknowledged."""
    client = connect()
    try:
        pending = client.xpending_range(keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP, "-", "+", 1000, consumername=consumer)
        addresses: list[str] = []
        for entry in pending:
            for _id, fields in client.xrange(keys.DISPATCH_QUEUE, entry["message_id"], entry["message_id"]):
                addresses += [a for a in fields.get("to", "").split("\n") if a]
        return addresses
    except sync_redis.ResponseError:
        return []
    finally:
        client.close()


def live_workers(connect: Callable[[], sync_redis.Redis]) -> set[str]:
    """The ids of the dispatch workers whose heartbeat is current (a worker's id is its consumer name)."""
    prefix = keys.worker_heartbeat("")
    client = connect()
    try:
        return {key[len(prefix) :] for key in client.scan_iter(match=keys.worker_heartbeat("*"), count=1000)}
    finally:
        client.close()
