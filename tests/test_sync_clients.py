"""The Braze and Iterable clients over HTTP against the emulator: auth, reset headers, backoff,
the client-side rate limiter, and no blind retry of a Braze event batch; the hooks' reading of
Airflow HTTP connections, and how the operators type the sync's failures for Airflow. No database."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from upshift.emulator import EmulatorSettings, RunningEmulator, serve_in_thread
from upshift.local_airflow import PLUGINS_FOLDER
from upshift.sync import (
    ITERABLE_US_URL,
    AmbiguousDelivery,
    BrazeClient,
    DestinationAuthError,
    DestinationRejected,
    DestinationUnavailable,
    IterableClient,
    MassRemovalRefused,
    SyncModelsOutOfDate,
    SyncRunFailed,
    SyncSettings,
    TooManyRejected,
    UndeliveredEvents,
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


# --- the hooks: Airflow HTTP connections as the HTTP provider reads them -------------------------


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The plugins folder importable, as Airflow makes it; connections set through the monkeypatch."""
    monkeypatch.syspath_prepend(str(PLUGINS_FOLDER))
    return monkeypatch


def braze_hook(plugins: pytest.MonkeyPatch, **connection: object):
    from upshift_braze import BrazeHook

    plugins.setenv("AIRFLOW_CONN_BRAZE_FORM", json.dumps({"conn_type": "http", "password": BRAZE_KEY, **connection}))
    return BrazeHook("braze_form")


@pytest.mark.parametrize(
    ("connection", "expected"),
    [
        ({"host": "rest.iad-01.braze.com", "schema": "https"}, "https://rest.iad-01.braze.com"),
        ({"host": "rest.iad-01.braze.com", "schema": "http", "port": 8080}, "http://rest.iad-01.braze.com:8080"),
        ({"host": "rest.iad-01.braze.com"}, "https://rest.iad-01.braze.com"),
        ({"host": "https://rest.iad-01.braze.com/", "schema": "https"}, "https://rest.iad-01.braze.com"),
        ({"host": "http://127.0.0.1:8090/braze"}, "http://127.0.0.1:8090/braze"),
    ],
    ids=["standard-form", "http-and-port", "no-scheme-means-https", "full-url", "full-url-with-path"],
)
def test_the_connection_schema_is_the_url_scheme_as_in_the_http_provider(
    plugins: pytest.MonkeyPatch, connection: dict, expected: str
) -> None:
    hook = braze_hook(plugins, **connection)

    with hook.get_conn() as client:
        assert client.base_url == expected


def test_a_schema_that_is_no_url_scheme_is_refused_with_the_fix(plugins: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    hook = braze_hook(plugins, host="rest.iad-01.braze.com", schema="braze")

    with pytest.raises(AirflowFailException, match="full URL"):
        hook.get_conn()
    assert hook.test_connection()[0] is False


def test_an_empty_iterable_host_means_the_us_project(plugins: pytest.MonkeyPatch) -> None:
    from upshift_iterable import IterableHook

    plugins.setenv("AIRFLOW_CONN_ITERABLE_FORM", json.dumps({"conn_type": "http", "password": ITERABLE_KEY}))

    with IterableHook("iterable_form").get_conn() as client:
        assert client.base_url == ITERABLE_US_URL


def test_a_hook_on_the_standard_form_reaches_the_destination(plugins: pytest.MonkeyPatch) -> None:
    with serve_in_thread(EmulatorSettings(braze_api_key=BRAZE_KEY)) as emulator:
        # The emulator serves Braze under /braze, which a bare host cannot carry: the full URL it is.
        ok, message = braze_hook(plugins, host=emulator.braze_url, schema="http").test_connection()

    assert ok is True, message
    assert BRAZE_KEY not in message


# --- the operators: plain sync failures become typed Airflow failures ------------------------------


@pytest.mark.parametrize(
    ("error", "fails_fast"),
    [
        (DestinationAuthError("braze: 401", status=401), True),
        (DestinationRejected("iterable: 400", status=400), True),
        (MassRemovalRefused("would remove 90 of 100"), True),
        (TooManyRejected("40 of 50 rows were refused"), True),
        (SyncModelsOutOfDate("built for 2026-02-27"), True),
        (DestinationUnavailable("braze: 503 after 6 attempts", status=503), False),
        (AmbiguousDelivery("braze: no clear answer", status=500), False),
        (UndeliveredEvents("3 touchpoints are undelivered or in doubt"), False),
        (SyncRunFailed("saved 900, failed 100"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_operators_fail_at_once_only_where_a_retry_cannot_help(
    plugins: pytest.MonkeyPatch, error: Exception, fails_fast: bool
) -> None:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
    from upshift_sync_operators import airflow_failure

    failure = airflow_failure(error)

    assert isinstance(failure, AirflowException)
    assert isinstance(failure, AirflowFailException) is fails_fast
    assert str(error) in str(failure)


def test_templated_flags_that_are_not_booleans_are_refused_not_guessed(plugins: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from upshift_sync_operators import SyncUsersOperator

    operator = SyncUsersOperator(task_id="braze_users", destination="braze", as_of_date="2026-03-01", dry_run="False")

    with pytest.raises(AirflowFailException, match="render_template_as_native_obj"):
        operator.options(context={"run_id": "strings"})


def test_the_sync_package_needs_no_airflow() -> None:
    blocked = (
        "import sys; sys.modules['airflow'] = None; "
        "import upshift.sync, upshift.sync.errors, upshift.gates, upshift.report; "
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'airflow' and sys.modules[name]))"
    )

    completed = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, check=False)

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "[]"
