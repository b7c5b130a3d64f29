"""Who is in the marketplace: per-user attributes, behaviour sub-populations and matching.

Attributes for every user are drawn up front (a few arrays per user, small next to the
events), so each chunk of users can refer to any counterpart - a client in a chunk books
a worker from anywhere in the market - while events stay bounded per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from upshift.generator.catalog import CATEGORIES, COUNTRIES
from upshift.generator.timing import DAY, HOUR

CATEGORY_WEIGHTS = np.array([category.weight for category in CATEGORIES]) / sum(
    category.weight for category in CATEGORIES
)
COUNTRY_WEIGHTS = np.array([country.weight for country in COUNTRIES]) / sum(country.weight for country in COUNTRIES)
COUNTRY_OFFSET_SECONDS = np.array([round(country.utc_offset_hours * HOUR) for country in COUNTRIES])

# Share of eligible users (active, signed up at least 90 days before as-of) planted into
# each sub-population whose behaviour makes one readiness signal fire.
CLIENT_SEGMENT_SHARES = {
    "frequent": 0.12,
    "multi_category": 0.10,
    "repeat_hire": 0.09,
    "search_friction": 0.15,
}
WORKER_SEGMENT_SHARES = {
    "low_win": 0.12,
    "view_spike": 0.14,
    "plateau": 0.14,
}
DORMANT_SHARE = 0.2
NEW_USER_SHARE = 0.15


@dataclass(frozen=True)
class Window:
    """The generated period [start, end) in UTC epoch seconds; end is as-of midnight."""

    start: int
    end: int

    @property
    def days(self) -> int:
        return (self.end - self.start) // DAY

    def ago(self, days: float) -> int:
        """Epoch seconds `days` before the as-of midnight."""
        return self.end - round(days * DAY)


@dataclass(frozen=True)
class Side:
    """Attributes of one side of the market (clients or workers), indexed 0..n-1."""

    country: np.ndarray
    created_at: np.ndarray
    category: np.ndarray
    second_category: np.ndarray
    dormant: np.ndarray
    activity: np.ndarray
    segments: dict[str, np.ndarray]

    @property
    def size(self) -> int:
        return len(self.country)

    def active_from(self, window: Window) -> np.ndarray:
        """First second each user can produce events: window start or just after signup."""
        return np.maximum(window.start, self.created_at + HOUR)

    def in_any_segment(self) -> np.ndarray:
        flags = np.zeros(self.size, dtype=bool)
        for members in self.segments.values():
            flags |= members
        return flags


class WeightedPicker:
    """Draws members of a group (country, or country x category) in proportion to weight.

    Groups with no positive weight fall back to the whole population, so small
    marketplaces still match every request.
    """

    def __init__(self, group: np.ndarray, weight: np.ndarray, n_groups: int) -> None:
        order = np.argsort(group, kind="stable")
        self._members = order
        sorted_group = group[order]
        sorted_weight = weight[order].astype(float)
        totals = np.bincount(sorted_group, weights=sorted_weight, minlength=n_groups)
        self._has_weight = totals > 0
        safe_totals = np.where(totals > 0, totals, 1.0)
        within = np.cumsum(sorted_weight) - np.repeat(
            np.concatenate([[0.0], np.cumsum(totals)[:-1]]),
            np.bincount(sorted_group, minlength=n_groups),
        )
        self._edges = sorted_group + within / safe_totals[sorted_group]
        self._edges = np.maximum.accumulate(self._edges)
        self._global = np.cumsum(weight.astype(float))
        if self._global[-1] > 0:
            self._global /= self._global[-1]
        else:
            self._global = np.arange(1, len(weight) + 1) / len(weight)

    def pick(self, rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
        group = np.asarray(group)
        draws = rng.random(group.shape)
        local = np.searchsorted(self._edges, group + draws * (1 - 1e-12), side="right")
        local = np.minimum(local, len(self._members) - 1)
        fallback = np.searchsorted(self._global, draws, side="right")
        fallback = np.minimum(fallback, len(self._global) - 1)
        return np.where(self._has_weight[group], self._members[local], fallback)


@dataclass(frozen=True)
class Population:
    window: Window
    clients: Side
    workers: Side
    worker_popularity: np.ndarray
    worker_win_rate: np.ndarray
    worker_contact_rate: np.ndarray
    worker_for_booking: WeightedPicker
    client_by_country: WeightedPicker
    client_for_worker_booking: WeightedPicker


def _side(rng: np.random.Generator, n: int, window: Window, segment_shares: dict[str, float]) -> Side:
    country = rng.choice(len(COUNTRIES), size=n, p=COUNTRY_WEIGHTS)
    is_new = rng.random(n) < NEW_USER_SHARE if window.days > 20 else np.zeros(n, dtype=bool)
    tenure = rng.uniform(1, 730, size=n) * DAY
    created_before = window.start - tenure.astype(np.int64)
    new_span = max(window.end - 10 * DAY - window.start, DAY)
    created_new = window.start + (rng.random(n) * new_span).astype(np.int64)
    created_at = np.where(is_new, created_new, created_before)
    category = rng.choice(len(CATEGORIES), size=n, p=CATEGORY_WEIGHTS)
    shift = rng.integers(1, len(CATEGORIES), size=n)
    second_category = (category + shift) % len(CATEGORIES)
    dormant = rng.random(n) < DORMANT_SHARE
    activity = rng.lognormal(mean=0.0, sigma=1.0, size=n)
    eligible = ~dormant & (created_at <= window.ago(90))
    segments = {name: eligible & (rng.random(n) < share) for name, share in segment_shares.items()}
    return Side(country, created_at, category, second_category, dormant, activity, segments)


def build_population(rng: np.random.Generator, n_clients: int, n_workers: int, window: Window) -> Population:
    clients = _side(rng, n_clients, window, CLIENT_SEGMENT_SHARES)
    # Friction clients search without hiring, so they are kept out of the hiring segments.
    hiring = clients.segments["frequent"] | clients.segments["multi_category"] | clients.segments["repeat_hire"]
    friction = clients.segments["search_friction"] & ~hiring
    clients.segments["search_friction"] = friction
    workers = _side(rng, n_workers, window, WORKER_SEGMENT_SHARES)

    popularity = np.minimum(rng.pareto(1.3, size=n_workers) + 1.0, 200.0)
    popularity = np.where(workers.dormant, popularity * 0.05, popularity)
    win_rate = rng.beta(7.0, 9.0, size=n_workers)
    win_rate = np.where(workers.segments["low_win"], rng.uniform(0.02, 0.12, n_workers), win_rate)
    contact_rate = rng.beta(2.0, 18.0, size=n_workers)

    n_categories = len(CATEGORIES)
    # Plateau workers get their bookings from their own planted trajectory only.
    bookable = np.where(workers.segments["plateau"], 0.0, popularity)
    worker_group = np.concatenate(
        [
            workers.country * n_categories + workers.category,
            workers.country * n_categories + workers.second_category,
        ]
    )
    worker_weight = np.concatenate([bookable, bookable * 0.4])
    worker_picker = _ExpandedPicker(
        WeightedPicker(worker_group, worker_weight, len(COUNTRIES) * n_categories), n_workers
    )
    client_weight = np.where(clients.dormant, 0.05, 1.0) * clients.activity
    client_picker = WeightedPicker(clients.country, client_weight, len(COUNTRIES))
    booking_client_picker = WeightedPicker(clients.country, np.where(friction, 0.0, client_weight), len(COUNTRIES))
    return Population(
        window=window,
        clients=clients,
        workers=workers,
        worker_popularity=popularity,
        worker_win_rate=win_rate,
        worker_contact_rate=contact_rate,
        worker_for_booking=worker_picker,
        client_by_country=client_picker,
        client_for_worker_booking=booking_client_picker,
    )


class _ExpandedPicker:
    """A picker over a population listed twice (primary and secondary category entries)."""

    def __init__(self, picker: WeightedPicker, size: int) -> None:
        self._picker = picker
        self._size = size

    def pick(self, rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
        return self._picker.pick(rng, group) % self._size
