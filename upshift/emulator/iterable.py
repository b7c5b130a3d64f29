"""Iterable project model: bulk user updates, bulk events, static lists, user reads.

Written from Iterable's public API documentation:

- Endpoint list and semantics, https://api.iterable.com/api/docs (OpenAPI; read as generated
  into idihyaabde/iterable-php `docs/Api/*.md`): `POST /api/users/bulkUpdate` "will add the
  data if it doesn't exist yet. Data will be merged; missing fields are not deleted", "types
  of data fields must match the types sent in previous requests"; `POST
  /api/events/trackBulk`; `POST /api/lists` creates a static list; `GET /api/lists`;
  `POST /api/lists/subscribe` / `unsubscribe`; `GET /api/users/{email}`, `GET
  /api/users/byUserId/{userId}`, `GET /api/users/getByEmail`.
- Request and response fields, from Iterable's own client Iterable/api-client
  (`src/types/users.ts`, `events.ts`, `lists.ts`, `common.ts`): bulk users carry `email` or
  `userId`, `dataFields`, `preferUserId`, `mergeNestedObjects` ("merge top-level objects
  instead of overwriting them"); events carry `eventName`, `id` ("if an event exists with
  that id, the event will be updated"), `createdAt` (unix seconds), `dataFields`; bulk
  answers are `{successCount, failCount, createdFields, filteredOutFields, failedUpdates:
  {invalidEmails, invalidUserIds, ...}, invalidEmails, invalidUserIds}` (the top-level
  lists are deprecated but still sent); `GET /api/lists` answers `{"lists": [{id, name,
  description, listType, createdAt}]}`, `POST /api/lists` answers `{"listId": n}`; a user read
  answers `{"user": {...}}` or `{}` when there is no such user.
- The full `failedUpdates` key set (conflict/forgotten/invalidData/invalid/notFound x
  Emails/UserIds), from block/iterable-go `types/shared.go`.
- Error body `{"msg", "code", "params"}` and the codes (BadApiKey, BadJsonBody, BadParams,
  BatchTooLarge, RateLimitExceeded, RequestFieldsTypesMismatched, GenericError, ...), from
  Iterable/api-client `src/types/common.ts` ("from official API docs") and
  `tests/unit/error-handling.test.ts`, which also records the 400 for an unknown list:
  `{"msg": "error.lists.invalidListId(999999999)", "code": "Success", "params": {"projectId",
  "listId"}}` - Iterable really sends code "Success" there.
- Rate-limit message `Exceeded rate limit for endpoint: <path>, project: <id>` with code
  `RateLimitExceeded`, as quoted by Fivetran's Iterable troubleshooting page
  (https://fivetran.com/docs/connectors/applications/iterable/troubleshooting/kb-iterable-rate-limit).

- `POST /api/users/updateEmail` (`currentEmail` or `currentUserId`, `newEmail`): "Change a
  user's email address. All profile data and events will be migrated to the new email
  address"; Iterable/api-client `src/client/users.ts`: "Returns an error if the new email
  already exists or has been forgotten via GDPR", answered `{"msg", "code": "Success",
  "params"}`; the error codes `EmailAlreadyExists`, `InvalidEmailAddressError`,
  `UnknownEmailError`, `UnknownUserIdError` are in `src/types/common.ts`.
- `GET /api/users/getFields` answers `{"fields": {name: type}}` (api-client
  `GetUserFieldsResponseSchema`: "field names map to field types as strings").
- Field types: "types of data fields must match the types sent in previous requests, across
  all data fields in the project" (bulkUpdate, update); a field is typed by the first value it
  receives: `long` (JSON integer), `double` (a number with a fraction or exponent), `string`,
  `boolean`, `object`; an array is typed by its elements.

Project types (`iterable_project_type`): `hybrid` (default; userId or email identifies a user,
both create one) or `email` (email-based: the email is the identity, so a bulk update with a
userId and an email the project does not know creates a second profile - the reason a change
of email must go through updateEmail). Emails are unique in both.

Simplifications: `preferUserId` and `createNewFields` are accepted and ignored, field types are
checked on top-level data fields only and strictly (an integer sent to a `double` field is
refused too, so a type that flips shows in tests), processing is synchronous.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from upshift.emulator.replies import Reply
from upshift.emulator.settings import EmulatorSettings

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FAILED_UPDATE_KEYS = (
    "conflictEmails",
    "conflictUserIds",
    "forgottenEmails",
    "forgottenUserIds",
    "invalidDataEmails",
    "invalidDataUserIds",
    "invalidEmails",
    "invalidUserIds",
    "notFoundEmails",
    "notFoundUserIds",
)

Rejects = Callable[[str | None], bool]


def error(status: int, msg: str, code: str, params: dict[str, Any] | None = None) -> Reply:
    """An Iterable error answer: `{"msg", "code", "params"}`."""
    return Reply(status, {"msg": msg, "code": code, "params": params})


class _Outcome:
    """Success and failure tally of one bulk request, in Iterable's response shape."""

    def __init__(self) -> None:
        self.success = 0
        self.failed = {key: [] for key in FAILED_UPDATE_KEYS}
        self.created_fields: list[str] = []

    def fail(self, key_stem: str, email: str | None, user_id: str | None) -> None:
        if email:
            self.failed[f"{key_stem}Emails"].append(email)
        else:
            self.failed[f"{key_stem}UserIds"].append(user_id or "")

    def body(self, **extra: Any) -> dict[str, Any]:
        fail_count = sum(len(values) for values in self.failed.values())
        return {
            "successCount": self.success,
            "failCount": fail_count,
            "invalidEmails": list(self.failed["invalidEmails"]),
            "invalidUserIds": list(self.failed["invalidUserIds"]),
            "createdFields": self.created_fields,
            "filteredOutFields": [],
            **extra,
            "failedUpdates": self.failed,
        }


class IterableProject:
    """In-memory users, events and static lists of one Iterable project."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._users: list[dict[str, Any]] = []
            # Lookups by identity (the first profile holding a userId or an email).
            self._by_user_id: dict[str, dict[str, Any]] = {}
            self._by_email: dict[str, dict[str, Any]] = {}
            self._events: dict[str, dict[str, Any]] = {}
            self._lists: dict[int, dict[str, Any]] = {}
            self._members: dict[int, set[int]] = {}
            self._field_types: dict[str, str] = {}
            self._next_list_id = 1001

    # ---------------------------------------------------------------- users

    def bulk_update(self, payload: Any, rejects: Rejects) -> Reply:
        users = payload.get("users") if isinstance(payload, dict) else None
        problem = self._batch_problem(users, "users", self.settings.iterable_bulk_update_max_users)
        if problem:
            return problem
        outcome = _Outcome()
        with self._lock:
            mismatch = self._type_mismatch(item.get("dataFields") for item in users if isinstance(item, dict))
            if mismatch:
                return mismatch
            for item in users:
                email, user_id, key_stem = _identify(item, rejects)
                if not key_stem and self._email_based and not email:
                    key_stem = "invalid"  # an email-based project identifies users by email only
                if not key_stem and self._email_conflict(email, user_id):
                    key_stem = "conflict"
                if key_stem:
                    outcome.fail(key_stem, email, user_id)
                    continue
                profile = self._upsert(email, user_id)
                outcome.created_fields += self._merge(profile, item.get("dataFields") or {}, item)
                outcome.success += 1
        return Reply(200, outcome.body())

    @property
    def _email_based(self) -> bool:
        return self.settings.iterable_project_type == "email"

    def _email_conflict(self, email: str | None, user_id: str | None) -> bool:
        """Hybrid projects: the userId's profile exists and another profile holds the email."""
        if self._email_based or not email or not user_id:
            return False
        by_id = self._find(None, user_id)
        by_email = self._find(email, None, by_email_only=True)
        return by_id is not None and by_email is not None and by_id is not by_email

    def update_email(self, payload: Any) -> Reply:
        """users/updateEmail: move a profile to a new email, which no other profile may hold."""
        if not isinstance(payload, dict):
            return error(400, "request body must be a JSON object", "BadJsonBody")
        current_email, current_user_id = payload.get("currentEmail"), payload.get("currentUserId")
        new_email = payload.get("newEmail")
        if not isinstance(new_email, str) or not EMAIL_PATTERN.match(new_email):
            return error(400, "newEmail is not a valid email address", "InvalidEmailAddressError")
        if not current_email and not current_user_id:
            return error(400, "Either currentEmail or currentUserId must be provided", "BadParams")
        with self._lock:
            if current_email:
                profile = self._find(str(current_email), None, by_email_only=True)
                if profile is None:
                    return error(400, "No user exists with the current email", "UnknownEmailError")
            else:
                profile = self._by_user_id.get(str(current_user_id))
                if profile is None:
                    return error(400, f"No user exists with userId {current_user_id}", "UnknownUserIdError")
            holder = self._find(new_email, None, by_email_only=True)
            if holder is not None and holder is not profile:
                return error(400, "A user with the new email already exists", "EmailAlreadyExists")
            self._set_identity(profile, "email", new_email)
            profile["profileUpdatedAt"] = _iterable_time()
            for event in self._events.values():
                if event["_profile"] == profile["_key"]:
                    event["email"] = new_email
        return Reply(200, {"msg": "", "code": "Success", "params": None})

    def fields(self) -> Reply:
        with self._lock:
            return Reply(200, {"fields": dict(self._field_types)})

    def user(self, email: str | None = None, user_id: str | None = None) -> Reply:
        with self._lock:
            found = self._find(email, user_id, by_email_only=email is not None and user_id is None)
            return Reply(200, {"user": _public(found)} if found else {})

    # ---------------------------------------------------------------- events

    def track_bulk(self, payload: Any, rejects: Rejects) -> Reply:
        events = payload.get("events") if isinstance(payload, dict) else None
        problem = self._batch_problem(events, "events", self.settings.iterable_track_bulk_max_events)
        if problem:
            return problem
        for index, item in enumerate(events):
            if not isinstance(item.get("eventName"), str) or not item["eventName"]:
                return error(400, f"events[{index}].eventName is required", "BadParams")
            event_id = item.get("id")
            if event_id is not None and (not isinstance(event_id, str) or not 0 < len(event_id) <= 512):
                return error(400, f"events[{index}].id must be a string of 1 to 512 characters", "BadParams")
            created_at = item.get("createdAt")
            if created_at is not None and (isinstance(created_at, bool) or not isinstance(created_at, int)):
                return error(400, f"events[{index}].createdAt must be a unix timestamp", "BadParams")
        outcome = _Outcome()
        with self._lock:
            mismatch = self._type_mismatch(item.get("dataFields") for item in events)
            if mismatch:
                return mismatch
            for item in events:
                email, user_id, key_stem = _identify(item, rejects)
                if key_stem:
                    outcome.fail(key_stem, email, user_id)
                    continue
                profile = self._upsert(email, user_id)
                if isinstance(item.get("dataFields"), dict):
                    outcome.created_fields += self._register_types(item["dataFields"])
                self._record_event(item, profile)
                outcome.success += 1
        return Reply(200, outcome.body(disallowedEventNames=[]))

    def _record_event(self, item: dict[str, Any], profile: dict[str, Any]) -> None:
        event_id = item.get("id") or uuid.uuid4().hex
        previous = self._events.get(event_id)
        self._events[event_id] = {
            "id": event_id,
            "eventName": item["eventName"],
            "email": profile.get("email"),
            "userId": profile.get("userId"),
            "createdAt": item.get("createdAt") or int(time.time()),
            "dataFields": item.get("dataFields") or {},
            "deliveries": (previous["deliveries"] + 1) if previous else 1,
            "_profile": profile["_key"],
        }

    # ---------------------------------------------------------------- lists

    def create_list(self, payload: Any) -> Reply:
        name = payload.get("name") if isinstance(payload, dict) else None
        if not isinstance(name, str) or not name.strip():
            return error(400, "name is required", "BadParams")
        with self._lock:
            list_id = self._next_list_id
            self._next_list_id += 1
            self._lists[list_id] = {
                "id": list_id,
                "name": name,
                "description": payload.get("description") or "",
                "listType": "Standard",
                "createdAt": int(time.time() * 1000),
            }
            self._members[list_id] = set()
        return Reply(200, {"listId": list_id})

    def lists(self) -> Reply:
        with self._lock:
            return Reply(200, {"lists": [dict(item) for item in self._lists.values()]})

    def subscribe(self, payload: Any, rejects: Rejects) -> Reply:
        return self._change_membership(payload, rejects, subscribe=True)

    def unsubscribe(self, payload: Any, rejects: Rejects) -> Reply:
        return self._change_membership(payload, rejects, subscribe=False)

    def _change_membership(self, payload: Any, rejects: Rejects, subscribe: bool) -> Reply:
        if not isinstance(payload, dict):
            return error(400, "request body must be a JSON object", "BadParams")
        list_id = payload.get("listId")
        subscribers = payload.get("subscribers")
        problem = self._batch_problem(subscribers, "subscribers", self.settings.iterable_list_max_subscribers)
        if problem:
            return problem
        if isinstance(list_id, bool) or not isinstance(list_id, int):
            return error(400, "listId must be an integer", "BadParams")
        outcome = _Outcome()
        with self._lock:
            if list_id not in self._lists:
                params = {"projectId": self.settings.iterable_project_id, "listId": list_id}
                return error(400, f"error.lists.invalidListId({list_id})", "Success", params)
            if subscribe:
                mismatch = self._type_mismatch(item.get("dataFields") for item in subscribers)
                if mismatch:
                    return mismatch
            update_existing_only = payload.get("updateExistingUsersOnly") is True or not subscribe
            for item in subscribers:
                email, user_id, key_stem = _identify(item, rejects)
                if key_stem:
                    outcome.fail(key_stem, email, user_id)
                    continue
                profile = self._find(email, user_id)
                if profile is None and update_existing_only:
                    outcome.fail("notFound", email, user_id)
                    continue
                profile = profile or self._upsert(email, user_id)
                members = self._members[list_id]
                if subscribe:
                    self._merge(profile, item.get("dataFields") or {}, item)
                    members.add(profile["_key"])
                else:
                    members.discard(profile["_key"])
                outcome.success += 1
        return Reply(200, outcome.body())

    # ---------------------------------------------------------------- inspection

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            by_key = {user["_key"]: user for user in self._users}
            events = list(self._events.values())
            counts: dict[str, dict[str, int]] = {}
            for event in events:
                owner = event["userId"] or event["email"]
                per_user = counts.setdefault(owner, {})
                per_user[event["eventName"]] = per_user.get(event["eventName"], 0) + 1
            return {
                "users": [_public(user) for user in self._users],
                "events": [{k: v for k, v in event.items() if not k.startswith("_")} for event in events],
                "event_counts": counts,
                "field_types": dict(self._field_types),
                "lists": [
                    {
                        **item,
                        "members": sorted(
                            by_key[key].get("userId") or by_key[key].get("email") for key in self._members[list_id]
                        ),
                    }
                    for list_id, item in self._lists.items()
                ],
            }

    # ---------------------------------------------------------------- internals

    def _batch_problem(self, items: Any, name: str, limit: int) -> Reply | None:
        if not isinstance(items, list) or not items:
            return error(400, f"{name} must be a non-empty list", "BadParams")
        if not all(isinstance(item, dict) for item in items):
            return error(400, f"every entry of {name} must be a JSON object", "BadParams")
        if len(items) > limit:
            return error(400, f"{len(items)} {name} in one request; the limit is {limit}", "BatchTooLarge")
        return None

    def _type_mismatch(self, data_fields: Any) -> Reply | None:
        seen: dict[str, str] = {}
        for fields in data_fields:
            for key, value in (fields or {}).items() if isinstance(fields, dict) else ():
                kind = _kind(value)
                if kind is None:
                    continue
                expected = self._field_types.get(key) or seen.setdefault(key, kind)
                if expected != kind:
                    return error(
                        400,
                        f"Field type mismatch for {key}: expected {expected}, got {kind}",
                        "RequestFieldsTypesMismatched",
                        {"field": key, "expected": expected, "actual": kind},
                    )
        return None

    def _find(self, email: str | None, user_id: str | None, by_email_only: bool = False) -> dict[str, Any] | None:
        by_email_only = by_email_only or (self._email_based and bool(email))
        if user_id and not by_email_only:
            found = self._by_user_id.get(user_id)
            if found:
                return found
        if email:
            return self._by_email.get(email)
        return None

    def _upsert(self, email: str | None, user_id: str | None) -> dict[str, Any]:
        profile = self._find(email, user_id)
        if profile is None:
            profile = {"_key": len(self._users), "email": None, "userId": None, "dataFields": {}}
            profile["signupDate"] = _iterable_time()
            self._users.append(profile)
        if email and not profile.get("email"):
            self._set_identity(profile, "email", email)
        if user_id and (not profile.get("userId") or self._email_based):
            self._set_identity(profile, "userId", user_id)
        return profile

    def _set_identity(self, profile: dict[str, Any], key: str, value: str) -> None:
        """Set a profile's email or userId and keep the lookup by it in step."""
        index = self._by_email if key == "email" else self._by_user_id
        old = profile.get(key)
        if old is not None and index.get(old) is profile:
            del index[old]
        profile[key] = value
        index.setdefault(value, profile)

    def _merge(self, profile: dict[str, Any], data_fields: dict[str, Any], item: dict[str, Any]) -> list[str]:
        created = self._register_types(data_fields)
        merge_nested = item.get("mergeNestedObjects") is True
        current = profile["dataFields"]
        for key, value in data_fields.items():
            if merge_nested and isinstance(value, dict) and isinstance(current.get(key), dict):
                current[key] = {**current[key], **value}
            else:
                current[key] = value
        profile["profileUpdatedAt"] = _iterable_time()
        return created

    def _register_types(self, data_fields: dict[str, Any]) -> list[str]:
        """Remember the type of each new field (Iterable checks types project-wide); the new names."""
        created = []
        for key, value in data_fields.items():
            kind = _kind(value)
            if kind and key not in self._field_types:
                self._field_types[key] = kind
                created.append(key)
        return created


def _identify(item: dict[str, Any], rejects: Rejects) -> tuple[str | None, str | None, str | None]:
    """(email, userId, failure key stem or None) of one bulk entry."""
    email = item.get("email")
    user_id = item.get("userId")
    if email is not None and (not isinstance(email, str) or not EMAIL_PATTERN.match(email)):
        return str(email), None, "invalid"
    if user_id is not None and (not isinstance(user_id, str) or not user_id):
        return None, str(user_id), "invalid"
    if not email and not user_id:
        return None, "", "invalid"
    if not isinstance(item.get("dataFields", {}), dict):
        return email, user_id, "invalidData"
    if rejects(user_id) or rejects(email):
        return email, user_id, "invalidData"
    return email, user_id, None


def _public(profile: dict[str, Any]) -> dict[str, Any]:
    user = {key: value for key, value in profile.items() if not key.startswith("_") and value is not None}
    user["dataFields"] = dict(profile["dataFields"])
    return user


def _kind(value: Any) -> str | None:
    """Iterable's type of a JSON value: long, double, string, boolean, object; arrays by element."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        kinds = {_kind(item) for item in value} - {None}
        if not kinds:
            return None
        return kinds.pop() if len(kinds) == 1 else "mixed"
    return "object"


def _iterable_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S +00:00")
