"""The benchmark scenarios: each takes a `Bench` and returns its figures (a flat dict).

- `scoring`: one full `dbt build` against the floor - one bare `create table as select ...
  group by user` per raw event table, measured in the same run on the same tables.
- `daily`: a day's build (the day before built first) with 30 and with 365 days of history,
  same users.
- `dag`: `upgrade_readiness` under a real local scheduler (dry run) against one `dbt build`
  of the same models on the same data; on the LocalExecutor, or on Celery workers
  (`--executor celery`, the stack's `ExecutorSettings`), with the tasks each worker ran.
- `sync`: every user is new to both destinations, against the emulator with its documented
  rate limits (or a workspace's own, `--braze-track-rate-limit`, `--iterable-bulk-update-rate`,
  which the sync's client is configured with too); then the same sync again, when nothing changed.
- `memory`: peak RSS of the generator, gates, sync and report processes (measured by the
  steps above, each in a child process of its own).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from psycopg import sql

from benchmarks.measure import run_child, timed
from upshift import dbt
from upshift.local_airflow.config import ExecutorSettings
from upshift.warehouse import WarehouseSettings, connect

# Raw event table -> the user column its per-user aggregation groups by (the floor's pass).
EVENT_TABLES = {
    "bookings": "client_id",
    "searches": "client_id",
    "proposals": "worker_id",
    "profile_views": "worker_id",
    "contacts": "worker_id",
    "subscriptions": "user_id",
    "offer_exposures": "user_id",
}
CLIENT_SHARE = 0.7
FLOOR_SCHEMA = "bench_floor"
# How many of a build's nodes (models, tests, seeds) the figures list by their own time.
SLOWEST_NODES = 12


@dataclass
class Bench:
    """One benchmark run: the server, the size, the as-of date and where results go."""

    server: WarehouseSettings
    users: int
    days: int
    as_of: dt.date
    out_dir: Path
    seed: int = 42
    # The local Airflow's executor for the `dag` scenario (UPSHIFT_AIRFLOW_EXECUTOR, ...; --executor).
    executor: ExecutorSettings = field(default_factory=ExecutorSettings.from_env)
    # A workspace's own rate limits for the sync scenario (None: the documented ones): Braze
    # /users/track requests per 3 s, Iterable users/bulkUpdate requests per second.
    braze_track_rate_limit: int | None = None
    iterable_bulk_update_rate: int | None = None
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)

    def database(self, name: str) -> WarehouseSettings:
        """A fresh database `name` on the server (dropped first if it exists)."""
        with connect(self.server, database="postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        return self.server.with_database(name)

    def drop(self, settings: WarehouseSettings) -> None:
        with connect(self.server, database="postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(settings.database)))


def generate(bench: Bench, settings: WarehouseSettings, days: int) -> dict[str, Any]:
    """The synthetic marketplace at the bench's size, in a child process (its RSS counts)."""
    clients = max(1, round(bench.users * CLIENT_SHARE))
    child = run_child(
        "upshift.generator",
        [
            "--clients",
            str(clients),
            "--workers",
            str(max(1, bench.users - clients)),
            "--days",
            str(days),
            "--as-of",
            bench.as_of.isoformat(),
            "--seed",
            str(bench.seed),
            "--schema",
            settings.raw_schema,
            "--quiet",
        ],
        env=settings.env(),
    )
    bench.peak_rss_mib["generator"] = max(bench.peak_rss_mib.get("generator", 0.0), child.peak_rss_mib)
    count = sql.SQL("select count(*) from {}")
    with connect(settings, autocommit=True) as conn:
        events = sum(
            conn.execute(count.format(sql.Identifier(settings.raw_schema, table))).fetchone()[0]
            for table in EVENT_TABLES
        )
    return {"seconds": child.seconds, "events": events, "peak_rss_mib": child.peak_rss_mib}


def dbt_build(bench: Bench, settings: WarehouseSettings, as_of: dt.date) -> dict[str, Any]:
    """One `dbt build` of the whole project (data tests included, unit tests not): its seconds,
    and from its run_results.json the thread-seconds of models and of tests and the slowest nodes.

    Its artifacts go to the bench's folder: the project's target/ holds the manifest a running
    Airflow renders the DAG from, which a build there would rewrite under it.
    """
    target = bench.out_dir / "dbt-target"
    with timed() as timer:
        dbt.run_dbt(
            [
                "build",
                "--exclude-resource-type",
                "unit_test",
                "--vars",
                json.dumps({"as_of_date": as_of.isoformat()}),
                "--target-path",
                str(target),
                "--quiet",
            ],
            settings,
        )
    return {"seconds": timer.seconds, **node_timings(target / "run_results.json")}


def node_timings(run_results: Path, top: int = SLOWEST_NODES) -> dict[str, Any]:
    """Thread-seconds of a dbt run's models and tests, and its `top` slowest nodes (name: seconds)."""
    results = json.loads(run_results.read_text(encoding="utf-8"))["results"]
    seconds: dict[str, float] = {}
    for result in results:
        kind = result["unique_id"].split(".")[0]
        seconds[kind] = seconds.get(kind, 0.0) + result["execution_time"]
    slowest = sorted(results, key=lambda result: result["execution_time"], reverse=True)[:top]
    return {
        "models_thread_s": round(seconds.get("model", 0.0), 1),
        "tests_thread_s": round(seconds.get("test", 0.0), 1),
        "slowest_s": {result["unique_id"].split(".")[2]: round(result["execution_time"], 1) for result in slowest},
    }


def floor(settings: WarehouseSettings) -> float:
    """Seconds for one bare per-user aggregation over each raw event table."""
    with connect(settings, autocommit=True) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(FLOOR_SCHEMA)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(FLOOR_SCHEMA)))
        with timed() as timer:
            for table, user_column in EVENT_TABLES.items():
                conn.execute(
                    sql.SQL("create table {} as select {user}, count(*) as events from {} group by {user}").format(
                        sql.Identifier(FLOOR_SCHEMA, table),
                        sql.Identifier(settings.raw_schema, table),
                        user=sql.Identifier(user_column),
                    )
                )
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(FLOOR_SCHEMA)))
    return timer.seconds


def scoring(bench: Bench, settings: WarehouseSettings) -> dict[str, Any]:
    """Full build vs floor on the bench's world (generated here)."""
    generated = generate(bench, settings, bench.days)
    build = dbt_build(bench, settings, bench.as_of)
    build_seconds = build["seconds"]
    floor_seconds = floor(settings)
    return {
        "users": bench.users,
        "days": bench.days,
        "events": generated["events"],
        "generate_s": generated["seconds"],
        "generator_peak_rss_mib": generated["peak_rss_mib"],
        "dbt_build_s": build_seconds,
        "floor_s": floor_seconds,
        "build_vs_floor": build_seconds / floor_seconds if floor_seconds else math.nan,
        "goal_build_vs_floor_max": 3.0,
        "build_models_thread_s": build["models_thread_s"],
        "build_tests_thread_s": build["tests_thread_s"],
        "build_slowest_s": build["slowest_s"],
    }


def daily(bench: Bench, _settings: WarehouseSettings) -> dict[str, Any]:
    """A day's build and raw gate at 30 and at 365 days of history, same users; the day
    before is built first (so the day's build is incremental where the project is)."""
    from upshift.gates import run_gate

    figures: dict[str, Any] = {"users": bench.users}
    for days in (30, 365):
        settings = bench.database(f"upshift_bench_daily_{days}")
        try:
            figures[f"events_{days}d"] = generate(bench, settings, days)["events"]
            figures[f"first_build_{days}d_s"] = dbt_build(bench, settings, bench.as_of - dt.timedelta(days=1))[
                "seconds"
            ]
            day = dbt_build(bench, settings, bench.as_of)
            figures[f"daily_build_{days}d_s"] = day["seconds"]
            figures[f"daily_build_{days}d_slowest_s"] = day["slowest_s"]
            with timed() as timer:
                run_gate("raw", settings, bench.as_of)
            figures[f"raw_gate_{days}d_s"] = timer.seconds
        finally:
            bench.drop(settings)
    figures["daily_365_vs_30"] = figures["daily_build_365d_s"] / figures["daily_build_30d_s"]
    figures["goal_daily_365_vs_30_max"] = 1.2
    figures["raw_gate_365_vs_30"] = figures["raw_gate_365d_s"] / figures["raw_gate_30d_s"]
    figures["goal_raw_gate_365_vs_30_max"] = 1.2
    return figures


def dag(bench: Bench, settings: WarehouseSettings) -> dict[str, Any]:
    """The whole DAG under a real scheduler (dry run) vs one dbt build, same data and as-of."""
    from upshift.local_airflow import DAG_ID, LocalAirflow, state_counts

    build_seconds = dbt_build(bench, settings, bench.as_of)["seconds"]
    dbt.parse(settings)
    stack = LocalAirflow(
        settings,
        metadata_database=f"{settings.database}_airflow",
        home=bench.out_dir / "airflow",
        quiet=True,
        executor=bench.executor,
    )
    stack.prepare()
    stack.start()
    try:
        api = stack.wait_until_ready(timeout=600)
        api.unpause(DAG_ID)
        started = time.perf_counter()
        run_id = api.trigger(DAG_ID, bench.as_of, {"dry_run": True})
        state = api.wait_for_run(DAG_ID, run_id, timeout=6 * 3600)
        dag_seconds = time.perf_counter() - started
        instances = api.task_instances(DAG_ID, run_id)
    finally:
        stack.stop()
        bench.drop(replace(settings, database=stack.metadata_database))
    states = {instance["task_id"]: instance["state"] for instance in instances}
    figures: dict[str, Any] = {
        "users": bench.users,
        "executor": bench.executor.describe(),
        "dag_state": state,
        "tasks": len(states),
        "task_states": state_counts(states),
        "dag_s": dag_seconds,
        "dbt_build_s": build_seconds,
        "dag_vs_build": dag_seconds / build_seconds,
        "goal_dag_vs_build_max": 1.5,
    }
    if bench.executor.celery:
        figures["tasks_per_worker"] = dict(Counter(instance["hostname"] for instance in instances).most_common())
    return figures


def _users_per_second(emulator: Any) -> dict[str, float]:
    """Each destination's ceiling in users/s under `emulator`'s limits: requests/s x users a request."""
    return {
        "braze": emulator.braze_track_rate_limit
        / emulator.braze_track_rate_window_seconds
        * emulator.braze_max_objects_per_array,
        "iterable": emulator.iterable_bulk_update_rate_per_second * emulator.iterable_bulk_update_max_users,
    }


def _workspace(bench: Bench) -> tuple[Any, dict[str, str]]:
    """The emulator's settings (the documented limits unless the bench configures a workspace's
    own, as a contract may; fresh keys) and the `UPSHIFT_SYNC_*` variables that give the sync's
    client-side limiter the same limits, as a deployment configures its contract's."""
    from upshift.emulator import EmulatorSettings

    documented = EmulatorSettings()
    emulator = documented.with_overrides(
        braze_api_key=f"braze-{secrets.token_hex(8)}",
        iterable_api_key=f"iterable-{secrets.token_hex(8)}",
        braze_track_rate_limit=bench.braze_track_rate_limit or documented.braze_track_rate_limit,
        iterable_bulk_update_rate_per_second=bench.iterable_bulk_update_rate
        or documented.iterable_bulk_update_rate_per_second,
    )
    client = {
        "UPSHIFT_SYNC_BRAZE_TRACK_RATE_LIMIT": str(emulator.braze_track_rate_limit),
        "UPSHIFT_SYNC_BRAZE_TRACK_RATE_WINDOW_SECONDS": str(emulator.braze_track_rate_window_seconds),
        "UPSHIFT_SYNC_ITERABLE_BULK_UPDATE_RATE_PER_SECOND": str(emulator.iterable_bulk_update_rate_per_second),
    }
    return emulator, client


def sync(bench: Bench, settings: WarehouseSettings) -> dict[str, Any]:
    """First sync (every user new) and a second one (nothing changed), against the emulator.

    Per destination: the requests of the users step against the minimum (ceil(changed / batch)),
    the users/s reached against the ceiling of the configured limits (and the documented
    ceiling beside it), and the 429s the emulator answered in the step.
    """
    from upshift.emulator import EmulatorSettings
    from upshift.emulator.server import start_subprocess
    from upshift.sync import SyncSettings

    emulator_settings, client_limits = _workspace(bench)
    ceilings = _users_per_second(emulator_settings)
    documented = _users_per_second(EmulatorSettings())
    batch = {
        "braze": SyncSettings().braze_max_objects_per_array,
        "iterable": SyncSettings().iterable_bulk_update_max_users,
    }
    emulator = start_subprocess(emulator_settings)
    env = {
        **settings.env(),
        **client_limits,
        "BENCH_BRAZE_API_KEY": emulator_settings.braze_api_key,
        "BENCH_ITERABLE_API_KEY": emulator_settings.iterable_api_key,
        "BENCH_EMULATOR_PID": str(emulator.pid),
    }
    load_before = os.getloadavg()[0]
    try:
        arguments = ["sync", "--as-of", bench.as_of.isoformat(), "--emulator", emulator.url]
        first = run_child("benchmarks.steps", [*arguments, "--run-id", "bench-first"], env=env)
        second = run_child("benchmarks.steps", [*arguments, "--run-id", "bench-second"], env=env)
    finally:
        emulator.stop()
    bench.peak_rss_mib["sync"] = max(first.peak_rss_mib, second.peak_rss_mib)
    figures: dict[str, Any] = {
        "users": bench.users,
        "load_average_1min": f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
        "sync_s": first.seconds,
        "resync_unchanged_s": second.seconds,
    }
    for destination in ("braze", "iterable"):
        step = first.result[f"{destination}_users"]
        changed = step.get("new", 0) + step.get("changed", 0)
        throughput = changed / step["seconds"] if step["seconds"] else math.nan
        expected_requests = math.ceil(changed / batch[destination])
        requests = step["requests"] or math.nan
        emulator_cpu = step.get("emulator_cpu_s") or math.nan
        figures.update(
            {
                f"{destination}_changed_users": changed,
                f"{destination}_requests": step["requests"],
                f"{destination}_requests_minimum": expected_requests,
                f"{destination}_requests_vs_minimum": step["requests"] / expected_requests if expected_requests else 0,
                f"{destination}_rate_limited_requests": step["rate_limited"],
                f"{destination}_users_per_s": throughput,
                f"{destination}_requests_per_s": step["requests"] / step["seconds"] if step["seconds"] else math.nan,
                f"{destination}_ceiling_users_per_s": ceilings[destination],
                f"{destination}_documented_ceiling_users_per_s": documented[destination],
                f"{destination}_share_of_ceiling": throughput / ceilings[destination],
                f"{destination}_seconds_in_sync": step["seconds"],
                f"{destination}_seconds_in_emulator": step.get("emulator_seconds", math.nan),
                # CPU per request of each side, and the most users/s the emulator (one Python
                # process: one core at best, GIL-bound) could answer were it alone on a core.
                f"{destination}_client_cpu_ms_per_request": step["client_cpu_s"] * 1000 / requests,
                f"{destination}_emulator_cpu_ms_per_request": emulator_cpu * 1000 / requests,
                f"{destination}_emulator_one_core_users_per_s": changed / emulator_cpu,
                f"{destination}_unchanged_rerun_requests": second.result[f"{destination}_users"]["requests"],
                f"goal_{destination}_share_of_ceiling_min": 0.9,
                f"goal_{destination}_requests_vs_minimum_max": 1.01,
            }
        )
    size = {"braze": batch["braze"], "iterable": SyncSettings().iterable_track_bulk_max_events}
    for destination in ("braze", "iterable"):
        step = first.result[f"{destination}_events"]
        minimum = math.ceil(step.get("due", 0) / size[destination])
        figures[f"{destination}_events_requests"] = step["requests"]
        figures[f"{destination}_events_requests_vs_minimum"] = step["requests"] / minimum if minimum else 0
        figures[f"goal_{destination}_events_requests_vs_minimum_max"] = 1.01
    lists = first.result["iterable_lists"]
    figures["iterable_lists_requests"] = lists["requests"]
    # The minimum is per list and direction (one listId per subscribe call; the step computes it).
    minimum = lists.get("minimum_requests", 0)
    figures["iterable_lists_requests_vs_minimum"] = lists["requests"] / minimum if minimum else 0
    figures["goal_iterable_lists_requests_vs_minimum_max"] = 1.01
    figures["unchanged_rerun_requests_all_steps"] = sum(step["requests"] for step in second.result.values())
    figures["unchanged_rerun_requests_by_step"] = {name: step["requests"] for name, step in second.result.items()}
    figures["first_sync_requests_by_step"] = {name: step["requests"] for name, step in first.result.items()}
    figures["first_sync_seconds_by_step"] = {name: step["seconds"] for name, step in first.result.items()}
    figures["goal_unchanged_rerun_requests_all_steps_max"] = 0
    return figures


def memory(bench: Bench, settings: WarehouseSettings) -> dict[str, Any]:
    """Peak RSS of the gates and report processes here; generator and sync come from their scenarios."""
    gates_run = run_child("benchmarks.steps", ["gates", "--as-of", bench.as_of.isoformat()], env=settings.env())
    bench.peak_rss_mib["gates"] = gates_run.peak_rss_mib
    report_run = run_child(
        "upshift.report",
        ["--as-of", bench.as_of.isoformat(), "--out", str(bench.out_dir / "growth_review")],
        env=settings.env(),
    )
    bench.peak_rss_mib["report"] = report_run.peak_rss_mib
    figures: dict[str, Any] = {"users": bench.users, "gates_s": gates_run.seconds, "report_s": report_run.seconds}
    figures.update({f"{name}_peak_rss_mib": value for name, value in sorted(bench.peak_rss_mib.items())})
    figures["gates"] = gates_run.result
    return figures


SCENARIOS: dict[str, Callable[[Bench, WarehouseSettings], dict[str, Any]]] = {
    "scoring": scoring,
    "dag": dag,
    "sync": sync,
    "memory": memory,
    "daily": daily,
}
