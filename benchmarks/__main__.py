"""python -m benchmarks: scoring, daily-run, DAG, sync and memory figures at a chosen size.

    python -m benchmarks --users 100000                    # every scenario
    python -m benchmarks --users 100000 --scenarios scoring,sync,memory
    python -m benchmarks --users 300 --days 30 --out /tmp/bench   # the smoke size the tests use
    python -m benchmarks --users 100000 --scenarios dag --executor celery   # the DAG on 2 Celery workers
    python -m benchmarks --users 100000 --scenarios sync --braze-track-rate-limit 150   # a workspace's own limit

The warehouse server comes from the `UPSHIFT_PG_*` variables (unset: the embedded PostgreSQL);
the benchmark works in databases of its own (`upshift_bench`, `upshift_bench_daily_*`), created
fresh and dropped at the end unless --keep. It prints one table of figures with the ratios the
goals are stated in (docs/performance.md) and writes them to <out>/benchmark.json and
<out>/benchmark.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.scenarios import SCENARIOS, Bench
from upshift.local_airflow.config import ExecutorSettings
from upshift.warehouse import WarehouseSettings, ensure_warehouse

BENCH_DATABASE = "upshift_bench"
# Goal keys name the bound a ratio is held to: <ratio>_max or <ratio>_min.
GOAL_PREFIX = "goal_"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="clients + workers (default 100000)")
    parser.add_argument("--days", type=int, default=120, help="days of history of the main world (default 120)")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2025, 6, 2), help="as-of date")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, in this order: {','.join(SCENARIOS)} (default all)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="folder for JSON + Markdown")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    parser.add_argument(
        "--executor",
        choices=("local", "celery"),
        help="the dag scenario's Airflow executor (default UPSHIFT_AIRFLOW_EXECUTOR, else local); celery runs "
        "UPSHIFT_CELERY_WORKERS (default 2) local workers on UPSHIFT_CELERY_BROKER_URL (default local Redis)",
    )
    parser.add_argument(
        "--braze-track-rate-limit",
        type=int,
        help="the sync scenario's Braze workspace limit, /users/track requests per 3 s, for the emulator and the "
        "sync's client (default: the documented 3000)",
    )
    parser.add_argument(
        "--iterable-bulk-update-rate",
        type=int,
        help="the sync scenario's Iterable project limit, users/bulkUpdate requests per second, for the emulator "
        "and the sync's client (default: the documented 10)",
    )
    return parser


def run(argv: Sequence[str] | None = None, server: WarehouseSettings | None = None) -> dict[str, Any]:
    """Run the chosen scenarios on `server` (default: from the environment); returns benchmark.json's content."""
    args = _parser().parse_args(argv)
    chosen = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown scenarios {unknown}; choose from {sorted(SCENARIOS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    server = ensure_warehouse(server or WarehouseSettings.from_env())
    executor = ExecutorSettings.from_env()
    bench = Bench(
        server=server,
        users=args.users,
        days=args.days,
        as_of=args.as_of,
        out_dir=args.out.resolve(),
        executor=replace(executor, name=args.executor or executor.name),
        braze_track_rate_limit=args.braze_track_rate_limit,
        iterable_bulk_update_rate=args.iterable_bulk_update_rate,
    )
    settings = bench.database(BENCH_DATABASE)
    result = _write(args, bench)
    try:
        if "scoring" not in chosen and {"dag", "sync", "memory"} & set(chosen):
            # The later scenarios read the main world's marts: build them even when not timed.
            chosen.insert(0, "scoring")
        for name in [name for name in SCENARIOS if name in chosen]:
            print(f"==> {name}", flush=True)
            bench.figures[name] = SCENARIOS[name](bench, settings)
            # Written after every scenario, so a long run stopped half-way keeps what it measured.
            result = _write(args, bench)
    finally:
        if not args.keep:
            bench.drop(settings)
    print(render_markdown(result))
    return result


def _write(args: argparse.Namespace, bench: Bench) -> dict[str, Any]:
    result = {
        "users": args.users,
        "days": args.days,
        "as_of": args.as_of.isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        "scenarios": bench.figures,
    }
    (args.out / "benchmark.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (args.out / "benchmark.md").write_text(render_markdown(result))
    return result


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{key} {_format(item)}" for key, item in value.items())
    return str(value)


def _verdict(figures: dict[str, Any], goal: str) -> str:
    ratio, bound = goal.removeprefix(GOAL_PREFIX).rsplit("_", 1)
    measured, limit = figures.get(ratio), figures[goal]
    if not isinstance(measured, int | float):
        return "not measured"
    reached = measured <= limit if bound == "max" else measured >= limit
    return f"{'reached' if reached else 'NOT reached'} ({bound} {limit})"


def render_markdown(result: dict[str, Any]) -> str:
    """One table per scenario: figure, value, and for each ratio with a goal whether it was reached."""
    lines = [
        f"# Benchmark: {result['users']:,} users, {result['days']} days, as of {result['as_of']}",
        "",
        f"Machine: {result['machine']['cpus']} CPUs, Python {result['machine']['python']}, "
        f"{result['machine']['system']}",
    ]
    for name, figures in result["scenarios"].items():
        goals = {key.removeprefix(GOAL_PREFIX).rsplit("_", 1)[0]: key for key in figures if key.startswith(GOAL_PREFIX)}
        lines += ["", f"## {name}", "", "| figure | value | goal |", "|---|---|---|"]
        for key, value in figures.items():
            if key.startswith(GOAL_PREFIX):
                continue
            goal = _verdict(figures, goals[key]) if key in goals else ""
            lines.append(f"| {key} | {_format(value)} | {goal} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
