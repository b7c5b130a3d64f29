"""The review's headline numbers: this week's growth_headlines row, its flags, and the change
against the row of seven days earlier."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from upshift.report import formatting as fmt
from upshift.report.marts import MartTable
from upshift.report.targets import NOT_RECORDED, Targets, targets_from_row

WEEK = dt.timedelta(days=7)


@dataclass(frozen=True)
class Headline:
    """One headline number as shown and printed; `change` is against the week before."""

    key: str
    label: str
    value: float | None
    display: str
    flag: str | None
    detail: str
    change: float | None
    change_display: str


@dataclass(frozen=True)
class _Spec:
    key: str
    label: str
    column: str
    flag_column: str | None
    show: Callable[[Any], str]
    # How a change reads: +1 when up is better, -1 when down is better, 0 when neither.
    better: int
    change_unit: Callable[[float], str]
    detail: Callable[[dict[str, Any]], str]
    # The sentence stating the headline's target and bands, from the row's own target columns.
    target: Callable[[Targets], str] | None = None


def _pts(delta: float) -> str:
    return fmt.points(delta)


def _days(delta: float) -> str:
    return f"{delta:+.1f} days"


def _users(delta: float) -> str:
    return f"{delta:+,.0f}"


SPECS = (
    _Spec(
        "expansion_share",
        "Expansion share of new MRR",
        "expansion_share_of_new_mrr_pct",
        "expansion_share_flag",
        fmt.percent,
        +1,
        _pts,
        lambda row: (
            f"{fmt.money(row['expansion_mrr'])} expansion of "
            f"{fmt.money((row['expansion_mrr'] or 0) + (row['new_mrr'] or 0))} new MRR in "
            f"{fmt.month(row['expansion_month'])}."
        ),
        lambda targets: (
            f"Healthy {fmt.edge(targets.expansion_share_healthy_pct)}-"
            f"{fmt.edge(targets.expansion_share_healthy_max_pct)}%; below "
            f"{fmt.edge(targets.expansion_share_underdeveloped_pct)}% the upsell motion is underdeveloped."
        ),
    ),
    _Spec(
        "time_to_upgrade",
        "Median time to upgrade",
        "median_days_to_upgrade",
        "time_to_upgrade_flag",
        fmt.days,
        -1,
        _days,
        lambda row: (
            f"p75 {fmt.days(row['p75_days_to_upgrade'])}; {fmt.percent(row['upgrades_within_target_pct'])} "
            f"within the target, of {fmt.count(row['upgrades_measured'])} upgrades in the last 90 days."
        ),
        lambda targets: (
            f"Target: within {fmt.edge(targets.time_to_upgrade_target_days)} days; amber within "
            f"{fmt.edge(targets.time_to_upgrade_amber_max_days)}."
        ),
    ),
    _Spec(
        "ready_without_conversion",
        "In Ready 30+ days without converting",
        "ready_without_conversion_users",
        "ready_without_conversion_flag",
        fmt.count,
        -1,
        _users,
        lambda row: "",
        lambda targets: (
            f"Green under {fmt.edge(targets.ready_without_conversion_green_below_pct)}% of Ready and Overdue "
            f"users, amber under {fmt.edge(targets.ready_without_conversion_amber_below_pct)}%: more means the "
            "offer or channel is wrong."
        ),
    ),
    _Spec(
        "retention",
        "90-day upgrade retention",
        "retention_pct",
        "retention_flag",
        fmt.percent,
        +1,
        _pts,
        lambda row: f"Latest mature cohort, {fmt.month(row['retention_cohort_month'])}.",
        lambda targets: f"Below {fmt.edge(targets.retention_floor_pct)}% the offer oversold what the tier delivers.",
    ),
    _Spec(
        "conversion",
        "Signal-triggered conversion",
        "treatment_rate_pct",
        "conversion_flag",
        fmt.percent,
        +1,
        _pts,
        lambda row: f"Holdout {fmt.percent(row['holdout_rate_pct'])}.",
        lambda targets: (
            f"Green from {fmt.edge(targets.conversion_triggered_target_pct)}% (signal-triggered offers), amber "
            f"above {fmt.edge(targets.conversion_broadcast_ceiling_pct)}% (what broadcasts reach)."
        ),
    ),
    _Spec(
        "lift",
        "Lift against the holdout",
        "lift_pct_points",
        "lift_flag",
        fmt.points,
        +1,
        _pts,
        lambda row: (
            f"95% interval {fmt.points(row['lift_ci_low_pct_points'])} to {fmt.points(row['lift_ci_high_pct_points'])}."
            if row["lift_ci_low_pct_points"] is not None
            else "No holdout users to compare against yet."
        ),
        lambda targets: (
            f"Green when its low end is above {fmt.edge(targets.lift_ci_low_green_above_pct_points)} pts, amber "
            f"when the lift is above {fmt.edge(targets.lift_amber_above_pct_points)} pts."
        ),
    ),
    _Spec(
        "addressable_gap",
        "Addressable gap",
        "addressable_clients",
        None,
        lambda value: f"{fmt.count(value)} clients" if value is not None else fmt.NO_DATA,
        0,
        _users,
        lambda row: (
            f"{fmt.money(row['addressable_mrr'])} MRR at stake: clients with 3+ bookings in 60 days "
            "never shown an upgrade offer."
        ),
    ),
)


def format_headlines(headlines: Sequence[Headline]) -> str:
    """One line per headline - label, value, flag, change - for the CLI and the demo's output."""
    width = max(len(headline.label) for headline in headlines)
    lines = []
    for headline in headlines:
        flag = f"[{headline.flag}]" if headline.flag else "[no target]"
        change = f"  {headline.change_display}" if headline.change_display else ""
        lines.append(f"  {headline.label:<{width}}  {headline.display:>14}  {flag:<11}{change}")
    return "\n".join(lines)


def headline_rows(table: MartTable, as_of: dt.date) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """This as-of date's growth_headlines row and the one seven days earlier, when they exist."""
    by_date = {record["as_of_date"]: record for record in table.records()}
    return by_date.get(as_of), by_date.get(as_of - WEEK)


def build_headlines(table: MartTable, as_of: dt.date) -> tuple[Headline, ...]:
    current, previous = headline_rows(table, as_of)
    targets = targets_from_row(current)
    return tuple(_headline(spec, current, previous, targets, as_of) for spec in SPECS)


def _headline(
    spec: _Spec,
    current: dict[str, Any] | None,
    previous: dict[str, Any] | None,
    targets: Targets | None,
    as_of: dt.date,
) -> Headline:
    value = _number(current, spec.column)
    if current is None or value is None:
        detail = "" if current is None else _detail(spec, current, targets)
        return Headline(spec.key, spec.label, None, fmt.NO_DATA, "grey", detail, None, "")
    before = _number(previous, spec.column)
    change = None if before is None else value - before
    return Headline(
        key=spec.key,
        label=spec.label,
        value=value,
        display=spec.show(current[spec.column]),
        flag=current[spec.flag_column] if spec.flag_column else None,
        detail=_detail(spec, current, targets),
        change=change,
        change_display=_change(spec, change, previous is not None, as_of - WEEK),
    )


def _detail(spec: _Spec, row: dict[str, Any], targets: Targets | None) -> str:
    if spec.target is None:
        return spec.detail(row)
    return " ".join(part for part in (spec.detail(row), spec.target(targets) if targets else NOT_RECORDED) if part)


def _change(spec: _Spec, change: float | None, had_row: bool, week_before: dt.date) -> str:
    if change is None:
        reason = "no number" if had_row else "no review"
        return f"{reason} for {fmt.day(week_before)}"
    if abs(change) < 1e-9:
        return f"no change since {fmt.day(week_before)}"
    verdict = ""
    if spec.better:
        verdict = " (better)" if change * spec.better > 0 else " (worse)"
    return f"{spec.change_unit(change)} since {fmt.day(week_before)}{verdict}"


def _number(row: dict[str, Any] | None, column: str) -> float | None:
    if row is None or row.get(column) is None:
        return None
    return float(row[column])
