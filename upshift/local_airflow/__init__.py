"""Run the upshift DAGs on this machine: a real local Airflow, or one in-process run.

`LocalAirflow` (stack.py) starts Airflow's api-server, scheduler, dag-processor and triggerer
on loopback (LocalExecutor; or the CeleryExecutor with local `airflow celery worker` processes
on a configured broker, `ExecutorSettings` in config.py), with the metadata database on the
warehouse's PostgreSQL server (database `airflow` by default; the embedded server is reached
through its socket). The demo,
`airflow up` and the scheduler tests use it; `AirflowApi` (api.py) talks to it over the REST
API (/api/v2) the UI uses. The local stack runs only what is triggered (`[scheduler]
use_job_schedule` off), so starting it never starts scoring today on its own; docker-compose
runs the real schedule.

`run_dag_once` (in_process.py) is the in-process alternative (Airflow's `dag.test()`, SQLite
metadata): no services, one process. It needs `configure()` before anything imports
`airflow`, because Airflow reads its configuration at first import.

Either way the warehouse reaches Airflow only as the `upshift_warehouse` connection in an
environment variable, never in a file or a Variable (config.py), and the sync step talks
to the local Braze/Iterable emulator (`upshift.emulator`) through the `braze_default` and
`iterable_default` connections, with API keys made up for each start.
"""

from upshift.local_airflow.api import AirflowApi, state_counts
from upshift.local_airflow.config import (
    DAG_ID,
    DAGS_FOLDER,
    PLUGINS_FOLDER,
    POOLS_FILE,
    AirflowNotReady,
    DagRunFailed,
    EmulatorKeys,
    ExecutorSettings,
    ExecutorSettingsInvalid,
    airflow_environment,
    airflow_home,
    configure,
    interval_for,
)
from upshift.local_airflow.in_process import create_pools, destinations_configured, migrate_metadata_db, run_dag_once
from upshift.local_airflow.stack import (
    DEFAULT_PORT,
    SERVICES,
    LocalAirflow,
    broker_answers,
    free_port,
    recorded_url,
    stop_process_groups,
    stop_recorded,
)

__all__ = [
    "DAGS_FOLDER",
    "DAG_ID",
    "DEFAULT_PORT",
    "PLUGINS_FOLDER",
    "POOLS_FILE",
    "SERVICES",
    "AirflowApi",
    "AirflowNotReady",
    "DagRunFailed",
    "EmulatorKeys",
    "ExecutorSettings",
    "ExecutorSettingsInvalid",
    "LocalAirflow",
    "airflow_environment",
    "airflow_home",
    "broker_answers",
    "configure",
    "create_pools",
    "destinations_configured",
    "free_port",
    "interval_for",
    "migrate_metadata_db",
    "recorded_url",
    "run_dag_once",
    "state_counts",
    "stop_process_groups",
    "stop_recorded",
]
