"""Run the upshift DAGs on this machine: a real local Airflow, or one in-process run.

`LocalAirflow` starts Airflow's api-server, scheduler, dag-processor and triggerer on loopback
(LocalExecutor), with the metadata database on the warehouse's PostgreSQL server (database
`airflow` by default; the embedded server is reached through its socket). The demo, `airflow
up` and the scheduler tests use it; `AirflowApi` talks to it over the REST API (/api/v2) the UI
uses. The local stack runs only what is triggered (`[scheduler] use_job_schedule` off), so
starting it never starts scoring today on its own; docker-compose runs the real schedule.

`run_dag_once` is the in-process alternative (Airflow's `dag.test()`, SQLite metadata): no
services, one process. It needs `configure()` before anything imports `airflow`, because
Airflow reads its configuration at first import.

Either way the warehouse reaches Airflow only as the `upshift_warehouse` connection in an
environment variable, never in a file or a Variable, and the sync step talks to the local
Braze/Iterable emulator (`upshift.emulator`) through the `braze_default` and `iterable_default`
connections, with API keys made up for each start.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from upshift.warehouse import AIRFLOW_CONN_ID, REPO_ROOT, WarehouseSettings, ensure_warehouse

if TYPE_CHECKING:
    import requests
    from airflow.models.dagrun import DagRun

DAGS_FOLDER = REPO_ROOT / "dags"
PLUGINS_FOLDER = REPO_ROOT / "plugins"
POOLS_FILE = REPO_ROOT / "config" / "pools.json"
DAG_ID = "upgrade_readiness"
METADATA_DATABASE = "airflow"
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
EMULATOR = "emulator"
LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8080
FINISHED_RUN_STATES = {"success", "failed"}


class DagRunFailed(RuntimeError):
    """The DAG run did not succeed; the message names the failed tasks."""


class AirflowNotReady(RuntimeError):
    """A local Airflow service did not come up; the message points at its log."""


def airflow_home(settings: WarehouseSettings) -> Path:
    return settings.home / "airflow"


def airflow_environment(settings: WarehouseSettings) -> dict[str, str]:
    """Environment for a local Airflow that reaches the warehouse only through its connection."""
    return {
        **settings.env(),
        "AIRFLOW_HOME": str(airflow_home(settings)),
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
        "AIRFLOW__COSMOS__CACHE_DIR": str(airflow_home(settings) / "cosmos-cache"),
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

    bag = DagBag(dag_folder=str(DAGS_FOLDER / f"{DAG_ID}.py"))
    if DAG_ID not in bag.dags:
        raise DagRunFailed(f"{DAG_ID} did not import: {bag.import_errors}")
    # For a data-interval timetable a manual run at midnight covers the day that ends there.
    interval_end = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
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
    connections = keys.connections(emulator.url)
    saved = {name: os.environ.get(name) for name in connections}
    os.environ.update(connections)
    try:
        yield
    finally:
        emulator.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def metadata_db_url(settings: WarehouseSettings, database: str) -> str:
    """SQLAlchemy URL of the metadata database on the warehouse's server (secret: holds the password)."""
    credentials = quote(settings.user, safe="") + (f":{quote(settings.password, safe='')}" if settings.password else "")
    if (settings.host or "").startswith("/"):
        return f"postgresql+psycopg2://{credentials}@/{database}?host={quote(settings.host)}&port={settings.port}"
    return f"postgresql+psycopg2://{credentials}@{settings.host}:{settings.port}/{database}"


def free_port(preferred: int | None = None) -> int:
    """`preferred` when nothing listens on it, else any free loopback port."""
    with socket.socket() as probe:
        try:
            probe.bind((LOOPBACK, preferred or 0))
        except OSError:
            probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def interval_for(as_of: date) -> tuple[datetime, datetime]:
    """The daily data interval whose end is midnight UTC of `as_of`: the run that scores as of it."""
    end = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
    return end - timedelta(days=1), end


@dataclass
class LocalAirflow:
    """Airflow's services on loopback, plus the API emulator the sync step sends to, for one
    warehouse; a context manager that stops them.

    State lives in `home` (default `<UPSHIFT_HOME>/airflow`): task and service logs, and
    `services.json` with the process ids, so `airflow down` can stop a stack left running.
    """

    settings: WarehouseSettings
    port: int = 0
    metadata_database: str = METADATA_DATABASE
    home: Path | None = None
    quiet: bool = False
    # Linux: the services get SIGTERM if this process dies without stopping them (a killed
    # test run, a closed terminal). Off for a stack meant to outlive its starter (`airflow up`).
    die_with_parent: bool = True
    # Seconds between a failed task's tries instead of the DAG's (minutes, with backoff): for
    # tests that watch a task fail through its retries. Set through an Airflow cluster policy
    # (`airflow_local_settings.py` in the home's config folder), so the DAG file is untouched.
    retry_delay_seconds: float | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    emulator_keys: EmulatorKeys = field(default_factory=EmulatorKeys, repr=False)
    emulator_port: int = 0

    def __post_init__(self) -> None:
        self.home = self.home or airflow_home(self.settings)
        self.port = self.port or free_port(DEFAULT_PORT)
        self.emulator_port = self.emulator_port or free_port()

    @property
    def emulator_url(self) -> str:
        return f"http://{LOOPBACK}:{self.emulator_port}"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.home / "services.json"

    @property
    def service_logs(self) -> Path:
        return self.home / "logs" / "services"

    def environment(self) -> dict[str, str]:
        """Everything the services and their task processes need, passed only through the environment."""
        env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
        env.update(airflow_environment(self.settings))
        env.update(self.emulator_keys.connections(self.emulator_url))
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__COSMOS__CACHE_DIR": str(self.home / "cosmos-cache"),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db_url(self.settings, self.metadata_database),
                # A few connections per process: the embedded server allows 100 in all.
                "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "2",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "4",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__HOST": LOOPBACK,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__WORKERS": "1",
                # Loopback only, one user: everyone who can reach it is an admin.
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret(),
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            }
        )
        if self.quiet:
            env.update({"AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", "DBT_QUIET": "true"})
        return env

    def _jwt_secret(self) -> str:
        """One signing key per home, shared by the services (and kept for `airflow down`/restarts)."""
        path = self.home / "jwt_secret"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def prepare(self) -> None:
        """Create the metadata database if missing, migrate it, and create the pools."""
        ensure_warehouse(self.settings.with_database(self.metadata_database))
        self._write_retry_policy()
        self._airflow_python(
            "from upshift.local_airflow import create_pools, migrate_metadata_db; "
            "migrate_metadata_db(); create_pools()",
            log="prepare",
        )

    def _write_retry_policy(self) -> None:
        policy = self.home / "config" / "airflow_local_settings.py"
        if self.retry_delay_seconds is None:
            policy.unlink(missing_ok=True)
            return
        policy.parent.mkdir(parents=True, exist_ok=True)
        policy.write_text(
            '"""Written by upshift.local_airflow: short retry delays for this local stack."""\n\n'
            "from datetime import timedelta\n\n\n"
            "def task_policy(task):\n"
            f"    task.retry_delay = timedelta(seconds={self.retry_delay_seconds!r})\n"
            "    task.max_retry_delay = task.retry_delay\n"
        )

    def _airflow_python(self, code: str, *, log: str) -> None:
        self.service_logs.mkdir(parents=True, exist_ok=True)
        log_file = self.service_logs / f"{log}.log"
        with log_file.open("w") as out:
            completed = subprocess.run(
                [sys.executable, "-c", code], env=self.environment(), stdout=out, stderr=subprocess.STDOUT, check=False
            )
        if completed.returncode != 0:
            raise AirflowNotReady(f"Preparing the Airflow metadata database failed; see {log_file}")

    def start(self) -> LocalAirflow:
        """Start the emulator and the four Airflow services; `wait_until_ready` tells when they serve."""
        self.service_logs.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        commands = {
            EMULATOR: ["-m", "upshift.emulator", "--host", LOOPBACK, "--port", str(self.emulator_port), "--quiet"],
            "api-server": ["-m", "airflow", "api-server", "--host", LOOPBACK, "--port", str(self.port)],
            **{service: ["-m", "airflow", service] for service in SERVICES if service != "api-server"},
        }
        for service, arguments in commands.items():
            service_env = {**env, **self.emulator_keys.emulator_env()} if service == EMULATOR else env
            with (self.service_logs / f"{service}.log").open("w") as out:
                # Own session: Ctrl-C in the terminal reaches us, and we stop each service cleanly.
                self.processes[service] = subprocess.Popen(
                    [sys.executable, *arguments],
                    env=service_env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=self.home,
                    preexec_fn=_terminate_with_parent if self.die_with_parent else None,
                )
        self.state_file.write_text(
            json.dumps({"url": self.url, "pids": {name: proc.pid for name, proc in self.processes.items()}})
        )
        return self

    def wait_until_ready(self, timeout: float = 180) -> AirflowApi:
        """Wait until every service reports healthy and the DAG is parsed; returns an API client."""
        deadline = time.monotonic() + timeout
        api = AirflowApi(self.url)
        while True:
            self._raise_if_exited()
            status = api.health()
            unhealthy = sorted(name for name, part in status.items() if part.get("status") != "healthy")
            if status and not unhealthy and api.dag_is_parsed(DAG_ID):
                return api
            if time.monotonic() > deadline:
                detail = f"unhealthy: {unhealthy}" if status else f"no answer from {self.url}"
                raise AirflowNotReady(
                    f"Airflow did not get ready in {timeout:.0f}s ({detail}); see {self.service_logs}"
                )
            time.sleep(1)

    def _raise_if_exited(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AirflowNotReady(
                    f"Airflow {name} exited with code {process.returncode}; see {self.service_logs / name}.log"
                )

    def stop(self, timeout: float = 30) -> None:
        """Stop the services: SIGTERM to each process group, SIGKILL what is left after `timeout`."""
        stop_process_groups([process.pid for process in self.processes.values()], timeout=timeout)
        self.processes.clear()
        self.state_file.unlink(missing_ok=True)

    def __enter__(self) -> LocalAirflow:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _terminate_with_parent() -> None:
    """In the child before exec: ask Linux to send SIGTERM when the parent dies (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def stop_process_groups(pids: list[int], *, timeout: float = 30) -> None:
    """SIGTERM the process group of each pid (a service and its task or worker children), then SIGKILL."""
    for pid in pids:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_group_alive(pid) for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        _signal_group(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _group_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_recorded(settings: WarehouseSettings, home: Path | None = None) -> bool:
    """Stop a stack left running (`--keep-airflow`, `airflow up`); returns whether one was recorded."""
    state_file = (home or airflow_home(settings)) / "services.json"
    if not state_file.exists():
        return False
    stop_process_groups(list(json.loads(state_file.read_text())["pids"].values()))
    state_file.unlink(missing_ok=True)
    return True


def recorded_url(settings: WarehouseSettings, home: Path | None = None) -> str | None:
    """The URL of a stack left running, if its api-server still runs."""
    state_file = (home or airflow_home(settings)) / "services.json"
    if not state_file.exists():
        return None
    state = json.loads(state_file.read_text())
    return state["url"] if _group_alive(state["pids"]["api-server"]) else None


class AirflowApi:
    """The few REST calls (/api/v2) the runner and tests make; the token comes from the simple auth manager."""

    def __init__(self, url: str) -> None:
        import requests

        self.url = url
        self.session = requests.Session()
        self._authenticated = False

    def _request(self, method: str, path: str, **kwargs: object) -> requests.Response:
        if not self._authenticated:
            # All-admins mode hands a token to anyone who asks: fine on loopback, never elsewhere.
            token = self.session.get(f"{self.url}/auth/token", timeout=10).json()["access_token"]
            self.session.headers["Authorization"] = f"Bearer {token}"
            self._authenticated = True
        response = self.session.request(method, f"{self.url}/api/v2{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response

    def health(self) -> dict[str, dict]:
        """Per-component health, or {} while the api-server does not answer yet."""
        import requests

        try:
            response = self.session.get(f"{self.url}/api/v2/monitor/health", timeout=5)
        except requests.ConnectionError:
            return {}
        return response.json() if response.ok else {}

    def dag_is_parsed(self, dag_id: str) -> bool:
        import requests

        try:
            self._request("GET", f"/dags/{dag_id}")
        except requests.HTTPError as error:
            if error.response.status_code == 404:
                errors = self.import_errors()
                if errors:
                    raise AirflowNotReady(f"DAG files failed to import: {errors}") from error
                return False
            raise
        return True

    def import_errors(self) -> dict[str, str]:
        entries = self._request("GET", "/importErrors").json()["import_errors"]
        return {entry["filename"]: entry["stack_trace"] for entry in entries}

    def pools(self) -> dict[str, int]:
        """Pool name -> slots."""
        return {pool["name"]: pool["slots"] for pool in self._request("GET", "/pools").json()["pools"]}

    def unpause(self, dag_id: str) -> None:
        self._request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def pause(self, dag_id: str) -> None:
        self._request("PATCH", f"/dags/{dag_id}", json={"is_paused": True})

    def trigger(self, dag_id: str, as_of: date, conf: dict[str, object] | None = None) -> str:
        """Start the run that scores as of `as_of`; an earlier run of that date is replaced. Returns its run id."""
        start, end = interval_for(as_of)
        for run in self.runs(dag_id, logical_date=start):
            self._request("DELETE", f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}")
        body = {
            "logical_date": start.isoformat(),
            "data_interval_start": start.isoformat(),
            "data_interval_end": end.isoformat(),
            "conf": conf or {},
        }
        return self._request("POST", f"/dags/{dag_id}/dagRuns", json=body).json()["dag_run_id"]

    def fail_unfinished_runs(self, dag_id: str) -> list[str]:
        """Mark the DAG's queued and running runs failed; returns their run ids.

        Called on a freshly started stack: nothing can be driving those runs (a killed demo
        left them), and a queued one would otherwise start against whatever warehouse the
        new stack points at.
        """
        stale = [run["dag_run_id"] for run in self.runs(dag_id) if run["state"] in {"queued", "running"}]
        for run_id in stale:
            self._request("PATCH", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}", json={"state": "failed"})
        return stale

    def runs(self, dag_id: str, *, logical_date: datetime | None = None) -> list[dict]:
        params: dict[str, object] = {"limit": 100, "order_by": "logical_date"}
        if logical_date is not None:
            params.update({"logical_date_gte": logical_date.isoformat(), "logical_date_lte": logical_date.isoformat()})
        return self._request("GET", f"/dags/{dag_id}/dagRuns", params=params).json()["dag_runs"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self._request("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]

    def wait_for_run(self, dag_id: str, run_id: str, *, timeout: float = 900, poll: float = 2) -> str:
        """Poll until the run succeeds or fails; returns its final state."""
        deadline = time.monotonic() + timeout
        while (state := self.run_state(dag_id, run_id)) not in FINISHED_RUN_STATES:
            if time.monotonic() > deadline:
                raise DagRunFailed(f"{dag_id} run {run_id} still {state} after {timeout:.0f}s")
            time.sleep(poll)
        return state

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """Every task of the run and its state (None: never scheduled)."""
        instances = self._request(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}
        ).json()["task_instances"]
        return {instance["task_id"]: instance["state"] for instance in instances}

    def clear_run(self, dag_id: str, run_id: str) -> None:
        """Rerun every task of a run, as "Clear" on the whole run does in the UI."""
        self._request("POST", f"/dags/{dag_id}/dagRuns/{run_id}/clear", json={"dry_run": False})

    def clear_tasks(self, dag_id: str, run_id: str, task_ids: list[str], *, downstream: bool = False) -> None:
        """Rerun some tasks of a run, as "Clear" on a task does in the UI (optionally with "Downstream")."""
        body = {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": task_ids,
            "only_failed": False,
            "include_downstream": downstream,
        }
        self._request("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)

    def task_try_number(self, dag_id: str, run_id: str, task_id: str) -> int:
        return self._request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}").json()["try_number"]

    def backfill(self, dag_id: str, first: date, last: date) -> int:
        """Runs for the intervals ending on `first`..`last`, one at a time in date order; returns the backfill id."""
        body = {
            "dag_id": dag_id,
            "from_date": interval_for(first)[0].isoformat(),
            "to_date": interval_for(last)[0].isoformat(),
            "max_active_runs": 1,
            "reprocess_behavior": "completed",
        }
        return self._request("POST", "/backfills", json=body).json()["id"]

    def wait_for_backfill(self, backfill_id: int, *, timeout: float = 1800, poll: float = 5) -> None:
        """Poll until the scheduler has finished every run of the backfill."""
        deadline = time.monotonic() + timeout
        while self._request("GET", f"/backfills/{backfill_id}").json()["completed_at"] is None:
            if time.monotonic() > deadline:
                raise DagRunFailed(f"backfill {backfill_id} not finished after {timeout:.0f}s")
            time.sleep(poll)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> object:
        """What a task returned (its XCom), as JSON."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self._request("GET", path, params={"deserialize": True}).json()["value"]


def state_counts(states: dict[str, str | None]) -> dict[str, int]:
    """How many tasks ended in each state, `not run` for those never scheduled."""
    return dict(Counter(state or "not run" for state in states.values()).most_common())
