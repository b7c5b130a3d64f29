"""Warehouse settings: defaults, the Airflow connection and its hook, secrets kept out of output."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from upshift import cli
from upshift.local_airflow import PLUGINS_FOLDER
from upshift.run_lock import RunInProgress, run_lock
from upshift.sync.settings import SyncSettings
from upshift.warehouse import (
    DEFAULT_SYNC_SCHEMA,
    LAYERS,
    REPO_ROOT,
    SCHEMA_SUFFIX_LENGTH,
    SESSION_ENV,
    WarehouseError,
    WarehouseSettings,
    connect,
    ensure_warehouse,
    environment,
)

OWN_SERVER = {
    "UPSHIFT_PG_HOST": "db.internal",
    "UPSHIFT_PG_PORT": "6543",
    "UPSHIFT_PG_USER": "scorer",
    "UPSHIFT_PG_PASSWORD": "s3cret-value",
    "UPSHIFT_PG_DATABASE": "marketplace",
    "UPSHIFT_PG_SCHEMA": "growth",
    "UPSHIFT_RAW_SCHEMA": "landing",
    "UPSHIFT_HOME": "/srv/upshift",
    "UPSHIFT_WAREHOUSE": "postgres",
}


def test_without_a_host_the_warehouse_is_embedded_with_documented_defaults() -> None:
    settings = WarehouseSettings.from_env({"UPSHIFT_HOME": "/srv/upshift"})

    assert settings.embedded
    assert (settings.database, settings.schema, settings.raw_schema) == ("upshift", "analytics", "raw")
    assert str(settings.embedded_data_dir).startswith("/srv/upshift")


def test_own_server_settings_reach_dbt_unchanged() -> None:
    settings = WarehouseSettings.from_env(OWN_SERVER)

    assert not settings.embedded
    assert settings.env() == OWN_SERVER


def test_socket_directory_host_survives_the_airflow_connection() -> None:
    from airflow.models.connection import Connection

    settings = replace(WarehouseSettings.from_env({"UPSHIFT_HOME": "/srv/upshift"}), host="/srv/upshift/pgdata")

    connection = Connection.from_json(settings.airflow_connection(), conn_id="upshift_warehouse")

    assert connection.conn_type == "postgres"
    assert connection.host == "/srv/upshift/pgdata"
    assert (connection.port, connection.login, connection.schema) == (5432, "postgres", "upshift")
    assert connection.password, "Cosmos' Postgres profile mapping refuses an empty password"


def test_descriptions_never_show_the_password() -> None:
    settings = WarehouseSettings.from_env(OWN_SERVER)

    assert "s3cret-value" not in settings.describe()
    assert "s3cret-value" not in repr(settings)


OWN_SERVER_CONNECTION = {
    "conn_type": "postgres",
    "host": "db.internal",
    "port": 6543,
    "login": "scorer",
    "password": "s3cret-value",
    "schema": "marketplace",
}


@pytest.fixture
def warehouse_hook(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """The plugins importable and the worker's environment as the tasks see it; the connection is up
    to the test (set through the returned monkeypatch)."""
    monkeypatch.syspath_prepend(str(PLUGINS_FOLDER))
    monkeypatch.setenv("UPSHIFT_PG_SCHEMA", OWN_SERVER["UPSHIFT_PG_SCHEMA"])
    monkeypatch.setenv("UPSHIFT_RAW_SCHEMA", OWN_SERVER["UPSHIFT_RAW_SCHEMA"])
    monkeypatch.setenv("UPSHIFT_HOME", str(tmp_path / "home"))
    return monkeypatch


def test_the_warehouse_hook_reads_the_connection_and_the_schemas_of_the_worker(
    warehouse_hook: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from upshift_warehouse import UpshiftWarehouseHook

    warehouse_hook.setenv("AIRFLOW_CONN_UPSHIFT_WAREHOUSE", json.dumps(OWN_SERVER_CONNECTION))

    settings = UpshiftWarehouseHook().get_settings()

    assert settings.env() == {**OWN_SERVER, "UPSHIFT_HOME": str(tmp_path / "home")}
    assert not settings.embedded


@pytest.mark.parametrize("host", ["", "  "], ids=["empty", "blank"])
def test_an_empty_warehouse_host_fails_the_task_instead_of_starting_an_embedded_server(
    warehouse_hook: pytest.MonkeyPatch, tmp_path: Path, host: str
) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from upshift_sync_operators import SyncUsersOperator

    warehouse_hook.setenv("AIRFLOW_CONN_UPSHIFT_WAREHOUSE", json.dumps({**OWN_SERVER_CONNECTION, "host": host}))
    operator = SyncUsersOperator(task_id="braze_users", destination="braze", as_of_date="2026-03-01", dry_run=True)

    with pytest.raises(AirflowFailException, match="upshift_warehouse has no host"):
        operator.execute(context={"run_id": "no-host"})
    assert not (tmp_path / "home").exists()


def test_the_warehouse_hook_tests_its_connection_without_showing_the_password(
    warehouse_hook: pytest.MonkeyPatch, warehouse: WarehouseSettings
) -> None:
    from upshift_warehouse import UpshiftWarehouseHook

    warehouse_hook.setenv("AIRFLOW_CONN_UPSHIFT_WAREHOUSE", warehouse.airflow_connection())
    wrong_port = {**json.loads(warehouse.airflow_connection()), "port": 1, "password": "s3cret-value"}
    warehouse_hook.setenv("AIRFLOW_CONN_UPSHIFT_WRONG_PORT", json.dumps(wrong_port))

    reached = UpshiftWarehouseHook().test_connection()
    missed = UpshiftWarehouseHook("upshift_wrong_port").test_connection()

    assert reached[0] is True, reached[1]
    assert warehouse.database in reached[1]
    assert missed[0] is False
    assert "s3cret-value" not in missed[1]


@pytest.fixture
def scratch_settings(
    warehouse_server: WarehouseSettings, request: pytest.FixtureRequest
) -> Iterator[WarehouseSettings]:
    """Settings naming a database that does not exist yet; dropped after the test if created."""
    prefix = getattr(request, "param", "upshift_missing")
    settings = warehouse_server.with_database(f"{prefix}_{uuid.uuid4().hex[:8]}")
    yield settings
    with psycopg.connect(**warehouse_server.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(settings.database)))


def test_ensure_warehouse_creates_a_missing_database(scratch_settings: WarehouseSettings) -> None:
    ensure_warehouse(scratch_settings)

    with psycopg.connect(**scratch_settings.conninfo()) as conn:
        assert conn.execute("select current_database()").fetchone() == (scratch_settings.database,)


@pytest.mark.parametrize("scratch_settings", ["upshift-with-dash", "Upshift_Mixed"], indirect=True)
def test_database_names_that_need_quoting_work(scratch_settings: WarehouseSettings) -> None:
    ensure_warehouse(scratch_settings)

    with psycopg.connect(**scratch_settings.conninfo()) as conn:
        assert conn.execute("select current_database()").fetchone() == (scratch_settings.database,)


# --- configuration validated up front ------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("UPSHIFT_PG_SCHEMA", 'x"; create table pwned (id int); --'),
        ("UPSHIFT_PG_SCHEMA", "Analytics"),
        ("UPSHIFT_PG_SCHEMA", "a" * 51),
        ("UPSHIFT_RAW_SCHEMA", "raw data"),
        ("UPSHIFT_RAW_SCHEMA", "1raw"),
        ("UPSHIFT_PG_DATABASE", 'upshift"; drop database postgres; --'),
    ],
)
def test_unsafe_names_are_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(WarehouseError) as refused:
        WarehouseSettings.from_env({**OWN_SERVER, variable: value})

    assert f"{variable}={value!r} is not an allowed" in str(refused.value)


def test_a_port_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(WarehouseError, match=r"UPSHIFT_PG_PORT='54x2' is not a port number"):
        WarehouseSettings.from_env({**OWN_SERVER, "UPSHIFT_PG_PORT": "54x2"})


def test_the_engine_is_postgres_unless_spark_is_chosen() -> None:
    assert WarehouseSettings.from_env({"UPSHIFT_HOME": "/srv/upshift"}).engine == "postgres"
    spark = WarehouseSettings.from_env({**OWN_SERVER, "UPSHIFT_WAREHOUSE": "spark"})
    assert spark.engine == "spark"
    assert spark.env()["UPSHIFT_WAREHOUSE"] == "spark"
    with pytest.raises(WarehouseError, match=r"UPSHIFT_WAREHOUSE='snowflake' is not an engine"):
        WarehouseSettings.from_env({**OWN_SERVER, "UPSHIFT_WAREHOUSE": "snowflake"})


def test_the_cli_prints_one_error_line_for_bad_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UPSHIFT_PG_SCHEMA", 'x"; create table pwned (id int); --')

    code = cli.main(["summary", "--as-of", "2025-06-01"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: UPSHIFT_PG_SCHEMA=")
    assert "Traceback" not in err


def test_the_cli_refuses_an_unsafe_sync_schema(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UPSHIFT_SYNC_SCHEMA", "Sync State")

    code = cli.main(["summary", "--as-of", "2025-06-01"])

    assert code == 1
    assert capsys.readouterr().err.startswith("error: UPSHIFT_SYNC_SCHEMA='Sync State' is not an allowed schema name")


def test_a_sync_task_refuses_an_unsafe_sync_schema_without_retrying(warehouse_hook: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from upshift_sync_operators import SyncUsersOperator

    warehouse_hook.setenv("AIRFLOW_CONN_UPSHIFT_WAREHOUSE", json.dumps(OWN_SERVER_CONNECTION))
    warehouse_hook.setenv("UPSHIFT_SYNC_SCHEMA", "sync; drop schema raw")
    operator = SyncUsersOperator(task_id="braze_users", destination="braze", as_of_date="2026-03-01", dry_run=True)

    with pytest.raises(AirflowFailException, match="UPSHIFT_SYNC_SCHEMA='sync; drop schema raw' is not an allowed"):
        operator.execute(context={"run_id": "bad-sync-schema"})


def test_dbt_reads_the_sync_state_from_the_schema_the_sync_writes() -> None:
    sources = (REPO_ROOT / "dbt_project/models/staging/upshift_sync/_upshift_sync__sources.yml").read_text()

    assert f"env_var('UPSHIFT_SYNC_SCHEMA', '{DEFAULT_SYNC_SCHEMA}')" in sources
    assert SyncSettings.from_env({}).schema == DEFAULT_SYNC_SCHEMA


def test_every_layer_lands_in_its_own_schema_beside_the_target_schema() -> None:
    settings = WarehouseSettings.from_env(OWN_SERVER)

    assert [settings.layer_schema(layer) for layer in LAYERS] == [
        "growth_staging",
        "growth_intermediate",
        "growth_marts",
        "growth_reference",
    ]
    assert settings.relation("marts", "readiness_history") == sql.Identifier("growth_marts", "readiness_history")
    assert max(len(settings.layer_schema(layer)) - len(settings.schema) for layer in LAYERS) == SCHEMA_SUFFIX_LENGTH
    with pytest.raises(ValueError, match="'mart' is not a layer"):
        settings.layer_schema("mart")  # type: ignore[arg-type]


@pytest.fixture
def limited_role(warehouse_server: WarehouseSettings) -> Iterator[WarehouseSettings]:
    """Server settings for a login role without CREATEDB (nor superuser); dropped afterwards."""
    role = f"upshift_limited_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**warehouse_server.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("create role {} login nocreatedb password 'limited'").format(sql.Identifier(role)))
    # Not `embedded`: ensure_warehouse would log in as the embedded superuser again.
    yield replace(warehouse_server, user=role, password="limited", embedded=False)
    with psycopg.connect(**warehouse_server.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def test_a_missing_database_without_createdb_is_a_clear_error(
    limited_role: WarehouseSettings, scratch_settings: WarehouseSettings
) -> None:
    settings = limited_role.with_database(scratch_settings.database)

    with pytest.raises(WarehouseError, match="no CREATEDB privilege") as refused:
        ensure_warehouse(settings)

    assert settings.database in str(refused.value)


def test_an_existing_database_needs_no_connect_on_postgres(
    warehouse_server: WarehouseSettings, limited_role: WarehouseSettings, scratch_settings: WarehouseSettings
) -> None:
    if not warehouse_server.embedded:
        pytest.skip("revoking CONNECT on `postgres` would disturb other users of a shared server")
    ensure_warehouse(scratch_settings)
    settings = limited_role.with_database(scratch_settings.database)
    with psycopg.connect(**warehouse_server.conninfo("postgres"), autocommit=True) as admin:
        admin.execute("revoke connect on database postgres from public")
        try:
            ensure_warehouse(settings)
            with pytest.raises(WarehouseError, match="needs a connection to the `postgres` database"):
                ensure_warehouse(settings.with_database(f"{scratch_settings.database}_other"))
        finally:
            admin.execute("grant connect on database postgres to public")


# --- one run per warehouse -----------------------------------------------------------------


def test_a_second_run_lock_on_the_same_database_is_refused(scratch_settings: WarehouseSettings) -> None:
    settings = ensure_warehouse(scratch_settings)

    with run_lock(settings), pytest.raises(RunInProgress) as refused, run_lock(settings):
        pass

    assert f"Another upshift run is in progress on database {settings.database}" in str(refused.value)
    assert "server process" in str(refused.value)


def test_the_run_lock_is_per_database_and_released_after_the_run(
    warehouse: WarehouseSettings, scratch_settings: WarehouseSettings
) -> None:
    other = ensure_warehouse(scratch_settings)

    with run_lock(warehouse), run_lock(other):
        pass
    with run_lock(warehouse):
        pass


def test_a_second_cli_run_exits_with_a_clear_message(
    warehouse: WarehouseSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in warehouse.env().items():
        monkeypatch.setenv(name, value)

    with run_lock(warehouse):
        code = cli.main(["run", "--as-of", "2025-06-01", "--in-process"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"error: Another upshift run is in progress on database {warehouse.database}")
    assert "Traceback" not in err


NEW_YORK = "America/New_York"
# 02:00 UTC on 1 February is still 31 January in New York.
MONTH_OF_AN_EARLY_FEBRUARY_MOMENT = "select cast(date_trunc('month', timestamptz '2026-02-01 02:00:00+00') as date)"


@pytest.fixture
def new_york_database(
    scratch_settings: WarehouseSettings, warehouse_server: WarehouseSettings, monkeypatch: pytest.MonkeyPatch
) -> WarehouseSettings:
    """A database whose default time zone is New York, reached from a process whose PGTZ says New York."""
    ensure_warehouse(scratch_settings)
    with psycopg.connect(**warehouse_server.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("alter database {} set timezone = {}").format(
                sql.Identifier(scratch_settings.database), sql.Literal(NEW_YORK)
            )
        )
    monkeypatch.setenv("PGTZ", NEW_YORK)
    return scratch_settings


def test_warehouse_sessions_are_utc_whatever_the_database_and_pgtz_say(new_york_database: WarehouseSettings) -> None:
    with psycopg.connect(**new_york_database.conninfo()) as unpinned:
        unpinned_zone = unpinned.execute("show timezone").fetchone()

    with connect(new_york_database) as conn:
        conn.rollback()
        zone = conn.execute("show timezone").fetchone()
        month = conn.execute(MONTH_OF_AN_EARLY_FEBRUARY_MOMENT).fetchone()

    assert unpinned_zone == (NEW_YORK,), "PGTZ outranks the connection's options: only a SET pins it"
    assert zone == ("UTC",)
    assert month == (dt.date(2026, 2, 1),)


def test_connection_options_pin_utc_against_a_non_utc_database_default(
    new_york_database: WarehouseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGTZ")

    with psycopg.connect(**new_york_database.conninfo()) as conn:
        zone = conn.execute("show timezone").fetchone()

    assert zone == ("UTC",)


def test_great_expectations_engine_sessions_are_utc(
    new_york_database: WarehouseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy

    from upshift.warehouse import sqlalchemy_url

    engine = sqlalchemy.create_engine(sqlalchemy_url(new_york_database), poolclass=sqlalchemy.pool.NullPool)
    query = sqlalchemy.text(f"select current_setting('TimeZone'), ({MONTH_OF_AN_EARLY_FEBRUARY_MOMENT})")

    with environment(SESSION_ENV), engine.connect() as conn:
        under_pgtz = tuple(conn.execute(query).one())
    monkeypatch.delenv("PGTZ")
    with engine.connect() as conn:
        under_database_default = tuple(conn.execute(query).one())
    engine.dispose()

    assert under_pgtz == ("UTC", dt.date(2026, 2, 1))
    assert under_database_default == ("UTC", dt.date(2026, 2, 1))
