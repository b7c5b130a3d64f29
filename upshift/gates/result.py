"""What a gate run found: per-expectation outcomes and the verdict, in a form logs can show."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Sample rows per failed expectation in summary(); the report shows all that were kept.
SUMMARY_SAMPLE_ROWS = 3


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation's outcome. Sample rows never carry PII columns (gates.yml pii_columns)."""

    name: str
    check: str
    target: str
    severity: str
    expectation_type: str
    description: str
    success: bool
    observed_value: Any = None
    unexpected_count: int | None = None
    element_count: int | None = None
    sample_rows: list[dict[str, Any]] = field(default_factory=list)
    # Set when the expectation could not be evaluated (e.g. its SQL failed); it counts as failed.
    error: str | None = None

    @property
    def outcome(self) -> str:
        """One line of counts: what a person reads first."""
        if self.error is not None:
            return f"could not be evaluated: {self.error}"
        if self.unexpected_count is not None:
            share = f" of {self.element_count:,}" if self.element_count is not None else ""
            return f"{self.unexpected_count:,} unexpected{share}"
        if self.expectation_type == "UnexpectedRowsExpectation":
            return f"{self.observed_value:,} unexpected rows" if self.observed_value is not None else "no result"
        return f"observed {self.observed_value}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "severity": self.severity,
            "success": self.success,
            "outcome": self.outcome,
            "observed_value": self.observed_value,
            "unexpected_count": self.unexpected_count,
            "element_count": self.element_count,
            "sample_rows": self.sample_rows,
            "error": self.error,
        }


@dataclass(frozen=True)
class GateResult:
    """The verdict of one stage's gate for one as-of date."""

    stage: str
    as_of: dt.date
    results: list[ExpectationResult]
    report_path: Path

    @property
    def blocking_failures(self) -> list[ExpectationResult]:
        return [result for result in self.results if not result.success and result.severity == "blocking"]

    @property
    def warnings(self) -> list[ExpectationResult]:
        return [result for result in self.results if not result.success and result.severity == "warning"]

    @property
    def passed(self) -> bool:
        """No blocking expectation failed; warnings do not stop the run."""
        return not self.blocking_failures

    def summary(self) -> str:
        """Several lines for the task log: the verdict, each failure with counts and samples, the report."""
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"{self.stage} gate for as-of {self.as_of.isoformat()}: {verdict} - "
            f"{len(self.results)} expectations, {len(self.blocking_failures)} blocking failures, "
            f"{len(self.warnings)} warnings"
        ]
        for title, failures in (("Blocking failures", self.blocking_failures), ("Warnings", self.warnings)):
            if failures:
                lines.append(f"{title}:")
            for failure in failures:
                lines.append(f"  - {failure.name}: {failure.outcome}")
                lines.extend(f"      sample: {_format_row(row)}" for row in failure.sample_rows[:SUMMARY_SAMPLE_ROWS])
        lines.append(f"Report: {self.report_path}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A small JSON-able summary (for XCom): verdict, failed names, counts, report path."""
        return {
            "stage": self.stage,
            "as_of": self.as_of.isoformat(),
            "passed": self.passed,
            "expectations": len(self.results),
            "blocking_failures": [failure.name for failure in self.blocking_failures],
            "warnings": [warning.name for warning in self.warnings],
            "report_path": str(self.report_path),
        }


def _format_row(row: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in row.items())
