"""The few calls of Airflow's REST API (/api/v2, what the UI uses) the runner and the tests make."""

from __future__ import annotations

import time
from collections import Counter
from datetime import date, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from upshift.local_airflow.config import AirflowNotReady, DagRunFailed, interval_for

if TYPE_CHECKING:
    import requests

FINISHED_RUN_STATES = {"success", "failed"}


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
        """Per-component health, or {} while the api-server does not answer (in time) yet."""
        import requests

        try:
            response = self.session.get(f"{self.url}/api/v2/monitor/health", timeout=5)
        except (requests.ConnectionError, requests.Timeout):
            # Not up yet, or too busy to answer in time (a loaded machine): ask again later.
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
        import requests

        deadline = time.monotonic() + timeout
        while True:
            try:
                state = self.run_state(dag_id, run_id)
            except requests.Timeout:
                state = "unknown (the api-server did not answer in time)"  # a busy machine: ask again
            if state in FINISHED_RUN_STATES:
                return state
            if time.monotonic() > deadline:
                raise DagRunFailed(f"{dag_id} run {run_id} still {state} after {timeout:.0f}s")
            time.sleep(poll)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """Every task instance of the run as the API gives it (state, hostname, pool, start_date, end_date, ...)."""
        return self._request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}).json()[
            "task_instances"
        ]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """Every task of the run and its state (None: never scheduled)."""
        return {instance["task_id"]: instance["state"] for instance in self.task_instances(dag_id, run_id)}

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
