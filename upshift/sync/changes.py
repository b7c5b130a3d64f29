"""Which users to send, and what: the pure part of change detection (no I/O).

A user is new (no accepted state), changed (the model's payload hash differs from the
accepted one), unchanged (same hash: nothing is sent), or removed (accepted before, absent from
the model now: Holdout or Cold). Only the attributes that differ from the accepted payload are
sent, and an attribute that disappeared is sent as null (Braze removes it, Iterable sets null),
so unchanged data points are never billed or re-fire journeys. A full resync sends every
attribute of every model user, whatever the state says. A user whose email differs from the
accepted one is flagged `email_changed` (Iterable moves the profile with users/updateEmail).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelUser:
    """One row of a sync_<destination>__users model."""

    user_id: str
    payload: dict[str, Any]
    payload_hash: str
    email: str | None = field(default=None, repr=False)
    lists: tuple[str, ...] = ()


@dataclass(frozen=True)
class AcceptedUser:
    """What the destination last accepted for a user (a user_state row)."""

    user_id: str
    payload: dict[str, Any]
    payload_hash: str
    lists: tuple[str, ...] = ()
    email: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class UserChange:
    """One user to send: `send` is the attribute diff, `payload`/`payload_hash` what to store."""

    user_id: str
    kind: str  # new | changed | removed
    send: dict[str, Any]
    payload: dict[str, Any]
    payload_hash: str
    email: str | None = field(default=None, repr=False)
    previous_email: str | None = field(default=None, repr=False)

    @property
    def email_changed(self) -> bool:
        """The destination holds this user under another email than the model's."""
        return self.kind == "changed" and bool(self.email and self.previous_email) and self.email != self.previous_email


@dataclass
class UserPlan:
    changes: list[UserChange]
    unchanged: list[str]

    def ids(self, kind: str) -> list[str]:
        return [change.user_id for change in self.changes if change.kind == kind]


def attribute_diff(previous: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes that differ, plus null for every attribute that is gone."""
    diff = {key: value for key, value in current.items() if previous.get(key) != value or key not in previous}
    diff.update({key: None for key in previous if key not in current})
    return diff


def user_change(
    user_id: str, row: ModelUser | None, before: AcceptedUser | None, *, full_resync: bool = False
) -> UserChange | None:
    """What to send for one user (`row`: the model's, None when absent; `before`: the accepted
    state, None when there is none); None when nothing is to be sent."""
    has_state = before is not None and bool(before.payload_hash)
    if row is None:
        if before is None or not has_state:
            return None
        return UserChange(user_id, "removed", dict.fromkeys(before.payload), {}, "", previous_email=before.email)
    if has_state and before.payload_hash == row.payload_hash and not full_resync:
        return None
    previous = before.payload if before is not None else {}
    if full_resync or not has_state:
        send = {**{key: None for key in previous if key not in row.payload}, **row.payload}
    else:
        send = attribute_diff(previous, row.payload)
    kind = "changed" if has_state else "new"
    previous_email = before.email if before is not None else None
    return UserChange(user_id, kind, send, row.payload, row.payload_hash, row.email, previous_email)


def plan_user_changes(
    model: Mapping[str, ModelUser], accepted: Mapping[str, AcceptedUser], *, full_resync: bool = False
) -> UserPlan:
    """New, changed and removed users with what to send; the ids of unchanged users.

    The in-memory form of what the users step streams from the warehouse (users.py): model
    users in id order, then the removed ones in id order.
    """
    changes: list[UserChange] = []
    unchanged: list[str] = []
    for user_id in sorted(model):
        change = user_change(user_id, model[user_id], accepted.get(user_id), full_resync=full_resync)
        if change is None:
            unchanged.append(user_id)
        else:
            changes.append(change)
    for user_id in sorted(set(accepted) - set(model)):
        change = user_change(user_id, None, accepted[user_id])
        if change is not None:
            changes.append(change)
    return UserPlan(changes, unchanged)
