"""Worker-side behaviour: proposals, profile views, contacts, and planted earnings plateaus.

Background activity scales with a heavy-tailed popularity. The planted sub-populations
get what makes their readiness signal fire as of the as-of date: a losing streak of
proposals, a profile-view spike that does not convert into contacts, and weekly
earnings that ramp up and then stop growing for the last three weeks.
"""

from __future__ import annotations

import numpy as np

from upshift.generator.catalog import CATEGORIES
from upshift.generator.clients import CATEGORY_MEDIAN, CURRENCY, PRICE_LEVEL, booking_amount_cents
from upshift.generator.frames import Frame, concat, expand
from upshift.generator.population import CATEGORY_WEIGHTS, COUNTRY_OFFSET_SECONDS, Population
from upshift.generator.tables import CANCELLED, COMPLETED, LOST, UNDECIDED, WON
from upshift.generator.timing import DAY, HOUR, sample_times

PROPOSALS_PER_30_DAYS = 9.0
VIEWS_PER_30_DAYS = 18.0
BIDDERS_PER_JOB = 4.0
RAMP_DECAY = 0.78
PLATEAU_WEEKS = 3


def worker_events(rng: np.random.Generator, population: Population, workers: np.ndarray) -> dict[str, Frame]:
    views = _profile_views(rng, population, workers)
    return {
        "proposals": _proposals(rng, population, workers),
        "profile_views": {key: value for key, value in views.items() if key != "contacted"},
        "contacts": _contacts(rng, population, views),
        "bookings": _plateau_bookings(rng, population, workers),
    }


def _proposals(rng: np.random.Generator, population: Population, workers: np.ndarray) -> Frame:
    window = population.window
    side = population.workers
    offset = COUNTRY_OFFSET_SECONDS[side.country[workers]]
    active_from = side.active_from(window)[workers]
    win_rate = population.worker_win_rate[workers]

    span_days = np.maximum(window.end - active_from, 0) / DAY
    rate = PROPOSALS_PER_30_DAYS * side.activity[workers]
    counts = np.where(side.dormant[workers], 0, rng.poisson(rate * span_days / 30))
    owner, _ = expand(counts)
    at = sample_times(rng, active_from[owner], window.end, offset[owner], "proposal")
    undecided = rng.random(len(owner)) < np.where(window.end - at < 5 * DAY, 0.7, 0.03)
    won = rng.random(len(owner)) < win_rate[owner]
    status = np.where(undecided, UNDECIDED, np.where(won, WON, LOST))
    background = {"owner": owner, "at": at, "status": status}

    losing = side.segments["low_win"][workers]
    counts = np.where(losing, 8 + rng.poisson(8, len(workers)), 0)
    owner, rank = expand(counts)
    at = sample_times(rng, window.ago(29), window.ago(1), offset[owner], "proposal")
    wins = np.floor(counts * rng.uniform(0.0, 0.2, len(workers))).astype(np.int64)
    status = np.where(rank < wins[owner], WON, LOST)
    streak = {"owner": owner, "at": at, "status": status}

    proposals = concat([background, streak])
    owner = proposals["owner"]
    category = np.where(
        rng.random(len(owner)) < 0.8, side.category[workers][owner], side.second_category[workers][owner]
    )
    return {
        "worker_id": workers[owner],
        "job_id": _job_numbers(rng, population, proposals["at"], category),
        "category": category,
        "status": proposals["status"].astype(object),
        "submitted_at": proposals["at"],
    }


def _job_numbers(rng: np.random.Generator, population: Population, at: np.ndarray, category: np.ndarray) -> np.ndarray:
    """Jobs are posted per category and day; several workers bid on each."""
    daily_bids = population.workers.size * PROPOSALS_PER_30_DAYS / 30 * CATEGORY_WEIGHTS
    slots = np.maximum(3, np.round(daily_bids / BIDDERS_PER_JOB)).astype(np.int64)
    slot = (rng.random(len(at)) * slots[category]).astype(np.int64)
    day = at // DAY
    return (day * len(CATEGORIES) + category) * 1_000_000 + slot


def _profile_views(rng: np.random.Generator, population: Population, workers: np.ndarray) -> Frame:
    window = population.window
    side = population.workers
    country = side.country[workers]
    offset = COUNTRY_OFFSET_SECONDS[country]
    active_from = side.active_from(window)[workers]
    spiking = side.segments["view_spike"][workers]
    contact_rate = population.worker_contact_rate[workers]
    monthly = VIEWS_PER_30_DAYS * population.worker_popularity[workers] * rng.lognormal(0.0, 0.4, len(workers))
    parts = []

    steady_until = np.where(spiking, window.ago(61), window.end)
    span_days = np.maximum(steady_until - active_from, 0) / DAY
    owner, _ = expand(rng.poisson(monthly * span_days / 30))
    at = sample_times(rng, active_from[owner], steady_until[owner], offset[owner], "view")
    parts.append({"owner": owner, "at": at, "contacted": rng.random(len(owner)) < contact_rate[owner]})

    before = np.where(spiking, rng.poisson(np.minimum(monthly, 60)), 0)
    owner, _ = expand(before)
    at = sample_times(rng, window.ago(59), window.ago(31), offset[owner], "view")
    parts.append({"owner": owner, "at": at, "contacted": rng.random(len(owner)) < contact_rate[owner]})

    spike = np.where(spiking, np.maximum(20, 2 * before) + 2 + rng.poisson(np.maximum(8, 1.5 * before)), 0)
    contacts = np.floor(spike * rng.uniform(0.0, 0.08, len(workers))).astype(np.int64)
    owner, rank = expand(spike)
    at = sample_times(rng, window.ago(29), window.end, offset[owner], "view")
    parts.append({"owner": owner, "at": at, "contacted": rank < contacts[owner]})

    views = concat(parts)
    owner = views["owner"]
    viewer = population.client_by_country.pick(rng, country[owner])
    return {
        "worker_id": workers[owner],
        "viewer_id": viewer,
        "viewed_at": views["at"],
        "contacted": views["contacted"],
    }


def _contacts(rng: np.random.Generator, population: Population, views: Frame) -> Frame:
    """A contact follows its profile view by minutes to hours, from the same client."""
    contacted = views["contacted"]
    viewed_at = views["viewed_at"][contacted]
    delay = 60 + rng.exponential(3 * HOUR, len(viewed_at)).astype(np.int64)
    end = population.window.end
    at = np.where(viewed_at + delay < end, viewed_at + delay, viewed_at + (end - viewed_at) // 2)
    return {
        "worker_id": views["worker_id"][contacted],
        "client_id": views["viewer_id"][contacted],
        "contacted_at": at,
    }


def _plateau_bookings(rng: np.random.Generator, population: Population, workers: np.ndarray) -> Frame:
    """Completed-booking earnings per 7-day period before as-of: a ramp, then three flat weeks.

    Week 1 is the 7 days just before as-of. Weeks 4 and older grow towards week 4 (the
    peak); weeks 3, 2 and 1 each earn no more than the week before them.
    """
    window = population.window
    side = population.workers
    weeks = min(10, window.days // 7)
    members = side.segments["plateau"][workers]
    if weeks < PLATEAU_WEEKS + 3 or not members.any():
        return {}
    country = side.country[workers]
    category = side.category[workers]
    typical = CATEGORY_MEDIAN[category] * PRICE_LEVEL[country] * 100
    peak = typical * rng.lognormal(np.log(2.5), 0.4, len(workers))

    week = np.arange(1, weeks + 1)
    ramp = peak[:, None] * RAMP_DECAY ** np.maximum(week - 4, 0)[None, :]
    keep = np.cumprod(rng.uniform(0.88, 1.0, (len(workers), PLATEAU_WEEKS)), axis=1)
    ramp[:, :PLATEAU_WEEKS] = peak[:, None] * keep[:, ::-1]
    target = np.floor(ramp).astype(np.int64)

    pair_worker, pair_week = np.nonzero(members[:, None] & np.ones((1, weeks), dtype=bool))
    pair_target = target[pair_worker, pair_week]
    n_bookings = np.clip(np.round(pair_target / typical[pair_worker]), 1, 15).astype(np.int64)
    pair, rank = expand(n_bookings)
    share = rng.gamma(4.0, size=len(pair))
    share /= np.bincount(pair, weights=share, minlength=len(pair_target))[pair]
    amount = np.floor(share * pair_target[pair]).astype(np.int64)
    shortfall = pair_target - np.bincount(pair, weights=amount, minlength=len(pair_target)).astype(np.int64)
    amount += np.where(rank == 0, shortfall[pair], 0)

    owner = pair_worker[pair]
    week_of = week[pair_week[pair]]
    lo = window.end - week_of * 7 * DAY
    at = sample_times(rng, lo, lo + 7 * DAY, COUNTRY_OFFSET_SECONDS[country[owner]], "booking")
    completed = {"owner": owner, "at": at, "amount": amount, "status": np.full(len(owner), COMPLETED)}

    cancelled_pair = np.nonzero(rng.random(len(pair_target)) < 0.15)[0]
    owner = pair_worker[cancelled_pair]
    lo = window.end - week[pair_week[cancelled_pair]] * 7 * DAY
    at = sample_times(rng, lo, lo + 7 * DAY, COUNTRY_OFFSET_SECONDS[country[owner]], "booking")
    cancelled = {
        "owner": owner,
        "at": at,
        "amount": booking_amount_cents(rng, category[owner], country[owner]),
        "status": np.full(len(owner), CANCELLED),
    }

    bookings = concat([completed, cancelled])
    owner = bookings["owner"]
    return {
        "client_id": population.client_for_worker_booking.pick(rng, country[owner]),
        "worker_id": workers[owner],
        "category": category[owner],
        "amount": bookings["amount"],
        "currency": CURRENCY[country[owner]],
        "status": bookings["status"].astype(object),
        "booked_at": bookings["at"],
    }
