"""ReadinessGateOperator: one stage gate of the upgrade_readiness DAG.

The gate itself is `upshift.gates.run_gate` (Great Expectations suites in `expectations/`);
this operator only finds the warehouse through the `upshift_warehouse` connection
(UpshiftWarehouseHook), runs the gate for the run's as-of date, logs what it found and fails the
task on a blocking failure, at once and without retries, so every downstream task stops. Why
not the provider's GXValidateCheckpointOperator: see expectations/README.md.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException
from upshift_warehouse import UpshiftWarehouseHook

from upshift.warehouse import AIRFLOW_CONN_ID

if TYPE_CHECKING:
    from airflow.sdk import Context

    from upshift.gates import GateResult


class GateFailed(AirflowFailException):
    """A blocking expectation failed: the data must not move on to the next stage.

    Fails the task without its retries: a retry would judge the same data the same way. A gate
    that cannot run (the warehouse unreachable) raises something else and is retried.
    """

    def __init__(self, result: GateResult) -> None:
        self.result = result
        failed = ", ".join(failure.name for failure in result.blocking_failures)
        super().__init__(
            f"The {result.stage} gate failed for as-of {result.as_of.isoformat()}: "
            f"{len(result.blocking_failures)} blocking expectation(s) failed: {failed}. "
            f"Open the report for counts and sample rows: {result.report_path}. Fix the data (or, "
            "if the threshold is wrong, expectations/gates.yml) and clear this task to rerun it."
        )


class ReadinessGateOperator(BaseOperator):
    """Run the `stage` gate for `as_of_date` (YYYY-MM-DD, templated); raise GateFailed on a blocking failure.

    Warnings are logged and the task succeeds. Returns the gate's small summary for XCom.
    """

    template_fields = ("as_of_date",)
    ui_color = "#e8f4ea"

    def __init__(self, *, stage: str, as_of_date: str, conn_id: str = AIRFLOW_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self.as_of_date = as_of_date
        self.conn_id = conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from upshift.gates import run_gate

        settings = UpshiftWarehouseHook(self.conn_id).get_settings()
        as_of = dt.date.fromisoformat(str(self.as_of_date))
        self.log.info("Running the %s gate for as-of %s on %s", self.stage, as_of, settings.describe())
        result = run_gate(self.stage, settings, as_of)
        if result.passed and not result.warnings:
            self.log.info("%s", result.summary())
        elif result.passed:
            self.log.warning("%s", result.summary())
        else:
            self.log.error("%s", result.summary())
            raise GateFailed(result)
        return result.to_dict()
