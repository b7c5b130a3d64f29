"""The declared type of every synced attribute and event property, and the typed payload builder.

Iterable fixes a field's type from the first value it receives and refuses later values of
another type ("types of data fields must match the types sent in previous requests, across all
data fields in the project", https://api.iterable.com/api/docs, users/bulkUpdate); Braze compares
numbers by type in segment filters. JSON from the warehouse does not keep a number's type
(`coalesce(sum(amount), 0)` is `0`, an integer, while other rows hold `12.5`), so every value
is rendered here from its declared type before it is sent: decimals always as a float (`0.0`),
counts always as an integer, never one then the other.

A field the models send that is not declared here stops the step before anything is sent
(`UndeclaredFields`): declare its type first. A value that does not fit its type (a "NaN"
string in a decimal, 2.5 in a count) makes that one user or event a row failure in sync_errors
(reason `invalid_value`), never a request that poisons the destination's field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from upshift.sync.errors import SyncError, redact

STRING, INTEGER, DECIMAL, BOOLEAN, STRINGS = "string", "integer", "decimal", "boolean", "string_array"

# The personal numbers (int_users_personal_numbers_computed): counts are integers, money and rates decimals.
PERSONAL_NUMBERS = {
    "searches_last_7_days": INTEGER,
    "searches_last_30_days": INTEGER,
    "hires_last_30_days": INTEGER,
    "completed_bookings_last_60_days": INTEGER,
    "categories_hired_last_90_days": INTEGER,
    "bookings_with_favourite_worker": INTEGER,
    "favourite_worker_id": STRING,
    "profile_views_last_30_days": INTEGER,
    "contacts_last_30_days": INTEGER,
    "contact_rate_last_30_days": DECIMAL,
    "proposals_decided_last_30_days": INTEGER,
    "proposals_won_last_30_days": INTEGER,
    "earnings_last_28_days": DECIMAL,
    "completed_jobs_last_28_days": INTEGER,
}

# Braze custom attributes / Iterable dataFields (messaging_user_attributes).
ATTRIBUTE_TYPES: dict[str, str] = {
    "upshift_role": STRING,
    "upshift_readiness_tier": STRING,
    "upshift_readiness_score": INTEGER,
    "upshift_offer_code": STRING,
    "upshift_offer_suppressed": BOOLEAN,
    "upshift_suppression_reason": STRING,
    "upshift_signals": STRINGS,
    "upshift_reasons": STRINGS,
    "upshift_has_upgraded": BOOLEAN,
    "upshift_upgraded_on": STRING,
    "upshift_current_plan": STRING,
    "upshift_paid_hire_speedup_pct": DECIMAL,
    "upshift_promoted_contact_multiplier": DECIMAL,
    "upshift_estimated_monthly_upside": DECIMAL,
    **{f"upshift_{name}": kind for name, kind in PERSONAL_NUMBERS.items()},
}

# Event properties (messaging_events): touchpoints and sequence exits.
EVENT_PROPERTY_TYPES: dict[str, str] = {
    "trigger_id": STRING,
    "trigger_type": STRING,
    "step": INTEGER,
    "channel": STRING,
    "offer_code": STRING,
    "readiness_tier": STRING,
    "readiness_score": INTEGER,
    "paid_hire_speedup_pct": DECIMAL,
    "promoted_contact_multiplier": DECIMAL,
    "upgraded_plan": STRING,
    **PERSONAL_NUMBERS,
}


class UndeclaredFields(SyncError):
    """The models send fields without a declared type; declare them in upshift/sync/fields.py."""


class InvalidValue(ValueError):
    """A value that does not fit its field's declared type."""


def check_declared(payloads: Iterable[Mapping[str, Any]], types: Mapping[str, str], what: str) -> None:
    """Fail before sending when any payload carries a field without a declared type."""
    unknown = sorted({key for payload in payloads for key in payload} - set(types))
    if unknown:
        raise UndeclaredFields(
            f"{what}: the models send {', '.join(unknown)} without a declared type. Declare each in "
            "upshift/sync/fields.py (string, integer, decimal, boolean, string_array) so it reaches the "
            "destinations with one type; nothing was sent."
        )


def typed_payload(payload: Mapping[str, Any], types: Mapping[str, str]) -> dict[str, Any]:
    """`payload` with every value rendered as its declared type (None stays None: a removal)."""
    return {key: None if value is None else _render(key, value, types[key]) for key, value in payload.items()}


def _render(key: str, value: Any, kind: str) -> Any:
    if kind == STRING:
        if isinstance(value, str) and value.strip():
            return value
    elif kind == BOOLEAN:
        if isinstance(value, bool):
            return value
    elif kind == STRINGS:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
    elif _is_finite_number(value):
        if kind == DECIMAL:
            return float(value)
        if kind == INTEGER and float(value).is_integer():
            return int(value)
    raise InvalidValue(f"{key}: {_describe(value)} is not a valid {kind}")


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _describe(value: Any) -> str:
    """The value's JSON type (and the value for numbers and short words, never free text)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {redact(value, 12)!r}" if len(value) <= 12 else "a long string"
    return f"a {type(value).__name__}"
