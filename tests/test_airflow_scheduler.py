"""upgrade_readiness under a real Airflow: api-server, scheduler, dag-processor and triggerer on
loopback, driven only through the REST API, as an operator would from the UI.

One stack per module (it takes ~20 s to start) and as few DAG runs as the behaviours need, each
one asserted on by several tests: a triggered dry run (tasks, pools, dry run, log hygiene), a
backfill of the day before, a second run of that day (identical marts, nothing sent),
clearing one model's task of that run (it rebuilds its model alone), then bad raw data that the
raw gate must stop before anything reaches the sync step, and last a queued run left behind (as a
killed demo leaves one) that `fail_unfinished_runs` marks failed. The tests run in file order and
build on each other. Retries wait seconds here instead of minutes (a cluster policy of the test
stack).

The stack runs on the CeleryExecutor with two local `airflow celery worker` processes when a
Celery broker answers (UPSHIFT_CELERY_BROKER_URL, default Redis on 127.0.0.1:6379/0, as on CI's
machine), as docker-compose.celery.yml deploys it: then the same runs also show that tasks land
on both workers and that the sync pools hold across them. Without a broker it runs on the
LocalExecutor (the demo's default) and the two Celery-only checks skip with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.test_end_to_end import mart_checksums
from upshift import dbt
from upshift.local_airflow import (
    DAG_ID,
    POOLS_FILE,
    AirflowApi,
    ExecutorSettings,
    LocalAirflow,
    broker_answers,
    free_port,
)
from upshift.warehouse import WarehouseSettings

AS_OF = date(2025, 6, 2)
# One day: what a backfill adds over a triggered run is the backfill API and a date before the
# last one scored; each further day is another full DAG run of the suite's budget.
BACKFILL = [AS_OF - timedelta(days=1)]
# Clean: the raw gate must pass until the last test breaks the feed on purpose.
MARKETPLACE = {"clients": 300, "workers": 150, "days": 120, "seed": 7, "dirty_rate": 0.0}
# A ceiling, not a target (a first run on Celery took 1,130-1,542 s at load averages 10-30).
RUN_TIMEOUT = 1800
GATE_FAILURE_TIMEOUT = 300  # the gate's retries included
RETRY_DELAY_SECONDS = 3
# A model task in the scores stage, with models after it in the stage.
CLEARED_MODEL_TASK = "scores.int_readiness_signals_unpivoted_run"

SYNC_POOLS = ("braze_api", "iterable_api")
_CELERY = dataclasses.replace(ExecutorSettings.from_env(), name="celery")
EXECUTOR = _CELERY if broker_answers(_CELERY.broker_url) else ExecutorSettings(name="local")
on_celery = pytest.mark.skipif(
    not EXECUTOR.celery,
    reason=f"no Celery broker answers on {_CELERY.broker_address}: the stack runs on the LocalExecutor",
)

# The first test waits for the first DAG run (its fixture), longer than pyproject's 900 s per test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(RUN_TIMEOUT + 600)]


@pytest.fixture(scope="module")
def secured(warehouse: WarehouseSettings) -> WarehouseSettings:
    """The module's warehouse with a password worth hiding in the connection.

    The embedded server trusts its socket and ignores passwords, so it gets a random one; a real
    server keeps its own.
    """
    if warehouse.password or not warehouse.embedded:
        return warehouse
    return dataclasses.replace(warehouse, password=f"pw-{secrets.token_hex(12)}")


@pytest.fixture(scope="module")
def loaded(secured: WarehouseSettings, pg_conn: psycopg.Connection) -> WarehouseSettings:
    from upshift.generator import GenerationOptions, generate_marketplace

    generate_marketplace(
        pg_conn, GenerationOptions(schema=secured.raw_schema, as_of=AS_OF, progress=False, **MARKETPLACE)
    )
    pg_conn.commit()
    return secured


@pytest.fixture(scope="module")
def stack(loaded: WarehouseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAirflow]:
    """A running local Airflow for this module's warehouse; always stopped, its metadata database dropped."""
    dbt.parse(loaded)
    airflow = LocalAirflow(
        loaded,
        port=free_port(),
        metadata_database=f"{loaded.database}_airflow",
        home=tmp_path_factory.mktemp("airflow"),
        retry_delay_seconds=RETRY_DELAY_SECONDS,
        executor=EXECUTOR,
    )
    airflow.prepare()
    try:
        airflow.start()
        yield airflow
    finally:
        airflow.stop()
        with psycopg.connect(**loaded.conninfo("postgres"), autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(airflow.metadata_database))
            )


@pytest.fixture(scope="module")
def api(stack: LocalAirflow) -> AirflowApi:
    api = stack.wait_until_ready(timeout=600)
    api.unpause(DAG_ID)
    return api


@pytest.fixture(scope="module")
def first_run(api: AirflowApi) -> str:
    run_id = api.trigger(DAG_ID, AS_OF, {"dry_run": True})
    api.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
    return run_id


def _dates_in_history(conn: psycopg.Connection, settings: WarehouseSettings) -> dict[date, int]:
    rows = conn.execute(
        sql.SQL("select as_of_date, count(*) from {} group by 1 order by 1").format(
            settings.relation("marts", "readiness_history")
        )
    )
    return dict(rows.fetchall())


def _runs_by_date(api: AirflowApi) -> dict[date, dict]:
    return {date.fromisoformat(run["data_interval_end"][:10]): run for run in api.runs(DAG_ID)}


def test_a_triggered_run_succeeds_with_every_task(api: AirflowApi, first_run: str, loaded) -> None:
    states = api.task_states(DAG_ID, first_run)

    assert api.run_state(DAG_ID, first_run) == "success"
    assert {"raw_gate", "features_gate", "scores_gate", "sync_payload_gate"} <= set(states)
    for group in ("features", "scores", "activation", "sync", "metrics"):
        assert any(task.startswith(f"{group}.") for task in states), group
    assert {task: state for task, state in states.items() if state != "success"} == {}


def test_the_sync_pools_exist_and_hold(api: AirflowApi, first_run: str) -> None:
    """Each sync task ran in its pool, and no pool had more tasks running at once than its slots.

    The scheduler, not a worker, hands out pool slots: this is what keeps the sync's request rate
    per destination when its tasks may land on any Celery worker.
    """
    configured = {name: pool["slots"] for name, pool in json.loads(POOLS_FILE.read_text()).items()}
    sync = [instance for instance in api.task_instances(DAG_ID, first_run) if instance["task_id"].startswith("sync.")]

    assert api.pools().items() >= configured.items()
    assert {instance["pool"] for instance in sync} == set(SYNC_POOLS)
    for pool in SYNC_POOLS:
        intervals = [
            (datetime.fromisoformat(instance["start_date"]), datetime.fromisoformat(instance["end_date"]))
            for instance in sync
            if instance["pool"] == pool
        ]
        assert intervals, pool
        assert _running_at_once(intervals) <= configured[pool], pool


def _running_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one instant (an end at the same instant as a start closes first)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = running = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


@on_celery
def test_on_celery_the_tasks_ran_on_both_workers(stack: LocalAirflow, api: AirflowApi, first_run: str) -> None:
    environment = stack.environment()
    # The scheduler finishes an EmptyOperator itself (no worker, no hostname).
    executed = [
        instance for instance in api.task_instances(DAG_ID, first_run) if instance["operator"] != "EmptyOperator"
    ]
    by_worker = Counter(instance["hostname"] for instance in executed)

    assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert environment["AIRFLOW__CELERY__RESULT_BACKEND"].split("?")[0].endswith(f"/{stack.metadata_database}")
    assert stack.silent_workers() == []
    assert len(executed) > 20
    assert set(by_worker) == set(stack.workers), by_worker


def test_dry_run_reaches_the_sync_step_and_nothing_is_sent(api: AirflowApi, first_run: str) -> None:
    for task_id in ("sync.braze_users", "sync.iterable_users"):
        summary = api.xcom(DAG_ID, first_run, task_id)

        assert summary["dry_run"] is True, task_id
        assert summary.get("sent", 0) == 0, task_id


def test_task_logs_never_show_a_password_or_api_key(stack: LocalAirflow, first_run: str, loaded) -> None:
    logs = [path for path in Path(stack.home, "logs").rglob("*.log") if path.is_file()]
    secrets_in_connections = [stack.emulator_keys.braze, stack.emulator_keys.iterable]
    if loaded.password:
        secrets_in_connections.append(loaded.password)

    leaking = [
        str(path)
        for path in logs
        if any(secret in path.read_text(errors="replace") for secret in secrets_in_connections)
    ]

    assert len(logs) > 10, "every task writes a log"
    assert leaking == []


def test_a_backfill_writes_one_history_partition_per_day(
    api: AirflowApi, first_run: str, pg_conn: psycopg.Connection, loaded
) -> None:
    backfill_id = api.backfill(DAG_ID, BACKFILL[0], BACKFILL[-1])
    api.wait_for_backfill(backfill_id, timeout=len(BACKFILL) * RUN_TIMEOUT)

    runs = _runs_by_date(api)
    history = _dates_in_history(pg_conn, loaded)
    assert {day: runs[day]["state"] for day in BACKFILL} == dict.fromkeys(BACKFILL, "success")
    assert sorted(history) == [*BACKFILL, AS_OF]
    assert len(set(history.values())) == 1, "every date scores the same users"


@pytest.fixture(scope="module")
def rerun(api: AirflowApi, pg_conn: psycopg.Connection) -> dict:
    """The last backfilled day run again (a new run of that date replaces the backfill's)."""
    before = mart_checksums(pg_conn)
    run_id = api.trigger(DAG_ID, BACKFILL[-1])
    state = api.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
    return {"run_id": run_id, "state": state, "before": before, "after": mart_checksums(pg_conn)}


def test_rerunning_a_backfilled_day_changes_nothing(api: AirflowApi, rerun: dict) -> None:
    assert rerun["state"] == "success"
    assert rerun["after"] == rerun["before"]
    sync_steps = [task for task in api.task_states(DAG_ID, rerun["run_id"]) if task.startswith("sync.")]
    assert sync_steps
    sent = {task: api.xcom(DAG_ID, rerun["run_id"], task).get("sent", 0) for task in sync_steps}
    assert sent == dict.fromkeys(sync_steps, 0)


def test_readiness_history_keeps_one_row_per_user_and_date(rerun: dict, pg_conn: psycopg.Connection, loaded) -> None:
    duplicates = pg_conn.execute(
        sql.SQL("select user_id, as_of_date, count(*) from {} group by 1, 2 having count(*) > 1 limit 5").format(
            loaded.relation("marts", "readiness_history")
        )
    ).fetchall()

    assert duplicates == []


def test_clearing_one_model_task_rebuilds_that_model_alone(
    api: AirflowApi, rerun: dict, stack: LocalAirflow, pg_conn: psycopg.Connection
) -> None:
    run_id = rerun["run_id"]
    tries_before = api.task_try_number(DAG_ID, run_id, CLEARED_MODEL_TASK)

    api.clear_tasks(DAG_ID, run_id, [CLEARED_MODEL_TASK])
    final_state = api.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)

    states = api.task_states(DAG_ID, run_id)
    assert final_state == "success"
    assert states[CLEARED_MODEL_TASK] == "success"
    assert api.task_try_number(DAG_ID, run_id, CLEARED_MODEL_TASK) == tries_before + 1
    (log,) = Path(stack.home, "logs").glob(
        f"dag_id={DAG_ID}/run_id={run_id}/task_id={CLEARED_MODEL_TASK}/attempt={tries_before + 1}.log"
    )
    model = CLEARED_MODEL_TASK.split(".", 1)[1].removesuffix("_run")
    assert re.search(rf"1 of 1 OK created sql table model \S+\.{model} ", log.read_text()), "it ran its own model"
    assert mart_checksums(pg_conn) == rerun["after"]


def test_bad_raw_data_stops_at_the_raw_gate_and_nothing_reaches_sync(
    api: AirflowApi, pg_conn: psycopg.Connection, loaded
) -> None:
    history_before = _dates_in_history(pg_conn, loaded)
    # One booking in ten loses its id: a broken feed, which the raw gate blocks.
    pg_conn.execute(
        sql.SQL("update {} set booking_id = null where abs(hashtext(booking_id)) % 10 = 0").format(
            sql.Identifier(loaded.raw_schema, "bookings")
        )
    )

    run_id = api.trigger(DAG_ID, AS_OF)
    final_state = api.wait_for_run(DAG_ID, run_id, timeout=GATE_FAILURE_TIMEOUT)

    states = api.task_states(DAG_ID, run_id)
    assert final_state == "failed"
    assert states.pop("raw_gate") == "failed"
    assert {task: state for task, state in states.items() if state not in {"upstream_failed", None}} == {}
    assert _dates_in_history(pg_conn, loaded) == history_before


def test_a_queued_run_left_behind_is_marked_failed(api: AirflowApi) -> None:
    """A killed demo can leave a queued run in the metadata database; the CLI fails such runs as
    soon as a new stack is ready (`AirflowApi.fail_unfinished_runs`), so the next start does not
    run it against whatever warehouse it points at. Last here: it pauses the DAG."""
    # A paused DAG keeps its triggered run queued, as a killed demo leaves it.
    api.pause(DAG_ID)
    run_id = api.trigger(DAG_ID, AS_OF + timedelta(days=1))
    assert api.run_state(DAG_ID, run_id) == "queued"

    stale = api.fail_unfinished_runs(DAG_ID)

    assert stale == [run_id]
    assert api.run_state(DAG_ID, run_id) == "failed"
    assert api.fail_unfinished_runs(DAG_ID) == []
