"""The demo's closing report: who is ready, why, what they will be offered, what was quarantined.

Reads only the marts; prints user ids, scores, reasons and offers, never contact details.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from upshift.warehouse import WarehouseSettings

if TYPE_CHECKING:
    import psycopg

TIERS = ("Cold", "Warming", "Ready", "Overdue")
SIDES = ("client", "worker")
READINESS_MART = "user_readiness"
QUARANTINE_SUMMARY = "raw_quarantine_summary"
EXAMPLES_PER_SIDE = 3


class MartMissing(LookupError):
    """A mart the summary reads is not in the warehouse: the DAG has not run successfully yet."""


@dataclass(frozen=True)
class TierCount:
    side: str
    tier: str
    users: int
    suppressed: int


@dataclass(frozen=True)
class ExampleUser:
    side: str
    user_id: str
    score: int
    tier: str
    reasons: object
    offer_code: str | None
    suppression_reason: str | None


@dataclass(frozen=True)
class QuarantineCount:
    source_table: str
    reason: str
    rows: int


def _identifier(conn: psycopg.Connection, settings: WarehouseSettings, name: str) -> psycopg.sql.Identifier:
    """The mart `name` of the settings' marts schema; MartMissing while dbt has not built it."""
    mart = settings.relation("marts", name)
    if conn.execute("select to_regclass(%s)", (mart.as_string(conn),)).fetchone()[0] is None:
        raise MartMissing(f"{name} not found in schema {settings.layer_schema('marts')}: has the DAG run?")
    return mart


def tier_counts(conn: psycopg.Connection, settings: WarehouseSettings, as_of: date) -> list[TierCount]:
    from psycopg import sql

    counts = []
    for side in SIDES:
        rows = dict(
            (tier, (users, suppressed))
            for tier, users, suppressed in conn.execute(
                sql.SQL(
                    "select readiness_tier, count(*), count(*) filter (where is_suppressed) "
                    "from {} where as_of_date = %s and role = %s group by readiness_tier"
                ).format(_identifier(conn, settings, READINESS_MART)),
                (as_of, side),
            )
        )
        counts.extend(TierCount(side, tier, *rows.get(tier, (0, 0))) for tier in TIERS)
    return counts


def example_users(conn: psycopg.Connection, settings: WarehouseSettings, as_of: date) -> list[ExampleUser]:
    """The top-scored user of each of the warmest tiers per side, so every tier's offer shows."""
    from psycopg import sql

    examples = []
    for side in SIDES:
        rows = conn.execute(
            sql.SQL(
                """
                select user_id, readiness_score, readiness_tier, readiness_reasons, offer_code, suppression_reason
                from (
                    select distinct on (readiness_tier) *
                    from {}
                    where as_of_date = %s and role = %s and readiness_tier <> 'Cold'
                    order by readiness_tier, readiness_score desc, user_id
                ) as best_per_tier
                order by readiness_score desc, user_id
                limit %s
                """
            ).format(_identifier(conn, settings, READINESS_MART)),
            (as_of, side, EXAMPLES_PER_SIDE),
        )
        examples.extend(ExampleUser(side, *row) for row in rows)
    return examples


def quarantine_counts(conn: psycopg.Connection, settings: WarehouseSettings, as_of: date) -> list[QuarantineCount]:
    from psycopg import sql

    rows = conn.execute(
        sql.SQL(
            "select source_table, quarantine_reason, row_count from {} "
            "where as_of_date = %s order by source_table, quarantine_reason"
        ).format(_identifier(conn, settings, QUARANTINE_SUMMARY)),
        (as_of,),
    )
    return [QuarantineCount(*row) for row in rows]


def _reasons_text(reasons: object) -> str:
    """The reasons' own one-line summaries when they carry them, else the JSON as stored."""
    if (
        isinstance(reasons, list)
        and reasons
        and all(isinstance(reason, dict) and "summary" in reason for reason in reasons)
    ):
        return "; ".join(str(reason["summary"]) for reason in reasons)
    return json.dumps(reasons, sort_keys=True, default=str)


def render(as_of: date, counts: list[TierCount], examples: list[ExampleUser], quarantine: list[QuarantineCount]) -> str:
    lines = [f"Upgrade readiness as of {as_of}", ""]
    lines.append(f"{'side':<8}" + "".join(f"{tier:>10}" for tier in TIERS) + f"{'suppressed':>12}")
    for side in SIDES:
        side_counts = [count for count in counts if count.side == side]
        lines.append(
            f"{side:<8}"
            + "".join(f"{count.users:>10}" for count in side_counts)
            + f"{sum(count.suppressed for count in side_counts):>12}"
        )
    lines += ["", "Example users"]
    for user in examples:
        offer = user.offer_code or "no offer"
        if user.suppression_reason:
            offer += f" (suppressed: {user.suppression_reason})"
        lines.append(f"  {user.side} {user.user_id}: {user.tier}, score {user.score}, offer {offer}")
        lines.append(f"    reasons: {_reasons_text(user.reasons)}")
    if not examples:
        lines.append("  (no user above Cold)")
    lines += ["", "Quarantined raw rows"]
    lines += [f"  {row.source_table:<16} {row.reason:<28} {row.rows:>8}" for row in quarantine]
    if not quarantine:
        lines.append("  (none)")
    return "\n".join(lines)


def readiness_summary(conn: psycopg.Connection, settings: WarehouseSettings, as_of: date) -> str:
    return render(
        as_of,
        tier_counts(conn, settings, as_of),
        example_users(conn, settings, as_of),
        quarantine_counts(conn, settings, as_of),
    )


def render_task_states(counts: dict[str, int]) -> str:
    """One line per task state, e.g. `success  37`, most frequent first."""
    return "\n".join(f"    {state:<16}{tasks:>4} tasks" for state, tasks in counts.items())


def sync_summary(conn: psycopg.Connection, as_of: date, sync_schema: str) -> str:
    """What each destination accepted in the latest sync of `as_of`, from the sync's own log.

    Counts only (and attribute names, never values), so it is safe to print anywhere.
    """
    from psycopg import sql

    log = sql.Identifier(sync_schema, "sync_log")
    state = sql.Identifier(sync_schema, "user_state")
    exists = conn.execute("select to_regclass(%s)", (f"{sync_schema}.sync_log",)).fetchone()[0]
    if exists is None:
        return "Sent to Braze and Iterable\n  nothing yet: the sync has not run"
    rows = conn.execute(
        sql.SQL(
            """
            select destination, step, dry_run, considered, sent, unchanged, removed, failed, events_sent
            from {log}
            where as_of_date = %s
              and run_id = (select run_id from {log} where as_of_date = %s order by started_at desc limit 1)
            order by destination, step
            """
        ).format(log=log),
        (as_of, as_of),
    ).fetchall()
    lines = ["Sent to Braze and Iterable (this run)"]
    if not rows:
        lines.append(f"  nothing for {as_of}: the sync has not run for this date")
    for destination, step, dry_run, considered, sent, unchanged, removed, failed, events_sent in rows:
        what = (
            f"{events_sent:,} events sent"
            if step == "events"
            else f"{considered:,} considered, {sent:,} sent, {unchanged:,} unchanged, {removed:,} removed"
        )
        flag = " (dry run: nothing sent)" if dry_run else ""
        lines.append(f"  {destination:<9} {step:<7} {what}, {failed:,} failed{flag}")
    profiles = conn.execute(
        sql.SQL("select destination, count(*) from {} group by destination order by destination").format(state)
    ).fetchall()
    for destination, count in profiles:
        lines.append(f"  {destination:<9} now holds {count:,} upshift profiles")
    return "\n".join(lines)
