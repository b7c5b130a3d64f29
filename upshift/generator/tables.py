"""The raw tables as the generator writes them: contract columns, keys, and text encoding.

Columns, their types and enum values come from the raw contract (the dbt sources yml, read by
upshift/contract.py), and so do the named states the generator gives a meaning (a completed
booking is a hire): a contract that drops one fails at import, naming the value.

Column encodings are chosen by contract column name: `*_at` are epoch seconds,
`amount`/`mrr` are integer cents, `client_id`/`viewer_id`/`worker_id` are user indexes
(or ready-made text), `category` is a category index. Everything is turned into
PostgreSQL COPY text format, where `\\N` is NULL.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from psycopg import sql

from upshift.contract import RawContract, raw_contract
from upshift.generator.catalog import CATEGORIES
from upshift.generator.frames import Frame, frame_length
from upshift.generator.timing import DAY

NULL = "\\N"
NULL_TIME = np.iinfo(np.int64).min


@dataclass(frozen=True)
class TableSpec:
    """One raw table: its columns and which of them the dirty-row kinds can touch."""

    name: str
    columns: tuple[str, ...]
    id_prefix: str
    user_columns: tuple[str, ...]
    enum_column: str | None = None
    enum_values: tuple[str, ...] = ()
    amount_column: str | None = None

    @property
    def id_column(self) -> str:
        return self.columns[0]

    @property
    def key_columns(self) -> tuple[str, ...]:
        return (self.id_column, *self.user_columns)

    @property
    def timestamp_column(self) -> str:
        return next(column for column in self.columns if column.endswith("_at"))


CONTRACT = raw_contract()
TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "users",
            CONTRACT.table("users").column_names,
            id_prefix="",
            user_columns=(),
            enum_column="role",
            enum_values=CONTRACT.accepted_values("users", "role"),
        ),
        TableSpec(
            "bookings",
            CONTRACT.table("bookings").column_names,
            id_prefix="bkg_",
            user_columns=("client_id", "worker_id"),
            enum_column="status",
            enum_values=CONTRACT.accepted_values("bookings", "status"),
            amount_column="amount",
        ),
        TableSpec("searches", CONTRACT.table("searches").column_names, "srch_", ("client_id",)),
        TableSpec(
            "proposals",
            CONTRACT.table("proposals").column_names,
            id_prefix="prop_",
            user_columns=("worker_id",),
            enum_column="status",
            enum_values=CONTRACT.accepted_values("proposals", "status"),
        ),
        TableSpec("profile_views", CONTRACT.table("profile_views").column_names, "view_", ("worker_id", "viewer_id")),
        TableSpec("contacts", CONTRACT.table("contacts").column_names, "cont_", ("worker_id", "client_id")),
        TableSpec(
            "subscriptions",
            CONTRACT.table("subscriptions").column_names,
            id_prefix="sub_",
            user_columns=("user_id",),
            amount_column="mrr",
        ),
        TableSpec(
            "offer_exposures",
            CONTRACT.table("offer_exposures").column_names,
            id_prefix="expo_",
            user_columns=("user_id",),
            enum_column="channel",
            enum_values=CONTRACT.accepted_values("offer_exposures", "channel"),
        ),
    )
}
# The states the generator writes with a meaning, each checked against the contract.
COMPLETED = CONTRACT.value("bookings", "status", "completed")
CANCELLED = CONTRACT.value("bookings", "status", "cancelled")
PENDING = CONTRACT.value("bookings", "status", "pending")
WON = CONTRACT.value("proposals", "status", "won")
LOST = CONTRACT.value("proposals", "status", "lost")
UNDECIDED = CONTRACT.value("proposals", "status", "pending")
IN_APP = CONTRACT.value("offer_exposures", "channel", "in_app")
EMAIL = CONTRACT.value("offer_exposures", "channel", "email")
PUSH = CONTRACT.value("offer_exposures", "channel", "push")
SMS = CONTRACT.value("offer_exposures", "channel", "sms")
EVENT_TABLES = ("bookings", "searches", "proposals", "profile_views", "contacts", "offer_exposures")


def raw_tables(contract: RawContract) -> dict[str, TableSpec]:
    """TABLES with the enum values of another contract (e.g. an edited copy of the sources yml)."""
    return {
        name: replace(spec, enum_values=contract.accepted_values(name, spec.enum_column)) if spec.enum_column else spec
        for name, spec in TABLES.items()
    }


def user_ids(prefix: str, count: int) -> np.ndarray:
    """Text ids for users 0..count-1 of one role, e.g. cli_00000001."""
    return np.array([f"{prefix}{number:08d}" for number in range(1, count + 1)], dtype=object)


def schema_ddl(schema: str, contract: RawContract = CONTRACT) -> sql.Composed:
    """The contract's raw tables in `schema`, with the contract's columns and types but no
    constraint: bad rows (duplicate ids, null keys, unknown enum values, ...) must be able to
    arrive so that the dbt staging layer can quarantine them with a reason."""
    statements = [sql.SQL("create schema if not exists {}").format(sql.Identifier(schema))]
    for table in contract.tables.values():
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(column.data_type))
            for column in table.columns.values()
        )
        statements.append(
            sql.SQL("create table if not exists {} ({})").format(sql.Identifier(schema, table.name), columns)
        )
    return sql.SQL(";\n").join([*statements, timestamp_indexes(schema, contract)])


def _timestamp_indexes(contract: RawContract) -> list[tuple[str, str, str]]:
    """(index, table, column) of each event table's index on its event timestamp."""
    return [
        (f"{name}_{TABLES[name].timestamp_column}_idx", name, TABLES[name].timestamp_column)
        for name in EVENT_TABLES
        if name in contract.tables
    ]


def timestamp_indexes(schema: str, contract: RawContract = CONTRACT) -> sql.Composed:
    """Create the event tables' indexes on their event timestamp, where missing.

    A daily run reads only the event tables' last few days (dbt's validation batch, the raw
    gate's window), which a warehouse serves from an index or a date partition, not a scan of
    all history.
    """
    return sql.SQL(";\n").join(
        sql.SQL("create index if not exists {} on {} ({})").format(
            sql.Identifier(index), sql.Identifier(schema, table), sql.Identifier(column)
        )
        for index, table, column in _timestamp_indexes(contract)
    )


def drop_timestamp_indexes(schema: str, contract: RawContract = CONTRACT) -> sql.Composed:
    """Drop those indexes: a bulk load builds them once afterwards instead of maintaining them per row."""
    return sql.SQL(";\n").join(
        sql.SQL("drop index if exists {}").format(sql.Identifier(schema, index))
        for index, _, _ in _timestamp_indexes(contract)
    )


_CATEGORY_NAMES = np.array([category.name for category in CATEGORIES], dtype=object)
_CENTS = np.array([f"{cents:02d}" for cents in range(100)], dtype=object)
_TIME_OF_DAY = np.array(
    [f"T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}+00" for second in range(DAY)], dtype=object
)


def format_timestamps(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds as ISO-8601 UTC text, NULL_TIME as NULL."""
    seconds = np.asarray(seconds, dtype=np.int64)
    out = np.full(len(seconds), NULL, dtype=object)
    present = seconds != NULL_TIME
    if not present.any():
        return out
    values = seconds[present]
    day = values // DAY
    first = int(day.min())
    dates = np.datetime_as_string(np.arange(first, int(day.max()) + 1).astype("datetime64[D]")).astype(object)
    out[present] = dates[day - first] + _TIME_OF_DAY[values % DAY]
    return out


def format_money(cents: np.ndarray) -> np.ndarray:
    """Integer cents as a decimal with two places, keeping the sign."""
    cents = np.asarray(cents, dtype=np.int64)
    magnitude = np.abs(cents)
    sign = np.where(cents < 0, "-", "").astype(object)
    return sign + (magnitude // 100).astype(str).astype(object) + "." + _CENTS[magnitude % 100]


class TextEncoder:
    """Turns generated frames into COPY text columns, numbering each table's rows."""

    def __init__(self, client_ids: np.ndarray, worker_ids: np.ndarray) -> None:
        self._users = {"client_id": client_ids, "viewer_id": client_ids, "worker_id": worker_ids}
        self._next_id = dict.fromkeys(TABLES, 1)

    def encode(self, table: str, frame: Frame) -> dict[str, np.ndarray]:
        spec = TABLES[table]
        rows = frame_length(frame)
        columns = {}
        for column in spec.columns:
            if column == spec.id_column and column not in frame:
                start = self._next_id[table]
                self._next_id[table] = start + rows
                columns[column] = np.array(
                    [f"{spec.id_prefix}{number:010d}" for number in range(start, start + rows)], dtype=object
                )
            else:
                columns[column] = self._encode_column(column, frame[column])
        return columns

    def _encode_column(self, column: str, values: np.ndarray) -> np.ndarray:
        if values.dtype == object:
            return np.where(np.equal(values, None), NULL, values)
        if column in self._users:
            return self._users[column][values]
        if column.endswith("_at"):
            return format_timestamps(values)
        if column in ("amount", "mrr"):
            return format_money(values)
        if column == "category":
            return _CATEGORY_NAMES[values]
        if column == "job_id":
            return "job_" + values.astype(str).astype(object)
        if values.dtype == bool:
            return np.where(values, "t", "f").astype(object)
        raise TypeError(f"no text encoding for column {column} of dtype {values.dtype}")


def copy_text(columns: dict[str, np.ndarray]) -> str:
    """Tab-separated COPY lines for the given text columns, in column order."""
    lines = None
    for values in columns.values():
        lines = values if lines is None else lines + "\t" + values
    if lines is None or not len(lines):
        return ""
    return "\n".join(lines) + "\n"
