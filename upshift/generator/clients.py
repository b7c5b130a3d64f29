"""Client-side behaviour: bookings and searches for a chunk of clients.

Background activity is heavy-tailed (most clients hire once in a while, a few hire
weekly). On top of it, the planted sub-populations get the behaviour that makes their
readiness signal fire as of the as-of date: spend frequency, category breadth, repeat
hire and search friction.
"""

from __future__ import annotations

import numpy as np

from upshift.generator.catalog import CATEGORIES, COUNTRIES
from upshift.generator.frames import Frame, concat, expand
from upshift.generator.population import CATEGORY_WEIGHTS, COUNTRY_OFFSET_SECONDS, Population
from upshift.generator.tables import CANCELLED, COMPLETED, PENDING
from upshift.generator.timing import DAY, sample_times

BOOKINGS_PER_30_DAYS = 0.15
BROWSE_SEARCHES_PER_30_DAYS = 1.2
SEARCHES_BEFORE_BOOKING = 3.0
UNSET = -1

CATEGORY_MEDIAN = np.array([category.median_usd for category in CATEGORIES])
CATEGORY_SIGMA = np.array([category.sigma for category in CATEGORIES])
PRICE_LEVEL = np.array([country.price_level for country in COUNTRIES])
CURRENCY = np.array([country.currency for country in COUNTRIES], dtype=object)


def booking_amount_cents(rng: np.random.Generator, category: np.ndarray, country: np.ndarray) -> np.ndarray:
    """Log-normal price by category, in the client's currency; most quotes are whole units."""
    price = CATEGORY_MEDIAN[category] * PRICE_LEVEL[country] * rng.lognormal(0.0, CATEGORY_SIGMA[category])
    cents = np.maximum(np.round(price * 100), 100).astype(np.int64)
    whole = rng.random(len(cents)) < 0.6
    return np.where(whole, cents // 100 * 100, cents)


def booking_status(rng: np.random.Generator, booked_at: np.ndarray, as_of: int) -> np.ndarray:
    """Recent bookings are often still pending; older ones mostly completed, some cancelled."""
    recent = (as_of - booked_at) < 3 * DAY
    draw = rng.random(len(booked_at))
    pending = draw < np.where(recent, 0.55, 0.015)
    cancelled = ~pending & (rng.random(len(booked_at)) < 0.09)
    return np.where(pending, PENDING, np.where(cancelled, CANCELLED, COMPLETED)).astype(object)


def _other_category(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.choice(len(CATEGORIES), size=size, p=CATEGORY_WEIGHTS)


def _bookings(client: np.ndarray, at: np.ndarray, category: np.ndarray, **fixed) -> Frame:
    size = len(client)
    return {
        "client": client,
        "at": at,
        "category": category,
        "worker": fixed.get("worker", np.full(size, UNSET)),
        "completed": np.full(size, fixed.get("completed", False)),
        "status": fixed.get("status", np.full(size, "", dtype=object)),
    }


def client_events(rng: np.random.Generator, population: Population, clients: np.ndarray) -> dict[str, Frame]:
    window = population.window
    side = population.clients
    country = side.country[clients]
    offset = COUNTRY_OFFSET_SECONDS[country]
    primary = side.category[clients]
    active_from = side.active_from(window)[clients]
    active = ~side.dormant[clients]
    segment = {name: members[clients] for name, members in side.segments.items()}
    friction = segment["search_friction"]
    hire_until = np.where(friction, window.ago(31), window.end)
    parts: list[Frame] = []

    span_days = np.maximum(hire_until - active_from, 0) / DAY
    counts = np.where(active, rng.poisson(BOOKINGS_PER_30_DAYS * side.activity[clients] * span_days / 30), 0)
    owner, _ = expand(counts)
    at = sample_times(rng, active_from[owner], hire_until[owner], offset[owner], "booking")
    category = np.where(rng.random(len(owner)) < 0.85, primary[owner], _other_category(rng, len(owner)))
    parts.append(_bookings(owner, at, category))

    counts = np.where(segment["frequent"], 3 + rng.poisson(1.5, len(clients)), 0)
    owner, _ = expand(counts)
    at = sample_times(rng, window.ago(58), window.end, offset[owner], "booking")
    parts.append(_bookings(owner, at, primary[owner], completed=True))

    counts = np.where(segment["multi_category"], 2 + rng.poisson(0.7, len(clients)), 0)
    owner, rank = expand(counts)
    category = np.where(
        rank == 0,
        primary[owner],
        np.where(rank == 1, side.second_category[clients][owner], _other_category(rng, len(owner))),
    )
    at = sample_times(rng, window.ago(88), window.ago(1), offset[owner], "booking")
    parts.append(_bookings(owner, at, category, completed=True))

    parts.append(_repeat_hires(rng, population, clients, segment["repeat_hire"], offset))

    unhired = friction & (rng.random(len(clients)) < 0.3)
    owner, _ = expand(unhired.astype(np.int64))
    at = sample_times(rng, window.ago(29), window.end, offset[owner], "booking")
    status = np.where(rng.random(len(owner)) < 0.7, CANCELLED, PENDING).astype(object)
    parts.append(_bookings(owner, at, primary[owner], status=status))

    bookings = concat(parts)
    return {
        "bookings": _finish_bookings(rng, population, clients, bookings),
        "searches": _searches(rng, population, clients, bookings, friction, offset),
    }


def _repeat_hires(
    rng: np.random.Generator, population: Population, clients: np.ndarray, members: np.ndarray, offset: np.ndarray
) -> Frame:
    """Two or more bookings of one favourite worker in the last 90 days; most pairs within 30 days."""
    window = population.window
    side = population.clients
    n_categories = len(CATEGORIES)
    favourite = population.worker_for_booking.pick(rng, side.country[clients] * n_categories + side.category[clients])
    close = rng.random(len(clients)) < 0.6
    first = np.where(
        close,
        sample_times(rng, window.ago(88), window.ago(30), offset, "booking"),
        sample_times(rng, window.ago(88), window.ago(50), offset, "booking"),
    )
    counts = np.where(members, 2 + rng.poisson(0.8, len(clients)), 0)
    owner, rank = expand(counts)
    second_lo = np.where(close[owner], first[owner] + DAY, first[owner] + 31 * DAY)
    second_hi = np.where(close[owner], first[owner] + 28 * DAY, window.ago(1))
    later = np.where(
        rank == 1,
        sample_times(rng, second_lo, second_hi, offset[owner], "booking"),
        sample_times(rng, first[owner] + DAY, window.end, offset[owner], "booking"),
    )
    at = np.where(rank == 0, first[owner], later)
    return _bookings(owner, at, side.category[clients][owner], worker=favourite[owner], completed=True)


def _finish_bookings(rng: np.random.Generator, population: Population, clients: np.ndarray, bookings: Frame) -> Frame:
    """Match unassigned bookings to workers of the same market and category; price and settle them."""
    if not bookings:
        return {}
    side = population.clients
    owner = bookings["client"]
    country = side.country[clients][owner]
    worker = bookings["worker"]
    unmatched = worker == UNSET
    picked = population.worker_for_booking.pick(rng, country * len(CATEGORIES) + bookings["category"])
    worker = np.where(unmatched, picked, worker)
    status = booking_status(rng, bookings["at"], population.window.end)
    status = np.where(bookings["completed"], COMPLETED, status)
    status = np.where(bookings["status"] != "", bookings["status"], status)
    return {
        "client_id": clients[owner],
        "worker_id": worker,
        "category": bookings["category"],
        "amount": booking_amount_cents(rng, bookings["category"], country),
        "currency": CURRENCY[country],
        "status": status.astype(object),
        "booked_at": bookings["at"],
    }


def _searches(
    rng: np.random.Generator,
    population: Population,
    clients: np.ndarray,
    bookings: Frame,
    friction: np.ndarray,
    offset: np.ndarray,
) -> Frame:
    """Searches leading up to each booking, browsing without booking, and friction bursts."""
    window = population.window
    side = population.clients
    active_from = side.active_from(window)[clients]
    primary = side.category[clients]
    parts = []

    if bookings:
        counts = 2 + rng.poisson(SEARCHES_BEFORE_BOOKING, len(bookings["client"]))
        booking, _ = expand(counts)
        owner = bookings["client"][booking]
        booked_at = bookings["at"][booking]
        lo = np.minimum(np.maximum(booked_at - 3 * DAY, active_from[owner]), booked_at)
        at = sample_times(rng, lo, booked_at, offset[owner], "search")
        parts.append({"owner": owner, "category": bookings["category"][booking], "at": at})

    rate = BROWSE_SEARCHES_PER_30_DAYS * side.activity[clients] ** 0.7 * rng.lognormal(0.0, 0.5, len(clients))
    span_days = np.maximum(window.end - active_from, 0) / DAY
    counts = np.where(~side.dormant[clients], rng.poisson(rate * span_days / 30), 0)
    owner, _ = expand(counts)
    at = sample_times(rng, active_from[owner], window.end, offset[owner], "search")
    category = np.where(rng.random(len(owner)) < 0.7, primary[owner], _other_category(rng, len(owner)))
    parts.append({"owner": owner, "category": category, "at": at})

    counts = np.where(friction, 12 + rng.poisson(18, len(clients)), 0)
    owner, _ = expand(counts)
    at = sample_times(rng, window.ago(29), window.end, offset[owner], "search")
    category = np.where(rng.random(len(owner)) < 0.7, primary[owner], _other_category(rng, len(owner)))
    parts.append({"owner": owner, "category": category, "at": at})

    searches = concat(parts)
    return {
        "client_id": clients[searches["owner"]],
        "category": searches["category"],
        "searched_at": searches["at"],
    }
