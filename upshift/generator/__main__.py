"""python -m upshift.generator: fill the raw tables of a PostgreSQL database or of Spark with demo data.

On PostgreSQL (the default) the connection is the warehouse's, as every upshift command opens it
(upshift.warehouse.connect: the UPSHIFT_PG_* variables, or the embedded server when
UPSHIFT_PG_HOST is unset); --database picks another database of that server. With --warehouse spark
(default: UPSHIFT_WAREHOUSE) the rows go to the Parquet tables of the Spark database named like
--schema, in the local Spark dbt-spark's session method opens (upshift/spark.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from upshift.generator.generate import CHUNK_USERS, GenerationOptions, generate_marketplace
from upshift.warehouse import WAREHOUSE_ENGINES, connect, warehouse_engine


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m upshift.generator", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2_000, help="number of clients (default 2000)")
    parser.add_argument("--workers", type=int, default=800, help="number of workers (default 800)")
    parser.add_argument("--days", type=int, default=120, help="days of history before as-of (default 120)")
    parser.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        required=True,
        help="as-of date YYYY-MM-DD; events end at its midnight UTC",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed; same seed, same tables (default 42)")
    parser.add_argument("--dirty-rate", type=float, default=0.005, help="share of rows to corrupt (default 0.005)")
    parser.add_argument("--schema", default="raw", help="raw schema to (re)fill (default raw)")
    parser.add_argument(
        "--database", default=None, help="PostgreSQL database of the warehouse server (default: UPSHIFT_PG_DATABASE)"
    )
    parser.add_argument(
        "--warehouse",
        choices=WAREHOUSE_ENGINES,
        default=None,
        help="engine to fill: postgres or spark (default: UPSHIFT_WAREHOUSE, else postgres)",
    )
    parser.add_argument("--chunk-users", type=int, default=CHUNK_USERS, help="users generated per chunk")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress", dest="progress", action="store_true", default=None, help="always print progress"
    )
    progress.add_argument("--quiet", dest="progress", action="store_false", help="never print progress")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options = GenerationOptions.from_args(args)
    engine = args.warehouse or warehouse_engine()
    unrepresentable: dict[str, int] = {}
    if engine == "spark":
        from upshift.spark import generate_marketplace_spark, spark_session

        session = spark_session()
        try:
            generation = generate_marketplace_spark(session, options)
        finally:
            session.stop()
        report, unrepresentable = generation.report, generation.unrepresentable
    else:
        with connect(database=args.database) as conn:
            report = generate_marketplace(conn, options)
    print(f"loaded {report.total_rows:,} rows into {engine} schema {report.schema} in {report.seconds:,.1f}s")
    for table, rows in report.rows.items():
        dirty = sum(report.dirty.get(table, {}).values())
        print(f"  {table:<16} {rows:>12,} rows  {dirty:>8,} dirty")
    print(f"  {'events':<16} {report.events:>12,}")
    for table, rows in unrepresentable.items():
        print(f"  {table:<16} {rows:>12,} rows with a NaN amount left out (Spark decimals have no NaN)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
