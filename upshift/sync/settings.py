"""Every batch size, rate, wait, retry and guardrail of the sync, read from `UPSHIFT_SYNC_*`.

The one place for these numbers (docs/sync.md "Settings" lists each with its source). Defaults
are the destinations' documented limits; where the public docs give no figure the default is
marked as an assumption. A contract with other limits is one variable away (for example
`UPSHIFT_SYNC_BRAZE_MAX_OBJECTS_COMBINED=50`).

- Braze `/users/track`: 75 attributes, 75 events, 75 purchases per request, and on some
  contracts 75 or 50 objects combined across the three arrays; 3,000 requests per 3 seconds
  (https://www.braze.com/docs/api/api_limits/,
  https://www.braze.com/docs/api/endpoints/user_data/post_user_track/).
- Braze `/users/export/ids`: 50 external ids per request, 250 requests per minute
  (https://www.braze.com/docs/api/endpoints/export/user_data/post_users_identifier/).
- Iterable `users/bulkUpdate` and `events/trackBulk`: "Rate limit: 10 requests/second, per
  project" each (endpoint descriptions of https://api.iterable.com/api/docs); `GET lists`
  100 requests/second. Assumptions (no figure in the docs): 1,000 users, events or
  subscribers per bulk request, 10 list subscribe/unsubscribe requests per second, 10
  `users/updateEmail` requests per second. Iterable's 429 carries no rate-limit header, so a
  429 without one waits at least `rate_limit_min_wait_seconds` (one per-second window).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from upshift.env_fields import fields_from_env
from upshift.warehouse import DEFAULT_SYNC_SCHEMA, check_schema_name

ENV_PREFIX = "UPSHIFT_SYNC_"


@dataclass(frozen=True)
class SyncSettings:
    """Every knob of the sync; each field is the variable `UPSHIFT_SYNC_<FIELD>`."""

    # The sync's state tables; dbt's source `upshift_sync` reads them (upshift.dbt hands dbt this value).
    schema: str = DEFAULT_SYNC_SCHEMA

    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0
    max_attempts: int = 6
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    # Longest wait a 429's reset header may impose before the attempt is retried.
    max_rate_limit_wait_seconds: float = 60.0
    # Shortest wait after a 429 that names no reset (Iterable): its limits are per second.
    rate_limit_min_wait_seconds: float = 1.0
    # Added to every client-side rate window: the destination counts a request on arrival.
    rate_limit_margin_seconds: float = 0.05
    # Requests of one users step in flight at once per destination (each still under the
    # client-side limiter; a 429 pauses every thread). 1: one batch at a time.
    max_requests_in_flight: int = 4
    # Answered users of a users step saved per state transaction (a commit costs an fsync; a
    # run killed before one sends those users again, which is idempotent).
    users_per_commit: int = 1000

    braze_max_objects_per_array: int = 75
    braze_max_objects_combined: int = 0  # 0: no combined cap; 50 or 75 on newer contracts
    braze_track_rate_limit: int = 3000
    braze_track_rate_window_seconds: float = 3.0
    braze_export_rate_limit: int = 250
    braze_export_rate_window_seconds: float = 60.0
    braze_export_max_ids: int = 50
    # Braze processes /users/track asynchronously: an ambiguous event batch is only checked
    # against the user's event counts once it is this old (assumption: Braze names no figure).
    # The events step waits (a bounded sleep) until then within the same run.
    braze_reconcile_after_seconds: float = 600.0
    # Wait -> reconcile -> resend rounds per run before the step fails naming what is left.
    braze_reconcile_rounds: int = 2

    iterable_bulk_update_max_users: int = 1000
    iterable_track_bulk_max_events: int = 1000
    iterable_list_max_subscribers: int = 1000
    iterable_bulk_update_rate_per_second: int = 10
    iterable_track_bulk_rate_per_second: int = 10
    iterable_lists_rate_per_second: int = 10
    iterable_update_email_rate_per_second: int = 10
    # How the Iterable project identifies users: userId (userId-based or hybrid) or email.
    iterable_identify_by: str = "userId"

    # Guardrails. A run that would clear more than this share of the users (or list
    # memberships) a destination holds from us fails before sending anything.
    max_removal_share: float = 0.5
    # A step fails (after recording every row) when the destination refused more than this
    # share of the users / events / memberships it was sent.
    max_rejected_share: float = 0.1

    # Sample ids a dry run (and the summary) shows per change type.
    sample_size: int = 5

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **overrides: Any) -> SyncSettings:
        """Settings from the environment; keyword overrides win. Bad values fail loudly."""
        return cls(**{**fields_from_env(cls, ENV_PREFIX, env), **overrides})

    def __post_init__(self) -> None:
        check_schema_name(f"{ENV_PREFIX}SCHEMA", self.schema)
        if self.iterable_identify_by not in {"userId", "email"}:
            wrong = self.iterable_identify_by
            raise ValueError(f"{ENV_PREFIX}ITERABLE_IDENTIFY_BY must be userId or email, not {wrong!r}")
        if self.max_requests_in_flight < 1:
            wrong = self.max_requests_in_flight
            raise ValueError(f"{ENV_PREFIX}MAX_REQUESTS_IN_FLIGHT must be at least 1, not {wrong!r}")
        for name in ("max_removal_share", "max_rejected_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{ENV_PREFIX}{name.upper()} must be between 0 and 1, not {getattr(self, name)!r}")

    def with_overrides(self, **overrides: Any) -> SyncSettings:
        return replace(self, **overrides)

    @property
    def braze_attributes_per_request(self) -> int:
        """Objects per /users/track request: the per-array cap, lowered by a combined cap."""
        combined = self.braze_max_objects_combined
        return min(self.braze_max_objects_per_array, combined) if combined else self.braze_max_objects_per_array
