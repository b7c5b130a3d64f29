"""Run the `upgrade_readiness` DAG once on this machine, without a scheduler.

The demo and the end-to-end test use this: Airflow gets a home under `UPSHIFT_HOME` with a
SQLite metadata database, the warehouse arrives as the `upshift_warehouse` connection in an
environment variable, and `dag.test()` runs every task in this process.

Airflow reads its configuration when it is first imported, so `configure()` must run before
anything imports `airflow`.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from upshift.warehouse import AIRFLOW_CONN_ID, REPO_ROOT, WarehouseSettings

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun

DAGS_FOLDER = REPO_ROOT / "dags"
DAG_ID = "upgrade_readiness"


class DagRunFailed(RuntimeError):
    """The DAG run did not succeed; the message names the failed tasks."""


def airflow_home(settings: WarehouseSettings) -> Path:
    return settings.home / "airflow"


def airflow_environment(settings: WarehouseSettings) -> dict[str, str]:
    """Environment for a local Airflow that reaches the warehouse only through its connection."""
    return {
        **settings.env(),
        "AIRFLOW_HOME": str(airflow_home(settings)),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        # Named explicitly because Airflow resolves the default bundle's path from dags_folder
        # once, at import; this value is read when dag.test() syncs, whatever imported first.
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            [
                {
                    "name": "dags-folder",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(DAGS_FOLDER)},
                }
            ]
        ),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "upshift",
        "AIRFLOW__COSMOS__CACHE_DIR": str(airflow_home(settings) / "cosmos-cache"),
        f"AIRFLOW_CONN_{AIRFLOW_CONN_ID.upper()}": settings.airflow_connection(),
    }


def configure(settings: WarehouseSettings, *, quiet: bool = False) -> None:
    """Point this process's Airflow at the local home and the warehouse connection.

    `quiet` keeps task logs to warnings and errors (dbt prints only failures), for a terminal
    where a person waits for the summary rather than reads every task's log.
    """
    airflow_home(settings).mkdir(parents=True, exist_ok=True)
    os.environ.update(airflow_environment(settings))
    if quiet:
        os.environ.update({"AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", "DBT_QUIET": "true"})


def migrate_metadata_db() -> bool:
    """Create or upgrade the metadata database when its schema is behind; returns whether it ran."""
    from airflow.utils import db

    try:
        db.check_migrations(timeout=0)
    except Exception:  # noqa: BLE001 - an empty database fails differently than an old one; both need the same fix
        db.upgradedb()
        return True
    return False


def run_dag_once(as_of: date, *, full_refresh: bool = False) -> DagRun:
    """Run the DAG for the daily data interval that ends at midnight UTC of `as_of`."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    bag = DagBag(dag_folder=str(DAGS_FOLDER / f"{DAG_ID}.py"))
    if DAG_ID not in bag.dags:
        raise DagRunFailed(f"{DAG_ID} did not import: {bag.import_errors}")
    # For a data-interval timetable a manual run at midnight covers the day that ends there.
    interval_end = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
    dag_run = bag.dags[DAG_ID].test(logical_date=interval_end, run_conf={"full_refresh": full_refresh})
    if dag_run.state != DagRunState.SUCCESS:
        failed = sorted(ti.task_id for ti in dag_run.get_task_instances() if ti.state != "success")
        raise DagRunFailed(f"{DAG_ID} for as-of {as_of} ended {dag_run.state}; unfinished or failed tasks: {failed}")
    return dag_run
