"""
# growth_review

**Placeholder** for the measurement issue: once a week, a review of what the readiness scoring
and its offers did for the growth team (conversions by tier and offer against the holdout, time
to upgrade, tier movements). Today it has one task, `review`, that does nothing; the measurement
issue replaces it with the report and keeps this DAG's schedule, interval and params.

**Schedule.** Weekly, Monday 00:00 UTC, for the week that just ended: the run for the interval
2025-06-02 -> 2025-06-09 reviews the as-of dates 2025-06-02 to 2025-06-08. It reads only what
`upgrade_readiness` wrote for those dates, so any week can be rerun (clear the run) or
backfilled (`airflow backfill create --dag-id growth_review --from-date ... --to-date ...`).

**Retries.** Every task retries twice with exponential backoff.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import CronDataIntervalTimetable, dag


@dag(
    dag_id="growth_review",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 * * MON", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 6, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["upshift", "growth", "placeholder"],
    default_args={
        "owner": "growth",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=20),
    },
)
def growth_review() -> None:
    EmptyOperator(task_id="review", doc_md="Placeholder: the measurement issue writes the weekly review here.")


growth_review()
