"""Benchmark the marketplace generator: rows/s, total events and peak RSS at a given size.

    UPSHIFT_PG_HOST=127.0.0.1 UPSHIFT_PG_USER=postgres python benchmarks/bench_generator.py --users 100000

Writes into its own schema (default `bench_raw`), replacing that schema's tables, so it
never touches the raw schema the dbt project reads. The server is the warehouse's
(upshift.warehouse.connect: the UPSHIFT_PG_* variables, unset the embedded PostgreSQL).
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
from pathlib import Path

# Runnable from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from upshift.generator import GenerationOptions, generate_marketplace
from upshift.generator.generate import CHUNK_USERS
from upshift.warehouse import connect

CLIENT_SHARE = 0.7


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="clients + workers (default 100000)")
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2025, 6, 1))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dirty-rate", type=float, default=0.005)
    parser.add_argument("--schema", default="bench_raw")
    parser.add_argument(
        "--database", default=None, help="database of the warehouse server (default: UPSHIFT_PG_DATABASE)"
    )
    parser.add_argument("--chunk-users", type=int, default=CHUNK_USERS, help="users generated per chunk")
    parser.add_argument("--quiet", action="store_true", help="no per-chunk progress lines")
    args = parser.parse_args(argv)

    clients = round(args.users * CLIENT_SHARE)
    with connect(database=args.database) as conn:
        report = generate_marketplace(
            conn,
            GenerationOptions(
                schema=args.schema,
                clients=clients,
                workers=args.users - clients,
                days=args.days,
                as_of=args.as_of,
                seed=args.seed,
                dirty_rate=args.dirty_rate,
                progress=not args.quiet,
                chunk_users=args.chunk_users,
            ),
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
