"""The background-loop supervisor: restarts with growing delays, health, recovery, a clean stop."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from foundation.retry import RetryPolicy
from foundation.supervisor import DEAD, RESTARTING, RUNNING, STOPPED, Loop, Supervisor, beat


async def until(condition, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def others() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


async def test_a_failing_loop_restarts_with_growing_delays_and_shows_in_health(caplog):
    calls: list[float] = []

    async def broken() -> None:
        calls.append(time.monotonic())
        raise ConnectionError("redis went away")

    supervisor = Supervisor(restart=RetryPolicy(base=0.05, cap=10.0, jitter=0.0), grace=0.1)
    supervisor.add(Loop("broken", broken))
    with caplog.at_level(logging.ERROR, logger="foundation.supervisor"):
        async with supervisor:
            await until(lambda: len(calls) >= 5)
            health = supervisor.health()["broken"]
            assert health.state in (RUNNING, RESTARTING)
            assert health.restarts >= 4
            assert health.last_error == "ConnectionError: redis went away"
            assert health.last_ok is None and health.failing_for() > 0.1
            assert [h.name for h in supervisor.failing()] == ["broken"]
            assert supervisor.failing(grace=60) == [], "within its grace, a failing loop does not count"
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    # 0.05, 0.1, 0.2, 0.4 s: a fixed delay could not be both this short first and this long last.
    assert 0.045 <= gaps[0] < 0.2, gaps
    assert gaps[3] >= 0.36, gaps
    assert all(later > earlier for earlier, later in zip(gaps, gaps[1:], strict=False)), gaps
    failures = [r for r in caplog.records if "broken" in r.getMessage()]
    assert len(failures) >= 4, "each failure is logged"
    assert failures[0].exc_info is not None and failures[1].exc_info is None, "with its traceback the first time"
    assert "ConnectionError: redis went away" in failures[1].getMessage()
    assert "restarting in 0.1 s" in failures[1].getMessage()


async def test_the_back_off_stops_at_its_cap():
    calls: list[float] = []

    async def broken() -> None:
        calls.append(time.monotonic())
        raise RuntimeError("no")

    async with Supervisor(restart=RetryPolicy(base=0.01, cap=0.03, jitter=0.0)) as supervisor:
        supervisor.add(Loop("broken", broken))  # added while running: starts at once
        await until(lambda: len(calls) >= 8)
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert min(gaps[3:]) >= 0.027 and sorted(gaps)[len(gaps) // 2] < 0.2, gaps


async def test_a_round_loop_that_recovers_is_healthy_again():
    failures_left = 3
    rounds = 0

    async def flaky() -> None:
        nonlocal failures_left, rounds
        if failures_left:
            failures_left -= 1
            raise OSError("not yet")
        rounds += 1

    async with Supervisor(restart=RetryPolicy(base=0.01, cap=0.05, jitter=0.0), grace=0.0) as supervisor:
        supervisor.add(Loop("flaky", flaky, every=0.01))
        await until(lambda: rounds >= 3)
        health = supervisor.health()["flaky"]
        assert health.state == RUNNING and health.failing_since is None and health.failing_for() == 0
        assert health.restarts == 3 and health.last_error == "OSError: not yet"
        assert health.last_ok is not None and health.last_ok >= health.last_error_at  # type: ignore[operator]
        assert supervisor.failing() == []


async def test_a_forever_loop_counts_as_recovered_once_it_has_run_for_a_while():
    attempts = 0

    async def follower() -> None:  # like a stream reader: fails twice, then runs for good
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise ConnectionError("reset")
        await asyncio.Event().wait()

    supervisor = Supervisor(restart=RetryPolicy(base=0.01, cap=0.05, jitter=0.0), grace=0.0, settle=0.2)
    supervisor.add(Loop("follower", follower))
    async with supervisor:
        await until(lambda: attempts == 3)
        assert [h.name for h in supervisor.failing()] == ["follower"], "restarted, not yet proven"
        await until(lambda: not supervisor.failing())
        health = supervisor.health()["follower"]
        assert health.state == RUNNING and health.restarts == 2 and health.last_ok is None


async def test_stop_cancels_and_awaits_every_loop_even_one_that_swallows_cancellation():
    before = others()
    started = asyncio.Event()
    cleaned_up = []

    async def forever() -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.01)  # cleanup that awaits still completes
            cleaned_up.append("forever")

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return  # swallows the cancellation: it must not be run again

    async def failing() -> None:
        raise RuntimeError("always")

    async def ticking() -> None:
        await asyncio.sleep(0)

    supervisor = Supervisor(restart=RetryPolicy(base=30.0, cap=30.0))  # `failing` sits in a long back-off
    supervisor.add(Loop("forever", forever), Loop("stubborn", stubborn), Loop("failing", failing))
    supervisor.add(Loop("tick", ticking, every=0.01))
    supervisor.start()
    await started.wait()
    await until(lambda: supervisor.health()["failing"].state == RESTARTING)
    assert len(others() - before) == 4
    async with asyncio.timeout(5):
        await supervisor.stop()
    assert others() - before == set(), "no task left running"
    assert cleaned_up == ["forever"]
    assert {h.state for h in supervisor.health().values()} == {STOPPED}


async def test_cancelling_the_owner_of_a_supervisor_leaves_no_task_running():
    before = others()
    running = asyncio.Event()

    async def worker_process() -> None:  # `warncast worker`: loops until a signal cancels it
        async with Supervisor() as supervisor:
            supervisor.add(Loop("a", asyncio.Event().wait), Loop("b", lambda: asyncio.sleep(0), every=0.01))
            running.set()
            await asyncio.Event().wait()

    owner = asyncio.create_task(worker_process())
    await running.wait()
    await asyncio.sleep(0.05)
    owner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await owner
    assert others() - before == set()


async def test_a_supervisor_task_killed_by_a_base_exception_is_dead():
    class Fatal(BaseException):
        pass

    async def fatal() -> None:
        raise Fatal

    async with Supervisor() as supervisor:
        supervisor.add(Loop("fatal", fatal))
        await until(lambda: supervisor.health()["fatal"].state == DEAD)
        assert [h.name for h in supervisor.failing()] == ["fatal"]


def test_loop_names_are_unique():
    supervisor = Supervisor()
    supervisor.add(Loop("scheduler", asyncio.Event().wait))
    with pytest.raises(ValueError, match="scheduler"):
        supervisor.add(Loop("scheduler", asyncio.Event().wait))


async def test_a_loop_that_stops_reporting_in_is_silent_until_it_reports_again():
    working = asyncio.Event()
    working.set()
    beats = 0

    async def follower() -> None:  # runs for good; reports in from a task of its own, like a lane
        nonlocal beats

        async def part() -> None:
            nonlocal beats
            while True:
                await working.wait()  # stuck while `working` is clear
                beat()
                beats += 1
                await asyncio.sleep(0.01)

        await asyncio.create_task(part())

    async with Supervisor() as supervisor:
        supervisor.add(Loop("follower", follower, within=0.2))
        await until(lambda: beats >= 3)
        assert supervisor.silent() == [] and supervisor.health()["follower"].silent_for() < 0.2
        working.clear()
        await until(lambda: bool(supervisor.silent()))
        stuck = supervisor.health()["follower"]
        assert [h.name for h in supervisor.silent()] == ["follower"] and supervisor.failing() == []
        assert stuck.state == RUNNING and stuck.silent_for() > 0.2 and stuck.as_dict()["since_report"] >= 0.2
        supervisor.beat("follower")  # from outside the loop's tasks, by name
        assert supervisor.silent() == []
        working.set()
        await asyncio.sleep(0.3)
        assert supervisor.silent() == [], "reporting in again"


async def test_a_round_that_returns_reports_in_and_a_never_ending_one_does_not():
    async with Supervisor() as supervisor:
        supervisor.add(Loop("rounds", lambda: asyncio.sleep(0.01), every=0.05, within=0.3))
        supervisor.add(Loop("forever", asyncio.Event().wait, within=0.3))
        await asyncio.sleep(0.5)
        assert [h.name for h in supervisor.silent()] == ["forever"]
        assert supervisor.health()["rounds"].silent_for() < 0.3


async def test_a_restarted_loop_has_recovered_once_it_reports_in():
    attempts = 0

    async def reader() -> None:  # fails twice, then works for good, reporting in
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise ConnectionError("reset")
        while True:
            beat()
            await asyncio.sleep(0.01)

    supervisor = Supervisor(restart=RetryPolicy(base=0.01, cap=0.05, jitter=0.0), grace=0.0, settle=60)
    supervisor.add(Loop("reader", reader))
    async with supervisor:
        await until(lambda: attempts == 3)
        await until(lambda: not supervisor.failing(), within=1.0)  # long before `settle`
        health = supervisor.health()["reader"]
        assert health.state == RUNNING and health.restarts == 2 and health.failing_since is None


def test_beat_outside_a_supervised_loop_does_nothing():
    beat()


async def test_stop_ends_a_loop_whose_cleanup_waits_on_something_stuck():
    before = others()
    started = asyncio.Event()

    async def stuck_cleanup() -> None:  # like a segment giving back its claims to a Redis that hangs
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            await asyncio.Event().wait()  # only a second cancellation ends this

    supervisor = Supervisor(stop_timeout=3.0)
    supervisor.add(Loop("stuck", stuck_cleanup))
    supervisor.start()
    await started.wait()
    began = time.monotonic()
    await supervisor.stop()
    assert time.monotonic() - began < 1.5, "cancelled again at once, not after the stop timeout"
    assert others() - before == set()
