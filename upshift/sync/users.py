"""Step "sync users": send new and changed users' attributes, clear removed users, commit state.

Braze: /users/track `attributes` objects (at most `braze_attributes_per_request` per request).
Iterable: /api/users/bulkUpdate `users` (at most `iterable_bulk_update_max_users`). Each batch
is its own transaction: the destination answers, then the accepted users' state is written and
their open errors resolved, and the rows it refused go to sync_errors - so a run killed at any
point loses nothing (an unacknowledged batch is simply sent again; attribute updates are
idempotent) and a refused row is retried on every later run until it is accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from upshift.sync.changes import AcceptedUser, ModelUser, UserChange, plan_user_changes
from upshift.sync.clients import BrazeClient, IterableClient
from upshift.sync.context import StepLog, SyncContext, batches, record_errors, resolve_errors, samples
from upshift.sync.errors import DestinationAuthError, DestinationError, DestinationRejected, SyncRunFailed, redact
from upshift.sync.outcomes import braze_row_failures, iterable_row_failures

logger = logging.getLogger("upshift.sync")

STEP = "users"


def load_model_users(context: SyncContext, destination: str) -> dict[str, ModelUser]:
    """The rows of sync_<destination>__users, by user id."""
    if destination == "braze":
        query = sql.SQL("select external_id as user_id, attributes as payload, payload_hash from {}")
        rows = context.fetch(query.format(context.model("sync_braze__users")))
        return {row["user_id"]: ModelUser(row["user_id"], row["payload"], row["payload_hash"]) for row in rows}
    query = sql.SQL("select user_id, email, data_fields as payload, list_names, payload_hash from {}")
    rows = context.fetch(query.format(context.model("sync_iterable__users")))
    return {
        row["user_id"]: ModelUser(
            row["user_id"], row["payload"], row["payload_hash"], row["email"], tuple(row["list_names"])
        )
        for row in rows
    }


def load_accepted_users(context: SyncContext, destination: str) -> dict[str, AcceptedUser]:
    """The user_state rows of a destination, by user id."""
    query = sql.SQL("select user_id, payload, payload_hash, lists from {} where destination = %s")
    rows = context.fetch(query.format(context.state("user_state")), (destination,))
    return {
        row["user_id"]: AcceptedUser(row["user_id"], row["payload"], row["payload_hash"], tuple(row["lists"]))
        for row in rows
    }


def sync_users(context: SyncContext, destination: str, client: BrazeClient | IterableClient | None) -> dict[str, Any]:
    """Send the changed users of `destination`; return the step's summary (also in sync_log).

    `client` may be None for a dry run, which counts and samples the changes, sends nothing and
    writes no state.
    """
    log = StepLog(context, STEP, destination)
    options, settings = context.options, context.settings
    model = load_model_users(context, destination)
    plan = plan_user_changes(model, load_accepted_users(context, destination), full_resync=options.full_resync)
    by_kind = {kind: plan.ids(kind) for kind in ("new", "changed", "removed")}
    summary: dict[str, Any] = {
        "step": STEP,
        "destination": destination,
        "run_id": options.run_id,
        "dry_run": options.dry_run,
        "full_resync": options.full_resync,
        "considered": len(model) + len(by_kind["removed"]),
        **{kind: len(ids) for kind, ids in by_kind.items()},
        "unchanged": len(plan.unchanged),
        "samples": {kind: samples(ids, settings.sample_size) for kind, ids in by_kind.items() if ids},
    }
    log.counts.update(considered=summary["considered"], unchanged=len(plan.unchanged))
    if options.dry_run:
        logger.info("%s users (dry run, nothing sent): %s", destination, _counts_line(summary))
        for kind, ids in summary["samples"].items():
            logger.info("%s users (dry run): sample %s: %s", destination, kind, ", ".join(ids))
        return log.write(summary)
    if client is None:
        raise ValueError("sync_users needs a client unless options.dry_run is set")

    size, send_batch = _sender(destination, client, settings)
    accepted = removed = failed = retried = requests = 0
    problem: DestinationError | None = None
    for batch in batches(plan.changes, size):
        requests += 1
        try:
            failures = send_batch(batch)
        except DestinationAuthError:
            raise
        except DestinationRejected as rejected:
            failures = _failures_of_rejected(destination, rejected, batch)
        except DestinationError as error:
            failures = {change.user_id: ("request_failed", redact(str(error))) for change in batch}
            problem = error
        done, retried_here = _commit_batch(context, destination, batch, failures)
        accepted += sum(1 for change in done if change.kind != "removed")
        removed += sum(1 for change in done if change.kind == "removed")
        failed += len(failures)
        retried += retried_here
        if problem is not None:
            break
    _drop_empty_state(context, destination)
    summary.update(sent=accepted, removed_sent=removed, failed=failed, retried=retried, requests=requests)
    log.counts.update(sent=accepted, removed=removed, failed=failed, retried=retried)
    summary = log.write(summary)
    logger.info("%s users: %s", destination, _counts_line(summary))
    if problem is not None:
        raise SyncRunFailed(
            f"{destination} users: {problem} The accepted batches are saved; the rest are sent on the next run "
            f"(see {context.settings.schema}.sync_errors for run {options.run_id})."
        ) from problem
    return summary


def _sender(
    destination: str, client: Any, settings: Any
) -> tuple[int, Callable[[list[UserChange]], dict[str, tuple[str, str]]]]:
    """Batch size and a function that sends one batch and returns its row failures."""
    if destination == "braze":

        def send_braze(batch: list[UserChange]) -> dict[str, tuple[str, str]]:
            objects = [{"external_id": change.user_id, **change.send} for change in batch]
            return braze_row_failures(client.track(attributes=objects), "attributes", [c.user_id for c in batch])

        return settings.braze_attributes_per_request, send_braze

    def send_iterable(batch: list[UserChange]) -> dict[str, tuple[str, str]]:
        entries = [_iterable_entry(change) for change in batch]
        return iterable_row_failures(client.bulk_update_users(entries), batch_identities(batch))

    return settings.iterable_bulk_update_max_users, send_iterable


def _iterable_entry(change: UserChange) -> dict[str, Any]:
    entry: dict[str, Any] = {"userId": change.user_id, "dataFields": change.send, "preferUserId": True}
    if change.email and change.kind != "removed":
        entry["email"] = change.email
    return entry


def batch_identities(batch: list[UserChange]) -> dict[str, str]:
    """Identifier Iterable may echo (userId or email) -> user id, to map its failure lists back."""
    identities = {change.user_id: change.user_id for change in batch}
    identities.update({change.email: change.user_id for change in batch if change.email})
    return identities


def _failures_of_rejected(
    destination: str, rejected: DestinationRejected, batch: list[UserChange]
) -> dict[str, tuple[str, str]]:
    """A 4xx for the whole batch: Braze's 'no valid object' 400 lists its row errors."""
    body = rejected.body if isinstance(rejected.body, dict) else {}
    if destination == "braze" and isinstance(body.get("errors"), list) and body["errors"]:
        failures = braze_row_failures(body, "attributes", [change.user_id for change in batch])
        if failures:
            return failures
    return {change.user_id: ("request_rejected", redact(str(rejected))) for change in batch}


def _commit_batch(
    context: SyncContext, destination: str, batch: list[UserChange], failures: dict[str, tuple[str, str]]
) -> tuple[list[UserChange], int]:
    """In one transaction: store what was accepted, record what was refused. Returns (accepted, retried)."""
    done = [change for change in batch if change.user_id not in failures]
    kept = [change for change in done if change.kind != "removed"]
    gone = [change.user_id for change in done if change.kind == "removed"]
    state = context.state("user_state")
    with context.conn.transaction(), context.conn.cursor() as cursor:
        if kept:
            cursor.executemany(
                sql.SQL(
                    "insert into {} (destination, user_id, payload_hash, payload, accepted_at, run_id) "
                    "values (%s, %s, %s, %s, now(), %s) on conflict (destination, user_id) do update set "
                    "payload_hash = excluded.payload_hash, payload = excluded.payload, "
                    "accepted_at = excluded.accepted_at, run_id = excluded.run_id"
                ).format(state),
                [
                    (destination, change.user_id, change.payload_hash, Jsonb(change.payload), context.options.run_id)
                    for change in kept
                ],
            )
        if gone:
            # Iterable keeps the row until the lists step has unsubscribed the user too.
            cursor.execute(
                sql.SQL(
                    "update {} set payload_hash = '', payload = '{{}}', accepted_at = now(), run_id = %s "
                    "where destination = %s and user_id = any(%s)"
                ).format(state),
                (context.options.run_id, destination, gone),
            )
        record_errors(context, destination, STEP, "user", failures)
        retried = resolve_errors(context, destination, STEP, "user", [change.user_id for change in done])
    return done, len(retried)


def _drop_empty_state(context: SyncContext, destination: str) -> None:
    """Forget users with nothing left at the destination (no attributes, no lists)."""
    with context.conn.transaction():
        context.conn.execute(
            sql.SQL("delete from {} where destination = %s and payload_hash = '' and lists = '[]'").format(
                context.state("user_state")
            ),
            (destination,),
        )


def _counts_line(summary: dict[str, Any]) -> str:
    keys = ("new", "changed", "unchanged", "removed", "sent", "failed", "retried", "requests")
    return ", ".join(f"{key} {summary[key]}" for key in keys if key in summary)
