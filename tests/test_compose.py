"""docker-compose.yml is complete and consistent with this repository.

No Docker engine runs where the tests run, so this checks the file itself: the services the
README promises, healthchecks and start-up order, declared volumes, a value in .env.example for
every variable it references, and that every path, module and file it points into the repository
exists.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from upshift.warehouse import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
REPO_MOUNT = "/opt/upshift"
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
LONG_RUNNING = ("warehouse", "airflow-metadata", "emulator", *AIRFLOW_SERVICES)
# ${NAME}, ${NAME:-default}, ${NAME-default}, $NAME; `$$` escapes a dollar sign.
_VARIABLE = re.compile(
    r"(?<!\$)\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<default>:?-[^}]*)?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def _env_example() -> dict[str, str]:
    entries = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            entries[name.strip()] = value.strip()
    return entries


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [text for key, value in node.items() for text in (*_strings(key), *_strings(value))]
    if isinstance(node, list):
        return [text for item in node for text in _strings(item)]
    return []


def _command(service: dict) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else command


def _repo_path(container_path: str) -> Path:
    return REPO_ROOT / container_path.removeprefix(REPO_MOUNT).lstrip("/")


def test_every_promised_service_is_there(services: dict) -> None:
    assert set(LONG_RUNNING) | {"airflow-init"} <= set(services)
    assert services["airflow-metadata"] is not services["warehouse"], "Airflow has its own metadata database"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_have_a_healthcheck(services: dict, name: str) -> None:
    healthcheck = services[name].get("healthcheck", {})

    assert healthcheck.get("test"), name
    assert healthcheck.get("retries", 0) >= 3, name


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_starts_after_its_databases_and_the_migration(services: dict, name: str) -> None:
    depends_on = services[name]["depends_on"]

    assert depends_on["airflow-metadata"]["condition"] == "service_healthy"
    assert depends_on["warehouse"]["condition"] == "service_healthy"
    assert depends_on["airflow-init"]["condition"] == "service_completed_successfully"


def test_airflow_runs_the_documented_commands(services: dict) -> None:
    assert {name: _command(services[name])[0] for name in AIRFLOW_SERVICES} == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
    }
    init = " ".join(_command(services["airflow-init"]))
    assert "airflow db migrate" in init
    assert "airflow pools import" in init
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_credentials_reach_airflow_only_as_connections(services: dict) -> None:
    environment = services["airflow-scheduler"]["environment"]

    connections = {name: json.loads(value) for name, value in environment.items() if name.startswith("AIRFLOW_CONN_")}

    assert set(connections) == {
        "AIRFLOW_CONN_UPSHIFT_WAREHOUSE",
        "AIRFLOW_CONN_BRAZE_DEFAULT",
        "AIRFLOW_CONN_ITERABLE_DEFAULT",
    }
    for name, connection in connections.items():
        assert re.fullmatch(r"\$\{[A-Z_]+\}", connection["password"]), f"{name}: password must come from .env"
    assert not [name for name in environment if "PASSWORD" in name or "API_KEY" in name]


def test_named_volumes_are_declared(compose: dict, services: dict) -> None:
    used = {
        volume.split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))
    }

    assert used
    assert used <= set(compose.get("volumes") or {})


def test_every_variable_has_a_value_in_env_example() -> None:
    example = _env_example()
    referenced = {
        match["braced"] or match["bare"]
        for text in _strings(yaml.safe_load(COMPOSE_FILE.read_text()))
        for match in _VARIABLE.finditer(text)
        if not match["default"]
    }

    assert referenced
    assert {name for name in referenced if not example.get(name)} == set()


def test_env_example_holds_placeholders_not_secrets() -> None:
    example = _env_example()

    secrets = {name: value for name, value in example.items() if re.search("PASSWORD|SECRET|KEY", name)}

    assert secrets
    assert set(secrets.values()) == {"change-me"}


def test_every_repository_path_it_mentions_exists(services: dict) -> None:
    mounted = [
        volume.split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if volume.startswith(".")
    ]
    mentioned = {path for text in _strings(services) for path in re.findall(rf"{REPO_MOUNT}/[^\s\"']+", text)}

    assert mounted
    assert [path for path in mounted if not (REPO_ROOT / path).exists()] == []
    assert f"{REPO_MOUNT}/requirements.lock" in mentioned
    assert [path for path in sorted(mentioned) if not _repo_path(path).exists()] == []


def test_pools_file_defines_the_sync_pools(services: dict) -> None:
    (pools_path,) = [word for word in _command(services["airflow-init"])[-1].split() if word.endswith(".json")]

    pools = json.loads(_repo_path(pools_path).read_text())

    assert {"braze_api", "iterable_api"} <= set(pools)
    assert all(pool["slots"] >= 1 for pool in pools.values())


def test_python_modules_the_services_run_exist(services: dict) -> None:
    modules = [
        command[command.index("-m") + 1]
        for command in (_command(service) for service in services.values())
        if "-m" in command and command[0].startswith("python")
    ]

    assert "upshift.emulator" in modules
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module


def test_emulator_needs_nothing_beyond_the_standard_library(services: dict) -> None:
    """It runs on the plain python image, so its package may import only the stdlib and itself."""
    assert services["emulator"]["image"].startswith("python:")
    package = REPO_ROOT / "upshift" / "emulator"

    imported = set()
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])

    assert imported - set(sys.stdlib_module_names) <= {"upshift"}


def test_dags_and_plugins_folders_point_into_the_repository(services: dict) -> None:
    environment = services["airflow-scheduler"]["environment"]

    assert _repo_path(environment["AIRFLOW__CORE__DAGS_FOLDER"]) == REPO_ROOT / "dags"
    assert _repo_path(environment["AIRFLOW__CORE__PLUGINS_FOLDER"]) == REPO_ROOT / "plugins"
    assert "airflow:" in services["airflow-scheduler"]["image"]
    assert services["airflow-scheduler"]["image"].endswith("3.3.0-python3.11")


CELERY_FILE = REPO_ROOT / "docker-compose.celery.yml"
CELERY_WORKERS = ("airflow-worker-1", "airflow-worker-2")


@pytest.fixture(scope="module")
def celery_services() -> dict[str, dict]:
    return yaml.safe_load(CELERY_FILE.read_text())["services"]


def _merged_environment(base: dict[str, dict], celery: dict[str, dict], name: str) -> dict[str, str]:
    """A service's environment as `docker compose -f base -f celery` merges it (maps merge, celery wins)."""
    source = celery[name].get("extends", {}).get("service")
    inherited = base[source]["environment"] if source else base.get(name, {}).get("environment", {})
    return {**inherited, **celery[name].get("environment", {})}


def test_the_celery_file_overrides_every_airflow_service_and_adds_two_workers(
    services: dict, celery_services: dict
) -> None:
    airflow = (*AIRFLOW_SERVICES, "airflow-init")

    assert set(celery_services) == {"redis", *airflow, *CELERY_WORKERS}
    for name in (*airflow, *CELERY_WORKERS):
        assert _merged_environment(services, celery_services, name)["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for name in CELERY_WORKERS:
        worker = celery_services[name]
        assert _command(worker) == ["celery", "worker"]
        assert worker["extends"] == {"file": COMPOSE_FILE.name, "service": "airflow-scheduler"}
        assert worker["hostname"] == name, "each worker has its own Celery node name"
        assert worker["healthcheck"]["retries"] >= 3


def test_celery_uses_redis_as_broker_and_the_metadata_database_as_result_backend(
    services: dict, celery_services: dict
) -> None:
    environment = _merged_environment(services, celery_services, "airflow-worker-1")

    assert environment["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert environment["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://airflow:")
    assert environment["AIRFLOW__CELERY__RESULT_BACKEND"].endswith("@airflow-metadata/airflow")
    assert celery_services["redis"]["healthcheck"]["test"][-1] == "ping"
    for name in (*AIRFLOW_SERVICES, *CELERY_WORKERS):
        assert celery_services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_workers_start_after_the_databases_the_migration_and_the_api_server(celery_services: dict) -> None:
    for name in CELERY_WORKERS:
        depends_on = celery_services[name]["depends_on"]
        assert depends_on["airflow-metadata"]["condition"] == "service_healthy"
        assert depends_on["warehouse"]["condition"] == "service_healthy"
        assert depends_on["airflow-init"]["condition"] == "service_completed_successfully"
        assert depends_on["airflow-apiserver"]["condition"] == "service_healthy"


def test_workers_run_the_same_dags_connections_and_pools(services: dict, celery_services: dict) -> None:
    """Workers inherit the scheduler's settings: the same DAGs, connections and repository mount;
    the pools stay the scheduler's (imported once by airflow-init), so they hold across workers."""
    scheduler = services["airflow-scheduler"]
    for name in CELERY_WORKERS:
        environment = _merged_environment(services, celery_services, name)
        assert {key: value for key, value in environment.items() if key.startswith("AIRFLOW_CONN_")} == {
            key: value for key, value in scheduler["environment"].items() if key.startswith("AIRFLOW_CONN_")
        }
        assert environment["AIRFLOW__CORE__DAGS_FOLDER"] == scheduler["environment"]["AIRFLOW__CORE__DAGS_FOLDER"]
    assert "airflow pools import" in " ".join(_command(services["airflow-init"]))
    assert "command" not in celery_services["airflow-init"], "the base file's init still imports the pools"


def test_every_variable_of_the_celery_file_has_a_value_in_env_example() -> None:
    example = _env_example()
    referenced = {
        match["braced"] or match["bare"]
        for text in _strings(yaml.safe_load(CELERY_FILE.read_text()))
        for match in _VARIABLE.finditer(text)
        if not match["default"]
    }

    assert referenced
    assert {name for name in referenced if not example.get(name)} == set()
