"""Step "sync events": deliver each trigger event of sync_<destination>__events exactly once.

The event ledger is an outbox. Before a batch is sent, its events are written `pending` with
the attempt counted (committed); right after the destination accepts the batch they become
`sent` in one transaction, refused rows `failed` (safe to resend: the destination said no).

- Iterable events carry `id` = event_id, and Iterable updates rather than duplicates an event
  whose id it has seen, so anything not known to be sent is simply sent again.
- Braze events have no idempotency key. A batch that got no clear answer (5xx, read timeout,
  dropped connection - possibly processed, like the emulator's `process_then_500`) or that was
  in flight when a run died (pending with an attempt) is marked `ambiguous`, never resent
  blindly. On a later run, once it is `braze_reconcile_after_seconds` old (Braze processes
  asynchronously), it is reconciled against Braze's own per-user event counts
  (/users/export/ids `custom_events`): counts that prove delivery mark it `sent`, counts that
  prove it never arrived mark it `failed` (resent now); anything else stays `ambiguous` in
  sync_errors for an operator (docs/sync.md says how to settle it).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from upshift.sync.clients import BrazeClient, IterableClient
from upshift.sync.context import StepLog, SyncContext, batches, record_errors, resolve_errors, samples
from upshift.sync.errors import (
    AmbiguousDelivery,
    DestinationAuthError,
    DestinationError,
    DestinationRejected,
    SyncRunFailed,
    redact,
)
from upshift.sync.outcomes import braze_row_failures, iterable_row_failures

logger = logging.getLogger("upshift.sync")

STEP = "events"
MODELS = {"braze": ("sync_braze__events", "external_id"), "iterable": ("sync_iterable__events", "user_id")}
AMBIGUOUS = "ambiguous_delivery"


def load_model_events(context: SyncContext, destination: str) -> list[dict[str, Any]]:
    model, user_column = MODELS[destination]
    query = sql.SQL(
        "select event_id, {} as user_id, event_name, occurred_at, properties from {} order by occurred_at, event_id"
    ).format(sql.Identifier(user_column), context.model(model))
    return context.fetch(query)


def load_ledger(context: SyncContext, destination: str) -> dict[str, dict[str, Any]]:
    query = sql.SQL(
        "select event_id, user_id, event_name, status, attempts, last_attempt_at from {} where destination = %s"
    )
    rows = context.fetch(query.format(context.state("event_ledger")), (destination,))
    return {row["event_id"]: row for row in rows}


def sync_events(context: SyncContext, destination: str, client: BrazeClient | IterableClient | None) -> dict[str, Any]:
    """Deliver the events not yet accepted by `destination`; return the step's summary."""
    log = StepLog(context, STEP, destination)
    options = context.options
    events = load_model_events(context, destination)
    summary: dict[str, Any] = {"step": STEP, "destination": destination, "run_id": options.run_id}
    summary.update(dry_run=options.dry_run, considered=len(events), reconciled_sent=0, reconciled_resend=0)
    if destination == "braze" and not options.dry_run:
        if client is None:
            raise ValueError("sync_events needs a client unless options.dry_run is set")
        _flag_interrupted_braze_batches(context)
        summary.update(_reconcile_braze(context, client))
    ledger = load_ledger(context, destination)
    due, held = [], defaultdict(list)
    for event in events:
        status = _status_for_sending(destination, ledger.get(event["event_id"]))
        (due.append(event) if status == "due" else held[status].append(event["event_id"]))
    summary.update(
        due=len(due),
        already_sent=len(held["sent"]),
        ambiguous=len(held["ambiguous"]),
        samples={"due": samples((event["event_id"] for event in due), context.settings.sample_size)},
    )
    log.counts.update(considered=len(events), unchanged=len(held["sent"]))
    if options.dry_run:
        logger.info(
            "%s events (dry run, nothing sent): %d due, %d already sent, %d ambiguous",
            destination,
            len(due),
            len(held["sent"]),
            len(held["ambiguous"]),
        )
        return log.write(summary)
    if client is None:
        raise ValueError("sync_events needs a client unless options.dry_run is set")

    settings = context.settings
    size = settings.braze_attributes_per_request if destination == "braze" else settings.iterable_track_bulk_max_events
    sent = failed = ambiguous = requests = 0
    problem: DestinationError | None = None
    for batch in batches(due, size):
        requests += 1
        _mark_pending(context, destination, batch)
        ids = [event["event_id"] for event in batch]
        try:
            failures = _send(destination, client, batch)
        except DestinationAuthError:
            raise
        except AmbiguousDelivery as error:
            _settle(context, destination, [], {}, ambiguous={event_id: redact(str(error)) for event_id in ids})
            ambiguous += len(ids)
            continue
        except DestinationRejected as rejected:
            failures = _failures_of_rejected(destination, rejected, ids)
        except DestinationError as error:
            failures = {event_id: ("request_failed", redact(str(error))) for event_id in ids}
            problem = error
        accepted = [event_id for event_id in ids if event_id not in failures]
        _settle(context, destination, accepted, failures)
        sent += len(accepted)
        failed += len(failures)
        if problem is not None:
            break
    summary.update(sent=sent, failed=failed, ambiguous=summary["ambiguous"] + ambiguous, requests=requests)
    log.counts.update(sent=sent, failed=failed + ambiguous, events_sent=sent, events_failed=failed + ambiguous)
    summary = log.write(summary)
    logger.info(
        "%s events: %d considered, %d sent, %d failed, %d ambiguous, %d already sent, %d requests",
        destination,
        len(events),
        sent,
        failed,
        summary["ambiguous"],
        len(held["sent"]),
        requests,
    )
    if problem is not None or ambiguous:
        cause = problem or "a batch got no clear answer and was marked ambiguous (not resent)"
        raise SyncRunFailed(
            f"{destination} events: {cause}. Accepted events are in the ledger; see "
            f"{settings.schema}.sync_errors for run {options.run_id} and docs/sync.md (failure policy)."
        )
    return summary


def _status_for_sending(destination: str, row: dict[str, Any] | None) -> str:
    """due (send now), sent, or ambiguous (Braze: wait for reconciliation or an operator)."""
    if row is None or row["status"] == "failed":
        return "due"
    if row["status"] == "sent":
        return "sent"
    if destination == "iterable":
        return "due"  # pending/ambiguous: Iterable dedupes on id, resending is safe
    if row["status"] == "pending" and not row["attempts"]:
        return "due"
    return "ambiguous"


def _send(destination: str, client: Any, batch: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    ids = [event["event_id"] for event in batch]
    if destination == "braze":
        objects = [
            {
                "external_id": event["user_id"],
                "name": event["event_name"],
                "time": event["occurred_at"].astimezone(dt.UTC).isoformat(),
                "properties": _properties(event),
            }
            for event in batch
        ]
        return braze_row_failures(client.track(events=objects, idempotent=False), "events", ids)
    entries = [
        {
            "id": event["event_id"],
            "eventName": event["event_name"],
            "userId": event["user_id"],
            "createdAt": int(event["occurred_at"].timestamp()),
            "dataFields": _properties(event),
        }
        for event in batch
    ]
    by_user: dict[str, list[str]] = defaultdict(list)
    for event in batch:
        by_user[event["user_id"]].append(event["event_id"])
    failed_users = iterable_row_failures(client.track_bulk(entries), {user: user for user in by_user})
    return {event_id: reason for user, reason in failed_users.items() for event_id in by_user[user]}


def _properties(event: dict[str, Any]) -> dict[str, Any]:
    """Event properties without nulls (a touchpoint of a client has no worker comparison)."""
    return {key: value for key, value in (event["properties"] or {}).items() if value is not None}


def _failures_of_rejected(
    destination: str, rejected: DestinationRejected, ids: list[str]
) -> dict[str, tuple[str, str]]:
    body = rejected.body if isinstance(rejected.body, dict) else {}
    if destination == "braze" and body.get("errors"):
        failures = braze_row_failures(body, "events", ids)
        if failures:
            return failures
    return {event_id: ("request_rejected", redact(str(rejected))) for event_id in ids}


def _mark_pending(context: SyncContext, destination: str, batch: list[dict[str, Any]]) -> None:
    """Committed before sending: the ledger knows this batch may be in flight."""
    query = sql.SQL(
        "insert into {} (destination, event_id, user_id, event_name, payload, status, attempts, first_attempt_at, "
        "last_attempt_at, run_id) values (%s, %s, %s, %s, %s, 'pending', 1, now(), now(), %s) "
        "on conflict (destination, event_id) do update set status = 'pending', attempts = {}.attempts + 1, "
        "payload = excluded.payload, first_attempt_at = coalesce({}.first_attempt_at, excluded.first_attempt_at), "
        "last_attempt_at = excluded.last_attempt_at, run_id = excluded.run_id"
    ).format(context.state("event_ledger"), sql.Identifier("event_ledger"), sql.Identifier("event_ledger"))
    with context.conn.transaction(), context.conn.cursor() as cursor:
        cursor.executemany(
            query,
            [
                (
                    destination,
                    event["event_id"],
                    event["user_id"],
                    event["event_name"],
                    Jsonb(_properties(event)),
                    context.options.run_id,
                )
                for event in batch
            ],
        )


def _settle(
    context: SyncContext,
    destination: str,
    accepted: list[str],
    failures: dict[str, tuple[str, str]],
    *,
    ambiguous: dict[str, str] | None = None,
) -> None:
    """One transaction per batch: sent, failed (with sync_errors) or ambiguous (with sync_errors)."""
    ledger = context.state("event_ledger")
    ambiguous = ambiguous or {}
    with context.conn.transaction(), context.conn.cursor() as cursor:
        if accepted:
            cursor.execute(
                sql.SQL(
                    "update {} set status = 'sent', sent_at = now(), last_error = null "
                    "where destination = %s and event_id = any(%s)"
                ).format(ledger),
                (destination, accepted),
            )
        updates = [("failed", event_id, f"{reason}: {detail}") for event_id, (reason, detail) in failures.items()]
        updates += [("ambiguous", event_id, detail) for event_id, detail in ambiguous.items()]
        if updates:
            cursor.executemany(
                sql.SQL("update {} set status = %s, last_error = %s where destination = %s and event_id = %s").format(
                    ledger
                ),
                [(status, detail, destination, event_id) for status, event_id, detail in updates],
            )
        record_errors(context, destination, STEP, "event", failures)
        record_errors(
            context, destination, STEP, "event", {key: (AMBIGUOUS, value) for key, value in ambiguous.items()}
        )
        resolve_errors(context, destination, STEP, "event", accepted)


def _flag_interrupted_braze_batches(context: SyncContext) -> None:
    """Braze events left pending with an attempt: a run died while their batch was in flight."""
    ledger = context.state("event_ledger")
    with context.conn.transaction():
        rows = context.conn.execute(
            sql.SQL(
                "update {} set status = 'ambiguous', last_error = %s "
                "where destination = 'braze' and status = 'pending' and attempts > 0 returning event_id"
            ).format(ledger),
            ("the run stopped while this batch was in flight",),
        ).fetchall()
        detail = "a run stopped while the batch was in flight; it may or may not have been delivered"
        record_errors(context, "braze", STEP, "event", {row[0]: (AMBIGUOUS, detail) for row in rows})
    if rows:
        logger.warning("braze events: %d left in flight by an earlier run, marked ambiguous", len(rows))


def _reconcile_braze(context: SyncContext, client: BrazeClient) -> dict[str, int]:
    """Settle ambiguous Braze events from Braze's per-user event counts, where they prove the outcome."""
    settings = context.settings
    ledger = context.state("event_ledger")
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=settings.braze_reconcile_after_seconds)
    rows = context.fetch(
        sql.SQL(
            "select event_id, user_id, event_name from {} "
            "where destination = 'braze' and status = 'ambiguous' and last_attempt_at <= %s"
        ).format(ledger),
        (cutoff,),
    )
    if not rows:
        return {"reconciled_sent": 0, "reconciled_resend": 0}
    uncertain: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        uncertain[(row["user_id"], row["event_name"])].append(row["event_id"])
    users = sorted({user for user, _ in uncertain})
    sent_counts = {
        (row["user_id"], row["event_name"]): row["sent"]
        for row in context.fetch(
            sql.SQL(
                "select user_id, event_name, count(*) as sent from {} "
                "where destination = 'braze' and status = 'sent' and user_id = any(%s) group by user_id, event_name"
            ).format(ledger),
            (users,),
        )
    }
    braze_counts: dict[tuple[str, str], int] = {}
    for chunk in batches(users, settings.braze_export_max_ids):
        body = client.export_ids(chunk, ["external_id", "custom_events"])
        for user in body.get("users") or []:
            for event in user.get("custom_events") or []:
                braze_counts[(user.get("external_id"), event.get("name"))] = int(event.get("count") or 0)
    delivered: list[str] = []
    lost: dict[str, tuple[str, str]] = {}
    for key, event_ids in uncertain.items():
        known = sent_counts.get(key, 0)
        at_braze = braze_counts.get(key, 0)
        if at_braze == known + len(event_ids):
            delivered += event_ids
        elif at_braze == known:
            lost.update(
                {
                    event_id: ("reconciled_not_delivered", "Braze's event count shows it never arrived")
                    for event_id in event_ids
                }
            )
    with context.conn.transaction(), context.conn.cursor() as cursor:
        if delivered:
            cursor.execute(
                sql.SQL(
                    "update {} set status = 'sent', sent_at = last_attempt_at, last_error = null "
                    "where destination = 'braze' and event_id = any(%s)"
                ).format(ledger),
                (delivered,),
            )
        if lost:
            cursor.execute(
                sql.SQL(
                    "update {} set status = 'failed', last_error = 'reconciled: not delivered' "
                    "where destination = 'braze' and event_id = any(%s)"
                ).format(ledger),
                (list(lost),),
            )
        resolve_errors(context, "braze", STEP, "event", delivered)
    logger.info(
        "braze events: reconciled %d ambiguous: %d delivered, %d to resend, %d still ambiguous",
        len(rows),
        len(delivered),
        len(lost),
        len(rows) - len(delivered) - len(lost),
    )
    return {"reconciled_sent": len(delivered), "reconciled_resend": len(lost)}
