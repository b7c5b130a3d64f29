"""What the emulator received, without secrets or personal data.

Entries keep method, a redacted path, status, timing, object counts, the injected fault and
how many requests of the platform were being handled when it arrived (`in_flight`, itself
included: what a client's concurrency looks like from the server);
never headers (API keys), bodies, query strings or anything that looks like an email address
or phone number, so the log can be printed by tests and the demo.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import unquote

_EMAIL = re.compile(r"[^/@\s]+@[^/@\s]+")
_PHONE = re.compile(r"\+?\d[\d\-\s().]{7,}\d")


def redact_path(path: str) -> str:
    """The path without its query string, with email addresses and phone numbers masked."""
    bare = unquote(path.split("?", 1)[0])
    return _PHONE.sub("<phone>", _EMAIL.sub("<email>", bare))


class RequestLog:
    """A bounded, thread-safe list of request summaries, and unbounded counts per platform and
    status (how many 429s a long run drew, after its entries have left the list)."""

    def __init__(self, capacity: int = 2000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._seq = 0
        self._active: dict[str, int] = {}
        self._totals: dict[str, dict[str, int]] = {}

    def arrive(self, platform: str) -> int:
        """A request of `platform` is being handled; returns how many are now (itself included)."""
        with self._lock:
            self._active[platform] = self._active.get(platform, 0) + 1
            return self._active[platform]

    def depart(self, platform: str) -> None:
        with self._lock:
            self._active[platform] -= 1

    def record(
        self,
        platform: str,
        method: str,
        path: str,
        status: int | None,
        started: float,
        fault: str | None = None,
        objects: dict[str, int] | None = None,
        in_flight: int = 1,
    ) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            entry = {
                "seq": self._seq,
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "platform": platform,
                "method": method,
                "path": redact_path(path),
                "status": status,
                "duration_ms": round((time.time() - started) * 1000, 1),
                "fault": fault,
                "objects": objects or {},
                "in_flight": in_flight,
            }
            self._entries.append(entry)
            statuses = self._totals.setdefault(platform, {})
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            return entry

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._entries]

    def totals(self) -> dict[str, dict[str, int]]:
        """Requests answered so far per platform and status, e.g. {"braze": {"201": 40, "429": 2}}."""
        with self._lock:
            return {platform: dict(statuses) for platform, statuses in self._totals.items()}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._totals.clear()
