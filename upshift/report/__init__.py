"""The weekly growth review: a self-contained HTML report and CSV extracts of the metrics marts.

`build_growth_review(settings, as_of, out_dir)` is what the weekly `growth_review` DAG, the demo
and `python -m upshift.report` call; see docs/growth_review.md.
"""

from upshift.report.build import ReportResult, build_growth_review, default_out_dir
from upshift.report.headlines import Headline, format_headlines

__all__ = ["Headline", "ReportResult", "build_growth_review", "default_out_dir", "format_headlines"]
