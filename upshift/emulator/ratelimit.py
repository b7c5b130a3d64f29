"""Fixed-window request counters, one per rate-limited endpoint.

Braze states its limits as "N requests per window" and reports the window's end in
`X-RateLimit-Reset` as UTC epoch seconds (https://www.braze.com/docs/api/api_limits/,
"Monitoring your rate limits"), so windows here are aligned to multiples of their length
and the reset is the window's end rounded up to a whole second. Iterable's per-second limits
(https://api.iterable.com/api/docs, endpoint descriptions) use the same counter with a
one-second window.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateDecision:
    """Whether a request fits, and the numbers the response headers report."""

    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_epoch),
        }


class FixedWindowLimiter:
    """Counts requests in the current window of `window_seconds`; thread-safe."""

    def __init__(self, limit: int, window_seconds: float, clock: Callable[[], float] = time.time) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("a rate limit needs limit >= 1 and a positive window")
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = -1.0
        self._count = 0

    def hit(self) -> RateDecision:
        now = self._clock()
        window_start = math.floor(now / self.window_seconds) * self.window_seconds
        with self._lock:
            if window_start != self._window_start:
                self._window_start = window_start
                self._count = 0
            allowed = self._count < self.limit
            if allowed:
                self._count += 1
            remaining = self.limit - self._count
        reset = math.ceil(window_start + self.window_seconds)
        return RateDecision(allowed=allowed, limit=self.limit, remaining=remaining, reset_epoch=reset)

    def reset(self) -> None:
        with self._lock:
            self._window_start = -1.0
            self._count = 0
