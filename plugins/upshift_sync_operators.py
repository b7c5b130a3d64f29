"""Operators of the sync, one step each: users, Iterable lists, events (upshift.sync does the work).

Each reads the warehouse through the `upshift_warehouse` connection (UpshiftWarehouseHook) and
the destination through its hook (created in execute, never in __init__), runs its step for the
run's as-of date and returns the step's small JSON summary for XCom. The DAG sets the pool
(`braze_api`, `iterable_api`) and renders templates as native objects, so the flags arrive as
booleans. Order per destination: users -> lists (Iterable) -> events. See docs/sync.md.

upshift.sync raises plain exceptions; `airflow_failure` turns each into one of the typed
AirflowExceptions below: those a retry cannot fix fail the task at once (AirflowFailException),
the others leave it to the task's retries.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from upshift_warehouse import UpshiftWarehouseHook

from upshift.sync.errors import (
    DestinationAuthError,
    DestinationRejected,
    DestinationUnavailable,
    MassRemovalRefused,
    SyncError,
    SyncModelsOutOfDate,
    TooManyRejected,
)
from upshift.sync.fields import UndeclaredFields
from upshift.warehouse import AIRFLOW_CONN_ID

if TYPE_CHECKING:
    from airflow.sdk import Context

    from upshift.sync import SyncOptions
    from upshift.sync.clients import ApiClient

DEFAULT_CONN_IDS = {"braze": "braze_default", "iterable": "iterable_default"}
FLAGS = ("dry_run", "full_resync", "force_backfill")


class SyncAuthFailed(AirflowFailException):
    """The destination refused the API key (401/403) or none is set: fix the connection's password."""


class SyncRefused(AirflowFailException):
    """The step stopped on purpose (a guardrail, models of another date, undeclared fields, a request
    the destination rejects): retrying the same data cannot help. Fix what the message names, then
    clear the task."""


class SyncSettingsInvalid(AirflowFailException):
    """An UPSHIFT_SYNC_* variable of the worker is malformed (a schema name, a number, a share):
    every retry would read the same value. Fix the worker's environment, then clear the task."""


class SyncDestinationUnavailable(AirflowException):
    """The destination stayed unavailable through every retry; the task's retries try again."""


class SyncIncomplete(AirflowException):
    """The step saved what was accepted and failed on the rest; a retry (or the next run) resumes."""


# Most specific first: TooManyRejected is a SyncRunFailed, AmbiguousDelivery a DestinationUnavailable.
_AIRFLOW_FAILURES: tuple[tuple[type[SyncError], type[AirflowException]], ...] = (
    (DestinationAuthError, SyncAuthFailed),
    (DestinationRejected, SyncRefused),
    (TooManyRejected, SyncRefused),
    (MassRemovalRefused, SyncRefused),
    (SyncModelsOutOfDate, SyncRefused),
    (UndeclaredFields, SyncRefused),
    (DestinationUnavailable, SyncDestinationUnavailable),
)


def airflow_failure(error: SyncError) -> AirflowException:
    """The typed AirflowException for a sync failure, with the sync's own message."""
    wrapper = next((airflow for plain, airflow in _AIRFLOW_FAILURES if isinstance(error, plain)), SyncIncomplete)
    return wrapper(f"{type(error).__name__}: {error}")


class _SyncStepOperator(BaseOperator):
    """Shared knobs, all templated: as_of_date (YYYY-MM-DD), and the booleans dry_run,
    full_resync and force_backfill (send an as-of date older than the newest already synced to
    the destination; without it such a step sends nothing and returns a summary saying it
    skipped). The flags must render as booleans (the DAG's render_template_as_native_obj)."""

    template_fields = ("as_of_date", "dry_run", "full_resync", "force_backfill")
    ui_color = "#fdf1e3"
    step = ""

    def __init__(
        self,
        *,
        destination: str,
        as_of_date: str | None = None,
        dry_run: bool = False,
        full_resync: bool = False,
        force_backfill: bool = False,
        conn_id: str | None = None,
        warehouse_conn_id: str = AIRFLOW_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.destination = destination
        self.as_of_date = as_of_date
        self.dry_run = dry_run
        self.full_resync = full_resync
        self.force_backfill = force_backfill
        self.conn_id = conn_id
        self.warehouse_conn_id = warehouse_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from upshift.sync import SyncSettings, open_context

        options = self.options(context)
        warehouse = UpshiftWarehouseHook(self.warehouse_conn_id).get_settings()
        try:
            settings = SyncSettings.from_env()
        except ValueError as error:
            raise SyncSettingsInvalid(str(error)) from error
        client = None
        try:
            client = None if options.dry_run else self.client(settings)
            with open_context(warehouse, options, settings) as sync:
                summary = self.run_step(sync, client)
        except SyncError as error:
            raise airflow_failure(error) from error
        finally:
            if client is not None:
                client.close()
        self.log.info("%s %s summary: %s", self.destination, self.step, summary)
        return summary

    def options(self, context: Context) -> SyncOptions:
        from upshift.sync import SyncOptions

        wrong = {flag: getattr(self, flag) for flag in FLAGS if not isinstance(getattr(self, flag), bool)}
        if wrong:
            raise SyncRefused(
                f"{', '.join(f'{flag}={value!r}' for flag, value in wrong.items())}: the flags must be booleans. "
                "Templated from params, they are only when the DAG sets render_template_as_native_obj=True."
            )
        as_of = str(self.as_of_date or "").strip()
        return SyncOptions(
            run_id=str(context.get("run_id") or f"manual__{uuid.uuid4().hex[:12]}"),
            as_of_date=dt.date.fromisoformat(as_of) if as_of else None,
            dry_run=self.dry_run,
            full_resync=self.full_resync,
            force_backfill=self.force_backfill,
        )

    def client(self, settings: Any) -> ApiClient:
        conn_id = self.conn_id or DEFAULT_CONN_IDS[self.destination]
        if self.destination == "braze":
            from upshift_braze import BrazeHook

            return BrazeHook(conn_id, settings=settings).get_conn()
        from upshift_iterable import IterableHook

        return IterableHook(conn_id, settings=settings).get_conn()

    def run_step(self, sync: Any, client: Any) -> dict[str, Any]:
        raise NotImplementedError


class SyncUsersOperator(_SyncStepOperator):
    """Send new and changed users' attributes to `destination`, clear users who left the model."""

    step = "users"

    def run_step(self, sync: Any, client: Any) -> dict[str, Any]:
        from upshift.sync import sync_users

        return sync_users(sync, self.destination, client)


class SyncEventsOperator(_SyncStepOperator):
    """Deliver the due trigger events to `destination`, each once (event ledger)."""

    step = "events"

    def run_step(self, sync: Any, client: Any) -> dict[str, Any]:
        from upshift.sync import sync_events

        return sync_events(sync, self.destination, client)


class SyncIterableListsOperator(_SyncStepOperator):
    """Subscribe users to the Iterable static lists they entered, unsubscribe them from those they left."""

    step = "lists"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(destination="iterable", **kwargs)

    def run_step(self, sync: Any, client: Any) -> dict[str, Any]:
        from upshift.sync import sync_iterable_lists

        return sync_iterable_lists(sync, client)
