"""The gate's HTML report: one self-contained file an operator opens from the task log.

Great Expectations' Data Docs would copy about 4 MB of fonts and images into every report
directory and show expectations by GX type, without our names or blocking/warning split; this
page lists every expectation by its gates.yml name, failures first, with counts and sample
rows, and links the raw validation results (JSON) saved next to it.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

from upshift.gates.result import ExpectationResult, GateResult
from upshift.warehouse import WarehouseSettings

REPORT_FILE = "index.html"
VALIDATIONS_FILE = "validation_results.json"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; width: 100%; margin-bottom: 2rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.blocking { background: #fde2e2; } .warning { background: #fff4d6; }
.verdict-passed { color: #17692a; } .verdict-failed { color: #a61b1b; }
code, pre { font-size: 0.85rem; } pre { margin: 0; white-space: pre-wrap; }
"""


def report_directory(settings: WarehouseSettings, stage: str, as_of: dt.date) -> Path:
    """`<UPSHIFT_HOME>/gate_reports/<stage>/<as_of>/`: a rerun of the date replaces its report."""
    return settings.home / "gate_reports" / stage / as_of.isoformat()


def _cell(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _samples(result: ExpectationResult) -> str:
    if not result.sample_rows:
        return ""
    columns = list(dict.fromkeys(key for row in result.sample_rows for key in row))
    head = "".join(f"<th>{_cell(column)}</th>" for column in columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(row.get(column))}</td>" for column in columns) + "</tr>"
        for row in result.sample_rows
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _row(result: ExpectationResult) -> str:
    status = "passed" if result.success else "FAILED"
    css = "" if result.success else f' class="{result.severity}"'
    return (
        f"<tr{css}><td><code>{_cell(result.name)}</code><br>{_cell(result.description)}</td>"
        f"<td>{_cell(result.severity)}</td><td>{status}</td><td>{_cell(result.outcome)}</td>"
        f"<td><code>{_cell(result.expectation_type)}</code></td><td>{_samples(result)}</td></tr>"
    )


def render_report(result: GateResult, description: str) -> str:
    verdict = "passed" if result.passed else "failed"
    ordered = sorted(result.results, key=lambda item: (item.success, item.severity != "blocking", item.name))
    rows = "".join(_row(item) for item in ordered)
    title = f"upshift {result.stage} gate, as of {result.as_of.isoformat()}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_cell(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{_cell(title)}</h1>
<p class="verdict-{verdict}"><strong>Gate {verdict.upper()}</strong>: {len(result.results)} expectations,
{len(result.blocking_failures)} blocking failures, {len(result.warnings)} warnings.</p>
<p>{_cell(description)}</p>
<p>Severities and thresholds: <code>expectations/gates.yml</code>; what each expectation checks:
<code>expectations/suites/{_cell(result.stage)}.yml</code>. Raw Great Expectations results:
<a href="{VALIDATIONS_FILE}">{VALIDATIONS_FILE}</a>.</p>
<table>
<tr><th>Expectation</th><th>Severity</th><th>Result</th><th>Counts</th><th>Type</th><th>Sample rows</th></tr>
{rows}
</table>
</body></html>
"""


def write_report(result: GateResult, description: str, validations: list[dict[str, Any]]) -> Path:
    """Write index.html and the validation results under the result's report directory."""
    directory = result.report_path.parent
    directory.mkdir(parents=True, exist_ok=True)
    (directory / VALIDATIONS_FILE).write_text(json.dumps(validations, indent=2, default=str), encoding="utf-8")
    result.report_path.write_text(render_report(result, description), encoding="utf-8")
    return result.report_path
