"""Read the metrics marts the growth review shows, with plain SQL, in one snapshot.

The review never computes a metric itself: every number comes from a dbt mart (definitions
next to the SQL in dbt_project/models/marts/metrics). A mart that does not exist yet reads as
an empty table marked missing, so a review built before the first DAG run says "no data yet"
instead of failing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
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


@dataclass(frozen=True)
class MartTable:
    """One mart's rows as the review read them; `exists` is False before dbt built it."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    exists: bool = True

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def measured_as_of(self) -> set[dt.date]:
        """The as-of dates the rows were computed for (empty when the mart has no as_of_date)."""
        if "as_of_date" not in self.columns:
            return set()
        position = self.columns.index("as_of_date")
        return {row[position] for row in self.rows}


def read_marts(settings: WarehouseSettings, as_of: dt.date) -> dict[str, MartTable]:
    """Every mart of MARTS, read in one read-only repeatable-read transaction."""
    schema = settings.layer_schema("marts")
    with connect(settings) as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        present = {
            name
            for (name,) in conn.execute(
                "select table_name from information_schema.tables where table_schema = %s", (schema,)
            )
        }
        return {
            name: _read(conn, schema, name, order_by, dated, as_of)
            if name in present
            else MartTable(name, (), (), False)
            for name, (order_by, dated) in MARTS.items()
        }


def _read(conn: psycopg.Connection, schema: str, name: str, order_by: str, dated: bool, as_of: dt.date) -> MartTable:
    query = sql.SQL("select * from {table}{where} order by {order_by}").format(
        table=sql.Identifier(schema, name),
        where=sql.SQL(" where as_of_date <= %(as_of)s") if dated else sql.SQL(""),
        order_by=sql.SQL(order_by),
    )
    cursor = conn.execute(query, {"as_of": as_of})
    columns = tuple(column.name for column in cursor.description or ())
    return MartTable(name, columns, tuple(cursor.fetchall()))
