"""The DAGs import cleanly, are wired as documented, and do no work at parse time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pendulum
import pytest

from upshift import dbt
from upshift.local_airflow import DAG_ID, DAGS_FOLDER, PLUGINS_FOLDER, POOLS_FILE

DAG_FILE = DAGS_FOLDER / f"{DAG_ID}.py"
DAG_IDS = ("growth_review", "upgrade_readiness")
HEAVY_MODULES = ("great_expectations", "pandas", "dbt")
GATES = ("raw_gate", "features_gate", "scores_gate", "sync_payload_gate")

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


@pytest.fixture(scope="module", params=DAG_IDS)
def isolated_parse(request: pytest.FixtureRequest, manifest: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Each DAG file parsed alone, as the dag-processor does, with its id, time and side effects."""
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
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_FOLDER),
        "AIRFLOW_CONN_UPSHIFT_WAREHOUSE": json.dumps(unreachable),
        # Any metadata-database access would have to open a socket and be recorded.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://nobody@192.0.2.1:5432/airflow",
        "UPSHIFT_PG_HOST": "192.0.2.1",
    }
    completed = subprocess.run(
        [sys.executable, "-c", _ISOLATED_PARSE, str(DAGS_FOLDER / f"{request.param}.py"), *HEAVY_MODULES],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return {"dag_id": request.param, **json.loads(completed.stdout.strip().splitlines()[-1])}


def _inherited_env() -> dict[str, str]:
    import os

    return {name: value for name, value in os.environ.items() if not name.startswith(("AIRFLOW", "UPSHIFT_PG"))}


@pytest.fixture(scope="module")
def dagbag(manifest: dict):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    return bag


@pytest.fixture(scope="module")
def dag(dagbag):
    return dagbag.dags[DAG_ID]


@pytest.fixture(scope="module", params=DAG_IDS)
def any_dag(request: pytest.FixtureRequest, dagbag):
    return dagbag.dags[request.param]


def test_dag_file_imports_without_errors_and_reports_parse_time(isolated_parse: dict) -> None:
    assert isolated_parse["import_errors"] == {}
    assert isolated_parse["dag_ids"] == [isolated_parse["dag_id"]], "file name == dag_id, one DAG per file"
    print(f"\n{isolated_parse['dag_id']}.py parsed in {isolated_parse['parse_seconds']:.2f}s")
    assert isolated_parse["parse_seconds"] < 30


def test_the_dags_folder_holds_exactly_the_documented_dags(dagbag) -> None:
    assert sorted(dagbag.dag_ids) == sorted(DAG_IDS)


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


def test_identity_and_defaults(any_dag) -> None:
    assert "upshift" in any_dag.tags
    assert any_dag.catchup is False
    assert any_dag.max_active_runs == 1
    assert any_dag.start_date.tzinfo is not None
    assert "rerun" in any_dag.doc_md.lower()
    assert "backfill" in any_dag.doc_md.lower()


def test_every_task_retries_with_backoff(any_dag) -> None:
    for task in any_dag.tasks:
        assert task.retries >= 1, task.task_id
        assert task.retry_exponential_backoff, task.task_id


def test_every_sync_step_has_a_time_limit(dagbag) -> None:
    sync_tasks = [task for task in dagbag.dags["upgrade_readiness"].tasks if task.task_id.startswith("sync.")]

    assert len(sync_tasks) == 5
    for task in sync_tasks:
        assert task.execution_timeout is not None, task.task_id
        assert task.execution_timeout.total_seconds() >= 1800, task.task_id


@pytest.mark.parametrize(
    ("dag_id", "run_after", "expected_start", "expected_end"),
    [
        ("upgrade_readiness", (2025, 6, 2, 6), (2025, 6, 1), (2025, 6, 2)),
        ("growth_review", (2025, 6, 11, 6), (2025, 6, 2), (2025, 6, 9)),
    ],
    ids=["daily", "weekly"],
)
def test_schedule_gives_each_run_a_real_data_interval(dagbag, dag_id, run_after, expected_start, expected_end) -> None:
    from airflow.serialization.encoders import coerce_to_core_timetable

    timetable = coerce_to_core_timetable(dagbag.dags[dag_id].timetable)

    interval = timetable.infer_manual_data_interval(run_after=pendulum.datetime(*run_after, tz="UTC"))

    assert interval.start == pendulum.datetime(*expected_start, tz="UTC")
    assert interval.end == pendulum.datetime(*expected_end, tz="UTC")


def test_growth_review_waits_for_the_metrics_of_its_as_of_date(dagbag) -> None:
    growth_review = dagbag.dags["growth_review"]
    upgrade_readiness = dagbag.dags["upgrade_readiness"]
    wait = growth_review.get_task("wait_for_metrics")
    weekly_logical_date = pendulum.datetime(2025, 6, 2, tz="UTC")

    assert [task.task_id for task in growth_review.topological_sort()] == ["wait_for_metrics", "review"]
    assert wait.external_dag_id == "upgrade_readiness"
    assert wait.external_task_ids == ["metrics.dbt_project_test"]
    metrics_models = {task.task_id for task in upgrade_readiness.tasks if task.task_id.endswith("_run")}
    metrics_models = {task_id for task_id in metrics_models if task_id.startswith("metrics.")}
    assert metrics_models
    assert metrics_models <= _upstream_closure(upgrade_readiness, "metrics.dbt_project_test")
    # The daily run ending where this week ends (2025-06-09) has the logical date 2025-06-08.
    assert weekly_logical_date - wait.execution_delta == pendulum.datetime(2025, 6, 8, tz="UTC")
    assert wait.mode == "reschedule"


def test_params_are_usable_from_the_trigger_form(dag) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    as_of_date = dag.params.get_param("as_of_date")

    assert as_of_date.resolve(None) is None
    assert as_of_date.resolve("2025-06-01") == "2025-06-01"
    with pytest.raises(ParamValidationError):
        as_of_date.resolve("June 1st")
    for flag in ("full_refresh", "dry_run"):
        param = dag.params.get_param(flag)
        assert param.resolve() is False, flag
        assert param.resolve(True) is True, flag
        assert param.description, flag


def _as_of_templates(dag) -> dict[str, str]:
    """The as-of template of every task that reads one: dbt's environment, gates, sync steps."""
    templates = {}
    for task in dag.tasks:
        if hasattr(task, "vars"):
            templates[task.task_id] = task.env["UPSHIFT_AS_OF_DATE"]
        elif task.task_id in GATES or task.task_id.startswith("sync."):
            templates[task.task_id] = task.as_of_date
    return templates


@pytest.mark.parametrize(
    ("as_of_param", "expected"),
    [(None, "2025-06-02"), ("2025-05-01", "2025-05-01")],
    ids=["interval-end", "override"],
)
def test_gates_dbt_and_sync_share_one_as_of_date(dag, as_of_param: str | None, expected: str) -> None:
    template_env = dag.get_template_env()

    rendered = {
        task_id: template_env.from_string(template).render(
            params={"as_of_date": as_of_param}, data_interval_end=pendulum.datetime(2025, 6, 2, tz="UTC")
        )
        for task_id, template in _as_of_templates(dag).items()
    }

    assert set(GATES) <= set(rendered)
    assert {"sync.braze_users", "sync.braze_events", "sync.iterable_users", "sync.iterable_events"} <= set(rendered)
    assert set(rendered.values()) == {expected}


def test_templated_flags_arrive_as_booleans_and_the_as_of_date_as_text(dag) -> None:
    params = {
        "as_of_date": None,
        "full_refresh": True,
        "dry_run": True,
        "full_resync": False,
        "force_backfill_sync": True,
    }
    context = {"params": params, "data_interval_end": pendulum.datetime(2025, 6, 2, tz="UTC")}
    sync_step = dag.get_task("sync.iterable_users")
    build = dag.get_task("features.dbt_producer_watcher")

    def rendered(task, field: str) -> object:
        return task.render_template(getattr(task, field), context, dag.get_template_env())

    assert {field: rendered(sync_step, field) for field in sync_step.template_fields} == {
        "as_of_date": "2025-06-02",
        "dry_run": True,
        "full_resync": False,
        "force_backfill": True,
    }
    assert rendered(build, "full_refresh") is True
    assert rendered(build, "env")["UPSHIFT_AS_OF_DATE"] == "2025-06-02"
    assert rendered(build, "env")["PGTZ"] == "UTC"


def test_dbt_tasks_pass_no_vars_so_a_new_date_keeps_dbt_partial_parse(dag) -> None:
    """dbt re-parses the whole project when --vars change; the as-of date goes in the environment."""
    dbt_tasks = [task for task in dag.tasks if hasattr(task, "vars")]

    assert len(dbt_tasks) > 40
    assert {task.task_id: task.vars for task in dbt_tasks if task.vars} == {}


def _upstream_closure(dag, task_id: str) -> set[str]:
    seen: set[str] = set()
    todo = [task_id]
    while todo:
        for upstream in dag.get_task(todo.pop()).upstream_task_ids - seen:
            seen.add(upstream)
            todo.append(upstream)
    return seen


def _group(dag, prefix: str) -> set[str]:
    return {task.task_id for task in dag.tasks if task.task_id.startswith(prefix)}


def test_stages_run_in_order_behind_their_gates(dag) -> None:
    stages = ["features", "scores", "activation", "sync", "metrics"]
    groups = {stage: _group(dag, f"{stage}.") for stage in stages}
    gate_before = {
        "features": "raw_gate",
        "scores": "features_gate",
        "activation": "scores_gate",
        "sync": "sync_payload_gate",
    }
    gate_after = {"features": "features_gate", "scores": "scores_gate", "activation": "sync_payload_gate"}

    assert all(groups.values()), {stage: len(tasks) for stage, tasks in groups.items()}
    for stage, gate in gate_before.items():
        for task_id in groups[stage]:
            assert gate in _upstream_closure(dag, task_id), task_id
    for stage, gate in gate_after.items():
        assert groups[stage] <= _upstream_closure(dag, gate)
    for task_id in groups["metrics"]:
        assert groups["sync"] <= _upstream_closure(dag, task_id), task_id


def test_sync_sends_users_before_their_events(dag) -> None:
    assert "sync.braze_users" in _upstream_closure(dag, "sync.braze_events")
    assert {"sync.iterable_users", "sync.iterable_lists"} <= _upstream_closure(dag, "sync.iterable_events")


def test_sync_steps_use_the_pools_of_their_apis(dag) -> None:
    pools = json.loads(POOLS_FILE.read_text())

    assert {dag.get_task(task_id).pool for task_id in _group(dag, "sync.")} == {"braze_api", "iterable_api"}
    assert set(pools) == {"braze_api", "iterable_api", "spark_local"}
    for name, pool in pools.items():
        assert pool["slots"] >= 1, name
        assert pool["description"], name


def test_with_spark_in_local_mode_the_sync_steps_take_turns_in_one_slot(
    manifest: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local Spark's embedded Derby metastore admits one process: the two sync chains, the only
    tasks that could open Spark at once, share one slot; with a Spark server they keep the APIs' pools."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("UPSHIFT_WAREHOUSE", "spark")
    monkeypatch.delenv("UPSHIFT_SPARK_CONN_ID", raising=False)
    local = DagBag(dag_folder=str(DAG_FILE)).dags[DAG_ID]
    monkeypatch.setenv("UPSHIFT_SPARK_CONN_ID", "spark_thrift")
    served = DagBag(dag_folder=str(DAG_FILE)).dags[DAG_ID]

    assert {local.get_task(task_id).pool for task_id in _group(local, "sync.")} == {"spark_local"}
    assert json.loads(POOLS_FILE.read_text())["spark_local"]["slots"] == 1
    assert {served.get_task(task_id).pool for task_id in _group(served, "sync.")} == {"braze_api", "iterable_api"}


def _manifest_nodes(manifest: dict) -> list[dict]:
    return [node for node in manifest["nodes"].values() if node["package_name"] == "upshift"]


STAGES = {
    "features": "stage_features",
    "scores": "stage_scores",
    "activation": "stage_activation",
    "metrics": "stage_metrics",
}


def _model_task_ids(manifest: dict, group: str) -> set[str]:
    """The task each model (and, in features, each seed) of a stage gets: `<name>_run` / `<name>_seed`."""
    suffix = {"model": "run", "seed": "seed"}
    return {
        f"{group}.{node['name']}_{suffix[node['resource_type']]}"
        for node in _manifest_nodes(manifest)
        if (node["resource_type"] == "model" and STAGES[group] in node["tags"])
        or (node["resource_type"] == "seed" and group == "features")
    }


@pytest.mark.parametrize("group", list(STAGES))
def test_one_task_per_dbt_model_of_the_stage(dag, manifest: dict, group: str) -> None:
    expected = _model_task_ids(manifest, group)

    model_tasks = {task_id for task_id in _group(dag, f"{group}.") if task_id.endswith(("_run", "_seed"))}

    assert model_tasks == expected


@pytest.mark.parametrize("group", list(STAGES))
def test_each_stage_runs_one_dbt_build_before_its_model_tasks(dag, manifest: dict, group: str) -> None:
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    builds = [
        task
        for task in dag.tasks
        if task.task_id.startswith(f"{group}.") and isinstance(task, DbtProducerWatcherOperator)
    ]

    assert [task.task_id for task in builds] == [f"{group}.dbt_producer_watcher"]
    for task_id in _model_task_ids(manifest, group):
        assert builds[0].task_id in _upstream_closure(dag, task_id), task_id


@pytest.mark.parametrize(
    ("group", "gate"), [("features", "features_gate"), ("scores", "scores_gate"), ("activation", "sync_payload_gate")]
)
def test_the_stage_data_tests_run_after_all_its_models_and_before_its_gate(
    dag, manifest: dict, group: str, gate: str
) -> None:
    tests_task = f"{group}.dbt_project_test"

    assert _model_task_ids(manifest, group) <= _upstream_closure(dag, tests_task)
    assert tests_task in _upstream_closure(dag, gate)


def test_tests_spanning_several_models_of_a_stage_run_after_all_of_them(dag, manifest: dict) -> None:
    nodes = {node["unique_id"]: node for node in _manifest_nodes(manifest)}
    stage_of = {
        unique_id: group
        for unique_id, node in nodes.items()
        for group, tag in STAGES.items()
        if tag in node["tags"] or (node["resource_type"] == "seed" and group == "features")
    }
    multi_parent_tests = [
        node for node in nodes.values() if node["resource_type"] == "test" and len(set(node["depends_on"]["nodes"])) > 1
    ]

    checked = 0
    for test in multi_parent_tests:
        stages = {stage_of.get(parent) for parent in test["depends_on"]["nodes"]}
        if len(stages) != 1 or None in stages:
            continue  # a test across stages runs in CI's dbt build
        (group,) = stages
        checked += 1
        assert _model_task_ids(manifest, group) <= _upstream_closure(dag, f"{group}.dbt_project_test"), test["name"]
    assert checked > 0


def test_unit_tests_are_left_to_ci(dag) -> None:
    for task in dag.tasks:
        if hasattr(task, "env"):
            assert task.env.get("DBT_EXCLUDE_RESOURCE_TYPES") == "unit_test", task.task_id


def test_every_dbt_task_pins_its_sessions_to_utc(dag) -> None:
    dbt_tasks = [task for task in dag.tasks if hasattr(task, "env")]

    assert dbt_tasks
    for task in dbt_tasks:
        assert task.env.get("PGTZ") == "UTC", task.task_id


def test_readiness_is_published_only_after_the_scores_gate(dag) -> None:
    published = ("user_readiness", "readiness_history", "readiness_triggers")
    publish_tasks = {name: f"activation.{name}_run" for name in published}

    assert "scores.int_users_readiness_scored_run" in _upstream_closure(dag, "scores_gate")
    for name, task_id in publish_tasks.items():
        assert task_id in dag.task_ids, name
        assert "scores_gate" in _upstream_closure(dag, task_id), name


def test_python_names_every_model_where_dbt_builds_it(manifest: dict) -> None:
    from upshift.sync.settings import SyncSettings
    from upshift.warehouse import WarehouseSettings

    settings = WarehouseSettings.from_env()
    built = [node for node in _manifest_nodes(manifest) if node["resource_type"] in {"model", "seed"}]
    sync_sources = {
        source["schema"] for source in manifest["sources"].values() if source["source_name"] == "upshift_sync"
    }

    assert built
    for node in built:
        assert node["schema"] == settings.layer_schema(node["config"]["schema"]), node["unique_id"]
    assert sync_sources == {SyncSettings.from_env().schema}
