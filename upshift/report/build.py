"""Build the weekly growth review: read the marts, write the HTML page and one CSV per mart."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from upshift.report.headlines import Headline, build_headlines, headline_rows
from upshift.report.marts import read_marts
from upshift.report.page import render_page
from upshift.warehouse import WarehouseSettings


@dataclass(frozen=True)
class ReportResult:
    """Where the review was written and the headline numbers it shows."""

    html_path: Path
    csv_paths: dict[str, Path]
    headlines: tuple[Headline, ...]

    def summary(self) -> dict[str, object]:
        """A small JSON-able summary (for an Airflow task's XCom): paths and headline flags."""
        return {
            "html_path": str(self.html_path),
            "csv_files": len(self.csv_paths),
            "headlines": {
                headline.key: {"value": headline.value, "flag": headline.flag} for headline in self.headlines
            },
        }


def default_out_dir(settings: WarehouseSettings, as_of: dt.date) -> Path:
    """`<UPSHIFT_HOME>/growth_review/<as_of>/`: one folder per reviewed date, rebuilt on rerun."""
    return settings.home / "growth_review" / as_of.isoformat()


def build_growth_review(settings: WarehouseSettings, as_of: dt.date, out_dir: Path) -> ReportResult:
    """Write `growth_review_<as_of>.html` and `<mart>.csv` extracts into out_dir.

    `settings` must have a concrete host (from ensure_warehouse, or an Airflow connection).
    Rebuilding the same date overwrites the same files, so a rerun of the weekly DAG is safe.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    marts = read_marts(settings, as_of, extract_to=out_dir)
    headlines = build_headlines(marts["growth_headlines"], as_of)
    current, _ = headline_rows(marts["growth_headlines"], as_of)
    csv_paths = {name: out_dir / f"{name}.csv" for name, table in marts.items() if table.exists}
    html_path = out_dir / f"growth_review_{as_of.isoformat()}.html"
    page = render_page(marts, headlines, current, as_of, settings.layer_schema("marts"))
    html_path.write_text(page, encoding="utf-8")
    return ReportResult(html_path, csv_paths, headlines)
