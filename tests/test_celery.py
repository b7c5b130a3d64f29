"""upgrade_readiness on the CeleryExecutor: the local stack with two `airflow celery worker`
processes on a real broker (UPSHIFT_CELERY_BROKER_URL, default Redis on 127.0.0.1:6379/0),
Celery's results in the Airflow metadata database, as docker-compose.celery.yml configures it.

Here: the settings and what the stack configures from them, without starting Airflow. The DAG
itself runs on two Celery workers in tests/test_airflow_scheduler.py, whose stack uses the
CeleryExecutor whenever a broker answers (every run there then also checks that tasks ran on
both workers and that the sync pools held), so Celery costs the suite no DAG run of its own.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt

import pytest
import yaml

from upshift.local_airflow import (
    ExecutorSettings,
    ExecutorSettingsInvalid,
    LocalAirflow,
    broker_answers,
    free_port,
)
from upshift.warehouse import REPO_ROOT, WarehouseSettings

WORKERS = 2
EXECUTOR = dataclasses.replace(ExecutorSettings.from_env(), name="celery", workers=WORKERS)

CELERY_FILE = REPO_ROOT / "docker-compose.celery.yml"


def _dag_sync_timeout() -> dt.timedelta:
    """The DAG's longest task timeout (`SYNC_TIMEOUT = timedelta(hours=...)`), read without importing Airflow."""
    tree = ast.parse((REPO_ROOT / "dags" / "upgrade_readiness.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(target, "id", "") for target in node.targets] == ["SYNC_TIMEOUT"]:
            return dt.timedelta(**{keyword.arg: ast.literal_eval(keyword.value) for keyword in node.value.keywords})
    raise AssertionError("dags/upgrade_readiness.py has no SYNC_TIMEOUT")


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
    visibility = "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"
    assert environment[visibility] == compose[visibility]
    assert int(environment[visibility]) > _dag_sync_timeout().total_seconds()
    assert stacks[0].celery_queue != stacks[1].celery_queue
    assert environment["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == stacks[0].celery_queue
    assert len(set(stacks[0].workers)) == WORKERS


def test_no_broker_answers_on_a_closed_port() -> None:
    assert broker_answers(f"redis://127.0.0.1:{free_port()}/0", timeout=1) is False
