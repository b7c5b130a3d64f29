"""Braze workspace model: `/users/track` writes, `/users/export/ids` reads back.

Written from Braze's public REST docs (read from braze-inc/braze-docs):

- POST /users/track, https://www.braze.com/docs/api/endpoints/user_data/post_user_track/:
  `attributes`, `events`, `purchases` arrays; each object names its user by one of
  `external_id`, `user_alias`, `braze_id`, `email`, `phone`; processed in the order
  attributes, events, purchases; success is `{"message": "success", "attributes_processed",
  "events_processed", "purchases_processed"}` (only for arrays that were sent), non-fatal
  errors come back in an `errors` array next to `"message": "success"`, and every event
  object is a separate occurrence (Braze has no event idempotency key).
- Status 201 and the row-error shape `{"type": ..., "input_array": "attributes", "index": i}`:
  a recorded Braze answer in the Go client test of the braze client (found by the code search,
  `"attributes_processed":1,"message":"success","errors":[{"type":"'external_id' or
  'braze_id' or 'user_alias' is required","input_array":"attributes","index":1}]`) and a
  recorded 400 in a public gist (patrickxrivera/c4f4529b...): `{"message":"Valid data must be
  provided in the 'attributes', 'events', or 'purchases' fields.","errors":[{"type":"'price'
  is not valid","input_array":"purchases","index":0}]}`.
- Fatal errors, https://www.braze.com/docs/api/errors/: "400 Max Input Length Exceeded -
  more than 75 external ids when hitting the User Track endpoint", "401 Unauthorized -
  unknown or missing REST API Key", 429 over the rate limit, 5XX retry with backoff.
- User attributes object, https://www.braze.com/docs/api/objects_filters/user_attributes_object/:
  setting an attribute to null removes it; arrays are sets (duplicates dropped); `{"add":
  [...]}` / `{"remove": [...]}` edit an array (an added element moves to the end);
  `{"inc": n}` increments; `_update_existing_only` puts the object in update-only mode (the
  default for `user_alias`). Nested custom attributes replace the stored object unless the
  attributes object sets `_merge_objects: true`
  (https://www.braze.com/docs/user_guide/data/custom_data/custom_attributes/nested_custom_attribute_support/).
- Event object (`name`, `time` required; `properties` an object) and purchase object
  (`product_id`, `currency`, `price`, `time`), https://www.braze.com/docs/api/objects_filters/.
- POST /users/export/ids, https://www.braze.com/docs/api/endpoints/export/user_data/post_users_identifier/:
  up to 50 `external_ids`/`user_aliases`, or one `braze_id` / `email_address` / `phone`;
  answers `{"message": "success", "users": [...], "invalid_user_ids": [...]}` with
  `custom_attributes`, `custom_events` and `purchases` summaries (name, first, last, count).

Simplifications: processing is synchronous (Braze queues), no devices or push tokens,
email/phone identify the most recently updated profile with that value, an unknown
`braze_id` is ignored like an update-only object.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from upshift.emulator.replies import Reply
from upshift.emulator.settings import EmulatorSettings

IDENTIFIER_KEYS = ("external_id", "user_alias", "braze_id", "email", "phone")
CONTROL_KEYS = {"_update_existing_only", "_merge_objects", "push_token_import"}
PROFILE_FIELDS = {
    "country",
    "current_location",
    "date_of_first_session",
    "date_of_last_session",
    "dob",
    "email",
    "email_subscribe",
    "first_name",
    "gender",
    "home_city",
    "image_url",
    "language",
    "last_name",
    "phone",
    "push_subscribe",
    "time_zone",
}
ARRAYS = ("attributes", "events", "purchases")
NO_VALID_DATA = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
MISSING_IDENTIFIER = "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"
REJECTED = "provided external_id is blacklisted and disallowed"

Rejects = Callable[[str | None], bool]


class ObjectError(ValueError):
    """A row-level problem: becomes one entry of the `errors` array."""


class BrazeWorkspace:
    """In-memory user profiles, events and purchases of one Braze workspace."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._users: dict[str, dict[str, Any]] = {}
            self._by_external_id: dict[str, str] = {}
            self._by_alias: dict[tuple[str, str], str] = {}
            self._events: list[dict[str, Any]] = []
            self._purchases: list[dict[str, Any]] = []
            self._next_id = 1

    # ---------------------------------------------------------------- /users/track

    def track(self, payload: Any, rejects: Rejects) -> Reply:
        if not isinstance(payload, dict):
            return Reply(400, {"message": "Bad Request", "errors": ["request body must be a JSON object"]})
        arrays: dict[str, list[Any]] = {}
        for name in ARRAYS:
            value = payload.get(name)
            if value is None:
                continue
            if not isinstance(value, list):
                return Reply(400, {"message": "Bad Request", "errors": [f"'{name}' must be an array"]})
            arrays[name] = value
        if not any(arrays.values()):
            return Reply(400, {"message": NO_VALID_DATA})
        too_long = self._length_errors(arrays)
        if too_long:
            return Reply(400, {"message": "Max Input Length Exceeded", "errors": too_long})

        errors: list[dict[str, Any]] = []
        processed = {name: 0 for name in arrays}
        with self._lock:
            for name, apply in (
                ("attributes", self._apply_attributes),
                ("events", self._apply_event),
                ("purchases", self._apply_purchase),
            ):
                for index, item in enumerate(arrays.get(name, [])):
                    try:
                        apply(item, rejects)
                    except ObjectError as error:
                        errors.append({"type": str(error), "input_array": name, "index": index})
                    else:
                        processed[name] += 1
        if not any(processed.values()):
            return Reply(400, {"message": NO_VALID_DATA, "errors": errors})
        body: dict[str, Any] = {"message": "success"}
        body.update({f"{name}_processed": count for name, count in processed.items()})
        if errors:
            body["errors"] = errors
        return Reply(201, body)

    def _length_errors(self, arrays: dict[str, list[Any]]) -> list[str]:
        per_array = self.settings.braze_max_objects_per_array
        errors = [
            f"'{name}' has {len(items)} objects; the limit is {per_array} per request"
            for name, items in arrays.items()
            if len(items) > per_array
        ]
        combined_cap = self.settings.braze_max_objects_combined
        combined = sum(len(items) for items in arrays.values())
        if combined_cap and combined > combined_cap:
            errors.append(f"{combined} objects in total; the limit is {combined_cap} combined per request")
        return errors

    def _apply_attributes(self, item: Any, rejects: Rejects) -> None:
        user = self._resolve(item, rejects)
        if user is None:
            return
        merge_objects = item.get("_merge_objects") is True
        for key, value in item.items():
            if key in CONTROL_KEYS or key in {"external_id", "user_alias", "braze_id"}:
                continue
            if key in PROFILE_FIELDS:
                _set_or_remove(user["profile"], key, value)
            else:
                _apply_custom(user["custom_attributes"], key, value, merge_objects)
        self._touch(user)

    def _apply_event(self, item: Any, rejects: Rejects) -> None:
        if not isinstance(item, dict):
            raise ObjectError("event object must be a JSON object")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ObjectError("'name' is required")
        when = _parse_time(item.get("time"))
        properties = item.get("properties", {})
        if not isinstance(properties, dict):
            raise ObjectError("'properties' is not valid")
        user = self._resolve(item, rejects)
        if user is None:
            return
        self._events.append(
            {
                "braze_id": user["braze_id"],
                "external_id": user.get("external_id"),
                "name": name,
                "time": when,
                "properties": properties,
                "received_at": _now(),
            }
        )
        _count(user["custom_events"], name, when)
        self._touch(user)

    def _apply_purchase(self, item: Any, rejects: Rejects) -> None:
        if not isinstance(item, dict):
            raise ObjectError("purchase object must be a JSON object")
        product_id = item.get("product_id")
        if not isinstance(product_id, str) or not product_id:
            raise ObjectError("'product_id' is required")
        if not isinstance(item.get("currency"), str) or len(item["currency"]) != 3:
            raise ObjectError("'currency' is not valid")
        price = item.get("price")
        if isinstance(price, bool) or not isinstance(price, int | float):
            raise ObjectError("'price' is not valid")
        when = _parse_time(item.get("time"))
        user = self._resolve(item, rejects)
        if user is None:
            return
        self._purchases.append(
            {
                "braze_id": user["braze_id"],
                "external_id": user.get("external_id"),
                "product_id": product_id,
                "currency": item["currency"],
                "price": price,
                "quantity": item.get("quantity", 1),
                "time": when,
                "properties": item.get("properties", {}),
            }
        )
        _count(user["purchases"], product_id, when)
        self._touch(user)

    def _resolve(self, item: Any, rejects: Rejects) -> dict[str, Any] | None:
        """The profile an object writes to, created if allowed; None when update-only misses."""
        if not isinstance(item, dict):
            raise ObjectError("object must be a JSON object")
        key = next((name for name in IDENTIFIER_KEYS if item.get(name) not in (None, "")), None)
        if key is None:
            raise ObjectError(MISSING_IDENTIFIER)
        value = item[key]
        if key == "user_alias":
            if not isinstance(value, dict) or not all(
                isinstance(value.get(part), str) and value.get(part) for part in ("alias_name", "alias_label")
            ):
                raise ObjectError("'user_alias' is not valid")
            if rejects(value["alias_name"]):
                raise ObjectError(REJECTED)
            alias = (value["alias_label"], value["alias_name"])
            found = self._users.get(self._by_alias.get(alias, ""))
            if found is None and item.get("_update_existing_only", True) is False:
                found = self._create(aliases=[alias])
            return found
        if not isinstance(value, str):
            raise ObjectError(f"'{key}' is not valid")
        if rejects(value):
            raise ObjectError(REJECTED)
        update_only = item.get("_update_existing_only") is True
        if key == "external_id":
            found = self._users.get(self._by_external_id.get(value, ""))
            if found is None and not update_only:
                found = self._create(external_id=value)
            return found
        if key == "braze_id":
            return self._users.get(value)
        field_name = "email" if key == "email" else "phone"
        matches = [user for user in self._users.values() if user["profile"].get(field_name) == value]
        if matches:
            return max(matches, key=lambda user: user["updated_seq"])
        return None if update_only else self._create(profile={field_name: value})

    def _create(
        self,
        external_id: str | None = None,
        aliases: list[tuple[str, str]] | None = None,
        profile: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        braze_id = f"emu{self._next_id:08d}"
        self._next_id += 1
        user = {
            "braze_id": braze_id,
            "external_id": external_id,
            "user_aliases": [{"alias_label": label, "alias_name": name} for label, name in aliases or []],
            "profile": dict(profile or {}),
            "custom_attributes": {},
            "custom_events": {},
            "purchases": {},
            "created_at": _now(),
            "updated_at": _now(),
            "updated_seq": 0,
        }
        self._users[braze_id] = user
        if external_id is not None:
            self._by_external_id[external_id] = braze_id
        for alias in aliases or []:
            self._by_alias[alias] = braze_id
        return user

    def _touch(self, user: dict[str, Any]) -> None:
        self._next_id += 1
        user["updated_seq"] = self._next_id
        user["updated_at"] = _now()

    # ---------------------------------------------------------------- /users/export/ids

    def export_ids(self, payload: Any) -> Reply:
        if not isinstance(payload, dict):
            return Reply(400, {"message": "Bad Request", "errors": ["request body must be a JSON object"]})
        external_ids = payload.get("external_ids") or []
        aliases = payload.get("user_aliases") or []
        if not isinstance(external_ids, list) or not all(isinstance(item, str) for item in external_ids):
            return Reply(400, {"message": "Bad Request", "errors": ["'external_ids' must be an array of strings"]})
        if len(external_ids) + len(aliases) > self.settings.braze_export_max_ids:
            return Reply(400, {"message": "The max number of external_ids and aliases per request was exceeded"})
        fields_to_export = payload.get("fields_to_export")
        with self._lock:
            found: list[dict[str, Any]] = []
            invalid: list[str] = []
            for external_id in external_ids:
                user = self._users.get(self._by_external_id.get(external_id, ""))
                (found.append(user) if user else invalid.append(external_id))
            for alias in aliases:
                if isinstance(alias, dict):
                    key = (str(alias.get("alias_label")), str(alias.get("alias_name")))
                    user = self._users.get(self._by_alias.get(key, ""))
                    if user:
                        found.append(user)
            if payload.get("braze_id"):
                user = self._users.get(str(payload["braze_id"]))
                (found.append(user) if user else invalid.append(str(payload["braze_id"])))
            for request_key, field_name in (("email_address", "email"), ("phone", "phone")):
                wanted = payload.get(request_key)
                if wanted:
                    found.extend(user for user in self._users.values() if user["profile"].get(field_name) == wanted)
            users = [_export(user, fields_to_export) for user in found]
        body: dict[str, Any] = {"message": "success", "users": users}
        if invalid:
            body["invalid_user_ids"] = invalid
        return Reply(201, body)

    # ---------------------------------------------------------------- inspection

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            users = [_export(user, None) for user in self._users.values()]
            event_counts: dict[str, dict[str, int]] = {}
            for event in self._events:
                owner = event["external_id"] or event["braze_id"]
                per_user = event_counts.setdefault(owner, {})
                per_user[event["name"]] = per_user.get(event["name"], 0) + 1
            return {
                "users": users,
                "events": [dict(event) for event in self._events],
                "event_counts": event_counts,
                "purchases": [dict(purchase) for purchase in self._purchases],
            }


def _export(user: dict[str, Any], fields_to_export: Any) -> dict[str, Any]:
    exported = {
        "external_id": user["external_id"],
        "braze_id": user["braze_id"],
        "user_aliases": list(user["user_aliases"]),
        **user["profile"],
        "custom_attributes": _copy(user["custom_attributes"]),
        "custom_events": [{"name": name, **summary} for name, summary in user["custom_events"].items()],
        "purchases": [{"name": name, **summary} for name, summary in user["purchases"].items()],
        "created_at": user["created_at"],
    }
    exported = {key: value for key, value in exported.items() if value not in (None, [], {})}
    if isinstance(fields_to_export, list):
        exported = {key: value for key, value in exported.items() if key in fields_to_export}
    return exported


def _apply_custom(attributes: dict[str, Any], key: str, value: Any, merge_objects: bool) -> None:
    if value is None:
        attributes.pop(key, None)
        return
    if isinstance(value, dict) and value and set(value) <= {"add", "remove"}:
        current = attributes.get(key) if isinstance(attributes.get(key), list) else []
        for element in value.get("add") or []:
            current = [item for item in current if item != element] + [element]
        removed = value.get("remove") or []
        attributes[key] = [item for item in current if item not in removed]
        return
    if isinstance(value, dict) and set(value) == {"inc"}:
        if isinstance(value["inc"], bool) or not isinstance(value["inc"], int):
            raise ObjectError(f"'{key}' is not valid")
        current = attributes.get(key)
        base = current if isinstance(current, int) and not isinstance(current, bool) else 0
        attributes[key] = base + value["inc"]
        return
    if isinstance(value, list):
        unique: list[Any] = []
        for element in value:
            if isinstance(element, list):
                raise ObjectError(f"'{key}' is not valid")
            if element not in unique:
                unique.append(element)
        attributes[key] = unique
        return
    if isinstance(value, dict) and merge_objects and isinstance(attributes.get(key), dict):
        attributes[key] = _deep_merge(attributes[key], value)
        return
    attributes[key] = _copy(value)


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = _copy(value)
    return merged


def _set_or_remove(target: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


def _count(summaries: dict[str, dict[str, Any]], name: str, when: str) -> None:
    summary = summaries.setdefault(name, {"first": when, "last": when, "count": 0})
    summary["first"] = min(summary["first"], when)
    summary["last"] = max(summary["last"], when)
    summary["count"] += 1


def _parse_time(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ObjectError("'time' is required")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise ObjectError("'time' is not valid") from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
