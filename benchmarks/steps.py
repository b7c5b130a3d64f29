"""The Python steps the benchmark measures in child processes of their own (for per-process RSS).

    python -m benchmarks.steps gates --as-of 2025-06-02
    python -m benchmarks.steps sync --as-of 2025-06-02 --emulator http://127.0.0.1:PORT --run-id bench-1

The warehouse comes from the `UPSHIFT_PG_*` variables and the emulator's API keys from
`BENCH_BRAZE_API_KEY` / `BENCH_ITERABLE_API_KEY`, never from the command line. Each prints one
JSON line with what it measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.measure import timed


def gates(as_of: dt.date) -> dict[str, Any]:
    """Every stage gate, in DAG order, with its seconds and verdict."""
    from upshift.gates import run_gate, stage_names
    from upshift.warehouse import WarehouseSettings

    settings = WarehouseSettings.from_env()
    result: dict[str, Any] = {}
    for stage in stage_names():
        with timed() as timer:
            gate = run_gate(stage, settings, as_of)
        result[stage] = {"seconds": round(timer.seconds, 2), "passed": bool(gate.passed)}
    return result


def _request_log(emulator_url: str) -> list[dict[str, Any]]:
    """The emulator's log of API calls (the latest ones; each has a sequence number and its duration)."""
    return _emulator_requests(emulator_url)["requests"]


def _emulator_requests(emulator_url: str) -> dict[str, Any]:
    import requests

    return requests.get(f"{emulator_url}/_emulator/requests", timeout=30).json()


def _rate_limited(emulator_url: str) -> int:
    """How many requests the emulator has answered 429 so far, on either platform (its totals, unbounded)."""
    totals = _emulator_requests(emulator_url)["totals"]
    return sum(statuses.get("429", 0) for statuses in totals.values())


def _requests_seen(emulator_url: str) -> int:
    """How many API calls the emulator has answered so far (its request log's sequence number)."""
    entries = _request_log(emulator_url)
    return entries[-1]["seq"] if entries else 0


def _emulator_seconds_since(emulator_url: str, seq: int) -> float:
    """Time the emulator spent answering the calls after `seq` (of those its log still holds)."""
    return sum(entry["duration_ms"] for entry in _request_log(emulator_url) if entry["seq"] > seq) / 1000


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process so far (this one when `pid` is None)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sync(as_of: dt.date, emulator_url: str, run_id: str) -> dict[str, Any]:
    """Users of both destinations, then Iterable's lists and both event steps, timed per step.

    `requests` is what the emulator counted for the step, not what the client thinks it sent,
    `rate_limited` how many of them it answered 429;
    `client_cpu_s` is this process's CPU time in the step, `emulator_cpu_s` the emulator
    process's (`BENCH_EMULATOR_PID`), so each side's cost per request can be told apart.
    """
    from upshift.sync import (
        BrazeClient,
        IterableClient,
        SyncOptions,
        SyncSettings,
        open_context,
        sync_events,
        sync_iterable_lists,
        sync_users,
    )
    from upshift.warehouse import WarehouseSettings

    settings = SyncSettings.from_env()
    options = SyncOptions(run_id=run_id, as_of_date=as_of)
    braze = BrazeClient(f"{emulator_url}/braze", os.environ["BENCH_BRAZE_API_KEY"], settings)
    iterable = IterableClient(f"{emulator_url}/iterable", os.environ["BENCH_ITERABLE_API_KEY"], settings)
    steps = {
        "braze_users": lambda context: sync_users(context, "braze", braze),
        "iterable_users": lambda context: sync_users(context, "iterable", iterable),
        "iterable_lists": lambda context: sync_iterable_lists(context, iterable),
        "braze_events": lambda context: sync_events(context, "braze", braze),
        "iterable_events": lambda context: sync_events(context, "iterable", iterable),
    }
    result: dict[str, Any] = {}
    with braze, iterable, open_context(WarehouseSettings.from_env(), options, settings) as context:
        emulator_pid = int(os.environ["BENCH_EMULATOR_PID"]) if os.environ.get("BENCH_EMULATOR_PID") else None
        for name, step in steps.items():
            before, limited = _requests_seen(emulator_url), _rate_limited(emulator_url)
            client_cpu, emulator_cpu = cpu_seconds(), cpu_seconds(emulator_pid) if emulator_pid else 0.0
            with timed() as timer:
                summary = step(context)
            result[name] = {
                "seconds": round(timer.seconds, 3),
                "client_cpu_s": round(cpu_seconds() - client_cpu, 3),
                "emulator_cpu_s": round(cpu_seconds(emulator_pid) - emulator_cpu, 3) if emulator_pid else None,
                # API calls the emulator answered in the step, its 429s among them (a retried call counts each time).
                "requests": _requests_seen(emulator_url) - before,
                "rate_limited": _rate_limited(emulator_url) - limited,
                "emulator_seconds": round(_emulator_seconds_since(emulator_url, before), 3),
                **{key: value for key, value in summary.items() if isinstance(value, int | float | bool)},
            }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.steps")
    commands = parser.add_subparsers(dest="step", required=True)
    gates_parser = commands.add_parser("gates")
    gates_parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    sync_parser = commands.add_parser("sync")
    sync_parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    sync_parser.add_argument("--emulator", required=True)
    sync_parser.add_argument("--run-id", required=True)
    args = parser.parse_args(argv)
    result = gates(args.as_of) if args.step == "gates" else sync(args.as_of, args.emulator, args.run_id)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
