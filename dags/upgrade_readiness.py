"""
# upgrade_readiness

Scores every client and worker of the marketplace for upgrade readiness, once a day.

**Reads** the raw marketplace tables (schema `UPSHIFT_RAW_SCHEMA`, default `raw`: users,
bookings, searches, proposals, profile_views, contacts, subscriptions, offer_exposures) through
the Airflow connection `upshift_warehouse`.

**Writes** the dbt project's models under the target schema (`UPSHIFT_PG_SCHEMA`, default
`analytics`): staging views, intermediate tables, the quarantine of bad raw rows, and the marts
`client_readiness`, `worker_readiness`, `readiness_history` and `readiness_triggers`.

**As-of date.** A run scores "as of" the end of its data interval: the run for the interval
2025-06-01 -> 2025-06-02 uses only events before 2025-06-02 and writes as_of_date 2025-06-02.
The DAG never reads the wall clock, so a date reruns to the same tables.

**Tasks.** One task per dbt model (Cosmos, rendered from `dbt_project/target/manifest.json`);
each runs `dbt build` for its model, so the model's data tests run in the same task. Seeds run
first. dbt unit tests run in CI, not here.

**Rerun or backfill.**
- Rerun one model: clear its task (add "Downstream" to refresh what depends on it).
- Rerun a date: clear the whole run. Every model rebuilds the run's as-of date;
  `readiness_history` replaces that date instead of appending, so nothing duplicates.
- Backfill: `airflow backfill create --dag-id upgrade_readiness --from-date 2025-06-01
  --to-date 2025-06-30`. Runs go one at a time in date order, because time-in-tier reads the
  history the previous date wrote.
- Score a specific date by hand: Trigger with config, `as_of_date` = YYYY-MM-DD.
- Rebuild models with dbt's --full-refresh: Trigger with config, `full_refresh` = true. The
  readiness_history mart is exempt (its config sets full_refresh: false), so the history survives.

If the import fails with "manifest not found", run `python3 run.py demo` or
`python -m upshift.cli dbt-parse` on the machine that parses DAGs.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
from cosmos.profiles import PostgresUserPasswordProfileMapping

from upshift.dbt import DBT_PROJECT_DIR, MANIFEST_PATH
from upshift.warehouse import AIRFLOW_CONN_ID

if not MANIFEST_PATH.is_file():
    raise FileNotFoundError(
        f"dbt manifest not found at {MANIFEST_PATH}. The upgrade_readiness DAG renders its tasks "
        "from it; create it with `python3 run.py demo` or `python -m upshift.cli dbt-parse`."
    )

AS_OF_DATE = "{{ params.as_of_date or data_interval_end | ds }}"


@dag(
    dag_id="upgrade_readiness",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["upshift", "dbt", "readiness"],
    default_args={
        "owner": "analytics",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=20),
    },
    params={
        "as_of_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="As-of date",
            description="Score as of this date (YYYY-MM-DD). Empty: the end of the run's data interval.",
        ),
        "full_refresh": Param(
            False,
            type="boolean",
            title="Full refresh",
            description=(
                "Pass --full-refresh to dbt. readiness_history is exempt (full_refresh: false): "
                "past dates are kept and cannot be rebuilt from one run."
            ),
        ),
    },
)
def upgrade_readiness() -> None:
    DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT_DIR,
            manifest_path=MANIFEST_PATH,
            env_vars={"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test"},
        ),
        profile_config=ProfileConfig(
            profile_name="upshift",
            target_name="dev",
            profile_mapping=PostgresUserPasswordProfileMapping(
                conn_id=AIRFLOW_CONN_ID,
                profile_args={"schema": os.environ.get("UPSHIFT_PG_SCHEMA") or "analytics"},
            ),
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            # A test with several parents (e.g. relationships between two seeds) gets its own
            # task after all of them, instead of failing inside whichever parent builds first.
            should_detach_multiple_parents_tests=True,
            # Asset URIs are built from the connection's host; the embedded warehouse has
            # only a socket directory, which makes no valid URI.
            emit_datasets=False,
        ),
        operator_args={
            "vars": {"as_of_date": AS_OF_DATE},
            "full_refresh": "{{ params.full_refresh }}",
        },
    )


upgrade_readiness()
