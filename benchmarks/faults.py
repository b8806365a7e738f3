"""Fault benchmark: the fault suite's six scenarios (tests/faults/scenarios.py) at full size, on real
`warncast serve` / `warncast worker` processes, a real redis-server (standalone with its append-only
file, or a Sentinel set of one primary, one replica and three sentinels) and the Twilio stand-in:

    1 SIGKILL a worker mid-fan-out             4 SIGSTOP Redis during intake and page reads, SIGCONT
    2 SIGKILL Redis mid-intake, restart (AOF)  5 SIGKILL the Sentinel primary during intake and fan-out
    3 SIGKILL Redis mid-fan-out, restart       6 SIGKILL serve right after a publish returned 200, restart

It prints a table: scenario, acknowledged (reports answered 201 + subscribers of acknowledged
publications), lost, duplicates (against the bound of tests/faults/conftest.py), 5xx answered other
than 503, and seconds from the end of the fault to the first interrupted thing done again.

    .venv/bin/python benchmarks/faults.py    # all six: 20,000 recipients, 10,000 reports, SIGSTOP 15 s
    .venv/bin/python benchmarks/faults.py --scenario redis-stop --scenario serve-kill
    .venv/bin/python benchmarks/faults.py --recipients 2000 --reports 1000 --stop-seconds 5
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from foundation import loops  # noqa: E402
from tests.faults.conftest import duplicate_bound, sentinel_setting_known  # noqa: E402
from tests.faults.processes import Processes  # noqa: E402
from tests.faults.scenarios import BENCHMARK, SCENARIOS, Figures, Sizes, check  # noqa: E402


async def run(names: list[str], sizes: Sizes, workdir: Path) -> list[tuple[Figures, int, list[str]]]:
    results = []
    for name in names:
        if name == "sentinel-failover" and not sentinel_setting_known():
            print(f"{name}: skipped, WARNCAST_REDIS_SENTINELS is not a setting yet", flush=True)
            continue
        print(f"{name}: running ...", flush=True)
        processes = Processes()
        started = time.monotonic()
        try:
            figures = await SCENARIOS[name](processes, workdir / name, sizes)
        except Exception as exc:  # a scenario that could not finish is a result too
            figures = Figures(name, problems=[f"scenario failed: {type(exc).__name__}: {exc}"])
            figures.seconds = time.monotonic() - started
        finally:
            processes.stop_all()
        bound = duplicate_bound(sizes, figures.disrupted_workers)
        problems = check(figures, bound)
        print(figures.line(), flush=True)
        results.append((figures, bound, problems))
    return results


def table(results: list[tuple[Figures, int, list[str]]]) -> str:
    head = ("scenario", "acknowledged", "lost", "duplicates (bound)", "5xx answered", "503", "recover", "result")
    rows = [head]
    for figures, bound, problems in results:
        recover = "never" if figures.recover_s is None else f"{figures.recover_s:.2f} s"
        rows.append(
            (
                figures.scenario,
                f"{figures.acknowledged:,}",
                f"{figures.lost:,}",
                f"{figures.duplicates:,} ({bound:,})",
                f"{figures.answers.five_hundreds:,}",
                f"{figures.answers.statuses[503]:,}",
                recover,
                "ok" if not problems else f"{len(problems)} problem(s)",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="repeat; default: all six")
    parser.add_argument("--recipients", type=int, default=BENCHMARK.recipients)
    parser.add_argument("--reports", type=int, default=BENCHMARK.reports)
    parser.add_argument("--stop-seconds", type=float, default=BENCHMARK.stop_seconds, help="SIGSTOP of Redis")
    parser.add_argument("--sms-rate", type=float, default=BENCHMARK.sms_rate, help="WARNCAST_SMS_RATE")
    parser.add_argument("--intake-rate", type=float, default=BENCHMARK.intake_rate, help="reports started per second")
    args = parser.parse_args()
    sizes = dataclasses.replace(
        BENCHMARK,
        recipients=args.recipients,
        reports=args.reports,
        stop_seconds=args.stop_seconds,
        sms_rate=args.sms_rate,
        intake_rate=args.intake_rate,
    )
    workdir = Path(tempfile.mkdtemp(prefix="wc-faults-"))
    print(
        f"{sizes.recipients:,} recipients at {sizes.sms_rate:g} SMS/s, {sizes.reports:,} reports at "
        f"{sizes.intake_rate:g}/s, SIGSTOP {sizes.stop_seconds:g} s; logs in {workdir}",
        flush=True,
    )
    results = loops.run(run(args.scenario or list(SCENARIOS), sizes, workdir))
    print()
    print(table(results))
    for figures, _bound, problems in results:
        for problem in problems:
            print(f"  {figures.scenario}: {problem}")
    return 1 if any(problems for _, _, problems in results) else 0


if __name__ == "__main__":
    sys.exit(main())
