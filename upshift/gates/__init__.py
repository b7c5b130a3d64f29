"""Stage gates: Great Expectations suites that must pass before the pipeline moves on.

`run_gate(stage, settings, as_of)` validates one stage's warehouse tables (raw, features,
scores) against its suite in `expectations/suites/` with the severities and thresholds of
`expectations/gates.yml`, writes an HTML report and returns a `GateResult`. The Airflow
operator in `plugins/upshift_gates.py` is a thin wrapper around it.
"""

from upshift.gates.config import GateConfigError, GateNotDefined, load_stage_plan, stage_names
from upshift.gates.result import ExpectationResult, GateResult
from upshift.gates.run import run_gate

__all__ = [
    "ExpectationResult",
    "GateConfigError",
    "GateNotDefined",
    "GateResult",
    "load_stage_plan",
    "run_gate",
    "stage_names",
]
