"""One DAG run in this process (Airflow's `dag.test()`), and the metadata it needs first.

`migrate_metadata_db` and `create_pools` also run in a child process for the local stack
(`LocalAirflow.prepare`), against its metadata database.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from upshift.local_airflow.config import (
    DAG_ID,
    DAGS_FOLDER,
    PLUGINS_FOLDER,
    POOLS_FILE,
    DagRunFailed,
    EmulatorKeys,
    interval_for,
)
from upshift.warehouse import environment

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun


def migrate_metadata_db() -> bool:
    """Create or upgrade the metadata database when its schema is behind; returns whether it ran."""
    from airflow.utils import db

    try:
        db.check_migrations(timeout=0)
    except Exception:  # noqa: BLE001 - an empty database fails differently than an old one; both need the same fix
        db.upgradedb()
        return True
    return False


def create_pools(pools_file: Path = POOLS_FILE) -> list[str]:
    """Create or update the pools of `pools_file` (the `airflow pools import` format)."""
    from airflow.models.pool import Pool

    pools = json.loads(pools_file.read_text())
    for name, pool in pools.items():
        Pool.create_or_update_pool(
            name=name,
            slots=pool["slots"],
            description=pool.get("description", ""),
            include_deferred=pool.get("include_deferred", False),
        )
    return sorted(pools)


def run_dag_once(as_of: date, *, full_refresh: bool = False, dry_run: bool = False) -> DagRun:
    """Run the DAG in this process for the daily data interval that ends at midnight UTC of `as_of`.

    The sync sends to the configured `braze_default` / `iterable_default` connections; only when
    neither is configured does a throwaway emulator on a thread stand in for them. `dry_run`
    reaches the DAG's params: the sync sends nothing and records nothing as accepted.
    """
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    # Airflow puts its plugins folder on sys.path once, when it first initialises; a process that
    # initialised it earlier with another sys.path (or restored sys.path since) would not find
    # the DAG's operators.
    if str(PLUGINS_FOLDER) not in sys.path:
        sys.path.append(str(PLUGINS_FOLDER))
    bag = DagBag(dag_folder=str(DAGS_FOLDER / f"{DAG_ID}.py"))
    if DAG_ID not in bag.dags:
        raise DagRunFailed(f"{DAG_ID} did not import: {bag.import_errors}")
    # For a data-interval timetable a manual run at midnight covers the day that ends there.
    _, interval_end = interval_for(as_of)
    destinations = nullcontext() if destinations_configured() else _emulator_in_thread()
    with destinations:
        dag_run = bag.dags[DAG_ID].test(
            logical_date=interval_end, run_conf={"full_refresh": full_refresh, "dry_run": dry_run}
        )
    if dag_run.state != DagRunState.SUCCESS:
        failed = sorted(ti.task_id for ti in dag_run.get_task_instances() if ti.state != "success")
        raise DagRunFailed(f"{DAG_ID} for as-of {as_of} ended {dag_run.state}; unfinished or failed tasks: {failed}")
    return dag_run


def destinations_configured(conn_ids: tuple[str, ...] = ("braze_default", "iterable_default")) -> bool:
    """True when any sync connection is configured (AIRFLOW_CONN_* or the metadata database)."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    found = []
    for conn_id in conn_ids:
        try:
            Connection.get_connection_from_secrets(conn_id)
        except AirflowNotFoundException:
            continue
        found.append(conn_id)
    return bool(found)


@contextmanager
def _emulator_in_thread() -> Iterator[None]:
    """The Braze/Iterable emulator on a thread of this process, with its connections set, for dag.test()."""
    from upshift.emulator import EmulatorSettings, serve_in_thread

    keys = EmulatorKeys()
    emulator = serve_in_thread(EmulatorSettings(braze_api_key=keys.braze, iterable_api_key=keys.iterable))
    try:
        with environment(keys.connections(emulator.url)):
            yield
    finally:
        emulator.stop()
