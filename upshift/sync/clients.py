"""HTTP clients of Braze and Iterable: auth, JSON, timeouts, retries, rate limits. No payload state.

What each status means to a client, from the platforms' docs:

- Braze (https://www.braze.com/docs/api/errors/, https://www.braze.com/docs/api/api_limits/):
  `Authorization: Bearer <REST API key>`; a 429 carries `X-RateLimit-Reset` (epoch seconds of
  the window's end) and no `Retry-After`; 5XX "retry with exponential backoff". A 201/2xx may
  still carry row-level `errors`: the caller reads them.
- Iterable (https://api.iterable.com/api/docs): `Api-Key: <key>`; US base
  https://api.iterable.com, EU https://api.eu.iterable.com; a 429 `RateLimitExceeded` with no
  documented header (a `Retry-After` is honoured when present; without one the client backs
  off, at least `rate_limit_min_wait_seconds`, since the limits are per second); bulk answers
  list row failures in `failedUpdates`.

Retries: a 429 waits for the reset header (or `Retry-After`, else backoff); 5xx, timeouts and
dropped connections back off exponentially (capped, with jitter). A request that is not
idempotent (Braze events have no idempotency key) is never retried once it may have reached
the destination: the client raises AmbiguousDelivery and the caller decides. A client-side
limiter keeps each endpoint group under its documented rate. Logs carry method, path, status
and timing only - never headers (the key), bodies or query strings.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from upshift.sync.errors import (
    AmbiguousDelivery,
    DestinationAuthError,
    DestinationRejected,
    DestinationUnavailable,
    redact,
)
from upshift.sync.settings import SyncSettings

logger = logging.getLogger("upshift.sync.clients")

ITERABLE_US_URL = "https://api.iterable.com"
ITERABLE_EU_URL = "https://api.eu.iterable.com"


class RateLimiter:
    """At most `limit` requests in any sliding window of `window_seconds`; acquire() waits.

    Shared by every thread sending to the endpoint group: a 429 seen by one (`hold`) pauses
    them all until the destination's window has reset.
    """

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = max(1, limit)
        self.window = window_seconds
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self._held_until = 0.0

    def hold(self, seconds: float) -> None:
        """Let no request go for `seconds` from now (a 429's wait), whichever thread asks."""
        with self._lock:
            self._held_until = max(self._held_until, time.monotonic() + seconds)

    def acquire(self) -> float:
        """Block until a request may go; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.window:
                    self._sent.popleft()
                if now < self._held_until:
                    pause = self._held_until - now
                elif len(self._sent) < self.limit:
                    self._sent.append(now)
                    return waited
                else:
                    pause = self.window - (now - self._sent[0])
            time.sleep(pause)
            waited += pause


class ApiClient:
    """One destination's transport: a keep-alive session, auth header, retries and limiters."""

    platform = "api"

    def __init__(self, base_url: str, auth_headers: dict[str, str], settings: SyncSettings | None = None) -> None:
        if not base_url:
            raise ValueError(f"{self.platform}: no base URL; set the Airflow connection's host")
        self.base_url = base_url.rstrip("/")
        self.settings = settings or SyncSettings()
        self._session = requests.Session()
        self._session.headers.update({"Content-Type": "application/json", "Accept": "application/json"})
        self._session.headers.update(auth_headers)
        self._limiters: dict[str, RateLimiter] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _limiter(self, group: str, limit: int, window_seconds: float) -> RateLimiter:
        """One limiter per endpoint group; its window is widened by `rate_limit_margin_seconds`,
        since the destination counts a request when it arrives, not when it left."""
        if group not in self._limiters:
            self._limiters[group] = RateLimiter(limit, window_seconds + self.settings.rate_limit_margin_seconds)
        return self._limiters[group]

    def request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        limiter: RateLimiter,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """Send one API call and return its parsed JSON body, retrying what may be retried."""
        settings = self.settings
        url = f"{self.base_url}{path}"
        maybe_processed = False
        last_problem = "no attempt made"
        last_status: int | None = None
        # Encoded once, before the limiter lets the request go: the send follows its slot at once
        # (a 1,000-user body takes milliseconds to encode), and a retry does not encode it again.
        body = None if payload is None else json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
        for attempt in range(1, settings.max_attempts + 1):
            limiter.acquire()
            started = time.monotonic()
            try:
                response = self._session.request(
                    method,
                    url,
                    data=body,
                    timeout=(settings.connect_timeout_seconds, settings.read_timeout_seconds),
                )
            except requests.RequestException as error:
                reached = _may_have_reached_server(error)
                maybe_processed = maybe_processed or reached
                last_status, last_problem = None, f"{type(error).__name__} ({'after' if reached else 'before'} sending)"
                if reached and not idempotent:
                    raise AmbiguousDelivery(
                        self._message(method, path, last_problem, attempt), maybe_processed=True
                    ) from error
                self._pause(method, path, last_problem, attempt, _backoff(attempt, settings), "backoff")
                continue
            elapsed = time.monotonic() - started
            status = response.status_code
            if 200 <= status < 300:
                logger.debug("%s %s %s %s in %.2fs", self.platform, method, path, status, elapsed)
                return _json(response)
            last_status = status
            if status in (401, 403):
                raise DestinationAuthError(
                    f"{self.platform} {method} {path} answered {status}: the API key was refused or lacks a "
                    "permission. Fix the password of the Airflow connection and rerun.",
                    status=status,
                )
            if status == 429:
                wait, source = self._rate_limit_wait(response, attempt)
                last_problem = "429 rate limited"
                if attempt < settings.max_attempts:
                    limiter.hold(wait)
                self._pause(method, path, last_problem, attempt, wait, source)
                continue
            if status >= 500:
                maybe_processed = True
                last_problem = f"{status} {_error_text(response)}"
                if not idempotent:
                    raise AmbiguousDelivery(self._message(method, path, last_problem, attempt), status=status)
                self._pause(method, path, last_problem, attempt, _backoff(attempt, settings), "backoff")
                continue
            raise DestinationRejected(
                f"{self.platform} {method} {path} answered {status}: {_error_text(response)}. The request is "
                "invalid for this destination; retrying will not help.",
                status=status,
                body=_json(response),
            )
        raise DestinationUnavailable(
            self._message(method, path, last_problem, settings.max_attempts)
            + f" Gave up after {settings.max_attempts} attempts; rerun later (nothing accepted is lost).",
            status=last_status,
            maybe_processed=maybe_processed,
        )

    def _message(self, method: str, path: str, problem: str, attempt: int) -> str:
        return f"{self.platform} {method} {path} failed on attempt {attempt}: {problem}."

    def _pause(self, method: str, path: str, problem: str, attempt: int, wait: float, source: str) -> None:
        if attempt >= self.settings.max_attempts:
            return
        logger.warning(
            "%s %s %s: %s (attempt %d/%d); retrying in %.2fs (%s)",
            self.platform,
            method,
            path,
            problem,
            attempt,
            self.settings.max_attempts,
            wait,
            source,
        )
        time.sleep(wait)

    def _rate_limit_wait(self, response: requests.Response, attempt: int) -> tuple[float, str]:
        """Seconds to wait after a 429: X-RateLimit-Reset, else Retry-After, else backoff."""
        cap = self.settings.max_rate_limit_wait_seconds
        reset = response.headers.get("X-RateLimit-Reset")
        if reset:
            try:
                return min(cap, max(0.05, float(reset) - time.time()) + random.uniform(0, 0.1)), "X-RateLimit-Reset"
            except ValueError:
                pass
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            seconds = _retry_after_seconds(retry_after)
            if seconds is not None:
                return min(cap, seconds), "Retry-After"
        floor = self.settings.rate_limit_min_wait_seconds
        return min(cap, max(floor, _backoff(attempt, self.settings))), "backoff (no rate-limit header)"


class BrazeClient(ApiClient):
    """Braze REST API of one instance (`base_url` = the REST endpoint, e.g. https://rest.iad-01.braze.com)."""

    platform = "braze"

    def __init__(self, base_url: str, api_key: str, settings: SyncSettings | None = None) -> None:
        if not api_key:
            raise DestinationAuthError("braze: no REST API key; set the Airflow connection's password")
        super().__init__(base_url, {"Authorization": f"Bearer {api_key}"}, settings)

    def track(
        self,
        *,
        attributes: Sequence[dict[str, Any]] = (),
        events: Sequence[dict[str, Any]] = (),
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """POST /users/track. Pass idempotent=False for events: they are never retried blindly."""
        body: dict[str, Any] = {}
        if attributes:
            body["attributes"] = list(attributes)
        if events:
            body["events"] = list(events)
        settings = self.settings
        limiter = self._limiter("track", settings.braze_track_rate_limit, settings.braze_track_rate_window_seconds)
        return self.request("POST", "/users/track", body, limiter=limiter, idempotent=idempotent)

    def export_ids(self, external_ids: Sequence[str], fields_to_export: Sequence[str]) -> dict[str, Any]:
        """POST /users/export/ids: profiles of up to `braze_export_max_ids` users."""
        settings = self.settings
        limiter = self._limiter("export", settings.braze_export_rate_limit, settings.braze_export_rate_window_seconds)
        body = {"external_ids": list(external_ids), "fields_to_export": list(fields_to_export)}
        return self.request("POST", "/users/export/ids", body, limiter=limiter)

    def check(self) -> str:
        """A read that proves the endpoint and key work (exports one id nobody has)."""
        self.export_ids(["upshift-connection-test"], ["external_id"])
        return f"Braze answered at {self.base_url}"


class IterableClient(ApiClient):
    """Iterable API of one project (`base_url` = ITERABLE_US_URL or ITERABLE_EU_URL)."""

    platform = "iterable"

    def __init__(self, base_url: str, api_key: str, settings: SyncSettings | None = None) -> None:
        if not api_key:
            raise DestinationAuthError("iterable: no API key; set the Airflow connection's password")
        super().__init__(base_url, {"Api-Key": api_key}, settings)

    def _per_second(self, group: str, rate: int) -> RateLimiter:
        return self._limiter(group, rate, 1.0)

    def _lists(self) -> RateLimiter:
        return self._per_second("lists", self.settings.iterable_lists_rate_per_second)

    def bulk_update_users(self, users: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """POST /api/users/bulkUpdate (merges dataFields; a null sets the field to null)."""
        limiter = self._per_second("bulk_update", self.settings.iterable_bulk_update_rate_per_second)
        return self.request("POST", "/api/users/bulkUpdate", {"users": list(users)}, limiter=limiter)

    def update_email(
        self, new_email: str, *, current_user_id: str | None = None, current_email: str | None = None
    ) -> dict[str, Any]:
        """POST /api/users/updateEmail: move one profile (by userId or old email) to `new_email`.

        A 400 (EmailAlreadyExists, UnknownUserIdError...) raises DestinationRejected with the body.
        """
        body: dict[str, Any] = {"newEmail": new_email}
        body.update({"currentEmail": current_email} if current_email else {"currentUserId": current_user_id})
        limiter = self._per_second("update_email", self.settings.iterable_update_email_rate_per_second)
        return self.request("POST", "/api/users/updateEmail", body, limiter=limiter)

    def track_bulk(self, events: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """POST /api/events/trackBulk; events carry `id`, so a retry updates rather than duplicates."""
        limiter = self._per_second("track_bulk", self.settings.iterable_track_bulk_rate_per_second)
        return self.request("POST", "/api/events/trackBulk", {"events": list(events)}, limiter=limiter)

    def lists(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/lists", limiter=self._lists()).get("lists", [])

    def create_list(self, name: str) -> int:
        """POST /api/lists: a new static list; returns its listId. Not idempotent: check lists() first."""
        body = self.request("POST", "/api/lists", {"name": name}, limiter=self._lists(), idempotent=False)
        return int(body["listId"])

    def subscribe(self, list_id: int, subscribers: Sequence[dict[str, Any]]) -> dict[str, Any]:
        body = {"listId": list_id, "subscribers": list(subscribers), "updateExistingUsersOnly": True}
        return self.request("POST", "/api/lists/subscribe", body, limiter=self._lists())

    def unsubscribe(self, list_id: int, subscribers: Sequence[dict[str, Any]]) -> dict[str, Any]:
        body = {"listId": list_id, "subscribers": list(subscribers)}
        return self.request("POST", "/api/lists/unsubscribe", body, limiter=self._lists())

    def check(self) -> str:
        """A read that proves the base URL and key work."""
        count = len(self.lists())
        return f"Iterable answered at {self.base_url} ({count} lists)"


def _may_have_reached_server(error: requests.RequestException) -> bool:
    """False only when the request surely never left: no connection could be opened."""
    if isinstance(error, requests.ConnectTimeout):
        return False
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return not isinstance(reason, NewConnectionError)


def _backoff(attempt: int, settings: SyncSettings) -> float:
    """Capped exponential backoff with jitter: half fixed, half random."""
    ceiling = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _retry_after_seconds(value: str) -> float | None:
    """Retry-After as delta seconds or an HTTP date."""
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _json(response: requests.Response) -> dict[str, Any]:
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {"body": body}


def _error_text(response: requests.Response) -> str:
    """The destination's own error message (Braze `message`, Iterable `msg`/`code`), redacted."""
    body = _json(response)
    parts = [str(body[key]) for key in ("message", "msg", "code") if body.get(key)]
    return redact("; ".join(parts) or response.reason or "no message")
