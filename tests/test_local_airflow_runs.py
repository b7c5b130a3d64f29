"""Stale local runs: a freshly started local Airflow fails the runs a killed one left queued.

A killed demo can leave a queued `upgrade_readiness` run in the metadata database; the next
start would run it against whatever warehouse it points at. The CLI clears such runs
(`AirflowApi.fail_unfinished_runs`) as soon as a new stack is ready; this starts a real stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import psycopg
import pytest
from psycopg import sql

from upshift import dbt
from upshift.local_airflow import DAG_ID, AirflowApi, LocalAirflow, free_port
from upshift.warehouse import WarehouseSettings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(warehouse: WarehouseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowApi]:
    dbt.parse(warehouse)
    airflow = LocalAirflow(
        warehouse,
        port=free_port(),
        metadata_database=f"{warehouse.database}_airflow",
        home=tmp_path_factory.mktemp("airflow"),
    )
    airflow.prepare()
    try:
        airflow.start()
        yield airflow.wait_until_ready(timeout=300)
    finally:
        airflow.stop()
        with psycopg.connect(**warehouse.conninfo("postgres"), autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(airflow.metadata_database))
            )


def test_a_queued_run_left_behind_is_marked_failed(api: AirflowApi) -> None:
    # A paused DAG keeps its triggered run queued, as a killed demo leaves it.
    api.pause(DAG_ID)
    run_id = api.trigger(DAG_ID, date(2025, 6, 2))
    assert api.run_state(DAG_ID, run_id) == "queued"

    stale = api.fail_unfinished_runs(DAG_ID)

    assert stale == [run_id]
    assert api.run_state(DAG_ID, run_id) == "failed"
    assert api.fail_unfinished_runs(DAG_ID) == []
