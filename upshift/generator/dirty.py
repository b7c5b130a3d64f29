"""Planted dirty rows: the defects the dbt staging layer must quarantine with a reason.

Each table gets `rate` x rows corrupted rows, split evenly over the kinds that apply to
it (and at least MIN_PER_KIND of each kind overall, so small runs still show every
defect). A corrupted row carries exactly one defect, and duplicates are copies of
clean rows, so counting each kind in SQL gives back the report's numbers:

- duplicate_id: an extra row with an existing id (a re-delivered event, sometimes with
  an updated status).
- null_key: the id or one user reference is NULL. For users the NULL-id row is an extra
  copy, so no event loses its user.
- unknown_user: a user reference to an id that is not in users (a deleted account).
- blank_key: a user reference is an empty string (an id that names nobody).
- negative_amount: bookings.amount or subscriptions.mrr below zero.
- non_finite_amount: bookings.amount or subscriptions.mrr is NaN.
- invalid_enum: a role, status or channel outside the contract's values.
- future_timestamp: the event time (users.created_at, subscriptions.started_at) two or
  more days after as-of.
- implausible_timestamp: the event time is -infinity or in year 1 (a default a broken
  export writes).
"""

from __future__ import annotations

import numpy as np

from upshift.generator.tables import NULL, TABLES, TableSpec, format_timestamps
from upshift.generator.timing import DAY

DIRTY_KINDS = (
    "duplicate_id",
    "null_key",
    "blank_key",
    "unknown_user",
    "negative_amount",
    "non_finite_amount",
    "invalid_enum",
    "future_timestamp",
    "implausible_timestamp",
)
# Timestamps before any plausible event (dbt's quarantine_earliest_event_date).
IMPLAUSIBLE_TIMESTAMPS = ("-infinity", "0001-01-01 00:00:00+00")
MIN_PER_KIND = 2
# Candidates for invalid_enum; a candidate the contract accepts (e.g. after "refunded" is added
# to bookings.status) is skipped, so an invalid_enum row is always outside the contract.
INVALID_ENUM_VALUES = {
    "users": ("admin", "Client", "both", "wrker"),
    "bookings": ("Completed", "canceled", "refunded", "done"),
    "proposals": ("WON", "withdrawn", "declined", "lost "),
    "offer_exposures": ("In-App", "whatsapp", "mail", "web_push"),
}


def applicable_kinds(spec: TableSpec) -> tuple[str, ...]:
    """The dirty kinds that make sense for a table's columns."""
    applies = {
        "duplicate_id": True,
        "null_key": True,
        "blank_key": bool(spec.user_columns),
        "unknown_user": bool(spec.user_columns),
        "negative_amount": spec.amount_column is not None,
        "non_finite_amount": spec.amount_column is not None,
        "invalid_enum": spec.enum_column is not None,
        "future_timestamp": True,
        "implausible_timestamp": True,
    }
    return tuple(kind for kind in DIRTY_KINDS if applies[kind])


class Corrupter:
    """Corrupts chunks of encoded rows and keeps the per-table, per-kind tally."""

    def __init__(self, rate: float, as_of: int, tables: dict[str, TableSpec] = TABLES) -> None:
        if not 0.0 <= rate < 0.5:
            raise ValueError(f"dirty_rate must be in [0, 0.5), got {rate}")
        self.rate = rate
        self.as_of = as_of
        self.tables = tables
        self.counts = {table: dict.fromkeys(applicable_kinds(spec), 0) for table, spec in tables.items()}

    def apply(self, table: str, columns: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        rows = len(next(iter(columns.values())))
        if self.rate == 0 or rows == 0:
            return columns
        spec = self.tables[table]
        kinds = applicable_kinds(spec)
        wanted = self.rate * rows / len(kinds)
        planned = np.floor(wanted).astype(np.int64) + (rng.random(len(kinds)) < wanted % 1)
        planned = {
            kind: max(int(count), MIN_PER_KIND if self.counts[table][kind] == 0 else 0)
            for kind, count in zip(kinds, planned, strict=True)
        }
        chosen = rng.permutation(rows)
        taken = 0
        picks = {}
        for kind in kinds:
            count = min(planned[kind], rows - taken)
            picks[kind] = chosen[taken : taken + count]
            taken += count

        columns = {column: values.copy() for column, values in columns.items()}
        extra = []
        for kind, where in picks.items():
            if len(where) == 0:
                continue
            self.counts[table][kind] += len(where)
            if kind == "duplicate_id":
                extra.append(self._duplicates(spec, columns, where, rng))
            elif kind == "null_key" and table == "users":
                copies = {column: values[where] for column, values in columns.items()}
                copies[spec.id_column] = np.full(len(where), NULL, dtype=object)
                extra.append(copies)
            else:
                getattr(self, f"_{kind}")(spec, columns, where, rng)
        for copies in extra:
            columns = {column: np.concatenate([values, copies[column]]) for column, values in columns.items()}
        return columns

    def _duplicates(self, spec, columns, where, rng) -> dict[str, np.ndarray]:
        copies = {column: values[where] for column, values in columns.items()}
        if spec.enum_column and spec.name != "users":
            restated = rng.random(len(where)) < 0.5
            new_values = np.array(spec.enum_values, dtype=object)[rng.integers(0, len(spec.enum_values), len(where))]
            copies[spec.enum_column] = np.where(restated, new_values, copies[spec.enum_column])
        return copies

    def _null_key(self, spec, columns, where, rng) -> None:
        column_of = rng.integers(0, len(spec.key_columns), len(where))
        for index, column in enumerate(spec.key_columns):
            columns[column][where[column_of == index]] = NULL

    def _blank_key(self, spec, columns, where, rng) -> None:
        column_of = rng.integers(0, len(spec.user_columns), len(where))
        for index, column in enumerate(spec.user_columns):
            columns[column][where[column_of == index]] = ""

    def _non_finite_amount(self, spec, columns, where, rng) -> None:
        columns[spec.amount_column][where] = "NaN"

    def _implausible_timestamp(self, spec, columns, where, rng) -> None:
        values = np.array(IMPLAUSIBLE_TIMESTAMPS, dtype=object)
        columns[spec.timestamp_column][where] = values[rng.integers(0, len(values), len(where))]
        if "ended_at" in columns:
            columns["ended_at"][where] = NULL

    def _unknown_user(self, spec, columns, where, rng) -> None:
        column_of = rng.integers(0, len(spec.user_columns), len(where))
        for index, column in enumerate(spec.user_columns):
            rows = where[column_of == index]
            prefixes = [value[:4] for value in columns[column][rows]]
            numbers = rng.integers(0, 10_000_000, len(rows))
            columns[column][rows] = [f"{prefix}9{number:07d}" for prefix, number in zip(prefixes, numbers, strict=True)]

    def _negative_amount(self, spec, columns, where, rng) -> None:
        values = columns[spec.amount_column][where]
        fallback = [f"{cents / 100:.2f}" for cents in rng.integers(100, 50_000, len(where))]
        columns[spec.amount_column][where] = [
            "-" + (value if value.strip("0.") else spare) for value, spare in zip(values, fallback, strict=True)
        ]

    def _invalid_enum(self, spec, columns, where, rng) -> None:
        values = [value for value in INVALID_ENUM_VALUES[spec.name] if value not in spec.enum_values]
        if not values:
            raise ValueError(f"the raw contract accepts every invalid {spec.name}.{spec.enum_column} candidate")
        columns[spec.enum_column][where] = np.array(values, dtype=object)[rng.integers(0, len(values), len(where))]

    def _future_timestamp(self, spec, columns, where, rng) -> None:
        ahead = self.as_of + 2 * DAY + (rng.random(len(where)) * 60 * DAY).astype(np.int64)
        columns[spec.timestamp_column][where] = format_timestamps(ahead)
        if "ended_at" in columns:
            columns["ended_at"][where] = NULL
