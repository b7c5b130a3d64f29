"""The sync end to end: a generated marketplace plus the planted users, built with dbt, synced
over HTTP to the Braze / Iterable emulator, with state in a real PostgreSQL.

What a growth engineer would notice: the destinations hold exactly the model's profiles, lists
and events; a rerun without data changes sends nothing; a change to a few users sends exactly
those; faults (429 storms, 5xx, row errors, a killed run) lose no user, duplicate no event and
leave every failure in sync_errors; a dry run sends and writes nothing; logs carry no keys or
emails.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.planted import PLANTED_DIR
from upshift.dbt import run_dbt
from upshift.emulator import EmulatorSettings, RunningEmulator, serve_in_thread
from upshift.sync import (
    BrazeClient,
    IterableClient,
    SyncOptions,
    SyncSettings,
    open_context,
    run_sync,
    sync_events,
    sync_iterable_lists,
    sync_users,
)
from upshift.warehouse import REPO_ROOT, WarehouseSettings

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 3, 1)
SYNC_FIXTURES = Path(__file__).parent / "fixtures" / "sync"
# Distinctive keys, so a leak into a log is unmistakable.
BRAZE_KEY = "braze-test-key-5f0c2e"
ITERABLE_KEY = "iterable-test-key-a91d7b"
# Reconcile ambiguous Braze batches at once (the emulator processes synchronously).
SETTINGS = SyncSettings(braze_reconcile_after_seconds=0, backoff_base_seconds=0.2)


# --- arrange: data, emulator, helpers ---------------------------------------------------------


def build(
    warehouse: WarehouseSettings, *, as_of: dt.date = AS_OF, select: str | None = None, **dbt_vars: object
) -> None:
    args = ["build", "--exclude-resource-type", "unit_test", "--quiet"]
    args += ["--vars", json.dumps({"as_of_date": as_of.isoformat(), **dbt_vars})]
    run_dbt([*args, *(["--select", select] if select else [])], warehouse)


def build_marketplace(warehouse: WarehouseSettings, conn: psycopg.Connection) -> WarehouseSettings:
    """~230 generated users plus the planted ones, scored for the day before AS_OF and AS_OF."""
    from upshift.generator import GenerationOptions, generate_marketplace, load_planted

    generate_marketplace(
        conn,
        GenerationOptions(schema=warehouse.raw_schema, as_of=AS_OF, clients=150, workers=80, days=60, dirty_rate=0),
    )
    load_planted(conn, PLANTED_DIR, as_of=AS_OF, schema=warehouse.raw_schema)
    build(warehouse, as_of=AS_OF - dt.timedelta(days=1))
    build(warehouse)
    return warehouse


@pytest.fixture(scope="module")
def built(warehouse: WarehouseSettings, pg_conn: psycopg.Connection) -> WarehouseSettings:
    return build_marketplace(warehouse, pg_conn)


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with serve_in_thread(EmulatorSettings(braze_api_key=BRAZE_KEY, iterable_api_key=ITERABLE_KEY)) as running:
        yield running


def sync(
    warehouse: WarehouseSettings,
    emulator: RunningEmulator,
    run_id: str,
    settings: SyncSettings = SETTINGS,
    **options: Any,
) -> dict[str, dict[str, Any]]:
    with (
        BrazeClient(emulator.braze_url, BRAZE_KEY, settings) as braze,
        IterableClient(emulator.iterable_url, ITERABLE_KEY, settings) as iterable,
    ):
        return run_sync(
            warehouse,
            SyncOptions(run_id=run_id, as_of_date=AS_OF, **options),
            braze=braze,
            iterable=iterable,
            settings=settings,
        )


def rows(conn: psycopg.Connection, query: str, *params: Any, **identifiers: str) -> list[dict[str, Any]]:
    statement = sql.SQL(query).format(
        **{name: sql.Identifier(*value.split(".")) for name, value in identifiers.items()}
    )
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        return cursor.execute(statement, params or None).fetchall()


def marts(warehouse: WarehouseSettings, model: str) -> str:
    return f"{warehouse.layer_schema('marts')}.{model}"


def model_users(conn: psycopg.Connection, warehouse: WarehouseSettings, destination: str) -> dict[str, dict]:
    key = "external_id" if destination == "braze" else "user_id"
    found = rows(conn, "select * from {model}", model=marts(warehouse, f"sync_{destination}__users"))
    return {row[key]: row for row in found}


def model_events(conn: psycopg.Connection, warehouse: WarehouseSettings, destination: str) -> list[dict]:
    return rows(conn, "select * from {model}", model=marts(warehouse, f"sync_{destination}__events"))


def braze_profiles(emulator: RunningEmulator) -> dict[str, dict]:
    users = emulator.emulator.state()["braze"]["users"]
    return {user["external_id"]: user.get("custom_attributes", {}) for user in users}


def iterable_profiles(emulator: RunningEmulator) -> dict[str, dict]:
    return {user["userId"]: user for user in emulator.emulator.state()["iterable"]["users"]}


def iterable_lists(emulator: RunningEmulator) -> dict[str, set[str]]:
    return {item["name"]: set(item["members"]) for item in emulator.emulator.state()["iterable"]["lists"]}


def braze_event_keys(emulator: RunningEmulator) -> Counter:
    events = emulator.emulator.state()["braze"]["events"]
    return Counter(
        (event["external_id"], event["name"], event["properties"]["trigger_id"], event["properties"].get("step"))
        for event in events
    )


def model_event_keys(events: list[dict]) -> Counter:
    return Counter(
        (
            event.get("external_id") or event["user_id"],
            event["event_name"],
            event["properties"]["trigger_id"],
            event["properties"].get("step"),
        )
        for event in events
    )


def api_requests(emulator: RunningEmulator) -> list[dict]:
    """The emulator's log of API calls (inspection calls are not logged)."""
    return emulator.emulator.state()["requests"]


def reset(emulator: RunningEmulator, conn: psycopg.Connection, schema: str) -> None:
    """A clean emulator and no sync state: the next sync starts from nothing."""
    emulator.emulator.reset()
    conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


def assert_destinations_match_the_models(
    conn: psycopg.Connection, warehouse: WarehouseSettings, emulator: RunningEmulator
) -> None:
    braze_model = model_users(conn, warehouse, "braze")
    profiles = braze_profiles(emulator)
    assert {user for user, attributes in profiles.items() if attributes} == set(braze_model)
    assert {user: profiles[user] for user in braze_model} == {
        user: row["attributes"] for user, row in braze_model.items()
    }
    iterable_model = model_users(conn, warehouse, "iterable")
    people = iterable_profiles(emulator)
    # Iterable keeps a field set to null; the model strips nulls.
    fields = {
        user: {key: value for key, value in people[user]["dataFields"].items() if value is not None}
        for user in iterable_model
    }
    assert fields == {user: row["data_fields"] for user, row in iterable_model.items()}
    assert sum(people[user].get("email") != row["email"] for user, row in iterable_model.items()) == 0
    wanted_lists: dict[str, set[str]] = {}
    for user, row in iterable_model.items():
        for name in row["list_names"]:
            wanted_lists.setdefault(name, set()).add(user)
    assert {name: members for name, members in iterable_lists(emulator).items() if members} == wanted_lists


def assert_each_event_delivered_once(
    conn: psycopg.Connection,
    warehouse: WarehouseSettings,
    emulator: RunningEmulator,
    schema: str = "upshift_sync",
    destinations: tuple[str, ...] = ("braze", "iterable"),
) -> None:
    """Every event the ledger calls sent (and every one the model holds) arrived exactly once."""
    sent = rows(
        conn,
        "select destination, event_id, user_id, event_name, payload from {ledger} where status = 'sent'",
        ledger=f"{schema}.event_ledger",
    )
    if "braze" in destinations:
        braze_sent = Counter(
            (row["user_id"], row["event_name"], row["payload"]["trigger_id"], row["payload"].get("step"))
            for row in sent
            if row["destination"] == "braze"
        )
        assert braze_event_keys(emulator) == braze_sent
        assert set(model_event_keys(model_events(conn, warehouse, "braze"))) <= set(braze_sent)
    if "iterable" in destinations:
        iterable_events = emulator.emulator.state()["iterable"]["events"]
        assert {event["id"] for event in iterable_events} == {
            row["event_id"] for row in sent if row["destination"] == "iterable"
        }
        assert {event["event_id"] for event in model_events(conn, warehouse, "iterable")} <= {
            e["id"] for e in iterable_events
        }


@pytest.fixture(scope="module")
def first_sync(
    built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection
) -> dict[str, dict[str, Any]]:
    reset(emulator, pg_conn, "upshift_sync")
    return sync(built, emulator, "first")


# --- the normal life of the sync ----------------------------------------------------------------


def test_the_first_run_leaves_exactly_the_models_profiles_lists_and_events(
    first_sync: dict, built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection
) -> None:
    users = model_users(pg_conn, built, "braze")

    assert first_sync["braze_users"]["new"] == first_sync["braze_users"]["sent"] == len(users) > 50
    assert first_sync["braze_events"]["sent"] == len(model_events(pg_conn, built, "braze")) > 10
    assert_destinations_match_the_models(pg_conn, built, emulator)
    assert_each_event_delivered_once(pg_conn, built, emulator)
    assert rows(pg_conn, "select count(*) as open from {errors}", errors="upshift_sync.sync_errors")[0]["open"] == 0


def test_every_field_reaches_iterable_with_its_one_declared_type(first_sync: dict, emulator: RunningEmulator) -> None:
    from upshift.sync.fields import ATTRIBUTE_TYPES, EVENT_PROPERTY_TYPES

    iterable_type = {"integer": "long", "decimal": "double", "string": "string", "boolean": "boolean"}
    iterable_type["string_array"] = "string"
    declared = {**ATTRIBUTE_TYPES, **EVENT_PROPERTY_TYPES}

    typed_by_first_value = emulator.emulator.state()["iterable"]["field_types"]

    assert typed_by_first_value
    assert {field: iterable_type[declared[field]] for field in typed_by_first_value} == typed_by_first_value
    decimals = [field for field, kind in ATTRIBUTE_TYPES.items() if kind == "decimal"]
    values = [user["dataFields"].get(field) for user in iterable_profiles(emulator).values() for field in decimals]
    assert {type(value) for value in values if value is not None} == {float}


def test_a_second_run_without_data_changes_sends_nothing(
    first_sync: dict, built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection
) -> None:
    emulator.emulator.log.clear()

    summaries = sync(built, emulator, "second")

    assert api_requests(emulator) == []
    # Every step (users of both, lists, events of both) planned and sent nothing: no subscription
    # is left that never settles (generated users never share an email, tests/test_generator.py).
    assert {name: summary["requests"] for name, summary in summaries.items()} == dict.fromkeys(summaries, 0)
    assert (summaries["iterable_lists"]["subscribe"], summaries["iterable_lists"]["unsubscribe"]) == (0, 0)
    assert {name: summary.get("sent", 0) for name, summary in summaries.items()} == dict.fromkeys(summaries, 0)
    assert summaries["braze_users"]["unchanged"] == first_sync["braze_users"]["sent"]
    logged = rows(
        pg_conn,
        "select step, destination, sent, unchanged from {log} where run_id = 'second'",
        log="upshift_sync.sync_log",
    )
    assert len(logged) == 5
    assert {row["sent"] for row in logged} == {0}


def test_a_dry_run_sends_nothing_and_writes_no_state(
    first_sync: dict, built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection
) -> None:
    def state() -> list[int]:
        return [
            rows(pg_conn, "select count(*) as n from {table}", table=f"upshift_sync.{table}")[0]["n"]
            for table in ("user_state", "event_ledger", "sync_errors", "iterable_lists")
        ]

    pg_conn.execute("update upshift_sync.user_state set payload_hash = 'stale' where user_id like 'planted_%'")
    stale = rows(pg_conn, "select count(*) as n from {s} where payload_hash = 'stale'", s="upshift_sync.user_state")
    before = state()
    emulator.emulator.log.clear()

    summaries = run_sync(built, SyncOptions(run_id="dry", as_of_date=AS_OF, dry_run=True), settings=SETTINGS)

    assert api_requests(emulator) == []
    assert state() == before
    braze = summaries["braze_users"]
    assert braze["dry_run"] is True
    assert braze["changed"] == stale[0]["n"] // 2 > 0  # half the stale rows are Iterable's
    assert all(user.startswith("planted_") for user in braze["samples"]["changed"])
    logged = rows(pg_conn, "select dry_run, sent from {log} where run_id = 'dry'", log="upshift_sync.sync_log")
    assert {(row["dry_run"], row["sent"]) for row in logged} == {(True, 0)}
    sync(built, emulator, "after-dry")  # put the stale rows right for the tests after this one


# --- faults -----------------------------------------------------------------------------------


@pytest.fixture
def fault_schema(pg_conn: psycopg.Connection, emulator: RunningEmulator) -> Iterator[SyncSettings]:
    """A fresh emulator and a separate, empty sync schema for one fault test."""
    settings = SETTINGS.with_overrides(schema="upshift_sync_faults")
    reset(emulator, pg_conn, settings.schema)
    yield settings
    emulator.emulator.faults.clear()


def test_a_429_storm_and_5xx_answers_are_waited_out_and_nothing_is_lost(
    built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection, fault_schema: SyncSettings
) -> None:
    emulator.emulator.faults.arm(
        {
            "braze": {"status_429_burst": 2, "status_503": 1, "rate_limit_reset_seconds": 1},
            "iterable": {"status_429_burst": 2, "status_502": 1, "status_500": 1},
        }
    )
    started = time.monotonic()

    summaries = sync(built, emulator, "storm", fault_schema)

    elapsed = time.monotonic() - started
    statuses = Counter((call["platform"], call["status"]) for call in api_requests(emulator))
    assert statuses[("braze", 429)] == 2
    assert statuses[("braze", 503)] == 1
    assert statuses[("iterable", 429)] == 2
    assert statuses[("iterable", 502)] == 1
    assert elapsed >= 2.0  # two Braze 429s, each waited until its X-RateLimit-Reset (>= 1 s away)
    assert all(summary.get("failed", 0) == 0 for summary in summaries.values())
    assert_destinations_match_the_models(pg_conn, built, emulator)
    assert_each_event_delivered_once(pg_conn, built, emulator, fault_schema.schema)


def test_every_sending_step_keeps_up_to_max_requests_in_flight_and_everything_arrives_once(
    built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection, fault_schema: SyncSettings
) -> None:
    settings = fault_schema.with_overrides(
        max_requests_in_flight=3,
        braze_max_objects_per_array=10,
        iterable_bulk_update_max_users=20,
        iterable_list_max_subscribers=5,
        iterable_track_bulk_max_events=3,
    )
    emulator.emulator.faults.arm({"braze": {"delay_seconds": 0.2}, "iterable": {"delay_seconds": 0.2}})
    options = SyncOptions(run_id="in-flight", as_of_date=AS_OF)

    with (
        BrazeClient(emulator.braze_url, BRAZE_KEY, settings) as braze,
        IterableClient(emulator.iterable_url, ITERABLE_KEY, settings) as iterable,
        open_context(built, options, settings) as context,
    ):
        braze_summary = sync_users(context, "braze", braze)
        iterable_summary = sync_users(context, "iterable", iterable)
        calls = api_requests(emulator)
        emulator.emulator.log.clear()
        later = {
            "lists": sync_iterable_lists(context, iterable),
            "braze_events": sync_events(context, "braze", braze),
            "iterable_events": sync_events(context, "iterable", iterable),
        }
    later_calls = api_requests(emulator)

    in_flight = {
        platform: max(call["in_flight"] for call in calls if call["platform"] == platform and call["method"] == "POST")
        for platform in ("braze", "iterable")
    }
    assert in_flight == {"braze": 3, "iterable": 3}
    # The lists and events steps send through the same bounded pool, each request counted once.
    for name, path in (
        ("lists", "/lists/subscribe"),
        ("braze_events", "/users/track"),
        ("iterable_events", "/trackBulk"),
    ):
        sent = [call for call in later_calls if call["path"].endswith(path)]
        assert later[name]["requests"] == len(sent) >= 3, name
        assert max(call["in_flight"] for call in sent) == 3, name
    assert later["lists"]["failed"] == later["braze_events"]["failed"] == later["iterable_events"]["failed"] == 0
    assert later["braze_events"]["requests"] == -(-later["braze_events"]["due"] // 10)
    assert later["iterable_events"]["requests"] == -(-later["iterable_events"]["due"] // 3)
    assert_destinations_match_the_models(pg_conn, built, emulator)
    assert_each_event_delivered_once(pg_conn, built, emulator, settings.schema)
    braze_model, iterable_model = (model_users(pg_conn, built, name) for name in ("braze", "iterable"))
    assert braze_summary["sent"] == len(braze_model)
    assert braze_summary["requests"] == -(-len(braze_model) // 10)
    assert iterable_summary["sent"] == len(iterable_model)
    assert iterable_summary["requests"] == -(-len(iterable_model) // 20)
    profiles = braze_profiles(emulator)
    assert {user: profiles[user] for user in braze_model} == {
        user: row["attributes"] for user, row in braze_model.items()
    }
    people = iterable_profiles(emulator)
    assert set(people) == set(iterable_model)
    state = rows(
        pg_conn, "select destination, count(*) as users from {state} group by 1", state=f"{settings.schema}.user_state"
    )
    assert {row["destination"]: row["users"] for row in state} == {
        "braze": len(braze_model),
        "iterable": len(iterable_model),
    }


def test_a_429_storm_under_concurrent_sending_still_delivers_every_user_and_event_once(
    built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection, fault_schema: SyncSettings
) -> None:
    settings = fault_schema.with_overrides(
        max_requests_in_flight=4, braze_max_objects_per_array=10, iterable_bulk_update_max_users=20
    )
    emulator.emulator.faults.arm(
        {
            # The delay keeps several requests in flight at the emulator (it answers in microseconds).
            "braze": {"status_429_burst": 6, "status_503": 1, "rate_limit_reset_seconds": 1, "delay_seconds": 0.05},
            "iterable": {"status_429_burst": 4, "status_502": 1, "delay_seconds": 0.05},
        }
    )

    summaries = sync(built, emulator, "storm-concurrent", settings)
    calls = api_requests(emulator)
    emulator.emulator.log.clear()
    rerun = sync(built, emulator, "storm-concurrent-rerun", settings)

    statuses = Counter((call["platform"], call["status"]) for call in calls)
    assert statuses[("braze", 429)] == 6
    assert statuses[("iterable", 429)] == 4
    assert max(call["in_flight"] for call in calls if call["platform"] == "braze") > 1
    assert all(summary.get("failed", 0) == 0 for summary in summaries.values())
    assert api_requests(emulator) == []
    assert {name: summary.get("sent", 0) for name, summary in rerun.items()} == dict.fromkeys(rerun, 0)
    assert_destinations_match_the_models(pg_conn, built, emulator)
    assert_each_event_delivered_once(pg_conn, built, emulator, fault_schema.schema)


def test_the_destinations_rate_limit_is_respected_with_small_limits(
    built: WarehouseSettings, pg_conn: psycopg.Connection
) -> None:
    limits = EmulatorSettings(
        braze_api_key=BRAZE_KEY,
        iterable_api_key=ITERABLE_KEY,
        braze_track_rate_limit=4,
        braze_track_rate_window_seconds=1.0,
        iterable_bulk_update_rate_per_second=2,
        iterable_track_bulk_rate_per_second=2,
    )
    # The client believes Braze allows more than it does, so Braze's 429s and reset header decide.
    settings = SETTINGS.with_overrides(
        schema="upshift_sync_rates",
        braze_max_objects_per_array=10,
        iterable_bulk_update_max_users=20,
        iterable_track_bulk_max_events=20,
        braze_track_rate_limit=50,
        iterable_bulk_update_rate_per_second=2,
        iterable_track_bulk_rate_per_second=2,
    )
    pg_conn.execute("drop schema if exists upshift_sync_rates cascade")
    with serve_in_thread(limits) as limited:
        summaries = sync(built, limited, "rates", settings)

        calls = api_requests(limited)
        assert Counter(call["status"] for call in calls if call["platform"] == "iterable")[429] == 0
        assert any(call["status"] == 429 for call in calls if call["platform"] == "braze")
        assert all(summary.get("failed", 0) == 0 for summary in summaries.values())
        assert_destinations_match_the_models(pg_conn, built, limited)
        assert_each_event_delivered_once(pg_conn, built, limited, "upshift_sync_rates")


def test_an_iterable_email_change_moves_the_profile_and_a_taken_email_is_a_recorded_error(
    built: WarehouseSettings, pg_conn: psycopg.Connection
) -> None:
    project = EmulatorSettings(braze_api_key=BRAZE_KEY, iterable_api_key=ITERABLE_KEY, iterable_project_type="email")
    settings = SETTINGS.with_overrides(schema="upshift_sync_emails", iterable_identify_by="email", max_rejected_share=1)
    pg_conn.execute("drop schema if exists upshift_sync_emails cascade")
    with serve_in_thread(project) as email_project:
        sync(built, email_project, "emails-first", settings)
        model = model_users(pg_conn, built, "iterable")
        moving, blocked = sorted(user for user, row in model.items() if row["email"])[:2]
        # The destination holds both under an older email; someone else already has `blocked`'s new one.
        for user in (moving, blocked):
            old = f"old-{user}@example.test"
            with IterableClient(email_project.iterable_url, ITERABLE_KEY, settings) as client:
                client.update_email(old, current_email=model[user]["email"])
            pg_conn.execute(
                "update upshift_sync_emails.user_state set email = %s, payload_hash = 'stale' "
                "where destination = 'iterable' and user_id = %s",
                (old, user),
            )
        with IterableClient(email_project.iterable_url, ITERABLE_KEY, settings) as client:
            client.bulk_update_users([{"userId": "someone-else", "email": model[blocked]["email"]}])

        summaries = sync(built, email_project, "emails-changed", settings)

        profiles = email_project.emulator.state()["iterable"]["users"]
        by_user = Counter(profile.get("userId") for profile in profiles)
        email_of = {profile.get("userId"): profile.get("email") for profile in profiles}
        errors = rows(
            pg_conn,
            "select object_id, reason, detail from {errors} "
            "where step = 'users' and resolved_at is null and object_id = any(%s)",
            [moving, blocked],
            errors="upshift_sync_emails.sync_errors",
        )

    assert summaries["iterable_users"]["email_changes"] == 2
    assert by_user[moving] == by_user[blocked] == 1  # no second profile for either
    assert email_of[moving] == model[moving]["email"]
    assert email_of[blocked] == f"old-{blocked}@example.test"
    assert [(row["object_id"], row["reason"]) for row in errors] == [(blocked, "EmailAlreadyExists")]
    assert "@" not in errors[0]["detail"]


def test_row_errors_are_recorded_not_marked_synced_and_retried_next_run(
    built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection, fault_schema: SyncSettings
) -> None:
    emulator.emulator.faults.arm(
        {
            "braze": {"reject_external_ids": ["planted_c_ready", "planted_w_ready"]},
            "iterable": {"reject_user_ids": ["planted_c_overdue"]},
        }
    )

    summaries = sync(built, emulator, "rejecting", fault_schema)

    errors = rows(
        pg_conn,
        "select destination, step, object_id, reason from {errors} where resolved_at is null",
        errors=f"{fault_schema.schema}.sync_errors",
    )
    users = {(row["destination"], row["object_id"]) for row in errors if row["step"] == "users"}
    assert users == {("braze", "planted_c_ready"), ("braze", "planted_w_ready"), ("iterable", "planted_c_overdue")}
    assert {row["reason"] for row in errors if row["step"] == "users"} == {"row_rejected", "invalidDataEmails"}
    assert summaries["braze_users"]["failed"] == 2
    stored = rows(
        pg_conn,
        "select destination, user_id from {state} where payload_hash <> ''",
        state=f"{fault_schema.schema}.user_state",
    )
    assert not users & {(row["destination"], row["user_id"]) for row in stored}

    emulator.emulator.faults.clear()
    retry = sync(built, emulator, "retrying", fault_schema)

    assert retry["braze_users"]["sent"] == retry["braze_users"]["retried"] == 2
    assert retry["iterable_users"]["retried"] == 1
    still_open = rows(
        pg_conn,
        "select count(*) as n from {errors} where resolved_at is null",
        errors=f"{fault_schema.schema}.sync_errors",
    )
    assert still_open[0]["n"] == 0
    assert_destinations_match_the_models(pg_conn, built, emulator)
    assert_each_event_delivered_once(pg_conn, built, emulator, fault_schema.schema)


@pytest.mark.parametrize("fault", ["process_then_500", "status_503"])
def test_a_5xx_on_a_braze_event_batch_ends_the_same_run_with_every_event_delivered_once(
    built: WarehouseSettings,
    emulator: RunningEmulator,
    pg_conn: psycopg.Connection,
    fault_schema: SyncSettings,
    fault: str,
) -> None:
    # process_then_500: Braze stored the batch and the answer was lost; status_503: it never
    # arrived. Either way the batch is ambiguous and only Braze's event counts can tell.
    settings = fault_schema.with_overrides(braze_max_objects_per_array=25, braze_reconcile_after_seconds=0.5)
    from upshift.sync import open_context, sync_events, sync_users

    with BrazeClient(emulator.braze_url, BRAZE_KEY, settings) as braze:
        options = SyncOptions(run_id=f"lost-answer-{fault}", as_of_date=AS_OF)
        with open_context(built, options, settings) as context:
            sync_users(context, "braze", braze)
            emulator.emulator.faults.arm({"braze": {fault: 1}})
            started = time.monotonic()

            summary = sync_events(context, "braze", braze)

    waited = time.monotonic() - started
    reconciled = summary["reconciled_sent"] if fault == "process_then_500" else summary["reconciled_resend"]
    assert reconciled == 25
    assert summary["ambiguous"] == 0
    assert waited >= 0.5  # the bounded wait before Braze's counts are checked
    assert_each_event_delivered_once(pg_conn, built, emulator, settings.schema, destinations=("braze",))
    still_open = rows(
        pg_conn,
        "select count(*) as n from {errors} where reason = 'ambiguous_delivery' and resolved_at is null",
        errors=f"{settings.schema}.sync_errors",
    )
    assert still_open[0]["n"] == 0


def test_an_ambiguous_braze_batch_that_cannot_be_settled_in_the_run_fails_it_naming_how_many(
    built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection, fault_schema: SyncSettings
) -> None:
    # No reconcile round allowed and Braze's counts not yet meaningful (30 s): nothing settles it.
    settings = fault_schema.with_overrides(
        braze_max_objects_per_array=25, braze_reconcile_rounds=0, braze_reconcile_after_seconds=30
    )
    from upshift.sync import UndeliveredEvents, open_context, sync_events, sync_users

    with BrazeClient(emulator.braze_url, BRAZE_KEY, settings) as braze:
        with open_context(built, SyncOptions(run_id="in-doubt", as_of_date=AS_OF), settings) as context:
            sync_users(context, "braze", braze)
            emulator.emulator.faults.arm({"braze": {"process_then_500": 1}})

            with pytest.raises(UndeliveredEvents, match="25 touchpoints are undelivered or in doubt"):
                sync_events(context, "braze", braze)

        emulator.emulator.faults.clear()
        retry = SyncOptions(run_id="in-doubt-retry", as_of_date=AS_OF)
        with open_context(built, retry, settings) as context, pytest.raises(UndeliveredEvents, match="25 touchpoints"):
            sync_events(context, "braze", braze)  # a task retry is not green either

        logged = rows(
            pg_conn,
            "select events_failed from {log} where run_id = 'in-doubt' and step = 'events'",
            log=f"{settings.schema}.sync_log",
        )
        sent = rows(
            pg_conn,
            "select count(*) as n from {ledger} where destination = 'braze' and status = 'sent'",
            ledger=f"{settings.schema}.event_ledger",
        )
        assert logged[0]["events_failed"] == 25
        assert len(emulator.emulator.state()["braze"]["events"]) == sent[0]["n"] + 25  # held once, never resent

        ready = settings.with_overrides(braze_reconcile_after_seconds=0)
        with open_context(built, SyncOptions(run_id="in-doubt-settled", as_of_date=AS_OF), ready) as context:
            settled = sync_events(context, "braze", braze)

    assert settled["reconciled_sent"] == 25
    assert_each_event_delivered_once(pg_conn, built, emulator, settings.schema, destinations=("braze",))


def test_a_sync_killed_mid_run_loses_no_user_and_duplicates_no_event(
    built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection, fault_schema: SyncSettings
) -> None:
    env = {
        **os.environ,
        **{f"UPSHIFT_PG_{key.upper()}": str(value) for key, value in _pg_env(built).items()},
        "UPSHIFT_SYNC_SCHEMA": fault_schema.schema,
        "UPSHIFT_SYNC_BRAZE_MAX_OBJECTS_PER_ARRAY": "10",
        "UPSHIFT_SYNC_ITERABLE_TRACK_BULK_MAX_EVENTS": "10",
        "SYNC_BRAZE_URL": emulator.braze_url,
        "SYNC_ITERABLE_URL": emulator.iterable_url,
        "SYNC_BRAZE_KEY": BRAZE_KEY,
        "SYNC_ITERABLE_KEY": ITERABLE_KEY,
    }
    # Each answer waits long enough that the kill lands while an event batch is in flight, even on a
    # loaded machine (the emulator logs a request once it has answered it).
    emulator.emulator.faults.arm({"braze": {"delay_seconds": 1.0}, "iterable": {"delay_seconds": 1.0}})
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_SYNC, AS_OF.isoformat()],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: any("events" in call["objects"] for call in api_requests(emulator)), child)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    time.sleep(1.5)  # let the in-flight request finish on the emulator side (its delay is 1 s)
    emulator.emulator.faults.clear()
    in_flight = rows(
        pg_conn,
        "select destination, count(*) as n from {ledger} where status = 'pending' group by 1",
        ledger=f"{fault_schema.schema}.event_ledger",
    )

    summaries = sync(built, emulator, "after-kill", fault_schema)

    assert {row["destination"] for row in in_flight} == {"braze"}  # killed with a Braze event batch in flight
    assert summaries["braze_events"]["reconciled_sent"] + summaries["braze_events"]["reconciled_resend"] > 0
    assert_destinations_match_the_models(pg_conn, built, emulator)
    assert_each_event_delivered_once(pg_conn, built, emulator, fault_schema.schema)
    flagged = rows(
        pg_conn,
        "select count(*) as n from {errors} where reason = 'ambiguous_delivery'",
        errors=f"{fault_schema.schema}.sync_errors",
    )
    assert flagged[0]["n"] == in_flight[0]["n"]


CHILD_SYNC = """
import datetime as dt, os, sys
from upshift.sync import BrazeClient, IterableClient, SyncOptions, SyncSettings, open_context, run_sync, sync_users
from upshift.warehouse import WarehouseSettings
settings = SyncSettings.from_env()
run_sync(
    WarehouseSettings.from_env(),
    SyncOptions(run_id="killed", as_of_date=dt.date.fromisoformat(sys.argv[1])),
    braze=BrazeClient(os.environ["SYNC_BRAZE_URL"], os.environ["SYNC_BRAZE_KEY"], settings),
    iterable=IterableClient(os.environ["SYNC_ITERABLE_URL"], os.environ["SYNC_ITERABLE_KEY"], settings),
    settings=settings,
)
"""


def _pg_env(settings: WarehouseSettings) -> dict[str, object]:
    return {
        "host": settings.host,
        "port": settings.port,
        "user": settings.user,
        "password": settings.password,
        "database": settings.database,
        "schema": settings.schema,
    }


def _wait_for(condition: Any, child: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if child.poll() is not None:
            pytest.fail(f"the sync finished (exit code {child.returncode}) before it could be killed")
        if time.monotonic() > deadline:
            pytest.fail("the sync never reached its events step")
        time.sleep(0.02)


# --- hygiene ------------------------------------------------------------------------------------


def test_logs_never_show_api_keys_or_emails(
    built: WarehouseSettings,
    emulator: RunningEmulator,
    pg_conn: psycopg.Connection,
    fault_schema: SyncSettings,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emails = [
        row["email"]
        for row in rows(pg_conn, "select email from {users} where email is not null", users=f"{built.raw_schema}.users")
    ]
    emulator.emulator.faults.arm(
        {
            "braze": {"status_429_burst": 1, "status_500": 1, "reject_share": 0.2},
            "iterable": {"status_503": 1, "reject_emails": emails[:20], "reject_share": 0.2},
        }
    )
    caplog.set_level(logging.DEBUG)

    sync(built, emulator, "hygiene", fault_schema.with_overrides(max_rejected_share=1.0))
    errors = rows(pg_conn, "select reason, detail from {errors}", errors=f"{fault_schema.schema}.sync_errors")
    output = caplog.text + "".join(capsys.readouterr()) + json.dumps(errors)

    assert "retrying" in caplog.text
    assert len(errors) > 5
    assert BRAZE_KEY not in output
    assert ITERABLE_KEY not in output
    assert [email for email in emails if email in output] == []
    assert "@" not in output


# --- the Airflow side ---------------------------------------------------------------------------


@pytest.fixture
def airflow_connections(built: WarehouseSettings, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from upshift.local_airflow import PLUGINS_FOLDER

    monkeypatch.setenv("AIRFLOW_CONN_UPSHIFT_WAREHOUSE", built.airflow_connection())
    monkeypatch.setenv("UPSHIFT_PG_SCHEMA", built.schema)
    braze = {"conn_type": "http", "host": emulator.braze_url, "password": BRAZE_KEY}
    iterable = {"conn_type": "http", "host": emulator.iterable_url, "password": ITERABLE_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", json.dumps(braze))
    monkeypatch.setenv("AIRFLOW_CONN_ITERABLE_DEFAULT", json.dumps(iterable))
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_WRONG_KEY", json.dumps({**braze, "password": "not-the-key"}))
    monkeypatch.setenv("UPSHIFT_SYNC_BRAZE_RECONCILE_AFTER_SECONDS", "0")
    monkeypatch.syspath_prepend(str(PLUGINS_FOLDER))


def test_hooks_test_their_connection_without_showing_the_key(airflow_connections: None) -> None:
    from upshift_braze import BrazeHook
    from upshift_iterable import IterableHook

    assert BrazeHook().test_connection()[0] is True
    assert IterableHook().test_connection()[0] is True
    ok, message = BrazeHook("braze_wrong_key").test_connection()
    assert ok is False
    assert "401" in message
    assert "not-the-key" not in message


def test_operators_run_one_step_each_and_return_a_small_summary(
    airflow_connections: None, first_sync: dict, emulator: RunningEmulator
) -> None:
    from upshift_sync_operators import SyncEventsOperator, SyncIterableListsOperator, SyncUsersOperator

    operators = [
        SyncUsersOperator(task_id="braze_users", destination="braze", as_of_date=AS_OF.isoformat()),
        SyncIterableListsOperator(task_id="iterable_lists", as_of_date=AS_OF.isoformat(), dry_run=True),
        SyncEventsOperator(task_id="iterable_events", destination="iterable", as_of_date=AS_OF.isoformat()),
    ]
    emulator.emulator.log.clear()

    summaries = [operator.execute(context={"run_id": "operator"}) for operator in operators]

    assert [summary["step"] for summary in summaries] == ["users", "lists", "events"]
    assert summaries[1]["dry_run"] is True
    assert all(len(json.dumps(summary)) < 2_000 for summary in summaries)
    assert SyncUsersOperator.template_fields == ("as_of_date", "dry_run", "full_resync", "force_backfill")
    assert api_requests(emulator) == []  # nothing changed since the last run


def test_an_in_process_run_sends_to_the_configured_connections_not_a_throwaway_emulator(
    airflow_connections: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from upshift.local_airflow import destinations_configured

    assert destinations_configured() is True

    monkeypatch.delenv("AIRFLOW_CONN_BRAZE_DEFAULT")
    monkeypatch.delenv("AIRFLOW_CONN_ITERABLE_DEFAULT")
    assert destinations_configured() is False


def test_an_operator_refuses_models_built_for_another_date(airflow_connections: None, first_sync: dict) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from upshift_sync_operators import SyncUsersOperator

    from upshift.sync import SyncModelsOutOfDate

    operator = SyncUsersOperator(task_id="braze_users", destination="braze", as_of_date="2026-02-27")

    with pytest.raises(AirflowFailException, match="rebuild") as refused:
        operator.execute(context={"run_id": "stale"})
    assert isinstance(refused.value.__cause__, SyncModelsOutOfDate)


def test_an_operator_fails_at_once_when_the_destination_refuses_the_key(
    airflow_connections: None, first_sync: dict
) -> None:
    from upshift_sync_operators import SyncAuthFailed, SyncUsersOperator

    operator = SyncUsersOperator(
        task_id="braze_users",
        destination="braze",
        as_of_date=AS_OF.isoformat(),
        full_resync=True,
        conn_id="braze_wrong_key",
    )

    with pytest.raises(SyncAuthFailed, match="401") as failed:
        operator.execute(context={"run_id": "wrong-key"})
    assert "not-the-key" not in str(failed.value)


# --- data changes (last: a dbt rebuild reads the ledger, so later models hold fewer due events) ---


@pytest.fixture
def synced(built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection) -> None:
    """The destinations and the default sync schema in step with the current models."""
    reset(emulator, pg_conn, "upshift_sync")
    sync(built, emulator, "baseline")


def test_a_change_to_a_few_users_sends_exactly_those(
    synced: None, built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection
) -> None:
    from upshift.generator import load_planted

    before = {user: row["payload_hash"] for user, row in model_users(pg_conn, built, "braze").items()}
    load_planted(pg_conn, SYNC_FIXTURES / "change", as_of=AS_OF, schema=built.raw_schema)
    build(built)
    after = model_users(pg_conn, built, "braze")
    changed = {user for user, row in after.items() if before.get(user) != row["payload_hash"]}
    emulator.emulator.log.clear()

    summaries = sync(built, emulator, "change")

    assert changed == {"planted_c_ready", "planted_c_spend"}
    assert set(summaries["braze_users"]["samples"]["changed"]) == changed
    assert summaries["braze_users"]["sent"] == summaries["iterable_users"]["sent"] == 2
    user_calls = [call for call in api_requests(emulator) if call["path"].endswith(("users/track", "bulkUpdate"))]
    assert sum(call["objects"].get("attributes", 0) + call["objects"].get("users", 0) for call in user_calls) == 4
    assert braze_profiles(emulator)["planted_c_ready"]["upshift_has_upgraded"] is True
    assert_destinations_match_the_models(pg_conn, built, emulator)
    assert_each_event_delivered_once(pg_conn, built, emulator)


def test_users_who_leave_the_model_are_cleared_and_forgotten(
    synced: None, built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection
) -> None:
    before = set(model_users(pg_conn, built, "braze"))
    build(built, select="tag:stage_activation", holdout_share=0.4)
    left = before - set(model_users(pg_conn, built, "braze"))

    try:
        summaries = sync(built, emulator, "holdout")

        assert len(left) > 5
        assert summaries["braze_users"]["removed"] == summaries["iterable_users"]["removed"] == len(left)
        assert all(not braze_profiles(emulator)[user] for user in left)
        people = iterable_profiles(emulator)
        assert all(set(people[user]["dataFields"].values()) == {None} for user in left)
        assert not any(left & members for members in iterable_lists(emulator).values())
        kept = rows(
            pg_conn, "select user_id from {state} where user_id = any(%s)", list(left), state="upshift_sync.user_state"
        )
        assert kept == []
        assert_destinations_match_the_models(pg_conn, built, emulator)
    finally:
        build(built, select="tag:stage_activation")


# --- guardrails: stale, empty or poisoned data never reaches the destinations -------------------


def test_an_older_as_of_date_sends_nothing_unless_forced_and_the_newest_rerun_stays_idempotent(
    synced: None, built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection
) -> None:
    older = AS_OF - dt.timedelta(days=1)
    build(built, as_of=older, select="tag:stage_activation")
    emulator.emulator.log.clear()
    try:
        with (
            BrazeClient(emulator.braze_url, BRAZE_KEY, SETTINGS) as braze,
            IterableClient(emulator.iterable_url, ITERABLE_KEY, SETTINGS) as iterable,
        ):
            options = SyncOptions(run_id="backfill", as_of_date=older)
            backfill = run_sync(built, options, braze=braze, iterable=iterable, settings=SETTINGS)

            assert api_requests(emulator) == []
            assert {summary["skipped"] for summary in backfill.values()} == {"backfill_over_newer_state"}
            assert {summary["newest_synced_as_of"] for summary in backfill.values()} == {AS_OF.isoformat()}

            forced = run_sync(
                built,
                SyncOptions(run_id="forced-backfill", as_of_date=older, force_backfill=True),
                braze=braze,
                iterable=iterable,
                settings=SETTINGS,
            )
        assert "skipped" not in forced["braze_users"]
    finally:
        build(built, select="tag:stage_activation")
    sync(built, emulator, "newest-again")  # the newest date goes forward again
    emulator.emulator.log.clear()

    rerun = sync(built, emulator, "newest-rerun")

    assert api_requests(emulator) == []
    assert all("skipped" not in summary for summary in rerun.values())


def test_a_planted_empty_payload_fails_before_wiping_any_profile(
    synced: None, built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection
) -> None:
    from upshift.sync import MassRemovalRefused

    for model in ("sync_braze__users", "sync_iterable__users"):
        pg_conn.execute(sql.SQL("delete from {}").format(built.relation("marts", model)))
    emulator.emulator.log.clear()
    try:
        with pytest.raises(MassRemovalRefused, match="would remove") as refused:
            sync(built, emulator, "empty-payload")

        assert "nothing was sent" in str(refused.value)
        assert api_requests(emulator) == []
        assert all(attributes for attributes in braze_profiles(emulator).values())
    finally:
        build(built, select="sync_braze__users sync_iterable__users")


def test_poisoned_values_are_refused_per_user_and_fail_the_step_over_the_rejected_share(
    synced: None, built: WarehouseSettings, emulator: RunningEmulator, pg_conn: psycopg.Connection
) -> None:
    from upshift.sync import TooManyRejected

    schema = "upshift_sync_poisoned"
    settings = SETTINGS.with_overrides(schema=schema)
    pg_conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
    poisoned = rows(
        pg_conn,
        'update {model} set data_fields = data_fields || \'{{"upshift_earnings_last_28_days": "NaN"}}\' '
        "where role = 'worker' returning user_id",
        model=marts(built, "sync_iterable__users"),
    )
    emulator.emulator.reset()
    emulator.emulator.faults.arm({"braze": {"reject_share": 0.5}})
    try:
        with pytest.raises(TooManyRejected, match="braze users"):
            sync(built, emulator, "poisoned", settings)
        emulator.emulator.faults.clear()
        with pytest.raises(TooManyRejected, match="iterable users"):
            sync(built, emulator, "poisoned-iterable", settings)
    finally:
        emulator.emulator.faults.clear()
        build(built, select="sync_iterable__users")

    errors = rows(
        pg_conn,
        "select destination, object_id, reason, detail from {errors} where step = 'users'",
        errors=f"{schema}.sync_errors",
    )
    invalid = {row["object_id"] for row in errors if row["reason"] == "invalid_value"}
    assert len(poisoned) > 5
    assert invalid == {row["user_id"] for row in poisoned}
    assert all("upshift_earnings_last_28_days" in row["detail"] for row in errors if row["reason"] == "invalid_value")
    assert {row["destination"] for row in errors if row["reason"] == "row_rejected"} == {"braze"}
    sent = [user["dataFields"].get("upshift_earnings_last_28_days") for user in iterable_profiles(emulator).values()]
    assert "NaN" not in sent
