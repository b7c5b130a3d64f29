"""One `run` (or `demo`) per warehouse at a time: a PostgreSQL advisory lock held for the run.

Two runs against one warehouse database would replace each other's DAG runs, write the same
marts and sync the same users twice. The lock is a session-level advisory lock in the
warehouse database (advisory locks are per database, so each warehouse database has its own),
held on a dedicated connection for as long as the run lasts. PostgreSQL releases it when that
connection ends, so a killed run never leaves it behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from upshift.warehouse import WarehouseError, WarehouseSettings, connect

LOCK_NAME = "upshift.run"
LOCK_APPLICATION_NAME = "upshift run lock"


class RunInProgress(WarehouseError):
    """Another run holds the warehouse's run lock; the message says which session."""


def lock_key(name: str = LOCK_NAME) -> int:
    """A stable signed 64-bit advisory lock key for `name` (hashtext() changes across versions)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _holder(conn: psycopg.Connection, key: int) -> str:
    row = conn.execute(
        """
        select activity.pid, activity.client_addr, activity.backend_start
        from pg_locks as held
        inner join pg_stat_activity as activity on held.pid = activity.pid
        where held.locktype = 'advisory'
            and held.granted
            and held.database = (select oid from pg_database where datname = current_database())
            and held.classid = cast((%(key)s >> 32) & 4294967295 as oid)
            and held.objid = cast(%(key)s & 4294967295 as oid)
            and held.objsubid = 1
        """,
        {"key": key},
    ).fetchone()
    if row is None:
        return "a session that just ended"
    pid, address, started = row
    where = f" from {address}" if address else ""
    return f"server process {pid}{where}, connected since {started:%Y-%m-%d %H:%M:%S %Z}"


@contextmanager
def run_lock(settings: WarehouseSettings) -> Iterator[None]:
    """Hold the warehouse's run lock while the block runs; RunInProgress if another run has it."""
    key = lock_key()
    conn = connect(settings, application_name=LOCK_APPLICATION_NAME, autocommit=True)
    try:
        (acquired,) = conn.execute("select pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not acquired:
            raise RunInProgress(
                f"Another upshift run is in progress on database {settings.database} ({_holder(conn, key)}). "
                "One run per warehouse at a time: wait for it to finish, or stop it, then run again."
            )
        yield
    finally:
        conn.close()
