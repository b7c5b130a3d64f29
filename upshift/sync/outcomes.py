"""Row-level failures in a destination's answer, mapped back to our ids.

- Braze answers 201 `{"message": "success", ..., "errors": [{"type", "input_array", "index"}]}`
  when some objects failed (https://www.braze.com/docs/api/endpoints/user_data/post_user_track/,
  "non-fatal errors"), and 400 with the same `errors` when none was valid.
- Iterable's bulk endpoints answer `failedUpdates` with lists of emails or userIds per reason
  (invalidEmails, invalidDataUserIds, notFoundUserIds, conflictEmails, forgottenUserIds...),
  plus the older top-level `invalidEmails` / `invalidUserIds`.

Failures are (reason, detail) per id; details name the reason, never an email address.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from upshift.sync.errors import redact

# Unsubscribing a user Iterable does not know leaves them where we want them: not on the list.
NOT_A_FAILURE_ON_UNSUBSCRIBE = ("notFoundEmails", "notFoundUserIds")


def braze_row_failures(body: Mapping[str, Any], input_array: str, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """{id: ("row_rejected", Braze's error type)} for the objects of `input_array` Braze refused."""
    failures: dict[str, tuple[str, str]] = {}
    for error in body.get("errors") or []:
        if not isinstance(error, dict) or error.get("input_array") != input_array:
            continue
        index = error.get("index")
        if isinstance(index, int) and 0 <= index < len(ids):
            failures[ids[index]] = ("row_rejected", redact(str(error.get("type") or "no reason given")))
    return failures


def iterable_row_failures(
    body: Mapping[str, Any], identities: Mapping[str, str], *, ignore: Sequence[str] = ()
) -> dict[str, tuple[str, str]]:
    """{user id: (reason key, detail)} for every identifier Iterable listed as failed."""
    lists: dict[str, Any] = dict(body.get("failedUpdates") or {})
    for key in ("invalidEmails", "invalidUserIds"):
        lists.setdefault(key, body.get(key) or [])
    failures: dict[str, tuple[str, str]] = {}
    for reason, identifiers in lists.items():
        if reason in ignore or not isinstance(identifiers, list):
            continue
        for identifier in identifiers:
            user_id = identities.get(str(identifier))
            if user_id is not None and user_id not in failures:
                failures[user_id] = (reason, f"Iterable listed the user in failedUpdates.{reason}")
    return failures
