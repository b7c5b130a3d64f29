"""Typed failures of the sync, each saying what failed and what to do.

Plain exceptions: the package runs without Airflow. The operators in
plugins/upshift_sync_operators.py wrap each into a typed AirflowException, failing at once where a
retry cannot help. Messages never carry API keys, email addresses or phone numbers (`redact`
strips the latter two from any text that came back from a destination).
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[^\s\"'<>(),;:@/]+@[^\s\"'<>(),;:@/]+")
_PHONE = re.compile(r"\+?\d[\d\-\s().]{7,}\d")


def redact(text: str, limit: int = 300) -> str:
    """`text` with email addresses and phone numbers masked, cut to `limit` characters."""
    return _PHONE.sub("<phone>", _EMAIL.sub("<email>", text))[:limit]


class SyncError(Exception):
    """Base class of every sync failure."""


class DestinationError(SyncError):
    """A destination API call failed; `status` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DestinationAuthError(DestinationError):
    """401/403: the API key is wrong or lacks a permission. Fix the Airflow connection's password."""


class DestinationRejected(DestinationError):
    """A 4xx other than 401/403/429: the request itself is invalid and retrying will not help."""

    def __init__(self, message: str, *, status: int | None = None, body: object = None) -> None:
        super().__init__(message, status=status)
        self.body = body


class DestinationUnavailable(DestinationError):
    """429s, 5xx or network failures outlasted every retry. Rerun later; nothing is lost.

    `maybe_processed` is True when at least one attempt reached the destination and got no
    clear answer (a 5xx, a read timeout, a dropped connection): the destination may have
    processed the request.
    """

    def __init__(self, message: str, *, status: int | None = None, maybe_processed: bool = False) -> None:
        super().__init__(message, status=status)
        self.maybe_processed = maybe_processed


class AmbiguousDelivery(DestinationUnavailable):
    """A non-idempotent request (Braze events) got no clear answer and was not retried."""


class SyncModelsOutOfDate(SyncError):
    """The sync_* models were built for another as-of date than the one being synced."""


class SyncRunFailed(SyncError):
    """A step ended with a destination failure after saving what was accepted; see sync_errors."""


class MassRemovalRefused(SyncError):
    """A run would clear more users or list memberships than `max_removal_share` allows; nothing was sent."""


class TooManyRejected(SyncRunFailed):
    """The destination refused more than `max_rejected_share` of a step's rows; all are in sync_errors."""


class UndeliveredEvents(SyncRunFailed):
    """Events whose delivery could not be settled within the run (see docs/sync.md, failure policy)."""
