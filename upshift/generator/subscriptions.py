"""Subscriptions: most users stay free (no row); some pay, upgrade, trial, or churn.

A row is one plan held over [started_at, ended_at). An upgrade ends the old row and
starts a higher-rank plan at the same instant; a converting trial ends the trial row
and starts the paid plan when the trial ends. Users in a planted sub-population are
more likely to already pay, often for a high plan, so offer suppression shows up.
"""

from __future__ import annotations

import numpy as np

from upshift.generator.catalog import Catalog
from upshift.generator.frames import Frame, concat, select
from upshift.generator.population import Side, Window
from upshift.generator.tables import NULL_TIME
from upshift.generator.timing import DAY, HOUR

STATES = ("free", "steady", "upgrade", "trial", "churned")
STATE_SHARES = np.array([0.76, 0.08, 0.05, 0.06, 0.05])
ENGAGED_STATE_SHARES = np.array([0.60, 0.17, 0.08, 0.09, 0.06])
TRIAL_DAYS = 14
TRIAL_CONVERSION = 0.45


def _between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo + (rng.random(len(lo)) * np.maximum(hi - lo, 1)).astype(np.int64)


def _rows(user, plan, started, ended, trial, prices) -> Frame:
    return {
        "user": user,
        "plan": plan,
        "mrr": np.where(trial, 0, prices[plan]),
        "is_trial": trial,
        "started_at": started,
        "ended_at": ended,
    }


def subscription_rows(
    rng: np.random.Generator,
    side: Side,
    members: np.ndarray,
    role: str,
    ids: np.ndarray,
    catalog: Catalog,
    window: Window,
) -> Frame:
    plans = catalog.paid_plans(role)
    codes = np.array([plan.plan_code for plan in plans], dtype=object)
    prices = np.array([plan.monthly_price_cents for plan in plans], dtype=np.int64)
    size = len(members)
    engaged = side.in_any_segment()[members]
    draw = rng.random(size)
    state = np.where(
        engaged,
        np.searchsorted(np.cumsum(ENGAGED_STATE_SHARES), draw, side="right"),
        np.searchsorted(np.cumsum(STATE_SHARES), draw, side="right"),
    )
    state = np.minimum(state, len(STATES) - 1)
    joined = side.created_at[members] + HOUR
    seasoned = joined <= window.ago(30)
    state = np.where((state >= STATES.index("upgrade")) & ~seasoned, STATES.index("steady"), state)
    if len(plans) < 2:
        state = np.where(state == STATES.index("upgrade"), STATES.index("steady"), state)
    plan_weights = 0.6 ** np.arange(len(plans))
    plan = rng.choice(len(plans), size=size, p=plan_weights / plan_weights.sum())
    no_end = np.full(size, NULL_TIME)
    not_trial = np.zeros(size, dtype=bool)
    parts = []
    user = np.arange(size)

    steady = state == STATES.index("steady")
    started = _between(rng, joined, np.full(size, window.end - DAY))
    parts.append(select(_rows(user, plan, started, no_end, not_trial, prices), steady))

    upgrade = state == STATES.index("upgrade")
    lower = rng.integers(0, max(len(plans) - 1, 1), size)
    higher = lower + 1 + (rng.random(size) * (len(plans) - 1 - lower)).astype(np.int64)
    moved_at = _between(rng, np.maximum(window.start, joined + 15 * DAY), np.full(size, window.end - DAY))
    first_start = _between(rng, joined, moved_at - 14 * DAY)
    parts.append(select(_rows(user, lower, first_start, moved_at, not_trial, prices), upgrade))
    parts.append(select(_rows(user, higher, moved_at, no_end, not_trial, prices), upgrade))

    trial = state == STATES.index("trial")
    trial_start = _between(rng, np.maximum(window.start, joined), np.full(size, window.end - HOUR))
    trial_end = trial_start + TRIAL_DAYS * DAY
    finished = trial_end < window.end
    converted = finished & (rng.random(size) < TRIAL_CONVERSION)
    trial_plan = np.minimum(plan, len(plans) - 1)
    ended = np.where(finished, trial_end, NULL_TIME)
    parts.append(select(_rows(user, trial_plan, trial_start, ended, ~not_trial, prices), trial))
    parts.append(select(_rows(user, trial_plan, trial_end, no_end, not_trial, prices), trial & converted))

    churned = state == STATES.index("churned")
    churn_start = _between(rng, joined, np.full(size, window.end - 20 * DAY))
    churn_end = _between(rng, np.maximum(window.start, churn_start + 7 * DAY), np.full(size, window.end - HOUR))
    parts.append(select(_rows(user, plan, churn_start, churn_end, not_trial, prices), churned))

    rows = concat(parts)
    if not rows:
        return {}
    return {
        "user_id": ids[members][rows["user"]],
        "plan_code": codes[rows["plan"]],
        "mrr": rows["mrr"],
        "is_trial": rows["is_trial"],
        "started_at": rows["started_at"],
        "ended_at": rows["ended_at"],
    }
