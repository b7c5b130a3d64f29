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
from collections.abc import Iterator
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from upshift.sync.changes import AcceptedUser, ModelUser, UserChange, user_change
from upshift.sync.clients import BrazeClient, IterableClient
from upshift.sync.context import (
    StepLog,
    SyncContext,
    fail_on_rejections,
    newer_state_synced,
    record_errors,
    refuse_mass_removal,
    resolve_errors,
    skipped_backfill,
)
from upshift.sync.destinations import Destination, Failures, destination_for, typed_or_failures
from upshift.sync.errors import DestinationAuthError, DestinationError, DestinationRejected, SyncRunFailed, redact
from upshift.sync.fields import ATTRIBUTE_TYPES, check_declared
from upshift.sync.pipeline import Answered, send_in_order

logger = logging.getLogger("upshift.sync")

STEP = "users"


# The model's users joined to the destination's accepted state, one row per user on either
# side; the comparison runs in the warehouse so the step never holds every user in memory.
_JOINED = """
with model as ({model}),
accepted as (select user_id, payload, payload_hash, email from {state} where destination = %(destination)s),
joined as (
    select
        coalesce(m.user_id, a.user_id) as user_id,
        m.user_id is not null as in_model,
        m.payload,
        m.payload_hash,
        m.email,
        a.payload as accepted_payload,
        coalesce(a.payload_hash, '') as accepted_hash,
        a.email as accepted_email
    from model as m
    full outer join accepted as a on m.user_id = a.user_id
),
kinded as (
    select
        *,
        case
            when not in_model then case when accepted_hash <> '' then 'removed' end
            when accepted_hash = '' then 'new'
            when %(full_resync)s or accepted_hash is distinct from payload_hash then 'changed'
        end as kind
    from joined
)
"""

_COUNTS = """
select
    count(*) filter (where in_model) as model_users,
    count(*) filter (where in_model and kind is null) as unchanged,
    count(*) filter (where kind = 'new') as new,
    count(*) filter (where kind = 'changed') as changed,
    count(*) filter (where kind = 'removed') as removed,
    count(*) filter (where accepted_hash <> '') as holding,
    count(*) filter (
        where kind = 'changed' and coalesce(email, '') <> '' and coalesce(accepted_email, '') <> ''
        and email <> accepted_email
    ) as email_changes,
    -- the first ids of each kind: a top-N each, not a sort of every user
    array(select user_id from kinded where kind = 'new' order by user_id collate "C" limit %(samples)s)
        as new_samples,
    array(select user_id from kinded where kind = 'changed' order by user_id collate "C" limit %(samples)s)
        as changed_samples,
    array(select user_id from kinded where kind = 'removed' order by user_id collate "C" limit %(samples)s)
        as removed_samples,
    -- every attribute a changed user sends or clears (checked against the declared types): the
    -- distinct key sets first (users share a few; jsonb lists a set's keys in one order), then
    -- their keys, so the planner never sorts every user's every key
    (
        select array_agg(distinct field)
        from (
            select array(select jsonb_object_keys(sent.payload)) as keys
            from kinded as sent where sent.kind is not null and sent.payload is not null
            union
            select array(select jsonb_object_keys(sent.accepted_payload))
            from kinded as sent where sent.kind is not null and sent.accepted_payload is not null
        ) as key_sets,
            unnest(key_sets.keys) as field
    ) as fields
from kinded
"""

# Model users in id order, then the removed ones (the order plan_user_changes gives).
_CHANGES = """
select user_id, in_model, payload, payload_hash, email, accepted_payload, accepted_hash, accepted_email
from kinded
where kind is not null
order by not in_model, user_id collate "C"
"""


def _joined(context: SyncContext, target: Destination, tail: str) -> sql.Composed:
    return sql.SQL(_JOINED + tail).format(model=target.model_users_query(context), state=context.state("user_state"))


def _plan_counts(context: SyncContext, target: Destination) -> dict[str, Any]:
    """Counts, samples and the fields to send, from one pass of the comparison."""
    params = _params(context, target)
    return context.fetch(_joined(context, target, _COUNTS), {**params, "samples": context.settings.sample_size})[0]


def _params(context: SyncContext, target: Destination) -> dict[str, Any]:
    return {"destination": target.name, "full_resync": context.options.full_resync}


def stream_user_changes(context: SyncContext, target: Destination) -> Iterator[list[UserChange]]:
    """The users to send, a batch at a time, from a server-side cursor (memory flat in users).

    The cursor is WITH HOLD: it reads one snapshot, taken before the first batch is committed,
    so the state the loop writes never changes what it reads.
    """
    size = target.user_batch_size
    full_resync = context.options.full_resync
    with context.conn.cursor(name=f"upshift_{target.name}_user_changes", withhold=True) as cursor:
        cursor.itersize = max(size, 1000)
        cursor.execute(_joined(context, target, _CHANGES), _params(context, target))
        while rows := cursor.fetchmany(size):
            batch = []
            for (
                user_id,
                in_model,
                payload,
                payload_hash,
                email,
                accepted_payload,
                accepted_hash,
                accepted_email,
            ) in rows:
                row = ModelUser(user_id, payload, payload_hash, email) if in_model else None
                before = (
                    AcceptedUser(user_id, accepted_payload, accepted_hash, (), accepted_email)
                    if accepted_payload is not None
                    else None
                )
                change = user_change(user_id, row, before, full_resync=full_resync)
                if change is not None:
                    batch.append(change)
            if batch:
                yield batch


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
    counts = _plan_counts(context, target)
    kinds = ("new", "changed", "removed")
    to_send = sum(counts[kind] for kind in kinds)
    summary.update(
        considered=counts["model_users"] + counts["removed"],
        **{kind: counts[kind] for kind in kinds},
        unchanged=counts["unchanged"],
        email_changes=counts["email_changes"],
        samples={kind: list(counts[f"{kind}_samples"]) for kind in kinds if counts[kind]},
    )
    log.counts.update(considered=summary["considered"], unchanged=counts["unchanged"])
    if to_send:
        check_declared([dict.fromkeys(counts["fields"] or [])], ATTRIBUTE_TYPES, f"{destination} users")
    if options.dry_run:
        logger.info("%s users (dry run, nothing sent): %s", destination, _counts_line(summary))
        for kind, ids in summary["samples"].items():
            logger.info("%s users (dry run): sample %s: %s", destination, kind, ", ".join(ids))
        return log.write(summary)
    if client is None:
        raise ValueError("sync_users needs a client unless options.dry_run is set")
    refuse_mass_removal(context, f"{destination} users", counts["removed"], counts["holding"])

    totals = dict.fromkeys(("accepted", "removed", "failed", "rejected", "retried", "requests"), 0)
    problem: DestinationError | None = None
    if to_send:
        problem = _send_all(context, target, client, totals)
    _drop_empty_state(context, destination)
    summary.update(
        sent=totals["accepted"],
        removed_sent=totals["removed"],
        failed=totals["failed"],
        retried=totals["retried"],
        requests=totals["requests"],
    )
    log.counts.update(
        sent=totals["accepted"], removed=totals["removed"], failed=totals["failed"], retried=totals["retried"]
    )
    summary = log.write(summary)
    logger.info("%s users: %s", destination, _counts_line(summary))
    if problem is not None:
        raise SyncRunFailed(
            f"{destination} users: {problem} The accepted batches are saved; the rest are sent on the next run "
            f"(see {context.settings.schema}.sync_errors for run {options.run_id})."
        ) from problem
    fail_on_rejections(context, f"{destination} users", totals["rejected"], to_send)
    return summary


def _send_all(
    context: SyncContext, target: Destination, client: Any, totals: dict[str, int]
) -> DestinationError | None:
    """Send every batch with up to `max_requests_in_flight` requests at once (pipeline.py);
    commit each batch's state (in this thread, in send order) only once the destination has
    answered it. Answered batches share one transaction per `users_per_commit` users: a run
    killed before a commit sends those users again (attribute updates are idempotent).

    A transport failure stops new sends; the batches already in flight are still answered and
    committed. An auth error is raised after the other in-flight batches are committed.
    """
    problem: DestinationError | None = None
    fatal: DestinationAuthError | None = None

    def send(batch: list[UserChange]) -> tuple[Failures, DestinationError | None]:
        return _send_batch(target, client, batch)

    unsaved: list[UserChange] = []
    unsaved_failures: Failures = {}

    def save() -> None:
        """Commit the answered batches not yet saved, in one transaction."""
        if not unsaved:
            return
        done, retried = _commit_batch(context, target.name, unsaved, unsaved_failures)
        totals["accepted"] += sum(1 for change in done if change.kind != "removed")
        totals["removed"] += sum(1 for change in done if change.kind == "removed")
        totals["failed"] += len(unsaved_failures)
        totals["rejected"] += sum(1 for reason, _ in unsaved_failures.values() if reason != "request_failed")
        totals["retried"] += retried
        unsaved.clear()
        unsaved_failures.clear()

    def settle(answered: list[Answered[list[UserChange], tuple[Failures, DestinationError | None]]]) -> None:
        nonlocal problem, fatal
        for item in answered:
            try:
                batch_failures, stop = item.future.result()
            except DestinationAuthError as error:  # every later batch would be refused too
                fatal = fatal or error
                continue
            problem = problem or stop
            unsaved.extend(item.batch)
            unsaved_failures.update(batch_failures)
        if len(unsaved) >= context.settings.users_per_commit or problem is not None or fatal is not None:
            save()

    try:
        totals["requests"] = send_in_order(
            stream_user_changes(context, target),
            send,
            settle,
            width=context.settings.max_requests_in_flight,
            name=f"upshift-{target.name}-users",
            stopped=lambda: problem is not None or fatal is not None,
        )
    finally:
        save()
    if fatal is not None:
        raise fatal
    return problem


def _send_batch(target: Destination, client: Any, batch: list[UserChange]) -> tuple[Failures, DestinationError | None]:
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
    """In one transaction: store what was accepted, record what was refused. Returns (accepted, retried).

    `batch` may join several answered batches (their ids are distinct)."""
    done = [change for change in batch if change.user_id not in failures]
    kept = [change for change in done if change.kind != "removed"]
    gone = [change.user_id for change in done if change.kind == "removed"]
    state = context.state("user_state")
    with context.conn.transaction(), context.conn.cursor() as cursor:
        if kept:
            # One statement for the whole group (one JSON document unpacked in the server), not a row each.
            cursor.execute(
                sql.SQL(
                    "insert into {} (destination, user_id, payload_hash, payload, email, accepted_at, run_id) "
                    "select %s, accepted.user_id, accepted.payload_hash, accepted.payload, accepted.email, now(), %s "
                    "from jsonb_to_recordset(%s) "
                    "as accepted (user_id text, payload_hash text, payload jsonb, email text) "
                    "on conflict (destination, user_id) do update set "
                    "payload_hash = excluded.payload_hash, payload = excluded.payload, email = excluded.email, "
                    "accepted_at = excluded.accepted_at, run_id = excluded.run_id"
                ).format(state),
                (
                    destination,
                    context.options.run_id,
                    Jsonb(
                        [
                            {
                                "user_id": change.user_id,
                                "payload_hash": change.payload_hash,
                                "payload": change.payload,
                                "email": change.email,
                            }
                            for change in kept
                        ]
                    ),
                ),
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
