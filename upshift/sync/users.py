"""Step "sync users": send new and changed users' attributes, clear removed users, commit state.

Braze: /users/track `attributes` objects (at most `braze_attributes_per_request` per request).
Iterable: /api/users/bulkUpdate `users` (at most `iterable_bulk_update_max_users`). Each batch
is its own transaction: the destination answers, then the accepted users' state is written and
their open errors resolved, and the rows it refused go to sync_errors - so a run killed at any
point loses nothing (an unacknowledged batch is simply sent again; attribute updates are
idempotent) and a refused row is retried on every later run until it is accepted.

Guardrails: attributes are rendered from their declared types (fields.py; a value that does not
fit is an `invalid_value` row failure, an undeclared field stops the step); a run that would
clear more than `max_removal_share` of the users held fails before sending; a step whose rows
were refused over `max_rejected_share` fails after recording them; an as-of date older than
the newest already synced to the destination sends nothing unless forced. A changed email goes
through the destination's own path first (Iterable users/updateEmail).
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from upshift.sync.changes import AcceptedUser, ModelUser, UserChange, plan_user_changes
from upshift.sync.clients import BrazeClient, IterableClient
from upshift.sync.context import (
    StepLog,
    SyncContext,
    batches,
    fail_on_rejections,
    newer_state_synced,
    record_errors,
    refuse_mass_removal,
    resolve_errors,
    samples,
    skipped_backfill,
)
from upshift.sync.destinations import Destination, destination_for, typed_or_failures
from upshift.sync.errors import DestinationAuthError, DestinationError, DestinationRejected, SyncRunFailed, redact
from upshift.sync.fields import ATTRIBUTE_TYPES, check_declared

logger = logging.getLogger("upshift.sync")

STEP = "users"


def load_model_users(context: SyncContext, destination: str) -> dict[str, ModelUser]:
    """The rows of sync_<destination>__users, by user id."""
    return destination_for(destination, context.settings).load_model_users(context)


def load_accepted_users(context: SyncContext, destination: str) -> dict[str, AcceptedUser]:
    """The user_state rows of a destination, by user id."""
    query = sql.SQL("select user_id, payload, payload_hash, lists, email from {} where destination = %s")
    rows = context.fetch(query.format(context.state("user_state")), (destination,))
    return {
        row["user_id"]: AcceptedUser(
            row["user_id"], row["payload"], row["payload_hash"], tuple(row["lists"]), row["email"]
        )
        for row in rows
    }


def sync_users(context: SyncContext, destination: str, client: BrazeClient | IterableClient | None) -> dict[str, Any]:
    """Send the changed users of `destination`; return the step's summary (also in sync_log).

    `client` may be None for a dry run, which counts and samples the changes, sends nothing and
    writes no state.
    """
    log = StepLog(context, STEP, destination)
    options, settings = context.options, context.settings
    target = destination_for(destination, settings)
    summary: dict[str, Any] = {
        "step": STEP,
        "destination": destination,
        "run_id": options.run_id,
        "dry_run": options.dry_run,
        "full_resync": options.full_resync,
    }
    newest = newer_state_synced(context, destination)
    if newest is not None:
        return skipped_backfill(log, summary, newest)
    model = target.load_model_users(context)
    accepted_users = load_accepted_users(context, destination)
    plan = plan_user_changes(model, accepted_users, full_resync=options.full_resync)
    by_kind = {kind: plan.ids(kind) for kind in ("new", "changed", "removed")}
    summary.update(
        considered=len(model) + len(by_kind["removed"]),
        **{kind: len(ids) for kind, ids in by_kind.items()},
        unchanged=len(plan.unchanged),
        email_changes=sum(change.email_changed for change in plan.changes),
        samples={kind: samples(ids, settings.sample_size) for kind, ids in by_kind.items() if ids},
    )
    log.counts.update(considered=summary["considered"], unchanged=len(plan.unchanged))
    check_declared((change.send for change in plan.changes), ATTRIBUTE_TYPES, f"{destination} users")
    holding = sum(1 for user in accepted_users.values() if user.payload_hash)
    if options.dry_run:
        logger.info("%s users (dry run, nothing sent): %s", destination, _counts_line(summary))
        for kind, ids in summary["samples"].items():
            logger.info("%s users (dry run): sample %s: %s", destination, kind, ", ".join(ids))
        return log.write(summary)
    if client is None:
        raise ValueError("sync_users needs a client unless options.dry_run is set")
    refuse_mass_removal(context, f"{destination} users", len(by_kind["removed"]), holding)

    accepted = removed = failed = rejected = retried = requests = 0
    problem: DestinationError | None = None
    for batch in batches(plan.changes, target.user_batch_size):
        requests += 1
        failures, problem = _send_batch(target, client, batch)
        done, retried_here = _commit_batch(context, destination, batch, failures)
        accepted += sum(1 for change in done if change.kind != "removed")
        removed += sum(1 for change in done if change.kind == "removed")
        failed += len(failures)
        rejected += sum(1 for reason, _ in failures.values() if reason != "request_failed")
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
    fail_on_rejections(context, f"{destination} users", rejected, len(plan.changes))
    return summary


def _send_batch(
    target: Destination, client: Any, batch: list[UserChange]
) -> tuple[dict[str, tuple[str, str]], DestinationError | None]:
    """Send one batch: email changes first, then the typed attributes of the users still valid.

    Returns the row failures and the transport failure that stops the step (None: go on).
    """
    typed, failures = typed_or_failures(batch, lambda change: change.user_id, lambda c: c.send, ATTRIBUTE_TYPES)
    try:
        failures.update(target.send_email_changes(client, [c for c in batch if c.user_id not in failures]))
        sendable = [change for change in batch if change.user_id not in failures]
        if sendable:
            failures.update(target.send_users(client, sendable, typed))
    except DestinationAuthError:
        raise
    except DestinationRejected as refused:
        ids = [change.user_id for change in batch if change.user_id not in failures]
        failures.update(target.rejected(refused, ids, "attributes"))
    except DestinationError as error:
        failures.update({c.user_id: ("request_failed", redact(str(error))) for c in batch if c.user_id not in failures})
        return failures, error
    return failures, None


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
                    "insert into {} (destination, user_id, payload_hash, payload, email, accepted_at, run_id) "
                    "values (%s, %s, %s, %s, %s, now(), %s) on conflict (destination, user_id) do update set "
                    "payload_hash = excluded.payload_hash, payload = excluded.payload, email = excluded.email, "
                    "accepted_at = excluded.accepted_at, run_id = excluded.run_id"
                ).format(state),
                [
                    (
                        destination,
                        change.user_id,
                        change.payload_hash,
                        Jsonb(change.payload),
                        change.email,
                        context.options.run_id,
                    )
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
