"""Benchmark the marketplace generator: rows/s, total events and peak RSS at a given size.

    python benchmarks/bench_generator.py --users 100000 --dsn "host=127.0.0.1 user=postgres"

Writes into its own schema (default `bench_raw`), replacing that schema's tables, so it
never touches the raw schema the dbt project reads. Without --dsn the PG* environment
variables are used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
from pathlib import Path

import psycopg

# Runnable from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from upshift.generator import generate_marketplace
from upshift.generator.generate import CHUNK_USERS
from upshift.warehouse import pin_time_zone

CLIENT_SHARE = 0.7


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="clients + workers (default 100000)")
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2025, 6, 1))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dirty-rate", type=float, default=0.005)
    parser.add_argument("--schema", default="bench_raw")
    parser.add_argument("--dsn", default="")
    parser.add_argument("--chunk-users", type=int, default=CHUNK_USERS, help="users generated per chunk")
    parser.add_argument("--quiet", action="store_true", help="no per-chunk progress lines")
    args = parser.parse_args(argv)

    clients = round(args.users * CLIENT_SHARE)
    with pin_time_zone(psycopg.connect(args.dsn)) as conn:
        report = generate_marketplace(
            conn,
            schema=args.schema,
            clients=clients,
            workers=args.users - clients,
            days=args.days,
            as_of=args.as_of,
            seed=args.seed,
            dirty_rate=args.dirty_rate,
            progress=not args.quiet,
            chunk_users=args.chunk_users,
        )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"users          {args.users:>12,}  ({clients:,} clients, {args.users - clients:,} workers, {args.days} days)"
    )
    for table, rows in report.rows.items():
        print(f"  {table:<16} {rows:>12,}")
    print(f"events         {report.events:>12,}")
    print(f"rows           {report.total_rows:>12,}")
    print(f"seconds        {report.seconds:>12,.1f}")
    print(f"rows/s         {report.total_rows / report.seconds:>12,.0f}")
    print(f"peak RSS       {peak_mib:>12,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
