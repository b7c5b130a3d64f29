"""Shared fixtures: a PostgreSQL for the session and a fresh database per test module.

By default the session starts an embedded PostgreSQL (pgserver) in a temporary UPSHIFT_HOME,
so the tests need nothing installed. `python3 run.py test` runs them in pytest-xdist worker
processes (one per core, at most four), a whole module per worker at a time; each worker is a
session of its own, with its own UPSHIFT_HOME, embedded PostgreSQL, Airflow home and copy of the
dbt project. With UPSHIFT_TEST_PG_HOST set (plus optional
UPSHIFT_TEST_PG_PORT / _USER / _PASSWORD) they run against that server instead; `.ci/run`
does both. Each module gets its own database, dropped afterwards, so modules never see each
other's tables.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from upshift.local_airflow import DAGS_FOLDER, PLUGINS_FOLDER
from upshift.warehouse import REPO_ROOT, WarehouseSettings, ensure_warehouse, stop_embedded

_DB_FIXTURES = {"warehouse_server", "warehouse", "pg_conn"}
_SESSION_HOME: Path | None = None
# The slowest modules first (the rest keep their collection order): xdist hands each free worker
# the next module, so starting with the longest lets the workers finish together.
_SLOWEST_FIRST = (
    "test_airflow_scheduler.py",
    "test_spark.py",
    "test_dbt_project.py",
    "test_end_to_end.py",
    "test_sync.py",
    "test_templates.py",
    "test_report.py",
    "test_gates.py",
)


def pytest_configure(config: pytest.Config) -> None:
    """Give the session its own UPSHIFT_HOME and Airflow home before anything imports airflow.

    Airflow reads AIRFLOW_HOME once, at its first import, and test modules import it while they
    are collected, so this cannot wait for a fixture. The same goes for the dbt project: the
    session builds a copy of it (upshift.dbt reads UPSHIFT_DBT_PROJECT_DIR at import), so its
    target/ folder - the manifest the DAG renders, dbt's partial parse and run results - is this
    session's alone, whatever other test processes build at the same time, and the checkout's
    own target/ is left as it was.
    """
    global _SESSION_HOME
    assert "upshift.dbt" not in sys.modules, "upshift.dbt was imported before the session chose its dbt project"
    _SESSION_HOME = Path(tempfile.mkdtemp(prefix="upshift-test-"))
    os.environ["UPSHIFT_HOME"] = str(_SESSION_HOME)
    project = Path(os.environ.get("UPSHIFT_DBT_PROJECT_DIR") or REPO_ROOT / "dbt_project")
    copy = _SESSION_HOME / "dbt_project"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    os.environ["UPSHIFT_DBT_PROJECT_DIR"] = str(copy)
    os.environ["AIRFLOW_HOME"] = str(_SESSION_HOME / "airflow")
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PLUGINS_FOLDER)
    # On sys.path for the whole session, as in every Airflow process. Airflow appends it once,
    # when it first initialises, which may happen inside a test that took a sys.path snapshot
    # (monkeypatch.syspath_prepend) and then restored it without the folder: a later DagBag in
    # the same worker could no longer import the DAG's operators, depending on module order.
    if str(PLUGINS_FOLDER) not in sys.path:
        sys.path.append(str(PLUGINS_FOLDER))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] = "False"
    os.environ["AIRFLOW__USAGE_DATA_COLLECTION__ENABLED"] = "False"


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SESSION_HOME is not None:
        shutil.rmtree(_SESSION_HOME, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a database fixture `db`, so `-m db` selects exactly those; put
    the slowest modules first (a stable sort: tests keep their order within a module)."""
    for item in items:
        if _DB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)
    rank = {name: position for position, name in enumerate(_SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def _external_server() -> WarehouseSettings | None:
    host = os.environ.get("UPSHIFT_TEST_PG_HOST")
    if not host:
        return None
    return WarehouseSettings.from_env(
        {
            "UPSHIFT_HOME": os.environ["UPSHIFT_HOME"],
            "UPSHIFT_PG_HOST": host,
            "UPSHIFT_PG_PORT": os.environ.get("UPSHIFT_TEST_PG_PORT", "5432"),
            "UPSHIFT_PG_USER": os.environ.get("UPSHIFT_TEST_PG_USER", "postgres"),
            "UPSHIFT_PG_PASSWORD": os.environ.get("UPSHIFT_TEST_PG_PASSWORD", ""),
            "UPSHIFT_PG_DATABASE": "postgres",
        }
    )


@pytest.fixture(scope="session")
def warehouse_server() -> Iterator[WarehouseSettings]:
    """The PostgreSQL server of this session: UPSHIFT_TEST_PG_HOST, or an embedded one."""
    external = _external_server()
    if external is not None:
        yield ensure_warehouse(external)
        return
    settings = ensure_warehouse(WarehouseSettings.from_env({"UPSHIFT_HOME": os.environ["UPSHIFT_HOME"]}))
    yield settings
    stop_embedded(settings)


def _database_name(module_name: str) -> str:
    stem = re.sub(r"[^a-z0-9]+", "_", module_name.rsplit(".", 1)[-1].lower())[:30]
    return f"upshift_{stem}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def warehouse(warehouse_server: WarehouseSettings, request: pytest.FixtureRequest) -> Iterator[WarehouseSettings]:
    """Settings pointing at a new, empty database that is dropped after the module."""
    settings = warehouse_server.with_database(_database_name(request.module.__name__))
    with psycopg.connect(**warehouse_server.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(settings.database)))
    yield settings
    with psycopg.connect(**warehouse_server.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(settings.database)))


@pytest.fixture(scope="module")
def pg_conn(warehouse: WarehouseSettings) -> Iterator[psycopg.Connection]:
    """An autocommit psycopg 3 connection to the module's database.

    Autocommit, so a test that reads a table between two DAG runs holds no lock that would
    block dbt replacing it; use `with pg_conn.transaction():` where atomicity matters.
    """
    with psycopg.connect(**warehouse.conninfo(), autocommit=True) as conn:
        yield conn
