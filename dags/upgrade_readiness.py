"""
# upgrade_readiness

Scores every client and worker of the marketplace for upgrade readiness, once a day, and lets
nothing through to a messaging platform unless every stage before it passed its gate.

```
raw_gate -> features (dbt) -> features_gate -> scores (dbt) -> scores_gate
  -> activation (dbt) -> sync_payload_gate -> sync (Braze, Iterable) -> metrics (dbt)
```

**Reads** the raw marketplace tables (schema `UPSHIFT_RAW_SCHEMA`, default `raw`: users,
bookings, searches, proposals, profile_views, contacts, subscriptions, offer_exposures) through
the Airflow connection `upshift_warehouse`.

**Writes** the dbt project's models under the target schema (`UPSHIFT_PG_SCHEMA`, default
`analytics`): staging views, intermediate tables, the quarantine of bad raw rows, the marts
`user_readiness`, `readiness_history`, `readiness_triggers`, the touchpoint
plan and sync payloads, and the measurement marts. The sync writes its state (what each
destination accepted, the event ledger, errors, a log per run) to `UPSHIFT_SYNC_SCHEMA`
(default `upshift_sync`) and sends to the Airflow connections `braze_default` and
`iterable_default`.

**As-of date.** A run scores "as of" the end of its data interval: the run for the interval
2025-06-01 -> 2025-06-02 uses only events before 2025-06-02 and writes as_of_date 2025-06-02.
The gates and dbt share that one date. The DAG never reads the wall clock, so a date reruns to
the same tables.

**Tasks.**
- `raw_gate`, `features_gate`, `scores_gate`, `sync_payload_gate`: the Great Expectations suite of that stage
  (`expectations/`). A blocking expectation that fails fails the gate, and every task after it
  stays `upstream_failed`: nothing is scored on bad raw data and nothing reaches `sync`. The
  gate's log names the failed expectations with counts and samples, and where its HTML report is.
- `features`, `scores`, `activation`, `metrics`: one Cosmos task group per stage (rendered from
  `dbt_project/target/manifest.json`; dbt tags `stage_features` - plus the seeds -,
  `stage_scores`, `stage_activation`, `stage_metrics`), in Cosmos' watcher mode: the group's
  `dbt_producer_watcher` task runs one `dbt build` of the stage's models and seeds (dbt's 4
  threads, one dbt parse), then one task per model (`<model>_run`, `<seed>_seed`) shows that
  model's result and dbt log line. `dbt_project_test` then runs the stage's data tests (those
  whose models are all in the stage); a failing test fails it, and the gate does not run. dbt unit
  tests and tests across stages run in CI's `dbt build`, not here.
- `sync`: one task per step and destination - `braze_users` -> `braze_events`,
  `iterable_users` -> `iterable_lists` -> `iterable_events` - each in its API's pool
  (`braze_api`, `iterable_api`) so rate limits hold across runs and backfills (with Spark in
  local mode all five share the one-slot `spark_local` pool instead: one Derby metastore). Only changed
  users are sent; every event goes out once (ledger). A rerun sends nothing new.

**Rerun or backfill.**
- Rerun one model: clear its task (add "Downstream" to refresh what depends on it, the stage's
  tests and the gates). A cleared (or retried) model task runs `dbt run` for its model alone,
  with the run's as-of date.
- Rerun a date: trigger it again (a new run of the same data interval, or the UI's "Trigger"
  with that logical date): one build per stage again. Clearing the whole run also works, but the
  watcher's build task does not run twice in one run: it skips, and every model task then runs
  its own model, one dbt process each - correct, only slower. Either way every model rebuilds
  the run's as-of date; `readiness_history` replaces that date instead of appending, so nothing
  duplicates.
- Backfill: `airflow backfill create --dag-id upgrade_readiness --from-date 2025-06-01
  --to-date 2025-06-30` (or the UI's "Backfill"). Runs go one at a time in date order, because
  time-in-tier reads the history the previous date wrote.

**Trigger with config** (params):
- `as_of_date` (YYYY-MM-DD): score a specific date instead of the interval end.
- `full_refresh`: pass dbt's --full-refresh. The readiness_history mart is exempt (its config
  sets full_refresh: false), so the history survives.
- `dry_run`: score as usual, but the sync sends nothing (it logs counts per change type and a
  few user ids).
- `full_resync`: send every user's attributes and list memberships again (events never).
- `force_backfill_sync`: sync this as-of date even though a newer one was already synced to a
  destination (normally an older date scores and writes history, but the sync only moves forward).

**Retries.** Every task retries twice with exponential backoff. A gate whose blocking
expectation failed does not (`GateFailed` fails at once: the same data fails the same way; fix
it and clear the gate), nor does a sync step that refused on purpose (a guardrail, a bad key or
setting). A stage's build task is the exception Cosmos makes: its retry skips instead of
building again, and the model tasks whose models failed retry one by one, each running its own
model. A sync step that runs longer than `SYNC_TIMEOUT` (an hour: the Braze events step's
reconcile waits included) fails and is retried; what it sent is in the ledger, so the retry
resumes instead of resending.

If the import fails with "manifest not found", run `python3 run.py demo` or
`python -m upshift.cli dbt-parse` on the machine that parses DAGs.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, TaskGroup, TriggerRule, dag
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import (
    PRODUCER_WATCHER_TASK_ID,
    ExecutionMode,
    InvocationMode,
    LoadMode,
    TestBehavior,
    TestIndirectSelection,
)
from cosmos.operators.watcher import DbtConsumerWatcherSensor
from cosmos.profiles import PostgresUserPasswordProfileMapping, SparkThriftProfileMapping
from upshift_gates import ReadinessGateOperator
from upshift_sync_operators import SyncEventsOperator, SyncIterableListsOperator, SyncUsersOperator

from upshift.dbt import DBT_PROFILE, DBT_PROJECT_DIR, MANIFEST_PATH
from upshift.warehouse import AIRFLOW_CONN_ID, SESSION_ENV, target_schema, warehouse_engine

if not MANIFEST_PATH.is_file():
    raise FileNotFoundError(
        f"dbt manifest not found at {MANIFEST_PATH}. The upgrade_readiness DAG renders its tasks "
        "from it; create it with `python3 run.py demo` or `python -m upshift.cli dbt-parse`."
    )

AS_OF_DATE = "{{ params.as_of_date or data_interval_end | ds }}"
# What dbt's as_of_date() macro reads when no --vars as_of_date is given (macros/as_of.sql).
AS_OF_DATE_ENV = "UPSHIFT_AS_OF_DATE"
# Destination -> the pool that caps concurrent calls to its API (config/pools.json).
API_POOLS = {"braze": "braze_api", "iterable": "iterable_api"}
# Spark in local mode (no UPSHIFT_SPARK_CONN_ID): each task's Spark is its own process on one
# embedded Derby metastore, which admits one process at a time. The two sync chains are the only
# tasks that could open Spark at once, so there they share one slot (within both APIs' caps).
LOCAL_SPARK_POOL = "spark_local"


def _sync_pools() -> dict[str, str]:
    if warehouse_engine() == "spark" and not os.environ.get("UPSHIFT_SPARK_CONN_ID"):
        return dict.fromkeys(API_POOLS, LOCAL_SPARK_POOL)
    return API_POOLS


SYNC_POOLS = _sync_pools()
# Longest a sync step may run: a hung destination must not hold its pool slot for ever. Well
# above a full resync at the APIs' rate limits plus Braze's reconcile waits (2 x 10 minutes).
SYNC_TIMEOUT = timedelta(hours=1)
SYNC_ARGS = {
    "execution_timeout": SYNC_TIMEOUT,
    "as_of_date": AS_OF_DATE,
    "dry_run": "{{ params.dry_run }}",
    "full_resync": "{{ params.full_resync }}",
    "force_backfill": "{{ params.force_backfill_sync }}",
}


def _profile_config() -> ProfileConfig:
    """dbt's profile for the engine UPSHIFT_WAREHOUSE selects (profiles.yml's output of that name).

    PostgreSQL: from the `upshift_warehouse` connection. Spark: a Spark Thrift server (a cluster,
    Databricks' SQL endpoint) from the Airflow connection UPSHIFT_SPARK_CONN_ID names, or else
    profiles.yml's `spark` output, a local Spark inside the task's dbt process.
    """
    # One build per stage, so dbt's threads are the parallelism (profiles.yml's 4).
    profile_args = {"schema": target_schema(), "threads": 4}
    if warehouse_engine() == "spark":
        spark_conn_id = os.environ.get("UPSHIFT_SPARK_CONN_ID")
        if spark_conn_id:
            return ProfileConfig(
                profile_name=DBT_PROFILE,
                target_name="spark",
                profile_mapping=SparkThriftProfileMapping(conn_id=spark_conn_id, profile_args=profile_args),
            )
        return ProfileConfig(
            profile_name=DBT_PROFILE, target_name="spark", profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml"
        )
    return ProfileConfig(
        profile_name=DBT_PROFILE,
        target_name="postgres",
        profile_mapping=PostgresUserPasswordProfileMapping(conn_id=AIRFLOW_CONN_ID, profile_args=profile_args),
    )


def _dbt_stage(group_id: str, select: list[str]) -> DbtTaskGroup:
    """One Cosmos task group per stage: one `dbt build` of the stage, one task per model or seed.

    Cosmos' watcher mode: the group's producer task runs a single `dbt build` of the stage's
    models and seeds (dbt's threads, one dbt parse), and each model's task reports its model's
    result and log from that build. Cleared or retried on its own, a model's task runs `dbt run`
    for its model alone. The stage's data tests run in one task after all its models.
    """
    stage = DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT_DIR,
            manifest_path=MANIFEST_PATH,
            # SESSION_ENV (PGTZ=UTC) pins dbt's sessions to UTC: dbt-postgres has no profile
            # field for session options, so the profile mapping cannot carry it. The as-of date
            # goes as an environment variable (rendered per run: `env` is a template field),
            # not as --vars: dbt re-parses the whole project whenever --vars change, and the
            # project's as_of_date() macro reads it only when executing, so a new date keeps
            # dbt's partial parse.
            env_vars={"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test", AS_OF_DATE_ENV: AS_OF_DATE, **SESSION_ENV},
        ),
        profile_config=_profile_config(),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            invocation_mode=InvocationMode.DBT_RUNNER,
            # A test runs with the stage when all the models it reads are in it (tests across
            # stages run in CI's dbt build).
            test_indirect_selection=TestIndirectSelection.CAUTIOUS,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=select,
            test_behavior=TestBehavior.AFTER_ALL,
            # Asset URIs are built from the connection's host; the embedded warehouse has
            # only a socket directory, which makes no valid URI.
            emit_datasets=False,
        ),
        operator_args={
            "full_refresh": "{{ params.full_refresh }}",
            # The model tasks start once the build finished, so their first look finds the
            # result: no deferral round trip through the triggerer, no slot held while waiting.
            "deferrable": False,
            "poke_interval": 1,
        },
    )
    _start_model_tasks_after_the_build(stage)
    return stage


def _start_model_tasks_after_the_build(stage: DbtTaskGroup) -> None:
    """Put the stage's first model tasks after its producer (the build) instead of beside it.

    Cosmos links the producer to the first models only in a DbtDag; in a task group they would
    start with it and wait. After it, each task reads a finished result, and `dag.test()`, which
    runs one task at a time, cannot start a waiting model task before the build. `none_failed`:
    when the producer is retried it skips (it never runs a second build) and the model tasks run
    their models themselves; when the stage's gate failed they stay `upstream_failed`.
    """
    producer = stage.children[f"{stage.group_id}.{PRODUCER_WATCHER_TASK_ID}"]
    in_stage = set(stage.children)
    for task in stage.children.values():
        if isinstance(task, DbtConsumerWatcherSensor) and not task.upstream_task_ids & in_stage:
            producer >> task
            task.trigger_rule = TriggerRule.NONE_FAILED


@dag(
    dag_id="upgrade_readiness",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # Params reach the operators as what they are: "{{ params.dry_run }}" renders a bool.
    render_template_as_native_obj=True,
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
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Score as usual, but the sync sends nothing: it logs what it would send.",
        ),
        "full_resync": Param(
            False,
            type="boolean",
            title="Full resync",
            description="Send every user's attributes and list memberships again, changed or not (events never).",
        ),
        "force_backfill_sync": Param(
            False,
            type="boolean",
            title="Force backfill sync",
            description=(
                "Send this as-of date even though a newer one was already synced (normally an older date "
                "scores and writes history but the sync sends nothing)."
            ),
        ),
    },
)
def upgrade_readiness() -> None:
    raw_gate = ReadinessGateOperator(task_id="raw_gate", stage="raw", as_of_date=AS_OF_DATE)
    features = _dbt_stage("features", ["tag:stage_features", "resource_type:seed"])
    features_gate = ReadinessGateOperator(task_id="features_gate", stage="features", as_of_date=AS_OF_DATE)
    scores = _dbt_stage("scores", ["tag:stage_scores"])
    scores_gate = ReadinessGateOperator(task_id="scores_gate", stage="scores", as_of_date=AS_OF_DATE)
    activation = _dbt_stage("activation", ["tag:stage_activation"])
    sync_payload_gate = ReadinessGateOperator(task_id="sync_payload_gate", stage="sync_payload", as_of_date=AS_OF_DATE)
    with TaskGroup("sync", tooltip="Changed users, lists and due events to Braze and Iterable") as sync:
        braze_users = SyncUsersOperator(
            task_id="braze_users", destination="braze", pool=SYNC_POOLS["braze"], **SYNC_ARGS
        )
        braze_events = SyncEventsOperator(
            task_id="braze_events", destination="braze", pool=SYNC_POOLS["braze"], **SYNC_ARGS
        )
        iterable_users = SyncUsersOperator(
            task_id="iterable_users", destination="iterable", pool=SYNC_POOLS["iterable"], **SYNC_ARGS
        )
        iterable_lists = SyncIterableListsOperator(task_id="iterable_lists", pool=SYNC_POOLS["iterable"], **SYNC_ARGS)
        iterable_events = SyncEventsOperator(
            task_id="iterable_events", destination="iterable", pool=SYNC_POOLS["iterable"], **SYNC_ARGS
        )
        braze_users >> braze_events
        iterable_users >> iterable_lists >> iterable_events
    metrics = _dbt_stage("metrics", ["tag:stage_metrics"])

    raw_gate >> features >> features_gate >> scores >> scores_gate >> activation >> sync_payload_gate >> sync
    sync >> metrics


upgrade_readiness()
