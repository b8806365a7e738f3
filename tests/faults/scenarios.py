"""The six fault scenarios, each an async function that builds its deployment from real processes,
runs the load, injects the fault, waits for the service to recover, and returns its `Figures`.
The tests (tests/faults/test_faults.py) run them small and assert on the figures; the benchmark
(benchmarks/faults.py) runs them at full size and prints them.

"Recovered" is measured from the end of the fault (Redis restarted, SIGCONT, the worker or the
Sentinel primary killed: the rest of the deployment must heal by itself, serve restarted) to the
first thing the fault had interrupted done again: a report acknowledged, a message accepted by the
stand-in, or, for the worker kill, the last recipient of the killed worker's segments reached.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis as sync_redis

from tests.faults.load import (
    PUBLIC_READS,
    Answers,
    City,
    Fanout,
    Intake,
    Reads,
    live_workers,
    pending_of,
    publish_red,
    seed,
    session,
)
from tests.faults.processes import (
    MASTER_NAME,
    Processes,
    RedisServer,
    SentinelSet,
    TwilioProcess,
    Warncast,
    free_port,
    readyz,
    wait_until,
    warncast_env,
)


@dataclass(frozen=True)
class Sizes:
    recipients: int = 300
    reports: int = 300
    stop_seconds: float = 5.0  # SIGSTOP of Redis
    down_seconds: float = 1.0  # between SIGKILL of Redis and its restart
    sms_rate: float = 50.0  # WARNCAST_SMS_RATE: the fan-out takes recipients / sms_rate seconds
    concurrency: int = 8  # WARNCAST_DISPATCH_CONCURRENCY: sends in flight per worker
    intake_rate: float = 40.0  # reports started per second
    intake_clients: int = 8
    settle_timeout: float = 75.0  # seconds a scenario may take to finish after its fault


TEST = Sizes()
BENCHMARK = Sizes(
    recipients=20_000,
    reports=10_000,
    stop_seconds=15.0,
    sms_rate=1000.0,
    concurrency=32,
    intake_rate=300.0,
    intake_clients=32,
    settle_timeout=300.0,
)


@dataclass
class Figures:
    scenario: str
    reports_acked: int = 0
    reports_lost: int = 0
    report_duplicates: int = 0
    recipients: int = 0  # subscribers of the warnings whose publication was acknowledged
    recipients_lost: int = 0
    sms_duplicates: int = 0
    disrupted_workers: int = 0  # dispatch workers that lost Redis or died: the duplicate bound counts them
    answers: Answers = field(default_factory=Answers)
    fault_at_fraction: float | None = None  # how far the interrupted work had got when the fault hit
    recover_s: float | None = None
    seconds: float = 0.0
    restarted: list[str] = field(default_factory=list)  # processes that died or were replaced by themselves
    not_ready: list[str] = field(default_factory=list)  # serve processes whose /readyz is not 200 at the end
    problems: list[str] = field(default_factory=list)  # what the scenario itself found wrong
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def acknowledged(self) -> int:
        return self.reports_acked + self.recipients

    @property
    def lost(self) -> int:
        return self.reports_lost + self.recipients_lost

    @property
    def duplicates(self) -> int:
        return self.report_duplicates + self.sms_duplicates

    def line(self) -> str:
        recover = "never" if self.recover_s is None else f"{self.recover_s:.2f} s"
        parts = [
            f"scenario={self.scenario}",
            f"acknowledged={self.acknowledged} (reports {self.reports_acked}, recipients {self.recipients})",
            f"lost={self.lost}",
            f"duplicates={self.duplicates} (reports {self.report_duplicates}, sms {self.sms_duplicates})",
            f"5xx={self.answers.five_hundreds}",
            f"503={self.answers.statuses[503]}",
            f"unanswered={sum(self.answers.unanswered.values())}",
            f"recover={recover}",
            f"fault_at={self.fault_at_fraction}",
            f"took={self.seconds:.1f} s",
        ]
        if self.notes:
            parts.append(" ".join(f"{k}={v}" for k, v in self.notes.items()))
        return "FAULTS " + "  ".join(parts)


def check(figures: Figures, duplicate_bound: int) -> list[str]:
    """Everything wrong with a scenario's outcome, one line each (empty: it passed)."""
    problems = list(figures.problems)
    if figures.reports_lost:
        problems.append(f"{figures.reports_lost} acknowledged reports are not readable by their tracking code")
    if figures.recipients_lost:
        problems.append(f"{figures.recipients_lost} subscribers of an acknowledged publication got no message")
    if figures.report_duplicates:
        problems.append(f"{figures.report_duplicates} reports filed twice despite their Idempotency-Key")
    if figures.sms_duplicates > duplicate_bound:
        problems.append(f"{figures.sms_duplicates} duplicate messages, over the bound of {duplicate_bound}")
    if figures.answers.five_hundreds:
        counts = {s: n for s, n in sorted(figures.answers.statuses.items()) if s >= 500 and s != 503}
        problems.append(f"answered 5xx other than 503: {counts}, e.g. {figures.answers.server_errors[:3]}")
    if figures.answers.no_retry_after:
        problems.append(f"{figures.answers.no_retry_after} answers 503 without Retry-After")
    if figures.recover_s is None:
        problems.append("did not recover: the interrupted work never resumed")
    if figures.restarted:
        problems.append(f"processes died or restarted: {figures.restarted}")
    if figures.not_ready:
        problems.append(f"/readyz not 200 at the end: {figures.not_ready}")
    return problems


# A deployment of real processes


@dataclass
class Deployment:
    processes: Processes
    workdir: Path
    sizes: Sizes
    redis_env: dict[str, str]
    twilio: TwilioProcess
    members: list[Warncast] = field(default_factory=list)
    killed: set[int] = field(default_factory=set)  # PIDs the scenario killed on purpose

    def start(self, kind: str, *, workers: bool = True) -> Warncast:
        n = len(self.members)
        extra = {} if workers else {"WARNCAST_SERVE_WORKERS": "0"}
        port = free_port() if kind == "serve" else None
        env = warncast_env(
            self.workdir / f"{kind}-{n}",
            self.redis_env,
            self.twilio.url,
            sms_rate=self.sizes.sms_rate,
            concurrency=self.sizes.concurrency,
            port=port,
            **extra,
        )
        member = Warncast(self.processes, kind, env, self.workdir / f"{kind}-{n}.log").start()
        self.members.append(member)
        return member

    def kill(self, member: Warncast) -> None:
        self.killed.add(member.pid)
        member.kill()

    async def ready(self, *members: Warncast, within: float = 60.0) -> None:
        await asyncio.gather(*(asyncio.to_thread(m.wait_ready, within) for m in members))

    async def finish(self, figures: Figures) -> None:
        """Which processes died or restarted by themselves, and which serve is not ready."""
        for member in self.members:
            if member.pids[-1] in self.killed:  # killed on purpose and not started again
                continue
            if not member.alive():
                code = member.proc.returncode if member.proc else None
                figures.restarted.append(f"{member.kind} pid {member.pid} exited with {code}: see {member.log}")
        for member in self.members:
            if member.kind == "serve" and member.alive():
                try:
                    await asyncio.to_thread(wait_until, "ready", lambda m=member: readyz(m.url) == 200, 20.0, 0.2)
                except TimeoutError:
                    figures.not_ready.append(f"{member.url} answers {readyz(member.url)}")
        figures.notes["logs"] = str(self.workdir)


def standalone(processes: Processes, workdir: Path, sizes: Sizes) -> tuple[Deployment, RedisServer]:
    redis = RedisServer(processes, workdir / "redis").start()
    twilio = TwilioProcess(processes).start()
    return Deployment(processes, workdir, sizes, {"REDIS_URL": redis.url}, twilio), redis


async def _wait_acked(intake: Intake, count: int) -> None:
    while intake.acknowledged < count and not intake.finished.is_set():  # noqa: ASYNC110 - other processes
        await asyncio.sleep(0.01)


async def _intake_outcome(figures: Figures, intake: Intake, client: sync_redis.Redis) -> None:
    figures.reports_acked = intake.acknowledged
    figures.answers.merge(intake.answers)
    check_answers = Answers()
    figures.reports_lost = await intake.lost(check_answers)
    figures.answers.merge(check_answers)
    stored = intake.stored_reports(client)
    client.close()
    figures.report_duplicates = intake.duplicates_answered + max(0, stored - intake.attempted)
    figures.notes["reports_stored"] = stored
    if intake.given_up:
        figures.problems.append(f"{intake.given_up} reports never acknowledged within {intake.give_up_after:.0f} s")
    if intake.refused:
        figures.problems.append(f"{intake.refused} reports refused with a 4xx")


async def _fanout_outcome(figures: Figures, fanout: Fanout, http: Any, sizes: Sizes) -> float | None:
    done_at = await fanout.wait_complete(http, sizes.settle_timeout)
    figures.recipients = len(fanout.phones)
    figures.recipients_lost, figures.sms_duplicates = await fanout.outcome(http)
    if done_at is None:
        figures.problems.append(f"fan-out not complete and idle within {sizes.settle_timeout:.0f} s")
    return done_at


def _mid(figures: Figures, done: int, total: int) -> None:
    figures.fault_at_fraction = round(done / total, 2) if total else None
    if not 0 < done < total:
        figures.problems.append(f"the fault did not land mid-way: {done} of {total} done when it hit")


# 1. SIGKILL a worker mid-fan-out


async def worker_killed(processes: Processes, workdir: Path, sizes: Sizes = TEST) -> Figures:
    """serve (API only) and worker A; A takes the fan-out, worker B joins, A is SIGKILLed at 40 %:
    B must reclaim A's segments and take over its claims, without anything restarted."""
    figures = Figures("1 worker SIGKILL mid-fan-out")
    started = time.monotonic()
    dep, redis = standalone(processes, workdir, sizes)
    city: City = await seed(redis.url, sizes.recipients)
    serve, worker_a = dep.start("serve", workers=False), dep.start("worker")
    await dep.ready(serve, worker_a)
    await asyncio.to_thread(wait_until, "worker A's heartbeat", lambda: bool(live_workers(redis.client)), 30.0)
    (consumer_a,) = live_workers(redis.client)  # serve runs no workers here
    fanout = Fanout(dep.twilio.url, city.phones, redis.client)
    async with session() as http:
        await publish_red(http, serve.url, city.token, figures.answers)
        await fanout.wait_reached(http, 1 / sizes.recipients, 30.0)
        worker_b = dep.start("worker")
        await dep.ready(worker_b)
        reached = await fanout.wait_reached(http, 0.4, 60.0)
        orphans = pending_of(redis.client, consumer_a)  # recipients of the segments A holds
        dep.kill(worker_a)
        killed_at = time.time()
        _mid(figures, reached, sizes.recipients)
        figures.disrupted_workers = 1
        figures.notes["orphaned"] = len(orphans)

        async def orphans_reached() -> float | None:
            deadline = time.monotonic() + sizes.settle_timeout
            while time.monotonic() < deadline:
                if await fanout.missing(http, orphans) == 0:
                    return time.time()
                await asyncio.sleep(0.05)
            return None

        orphans_done = await orphans_reached()
        figures.recover_s = None if orphans_done is None else round(orphans_done - killed_at, 2)
        await _fanout_outcome(figures, fanout, http, sizes)
    await dep.finish(figures)
    figures.seconds = time.monotonic() - started
    return figures


# 2. SIGKILL Redis mid-intake, restart it from its AOF


async def redis_killed_during_intake(processes: Processes, workdir: Path, sizes: Sizes = TEST) -> Figures:
    figures = Figures("2 Redis SIGKILL mid-intake")
    started = time.monotonic()
    # Deployments with replicas have the durable acknowledgement (WAIT) instead of the fsync.
    dep, redis = standalone(processes, workdir, sizes)
    await seed(redis.url, 0)
    serve = dep.start("serve")
    await dep.ready(serve)
    intake = Intake(serve.url, sizes.reports, sizes.intake_rate, sizes.intake_clients)
    load = asyncio.create_task(intake.go())
    await _wait_acked(intake, sizes.reports // 3)
    _mid(figures, intake.acknowledged, sizes.reports)
    figures.notes["acked_before_kill"] = intake.acknowledged
    redis.kill()
    await asyncio.sleep(sizes.down_seconds)
    await asyncio.to_thread(redis.restart)
    healed_at = time.time()
    await load
    first = intake.first_ack_after(healed_at)
    figures.recover_s = None if first is None else round(max(0.0, first - healed_at), 2)
    await _intake_outcome(figures, intake, redis.client())
    await dep.finish(figures)
    figures.seconds = time.monotonic() - started
    return figures


# 3. SIGKILL Redis mid-fan-out, restart it


async def redis_killed_during_fanout(processes: Processes, workdir: Path, sizes: Sizes = TEST) -> Figures:
    figures = Figures("3 Redis SIGKILL mid-fan-out")
    started = time.monotonic()
    dep, redis = standalone(processes, workdir, sizes)
    city = await seed(redis.url, sizes.recipients)
    serve, worker_a, worker_b = dep.start("serve", workers=False), dep.start("worker"), dep.start("worker")
    await dep.ready(serve, worker_a, worker_b)
    fanout = Fanout(dep.twilio.url, city.phones, redis.client)
    async with session() as http:
        await publish_red(http, serve.url, city.token, figures.answers)
        reached = await fanout.wait_reached(http, 0.4, 60.0)
        redis.kill()
        _mid(figures, reached, sizes.recipients)
        figures.disrupted_workers = 2
        await asyncio.sleep(sizes.down_seconds)
        await asyncio.to_thread(redis.restart)
        healed_at = time.time()
        figures.notes["sent_while_down"] = (await fanout.stats(http))["received"] - reached
        await _fanout_outcome(figures, fanout, http, sizes)
        first = await fanout.first_after(http, healed_at)
        figures.recover_s = None if first is None else round(first - healed_at, 2)
    await dep.finish(figures)
    figures.seconds = time.monotonic() - started
    return figures


# 4. SIGSTOP Redis during intake and page reads, then SIGCONT


async def redis_stopped(processes: Processes, workdir: Path, sizes: Sizes = TEST) -> Figures:
    figures = Figures(f"4 Redis SIGSTOP {sizes.stop_seconds:.0f} s")
    started = time.monotonic()
    dep, redis = standalone(processes, workdir, sizes)
    city = await seed(redis.url, 0)
    serve = dep.start("serve")
    await dep.ready(serve)
    async with session() as http:
        message_id = await publish_red(http, serve.url, city.token, figures.answers)
    paths = (*PUBLIC_READS, f"/cap/{message_id}.xml")
    warm = Reads(serve.url, paths, limit=0.5)  # every output rendered once before the fault
    for path in paths:
        async with session() as http:
            await warm.read(http, path)
    figures.answers.merge(warm.answers)
    intake = Intake(serve.url, sizes.reports, sizes.intake_rate, sizes.intake_clients)
    reads = Reads(serve.url, paths, rate=20.0, limit=sizes.settle_timeout + sizes.stop_seconds * 2)
    load, reading = asyncio.create_task(intake.go()), asyncio.create_task(reads.go())
    await _wait_acked(intake, sizes.reports // 4)
    _mid(figures, intake.acknowledged, sizes.reports)
    redis.pause()
    stopped_at = time.time()
    await asyncio.sleep(sizes.stop_seconds)
    redis.resume()
    healed_at = time.time()
    await load
    await asyncio.sleep(1.0)
    reads.stop.set()
    await reading
    figures.answers.merge(reads.answers)
    first = intake.first_ack_after(healed_at)
    figures.recover_s = None if first is None else round(max(0.0, first - healed_at), 2)
    during = reads.during(stopped_at + 0.5, healed_at - 0.5)
    figures.notes["reads_during_stop"] = dict(sorted(Counter(status for _, status in during.elements()).items()))
    figures.notes["reads_marked_stale"] = reads.stale
    if not_200 := {f"{path} {status}": n for (path, status), n in sorted(during.items()) if status != 200}:
        # Public outputs keep their last rendering (marked stale) while Redis is away.
        figures.problems.append(f"public reads during the stop not answered 200 from the last rendering: {not_200}")
    await _intake_outcome(figures, intake, redis.client())
    await dep.finish(figures)
    figures.seconds = time.monotonic() - started
    return figures


# 5. SIGKILL the Sentinel primary during intake and fan-out


async def sentinel_failover(processes: Processes, workdir: Path, sizes: Sizes = TEST) -> Figures:
    figures = Figures("5 Sentinel primary SIGKILL")
    started = time.monotonic()
    sentinels = await asyncio.to_thread(SentinelSet(processes, workdir / "sentinel").start)
    twilio = TwilioProcess(processes).start()
    redis_env = {
        "WARNCAST_REDIS_SENTINELS": sentinels.addresses,
        "WARNCAST_REDIS_SENTINEL_MASTER": MASTER_NAME,
        "WARNCAST_REDIS_MIN_REPLICAS": "1",  # acknowledged means on the replica too: failover loses nothing
    }
    dep = Deployment(processes, workdir, sizes, redis_env, twilio)
    city = await seed(sentinels.primary.url, sizes.recipients, replicas=1)
    serve, worker = dep.start("serve"), dep.start("worker")
    await dep.ready(serve, worker)
    fanout = Fanout(twilio.url, city.phones, lambda: sentinels.primary.client())
    intake = Intake(serve.url, sizes.reports, sizes.intake_rate, sizes.intake_clients)
    async with session() as http:
        await publish_red(http, serve.url, city.token, figures.answers)
        load = asyncio.create_task(intake.go())
        await _wait_acked(intake, sizes.reports // 3)
        reached = await fanout.wait_reached(http, 0.3, 60.0)
        sentinels.kill_primary()
        killed_at = time.time()
        _mid(figures, reached, sizes.recipients)
        if not 0 < intake.acknowledged < sizes.reports:
            figures.problems.append(f"the fault did not land mid-intake: {intake.acknowledged} acknowledged")
        figures.disrupted_workers = 2  # serve's and the worker's
        figures.notes["promoted_s"] = round(await asyncio.to_thread(sentinels.wait_promoted), 2)
        await asyncio.to_thread(sentinels.rejoin_old_primary)
        figures.notes["replica_back_s"] = round(time.time() - killed_at, 2)
        await load
        await _fanout_outcome(figures, fanout, http, sizes)
        first_send = await fanout.first_after(http, killed_at)
        first_ack = intake.first_ack_after(killed_at)
        if first_send is not None and first_ack is not None:
            figures.recover_s = round(max(first_send, first_ack) - killed_at, 2)
    await _intake_outcome(figures, intake, sentinels.primary.client())
    await dep.finish(figures)
    figures.seconds = time.monotonic() - started
    return figures


# 6. SIGKILL serve right after a publish returned 200, restart it


async def serve_killed_after_publish(processes: Processes, workdir: Path, sizes: Sizes = TEST) -> Figures:
    figures = Figures("6 serve SIGKILL after publish")
    started = time.monotonic()
    dep, redis = standalone(processes, workdir, sizes)
    city = await seed(redis.url, sizes.recipients)
    serve = dep.start("serve")  # the only process: it plans and sends too
    await dep.ready(serve)
    fanout = Fanout(dep.twilio.url, city.phones, redis.client)
    async with session() as http:
        await publish_red(http, serve.url, city.token, figures.answers)
        dep.kill(serve)
        figures.notes["sent_before_kill"] = (await fanout.stats(http))["received"]
        figures.disrupted_workers = 1
        serve.start()  # the same command, port and data dir
        restarted_at = time.time()
        await dep.ready(serve)
        figures.notes["serve_ready_s"] = round(time.time() - restarted_at, 2)
        await _fanout_outcome(figures, fanout, http, sizes)
        first = await fanout.first_after(http, restarted_at)
        figures.recover_s = None if first is None else round(first - restarted_at, 2)
        if figures.notes["sent_before_kill"] >= sizes.recipients:
            figures.problems.append("serve had sent everything before it was killed: nothing was recovered")
    await dep.finish(figures)
    figures.seconds = time.monotonic() - started
    return figures


SCENARIOS = {
    "worker-kill": worker_killed,
    "redis-kill-intake": redis_killed_during_intake,
    "redis-kill-fanout": redis_killed_during_fanout,
    "redis-stop": redis_stopped,
    "sentinel-failover": sentinel_failover,
    "serve-kill": serve_killed_after_publish,
}
