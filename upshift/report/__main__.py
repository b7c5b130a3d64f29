"""`python -m upshift.report --as-of YYYY-MM-DD [--out DIR]`: build the weekly growth review and
print its headline numbers (no user ids, no contact details) and where it was written."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

from upshift.report.build import ReportResult, build_growth_review, default_out_dir
from upshift.warehouse import WarehouseError, WarehouseSettings, ensure_warehouse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m upshift.report", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        required=True,
        metavar="YYYY-MM-DD",
        help="the as-of date to review (its growth_headlines row must exist)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: <UPSHIFT_HOME>/growth_review/<as-of>/)")
    return parser


def format_headlines(result: ReportResult) -> str:
    """The headline block the CLI and the demo print."""
    width = max(len(headline.label) for headline in result.headlines)
    lines = []
    for headline in result.headlines:
        flag = f"[{headline.flag}]" if headline.flag else "[no target]"
        change = f"  {headline.change_display}" if headline.change_display else ""
        lines.append(f"  {headline.label:<{width}}  {headline.display:>14}  {flag:<9}{change}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = ensure_warehouse(WarehouseSettings.from_env())
    except WarehouseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    result = build_growth_review(settings, args.as_of, args.out or default_out_dir(settings, args.as_of))
    print(f"Growth review as of {args.as_of.isoformat()}")
    print(format_headlines(result))
    print(f"Report: {result.html_path}")
    print(f"CSV extracts: {result.html_path.parent} ({len(result.csv_paths)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
