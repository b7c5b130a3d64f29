"""The Braze / Iterable emulator, exercised over real HTTP like the sync will use it.

Each test talks to a running emulator (in-process thread, or a child process for the
subprocess starter) and asserts what a client observes: status codes, documented body
shapes and headers, and what the emulator holds afterwards.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest
import requests

from upshift.emulator import EmulatorSettings, RunningEmulator, serve_in_thread, start_subprocess

BRAZE_KEY = "test-braze-key-3f9c1d"
ITERABLE_KEY = "test-iterable-key-8a2e4b"
BRAZE_AUTH = {"Authorization": f"Bearer {BRAZE_KEY}"}
ITERABLE_AUTH = {"Api-Key": ITERABLE_KEY}
SETTINGS = EmulatorSettings(
    braze_api_key=BRAZE_KEY,
    iterable_api_key=ITERABLE_KEY,
    iterable_bulk_update_max_users=10,
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with serve_in_thread(SETTINGS) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(request: pytest.FixtureRequest) -> None:
    if "emulator" in request.fixturenames:
        running = request.getfixturevalue("emulator")
        requests.post(f"{running.url}/_emulator/reset", timeout=5).raise_for_status()


def braze(emulator: RunningEmulator, path: str, payload: object, headers: dict[str, str] = BRAZE_AUTH):
    return requests.post(f"{emulator.braze_url}{path}", json=payload, headers=headers, timeout=10)


def iterable(emulator: RunningEmulator, path: str, payload: object = None, headers: dict[str, str] = ITERABLE_AUTH):
    if payload is None:
        return requests.get(f"{emulator.iterable_url}{path}", headers=headers, timeout=10)
    return requests.post(f"{emulator.iterable_url}{path}", json=payload, headers=headers, timeout=10)


def arm(emulator: RunningEmulator, faults: dict) -> None:
    requests.post(f"{emulator.url}/_emulator/faults", json=faults, timeout=5).raise_for_status()


def state(emulator: RunningEmulator) -> dict:
    return requests.get(f"{emulator.url}/_emulator/state", timeout=5).json()


def attribute(external_id: str, **fields: object) -> dict:
    return {"external_id": external_id, **fields}


def event(external_id: str, name: str = "upgrade_ready") -> dict:
    return {"external_id": external_id, "name": name, "time": "2024-05-01T10:00:00Z", "properties": {"offer": "pro"}}


def exported(emulator: RunningEmulator, *external_ids: str) -> dict[str, dict]:
    response = braze(emulator, "/users/export/ids", {"external_ids": list(external_ids)})
    assert response.status_code == 201
    return {user["external_id"]: user for user in response.json()["users"]}


# ---------------------------------------------------------------- auth


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": BRAZE_KEY}])
def test_braze_answers_401_to_a_missing_or_unknown_key_and_stores_nothing(emulator, headers):
    response = braze(emulator, "/users/track", {"attributes": [attribute("u1", tier="high")]}, headers=headers)

    assert response.status_code == 401
    assert response.json() == {"message": "Invalid API key"}
    assert state(emulator)["braze"]["users"] == []


@pytest.mark.parametrize("headers", [{}, {"Api-Key": "wrong"}])
def test_iterable_answers_401_bad_api_key_in_its_error_shape(emulator, headers):
    response = iterable(emulator, "/api/users/bulkUpdate", {"users": [{"userId": "u1"}]}, headers=headers)

    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "BadApiKey"
    assert body["msg"] == "Invalid API key"
    assert body["params"]["endpoint"] == "/api/users/bulkUpdate"


def test_iterable_also_accepts_the_api_underscore_key_header(emulator):
    response = iterable(emulator, "/api/lists", headers={"Api_Key": ITERABLE_KEY})

    assert response.status_code == 200
    assert response.json() == {"lists": []}


# ---------------------------------------------------------------- Braze /users/track


def test_braze_track_accepts_75_attributes_and_rejects_76_whole(emulator):
    full = {"attributes": [attribute(f"u{index}", tier="high") for index in range(75)]}
    over = {"attributes": [attribute(f"v{index}", tier="high") for index in range(76)]}

    accepted = braze(emulator, "/users/track", full)
    rejected = braze(emulator, "/users/track", over)

    assert accepted.status_code == 201
    assert accepted.json() == {"message": "success", "attributes_processed": 75}
    assert rejected.status_code == 400
    assert rejected.json()["message"] == "Max Input Length Exceeded"
    assert len(state(emulator)["braze"]["users"]) == 75


def test_bodies_over_the_size_limit_are_refused_with_413():
    settings = SETTINGS.with_overrides(max_body_bytes=2000)
    payload = {"attributes": [attribute(f"u{index}", note="x" * 100) for index in range(20)]}

    with serve_in_thread(settings) as running:
        response = braze(running, "/users/track", payload)
        users = state(running)["braze"]["users"]

    assert response.status_code == 413
    assert users == []


def test_braze_combined_object_cap_is_a_setting():
    settings = SETTINGS.with_overrides(braze_max_objects_combined=50)
    payload = {"attributes": [attribute(f"u{i}") for i in range(30)], "events": [event(f"u{i}") for i in range(30)]}

    with serve_in_thread(settings) as running:
        response = braze(running, "/users/track", payload)

    assert response.status_code == 400
    assert "50 combined" in json.dumps(response.json())


def test_braze_row_errors_come_back_in_a_201_and_valid_rows_are_kept(emulator):
    payload = {
        "attributes": [attribute("u1", tier="high"), {"tier": "orphan"}],
        "events": [event("u1"), {"external_id": "u1", "name": "no_time"}],
        "purchases": [
            {"external_id": "u1", "product_id": "pro", "currency": "USD", "price": "x", "time": "2024-05-01"}
        ],
    }

    response = braze(emulator, "/users/track", payload)

    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "success"
    assert (body["attributes_processed"], body["events_processed"], body["purchases_processed"]) == (1, 1, 0)
    assert [(error["input_array"], error["index"]) for error in body["errors"]] == [
        ("attributes", 1),
        ("events", 1),
        ("purchases", 0),
    ]
    assert body["errors"][2]["type"] == "'price' is not valid"
    assert exported(emulator, "u1")["u1"]["custom_attributes"] == {"tier": "high"}


def test_braze_request_without_any_valid_object_is_a_400_with_the_row_errors(emulator):
    response = braze(emulator, "/users/track", {"attributes": [{"tier": "orphan"}]})

    assert response.status_code == 400
    assert response.json()["message"].startswith("Valid data must be provided")
    assert response.json()["errors"][0]["input_array"] == "attributes"


def test_braze_attribute_semantics_null_removes_arrays_are_sets_nested_objects_merge(emulator):
    braze(
        emulator,
        "/users/track",
        {"attributes": [attribute("u1", tier="high", segments=["a", "b", "a"], stats={"x": 1})]},
    )

    braze(
        emulator,
        "/users/track",
        {
            "attributes": [
                attribute(
                    "u1", tier=None, segments={"add": ["c"], "remove": ["a"]}, stats={"y": 2}, _merge_objects=True
                ),
                attribute("u1", searches={"inc": 3}),
            ]
        },
    )

    custom = exported(emulator, "u1")["u1"]["custom_attributes"]
    assert "tier" not in custom
    assert custom["segments"] == ["b", "c"]
    assert custom["stats"] == {"x": 1, "y": 2}
    assert custom["searches"] == 3


def test_braze_events_are_never_deduplicated(emulator):
    braze(emulator, "/users/track", {"events": [event("u1"), event("u1")]})

    user = exported(emulator, "u1")["u1"]

    assert user["custom_events"][0]["count"] == 2
    assert state(emulator)["braze"]["event_counts"] == {"u1": {"upgrade_ready": 2}}


def test_braze_export_reports_unknown_ids(emulator):
    braze(emulator, "/users/track", {"attributes": [attribute("u1", tier="high")]})

    response = braze(emulator, "/users/export/ids", {"external_ids": ["u1", "ghost"]})

    assert response.json()["invalid_user_ids"] == ["ghost"]
    assert [user["external_id"] for user in response.json()["users"]] == ["u1"]


def test_braze_sends_rate_limit_headers_on_every_response(emulator):
    response = braze(emulator, "/users/track", {"attributes": [attribute("u1")]})

    assert response.headers["X-RateLimit-Limit"] == "3000"
    assert int(response.headers["X-RateLimit-Remaining"]) < 3000
    assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())


def until_rate_limited(send, attempts: int = 6) -> list[requests.Response]:
    """Send until the first 429 (a window edge between two requests can delay it by one)."""
    responses = []
    for _ in range(attempts):
        responses.append(send())
        if responses[-1].status_code == 429:
            break
    return responses


def test_braze_429_carries_x_ratelimit_reset_and_no_retry_after():
    settings = SETTINGS.with_overrides(braze_track_rate_limit=2, braze_track_rate_window_seconds=1.0)
    payload = {"attributes": [attribute("u1")]}

    with serve_in_thread(settings) as running:
        responses = until_rate_limited(lambda: braze(running, "/users/track", payload))
        limited = responses[-1]
        time.sleep(max(0.0, int(limited.headers["X-RateLimit-Reset"]) - time.time()) + 0.05)
        after_reset = braze(running, "/users/track", payload)

    assert limited.status_code == 429
    assert {response.status_code for response in responses[:-1]} == {201}
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["X-RateLimit-Limit"] == "2"
    assert "Retry-After" not in limited.headers
    assert after_reset.status_code == 201


# ---------------------------------------------------------------- Iterable


def test_iterable_bulk_update_merges_fields_and_reports_invalid_emails(emulator):
    iterable(
        emulator,
        "/api/users/bulkUpdate",
        {"users": [{"userId": "u1", "email": "ana@example.com", "dataFields": {"tier": "high", "numbers": {"a": 1}}}]},
    )

    response = iterable(
        emulator,
        "/api/users/bulkUpdate",
        {
            "users": [
                {"userId": "u1", "dataFields": {"score": 71, "numbers": {"b": 2}}, "mergeNestedObjects": True},
                {"email": "not-an-email", "dataFields": {"tier": "low"}},
            ]
        },
    )

    body = response.json()
    assert response.status_code == 200
    assert (body["successCount"], body["failCount"]) == (1, 1)
    assert body["failedUpdates"]["invalidEmails"] == ["not-an-email"]
    assert body["invalidEmails"] == ["not-an-email"]
    by_email = iterable(emulator, "/api/users/ana@example.com").json()["user"]
    by_user_id = iterable(emulator, "/api/users/byUserId/u1").json()["user"]
    assert by_email == by_user_id
    assert by_email["dataFields"] == {"tier": "high", "score": 71, "numbers": {"a": 1, "b": 2}}


def test_iterable_unknown_user_reads_back_as_an_empty_object(emulator):
    assert iterable(emulator, "/api/users/byUserId/ghost").json() == {}


def test_iterable_rejects_a_batch_over_the_limit_as_batch_too_large(emulator):
    users = [{"userId": f"u{index}", "dataFields": {"tier": "high"}} for index in range(11)]

    response = iterable(emulator, "/api/users/bulkUpdate", {"users": users})

    assert response.status_code == 400
    assert response.json()["code"] == "BatchTooLarge"
    assert state(emulator)["iterable"]["users"] == []


def test_iterable_rejects_a_field_whose_type_changed(emulator):
    iterable(emulator, "/api/users/bulkUpdate", {"users": [{"userId": "u1", "dataFields": {"score": 71}}]})

    response = iterable(emulator, "/api/users/bulkUpdate", {"users": [{"userId": "u2", "dataFields": {"score": "71"}}]})

    assert response.status_code == 400
    assert response.json()["code"] == "RequestFieldsTypesMismatched"


def test_iterable_types_a_field_by_its_first_value_so_a_decimal_after_an_integer_is_refused(emulator):
    first = iterable(emulator, "/api/users/bulkUpdate", {"users": [{"userId": "u1", "dataFields": {"earnings": 0}}]})

    later = iterable(emulator, "/api/users/bulkUpdate", {"users": [{"userId": "u2", "dataFields": {"earnings": 12.5}}]})

    assert first.status_code == 200
    assert later.status_code == 400
    assert later.json()["code"] == "RequestFieldsTypesMismatched"
    assert later.json()["params"] == {"field": "earnings", "expected": "long", "actual": "double"}
    assert iterable(emulator, "/api/users/getFields").json() == {"fields": {"earnings": "long"}}
    assert "u2" not in {user.get("userId") for user in state(emulator)["iterable"]["users"]}


def test_iterable_update_email_moves_the_profile_and_its_events_to_the_new_email(emulator):
    iterable(emulator, "/api/users/bulkUpdate", {"users": [{"userId": "u1", "email": "old@example.com"}]})
    iterable(emulator, "/api/events/trackBulk", {"events": [{"userId": "u1", "eventName": "e", "id": "e1"}]})

    response = iterable(emulator, "/api/users/updateEmail", {"currentUserId": "u1", "newEmail": "new@example.com"})

    assert response.status_code == 200
    assert response.json()["code"] == "Success"
    assert iterable(emulator, "/api/users/new@example.com").json()["user"]["userId"] == "u1"
    assert iterable(emulator, "/api/users/old@example.com").json() == {}
    assert [event["email"] for event in state(emulator)["iterable"]["events"]] == ["new@example.com"]


@pytest.mark.parametrize(
    ("request_body", "code"),
    [
        ({"currentUserId": "u1", "newEmail": "taken@example.com"}, "EmailAlreadyExists"),
        ({"currentUserId": "ghost", "newEmail": "free@example.com"}, "UnknownUserIdError"),
        ({"currentEmail": "ghost@example.com", "newEmail": "free@example.com"}, "UnknownEmailError"),
        ({"currentUserId": "u1", "newEmail": "not-an-email"}, "InvalidEmailAddressError"),
    ],
)
def test_iterable_update_email_refuses_a_taken_email_or_an_unknown_user(emulator, request_body, code):
    users = [{"userId": "u1", "email": "old@example.com"}, {"userId": "u2", "email": "taken@example.com"}]
    iterable(emulator, "/api/users/bulkUpdate", {"users": users})

    response = iterable(emulator, "/api/users/updateEmail", request_body)

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert iterable(emulator, "/api/users/byUserId/u1").json()["user"]["email"] == "old@example.com"


def test_an_email_based_project_makes_a_second_profile_when_a_bulk_update_carries_a_new_email():
    settings = SETTINGS.with_overrides(iterable_project_type="email")
    with serve_in_thread(settings) as running:
        user = {"userId": "u1", "email": "old@example.com", "dataFields": {"tier": "Ready"}}
        iterable(running, "/api/users/bulkUpdate", {"users": [user]})

        iterable(running, "/api/users/bulkUpdate", {"users": [{**user, "email": "new@example.com"}]})

        emails = sorted(profile["email"] for profile in state(running)["iterable"]["users"])
        assert emails == ["new@example.com", "old@example.com"]


def test_a_hybrid_project_refuses_a_bulk_update_that_would_give_a_user_anothers_email(emulator):
    users = [{"userId": "u1", "email": "one@example.com"}, {"userId": "u2", "email": "two@example.com"}]
    iterable(emulator, "/api/users/bulkUpdate", {"users": users})

    response = iterable(emulator, "/api/users/bulkUpdate", {"users": [{"userId": "u1", "email": "two@example.com"}]})

    assert response.json()["failedUpdates"]["conflictEmails"] == ["two@example.com"]


def test_iterable_events_with_a_seen_id_are_updated_not_duplicated(emulator):
    with_id = {"userId": "u1", "eventName": "upgrade_ready", "id": "u1:trigger:2024-05-01", "dataFields": {"v": 1}}
    without_id = {"userId": "u1", "eventName": "upgrade_ready"}

    iterable(emulator, "/api/events/trackBulk", {"events": [with_id, without_id]})
    response = iterable(
        emulator, "/api/events/trackBulk", {"events": [{**with_id, "dataFields": {"v": 2}}, without_id]}
    )

    assert response.json()["successCount"] == 2
    events = state(emulator)["iterable"]["events"]
    keyed = [item for item in events if item["id"] == "u1:trigger:2024-05-01"]
    assert len(events) == 3
    assert keyed[0]["deliveries"] == 2
    assert keyed[0]["dataFields"] == {"v": 2}


def test_iterable_list_subscribe_and_unsubscribe(emulator):
    list_id = iterable(emulator, "/api/lists", {"name": "tier_high"}).json()["listId"]
    subscribers = [{"userId": "u1"}, {"email": "bo@example.com"}, {"email": "broken@"}]

    subscribed = iterable(emulator, "/api/lists/subscribe", {"listId": list_id, "subscribers": subscribers}).json()
    unsubscribed = iterable(
        emulator, "/api/lists/unsubscribe", {"listId": list_id, "subscribers": [{"userId": "u1"}, {"userId": "ghost"}]}
    ).json()

    assert (subscribed["successCount"], subscribed["failCount"]) == (2, 1)
    assert subscribed["failedUpdates"]["invalidEmails"] == ["broken@"]
    assert (unsubscribed["successCount"], unsubscribed["failCount"]) == (1, 1)
    assert unsubscribed["failedUpdates"]["notFoundUserIds"] == ["ghost"]
    assert [item["name"] for item in iterable(emulator, "/api/lists").json()["lists"]] == ["tier_high"]
    assert state(emulator)["iterable"]["lists"][0]["members"] == ["bo@example.com"]


def test_iterable_subscribe_to_an_unknown_list_is_a_400(emulator):
    response = iterable(emulator, "/api/lists/subscribe", {"listId": 4242, "subscribers": [{"userId": "u1"}]})

    assert response.status_code == 400
    assert response.json()["msg"] == "error.lists.invalidListId(4242)"


@pytest.mark.parametrize("retry_after", [False, True])
def test_iterable_rate_limit_answers_429_rate_limit_exceeded(retry_after):
    settings = SETTINGS.with_overrides(iterable_bulk_update_rate_per_second=1, iterable_retry_after_header=retry_after)
    payload = {"users": [{"userId": "u1", "dataFields": {"tier": "high"}}]}

    with serve_in_thread(settings) as running:
        limited = until_rate_limited(lambda: iterable(running, "/api/users/bulkUpdate", payload))[-1]

    assert limited.status_code == 429
    assert limited.json()["code"] == "RateLimitExceeded"
    assert limited.json()["msg"].startswith("Exceeded rate limit for endpoint: /api/users/bulkUpdate")
    assert ("Retry-After" in limited.headers) is retry_after


# ---------------------------------------------------------------- faults


def test_a_429_burst_then_a_503_then_normal_service(emulator):
    arm(emulator, {"braze": {"status_429_burst": 2, "status_503": 1, "rate_limit_reset_seconds": 2}})
    payload = {"attributes": [attribute("u1", tier="high")]}

    responses = [braze(emulator, "/users/track", payload) for _ in range(4)]

    assert [response.status_code for response in responses] == [429, 429, 503, 201]
    assert int(responses[0].headers["X-RateLimit-Reset"]) >= int(time.time()) + 1
    assert [entry["fault"] for entry in state(emulator)["requests"]] == [
        "status_429_burst",
        "status_429_burst",
        "status_503",
        None,
    ]
    log = requests.get(f"{emulator.url}/_emulator/requests", timeout=5).json()
    assert log["totals"] == {"braze": {"429": 2, "503": 1, "201": 1}}


def test_iterable_5xx_fault_uses_the_iterable_error_shape(emulator):
    arm(emulator, {"iterable": {"status_500": 1}})

    response = iterable(emulator, "/api/users/bulkUpdate", {"users": [{"userId": "u1"}]})

    assert response.status_code == 500
    assert response.json()["code"] == "GenericError"
    assert state(emulator)["iterable"]["users"] == []


def test_process_then_500_keeps_the_data_so_a_blind_retry_duplicates_braze_events(emulator):
    arm(emulator, {"braze": {"process_then_500": 1}})

    first = braze(emulator, "/users/track", {"events": [event("u1")]})
    retry = braze(emulator, "/users/track", {"events": [event("u1")]})

    assert (first.status_code, retry.status_code) == (500, 201)
    assert state(emulator)["braze"]["event_counts"] == {"u1": {"upgrade_ready": 2}}


def test_slow_responses(emulator):
    arm(emulator, {"iterable": {"delay_seconds": 0.4}})

    started = time.monotonic()
    response = iterable(emulator, "/api/lists")

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.4


def test_disconnect_closes_the_connection_without_an_answer(emulator):
    arm(emulator, {"braze": {"disconnect": 1}})

    with pytest.raises(requests.ConnectionError):
        braze(emulator, "/users/track", {"attributes": [attribute("u1")]})

    assert braze(emulator, "/users/track", {"attributes": [attribute("u1")]}).status_code == 201


def test_rejected_ids_fail_as_row_errors_on_both_platforms(emulator):
    arm(emulator, {"braze": {"reject_external_ids": ["u2"]}, "iterable": {"reject_user_ids": ["u2"]}})

    braze_body = braze(emulator, "/users/track", {"attributes": [attribute("u1"), attribute("u2")]}).json()
    iterable_body = iterable(emulator, "/api/users/bulkUpdate", {"users": [{"userId": "u1"}, {"userId": "u2"}]}).json()

    assert braze_body["attributes_processed"] == 1
    assert braze_body["errors"] == [
        {"type": "provided external_id is blacklisted and disallowed", "input_array": "attributes", "index": 1}
    ]
    assert (iterable_body["successCount"], iterable_body["failCount"]) == (1, 1)
    assert iterable_body["failedUpdates"]["invalidDataUserIds"] == ["u2"]


def test_a_rejected_share_picks_the_same_ids_every_time(emulator):
    arm(emulator, {"braze": {"reject_share": 0.5}})
    payload = {"attributes": [attribute(f"u{index}") for index in range(60)]}

    first = {error["index"] for error in braze(emulator, "/users/track", payload).json()["errors"]}
    second = {error["index"] for error in braze(emulator, "/users/track", payload).json()["errors"]}

    assert first == second
    assert 15 < len(first) < 45


def test_faults_can_be_armed_at_start_up():
    settings = SETTINGS.with_overrides(faults=json.dumps({"iterable": {"status_503": 1}}))

    with serve_in_thread(settings) as running:
        statuses = [iterable(running, "/api/lists").status_code for _ in range(2)]

    assert statuses == [503, 200]


def test_an_unknown_fault_is_refused(emulator):
    response = requests.post(f"{emulator.url}/_emulator/faults", json={"braze": {"explode": 1}}, timeout=5)

    assert response.status_code == 400
    assert "explode" in response.json()["error"]


# ---------------------------------------------------------------- inspection and hygiene


def test_state_page_and_reset(emulator):
    braze(emulator, "/users/track", {"attributes": [attribute("u1", email="ana@example.com", tier="high")]})

    page = requests.get(f"{emulator.url}/_emulator/", timeout=5)
    requests.post(f"{emulator.url}/_emulator/reset", timeout=5)

    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    assert "u1" in page.text
    assert "a***@example.com" in page.text
    assert "ana@example.com" not in page.text
    assert state(emulator)["braze"]["users"] == []
    assert state(emulator)["requests"] == []


def test_request_log_and_server_log_hold_no_api_key_email_or_phone(emulator, caplog):
    caplog.set_level(logging.INFO, logger="upshift.emulator")
    braze(emulator, "/users/track", {"attributes": [attribute("u1", email="ana@example.com", phone="+14155550123")]})
    braze(emulator, "/users/track", {"attributes": [attribute("u1")]}, headers={"Authorization": "Bearer leaked-key"})
    iterable(emulator, "/api/users/bulkUpdate", {"users": [{"email": "ana@example.com"}]})
    iterable(emulator, "/api/users/ana@example.com")
    iterable(emulator, "/api/users/getByEmail?email=ana%40example.com")

    log = requests.get(f"{emulator.url}/_emulator/requests", timeout=5).text
    page = requests.get(f"{emulator.url}/_emulator/", timeout=5).text

    assert len(json.loads(log)["requests"]) == 5
    for output in (log, page, caplog.text):
        for secret in (BRAZE_KEY, ITERABLE_KEY, "leaked-key", "ana@example.com", "ana%40example.com", "4155550123"):
            assert secret not in output


def test_subprocess_starter_serves_with_the_configured_keys():
    settings = EmulatorSettings(braze_api_key="child-braze-key", iterable_api_key="child-iterable-key")

    with start_subprocess(settings) as running:
        accepted = braze(
            running, "/users/track", {"attributes": [attribute("u1")]}, {"Authorization": "Bearer child-braze-key"}
        )
        refused = braze(running, "/users/track", {"attributes": [attribute("u1")]})

    assert accepted.status_code == 201
    assert refused.status_code == 401
