"""Fault injection: what the next requests to a platform should suffer, armed over HTTP.

A plan per platform counts down: `status_429_burst: 3` answers the next three API requests
with the platform's rate-limit response, `status_503: 2` the following two with a 503, and so
on. Row-level rejections (`reject_ids`, `reject_share`) stay armed until replaced, so a
client's partial-failure path sees the same rows fail on every retry until the test lifts
them. The share is decided by a hash of the id, so the same ids fail on every run.

Keys of a plan (POST /_emulator/faults {"braze": {...}, "iterable": {...}}):

- `status_429_burst`: n requests answered 429 (Braze with X-RateLimit-* headers).
- `status_500`, `status_502`, `status_503`, `status_504`: n requests answered with that code
  before anything is processed.
- `process_then_500`: n requests processed, then answered 500 - the "accepted but the
  response was lost" case that makes a naive retry deliver events twice.
- `disconnect`: n requests whose connection is closed without a response.
- `delay_seconds`: every request waits this long before it is answered.
- `reject_ids` (Braze alias `reject_external_ids`, Iterable aliases `reject_emails`,
  `reject_user_ids`): identifiers whose rows fail with a row-level error.
- `reject_share`: share (0..1) of identifiers whose rows fail.
- `rate_limit_reset_seconds`: how far ahead an injected 429 puts its reset (default 1).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

PLATFORMS = ("braze", "iterable")
STATUS_KEYS = {"status_500": 500, "status_502": 502, "status_503": 503, "status_504": 504}
_ALIASES = {
    "braze": {"reject_external_ids": "reject_ids"},
    "iterable": {"reject_emails": "reject_ids", "reject_user_ids": "reject_ids"},
}
_KEYS = {
    "status_429_burst",
    "process_then_500",
    "disconnect",
    "delay_seconds",
    "reject_ids",
    "reject_share",
    "rate_limit_reset_seconds",
    *STATUS_KEYS,
}


class FaultSpecError(ValueError):
    """A fault plan that cannot be armed; the message names the offending key."""


@dataclass(frozen=True)
class Fault:
    """What happens to one request: at most one of the outcomes, plus a delay."""

    delay_seconds: float = 0.0
    disconnect: bool = False
    rate_limited: bool = False
    status: int | None = None
    process_then_status: int | None = None
    rate_limit_reset_seconds: int = 1

    @property
    def name(self) -> str | None:
        if self.disconnect:
            return "disconnect"
        if self.rate_limited:
            return "status_429_burst"
        if self.status:
            return f"status_{self.status}"
        if self.process_then_status:
            return f"process_then_{self.process_then_status}"
        return "delay" if self.delay_seconds else None


@dataclass
class FaultPlan:
    """The armed faults of one platform."""

    counters: dict[str, int] = field(default_factory=dict)
    delay_seconds: float = 0.0
    reject_ids: frozenset[str] = frozenset()
    reject_share: float = 0.0
    rate_limit_reset_seconds: int = 1

    @classmethod
    def parse(cls, platform: str, spec: Any) -> FaultPlan:
        if not isinstance(spec, dict):
            raise FaultSpecError(f"faults for {platform!r} must be a JSON object")
        plan = cls()
        for raw_key, value in spec.items():
            key = _ALIASES[platform].get(raw_key, raw_key)
            if key not in _KEYS:
                allowed = sorted(_KEYS | set(_ALIASES[platform]))
                raise FaultSpecError(f"unknown fault {raw_key!r} for {platform}; allowed: {', '.join(allowed)}")
            if key == "reject_ids":
                if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                    raise FaultSpecError(f"{raw_key} must be a list of strings")
                plan.reject_ids = plan.reject_ids | frozenset(value)
            elif key in {"delay_seconds", "reject_share"}:
                plan_value = _number(raw_key, value)
                if key == "reject_share" and not 0 <= plan_value <= 1:
                    raise FaultSpecError("reject_share must be between 0 and 1")
                setattr(plan, key, plan_value)
            elif key == "rate_limit_reset_seconds":
                plan.rate_limit_reset_seconds = max(1, int(_number(raw_key, value)))
            else:
                plan.counters[key] = int(_number(raw_key, value))
        return plan

    def describe(self) -> dict[str, Any]:
        return {
            **{key: count for key, count in self.counters.items() if count},
            "delay_seconds": self.delay_seconds,
            "reject_ids": sorted(self.reject_ids),
            "reject_share": self.reject_share,
            "rate_limit_reset_seconds": self.rate_limit_reset_seconds,
        }


class Faults:
    """Thread-safe fault plans of both platforms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans = {platform: FaultPlan() for platform in PLATFORMS}

    def arm(self, spec: Any) -> None:
        """Replace the plan of every platform named in `spec`; `{}` for a platform clears it."""
        if not isinstance(spec, dict):
            raise FaultSpecError('faults must be a JSON object like {"braze": {"status_500": 1}}')
        unknown = set(spec) - set(PLATFORMS)
        if unknown:
            raise FaultSpecError(f"unknown platform(s) {sorted(unknown)}; use 'braze' and/or 'iterable'")
        plans = {platform: FaultPlan.parse(platform, value) for platform, value in spec.items()}
        with self._lock:
            self._plans.update(plans)

    def clear(self) -> None:
        with self._lock:
            self._plans = {platform: FaultPlan() for platform in PLATFORMS}

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {platform: plan.describe() for platform, plan in self._plans.items()}

    def next_fault(self, platform: str) -> Fault:
        """Consume one unit of the first armed outcome for this request."""
        with self._lock:
            plan = self._plans[platform]
            common = {"delay_seconds": plan.delay_seconds, "rate_limit_reset_seconds": plan.rate_limit_reset_seconds}
            if _take(plan.counters, "disconnect"):
                return Fault(disconnect=True, **common)
            if _take(plan.counters, "status_429_burst"):
                return Fault(rate_limited=True, **common)
            for key, status in STATUS_KEYS.items():
                if _take(plan.counters, key):
                    return Fault(status=status, **common)
            if _take(plan.counters, "process_then_500"):
                return Fault(process_then_status=500, **common)
            return Fault(**common)

    def is_rejected(self, platform: str, identifier: str | None) -> bool:
        if not identifier:
            return False
        with self._lock:
            plan = self._plans[platform]
            if identifier in plan.reject_ids:
                return True
            share = plan.reject_share
        if share <= 0:
            return False
        bucket = int(hashlib.sha256(identifier.encode()).hexdigest()[:8], 16) % 10_000
        return bucket < share * 10_000


def _take(counters: dict[str, int], key: str) -> bool:
    if counters.get(key, 0) > 0:
        counters[key] -= 1
        return True
    return False


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FaultSpecError(f"{key} must be a non-negative number")
    return float(value)
