"""
# growth_review

Once a week, the growth team's review of expansion: headline numbers with green / amber / red
flags against the guide's targets and their week-over-week change, the tier mix over time per
side, Expansion MRR and its share of new MRR against the 25-35% band, time to upgrade, 90-day
retention cohorts, conversion and lift per trigger against the holdout, the addressable gap and
the signal backtest. One self-contained HTML file (readable offline) plus a CSV extract per table.

**Schedule.** Weekly, Monday 00:00 UTC, for the week that just ended: the run for the interval
2025-06-02 -> 2025-06-09 reviews as of 2025-06-09.

**Tasks.**
- `wait_for_metrics`: waits (rescheduling, not holding a worker slot) until `upgrade_readiness`
  has built and tested the metrics for the same as-of date (its `metrics.dbt_project_test`
  task, in its run for the day ending at this interval's end).
- `review`: builds the report from the measurement marts (`upshift.report`) into
  `<UPSHIFT_HOME>/growth_review/<as_of>/` and returns its headlines and path.

**Reads** the measurement marts through the Airflow connection `upshift_warehouse`; writes only
the report files. Rerun a week by clearing its run; backfill with
`airflow backfill create --dag-id growth_review --from-date ... --to-date ...` once
`upgrade_readiness` has those dates.

**Retries.** Every task retries twice with exponential backoff.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import CronDataIntervalTimetable, dag, task

AS_OF_DATE = "{{ data_interval_end | ds }}"


@task
def review(as_of_date: str) -> dict[str, object]:
    """Build the weekly report for the as-of date; the summary goes to XCom."""
    from datetime import date

    from upshift_warehouse import UpshiftWarehouseHook

    from upshift.report import build_growth_review, default_out_dir, format_headlines

    settings = UpshiftWarehouseHook().get_settings()
    as_of = date.fromisoformat(as_of_date)
    result = build_growth_review(settings, as_of, default_out_dir(settings, as_of))
    print(format_headlines(result.headlines))
    print(f"Growth review: {result.html_path}")
    return result.summary()


@dag(
    dag_id="growth_review",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 * * MON", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 6, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["upshift", "growth", "metrics"],
    default_args={
        "owner": "growth",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=20),
    },
)
def growth_review() -> None:
    # This run's logical date is the week's Monday; the daily run that ends where this interval
    # ends has the logical date six days later.
    wait_for_metrics = ExternalTaskSensor(
        task_id="wait_for_metrics",
        external_dag_id="upgrade_readiness",
        # The metrics stage's data tests run after every metrics model: their success means the
        # marts are built and tested, also when a model task had to rebuild its model on retry
        # (the stage's watcher build task then ends "skipped", which a whole-group wait would
        # never accept).
        external_task_ids=["metrics.dbt_project_test"],
        execution_delta=timedelta(days=-6),
        mode="reschedule",
        poke_interval=300,
        timeout=int(timedelta(hours=12).total_seconds()),
    )
    wait_for_metrics >> review(AS_OF_DATE)


growth_review()
