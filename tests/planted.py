"""The planted users and dirty rows of tests/fixtures/planted, and what the marts hold for them.

The fixtures are hand-written raw rows (timestamps relative to the as-of date) for users built
to fire exactly the signals their names say, and for one dirty row of every kind; the two
expected_*.csv files say where each must land. Both the dbt tests and the end-to-end DAG test
compare the marts against them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import psycopg
from psycopg import sql

PLANTED_DIR = Path(__file__).parent / "fixtures" / "planted"
READINESS_MART = "user_readiness"


def _read(name: str) -> list[dict[str, str]]:
    with (PLANTED_DIR / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def expected_readiness() -> dict[str, dict[str, str]]:
    """user_id -> the score, tier, fired signals, offer and suppression the fixture expects."""
    return {row["user_id"]: row for row in _read("expected_readiness.csv")}


def actual_readiness(conn: psycopg.Connection, marts_schema: str, user_ids: list[str]) -> dict[str, dict[str, str]]:
    """The same fields as expected_readiness.csv, read from user_readiness."""
    query = sql.SQL(
        """
        select
            user_id,
            role,
            readiness_score,
            readiness_tier,
            (
                select coalesce(string_agg(reason ->> 'signal', '|' order by reason ->> 'signal'), '')
                from jsonb_array_elements(readiness_reasons) as reason
            ),
            coalesce(offer_code, ''),
            coalesce(suppression_reason, '')
        from {}
        where user_id = any(%s)
        """
    ).format(sql.Identifier(marts_schema, READINESS_MART))
    actual = {}
    for user_id, role, score, tier, signals, offer, suppression in conn.execute(query, (user_ids,)):
        actual[user_id] = {
            "user_id": user_id,
            "role": role,
            "readiness_score": str(score),
            "readiness_tier": tier,
            "fired_signals": signals,
            "offer_code": offer,
            "suppression_reason": suppression,
        }
    return actual


def expected_quarantine() -> set[tuple[str, str, str]]:
    """(source_table, record_id or '', reason) of every planted dirty row."""
    rows = _read("expected_quarantine.csv")
    return {(row["source_table"], row["record_id"], row["quarantine_reason"]) for row in rows}


def actual_quarantine(conn: psycopg.Connection, marts_schema: str) -> set[tuple[str, str, str]]:
    """The planted rows raw_quarantine holds (record ids starting planted_, or no id at all)."""
    query = sql.SQL(
        """
        select source_table, coalesce(record_id, ''), quarantine_reason
        from {}
        where record_id like 'planted%%' or (record_id is null and record ->> 'client_id' like 'planted%%')
           or (record_id is null and record ->> 'worker_id' like 'planted%%')
        """
    ).format(sql.Identifier(marts_schema, "raw_quarantine"))
    return set(conn.execute(query).fetchall())
