"""`python -m upshift.report --as-of YYYY-MM-DD [--out DIR]`: build the weekly growth review and
print its headline numbers (no user ids, no contact details) and where it was written."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

from upshift.report.build import build_growth_review, default_out_dir
from upshift.report.headlines import format_headlines
from upshift.warehouse import WarehouseError, WarehouseSettings, ensure_warehouse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m upshift.report",
        description="Build the weekly growth review (HTML + CSV extracts) from the metrics marts.",
    )
    parser.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        required=True,
        metavar="YYYY-MM-DD",
        help="the as-of date to review (its growth_headlines row must exist)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="output folder (default: <UPSHIFT_HOME>/growth_review/<as-of>/)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = ensure_warehouse(WarehouseSettings.from_env())
    except WarehouseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    result = build_growth_review(settings, args.as_of, args.out or default_out_dir(settings, args.as_of))
    print(f"Growth review as of {args.as_of.isoformat()}")
    print(format_headlines(result.headlines))
    print(f"Report: {result.html_path}")
    print(f"CSV extracts: {result.html_path.parent} ({len(result.csv_paths)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
