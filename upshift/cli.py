"""Command line: `python -m upshift.cli <command>`.

`demo` is what the README's first quickstart command runs: warehouse, synthetic marketplace,
one DAG run under a local Airflow (api-server, scheduler, dag-processor, triggerer), summary.
The other commands are its steps, for operators who want one of them; `airflow up` leaves the
local Airflow running for its UI.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime

from upshift import dbt, local_airflow, warehouse
from upshift.local_airflow import DAG_ID, AirflowNotReady, DagRunFailed
from upshift.run_lock import run_lock
from upshift.summary import MartMissing, readiness_summary, render_task_states, sync_summary
from upshift.warehouse import WarehouseError, WarehouseSettings


def _as_of(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from error


def _today_utc() -> date:
    return datetime.now(UTC).date()


def _step(message: str) -> float:
    print(f"==> {message}", flush=True)
    return time.monotonic()


def _done(started: float) -> None:
    print(f"    done in {time.monotonic() - started:.1f}s", flush=True)


def generate(settings: WarehouseSettings, args: argparse.Namespace) -> None:
    """Write the synthetic marketplace into the raw schema (replacing what is there)."""
    from upshift.generator import GenerationOptions, generate_marketplace

    with warehouse.connect(settings) as conn:
        report = generate_marketplace(conn, GenerationOptions.from_args(args, schema=settings.raw_schema))
    dirty = sum(report.dirty_by_kind().values())
    print(
        f"    {report.total_rows:,} rows ({report.events:,} events, {dirty:,} deliberately bad) "
        f"into schema {report.schema} in {report.seconds:.1f}s"
    )


def run_dag(settings: WarehouseSettings, as_of: date, options: argparse.Namespace) -> None:
    """Parse the dbt project, then run the DAG for `as_of` under a local Airflow (or in-process)."""
    started = _step("dbt parse (writes the manifest the DAG renders from)")
    dbt.parse(settings)
    _done(started)
    conf = {"full_refresh": options.full_refresh, "dry_run": options.dry_run}
    if options.in_process:
        _run_in_process(settings, as_of, options)
    else:
        _run_under_scheduler(settings, as_of, conf, options)


def _run_in_process(settings: WarehouseSettings, as_of: date, options: argparse.Namespace) -> None:
    started = _step(f"Airflow metadata database in {local_airflow.airflow_home(settings)}")
    local_airflow.configure(settings, quiet=not options.verbose)
    print("    migrated" if local_airflow.migrate_metadata_db() else "    up to date")
    _done(started)

    started = _step(f"run DAG {DAG_ID} for the interval ending {as_of} (in-process, dag.test)")
    if local_airflow.destinations_configured():
        print("    the sync uses the configured braze_default / iterable_default connections")
    else:
        print("    no braze_default / iterable_default connection configured: the sync sends to a local emulator")
    if options.dry_run:
        print("    dry run: the sync sends nothing and records nothing as accepted")
    local_airflow.run_dag_once(as_of, full_refresh=options.full_refresh, dry_run=options.dry_run)
    _done(started)


def _run_under_scheduler(
    settings: WarehouseSettings, as_of: date, conf: dict[str, object], options: argparse.Namespace
) -> None:
    """Trigger the DAG through the REST API of a local Airflow and wait for the scheduler to run it."""
    running = local_airflow.recorded_url(settings)
    stack = None
    if running:
        print(f"==> using the local Airflow already running at {running}")
        api = local_airflow.AirflowApi(running)
    else:
        stack, api = _start_airflow(settings, port=options.port, quiet=not options.verbose, keep=options.keep_airflow)
    try:
        started = _step(f"trigger {DAG_ID} for the interval ending {as_of} (REST API; the scheduler runs it)")
        api.unpause(DAG_ID)
        run_id = api.trigger(DAG_ID, as_of, conf)
        state = api.wait_for_run(DAG_ID, run_id, timeout=options.timeout)
        states = api.task_states(DAG_ID, run_id)
        print(f"    run {run_id}: {state}")
        print(render_task_states(local_airflow.state_counts(states)))
        _done(started)
        if state != "success":
            failed = sorted(task for task, task_state in states.items() if task_state == "failed")
            blocked = sum(task_state in {"upstream_failed", None} for task_state in states.values())
            raise DagRunFailed(
                f"{DAG_ID} for as-of {as_of} ended {state}: failed {failed}, {blocked} tasks after them did not run. "
                f"Task logs: {local_airflow.airflow_home(settings) / 'logs'} (or the UI: rerun with --keep-airflow)"
            )
    finally:
        if stack is not None and not options.keep_airflow:
            started = _step("stop Airflow")
            stack.stop()
            _done(started)
        elif stack is not None:
            _print_ui(stack.url)


def _start_airflow(
    settings: WarehouseSettings, *, port: int, quiet: bool, keep: bool
) -> tuple[local_airflow.LocalAirflow, local_airflow.AirflowApi]:
    stack = local_airflow.LocalAirflow(settings, port=port, quiet=quiet, die_with_parent=not keep)
    started = _step(f"Airflow metadata database `{stack.metadata_database}` on the warehouse server, pools")
    stack.prepare()
    _done(started)
    started = _step(f"start Airflow on {stack.url}: {', '.join(local_airflow.SERVICES)} ({stack.executor.describe()})")
    stack.start()
    try:
        api = stack.wait_until_ready()
    except BaseException:
        stack.stop()
        raise
    _done(started)
    stale = api.fail_unfinished_runs(DAG_ID)
    if stale:
        print(f"    marked failed: {len(stale)} queued or running run(s) a stopped Airflow left: {', '.join(stale)}")
    return stack, api


def _print_ui(url: str) -> None:
    print(f"\nAirflow keeps running: {url} (DAG {DAG_ID}). Stop it with `python -m upshift.cli airflow down`.")


def print_summary(settings: WarehouseSettings, as_of: date) -> None:
    with warehouse.connect(settings) as conn:
        print()
        print(readiness_summary(conn, settings, as_of))


def cmd_demo(args: argparse.Namespace) -> None:
    total = time.monotonic()
    started = _step("warehouse")
    settings = warehouse.ensure_warehouse()
    print(f"    {settings.describe()}")
    _done(started)

    with run_lock(settings):
        started = _step(f"generate a marketplace: {args.clients} clients, {args.workers} workers, {args.days} days")
        generate(settings, args)
        forget_earlier_results(settings)
        _done(started)

        run_dag(settings, args.as_of, args)
        print_summary(settings, args.as_of)
        print_sync_and_review(settings, args.as_of)
    print(f"\nDemo finished in {time.monotonic() - total:.0f}s.")


def forget_earlier_results(settings: WarehouseSettings) -> None:
    """A new demo marketplace is a new world: drop the models and sync state an earlier demo left.

    Otherwise the readiness history of the earlier (different) synthetic users would count as
    yesterday, and the scores gate would rightly block the run for its tier churn.
    """
    from psycopg import sql

    from upshift.sync.settings import SyncSettings

    sync_schema = SyncSettings.from_env().schema
    with warehouse.connect(settings, autocommit=True) as conn:
        schemas = [
            name
            for (name,) in conn.execute(
                "select nspname from pg_namespace where nspname like %s or nspname = %s",
                (f"{settings.schema}\\_%", sync_schema),
            )
        ]
        for name in schemas:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(name)))
    if schemas:
        print(f"    dropped what an earlier demo left: {', '.join(sorted(schemas))}")


def print_sync_and_review(settings: WarehouseSettings, as_of: date) -> None:
    """What Braze and Iterable accepted in this run, then the growth review's headlines and path."""
    from upshift.report import build_growth_review, default_out_dir, format_headlines
    from upshift.sync.settings import SyncSettings

    with warehouse.connect(settings) as conn:
        print()
        print(sync_summary(conn, as_of, SyncSettings.from_env().schema))
    result = build_growth_review(settings, as_of, default_out_dir(settings, as_of))
    print()
    print(format_headlines(result.headlines))
    print(f"\nGrowth review: {result.html_path}")


def cmd_generate(args: argparse.Namespace) -> None:
    settings = warehouse.ensure_warehouse()
    started = _step(f"generate into {settings.describe()}")
    generate(settings, args)
    _done(started)


def cmd_run(args: argparse.Namespace) -> None:
    settings = warehouse.ensure_warehouse()
    with run_lock(settings):
        run_dag(settings, args.as_of, args)
        print_summary(settings, args.as_of)


def cmd_summary(args: argparse.Namespace) -> None:
    print_summary(warehouse.ensure_warehouse(), args.as_of)


def cmd_dbt_parse(_args: argparse.Namespace) -> None:
    print(f"wrote {dbt.parse()}")


def cmd_airflow(args: argparse.Namespace) -> None:
    settings = warehouse.ensure_warehouse() if args.action == "up" else WarehouseSettings.from_env()
    running = local_airflow.recorded_url(settings)
    if args.action == "status":
        print(f"running: {running}" if running else "not running")
    elif args.action == "down":
        print("stopped" if local_airflow.stop_recorded(settings) else "was not running")
    elif running:
        _print_ui(running)
    else:
        started = _step("dbt parse (writes the manifest the DAG renders from)")
        dbt.parse(settings)
        _done(started)
        stack, _api = _start_airflow(settings, port=args.port, quiet=False, keep=True)
        _print_ui(stack.url)


def cmd_warehouse(args: argparse.Namespace) -> None:
    settings = WarehouseSettings.from_env()
    if args.action == "status":
        state = warehouse.embedded_status(settings) if settings.embedded else "external"
        print(f"{state}: data in {settings.embedded_data_dir}" if settings.embedded else settings.describe())
        if state == "running":
            print(warehouse.ensure_warehouse(settings).describe())
    elif args.action == "start":
        print(warehouse.ensure_warehouse(settings).describe())
    elif not settings.embedded:
        print("UPSHIFT_PG_HOST is set: that server is not ours to stop.")
    else:
        print("stopped" if warehouse.stop_embedded(settings) else "was not running")


def _add_generator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=2000, help="number of clients (default 2000)")
    parser.add_argument("--workers", type=int, default=1000, help="number of workers (default 1000)")
    parser.add_argument("--days", type=int, default=120, help="days of history before the as-of date (default 120)")
    parser.add_argument("--seed", type=int, default=42, help="random seed; the same seed gives the same data")
    parser.add_argument(
        "--dirty-rate",
        type=float,
        default=0.005,
        help="share of raw rows made bad, which dbt quarantines (default 0.005; above ~1%% of a table "
        "the raw gate stops the run, as it would for a broken feed)",
    )


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true", help="show every task's Airflow and dbt log")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--full-refresh", action="store_true", help="rebuild incremental models from scratch")
    parser.add_argument("--dry-run", action="store_true", help="score as usual; the sync step sends nothing")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the DAG in this process with dag.test() instead of under a local scheduler",
    )
    parser.add_argument(
        "--keep-airflow", action="store_true", help="leave the local Airflow running afterwards, for its UI"
    )
    _add_port(parser)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the DAG run (default 1800)")


def _add_port(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        type=int,
        default=local_airflow.DEFAULT_PORT,
        help=f"api-server and UI port on 127.0.0.1 (default {local_airflow.DEFAULT_PORT}, or a free one if taken)",
    )


def _add_as_of(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as-of", type=_as_of, default=_today_utc(), help="score as of this date, YYYY-MM-DD (default today, UTC)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m upshift.cli", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="warehouse + synthetic marketplace + one DAG run + summary")
    _add_generator_options(demo)
    _add_as_of(demo)
    _add_verbose(demo)
    _add_run_options(demo)
    demo.set_defaults(handler=cmd_demo)

    generate_parser = commands.add_parser("generate", help="write a synthetic marketplace into the raw schema")
    _add_generator_options(generate_parser)
    _add_as_of(generate_parser)
    generate_parser.set_defaults(handler=cmd_generate)

    run = commands.add_parser("run", help="run the DAG once for an as-of date (rerun = same result)")
    _add_as_of(run)
    _add_verbose(run)
    _add_run_options(run)
    run.set_defaults(handler=cmd_run)

    summary = commands.add_parser("summary", help="print tier counts, example users and quarantine counts")
    _add_as_of(summary)
    summary.set_defaults(handler=cmd_summary)

    commands.add_parser("dbt-parse", help="write dbt_project/target/manifest.json").set_defaults(handler=cmd_dbt_parse)

    airflow = commands.add_parser("airflow", help="local Airflow for its UI: up (stays running), down, status")
    airflow.add_argument("action", choices=["up", "down", "status"])
    _add_port(airflow)
    airflow.set_defaults(handler=cmd_airflow)

    warehouse_parser = commands.add_parser("warehouse", help="embedded PostgreSQL: start, stop, status")
    warehouse_parser.add_argument("action", choices=["start", "stop", "status"])
    warehouse_parser.set_defaults(handler=cmd_warehouse)
    return parser


def check_configuration() -> None:
    """Refuse unsafe or malformed UPSHIFT_* settings before anything connects or runs."""
    from upshift.sync.settings import SyncSettings

    WarehouseSettings.from_env()
    try:
        SyncSettings.from_env()
        local_airflow.ExecutorSettings.from_env()
    except ValueError as error:
        raise WarehouseError(str(error)) from error


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_configuration()
        args.handler(args)
    except (WarehouseError, dbt.DbtCommandFailed, DagRunFailed, AirflowNotReady, MartMissing) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
