"""The upgrade_readiness DAG imports cleanly, is wired as documented, and does no work at parse time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pendulum
import pytest

from upshift import dbt
from upshift.local_airflow import DAG_ID, DAGS_FOLDER

DAG_FILE = DAGS_FOLDER / f"{DAG_ID}.py"
HEAVY_MODULES = ("great_expectations", "pandas", "dbt")

# Parses the DAG file in a fresh interpreter where the warehouse is unreachable and every
# socket connection is refused and recorded, then reports what happened as JSON.
_ISOLATED_PARSE = textwrap.dedent(
    """
    import json, socket, sys, time

    attempts = []
    def refuse(sock, address):
        attempts.append(repr(address))
        raise ConnectionRefusedError("tests forbid network access while parsing DAGs")
    socket.socket.connect = refuse

    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    seconds = time.perf_counter() - started
    print(json.dumps({
        "import_errors": {path: str(error) for path, error in bag.import_errors.items()},
        "dag_ids": sorted(bag.dags),
        "parse_seconds": seconds,
        "socket_attempts": attempts,
        "heavy_modules": sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[2:])),
    }))
    """
)


@pytest.fixture(scope="module")
def manifest() -> dict:
    """A manifest of the current dbt project, as `python -m upshift.cli dbt-parse` writes it."""
    return json.loads(dbt.parse().read_text())


@pytest.fixture(scope="module")
def isolated_parse(manifest: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    unreachable = {
        "conn_type": "postgres",
        "host": "192.0.2.1",  # TEST-NET-1: never routable
        "port": 5432,
        "login": "nobody",
        "password": "unused",
        "schema": "upshift",
    }
    env = {
        **_inherited_env(),
        "AIRFLOW_HOME": str(tmp_path_factory.mktemp("airflow-home")),
        "AIRFLOW_CONN_UPSHIFT_WAREHOUSE": json.dumps(unreachable),
        # Any metadata-database access would have to open a socket and be recorded.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://nobody@192.0.2.1:5432/airflow",
        "UPSHIFT_PG_HOST": "192.0.2.1",
    }
    completed = subprocess.run(
        [sys.executable, "-c", _ISOLATED_PARSE, str(DAG_FILE), *HEAVY_MODULES],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _inherited_env() -> dict[str, str]:
    import os

    return {name: value for name, value in os.environ.items() if not name.startswith(("AIRFLOW", "UPSHIFT_PG"))}


@pytest.fixture(scope="module")
def dag(manifest: dict):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def test_dag_file_imports_without_errors_and_reports_parse_time(isolated_parse: dict) -> None:
    assert isolated_parse["import_errors"] == {}
    assert isolated_parse["dag_ids"] == [DAG_ID]
    print(f"\n{DAG_FILE.name} parsed in {isolated_parse['parse_seconds']:.2f}s")
    assert isolated_parse["parse_seconds"] < 30


def test_parsing_opens_no_connection_and_imports_no_heavy_module(isolated_parse: dict) -> None:
    assert isolated_parse["socket_attempts"] == []
    assert isolated_parse["heavy_modules"] == []


def test_missing_manifest_fails_with_the_command_that_creates_it(
    manifest: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setattr(dbt, "MANIFEST_PATH", tmp_path / "target" / "manifest.json")

    bag = DagBag(dag_folder=str(DAG_FILE))

    (error,) = bag.import_errors.values()
    assert "manifest not found" in error
    assert "python3 run.py demo" in error
    assert "upshift.cli dbt-parse" in error


def test_identity_and_defaults(dag) -> None:
    assert dag.dag_id == DAG_ID
    assert {"upshift", "dbt"} <= set(dag.tags)
    assert dag.catchup is False
    assert dag.start_date.tzinfo is not None
    assert "Rerun or backfill" in dag.doc_md
    for task in dag.tasks:
        assert task.retries >= 1, task.task_id
        assert task.retry_exponential_backoff, task.task_id


def test_schedule_gives_each_run_one_full_day_of_data(dag) -> None:
    from airflow.serialization.encoders import coerce_to_core_timetable

    timetable = coerce_to_core_timetable(dag.timetable)

    interval = timetable.infer_manual_data_interval(run_after=pendulum.datetime(2025, 6, 2, 6, tz="UTC"))

    assert interval.start == pendulum.datetime(2025, 6, 1, tz="UTC")
    assert interval.end == pendulum.datetime(2025, 6, 2, tz="UTC")


def test_params_are_usable_from_the_trigger_form(dag) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    as_of_date = dag.params.get_param("as_of_date")
    full_refresh = dag.params.get_param("full_refresh")

    assert as_of_date.resolve(None) is None
    assert as_of_date.resolve("2025-06-01") == "2025-06-01"
    with pytest.raises(ParamValidationError):
        as_of_date.resolve("June 1st")
    assert full_refresh.resolve(False) is False
    assert full_refresh.resolve(True) is True


@pytest.mark.parametrize(
    ("as_of_param", "expected"),
    [(None, "2025-06-02"), ("2025-05-01", "2025-05-01")],
    ids=["interval-end", "override"],
)
def test_dbt_scores_as_of_the_interval_end_unless_overridden(dag, as_of_param: str | None, expected: str) -> None:
    template_env = dag.get_template_env()

    rendered = {
        task.task_id: template_env.from_string(task.vars["as_of_date"]).render(
            params={"as_of_date": as_of_param},
            data_interval_end=pendulum.datetime(2025, 6, 2, tz="UTC"),
        )
        for task in dag.tasks
        if hasattr(task, "vars")
    }

    assert rendered
    assert set(rendered.values()) == {expected}


def test_one_task_per_dbt_model_and_seed(dag, manifest: dict) -> None:
    nodes = [node for node in manifest["nodes"].values() if node["package_name"] == "upshift"]
    expected = {
        f"dbt.{node['name']}_{node['resource_type']}_build"
        for node in nodes
        if node["resource_type"] in {"model", "seed"}
    }
    multi_parent_tests = {
        f"dbt.{node['name']}_test"
        for node in nodes
        if node["resource_type"] == "test" and len(set(node["depends_on"]["nodes"])) > 1
    }

    build_tasks = {task.task_id for task in dag.tasks if task.task_id.endswith("_build")}
    other_tasks = {task.task_id for task in dag.tasks} - build_tasks

    assert build_tasks == expected
    assert other_tasks <= multi_parent_tests, "only tests spanning several models get a task of their own"


def test_unit_tests_are_left_to_ci(dag) -> None:
    for task in dag.tasks:
        if hasattr(task, "env"):
            assert task.env.get("DBT_EXCLUDE_RESOURCE_TYPES") == "unit_test", task.task_id
