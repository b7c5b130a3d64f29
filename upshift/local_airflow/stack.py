"""The local Airflow stack: its four services and the API emulator as processes on loopback,
plus N `airflow celery worker` processes when the executor is Celery (`ExecutorSettings`).

Started by `LocalAirflow`, recorded in `services.json` so `airflow down` (`stop_recorded`) can
stop a stack left running; each service runs in its own process group, stopped as a group.

On Celery every stack gets a queue and worker names of its own (`upshift-<id>`), so stacks
sharing one broker (tests, a benchmark and a demo on one machine) never run each other's tasks;
each worker reports its Celery node name as the task instances' hostname (`worker_hostname`),
so the UI and the REST API show which worker ran a task.
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
from dataclasses import dataclass, field
from pathlib import Path

from upshift.local_airflow.api import AirflowApi
from upshift.local_airflow.config import (
    CELERY_VISIBILITY_TIMEOUT,
    DAG_ID,
    QUIET,
    AirflowNotReady,
    EmulatorKeys,
    ExecutorSettings,
    airflow_environment,
    airflow_home,
)
from upshift.warehouse import WarehouseSettings, ensure_warehouse, sqlalchemy_url

METADATA_DATABASE = "airflow"
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
EMULATOR = "emulator"
# What every task process imports on top of Airflow: Cosmos (the DAG file), dbt and its adapter
# (a stage's build and tests), Great Expectations (a gate). Each task is a fork of the process
# that runs it (a Celery worker's pool process, or the LocalExecutor's, forked from the
# scheduler), so importing them there once spares every task their import: 1-10 s of CPU each
# on this machine, and most tasks are model tasks whose own work is a fraction of a second.
TASK_IMPORTS = ("cosmos.operators.watcher", "dbt.cli.main", "dbt.adapters.postgres", "great_expectations")
_AIRFLOW_WITH_TASK_IMPORTS = (
    "import importlib, runpy\n"
    f"for module in {TASK_IMPORTS!r}:\n"
    "    importlib.import_module(module)\n"
    "runpy.run_module('airflow', run_name='__main__', alter_sys=True)\n"
)
LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8080
WORKER_NAME_VARIABLE = "UPSHIFT_CELERY_WORKER_NAME"


def free_port(preferred: int | None = None) -> int:
    """`preferred` when nothing listens on it, else any free loopback port."""
    with socket.socket() as probe:
        try:
            probe.bind((LOOPBACK, preferred or 0))
        except OSError:
            probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


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
    # LocalExecutor, or Celery with local workers (UPSHIFT_AIRFLOW_EXECUTOR=celery, ...).
    executor: ExecutorSettings = field(default_factory=ExecutorSettings.from_env)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    emulator_keys: EmulatorKeys = field(default_factory=EmulatorKeys, repr=False)
    emulator_port: int = 0
    # This stack's Celery queue, and the prefix of its workers' node names.
    celery_queue: str = field(default_factory=lambda: f"upshift-{secrets.token_hex(4)}")

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
    def workers(self) -> list[str]:
        """The Celery node names of this stack's workers (none on the LocalExecutor)."""
        if not self.executor.celery:
            return []
        return [f"{self.celery_queue}-worker-{number}@{LOOPBACK}" for number in range(1, self.executor.workers + 1)]

    @property
    def state_file(self) -> Path:
        return self.home / "services.json"

    @property
    def service_logs(self) -> Path:
        return self.home / "logs" / "services"

    def environment(self) -> dict[str, str]:
        """Everything the services and their task processes need, passed only through the environment."""
        env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
        env.update(airflow_environment(self.settings, self.home))
        env.update(self.emulator_keys.connections(self.emulator_url))
        env.update(
            {
                # Holds the password, if any: it stays in the services' environment.
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(
                    self.settings, self.metadata_database, session_options=False
                ),
                # A few connections per process: the embedded server allows 100 in all.
                "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "2",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "4",
                "AIRFLOW__CORE__EXECUTOR": self.executor.airflow_name,
                "AIRFLOW__CORE__PARALLELISM": str(self.executor.parallelism),
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
                # Re-parse the DAG files every 10 minutes instead of every 30 s. Each parse of
                # upgrade_readiness renders its four Cosmos groups from the 1.8 MB manifest
                # (~2-4 s of CPU), taken from the DAG run's tasks on a 2-core machine; the files
                # change here only when someone edits them, and a restart picks edits up at once.
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            }
        )
        if self.executor.celery:
            env.update(self._celery_environment())
        if self.quiet:
            env.update(QUIET)
        return env

    def _celery_environment(self) -> dict[str, str]:
        """What docker-compose.celery.yml sets, for local workers: broker, result backend on the
        metadata database, slots per worker, the broker's visibility timeout, and this stack's own queue."""
        metadata_url = sqlalchemy_url(self.settings, self.metadata_database, session_options=False)
        return {
            "AIRFLOW__CELERY__BROKER_URL": self.executor.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata_url}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.executor.concurrency),
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": str(
                int(CELERY_VISIBILITY_TIMEOUT.total_seconds())
            ),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.celery_queue,
        }

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
            "from upshift.local_airflow.in_process import create_pools, migrate_metadata_db; "
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
        """Start the emulator, the four Airflow services and any Celery workers; `wait_until_ready`
        tells when they serve."""
        self.service_logs.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        commands = {
            EMULATOR: ["-m", "upshift.emulator", "--host", LOOPBACK, "--port", str(self.emulator_port), "--quiet"],
            "api-server": ["-m", "airflow", "api-server", "--host", LOOPBACK, "--port", str(self.port)],
            **{service: ["-m", "airflow", service] for service in SERVICES if service != "api-server"},
        }
        if not self.executor.celery:
            commands["scheduler"] = ["-c", _AIRFLOW_WITH_TASK_IMPORTS, "scheduler"]
        environments = {EMULATOR: {**env, **self.emulator_keys.emulator_env()}}
        for node in self.workers:
            service = node.partition("@")[0].removeprefix(f"{self.celery_queue}-")
            commands[service] = [
                *("-c", _AIRFLOW_WITH_TASK_IMPORTS, "celery", "worker", "--celery-hostname", node),
                *("--queues", self.celery_queue, "--concurrency", str(self.executor.concurrency)),
                # Task logs are files in the home every service shares; no log server per worker.
                "--skip-serve-logs",
            ]
            environments[service] = {
                **env,
                WORKER_NAME_VARIABLE: node,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
            }
        for service, arguments in commands.items():
            service_env = environments.get(service, env)
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
            silent = self.silent_workers() if status and not unhealthy else self.workers
            if status and not unhealthy and not silent and api.dag_is_parsed(DAG_ID):
                return api
            if time.monotonic() > deadline:
                detail = f"unhealthy: {unhealthy}" if status else f"no answer from {self.url}"
                if status and not unhealthy and silent:
                    detail = f"Celery workers not answering on {self.executor.broker_address}: {silent}"
                raise AirflowNotReady(
                    f"Airflow did not get ready in {timeout:.0f}s ({detail}); see {self.service_logs}"
                )
            time.sleep(1)

    def silent_workers(self) -> list[str]:
        """This stack's Celery workers that do not answer a ping on the broker yet."""
        if not self.workers:
            return []
        from celery import Celery

        app = Celery(broker=self.executor.broker_url)
        try:
            replies = app.control.ping(destination=self.workers, timeout=1.0)
        finally:
            app.close()
        answered = {node for reply in replies for node in reply}
        return [node for node in self.workers if node not in answered]

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


def worker_hostname() -> str:
    """Airflow's [core] hostname_callable in a local Celery worker: its node name, so task
    instances record which of the workers on this one host ran them."""
    return os.environ[WORKER_NAME_VARIABLE]


def broker_answers(broker_url: str, timeout: float = 2) -> bool:
    """Whether a Celery broker (Redis, RabbitMQ, ...) accepts a connection at `broker_url`."""
    from kombu import Connection

    try:
        with Connection(broker_url, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.5)
    except Exception:  # noqa: BLE001 - refused, unknown host, bad auth: the broker does not answer
        return False
    return True


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
