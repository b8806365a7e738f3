"""The fault scenarios at test size, each against its own real processes (tests/faults/scenarios.py).

Each asserts: no acknowledged item lost (every report that got 201 is readable by its tracking code,
every subscriber of an acknowledged publication reached), duplicates within the bound
(conftest.duplicate_bound; none for reports), no 5xx other than 503 (with Retry-After), and
recovery without restarting serve or a worker (except scenario 6, which restarts serve). Each
prints its figures (`pytest -s` shows them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import scenarios
from tests.faults.conftest import duplicate_bound, needs_sentinel_setting
from tests.faults.processes import Processes
from tests.faults.scenarios import TEST, Figures, check

pytestmark = pytest.mark.timeout(150)


def verdict(figures: Figures) -> None:
    bound = duplicate_bound(TEST, figures.disrupted_workers)
    print(f"\n{figures.line()}  duplicate_bound={bound}")
    problems = check(figures, bound)
    assert not problems, f"{figures.scenario}:\n  " + "\n  ".join(problems)


async def test_worker_sigkill_mid_fanout(processes: Processes, workdir: Path) -> None:
    verdict(await scenarios.worker_killed(processes, workdir))


async def test_redis_sigkill_mid_intake_restarted_from_aof(processes: Processes, workdir: Path) -> None:
    verdict(await scenarios.redis_killed_during_intake(processes, workdir))


async def test_redis_sigkill_mid_fanout_restarted(processes: Processes, workdir: Path) -> None:
    verdict(await scenarios.redis_killed_during_fanout(processes, workdir))


async def test_redis_sigstop_during_intake_and_reads(processes: Processes, workdir: Path) -> None:
    verdict(await scenarios.redis_stopped(processes, workdir))


@needs_sentinel_setting
async def test_sentinel_primary_sigkill_during_intake_and_fanout(processes: Processes, workdir: Path) -> None:
    verdict(await scenarios.sentinel_failover(processes, workdir))


async def test_serve_sigkill_right_after_publish(processes: Processes, workdir: Path) -> None:
    verdict(await scenarios.serve_killed_after_publish(processes, workdir))
