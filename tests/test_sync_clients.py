"""The Braze and Iterable clients over HTTP against the emulator: auth, reset headers, backoff,
the client-side rate limiter, and no blind retry of a Braze event batch. No database."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from upshift.emulator import EmulatorSettings, RunningEmulator, serve_in_thread
from upshift.sync import (
    AmbiguousDelivery,
    BrazeClient,
    DestinationAuthError,
    DestinationRejected,
    DestinationUnavailable,
    IterableClient,
    SyncSettings,
)

BRAZE_KEY = "braze-client-key-31b7"
ITERABLE_KEY = "iterable-client-key-c40e"
FAST = SyncSettings(backoff_base_seconds=0.05, backoff_max_seconds=0.2, max_attempts=4)
EVENT = {"external_id": "u1", "name": "upshift_touchpoint", "time": "2026-03-01T00:00:00+00:00", "properties": {}}


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    settings = EmulatorSettings(braze_api_key=BRAZE_KEY, iterable_api_key=ITERABLE_KEY)
    with serve_in_thread(settings) as running:
        yield running


def requests_made(emulator: RunningEmulator) -> list[dict]:
    return emulator.emulator.state()["requests"]


def test_braze_waits_for_the_rate_limit_reset_header_after_a_429(emulator: RunningEmulator) -> None:
    emulator.emulator.faults.arm({"braze": {"status_429_burst": 1, "rate_limit_reset_seconds": 2}})
    client = BrazeClient(emulator.braze_url, BRAZE_KEY, FAST)
    started = time.monotonic()

    answer = client.track(attributes=[{"external_id": "u1", "upshift_readiness_tier": "Ready"}])

    assert answer["message"] == "success"
    assert time.monotonic() - started >= 1.0  # the reset is ~2 s away; FAST's backoff would be 0.05 s
    assert [call["status"] for call in requests_made(emulator)] == [429, 201]


def test_a_429_seen_by_one_thread_pauses_every_thread_sending_through_the_client(emulator: RunningEmulator) -> None:
    emulator.emulator.faults.arm({"braze": {"status_429_burst": 1, "rate_limit_reset_seconds": 2}})
    client = BrazeClient(emulator.braze_url, BRAZE_KEY, FAST)
    attributes = [{"external_id": "u1", "upshift_readiness_tier": "Ready"}]
    first = threading.Thread(target=client.track, kwargs={"attributes": attributes})
    first.start()
    while not requests_made(emulator):  # the first call has had its 429
        time.sleep(0.01)
    started = time.monotonic()

    answer = client.track(attributes=[{"external_id": "u2", "upshift_readiness_tier": "Ready"}])

    first.join()
    assert answer["message"] == "success"
    assert time.monotonic() - started >= 0.8  # held until the reset (~2 s after the 429), not sent at once
    assert [call["status"] for call in requests_made(emulator)] == [429, 201, 201]


def test_iterable_honours_retry_after_when_the_answer_has_one() -> None:
    settings = EmulatorSettings(
        iterable_api_key=ITERABLE_KEY, iterable_retry_after_header=True, iterable_bulk_update_rate_per_second=1
    )
    with serve_in_thread(settings) as emulator:
        client = IterableClient(
            emulator.iterable_url, ITERABLE_KEY, FAST.with_overrides(iterable_bulk_update_rate_per_second=50)
        )
        started = time.monotonic()

        for user in ("u1", "u2"):
            client.bulk_update_users([{"userId": user, "dataFields": {"upshift_readiness_score": 50}}])

        assert [call["status"] for call in requests_made(emulator)] == [200, 429, 200]
        assert time.monotonic() - started >= 0.9


def test_an_iterable_429_without_any_header_backs_off_a_whole_window_and_completes(emulator: RunningEmulator) -> None:
    emulator.emulator.faults.arm({"iterable": {"status_429_burst": 2}})
    client = IterableClient(emulator.iterable_url, ITERABLE_KEY, FAST)
    started = time.monotonic()

    answer = client.track_bulk([{"id": "e1", "eventName": "upshift_touchpoint", "userId": "u1"}])

    calls = requests_made(emulator)
    assert answer["successCount"] == 1
    assert [call["status"] for call in calls] == [429, 429, 200]
    assert time.monotonic() - started >= 2 * FAST.rate_limit_min_wait_seconds  # FAST's backoff alone is 0.2 s


def test_iterable_update_email_sends_the_user_id_or_the_old_email(emulator: RunningEmulator) -> None:
    client = IterableClient(emulator.iterable_url, ITERABLE_KEY, FAST)
    client.bulk_update_users([{"userId": "u1", "email": "old@example.test"}])

    client.update_email("mid@example.test", current_user_id="u1")
    client.update_email("new@example.test", current_email="mid@example.test")

    users = emulator.emulator.state()["iterable"]["users"]
    assert [(user["userId"], user["email"]) for user in users] == [("u1", "new@example.test")]
    with pytest.raises(DestinationRejected) as raised:
        client.update_email("other@example.test", current_user_id="ghost")
    assert raised.value.body["code"] == "UnknownUserIdError"


def test_5xx_answers_are_retried_with_backoff_for_idempotent_calls(emulator: RunningEmulator) -> None:
    emulator.emulator.faults.arm({"iterable": {"status_503": 2}})
    client = IterableClient(emulator.iterable_url, ITERABLE_KEY, FAST)

    answer = client.bulk_update_users([{"userId": "u1", "dataFields": {"upshift_readiness_score": 50}}])

    assert answer["successCount"] == 1
    assert [call["status"] for call in requests_made(emulator)] == [503, 503, 200]


def test_a_braze_event_batch_is_never_retried_after_an_unclear_answer(emulator: RunningEmulator) -> None:
    emulator.emulator.faults.arm({"braze": {"process_then_500": 1}})
    client = BrazeClient(emulator.braze_url, BRAZE_KEY, FAST)

    with pytest.raises(AmbiguousDelivery) as raised:
        client.track(events=[EVENT], idempotent=False)

    assert raised.value.status == 500
    assert len(emulator.emulator.state()["braze"]["events"]) == 1  # processed once, not resent


def test_a_dropped_connection_is_retried_unless_the_call_is_not_idempotent(emulator: RunningEmulator) -> None:
    client = BrazeClient(emulator.braze_url, BRAZE_KEY, FAST)
    emulator.emulator.faults.arm({"braze": {"disconnect": 1}})

    assert client.track(attributes=[{"external_id": "u1", "upshift_role": "client"}])["message"] == "success"

    emulator.emulator.faults.arm({"braze": {"disconnect": 1}})
    with pytest.raises(AmbiguousDelivery):
        client.track(events=[EVENT], idempotent=False)


def test_giving_up_says_whether_the_destination_may_have_processed_the_call(emulator: RunningEmulator) -> None:
    emulator.emulator.faults.arm({"iterable": {"status_500": 10}})
    client = IterableClient(emulator.iterable_url, ITERABLE_KEY, FAST)

    with pytest.raises(DestinationUnavailable) as raised:
        client.track_bulk([{"id": "e1", "eventName": "upshift_touchpoint", "userId": "u1"}])

    assert raised.value.maybe_processed is True
    assert len(requests_made(emulator)) == FAST.max_attempts
    assert "rerun later" in str(raised.value)


def test_an_unreachable_destination_fails_fast_and_surely_unprocessed() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = BrazeClient(f"http://127.0.0.1:{port}", BRAZE_KEY, FAST.with_overrides(max_attempts=2))

    with pytest.raises(DestinationUnavailable) as raised:
        client.track(events=[EVENT], idempotent=False)

    assert raised.value.maybe_processed is False
    assert not isinstance(raised.value, AmbiguousDelivery)


def test_a_wrong_key_is_an_auth_error_that_does_not_show_the_key(emulator: RunningEmulator) -> None:
    client = IterableClient(emulator.iterable_url, "wrong-key-9f9f", FAST)

    with pytest.raises(DestinationAuthError) as raised:
        client.lists()

    assert raised.value.status == 401
    assert "wrong-key-9f9f" not in str(raised.value)
    assert len(requests_made(emulator)) == 1  # not retried


def test_an_invalid_request_is_rejected_without_retries(emulator: RunningEmulator) -> None:
    client = BrazeClient(emulator.braze_url, BRAZE_KEY, FAST)
    too_many = [{"external_id": f"u{index}", "upshift_role": "client"} for index in range(76)]

    with pytest.raises(DestinationRejected, match="Max Input Length Exceeded"):
        client.track(attributes=too_many)

    assert len(requests_made(emulator)) == 1


def test_the_client_side_limiter_keeps_under_the_destinations_rate() -> None:
    settings = EmulatorSettings(braze_api_key=BRAZE_KEY, braze_track_rate_limit=3, braze_track_rate_window_seconds=1)
    limits = FAST.with_overrides(braze_track_rate_limit=3, braze_track_rate_window_seconds=1.0)
    with serve_in_thread(settings) as emulator:
        client = BrazeClient(emulator.braze_url, BRAZE_KEY, limits)
        started = time.monotonic()

        for index in range(7):
            client.track(attributes=[{"external_id": f"u{index}", "upshift_role": "client"}])

        assert {call["status"] for call in requests_made(emulator)} == {201}
        assert time.monotonic() - started >= 2.0  # 7 requests at 3 per second


def test_client_logs_carry_no_key_and_no_body(emulator: RunningEmulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    emulator.emulator.faults.arm({"iterable": {"status_429_burst": 1, "status_502": 1}})
    client = IterableClient(emulator.iterable_url, ITERABLE_KEY, FAST)

    client.bulk_update_users([{"email": "someone@example.test", "dataFields": {"upshift_readiness_score": 1}}])

    assert "retrying" in caplog.text
    assert ITERABLE_KEY not in caplog.text
    assert "someone@example.test" not in caplog.text
    assert "someone" not in repr(client)


def test_an_email_change_already_made_by_an_interrupted_try_is_not_a_failure(emulator: RunningEmulator) -> None:
    from upshift.sync.changes import UserChange
    from upshift.sync.destinations import destination_for

    settings = FAST.with_overrides(iterable_identify_by="email")
    client = IterableClient(emulator.iterable_url, ITERABLE_KEY, settings)
    client.bulk_update_users([{"userId": "u1", "email": "new@example.test"}])  # moved before the try died
    change = UserChange("u1", "changed", {}, {}, "h", email="new@example.test", previous_email="old@example.test")
    taken = UserChange("u2", "changed", {}, {}, "h", email="new@example.test", previous_email="two@example.test")
    client.bulk_update_users([{"userId": "u2", "email": "two@example.test"}])

    failures = destination_for("iterable", settings).send_email_changes(client, [change, taken])

    assert failures == {"u2": ("EmailAlreadyExists", failures["u2"][1])}
    assert "@" not in failures["u2"][1]
