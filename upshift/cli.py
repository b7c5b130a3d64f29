"""Command line: `python -m upshift.cli <command>`.

`demo` is what the README's first quickstart command runs: warehouse, synthetic marketplace,
one DAG run, summary. The other commands are its steps, for operators who want one of them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime

from upshift import dbt, local_airflow, warehouse
from upshift.local_airflow import DagRunFailed
from upshift.summary import MartMissing, readiness_summary
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
    from upshift.generator import generate_marketplace

    with warehouse.connect(settings) as conn:
        report = generate_marketplace(
            conn,
            schema=settings.raw_schema,
            clients=args.clients,
            workers=args.workers,
            days=args.days,
            as_of=args.as_of,
            seed=args.seed,
            dirty_rate=args.dirty_rate,
            progress=None,
        )
    dirty = sum(report.dirty_by_kind().values())
    print(
        f"    {report.total_rows:,} rows ({report.events:,} events, {dirty:,} deliberately bad) "
        f"into schema {report.schema} in {report.seconds:.1f}s"
    )


def run_dag(settings: WarehouseSettings, as_of: date, *, full_refresh: bool = False, verbose: bool = False) -> None:
    """Parse the dbt project, prepare a local Airflow, and run the DAG for `as_of`."""
    started = _step("dbt parse (writes the manifest the DAG renders from)")
    dbt.parse(settings)
    _done(started)

    started = _step(f"Airflow metadata database in {local_airflow.airflow_home(settings)}")
    local_airflow.configure(settings, quiet=not verbose)
    print("    migrated" if local_airflow.migrate_metadata_db() else "    up to date")
    _done(started)

    started = _step(f"run DAG {local_airflow.DAG_ID} for the interval ending {as_of} (dag.test)")
    local_airflow.run_dag_once(as_of, full_refresh=full_refresh)
    _done(started)


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

    started = _step(f"generate a marketplace: {args.clients} clients, {args.workers} workers, {args.days} days")
    generate(settings, args)
    _done(started)

    run_dag(settings, args.as_of, verbose=args.verbose)
    print_summary(settings, args.as_of)
    print(f"\nDemo finished in {time.monotonic() - total:.0f}s.")


def cmd_generate(args: argparse.Namespace) -> None:
    settings = warehouse.ensure_warehouse()
    started = _step(f"generate into {settings.describe()}")
    generate(settings, args)
    _done(started)


def cmd_run(args: argparse.Namespace) -> None:
    settings = warehouse.ensure_warehouse()
    run_dag(settings, args.as_of, full_refresh=args.full_refresh, verbose=args.verbose)
    print_summary(settings, args.as_of)


def cmd_summary(args: argparse.Namespace) -> None:
    print_summary(warehouse.ensure_warehouse(), args.as_of)


def cmd_dbt_parse(_args: argparse.Namespace) -> None:
    print(f"wrote {dbt.parse()}")


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
    parser.add_argument("--dirty-rate", type=float, default=0.01, help="share of raw rows made bad (default 0.01)")


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true", help="show every task's Airflow and dbt log")


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
    demo.set_defaults(handler=cmd_demo)

    generate_parser = commands.add_parser("generate", help="write a synthetic marketplace into the raw schema")
    _add_generator_options(generate_parser)
    _add_as_of(generate_parser)
    generate_parser.set_defaults(handler=cmd_generate)

    run = commands.add_parser("run", help="run the DAG once for an as-of date (rerun = same result)")
    _add_as_of(run)
    _add_verbose(run)
    run.add_argument("--full-refresh", action="store_true", help="rebuild incremental models from scratch")
    run.set_defaults(handler=cmd_run)

    summary = commands.add_parser("summary", help="print tier counts, example users and quarantine counts")
    _add_as_of(summary)
    summary.set_defaults(handler=cmd_summary)

    commands.add_parser("dbt-parse", help="write dbt_project/target/manifest.json").set_defaults(handler=cmd_dbt_parse)

    warehouse_parser = commands.add_parser("warehouse", help="embedded PostgreSQL: start, stop, status")
    warehouse_parser.add_argument("action", choices=["start", "stop", "status"])
    warehouse_parser.set_defaults(handler=cmd_warehouse)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (WarehouseError, dbt.DbtCommandFailed, DagRunFailed, MartMissing) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
