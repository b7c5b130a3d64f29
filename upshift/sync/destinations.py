"""What differs per destination, one object each: models read, batch sizes, request shapes,
row-failure parsing, email changes and what an unclear answer to an event batch means.

The steps (users.py, lists.py, events.py) are written once against `Destination`;
`destination_for(name, settings)` gives the object. Braze events carry no idempotency key, so
Braze resolves ambiguous event batches against its own event counts (`resolve_ambiguous`);
Iterable events carry `id`, so anything not known to be sent is simply sent again.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from psycopg import sql

from upshift.sync.changes import UserChange
from upshift.sync.clients import BrazeClient, IterableClient
from upshift.sync.context import SyncContext
from upshift.sync.errors import DestinationRejected, redact
from upshift.sync.fields import InvalidValue, typed_payload
from upshift.sync.outcomes import braze_row_failures, iterable_row_failures
from upshift.sync.settings import SyncSettings

Failures = dict[str, tuple[str, str]]


class Destination:
    """The shared shape; subclasses fill in the destination's own parts."""

    name = ""
    users_model = ""
    events_model = ""
    events_user_column = ""
    # True when an event batch may be sent again without duplicates (an idempotency key).
    events_resendable = True

    def __init__(self, settings: SyncSettings) -> None:
        self.settings = settings

    def model_users_query(self, context: SyncContext) -> sql.Composed:
        """The users model as (user_id, payload, payload_hash, email, list_names)."""
        raise NotImplementedError

    @property
    def user_batch_size(self) -> int:
        raise NotImplementedError

    @property
    def event_batch_size(self) -> int:
        raise NotImplementedError

    def send_users(self, client: Any, batch: list[UserChange], typed: Mapping[str, dict[str, Any]]) -> Failures:
        """Send one batch (`typed`: the attributes to send per user id); its row failures."""
        raise NotImplementedError

    def send_email_changes(self, client: Any, changes: list[UserChange]) -> Failures:
        """Move users whose email changed to the new one before their attributes are sent."""
        return {}

    def send_events(self, client: Any, batch: list[dict[str, Any]]) -> Failures:
        raise NotImplementedError

    def rejected(self, error: DestinationRejected, ids: list[str], input_array: str) -> Failures:
        """A 4xx for a whole batch: every row failed with the destination's message."""
        return {object_id: ("request_rejected", redact(str(error))) for object_id in ids}

    def resolve_ambiguous(self, context: SyncContext, client: Any, *, wait: bool) -> tuple[dict[str, int], list[str]]:
        """Settle event batches that got no clear answer: counts and the ids proven lost.

        Nothing to do when events are resendable (they are simply sent again).
        """
        return {"reconciled_sent": 0, "reconciled_resend": 0}, []


class Braze(Destination):
    name = "braze"
    users_model = "sync_braze__users"
    events_model = "sync_braze__events"
    events_user_column = "external_id"
    events_resendable = False

    def model_users_query(self, context: SyncContext) -> sql.Composed:
        query = sql.SQL(
            "select external_id as user_id, attributes as payload, payload_hash, "
            "null::text as email, '[]'::jsonb as list_names from {}"
        )
        return query.format(context.model(self.users_model))

    @property
    def user_batch_size(self) -> int:
        return self.settings.braze_attributes_per_request

    @property
    def event_batch_size(self) -> int:
        return self.settings.braze_attributes_per_request

    def send_users(self, client: BrazeClient, batch: list[UserChange], typed: Mapping[str, dict[str, Any]]) -> Failures:
        objects = [{"external_id": change.user_id, **typed[change.user_id]} for change in batch]
        return braze_row_failures(client.track(attributes=objects), "attributes", [c.user_id for c in batch])

    def send_events(self, client: BrazeClient, batch: list[dict[str, Any]]) -> Failures:
        objects = [
            {
                "external_id": event["user_id"],
                "name": event["event_name"],
                "time": event["occurred_at"].astimezone(dt.UTC).isoformat(),
                "properties": event["typed_properties"],
            }
            for event in batch
        ]
        ids = [event["event_id"] for event in batch]
        return braze_row_failures(client.track(events=objects, idempotent=False), "events", ids)

    def rejected(self, error: DestinationRejected, ids: list[str], input_array: str) -> Failures:
        """Braze's 'no valid object' 400 lists its row errors; other 4xx fail every row."""
        body = error.body if isinstance(error.body, dict) else {}
        if isinstance(body.get("errors"), list) and body["errors"]:
            failures = braze_row_failures(body, input_array, ids)
            if failures:
                return failures
        return super().rejected(error, ids, input_array)

    def resolve_ambiguous(
        self, context: SyncContext, client: BrazeClient, *, wait: bool
    ) -> tuple[dict[str, int], list[str]]:
        """Reconcile ambiguous events against Braze's per-user event counts (see events.py).

        `wait`: sleep until the newest ambiguous batch is `braze_reconcile_after_seconds` old, so
        the check is meaningful within this run; otherwise only batches already that old count.
        """
        from upshift.sync.events import reconcile_braze, wait_until_reconcilable

        if wait:
            wait_until_reconcilable(context)
        return reconcile_braze(context, client)


class Iterable(Destination):
    name = "iterable"
    users_model = "sync_iterable__users"
    events_model = "sync_iterable__events"
    events_user_column = "user_id"

    def model_users_query(self, context: SyncContext) -> sql.Composed:
        query = sql.SQL("select user_id, data_fields as payload, payload_hash, email, list_names from {}")
        return query.format(context.model(self.users_model))

    @property
    def user_batch_size(self) -> int:
        return self.settings.iterable_bulk_update_max_users

    @property
    def event_batch_size(self) -> int:
        return self.settings.iterable_track_bulk_max_events

    @property
    def by_email(self) -> bool:
        return self.settings.iterable_identify_by == "email"

    def send_users(
        self, client: IterableClient, batch: list[UserChange], typed: Mapping[str, dict[str, Any]]
    ) -> Failures:
        entries = [self._entry(change, typed[change.user_id]) for change in batch]
        return iterable_row_failures(client.bulk_update_users(entries), batch_identities(batch))

    def _entry(self, change: UserChange, data_fields: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {"userId": change.user_id, "dataFields": data_fields}
        email = change.email if change.kind != "removed" else (change.previous_email if self.by_email else None)
        if email:
            entry["email"] = email
        if not self.by_email:
            entry["preferUserId"] = True
        return entry

    def send_email_changes(self, client: IterableClient, changes: list[UserChange]) -> Failures:
        """users/updateEmail per user whose email changed (a bulk update would make a second
        profile in an email-based project). A refusal (new email taken, user unknown) fails that
        user only; a transport failure stops the step like any other."""
        failures: Failures = {}
        for change in changes:
            if not change.email_changed:
                continue
            try:
                if self.by_email:
                    client.update_email(change.email or "", current_email=change.previous_email)
                else:
                    client.update_email(change.email or "", current_user_id=change.user_id)
            except DestinationRejected as refused:
                body = refused.body if isinstance(refused.body, dict) else {}
                code = str(body.get("code") or "email_change_rejected")
                if self.by_email and code == "UnknownEmailError":
                    # No profile holds the old email any more: an earlier try moved it (and then
                    # failed before recording), so the bulk update under the new email goes on.
                    continue
                failures[change.user_id] = (code, f"Iterable refused the change of email: {redact(str(refused))}")
        return failures

    def send_events(self, client: IterableClient, batch: list[dict[str, Any]]) -> Failures:
        entries = [
            {
                "id": event["event_id"],
                "eventName": event["event_name"],
                "userId": event["user_id"],
                "createdAt": int(event["occurred_at"].timestamp()),
                "dataFields": event["typed_properties"],
            }
            for event in batch
        ]
        by_user: dict[str, list[str]] = defaultdict(list)
        for event in batch:
            by_user[event["user_id"]].append(event["event_id"])
        failed_users = iterable_row_failures(client.track_bulk(entries), {user: user for user in by_user})
        return {event_id: reason for user, reason in failed_users.items() for event_id in by_user[user]}


DESTINATIONS: dict[str, type[Destination]] = {"braze": Braze, "iterable": Iterable}


def destination_for(name: str, settings: SyncSettings) -> Destination:
    try:
        return DESTINATIONS[name](settings)
    except KeyError:
        raise ValueError(f"unknown destination {name!r}; use one of {', '.join(DESTINATIONS)}") from None


def batch_identities(batch: list[UserChange]) -> dict[str, str]:
    """Identifier Iterable may echo (userId or email) -> user id, to map its failure lists back."""
    identities = {change.user_id: change.user_id for change in batch}
    identities.update({change.email: change.user_id for change in batch if change.email})
    identities.update({change.previous_email: change.user_id for change in batch if change.previous_email})
    return identities


def typed_or_failures(
    items: list[Any], key: Any, payload: Any, types: Mapping[str, str]
) -> tuple[dict[str, dict[str, Any]], Failures]:
    """The typed payload per id, and `invalid_value` failures for the items whose values do not fit."""
    typed: dict[str, dict[str, Any]] = {}
    failures: Failures = {}
    for item in items:
        try:
            typed[key(item)] = typed_payload(payload(item), types)
        except InvalidValue as problem:
            failures[key(item)] = ("invalid_value", str(problem))
    return typed, failures
