"""The growth review as one self-contained HTML page: inline CSS, inline SVG charts, no scripts.

One function per section; each returns the section's HTML, with an honest "no data yet" when its
mart is missing or empty. User ids appear (the Ready 30+ list); contact details never do, because
no mart the review reads holds them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from html import escape
from typing import Any

from upshift.report import formatting as fmt
from upshift.report.charts import Band, Chart, Line, Series, render
from upshift.report.headlines import Headline
from upshift.report.marts import MARTS, MartTable
from upshift.report.targets import Targets, targets_from_row

TIERS = ("Cold", "Warming", "Ready", "Overdue")
TIER_COLORS = {"Cold": "#9db4cc", "Warming": "#f2c14e", "Ready": "#ef8a2a", "Overdue": "#c8423b"}
SIDES = ("client", "worker")
GREEN, AMBER, RED, GREY, BLUE = "#2e7d32", "#f0a500", "#c62828", "#9e9e9e", "#3867a8"
TIER_MIX_DAYS = 182
RECENT_MONTHS = 12
# Days-to-upgrade buckets of the histogram: (label, upper bound exclusive).
UPGRADE_BUCKETS = (("0-6", 7), ("7-13", 14), ("14-20", 21), ("21-29", 30), ("30-59", 60), ("60+", None))
# Where a target would be stated when the headline row does not carry the targets.
UNSTATED = "flagged against the targets of growth_headlines (not recorded for this date)"

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d232b;
 margin:0;background:#f6f7f9;line-height:1.45}
main{max-width:1040px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:0 0 6px;padding-top:6px;border-top:2px solid #e6e8eb}
.meta{color:#5a6470;margin:0 0 12px}nav{font-size:14px;margin:8px 0 20px}nav a{margin-right:14px;color:#3867a8}
section{margin:22px 0}.note{color:#5a6470;font-size:14px;margin:4px 0 10px}
.banner{background:#fff4e0;border-left:4px solid #f0a500;padding:10px 14px;margin:12px 0}
.empty{background:#f3f4f6;border-left:4px solid #9e9e9e;padding:10px 14px;color:#3d4550}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(232px,1fr));gap:12px}
.card{border:1px solid #dde1e6;border-left:6px solid #9e9e9e;border-radius:6px;padding:10px 14px}
.card.green{border-left-color:#2e7d32}.card.amber{border-left-color:#f0a500}.card.red{border-left-color:#c62828}
.card h3{font-size:14px;font-weight:600;margin:0;color:#3d4550}.card .value{font-size:28px;font-weight:700;margin:2px 0}
.card .change{font-size:13px;color:#3d4550}.card .detail{font-size:13px;color:#5a6470;margin-top:4px}
.flag{display:inline-block;font-size:12px;font-weight:600;padding:1px 8px;border-radius:10px;color:#fff;
 background:#9e9e9e;vertical-align:middle;text-transform:uppercase;letter-spacing:.03em}
.flag.green{background:#2e7d32}.flag.amber{background:#f0a500;color:#1d232b}.flag.red{background:#c62828}
.flag.none{background:#fff;color:#5a6470;border:1px solid #c5cad1}
.stats{display:flex;flex-wrap:wrap;gap:28px;margin:8px 0 12px}.stat b{display:block;font-size:24px}
.stat span{font-size:13px;color:#5a6470}
table{border-collapse:collapse;font-size:14px;margin:8px 0 4px;width:100%}
th,td{padding:5px 8px;border-bottom:1px solid #e6e8eb;text-align:left}th{background:#f3f4f6;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
figure.chart{margin:10px 0 16px}figure.chart figcaption{font-weight:600;font-size:15px;margin-bottom:4px}
svg{width:100%;height:auto;display:block}svg .axis{font-size:12px;fill:#5a6470}
.legend{font-size:13px;color:#3d4550;margin-top:2px}.key{margin-right:16px;white-space:nowrap}
.key i{display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:-1px;border-radius:2px}
.key i.dash{height:0;border-top:2px dashed;border-radius:0;vertical-align:3px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:20px;align-items:start}
@media (max-width:760px){.grid2{grid-template-columns:1fr}}
footer{color:#5a6470;font-size:13px;margin-top:36px;border-top:1px solid #e6e8eb;padding-top:10px}
"""

Row = dict[str, Any]


def render_page(
    marts: dict[str, MartTable],
    headlines: Sequence[Headline],
    headline_row: Row | None,
    as_of: dt.date,
    schema: str,
) -> str:
    # Every threshold the page states or draws comes from the headline row's target columns.
    targets = targets_from_row(headline_row)
    sections = (
        ("headlines", "Headline numbers", _headlines_section(marts["growth_headlines"], headlines, as_of, schema)),
        ("tier-mix", "Tier mix over time", _tier_mix_section(marts["tier_mix_daily"], as_of, schema)),
        ("expansion-mrr", "Expansion MRR", _expansion_section(marts["mrr_movements"], targets, schema)),
        (
            "time-to-upgrade",
            "Time to upgrade",
            _time_to_upgrade_section(
                marts["time_to_upgrade"], marts["ready_without_conversion"], headlines, headline_row, targets, schema
            ),
        ),
        ("retention", "Upgrade retention at 90 days", _retention_section(marts["upgrade_retention"], targets, schema)),
        (
            "conversion",
            "Conversion and lift per trigger",
            _conversion_section(marts["upsell_lift"], marts["upsell_conversion"], targets, schema),
        ),
        ("addressable-gap", "Addressable gap", _gap_section(marts["addressable_gap"], schema)),
        ("signal-backtest", "Signal backtest", _backtest_section(marts["signal_backtest"], schema)),
    )
    nav = "".join(f'<a href="#{section_id}">{escape(title)}</a>' for section_id, title, _ in sections)
    body = "".join(
        f'<section id="{section_id}"><h2>{escape(title)}</h2>{content}</section>'
        for section_id, title, content in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Growth review - {fmt.day(as_of)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>Weekly growth review</h1>"
        f'<p class="meta">As of {fmt.day(as_of)} (events before that midnight UTC) - from the marts in '
        f"<code>{escape(schema)}</code>. Flags follow the upgrade-readiness guide's targets.</p>"
        f"{_stale_banner(marts, as_of)}<nav>{nav}</nav>{body}"
        "<footer>Built by upshift from the dbt metrics marts (definitions: "
        "dbt_project/models/marts/metrics). Every table is also a CSV next to this file.</footer>"
        "</main></body></html>"
    )


def _stale_banner(marts: dict[str, MartTable], as_of: dt.date) -> str:
    """Most marts hold only the latest dbt run's date: say so when that is not the review's."""
    other = {
        day for name, table in marts.items() if not MARTS[name][1] for day in table.measured_as_of() if day != as_of
    }
    if not other:
        return ""
    dates = ", ".join(fmt.day(day) for day in sorted(other))
    return (
        f'<p class="banner">Some tables were measured as of {dates}, not {fmt.day(as_of)}: the marts hold the '
        f"latest dbt run. Rerun upgrade_readiness for {as_of.isoformat()} to review that date exactly.</p>"
    )


# --- sections -------------------------------------------------------------------------------


def _headlines_section(table: MartTable, headlines: Sequence[Headline], as_of: dt.date, schema: str) -> str:
    if not table.exists or not table.rows:
        return _empty(table, schema)
    if all(headline.value is None for headline in headlines):
        return _empty_text(
            f"No headline row for {fmt.day(as_of)} yet: run upgrade_readiness for {as_of.isoformat()} first."
        )
    cards = "".join(
        f'<div class="card {escape(headline.flag or "none")}" data-headline="{escape(headline.key)}">'
        f"<h3>{escape(headline.label)} {_flag(headline.flag)}</h3>"
        f'<div class="value">{escape(headline.display)}</div>'
        f'<div class="change">{escape(headline.change_display or "")}</div>'
        f'<div class="detail">{escape(headline.detail)}</div></div>'
        for headline in headlines
    )
    return (
        '<p class="note">Each number against the guide\'s target, and its change since the review a week '
        "earlier.</p>"
        f'<div class="cards">{cards}</div>'
    )


def _tier_mix_section(table: MartTable, as_of: dt.date, schema: str) -> str:
    if not table.rows:
        return _empty(table, schema, what="Nobody has been scored on or before this date.")
    counts: dict[str, dict[dt.date, Counter[str]]] = {side: defaultdict(Counter) for side in SIDES}
    first_day = as_of - dt.timedelta(days=TIER_MIX_DAYS)
    for row in table.records():
        if row["as_of_date"] >= first_day and row["role"] in counts:
            counts[row["role"]][row["as_of_date"]][row["readiness_tier"]] += int(row["user_count"])
    charts = []
    for side in SIDES:
        days = sorted(counts[side])
        if not days:
            charts.append(_empty_text(f"No {side}s scored yet."))
            continue
        series = [Series(tier, TIER_COLORS[tier], [float(counts[side][day][tier]) for day in days]) for tier in TIERS]
        chart = Chart(
            f"tier-mix-{side}",
            f"{side.capitalize()}s per tier",
            [f"{day:%d %b}" for day in days],
            series,
            stacked=True,
            half=True,
        )
        latest = counts[side][days[-1]]
        summary = ", ".join(f"{fmt.count(latest[tier])} {tier}" for tier in TIERS)
        charts.append(f'<div>{render(chart)}<p class="note">On {fmt.day(days[-1])}: {summary}.</p></div>')
    return (
        f'<p class="note">Users per readiness tier on each scored date (last {TIER_MIX_DAYS // 7} weeks; the full '
        "history is in tier_mix_daily.csv).</p>" + f'<div class="grid2">{"".join(charts)}</div>'
    )


def _expansion_section(table: MartTable, targets: Targets | None, schema: str) -> str:
    if not table.rows:
        return _empty(table, schema, what="No paid subscription yet.")
    months = table.records()[-RECENT_MONTHS:]
    labels = [fmt.month(row["month_start"]) for row in months]
    amounts = Chart(
        "expansion-mrr",
        "New and expansion MRR per month",
        labels,
        [
            Series("New MRR", BLUE, [float(row["new_mrr"]) for row in months]),
            Series("Expansion MRR", GREEN, [float(row["expansion_mrr"]) for row in months]),
        ],
        stacked=True,
        half=True,
    )
    share = Chart(
        "expansion-share",
        "Expansion share of new MRR",
        labels,
        [
            Series(
                name,
                color,
                [_when(row, "expansion_share_flag", flag, "expansion_share_of_new_mrr_pct") for row in months],
            )
            for name, color, flag in zip(_expansion_series_names(targets), (GREEN, AMBER, RED), FLAGS, strict=True)
        ],
        unit="%",
        stacked=True,
        half=True,
        bands=_expansion_bands(targets),
    )
    rows = [
        [
            fmt.month(row["month_start"]),
            fmt.money(row["new_mrr"]),
            fmt.money(row["expansion_mrr"]),
            fmt.money(row["reactivation_mrr"]),
            fmt.money(row["contraction_mrr"]),
            fmt.money(row["churned_mrr"]),
            fmt.money(row["net_new_mrr"]),
            fmt.money(row["ending_mrr"]),
            _or_dash(row["expansion_share_of_new_mrr_pct"], fmt.percent),
            _flag(row["expansion_share_flag"]),
        ]
        for row in reversed(months)
    ]
    bands = (
        f"healthy at {_healthy_range(targets)} and underdeveloped below "
        f"{fmt.edge(targets.expansion_share_underdeveloped_pct)}%"
        if targets
        else UNSTATED
    )
    return (
        '<p class="note">Expansion is existing paying users raising their MRR; its share of new MRR '
        f"(new + expansion) is {bands}. Amounts in the plan catalog's "
        f"currency; the current month is measured up to the as-of date. Last {RECENT_MONTHS} months; all months "
        "in mrr_movements.csv.</p>"
        f'<div class="grid2">{render(amounts)}{render(share)}</div>'
        + _table(
            [
                "Month",
                "New",
                "Expansion",
                "Reactivation",
                "Contraction",
                "Churn",
                "Net new",
                "Ending MRR",
                "Share",
                "Flag",
            ],
            rows,
            numeric=set(range(1, 9)),
            raw_columns={9},
        )
    )


def _time_to_upgrade_section(
    upgrades: MartTable,
    stuck: MartTable,
    headlines: Sequence[Headline],
    headline_row: Row | None,
    targets: Targets | None,
    schema: str,
) -> str:
    parts = []
    if not upgrades.rows:
        parts.append(_empty(upgrades, schema, what="No upgrade after a readiness trigger yet."))
    else:
        parts.append(_time_to_upgrade_stats(upgrades, headlines, headline_row or {}, targets))
    parts.append("<h3>Sitting in Ready 30+ days without converting</h3>")
    if not stuck.exists:
        parts.append(_empty(stuck, schema))
    elif not stuck.rows:
        parts.append('<p class="empty">Nobody has sat at Ready or above for 30+ days without converting.</p>')
    else:
        # The longest streaks (marts.READY_LIST_LENGTH of them), and the whole list's users per side.
        shown = stuck.records()
        listed = sum(stuck.counts.values())
        more = listed - len(shown)
        rows = [
            [
                row["user_id"],
                row["role"],
                row["readiness_tier"],
                fmt.count(row["readiness_score"]),
                fmt.count(row["days_at_ready"]),
                fmt.day(row["ready_streak_started_on"]),
            ]
            for row in shown
        ]
        parts.append(
            f'<p class="note"><b data-count="ready-30-plus">{fmt.plural(listed, "user")}</b> ('
            + ", ".join(fmt.plural(stuck.counts.get(side, 0), side) for side in SIDES)
            + "). When this list grows, the offer or the channel mix is wrong. Longest first"
            + (f"; {fmt.count(more)} more in ready_without_conversion.csv" if more else "")
            + ".</p>"
            + _table(["User id", "Side", "Tier", "Score", "Days at Ready", "Since"], rows, numeric={3, 4})
        )
    return "".join(parts)


def _time_to_upgrade_stats(
    upgrades: MartTable, headlines: Sequence[Headline], headline_row: Row, targets: Targets | None
) -> str:
    # Upgrades per duration (days_to_upgrade) and is_within_target, not one row per upgrade.
    durations = upgrades.records()
    measured = sum(row["upgrades"] for row in durations)
    within_target = f"within {fmt.edge(targets.time_to_upgrade_target_days)} days" if targets else "within the target"
    after_target = f"after {fmt.edge(targets.time_to_upgrade_target_days)} days" if targets else "after the target"
    median = next(headline for headline in headlines if headline.key == "time_to_upgrade")
    stats = (
        '<div class="stats">'
        f'<div class="stat"><b>{escape(median.display)}</b><span>median {_flag(median.flag)}</span></div>'
        f'<div class="stat"><b>{fmt.days(headline_row.get("p75_days_to_upgrade"))}</b>'
        "<span>75th percentile</span></div>"
        f'<div class="stat"><b>{fmt.percent(headline_row.get("upgrades_within_target_pct"))}</b>'
        f"<span>{within_target} (target: most)</span></div>"
        f'<div class="stat"><b>{fmt.count(headline_row.get("upgrades_measured"))}</b>'
        "<span>upgrades measured</span></div>"
        "</div>"
        '<p class="note">These numbers count the upgrades of the last 90 days.</p>'
    )
    within = [0.0] * len(UPGRADE_BUCKETS)
    beyond = [0.0] * len(UPGRADE_BUCKETS)
    for row in durations:
        index = _bucket(float(row["days_to_upgrade"]))
        (within if row["is_within_target"] else beyond)[index] += row["upgrades"]
    chart = Chart(
        "time-to-upgrade",
        f"Days from the first readiness trigger to the upgrade ({fmt.count(measured)} upgrades)",
        [label for label, _ in UPGRADE_BUCKETS],
        [Series(within_target.capitalize(), GREEN, within), Series(after_target.capitalize(), AMBER, beyond)],
        stacked=True,
        half=True,
    )
    return (
        f'<div class="grid2"><div>{stats}'
        '<p class="note">Measured from the first trigger of the episode that led to the upgrade; users who '
        "upgraded before any trigger are not counted. The chart shows every measured upgrade "
        "(time_to_upgrade.csv).</p></div>" + render(chart) + "</div>"
    )


def _retention_section(table: MartTable, targets: Targets | None, schema: str) -> str:
    if not table.rows:
        return _empty(table, schema, what="No upgrade is 90 days old yet.")
    cohorts = table.records()[-RECENT_MONTHS:]
    labels = [fmt.month(row["cohort_month"]) for row in cohorts]
    floor = fmt.edge(targets.retention_floor_pct) if targets else ""
    above, below = (f"{floor}% or more", f"Below {floor}%") if targets else _flag_names("green", "red")
    chart = Chart(
        "retention",
        "Share of upgraders still on the plan (or higher) 90 days later, by upgrade month",
        labels,
        [
            Series(above, GREEN, [_when(row, "retention_flag", "green", "retention_pct") for row in cohorts]),
            Series(below, RED, [_when(row, "retention_flag", "red", "retention_pct") for row in cohorts]),
        ],
        unit="%",
        stacked=True,
        half=True,
        y_max=100,
        lines=(Line(targets.retention_floor_pct, f"{floor}% floor", RED),) if targets else (),
    )
    rows = [
        [
            fmt.month(row["cohort_month"]),
            fmt.count(row["upgrades"]),
            fmt.count(row["retained"]),
            fmt.percent(row["retention_pct"]),
            _flag(row["retention_flag"]),
        ]
        for row in reversed(cohorts)
    ]
    return (
        '<p class="note">'
        + (f"Below {floor}% the offer oversold what the tier delivers." if targets else f"Cohorts are {UNSTATED}.")
        + " Cohorts count upgrades at least "
        f"90 days old; last {RECENT_MONTHS} cohorts shown.</p>"
        + '<div class="grid2">'
        + render(chart)
        + _table(["Cohort", "Upgrades", "Retained", "Retention", "Flag"], rows, numeric={1, 2, 3}, raw_columns={4})
        + "</div>"
    )


def _conversion_section(lift: MartTable, conversion: MartTable, targets: Targets | None, schema: str) -> str:
    if not lift.rows:
        return _empty(lift, schema, what="No trigger is 30 days old yet, so none can have converted.")
    records = lift.records()
    per_trigger = [row for row in records if row["trigger_type"] != "all"]
    chart = Chart(
        "conversion",
        "30-day conversion: triggered users against the holdout",
        [f"{fmt.label(row['trigger_type'])} / {row['offer_code']}" for row in per_trigger],
        [
            Series("Treatment", BLUE, [_float(row["treatment_rate_pct"]) for row in per_trigger]),
            Series("Holdout", GREY, [_float(row["holdout_rate_pct"]) for row in per_trigger]),
        ],
        unit="%",
        lines=_conversion_lines(targets),
    )
    rows = [
        [
            "All triggers" if row["trigger_type"] == "all" else fmt.label(row["trigger_type"]),
            "all" if row["offer_code"] == "all" else row["offer_code"],
            f"{fmt.percent(row['treatment_rate_pct'])} of {fmt.count(row['treatment_users'])}",
            _or_dash(
                row["holdout_rate_pct"],
                lambda value, row=row: f"{fmt.percent(value)} of {fmt.count(row['holdout_users'])}",
            ),
            _or_dash(row["lift_pct_points"], fmt.points),
            _interval(row),
        ]
        for row in records
    ]
    channel_rows = [
        [
            fmt.label(row["trigger_type"]),
            row["offer_code"] or "",
            row["channel"],
            row["arm"],
            fmt.count(row["users_triggered"]),
            fmt.count(row["users_converted"]),
            fmt.percent(row["conversion_rate_pct"]),
        ]
        for row in conversion.records()
    ]
    return (
        '<p class="note">Users converted within 30 days of a trigger, treatment against the holdout, with the '
        "absolute lift and its 95% confidence interval. Triggers younger than 30 days are not counted yet.</p>"
        + (render(chart) if per_trigger else "")
        + _table(["Trigger", "Offer", "Treatment", "Holdout", "Lift", "95% interval"], rows, numeric={2, 3, 4, 5})
        + (
            "<details><summary>Per channel (first channel the offer was shown on)</summary>"
            + _table(
                ["Trigger", "Offer", "Channel", "Arm", "Triggered", "Converted", "Rate"],
                channel_rows,
                numeric={4, 5, 6},
            )
            + "</details>"
            if channel_rows
            else ""
        )
    )


def _gap_section(table: MartTable, schema: str) -> str:
    if not table.exists:
        return _empty(table, schema)
    # Clients and MRR at stake per current plan, most clients first, not one row per client.
    plans = table.records()
    if not plans:
        return _empty_text(
            "No clients in the gap: none with 3+ completed bookings in the last 60 days has gone without an "
            "upgrade offer (or nothing has been scored yet)."
        )
    clients = sum(row["clients"] for row in plans)
    total = sum(row["mrr_at_stake"] for row in plans)
    rows = [[row["plan_code"], fmt.count(row["clients"]), fmt.money(row["mrr_at_stake"])] for row in plans]
    return (
        '<div class="grid2"><div><div class="stats">'
        f'<div class="stat"><b data-count="addressable-clients">{fmt.count(clients)}</b>'
        "<span>active clients never shown an offer</span></div>"
        f'<div class="stat"><b>{fmt.money(total)}</b><span>MRR at stake</span></div></div>'
        '<p class="note">Clients with 3+ completed bookings in the last 60 days who were never presented an '
        "upgrade offer: the guide's immediate, addressable revenue gap. MRR at stake is the price of the plan "
        "the Ready client offer sells minus what they pay now (list in addressable_gap.csv).</p></div>"
        + _table(["Current plan", "Clients", "MRR at stake"], rows, numeric={1, 2})
        + "</div>"
    )


def _backtest_section(table: MartTable, schema: str) -> str:
    if not table.exists:
        return _empty(table, schema)
    if not table.rows:
        return (
            '<p class="empty">No backtest yet: it needs 30 days of scoring history, so that a conversion window '
            "has closed for the oldest scores. Keep the daily DAG running and it fills in.</p>"
        )
    rows = [
        [
            row["role"],
            row["segment"].replace("tier:", "Tier ")
            if row["segment"].startswith("tier:")
            else fmt.label(row["segment"]),
            fmt.count(row["fired_observations"]),
            fmt.percent(row["fired_conversion_rate_pct"]),
            _or_dash(row["not_fired_observations"], fmt.count),
            _or_dash(row["not_fired_conversion_rate_pct"], fmt.percent),
            _or_dash(row["lift_pct_points"], fmt.points),
        ]
        for row in table.records()
    ]
    return (
        '<p class="note">Per signal, the 30-day conversion rate of scored user-days where it fired against those '
        "where it did not; tier rows show how each tier converts. Evidence for tuning weights and thresholds.</p>"
        + _table(
            ["Side", "Signal or tier", "Fired", "Converted when fired", "Not fired", "Converted when not", "Lift"],
            rows,
            numeric={2, 3, 4, 5, 6},
        )
    )


# --- targets ---------------------------------------------------------------------------------

FLAGS = ("green", "amber", "red")


def _flag_names(*flags: str) -> tuple[str, ...]:
    """Series named for their flag when the row carries no targets to name them by."""
    return tuple(fmt.flag_word(flag).capitalize() for flag in flags)


def _expansion_series_names(targets: Targets | None) -> tuple[str, ...]:
    if targets is None:
        return _flag_names(*FLAGS)
    healthy, underdeveloped = (
        fmt.edge(targets.expansion_share_healthy_pct),
        fmt.edge(targets.expansion_share_underdeveloped_pct),
    )
    return (f"{healthy}% or more", f"{underdeveloped}-{healthy}%", f"Below {underdeveloped}%")


def _expansion_bands(targets: Targets | None) -> tuple[Band, ...]:
    if targets is None:
        return ()
    low, high = targets.expansion_share_healthy_pct, targets.expansion_share_healthy_max_pct
    underdeveloped = targets.expansion_share_underdeveloped_pct
    return (
        Band(0, underdeveloped, f"Underdeveloped, below {fmt.edge(underdeveloped)}%", "#f4b4b4"),
        Band(low, high, f"Healthy, {_healthy_range(targets)}", "#b9dfb9"),
    )


def _healthy_range(targets: Targets) -> str:
    return f"{fmt.edge(targets.expansion_share_healthy_pct)}-{fmt.edge(targets.expansion_share_healthy_max_pct)}%"


def _conversion_lines(targets: Targets | None) -> tuple[Line, ...]:
    if targets is None:
        return ()
    triggered, broadcast = targets.conversion_triggered_target_pct, targets.conversion_broadcast_ceiling_pct
    return (
        Line(triggered, f"{fmt.edge(triggered)}%: guide's floor for triggered", GREEN),
        Line(broadcast, f"{fmt.edge(broadcast)}%: broadcast ceiling", AMBER),
    )


# --- pieces ---------------------------------------------------------------------------------


def _empty(table: MartTable, schema: str, *, what: str = "") -> str:
    if not table.exists:
        return _empty_text(
            f"No data yet: {table.name} is not in {schema}. Run the upgrade_readiness DAG "
            "(or python -m upshift.cli run) to build the metrics marts."
        )
    return _empty_text(f"No data yet. {what}".strip())


def _empty_text(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def _flag(flag: str | None) -> str:
    if flag is None:
        return '<span class="flag none">no target</span>'
    return f'<span class="flag {escape(flag)}" title="{escape(flag)}">{escape(fmt.flag_word(flag))}</span>'


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: Collection[int] = (),
    raw_columns: Collection[int] = (),
) -> str:
    """A table of already formatted cells; raw_columns hold HTML (flags), the rest is escaped."""

    def cell(index: int, value: str, tag: str) -> str:
        css = ' class="num"' if index in numeric else ""
        return f"<{tag}{css}>{value if index in raw_columns and tag == 'td' else escape(str(value))}</{tag}>"

    head = "".join(cell(index, header, "th") for index, header in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(cell(index, value, "td") for index, value in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _interval(row: Row) -> str:
    low, high = row["lift_ci_low_pct_points"], row["lift_ci_high_pct_points"]
    if low is None or high is None:
        return "no holdout"
    return f"{fmt.points(low)} to {fmt.points(high)}"


def _bucket(days: float) -> int:
    return next(index for index, (_, upper) in enumerate(UPGRADE_BUCKETS) if upper is None or days < upper)


def _when(row: Row, flag_column: str, flag: str, value_column: str) -> float | None:
    """The value when the row carries this flag: one chart series per flag colours the bars."""
    return _float(row[value_column]) if row[flag_column] == flag else None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _or_dash(value: Any, show: Callable[[Any], str]) -> str:
    return "-" if value is None else show(value)
