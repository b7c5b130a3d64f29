"""Limits, keys and start-up faults of the emulator, read from `EMULATOR_*` variables.

Every limit the real platforms enforce is a setting, so a test can shrink a window or a batch
size and a contract with other limits (Braze's 50-objects-combined `/users/track`) is one
variable away. Defaults are the documented values; where the public docs give none, the
default is marked as an assumption.

Sources for the defaults:

- Braze rate limits and batching, https://www.braze.com/docs/api/api_limits/ (read from
  braze-inc/braze-docs `_docs/_api/api_limits.md`): `/users/track` 3,000 requests per three
  seconds and 75 events, 75 purchases and 75 attributes per request; `/users/export/ids`
  250 requests per minute for workspaces onboarded on or after 2024-08-22. The newer page
  and the "Monthly Active Users CY 24-25" section of
  https://www.braze.com/docs/api/endpoints/user_data/post_user_track/ cap some contracts at
  75 (or 50) objects combined across the three arrays: `braze_max_objects_combined`.
- Braze `/users/export/ids`: up to 50 `external_ids` or `user_aliases` per request,
  https://www.braze.com/docs/api/endpoints/export/user_data/post_users_identifier/.
- Braze payload limit of 4 MB answered with 413, from the Appboy-era REST docs
  (toksfifo/slate `source/includes/_rest_api_user_data.html.md`); used for both platforms.
- Iterable rate limits, from the endpoint descriptions of Iterable's OpenAPI document
  https://api.iterable.com/api/docs (as generated into idihyaabde/iterable-php
  `docs/Api/UsersApi.md`, `EventsApi.md`, `ListsApi.md`): `users/bulkUpdate` and
  `events/trackBulk` 10 requests/second per project, `GET lists` 100 requests/second.
  Assumptions (no figure in the docs read): list subscribe/unsubscribe 10/s, user reads
  100/s, `users/updateEmail` 10/s, and 1,000 users/events/subscribers per bulk request.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from upshift.env_fields import fields_from_env

ENV_PREFIX = "EMULATOR_"
DEFAULT_BRAZE_API_KEY = "braze-emulator-key"
DEFAULT_ITERABLE_API_KEY = "iterable-emulator-key"


@dataclass(frozen=True)
class EmulatorSettings:
    """Everything the emulator can be told at start-up; each field is `EMULATOR_<NAME>`."""

    braze_api_key: str = field(default=DEFAULT_BRAZE_API_KEY, repr=False)
    iterable_api_key: str = field(default=DEFAULT_ITERABLE_API_KEY, repr=False)
    max_body_bytes: int = 4 * 1024 * 1024

    braze_max_objects_per_array: int = 75
    braze_max_objects_combined: int = 0  # 0: no combined cap (legacy contracts)
    braze_track_rate_limit: int = 3000
    braze_track_rate_window_seconds: float = 3.0
    braze_export_rate_limit: int = 250
    braze_export_rate_window_seconds: float = 60.0
    braze_export_max_ids: int = 50

    iterable_project_id: int = 1
    iterable_bulk_update_max_users: int = 1000
    iterable_track_bulk_max_events: int = 1000
    iterable_list_max_subscribers: int = 1000
    iterable_bulk_update_rate_per_second: int = 10
    iterable_track_bulk_rate_per_second: int = 10
    iterable_lists_rate_per_second: int = 10
    iterable_read_rate_per_second: int = 100
    iterable_update_email_rate_per_second: int = 10
    # hybrid (userId or email identify a user) or email (email-based project).
    iterable_project_type: str = "hybrid"
    # Iterable's docs name no header on a 429; turn this on to test a client's Retry-After path.
    iterable_retry_after_header: bool = False

    # Faults armed at start-up, same JSON as POST /_emulator/faults.
    faults: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **overrides: Any) -> EmulatorSettings:
        """Settings from `EMULATOR_*` variables; keyword overrides win over the environment."""
        values = fields_from_env(cls, ENV_PREFIX, env)
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        if self.iterable_project_type not in {"hybrid", "email"}:
            raise ValueError(f"iterable_project_type must be 'hybrid' or 'email', not {self.iterable_project_type!r}")

    def with_overrides(self, **overrides: Any) -> EmulatorSettings:
        return replace(self, **overrides)

    def to_env(self) -> dict[str, str]:
        """The variables that reproduce these settings in a child process."""
        env = {}
        for name, value in asdict(self).items():
            env[ENV_PREFIX + name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
        return env

    def startup_faults(self) -> dict[str, Any]:
        if not self.faults.strip():
            return {}
        try:
            parsed = json.loads(self.faults)
        except json.JSONDecodeError as error:
            raise ValueError(f"EMULATOR_FAULTS is not valid JSON: {error}") from error
        if not isinstance(parsed, dict):
            raise ValueError('EMULATOR_FAULTS must be a JSON object like {"braze": {"status_500": 1}}')
        return parsed
