"""What every local Airflow shares: its folders, the DAG and its runs' intervals, the home, and the
environment that tells an Airflow process all of it (the warehouse only as a connection)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
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
# Celery on Redis redelivers a task its worker has not acknowledged within this time (and the
# first delivery is then killed), so it must exceed the longest task: the sync steps' execution
# timeout (1 hour, dags/upgrade_readiness.py SYNC_TIMEOUT). docker-compose.celery.yml sets the same.
CELERY_VISIBILITY_TIMEOUT = timedelta(hours=2)


class ExecutorSettingsInvalid(ValueError):
    """UPSHIFT_AIRFLOW_EXECUTOR / UPSHIFT_CELERY_* hold a value the local stack cannot run."""


@dataclass(frozen=True)
class ExecutorSettings:
    """The executor of the local stack: `local` (LocalExecutor, the default) or `celery`
    (CeleryExecutor, `workers` local `airflow celery worker` processes on `broker_url`, each
    running `concurrency` tasks at once; Celery's results in the Airflow metadata database), as
    docker-compose.celery.yml configures it. Read from UPSHIFT_AIRFLOW_EXECUTOR,
    UPSHIFT_CELERY_BROKER_URL, UPSHIFT_CELERY_WORKERS and UPSHIFT_CELERY_WORKER_CONCURRENCY.
    """

    name: str = "local"
    # Holds the broker's password, if any: it goes to the services' environment, never a log.
    broker_url: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    workers: int = 2
    concurrency: int = 2

    def __post_init__(self) -> None:
        if self.name not in ("local", "celery"):
            raise ExecutorSettingsInvalid(f"UPSHIFT_AIRFLOW_EXECUTOR={self.name!r}: use local or celery.")
        if self.workers < 1 or self.concurrency < 1:
            raise ExecutorSettingsInvalid(
                f"UPSHIFT_CELERY_WORKERS={self.workers} / UPSHIFT_CELERY_WORKER_CONCURRENCY={self.concurrency}: "
                "both must be at least 1."
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ExecutorSettings:
        defaults = cls()
        return cls(
            name=(env.get("UPSHIFT_AIRFLOW_EXECUTOR") or defaults.name).strip().lower(),
            broker_url=env.get("UPSHIFT_CELERY_BROKER_URL") or defaults.broker_url,
            workers=_count("UPSHIFT_CELERY_WORKERS", env, defaults.workers),
            concurrency=_count("UPSHIFT_CELERY_WORKER_CONCURRENCY", env, defaults.concurrency),
        )

    @property
    def celery(self) -> bool:
        return self.name == "celery"

    @property
    def airflow_name(self) -> str:
        """The value of Airflow's [core] executor."""
        return "CeleryExecutor" if self.celery else "LocalExecutor"

    @property
    def parallelism(self) -> int:
        """Task instances running at once: 4 on the LocalExecutor, the workers' slots on Celery."""
        return self.workers * self.concurrency if self.celery else 4

    def describe(self) -> str:
        if not self.celery:
            return self.airflow_name
        return f"{self.airflow_name}, {self.workers} workers x {self.concurrency} slots, broker {self.broker_address}"

    @property
    def broker_address(self) -> str:
        """The broker URL without its password, for messages."""
        scheme, _, rest = self.broker_url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"


def _count(name: str, env: Mapping[str, str], default: int) -> int:
    text = env.get(name) or str(default)
    try:
        return int(text)
    except ValueError:
        raise ExecutorSettingsInvalid(f"{name}={text!r} is not a whole number.") from None


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
