"""upgrade_readiness on the CeleryExecutor: the local stack with two `airflow celery worker`
processes on a real broker (UPSHIFT_CELERY_BROKER_URL, default Redis on 127.0.0.1:6379/0),
Celery's results in the Airflow metadata database, as docker-compose.celery.yml configures it.

One dry run of the real DAG on a small world, driven through the REST API; the tests read
that run: every task succeeded, the tasks ran on both workers (each worker reports its Celery
node name as the task instances' hostname), and no sync pool ever had more of its tasks
running at once than its slots (start and end times from the REST API). Skipped, with the
reason, when no broker answers.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime

import psycopg
import pytest
import yaml
from psycopg import sql

from upshift import dbt
from upshift.local_airflow import (
    DAG_ID,
    POOLS_FILE,
    AirflowApi,
    ExecutorSettings,
    ExecutorSettingsInvalid,
    LocalAirflow,
    broker_answers,
    free_port,
)
from upshift.warehouse import REPO_ROOT, WarehouseSettings

AS_OF = date(2025, 6, 2)
MARKETPLACE = {"clients": 300, "workers": 150, "days": 120, "seed": 7, "dirty_rate": 0.0}
WORKERS = 2
# A ceiling, not a target: the run took 1,130-1,542 s here at load averages 10-30 on 2 CPUs.
RUN_TIMEOUT = 2400
SYNC_POOLS = ("braze_api", "iterable_api")

EXECUTOR = dataclasses.replace(ExecutorSettings.from_env(), name="celery", workers=WORKERS)

CELERY_FILE = REPO_ROOT / "docker-compose.celery.yml"
on_a_broker = pytest.mark.skipif(
    not broker_answers(EXECUTOR.broker_url),
    reason=f"no Celery broker answers on {EXECUTOR.broker_address} (set UPSHIFT_CELERY_BROKER_URL)",
)


def test_the_executor_is_read_from_the_environment() -> None:
    settings = ExecutorSettings.from_env(
        {
            "UPSHIFT_AIRFLOW_EXECUTOR": "Celery",
            "UPSHIFT_CELERY_BROKER_URL": "redis://:s3cret@broker.internal:6379/2",
            "UPSHIFT_CELERY_WORKERS": "3",
        }
    )

    assert (settings.celery, settings.workers, settings.concurrency) == (True, 3, 2)
    assert settings.parallelism == 6
    assert "s3cret" not in settings.describe() + repr(settings)
    assert settings.describe().endswith("broker redis://broker.internal:6379/2")
    assert ExecutorSettings.from_env({}) == ExecutorSettings(name="local")


@pytest.mark.parametrize(
    ("name", "value"),
    [("UPSHIFT_AIRFLOW_EXECUTOR", "kubernetes"), ("UPSHIFT_CELERY_WORKERS", "two"), ("UPSHIFT_CELERY_WORKERS", "0")],
)
def test_a_bad_executor_setting_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ExecutorSettingsInvalid, match=name):
        ExecutorSettings.from_env({"UPSHIFT_AIRFLOW_EXECUTOR": "celery", name: value})


def test_the_local_celery_stack_sets_what_the_compose_file_sets(tmp_path) -> None:
    """The same [celery] options as docker-compose.celery.yml, the result backend on this stack's
    metadata database, and a queue of its own (stacks sharing a broker never run each other's tasks)."""
    settings = WarehouseSettings.from_env({"UPSHIFT_HOME": str(tmp_path), "UPSHIFT_PG_HOST": "127.0.0.1"})
    stacks = [
        LocalAirflow(settings, home=tmp_path / name, metadata_database="meta", executor=EXECUTOR) for name in "ab"
    ]
    compose = yaml.safe_load(CELERY_FILE.read_text())["x-celery-environment"]

    environment = stacks[0].environment()

    assert {name for name in compose} <= set(environment)
    assert environment["AIRFLOW__CORE__EXECUTOR"] == compose["AIRFLOW__CORE__EXECUTOR"]
    assert environment["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql")
    assert environment["AIRFLOW__CELERY__RESULT_BACKEND"].split("?")[0].endswith("/meta")
    assert environment["AIRFLOW__CELERY__BROKER_URL"] == EXECUTOR.broker_url
    assert stacks[0].celery_queue != stacks[1].celery_queue
    assert environment["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == stacks[0].celery_queue
    assert len(set(stacks[0].workers)) == WORKERS


def test_no_broker_answers_on_a_closed_port() -> None:
    assert broker_answers(f"redis://127.0.0.1:{free_port()}/0", timeout=1) is False


@pytest.fixture(scope="module")
def stack(warehouse: WarehouseSettings, pg_conn: psycopg.Connection, tmp_path_factory) -> Iterator[LocalAirflow]:
    """A small world and a running Celery stack on it; always stopped, its metadata database dropped."""
    from upshift.generator import generate_marketplace

    generate_marketplace(pg_conn, schema=warehouse.raw_schema, as_of=AS_OF, progress=False, **MARKETPLACE)
    dbt.parse(warehouse)
    airflow = LocalAirflow(
        warehouse,
        port=free_port(),
        metadata_database=f"{warehouse.database}_airflow",
        home=tmp_path_factory.mktemp("airflow"),
        executor=EXECUTOR,
    )
    airflow.prepare()
    try:
        airflow.start()
        yield airflow
    finally:
        airflow.stop()
        with psycopg.connect(**warehouse.conninfo("postgres"), autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(airflow.metadata_database))
            )


@pytest.fixture(scope="module")
def api(stack: LocalAirflow) -> AirflowApi:
    api = stack.wait_until_ready(timeout=600)
    api.unpause(DAG_ID)
    return api


@pytest.fixture(scope="module")
def instances(api: AirflowApi) -> list[dict]:
    """The task instances of one dry run of the DAG."""
    run_id = api.trigger(DAG_ID, AS_OF, {"dry_run": True})
    api.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
    return api.task_instances(DAG_ID, run_id)


def _running_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one instant (an end at the same instant as a start closes first)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = running = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT + 600)
@on_a_broker
def test_the_stack_runs_on_celery_with_its_own_workers(stack: LocalAirflow, api: AirflowApi) -> None:
    environment = stack.environment()

    assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert environment["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql")
    assert environment["AIRFLOW__CELERY__RESULT_BACKEND"].split("?")[0].endswith(f"/{stack.metadata_database}")
    assert len(stack.workers) == WORKERS
    assert stack.silent_workers() == []


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT + 600)
@on_a_broker
def test_every_task_succeeds_on_the_workers(instances: list[dict]) -> None:
    states = {instance["task_id"]: instance["state"] for instance in instances}

    assert {"raw_gate", "sync.braze_users", "sync.iterable_events"} <= set(states)
    assert {task: state for task, state in states.items() if state != "success"} == {}


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT + 600)
@on_a_broker
def test_tasks_ran_on_both_workers(stack: LocalAirflow, instances: list[dict]) -> None:
    # The scheduler finishes an EmptyOperator itself (no worker, no hostname).
    executed = [instance for instance in instances if instance["operator"] != "EmptyOperator"]

    by_worker = Counter(instance["hostname"] for instance in executed)

    assert len(executed) > 20
    assert set(by_worker) == set(stack.workers), by_worker


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT + 600)
@on_a_broker
def test_the_sync_pools_hold_across_workers(api: AirflowApi, instances: list[dict]) -> None:
    """Each sync task ran in its pool, and no pool had more tasks running at once than its slots.

    The scheduler, not a worker, hands out pool slots: this is what keeps the sync's request
    rate per destination when its tasks may land on any worker.
    """
    slots = {name: pool["slots"] for name, pool in json.loads(POOLS_FILE.read_text()).items()}
    sync = [instance for instance in instances if instance["task_id"].startswith("sync.")]

    assert api.pools().items() >= slots.items()
    assert {instance["pool"] for instance in sync} == set(SYNC_POOLS)
    for pool in SYNC_POOLS:
        intervals = [
            (datetime.fromisoformat(instance["start_date"]), datetime.fromisoformat(instance["end_date"]))
            for instance in sync
            if instance["pool"] == pool
        ]
        assert intervals, pool
        assert _running_at_once(intervals) <= slots[pool], pool
