"""Step "sync lists" (Iterable): static lists per side and tier, kept in step with the model.

Every name in sync_iterable__users.list_names is a static list (created when missing, its
listId remembered in iterable_lists). Users are subscribed to the lists they entered and
unsubscribed from the lists they left - from all of them when they left the model (Holdout or
Cold). Memberships live in user_state.lists and change only after Iterable accepted the batch;
a user whose attributes and lists are both gone is forgotten. Runs after the users step, with
`updateExistingUsersOnly`, so a list never creates a profile the users step could not.
The guardrails of the users step apply: a mass exit (over `max_removal_share` of the
memberships held) fails before sending, refusals over `max_rejected_share` fail the step, and
an older as-of date than the newest synced sends nothing unless forced.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from upshift.sync.clients import IterableClient
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
from upshift.sync.destinations import Failures, destination_for
from upshift.sync.errors import DestinationAuthError, DestinationError, SyncRunFailed, redact
from upshift.sync.outcomes import NOT_A_FAILURE_ON_UNSUBSCRIBE, iterable_row_failures
from upshift.sync.pipeline import Answered, send_in_order

logger = logging.getLogger("upshift.sync")

STEP = "lists"
DESTINATION = "iterable"
# One request's worth: subscribe (True) or unsubscribe, the list's name, the user ids.
Membership = tuple[bool, str, list[str]]


def plan_memberships(
    wanted: dict[str, set[str]], current: dict[str, set[str]], *, full_resync: bool = False
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(entries, exits): per list name, the user ids to subscribe and to unsubscribe.

    The in-memory statement of the rule the step runs in the warehouse (`_MEMBERSHIPS`).
    """
    entries: dict[str, list[str]] = defaultdict(list)
    exits: dict[str, list[str]] = defaultdict(list)
    for user_id in sorted(set(wanted) | set(current)):
        want, have = wanted.get(user_id, set()), current.get(user_id, set())
        for name in sorted(want if full_resync else want - have):
            entries[name].append(user_id)
        for name in sorted(have - want):
            exits[name].append(user_id)
    return dict(entries), dict(exits)


def sync_iterable_lists(context: SyncContext, client: IterableClient | None) -> dict[str, Any]:
    """Subscribe entries and unsubscribe exits; return the step's summary (also in sync_log)."""
    log = StepLog(context, STEP, DESTINATION)
    options = context.options
    newest = newer_state_synced(context, DESTINATION)
    if newest is not None:
        summary = {"step": STEP, "destination": DESTINATION, "run_id": options.run_id, "dry_run": options.dry_run}
        return skipped_backfill(log, summary, newest)
    plan = _plan_counts(context)
    known = _known_lists(context)
    summary: dict[str, Any] = {
        "step": STEP,
        "destination": DESTINATION,
        "run_id": options.run_id,
        "dry_run": options.dry_run,
        "considered": plan["considered"],
        "subscribe": plan["subscribe"],
        "unsubscribe": plan["unsubscribe"],
        "minimum_requests": plan["minimum_requests"],
        "lists_to_create": sorted(name for name in plan["entry_lists"] or [] if name not in known),
        "samples": {
            "subscribe": list(plan["subscribe_samples"] or []),
            "unsubscribe": list(plan["unsubscribe_samples"] or []),
        },
    }
    log.counts.update(considered=summary["considered"])
    if options.dry_run:
        logger.info(
            "iterable lists (dry run, nothing sent): %d subscriptions, %d unsubscriptions, lists to create: %s",
            summary["subscribe"],
            summary["unsubscribe"],
            ", ".join(summary["lists_to_create"]) or "none",
        )
        return log.write(summary)
    if client is None:
        raise ValueError("sync_iterable_lists needs a client unless options.dry_run is set")
    refuse_mass_removal(context, "iterable lists", summary["unsubscribe"], plan["held"])

    list_ids = _ensure_lists(context, client, summary["lists_to_create"], known)
    totals = dict.fromkeys(("done", "failed", "rejected", "retried", "requests"), 0)
    problem: DestinationError | None = None
    fatal: DestinationAuthError | None = None

    def send(item: Membership) -> tuple[Failures, DestinationError | None]:
        """One subscribe or unsubscribe call: its row failures, and the transport failure that stops the step."""
        subscribe, name, batch = item
        subscribers = [{"userId": user_id} for user_id in batch]
        ids = {user: user for user in batch}
        try:
            if subscribe:
                return iterable_row_failures(client.subscribe(list_ids[name], subscribers), ids), None
            body = client.unsubscribe(list_ids[name], subscribers)
            return iterable_row_failures(body, ids, ignore=NOT_A_FAILURE_ON_UNSUBSCRIBE), None
        except DestinationAuthError:
            raise
        except DestinationError as error:
            return {user: ("request_failed", redact(str(error))) for user in batch}, error

    def settle(answered: list[Answered[Membership, tuple[Failures, DestinationError | None]]]) -> None:
        """Each answered batch in its own transaction (a batch is one list, one direction)."""
        nonlocal problem, fatal
        for item in answered:
            subscribe, name, batch = item.batch
            try:
                failures, stop = item.future.result()
            except DestinationAuthError as error:
                fatal = fatal or error
                continue
            problem = problem or stop
            accepted = [user for user in batch if user not in failures]
            totals["retried"] += _commit_membership(context, name, subscribe, accepted, failures)
            totals["done"] += len(accepted)
            totals["failed"] += len(failures)
            totals["rejected"] += sum(1 for reason, _ in failures.values() if reason != "request_failed")

    if summary["subscribe"] or summary["unsubscribe"]:
        totals["requests"] = send_in_order(
            _stream_memberships(context),
            send,
            settle,
            width=context.settings.max_requests_in_flight,
            name="upshift-iterable-lists",
            stopped=lambda: problem is not None or fatal is not None,
        )
    if fatal is not None:
        raise fatal
    done, failed, retried, requests = totals["done"], totals["failed"], totals["retried"], totals["requests"]
    rejected = totals["rejected"]
    _forget_users_with_nothing_left(context)
    summary.update(sent=done, failed=failed, retried=retried, requests=requests)
    log.counts.update(sent=done, failed=failed, retried=retried, removed=summary["unsubscribe"])
    summary = log.write(summary)
    logger.info(
        "iterable lists: %d subscriptions, %d unsubscriptions planned; %d accepted, %d failed, %d requests",
        summary["subscribe"],
        summary["unsubscribe"],
        done,
        failed,
        requests,
    )
    if problem is not None:
        raise SyncRunFailed(
            f"iterable lists: {problem} Accepted memberships are saved; the rest follow on the next run."
        ) from problem
    fail_on_rejections(context, "iterable lists", rejected, done + failed)
    return summary


# Memberships wanted by the model and held at Iterable, one row per (user, list); what changes
# is computed in the warehouse, so the step never holds every user's lists in memory.
_MEMBERSHIPS = """
with wanted as (
    select distinct model.user_id, name
    from ({model}) as model
    cross join jsonb_array_elements_text(model.list_names) as name
),
held as (
    select distinct state.user_id, name
    from {state} as state
    cross join jsonb_array_elements_text(state.lists) as name
    where state.destination = %(destination)s
),
changes as (
    select true as subscribe, wanted.name, wanted.user_id
    from wanted
    left join held on wanted.user_id = held.user_id and wanted.name = held.name
    where %(full_resync)s or held.user_id is null
    union all
    select false as subscribe, held.name, held.user_id
    from held
    left join wanted on held.user_id = wanted.user_id and held.name = wanted.name
    where wanted.user_id is null
)
"""

_PLAN = """
select
    (select count(*) from (
        select user_id from ({model}) as model
        union
        select user_id from {state} where destination = %(destination)s
    ) as users) as considered,
    (select count(*) from held) as held,
    count(*) filter (where subscribe) as subscribe,
    count(*) filter (where not subscribe) as unsubscribe,
    array_agg(distinct name) filter (where subscribe) as entry_lists,
    (array_agg(distinct user_id collate "C" order by user_id collate "C") filter (where subscribe))[1:%(samples)s]
        as subscribe_samples,
    (array_agg(distinct user_id collate "C" order by user_id collate "C") filter (where not subscribe))[
        1:%(samples)s
    ] as unsubscribe_samples,
    -- the fewest requests that carry them: a request is one list, one direction, `size` users
    (
        select coalesce(sum(ceil(n::numeric / %(size)s)), 0)::int
        from (select count(*) as n from changes group by subscribe, name) as per_list
    ) as minimum_requests
from changes
"""

# Entries first, then exits; per list in name order, users in id order (batches never mix lists).
_CHANGES = """
select subscribe, name, user_id from changes
order by not subscribe, name collate "C", user_id collate "C"
"""


def _memberships(context: SyncContext, tail: str) -> sql.Composed:
    target = destination_for(DESTINATION, context.settings)
    return sql.SQL(_MEMBERSHIPS + tail).format(
        model=target.model_users_query(context), state=context.state("user_state")
    )


def _params(context: SyncContext) -> dict[str, Any]:
    return {
        "destination": DESTINATION,
        "full_resync": context.options.full_resync,
        "samples": context.settings.sample_size,
        "size": max(1, context.settings.iterable_list_max_subscribers),
    }


def _plan_counts(context: SyncContext) -> dict[str, Any]:
    """How many memberships enter and exit, over how many users, with samples (no ids held)."""
    return context.fetch(_memberships(context, _PLAN), _params(context))[0]


def _stream_memberships(context: SyncContext) -> Iterator[Membership]:
    """(subscribe, list name, user ids) batches of at most `iterable_list_max_subscribers`,
    read from a server-side cursor (WITH HOLD: one snapshot, unaffected by the commits)."""
    size = max(1, context.settings.iterable_list_max_subscribers)
    with context.conn.cursor(name="upshift_iterable_list_changes", withhold=True) as cursor:
        cursor.itersize = max(size, 1000)
        cursor.execute(_memberships(context, _CHANGES), _params(context))
        subscribe, name, batch = True, "", []
        for row_subscribe, row_name, user_id in cursor:
            if batch and ((row_subscribe, row_name) != (subscribe, name) or len(batch) >= size):
                yield subscribe, name, batch
                batch = []
            subscribe, name = row_subscribe, row_name
            batch.append(user_id)
        if batch:
            yield subscribe, name, batch


def _known_lists(context: SyncContext) -> dict[str, int]:
    rows = context.fetch(sql.SQL("select list_name, list_id from {}").format(context.state("iterable_lists")))
    return {row["list_name"]: row["list_id"] for row in rows}


def _ensure_lists(
    context: SyncContext, client: IterableClient, missing: list[str], known: dict[str, int]
) -> dict[str, int]:
    """listIds of every list, creating the missing ones (after looking for them by name)."""
    ids = dict(known)
    if not missing:
        return ids
    existing = {item.get("name"): item.get("id") for item in client.lists()}
    for name in missing:
        ids[name] = int(existing[name]) if existing.get(name) is not None else client.create_list(name)
        with context.conn.transaction():
            context.conn.execute(
                sql.SQL(
                    "insert into {} (list_name, list_id, created_at) values (%s, %s, now()) "
                    "on conflict (list_name) do update set list_id = excluded.list_id"
                ).format(context.state("iterable_lists")),
                (name, ids[name]),
            )
        logger.info("iterable lists: %s list %s has id %s", "found" if name in existing else "created", name, ids[name])
    return ids


def _commit_membership(
    context: SyncContext, name: str, subscribe: bool, accepted: list[str], failures: dict[str, tuple[str, str]]
) -> int:
    """Record accepted memberships and refused ones in one transaction; return how many were retries."""
    state = context.state("user_state")
    with context.conn.transaction(), context.conn.cursor() as cursor:
        if accepted and subscribe:
            cursor.executemany(
                sql.SQL(
                    "insert into {} as state (destination, user_id, payload_hash, payload, lists, accepted_at, run_id) "
                    "values (%s, %s, '', '{{}}', %s, now(), %s) on conflict (destination, user_id) do update set "
                    "lists = (select jsonb_agg(distinct value order by value) "
                    "from jsonb_array_elements_text(state.lists || excluded.lists) as value), "
                    "accepted_at = excluded.accepted_at, run_id = excluded.run_id"
                ).format(state),
                [(DESTINATION, user_id, Jsonb([name]), context.options.run_id) for user_id in accepted],
            )
        elif accepted:
            cursor.execute(
                sql.SQL(
                    "update {} set lists = lists - %s, accepted_at = now(), run_id = %s "
                    "where destination = %s and user_id = any(%s)"
                ).format(state),
                (name, context.options.run_id, DESTINATION, accepted),
            )
        keyed = {f"{user_id}|{name}": failure for user_id, failure in failures.items()}
        record_errors(context, DESTINATION, STEP, "list", keyed)
        retried = resolve_errors(context, DESTINATION, STEP, "list", [f"{user_id}|{name}" for user_id in accepted])
    return len(retried)


def _forget_users_with_nothing_left(context: SyncContext) -> None:
    with context.conn.transaction():
        context.conn.execute(
            sql.SQL("delete from {} where destination = %s and payload_hash = '' and lists = '[]'").format(
                context.state("user_state")
            ),
            (DESTINATION,),
        )
