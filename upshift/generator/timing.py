"""Event timestamps with local diurnal and weekly rhythm, as UTC epoch seconds."""

from __future__ import annotations

import numpy as np

DAY = 86_400
HOUR = 3_600


def _normalised(weights: list[float]) -> np.ndarray:
    array = np.asarray(weights, dtype=float)
    return array / array.sum()


# Share of events per local hour of day (0-23).
HOURLY = {
    "search": _normalised(
        [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 3.5, 3.5, 4, 4.5, 4, 3.5, 3.5, 4, 5, 6.5, 7.5, 8, 7, 4.5, 2]
    ),
    "booking": _normalised(
        [0.3, 0.2, 0.1, 0.1, 0.1, 0.3, 1, 3, 5, 6, 6.5, 6.5, 6, 6, 6, 5.5, 5, 4.5, 4, 3.5, 3, 2, 1, 0.5]
    ),
    "proposal": _normalised(
        [0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 2, 4, 6, 6.5, 6.5, 6, 5, 5.5, 6, 6, 5.5, 5, 4.5, 4, 3.5, 2.5, 1.5, 1]
    ),
    "view": _normalised([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 3.5, 4, 4, 4.5, 4, 4, 4, 4.5, 5, 6, 7, 7.5, 6.5, 4, 2]),
    "email": _normalised([0] * 8 + [5, 8, 4, 1, 1, 1, 1, 1, 1, 0.5] + [0] * 6),
    "push": _normalised([0] * 9 + [1, 1, 2, 4, 2, 1, 1, 1, 3, 5, 4, 2, 0.5, 0, 0]),
}

# Relative activity per local weekday, Monday first.
WEEKLY = {
    "search": np.array([1.0, 0.95, 0.95, 1.0, 0.9, 1.1, 1.25]),
    "booking": np.array([1.0, 1.0, 1.0, 1.05, 1.1, 1.3, 0.9]),
    "proposal": np.array([1.2, 1.2, 1.15, 1.1, 1.0, 0.55, 0.5]),
    "view": np.array([1.0, 1.0, 1.0, 1.0, 0.95, 1.1, 1.2]),
    "email": np.array([1.0, 1.2, 1.1, 1.1, 0.9, 0.2, 0.2]),
    "push": np.array([1.0, 1.0, 1.0, 1.0, 1.1, 1.2, 1.1]),
}


def sample_times(
    rng: np.random.Generator,
    lo: np.ndarray,
    hi: np.ndarray,
    utc_offset: np.ndarray,
    rhythm: str,
) -> np.ndarray:
    """One timestamp per element in [lo, hi), following the rhythm's local-time profile.

    The day is drawn uniformly (thinned by weekday weight), the hour of day from the
    profile in the user's local time; results that the local-to-UTC shift pushes out of
    the interval are moved by a day, and ranges under a day fall back to uniform.
    """
    lo, hi, offset = np.broadcast_arrays(
        np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64), np.asarray(utc_offset, dtype=np.int64)
    )
    size = lo.shape
    span = np.maximum(hi - lo, 1)
    uniform = lo + (rng.random(size) * span).astype(np.int64)

    weekday_accept = WEEKLY[rhythm] / WEEKLY[rhythm].max()
    draw = uniform.copy()
    pending = np.ones(size, dtype=bool)
    for _ in range(4):
        local_day = (draw + offset) // DAY
        accepted = rng.random(size) < weekday_accept[(local_day + 3) % 7]
        pending &= ~accepted
        if not pending.any():
            break
        redraw = lo + (rng.random(size) * span).astype(np.int64)
        draw = np.where(pending, redraw, draw)

    local_day = (draw + offset) // DAY
    hour = rng.choice(24, size=size, p=HOURLY[rhythm])
    second = hour * HOUR + rng.integers(0, HOUR, size=size)
    times = local_day * DAY + second - offset
    times = np.where(times >= hi, times - DAY, times)
    times = np.where(times < lo, times + DAY, times)
    outside = (times < lo) | (times >= hi)
    return np.where(outside, uniform, times)
