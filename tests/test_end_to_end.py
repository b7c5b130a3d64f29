"""A small marketplace through the whole DAG in one process (dag.test): marts are complete and
planted users score as expected. That a rerun of a date changes nothing and sends nothing is
checked under the real scheduler (tests/test_airflow_scheduler.py), which reruns a date anyway."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest
from psycopg import sql

from tests.planted import PLANTED_DIR, actual_quarantine, actual_readiness, expected_quarantine, expected_readiness
from upshift import dbt, local_airflow
from upshift.summary import TIERS, readiness_summary
from upshift.warehouse import WarehouseSettings

AS_OF = date(2025, 6, 2)
# Big enough that the planted users' bad rows (which dbt must quarantine) stay under the raw
# gate's blocking shares, like the generator's own deliberate dirt.
MARKETPLACE = {"clients": 1500, "workers": 750, "days": 120, "seed": 11, "dirty_rate": 0.002}
SIDES = ("client", "worker")
READINESS = "user_readiness"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def loaded(warehouse: WarehouseSettings, pg_conn: psycopg.Connection) -> WarehouseSettings:
    """The module's database holding a generated marketplace plus the planted users."""
    from upshift.generator import GenerationOptions, generate_marketplace, load_planted

    generate_marketplace(
        pg_conn, GenerationOptions(schema=warehouse.raw_schema, as_of=AS_OF, progress=False, **MARKETPLACE)
    )
    load_planted(pg_conn, PLANTED_DIR, as_of=AS_OF, schema=warehouse.raw_schema)
    pg_conn.commit()
    return warehouse


@pytest.fixture(scope="module")
def airflow_for(loaded: WarehouseSettings) -> Iterator[WarehouseSettings]:
    """Local Airflow wired to the module's database; the process environment is restored after."""
    saved = dict(os.environ)
    dbt.parse(loaded)
    local_airflow.configure(loaded)
    local_airflow.migrate_metadata_db()
    yield loaded
    os.environ.clear()
    os.environ.update(saved)


def mart_tables(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(schema, table) of every mart model in the manifest the DAG renders that the DAG has built."""
    manifest = json.loads(dbt.MANIFEST_PATH.read_text())
    marts = {
        (node["schema"], node["alias"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["fqn"][1] == "marts"
    }
    built = set(conn.execute("select table_schema, table_name from information_schema.tables").fetchall())
    return sorted(marts & built)


def mart_checksums(conn: psycopg.Connection) -> dict[str, str]:
    """md5 over each mart's rows in a stable order: equal checksums mean identical tables."""
    return {
        f"{schema}.{table}": conn.execute(
            sql.SQL("select md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) from {} as t").format(
                sql.Identifier(schema, table)
            )
        ).fetchone()[0]
        for schema, table in mart_tables(conn)
    }


@pytest.fixture(scope="module")
def marts(
    airflow_for: WarehouseSettings, first_run: dict[str, str], pg_conn: psycopg.Connection
) -> list[tuple[str, str]]:
    return mart_tables(pg_conn)


@pytest.fixture(scope="module")
def first_run(airflow_for: WarehouseSettings, pg_conn: psycopg.Connection) -> dict[str, str]:
    local_airflow.run_dag_once(AS_OF)
    return mart_checksums(pg_conn)


def _mart(marts: list[tuple[str, str]], name: str) -> sql.Identifier:
    (schema,) = [schema for schema, table in marts if table == name]
    return sql.Identifier(schema, name)


def _users(conn: psycopg.Connection, role: str, raw_schema: str) -> set[str]:
    """Users of one side that the scoring should see: valid, distinct, known role."""
    rows = conn.execute(
        sql.SQL("select distinct user_id from {} where role = %s and user_id is not null").format(
            sql.Identifier(raw_schema, "users")
        ),
        (role,),
    )
    return {user_id for (user_id,) in rows}


def test_the_dag_builds_every_mart(first_run: dict[str, str]) -> None:
    expected = {"user_readiness", "readiness_history", "readiness_triggers"}

    assert expected <= {name.rsplit(".", 1)[1] for name in first_run}


@pytest.mark.parametrize("side", SIDES)
def test_one_row_per_user_per_side(side: str, first_run, pg_conn: psycopg.Connection, marts, loaded) -> None:
    rows = pg_conn.execute(
        sql.SQL("select user_id, as_of_date from {} where role = %s").format(_mart(marts, READINESS)), (side,)
    ).fetchall()

    user_ids = [user_id for user_id, _ in rows]
    assert len(user_ids) == len(set(user_ids))
    assert {as_of for _, as_of in rows} == {AS_OF}
    assert set(user_ids) <= _users(pg_conn, side, loaded.raw_schema)
    assert len(user_ids) >= MARKETPLACE[f"{side}s"] * 0.9


@pytest.mark.parametrize("side", SIDES)
def test_tiers_are_the_four_documented_values(side: str, first_run, pg_conn: psycopg.Connection, marts) -> None:
    tiers = {
        tier
        for (tier,) in pg_conn.execute(
            sql.SQL("select distinct readiness_tier from {} where role = %s").format(_mart(marts, READINESS)), (side,)
        )
    }

    assert tiers <= set(TIERS)
    assert "Cold" in tiers
    assert tiers - {"Cold"}, "a realistic marketplace has users above Cold"


def test_summary_counts_every_tier_and_shows_no_contact_details(
    first_run, pg_conn: psycopg.Connection, loaded: WarehouseSettings
) -> None:
    contact_details = {
        value
        for row in pg_conn.execute(
            sql.SQL("select email, phone from {}").format(sql.Identifier(loaded.raw_schema, "users"))
        )
        for value in row
        if value and len(value) >= 6
    }

    summary = readiness_summary(pg_conn, loaded, AS_OF)

    assert all(tier in summary for tier in TIERS)
    assert "reasons:" in summary
    assert "Quarantined raw rows" in summary
    assert not [detail for detail in contact_details if detail in summary]


def test_planted_users_get_their_expected_tier_reasons_and_offer(first_run, pg_conn: psycopg.Connection, marts) -> None:
    expected = expected_readiness()
    (marts_schema,) = {schema for schema, table in marts if table == READINESS}

    actual = actual_readiness(pg_conn, marts_schema, list(expected))

    assert actual == expected


def test_every_planted_dirty_row_is_quarantined_with_its_reason(first_run, pg_conn: psycopg.Connection, marts) -> None:
    (marts_schema,) = {schema for schema, table in marts if table == "raw_quarantine"}

    assert actual_quarantine(pg_conn, marts_schema) == expected_quarantine()
