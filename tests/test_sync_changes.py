"""Change detection and answer parsing, without I/O: what a run would send for each kind of user."""

from __future__ import annotations

import pytest

from upshift.sync.changes import AcceptedUser, ModelUser, attribute_diff, plan_user_changes
from upshift.sync.fields import ATTRIBUTE_TYPES, InvalidValue, UndeclaredFields, check_declared, typed_payload
from upshift.sync.lists import plan_memberships
from upshift.sync.outcomes import NOT_A_FAILURE_ON_UNSUBSCRIBE, braze_row_failures, iterable_row_failures

READY = {"upshift_readiness_tier": "Ready", "upshift_offer_code": "client_priority_trial", "upshift_score": 60}


def test_only_changed_attributes_are_sent_and_vanished_ones_are_nulled() -> None:
    now = {"upshift_readiness_tier": "Ready", "upshift_score": 70}

    assert attribute_diff(READY, now) == {"upshift_score": 70, "upshift_offer_code": None}


def test_users_are_new_changed_unchanged_or_removed() -> None:
    model = {
        "same": ModelUser("same", READY, "h1"),
        "moved": ModelUser("moved", {**READY, "upshift_score": 90}, "h2-new"),
        "fresh": ModelUser("fresh", READY, "h3"),
    }
    accepted = {
        "same": AcceptedUser("same", READY, "h1"),
        "moved": AcceptedUser("moved", READY, "h2"),
        "gone": AcceptedUser("gone", READY, "h4"),
    }

    plan = plan_user_changes(model, accepted)

    assert plan.unchanged == ["same"]
    assert {change.user_id: (change.kind, change.send) for change in plan.changes} == {
        "moved": ("changed", {"upshift_score": 90}),
        "fresh": ("new", READY),
        "gone": ("removed", dict.fromkeys(READY)),
    }


def test_a_full_resync_sends_every_attribute_of_every_user() -> None:
    model = {"same": ModelUser("same", {"upshift_readiness_tier": "Ready"}, "h1")}
    accepted = {"same": AcceptedUser("same", READY, "h1")}

    plan = plan_user_changes(model, accepted, full_resync=True)

    assert [(change.kind, change.send) for change in plan.changes] == [
        ("changed", {"upshift_readiness_tier": "Ready", "upshift_offer_code": None, "upshift_score": None})
    ]


def test_a_user_known_only_by_list_membership_counts_as_new() -> None:
    model = {"u": ModelUser("u", READY, "h1")}

    plan = plan_user_changes(model, {"u": AcceptedUser("u", {}, "", ("upshift_client_ready",))})

    assert [change.kind for change in plan.changes] == ["new"]


def test_list_entries_and_exits_follow_the_model() -> None:
    wanted = {"a": {"upshift_client_ready"}, "b": {"upshift_client_overdue"}}
    current = {"b": {"upshift_client_ready"}, "c": {"upshift_worker_ready"}}

    entries, exits = plan_memberships(wanted, current)

    assert entries == {"upshift_client_ready": ["a"], "upshift_client_overdue": ["b"]}
    assert exits == {"upshift_client_ready": ["b"], "upshift_worker_ready": ["c"]}


def test_braze_row_errors_map_back_to_the_objects_of_their_array() -> None:
    body = {
        "message": "success",
        "errors": [
            {"type": "provided external_id is blacklisted and disallowed", "input_array": "attributes", "index": 1},
            {"type": "'name' is required", "input_array": "events", "index": 0},
        ],
    }

    assert braze_row_failures(body, "attributes", ["u0", "u1"]) == {
        "u1": ("row_rejected", "provided external_id is blacklisted and disallowed")
    }


def test_iterable_failures_map_emails_back_to_user_ids_without_keeping_the_email() -> None:
    body = {
        "successCount": 1,
        "failedUpdates": {"invalidDataEmails": ["a@example.test"], "notFoundUserIds": ["u3"]},
        "invalidEmails": [],
    }
    identities = {"u1": "u1", "a@example.test": "u2", "u3": "u3"}

    failures = iterable_row_failures(body, identities, ignore=NOT_A_FAILURE_ON_UNSUBSCRIBE)

    assert failures == {"u2": ("invalidDataEmails", "Iterable listed the user in failedUpdates.invalidDataEmails")}


def test_a_user_whose_email_differs_from_the_accepted_one_is_an_email_change() -> None:
    model = {
        "moved": ModelUser("moved", READY, "h-new", email="new@example.test"),
        "same": ModelUser("same", READY, "h-other", email="same@example.test"),
    }
    accepted = {
        "moved": AcceptedUser("moved", READY, "h-old", email="old@example.test"),
        "same": AcceptedUser("same", READY, "h-was", email="same@example.test"),
    }

    plan = plan_user_changes(model, accepted)

    changes = {change.user_id: change for change in plan.changes}
    assert changes["moved"].email_changed is True
    assert changes["moved"].previous_email == "old@example.test"
    assert changes["same"].email_changed is False


def test_decimals_are_always_sent_as_floats_and_counts_as_integers() -> None:
    payload = {"upshift_earnings_last_28_days": 0, "upshift_readiness_score": 60.0, "upshift_offer_code": None}

    typed = typed_payload(payload, ATTRIBUTE_TYPES)

    assert typed == {"upshift_earnings_last_28_days": 0.0, "upshift_readiness_score": 60, "upshift_offer_code": None}
    assert isinstance(typed["upshift_earnings_last_28_days"], float)
    assert isinstance(typed["upshift_readiness_score"], int)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("upshift_earnings_last_28_days", "NaN"),
        ("upshift_earnings_last_28_days", float("inf")),
        ("upshift_readiness_score", 60.5),
        ("upshift_readiness_score", True),
        ("upshift_readiness_tier", ""),
        ("upshift_signals", ["ok", 3]),
    ],
)
def test_a_value_that_does_not_fit_its_declared_type_is_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(InvalidValue, match=field):
        typed_payload({field: value}, ATTRIBUTE_TYPES)


def test_an_undeclared_field_stops_the_step_before_anything_is_sent() -> None:
    with pytest.raises(UndeclaredFields, match="upshift_new_thing"):
        check_declared([{"upshift_readiness_tier": "Ready", "upshift_new_thing": 1}], ATTRIBUTE_TYPES, "braze users")
