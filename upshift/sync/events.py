"""Step "sync events": deliver each trigger event of sync_<destination>__events exactly once.

The event ledger is an outbox. Before a batch is sent, its events are written `pending` with
the attempt counted (committed); right after the destination accepts the batch they become
`sent` in one transaction, refused rows `failed` (safe to resend: the destination said no).

- Iterable events carry `id` = event_id, and Iterable updates rather than duplicates an event
  whose id it has seen, so anything not known to be sent is simply sent again.
- Braze events have no idempotency key. A batch that got no clear answer (5xx, read timeout,
  dropped connection - possibly processed, like the emulator's `process_then_500`) or that was
  in flight when a run died (pending with an attempt) is marked `ambiguous`, never resent
  blindly. Within the same run the step waits (a bounded sleep) until the batch is
  `braze_reconcile_after_seconds` old (Braze processes asynchronously), then reconciles it
  against Braze's own per-user event counts (/users/export/ids `custom_events`): counts that
  prove delivery mark it `sent`, counts that prove it never arrived mark it `failed` and it is
  resent at once; up to `braze_reconcile_rounds` rounds. Whatever is still unsettled fails the
  step (`UndeliveredEvents`, naming how many and why) - a run never ends green with a
  touchpoint in doubt. docs/sync.md says how an operator settles one by hand.

Events are rendered from their declared property types (fields.py). A step whose events were
refused over `max_rejected_share` fails after recording them; an as-of date older than the
newest already synced sends nothing unless forced.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from upshift.sync.clients import BrazeClient, IterableClient
from upshift.sync.context import (
    StepLog,
    SyncContext,
    batches,
    fail_on_rejections,
    newer_state_synced,
    record_errors,
    resolve_errors,
    skipped_backfill,
)
from upshift.sync.destinations import Destination, Failures, destination_for, typed_or_failures
from upshift.sync.errors import (
    AmbiguousDelivery,
    DestinationAuthError,
    DestinationError,
    DestinationRejected,
    SyncRunFailed,
    UndeliveredEvents,
    redact,
)
from upshift.sync.fields import EVENT_PROPERTY_TYPES, check_declared
from upshift.sync.pipeline import Answered, send_in_order

logger = logging.getLogger("upshift.sync")

STEP = "events"
AMBIGUOUS = "ambiguous_delivery"


# The model's events with their ledger row (if any), in send order.
_EVENTS = """
select model.event_id, model.{user} as user_id, model.event_name, model.occurred_at, model.properties,
    ledger.status, ledger.attempts
from {model} as model
left join {ledger} as ledger on ledger.destination = %(destination)s and ledger.event_id = model.event_id
{where}
order by model.occurred_at, model.event_id
"""


def _events_query(context: SyncContext, target: Destination, where: str = "") -> sql.Composed:
    return sql.SQL(_EVENTS).format(
        user=sql.Identifier(target.events_user_column),
        model=context.model(target.events_model),
        ledger=context.state("event_ledger"),
        where=sql.SQL(where),
    )


def stream_model_events(context: SyncContext, target: Destination, name: str) -> Iterator[dict[str, Any]]:
    """The model's events with their ledger status, from a server-side cursor (memory flat in events).

    WITH HOLD: one snapshot, so the ledger rows the step writes meanwhile never change what it reads.
    """
    with context.conn.cursor(name=f"upshift_{target.name}_{name}", row_factory=dict_row, withhold=True) as cursor:
        cursor.itersize = 2000
        cursor.execute(_events_query(context, target), {"destination": target.name})
        yield from cursor


def _events_by_id(context: SyncContext, target: Destination, event_ids: list[str]) -> list[dict[str, Any]]:
    """The model's events among `event_ids` (those proven lost by a reconciliation), in send order."""
    where = "where model.event_id = any(%(ids)s)"
    return context.fetch(_events_query(context, target, where), {"destination": target.name, "ids": event_ids})


def _survey(context: SyncContext, target: Destination) -> dict[str, Any]:
    """One pass over the model's events: how many are due, sent, ambiguous, and sample due ids."""
    counts = dict.fromkeys(("considered", "due", "sent", "ambiguous"), 0)
    due_samples: list[str] = []
    size = context.settings.sample_size
    for event in stream_model_events(context, target, "event_survey"):
        counts["considered"] += 1
        status = _status_for_sending(target, event)
        counts[status] += 1
        if status == "due" and size and (len(due_samples) < size or event["event_id"] < due_samples[-1]):
            bisect.insort(due_samples, event["event_id"])
            del due_samples[size:]
    return {**counts, "due_samples": due_samples}


class _Delivery:
    """Counters of the batches sent in one step, and the transport failure that stopped it."""

    def __init__(self) -> None:
        self.sent = self.failed = self.rejected = self.ambiguous = self.requests = 0
        self.problem: DestinationError | None = None


def sync_events(context: SyncContext, destination: str, client: BrazeClient | IterableClient | None) -> dict[str, Any]:
    """Deliver the events not yet accepted by `destination`; return the step's summary."""
    log = StepLog(context, STEP, destination)
    options, settings = context.options, context.settings
    target = destination_for(destination, settings)
    summary: dict[str, Any] = {"step": STEP, "destination": destination, "run_id": options.run_id}
    summary.update(dry_run=options.dry_run)
    newest = newer_state_synced(context, destination)
    if newest is not None:
        return skipped_backfill(log, summary, newest)
    check_declared([dict.fromkeys(_property_names(context, target))], EVENT_PROPERTY_TYPES, f"{destination} events")
    summary.update(reconciled_sent=0, reconciled_resend=0, reconcile_rounds=0)
    if not options.dry_run:
        if client is None:
            raise ValueError("sync_events needs a client unless options.dry_run is set")
        if not target.events_resendable:
            _flag_interrupted_batches(context, destination)
        _add_reconciled(summary, target.resolve_ambiguous(context, client, wait=False)[0])
    survey = _survey(context, target)
    summary.update(
        considered=survey["considered"],
        due=survey["due"],
        already_sent=survey["sent"],
        ambiguous=survey["ambiguous"],
        samples={"due": survey["due_samples"]},
    )
    log.counts.update(considered=survey["considered"], unchanged=survey["sent"])
    if options.dry_run:
        logger.info(
            "%s events (dry run, nothing sent): %d due, %d already sent, %d ambiguous",
            destination,
            survey["due"],
            survey["sent"],
            survey["ambiguous"],
        )
        return log.write(summary)

    delivery = _Delivery()
    if survey["due"]:
        events = stream_model_events(context, target, "event_changes")
        try:
            due = (event for event in events if _status_for_sending(target, event) == "due")
            _deliver(context, target, client, due, delivery)
        finally:
            events.close()  # closes the server-side cursor when delivery stopped early
    while delivery.problem is None and summary["reconcile_rounds"] < settings.braze_reconcile_rounds:
        if not _open_ambiguous(context, destination):
            break
        summary["reconcile_rounds"] += 1
        counts, lost = target.resolve_ambiguous(context, client, wait=True)
        _add_reconciled(summary, counts)
        _deliver(context, target, client, _events_by_id(context, target, lost), delivery)
    undelivered = _open_ambiguous(context, destination)
    summary.update(
        sent=delivery.sent,
        failed=delivery.failed,
        ambiguous=undelivered,
        requests=delivery.requests,
    )
    log.counts.update(
        sent=delivery.sent,
        failed=delivery.failed + undelivered,
        events_sent=delivery.sent,
        events_failed=delivery.failed + undelivered,
    )
    summary = log.write(summary)
    logger.info(
        "%s events: %d considered, %d sent, %d failed, %d ambiguous, %d already sent, %d requests",
        destination,
        survey["considered"],
        delivery.sent,
        delivery.failed,
        undelivered,
        survey["sent"],
        delivery.requests,
    )
    if delivery.problem is not None:
        raise SyncRunFailed(
            f"{destination} events: {delivery.problem}. Accepted events are in the ledger; see "
            f"{settings.schema}.sync_errors for run {options.run_id} and docs/sync.md (failure policy)."
        )
    if undelivered:
        raise UndeliveredEvents(
            f"{destination} events: {undelivered} touchpoints are undelivered or in doubt: their batches got no "
            f"clear answer and {destination}'s own event counts, checked after waiting "
            f"{settings.braze_reconcile_after_seconds:g}s ({summary['reconcile_rounds']} rounds), neither prove "
            "nor disprove delivery, so they were not resent blindly. They are `ambiguous` in the event ledger "
            f"and in {settings.schema}.sync_errors (reason {AMBIGUOUS}); docs/sync.md says how to settle them."
        )
    fail_on_rejections(context, f"{destination} events", delivery.rejected, delivery.sent + delivery.failed)
    return summary


def _add_reconciled(summary: dict[str, Any], counts: dict[str, int]) -> None:
    for key in ("reconciled_sent", "reconciled_resend"):
        summary[key] += counts.get(key, 0)


def _deliver(
    context: SyncContext, target: Destination, client: Any, due: Iterable[dict[str, Any]], delivery: _Delivery
) -> None:
    """Send `due` in batches through the ledger, up to `max_requests_in_flight` at once (pipeline.py).

    Each batch is typed and committed `pending` in this thread before it is handed to a sender,
    and settled here once answered; a transport failure (delivery.problem) stops further batches
    (those in flight are still settled). An auth error is raised once the others are settled.
    """
    destination = target.name
    fatal: DestinationAuthError | None = None

    def prepared() -> Iterator[tuple[list[dict[str, Any]], Failures]]:
        """Typed batches, each marked pending (committed) just before it is sent."""
        for batch in batches(due, target.event_batch_size):
            typed, failures = typed_or_failures(
                batch, lambda event: event["event_id"], _present_properties, EVENT_PROPERTY_TYPES
            )
            sendable = [
                {**event, "typed_properties": typed[event["event_id"]]} for event in batch if event["event_id"] in typed
            ]
            if not sendable:
                _settle(context, destination, [], failures)
                _count(delivery, [], failures)
                continue
            _mark_pending(context, destination, sendable)
            yield sendable, failures

    def send(item: tuple[list[dict[str, Any]], Failures]) -> _Answer:
        sendable, _ = item
        ids = [event["event_id"] for event in sendable]
        try:
            return _Answer(target.send_events(client, sendable))
        except DestinationAuthError:
            raise
        except AmbiguousDelivery as error:
            return _Answer({}, unclear={event_id: redact(str(error)) for event_id in ids})
        except DestinationRejected as rejected:
            return _Answer(target.rejected(rejected, ids, "events"))
        except DestinationError as error:
            return _Answer({event_id: ("request_failed", redact(str(error))) for event_id in ids}, problem=error)

    def settle(answered: list[Answered[tuple[list[dict[str, Any]], Failures], _Answer]]) -> None:
        nonlocal fatal
        for item in answered:
            sendable, failures = item.batch
            try:
                answer = item.future.result()
            except DestinationAuthError as error:  # left pending: a later run treats it as interrupted
                fatal = fatal or error
                continue
            if answer.unclear:
                _settle(context, destination, [], failures, ambiguous=answer.unclear)
                delivery.failed += len(failures)
                delivery.rejected += len(failures)
                delivery.ambiguous += len(answer.unclear)
                continue
            failures = {**failures, **answer.failures}
            accepted = [event["event_id"] for event in sendable if event["event_id"] not in failures]
            _settle(context, destination, accepted, failures)
            _count(delivery, accepted, failures)
            delivery.problem = delivery.problem or answer.problem

    delivery.requests += send_in_order(
        prepared(),
        send,
        settle,
        width=context.settings.max_requests_in_flight,
        name=f"upshift-{destination}-events",
        stopped=lambda: delivery.problem is not None or fatal is not None,
    )
    if fatal is not None:
        raise fatal


class _Answer:
    """A sender's outcome for one event batch: row failures, the events in doubt, or the stopping failure."""

    __slots__ = ("failures", "problem", "unclear")

    def __init__(
        self, failures: Failures, *, unclear: dict[str, str] | None = None, problem: DestinationError | None = None
    ) -> None:
        self.failures = failures
        self.unclear = unclear or {}
        self.problem = problem


def _count(delivery: _Delivery, accepted: list[str], failures: Failures) -> None:
    delivery.sent += len(accepted)
    delivery.failed += len(failures)
    delivery.rejected += sum(1 for reason, _ in failures.values() if reason != "request_failed")


def _property_names(context: SyncContext, target: Destination) -> list[str]:
    """Every property name the model's events carry (checked against the declared types)."""
    query = sql.SQL("select distinct jsonb_object_keys(properties) as name from {} where properties is not null")
    return [row["name"] for row in context.fetch(query.format(context.model(target.events_model)))]


def _present_properties(event: dict[str, Any]) -> dict[str, Any]:
    """Event properties without nulls (a touchpoint of a client has no worker comparison)."""
    return {key: value for key, value in (event["properties"] or {}).items() if value is not None}


def _open_ambiguous(context: SyncContext, destination: str) -> int:
    rows = context.fetch(
        sql.SQL("select count(*) as n from {} where destination = %s and status = 'ambiguous'").format(
            context.state("event_ledger")
        ),
        (destination,),
    )
    return int(rows[0]["n"])


def _status_for_sending(target: Destination, row: dict[str, Any] | None) -> str:
    """due (send now), sent, or ambiguous (no idempotency key: reconcile first). `row` is the
    event's ledger row (None or a None status: never attempted)."""
    if row is None or row["status"] in (None, "failed"):
        return "due"
    if row["status"] == "sent":
        return "sent"
    if target.events_resendable:
        return "due"  # pending/ambiguous: the destination dedupes on id, resending is safe
    if row["status"] == "pending" and not row["attempts"]:
        return "due"
    return "ambiguous"


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
                    Jsonb(event["typed_properties"]),
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


def _flag_interrupted_batches(context: SyncContext, destination: str) -> None:
    """Events left pending with an attempt: a run died while their batch was in flight."""
    ledger = context.state("event_ledger")
    with context.conn.transaction():
        rows = context.conn.execute(
            sql.SQL(
                "update {} set status = 'ambiguous', last_error = %s "
                "where destination = %s and status = 'pending' and attempts > 0 returning event_id"
            ).format(ledger),
            ("the run stopped while this batch was in flight", destination),
        ).fetchall()
        detail = "a run stopped while the batch was in flight; it may or may not have been delivered"
        record_errors(context, destination, STEP, "event", {row[0]: (AMBIGUOUS, detail) for row in rows})
    if rows:
        logger.warning("%s events: %d left in flight by an earlier run, marked ambiguous", destination, len(rows))


def wait_until_reconcilable(context: SyncContext) -> float:
    """Sleep until the newest ambiguous Braze batch is `braze_reconcile_after_seconds` old; the wait."""
    rows = context.fetch(
        sql.SQL(
            "select max(last_attempt_at) as newest from {} where destination = 'braze' and status = 'ambiguous'"
        ).format(context.state("event_ledger"))
    )
    newest = rows[0]["newest"]
    if newest is None:
        return 0.0
    after = context.settings.braze_reconcile_after_seconds
    ready_at = newest + dt.timedelta(seconds=after)
    wait = min(after, max(0.0, (ready_at - dt.datetime.now(dt.UTC)).total_seconds()))
    if wait:
        logger.info("braze events: waiting %.1fs for Braze to process the ambiguous batches before checking", wait)
        time.sleep(wait + 0.01)  # the cutoff is recomputed after waking: land just past it
    return wait


def reconcile_braze(context: SyncContext, client: BrazeClient) -> tuple[dict[str, int], list[str]]:
    """Settle ambiguous Braze events from Braze's per-user event counts, where they prove the outcome.

    Returns the counts and the ids proven lost (now `failed`, to send again).
    """
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
        return {"reconciled_sent": 0, "reconciled_resend": 0}, []
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
    return {"reconciled_sent": len(delivered), "reconciled_resend": len(lost)}, sorted(lost)
