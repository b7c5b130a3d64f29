"""Incremental reruns, the same on every engine: the PostgreSQL module (tests/test_dbt_project.py)
and the Spark module (tests/test_spark.py) run these with their own build and their own way of
fingerprinting a table.

A rerun of an as-of date must leave the incremental models as they were (delete+insert of the
date's partitions on PostgreSQL, insert_overwrite of them on Spark), and the validated event
tables built run by run must be the tables a full refresh of the same date builds.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from upshift.dbt import run_dbt
from upshift.warehouse import WarehouseSettings, environment

# The event tables' validation models, incremental by event date (macros/validation_batch.sql).
VALIDATED_EVENTS = [
    "int_bookings_validated",
    "int_searches_validated",
    "int_proposals_validated",
    "int_profile_views_validated",
    "int_contacts_validated",
    "int_offer_exposures_validated",
]


def dbt_vars(as_of: dt.date, **extra: object) -> list[str]:
    return ["--vars", json.dumps({"as_of_date": as_of.isoformat(), **extra})]


@contextmanager
def as_of_in_env(as_of: dt.date) -> Iterator[None]:
    """The dbt runs in the block compute as of `as_of`, passed as the DAG passes it: in
    UPSHIFT_AS_OF_DATE, which `as_of_date()` (macros/as_of.sql) reads only when executing.
    Unlike a new `--vars`, a new date that way keeps dbt's partial parse (no full re-parse)."""
    with environment({"UPSHIFT_AS_OF_DATE": as_of.isoformat()}):
        yield


def pg_checksum(conn: psycopg.Connection, schema: str, table: str) -> str:
    """md5 over a PostgreSQL table's rows in a stable order: equal checksums mean identical tables."""
    query = sql.SQL("select md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) from {} as t")
    return conn.execute(query.format(sql.Identifier(schema, table))).fetchone()[0]


def around(
    run: Callable[[], object], fingerprint: Callable[[str], Any], tables: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each table's fingerprint before and after `run`."""
    tables = list(tables)
    before = {table: fingerprint(table) for table in tables}
    run()
    return before, {table: fingerprint(table) for table in tables}


def validated_events_and_a_full_refresh(
    settings: WarehouseSettings, as_of: dt.date, fingerprint: Callable[[str], Any], *args: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The validated event tables as the incremental runs up to `as_of` left them, and after a
    full refresh as of that date (a rebuild from all of history), each table's fingerprint."""
    incremental = {table: fingerprint(table) for table in VALIDATED_EVENTS}
    with as_of_in_env(as_of):
        run_dbt(["run", "--select", *VALIDATED_EVENTS, "--full-refresh", *args], settings)
    return incremental, {table: fingerprint(table) for table in VALIDATED_EVENTS}
