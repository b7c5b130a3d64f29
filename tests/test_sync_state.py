"""The sync's state schema on a fresh warehouse: the first steps of a run create it together."""

from __future__ import annotations

import threading

import psycopg
import pytest

from upshift.sync.context import ensure_state_schema
from upshift.warehouse import WarehouseSettings, connect

STEPS_STARTING_TOGETHER = 4


@pytest.mark.parametrize("attempt", range(3))
def test_steps_creating_the_state_schema_at_once_all_succeed(warehouse: WarehouseSettings, attempt: int) -> None:
    schema = f"sync_state_race_{attempt}"
    start = threading.Barrier(STEPS_STARTING_TOGETHER)
    errors: list[BaseException] = []

    def create() -> None:
        with connect(warehouse, autocommit=True) as conn:
            start.wait()
            try:
                ensure_state_schema(conn, schema)
            except psycopg.Error as error:
                errors.append(error)

    threads = [threading.Thread(target=create) for _ in range(STEPS_STARTING_TOGETHER)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with connect(warehouse, autocommit=True) as conn:
        tables = conn.execute(
            "select count(*) from information_schema.tables where table_schema = %s", (schema,)
        ).fetchone()
    assert tables is not None
    assert tables[0] > 0
