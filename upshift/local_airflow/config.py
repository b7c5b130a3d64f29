"""What every local Airflow shares: its folders, the DAG and its runs' intervals, the home, and the
environment that tells an Airflow process all of it (the warehouse only as a connection)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from upshift.warehouse import AIRFLOW_CONN_ID, REPO_ROOT, WarehouseSettings

DAGS_FOLDER = REPO_ROOT / "dags"
PLUGINS_FOLDER = REPO_ROOT / "plugins"
POOLS_FILE = REPO_ROOT / "config" / "pools.json"
DAG_ID = "upgrade_readiness"
# Task logs at warnings and errors, dbt printing only failures: for a terminal where a person
# waits for the summary rather than reads every task's log.
QUIET = {"AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", "DBT_QUIET": "true"}


class DagRunFailed(RuntimeError):
    """The DAG run did not succeed; the message names the failed tasks."""


class AirflowNotReady(RuntimeError):
    """A local Airflow service did not come up; the message points at its log."""


def interval_for(as_of: date) -> tuple[datetime, datetime]:
    """The daily data interval whose end is midnight UTC of `as_of`: the run that scores as of it."""
    end = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
    return end - timedelta(days=1), end


def airflow_home(settings: WarehouseSettings) -> Path:
    return settings.home / "airflow"


def airflow_environment(settings: WarehouseSettings, home: Path | None = None) -> dict[str, str]:
    """Environment for a local Airflow (home: default `airflow_home`) that reaches the warehouse
    only through its connection."""
    home = home or airflow_home(settings)
    return {
        **settings.env(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_FOLDER),
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
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos-cache"),
        f"AIRFLOW_CONN_{AIRFLOW_CONN_ID.upper()}": settings.airflow_connection(),
    }


@dataclass(frozen=True)
class EmulatorKeys:
    """API keys the local emulator accepts and the connections carry (fresh for each start)."""

    braze: str = field(default_factory=lambda: f"braze-{secrets.token_hex(12)}", repr=False)
    iterable: str = field(default_factory=lambda: f"iterable-{secrets.token_hex(12)}", repr=False)

    def emulator_env(self) -> dict[str, str]:
        return {"EMULATOR_BRAZE_API_KEY": self.braze, "EMULATOR_ITERABLE_API_KEY": self.iterable}

    def connections(self, emulator_url: str) -> dict[str, str]:
        """`braze_default` and `iterable_default` pointing at the emulator, as AIRFLOW_CONN_* variables."""
        return {
            "AIRFLOW_CONN_BRAZE_DEFAULT": json.dumps(
                {"conn_type": "http", "host": f"{emulator_url}/braze", "password": self.braze}
            ),
            "AIRFLOW_CONN_ITERABLE_DEFAULT": json.dumps(
                {"conn_type": "http", "host": f"{emulator_url}/iterable", "password": self.iterable}
            ),
        }


def configure(settings: WarehouseSettings, *, quiet: bool = False) -> None:
    """Point this process's Airflow at the local home and the warehouse connection (`quiet`: QUIET)."""
    airflow_home(settings).mkdir(parents=True, exist_ok=True)
    os.environ.update(airflow_environment(settings))
    if quiet:
        os.environ.update(QUIET)
