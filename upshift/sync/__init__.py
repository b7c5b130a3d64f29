"""Sync readiness to Braze and Iterable: only changes, state committed after acceptance.

The steps, each one function (and one Airflow operator in plugins/upshift_sync_operators.py):

- `sync_users(context, destination, client)`: attributes / dataFields of new and changed users,
  nulls for attributes that disappeared, cleared profiles for users who left the model.
- `sync_iterable_lists(context, client)`: static list entries and exits (Iterable only).
- `sync_events(context, destination, client)`: trigger events through the event ledger, once each.

`open_context(warehouse, options)` connects and creates the state tables (state.sql);
`run_sync(...)` runs every step of both destinations in order (users -> lists -> events), as
the DAG does. Clients live in `clients` (HTTP only), what differs per destination in
`destinations`, the declared type of every field in `fields`, every limit and guardrail in
`settings`, failures in `errors`. See docs/sync.md.
"""

from __future__ import annotations

from typing import Any

from upshift.sync.clients import ITERABLE_EU_URL, ITERABLE_US_URL, BrazeClient, IterableClient
from upshift.sync.context import SyncContext, SyncOptions, ensure_state_schema, open_context
from upshift.sync.errors import (
    AmbiguousDelivery,
    DestinationAuthError,
    DestinationError,
    DestinationRejected,
    DestinationUnavailable,
    MassRemovalRefused,
    SyncError,
    SyncModelsOutOfDate,
    SyncRunFailed,
    TooManyRejected,
    UndeliveredEvents,
)
from upshift.sync.events import sync_events
from upshift.sync.lists import sync_iterable_lists
from upshift.sync.settings import SyncSettings
from upshift.sync.users import sync_users
from upshift.warehouse import WarehouseSettings

__all__ = [
    "ITERABLE_EU_URL",
    "ITERABLE_US_URL",
    "AmbiguousDelivery",
    "BrazeClient",
    "DestinationAuthError",
    "DestinationError",
    "DestinationRejected",
    "DestinationUnavailable",
    "IterableClient",
    "MassRemovalRefused",
    "SyncContext",
    "SyncError",
    "SyncModelsOutOfDate",
    "SyncOptions",
    "SyncRunFailed",
    "SyncSettings",
    "TooManyRejected",
    "UndeliveredEvents",
    "ensure_state_schema",
    "open_context",
    "run_sync",
    "sync_events",
    "sync_iterable_lists",
    "sync_users",
]


def run_sync(
    warehouse: WarehouseSettings,
    options: SyncOptions,
    *,
    braze: BrazeClient | None = None,
    iterable: IterableClient | None = None,
    settings: SyncSettings | None = None,
) -> dict[str, dict[str, Any]]:
    """Every step for the destinations given a client (all of them in a dry run), in DAG order."""
    summaries: dict[str, dict[str, Any]] = {}
    with open_context(warehouse, options, settings) as context:
        if braze is not None or options.dry_run:
            summaries["braze_users"] = sync_users(context, "braze", braze)
            summaries["braze_events"] = sync_events(context, "braze", braze)
        if iterable is not None or options.dry_run:
            summaries["iterable_users"] = sync_users(context, "iterable", iterable)
            summaries["iterable_lists"] = sync_iterable_lists(context, iterable)
            summaries["iterable_events"] = sync_events(context, "iterable", iterable)
    return summaries
