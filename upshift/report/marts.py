"""Read the metrics marts the growth review shows, with plain SQL, in one snapshot.

The review never computes a metric itself: every number comes from a dbt mart (definitions
next to the SQL in dbt_project/models/marts/metrics). A mart that does not exist yet reads as
an empty table marked missing, so a review built before the first DAG run says "no data yet"
instead of failing.

The page holds only what it shows: a mart with a row per user or per upgrade is read as the
counts, sums and top rows the page draws from it (SHOWN), and every mart's full extract is
streamed to its CSV file, so the review's memory does not grow with the number of users.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import IsolationLevel, sql

from upshift.warehouse import WarehouseSettings, connect

# mart -> (order of its rows, whether it keeps a row per as-of date: those are cut at the
# review's as-of date; the others are rebuilt by every dbt run for that run's date).
MARTS: dict[str, tuple[str, bool]] = {
    "growth_headlines": ("as_of_date", True),
    "tier_mix_daily": ("as_of_date, role, readiness_tier", True),
    "mrr_movements": ("month_start", False),
    "time_to_upgrade": ("upgraded_at, subscription_id", False),
    "ready_without_conversion": ("days_at_ready desc, user_id", False),
    "upgrade_retention": ("cohort_month", False),
    "upsell_conversion": ("trigger_type, offer_code, arm desc, channel", False),
    "upsell_lift": ("trigger_type = 'all', trigger_type, offer_code", False),
    "addressable_gap": ("mrr_at_stake desc, user_id", False),
    "signal_backtest": ("role, segment like 'tier:%%', segment", False),
}

# A mart read whole, and every mart's CSV extract.
WHOLE = "select * from {table}{where} order by {order_by}"
READY_LIST_LENGTH = 20
# Rows per fetch while a CSV extract streams: what the review holds of a mart at a time.
EXTRACT_BATCH_ROWS = 1_000


@dataclass(frozen=True)
class Shown:
    """What the page shows of a mart with a row per user or per upgrade: `select`, over {table}
    ({where} cuts a dated mart at the as-of date), returns the rows it draws; `count_by` also
    counts the whole mart's rows per value of a column."""

    select: str
    count_by: str | None = None


SHOWN: dict[str, Shown] = {
    # The histogram's buckets are drawn from the upgrades per (rounded) duration.
    "time_to_upgrade": Shown(
        """
        select days_to_upgrade, is_within_target, count(*) as upgrades
        from {table}{where}
        group by days_to_upgrade, is_within_target
        order by days_to_upgrade, is_within_target
        """
    ),
    "ready_without_conversion": Shown(
        f"select * from {{table}}{{where}} order by days_at_ready desc, user_id limit {READY_LIST_LENGTH}",
        count_by="role",
    ),
    # Clients and MRR at stake per current plan, most clients first; ties in the order each plan
    # first appears in the mart's own order (MARTS).
    "addressable_gap": Shown(
        """
        select plan_code, count(*) as clients, sum(mrr_at_stake) as mrr_at_stake
        from (
            select
                coalesce(nullif(current_plan_code, ''), 'none') as plan_code,
                mrr_at_stake,
                row_number() over (order by mrr_at_stake desc, user_id) as position
            from {table}{where}
        ) as gap
        group by plan_code
        order by clients desc, min(position)
        """
    ),
}


@dataclass(frozen=True)
class MartTable:
    """One mart's rows as the review read them - all of them, or what SHOWN says the page shows -
    and, for a SHOWN count_by, the whole mart's row count per value; `exists` is False before dbt
    built it."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    exists: bool = True
    counts: Mapping[Any, int] = field(default_factory=dict)
    # The as-of dates the whole mart was computed for (empty when it has no as_of_date).
    measured: frozenset[dt.date] = frozenset()

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def measured_as_of(self) -> set[dt.date]:
        """The as-of dates the rows were computed for (empty when the mart has no as_of_date)."""
        return set(self.measured)


def read_marts(settings: WarehouseSettings, as_of: dt.date, extract_to: Path | None = None) -> dict[str, MartTable]:
    """Every mart of MARTS, read in one read-only repeatable-read transaction; with `extract_to`,
    each existing mart's rows are also written to `<extract_to>/<mart>.csv` from that snapshot."""
    schema = settings.layer_schema("marts")
    with connect(settings) as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        columns: dict[str, set[str]] = {}
        for name, column in conn.execute(
            "select table_name, column_name from information_schema.columns where table_schema = %s", (schema,)
        ):
            columns.setdefault(name, set()).add(column)
        marts = {}
        for name, (order_by, dated) in MARTS.items():
            if name not in columns:
                marts[name] = MartTable(name, (), (), False)
                continue
            mart = _Mart(conn, sql.Identifier(schema, name), order_by, dated, as_of)
            marts[name] = mart.read(name, SHOWN.get(name), "as_of_date" in columns[name])
            if extract_to is not None:
                mart.extract(extract_to / f"{name}.csv")
        return marts


@dataclass(frozen=True)
class _Mart:
    conn: psycopg.Connection
    table: sql.Identifier
    order_by: str
    dated: bool
    as_of: dt.date

    def read(self, name: str, shown: Shown | None, has_as_of_date: bool) -> MartTable:
        cursor = self._execute(shown.select if shown else WHOLE)
        columns = tuple(column.name for column in cursor.description or ())
        rows = tuple(cursor.fetchall())
        counts: dict[Any, int] = {}
        if shown and shown.count_by:
            query = "select {column}, count(*) from {table}{where} group by {column}"
            counts = dict(self._execute(query, column=sql.Identifier(shown.count_by)).fetchall())
        measured: frozenset[dt.date] = frozenset()
        if has_as_of_date:
            measured = frozenset(day for (day,) in self._execute("select distinct as_of_date from {table}{where}"))
        return MartTable(name, columns, rows, counts=counts, measured=measured)

    def extract(self, path: Path) -> None:
        """The mart's rows in its order to a CSV file, streamed through a server-side cursor."""
        query = self._query(WHOLE)
        with (
            self.conn.cursor(name=f"extract_{path.stem}") as cursor,
            path.open("w", newline="", encoding="utf-8") as handle,
        ):
            cursor.itersize = EXTRACT_BATCH_ROWS
            cursor.execute(query, {"as_of": self.as_of})
            writer = csv.writer(handle)
            writer.writerow(column.name for column in cursor.description or ())
            writer.writerows(["" if value is None else value for value in row] for row in cursor)

    def _query(self, template: str, **parts: sql.Composable) -> sql.Composed:
        return sql.SQL(template).format(
            table=self.table,
            where=sql.SQL(" where as_of_date <= %(as_of)s") if self.dated else sql.SQL(""),
            order_by=sql.SQL(self.order_by),
            **parts,
        )

    def _execute(self, template: str, **parts: sql.Composable) -> psycopg.Cursor:
        return self.conn.execute(self._query(template, **parts), {"as_of": self.as_of})
