"""The dbt project on a real PostgreSQL: unit tests, data tests, planted users, reruns and
backfills of the readiness history, configuration errors, and sqlfluff."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.planted import PLANTED_DIR, actual_quarantine, actual_readiness, expected_quarantine, expected_readiness
from tests.reruns import around, as_of_in_env, validated_events_and_a_full_refresh
from tests.reruns import dbt_vars as _vars
from tests.reruns import pg_checksum as _checksum
from upshift.dbt import DBT_PROJECT_DIR, DbtCommandFailed, parse, run_dbt
from upshift.warehouse import WarehouseSettings, connect

AS_OF = dt.date(2026, 3, 1)
NEW_YORK = "America/New_York"
# Data flows one way: a model reads its own layer or the ones before it, never a later one.
LAYERS = ("staging", "intermediate", "marts")
# The tags the DAG runs its stages by (dags/upgrade_readiness.py), each behind the previous gate.
STAGE_TAGS = {"stage_features", "stage_scores", "stage_activation", "stage_metrics"}
MARTS = [
    "user_readiness",
    "readiness_history",
    "readiness_triggers",
    "raw_quarantine",
    "touchpoint_plan",
    "platform_benchmarks",
    "sync_braze__users",
    "sync_iterable__users",
    "sync_braze__events",
    "sync_iterable__events",
    "mrr_movements",
    "upsell_conversion",
    "upsell_lift",
    "time_to_upgrade",
    "upgrade_retention",
    "addressable_gap",
    "growth_headlines",
]


def _build(settings: WarehouseSettings, as_of: dt.date, *args: str) -> None:
    """`dbt build` as of `as_of`, the date in the environment as the DAG passes it: the tests
    below that pass `--vars` are the ones about vars."""
    with as_of_in_env(as_of):
        run_dbt(["build", "--exclude-resource-type", "unit_test", *args], settings)


def _unit_tests(settings: WarehouseSettings, *args: str) -> list[Any]:
    """Run the unit tests as of AS_OF (the ones that pin a date override it) and return their
    results: a run's results also hold the on-run-start hook that validates the vars."""
    with as_of_in_env(AS_OF):
        results = run_dbt(["test", "--select", "test_type:unit", *args], settings)
    return [result for result in results if str(result.node.resource_type) == "unit_test"]


@pytest.fixture(scope="module")
def built(warehouse: WarehouseSettings, pg_conn: psycopg.Connection) -> WarehouseSettings:
    """Planted raw data, scored as of AS_OF with every data test passing."""
    from upshift.generator import load_planted

    load_planted(pg_conn, PLANTED_DIR, as_of=AS_OF, schema=warehouse.raw_schema)
    _build(warehouse, AS_OF)
    return warehouse


@pytest.fixture(scope="module")
def marts_schema(built: WarehouseSettings) -> str:
    return built.layer_schema("marts")


def test_dbt_unit_tests_pass(built: WarehouseSettings) -> None:
    results = _unit_tests(built)

    names = {result.node.name for result in results}
    assert {
        "client_signals_fire_exactly_at_their_edges",
        "worker_signals_fire_exactly_at_their_edges",
        "tiers_change_exactly_at_their_boundaries",
        "offers_are_suppressed_for_what_users_already_have",
        "touchpoints_follow_the_sequence_and_stop_at_conversion",
        "platform_comparisons_come_from_the_data",
        "mrr_movements_net_within_the_month",
        "retention_counts_upgrades_exactly_90_days_old",
        "time_to_upgrade_starts_at_the_episode_trigger",
        "lift_needs_a_holdout",
        "mrr_counts_a_period_in_the_month_it_paid_for",
        "retention_reads_a_plan_change_on_day_90_at_that_moment",
        "lift_counts_a_user_reached_on_two_channels_once",
        "addressable_gap_leaves_out_clients_with_nothing_at_stake",
        "headlines_report_the_latest_complete_retention_cohort",
        "headline_flags_and_target_columns_follow_the_vars",
        "the_copy_kept_depends_on_its_content_not_its_order",
    } <= names
    assert {str(result.status) for result in results} == {"pass"}


def test_planted_users_get_the_expected_score_tier_reasons_and_offer(
    built: WarehouseSettings, pg_conn: psycopg.Connection, marts_schema: str
) -> None:
    expected = expected_readiness()

    actual = actual_readiness(pg_conn, marts_schema, list(expected))

    assert actual == expected


def test_every_planted_dirty_row_is_quarantined_with_its_reason(
    built: WarehouseSettings, pg_conn: psycopg.Connection, marts_schema: str
) -> None:
    assert actual_quarantine(pg_conn, marts_schema) == expected_quarantine()


def test_quarantined_rows_never_reach_scoring(pg_conn: psycopg.Connection, marts_schema: str) -> None:
    scored = {
        user_id
        for (user_id,) in pg_conn.execute(
            sql.SQL("select user_id from {}").format(sql.Identifier(marts_schema, "user_readiness"))
        )
    }

    assert "planted_bad_role" not in scored
    assert "planted_ghost_client" not in scored


def test_the_quarantine_summary_counts_every_quarantined_row(pg_conn: psycopg.Connection, marts_schema: str) -> None:
    total = pg_conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(marts_schema, "raw_quarantine")))
    summed = pg_conn.execute(
        sql.SQL("select sum(row_count) from {}").format(sql.Identifier(marts_schema, "raw_quarantine_summary"))
    )

    assert total.fetchone()[0] == summed.fetchone()[0] == len(expected_quarantine())


def test_the_preferred_pro_trigger_fires_once_per_episode(pg_conn: psycopg.Connection, marts_schema: str) -> None:
    rows = pg_conn.execute(
        sql.SQL(
            "select user_id, offer_code, context ->> 'worker_id' from {} "
            "where trigger_type = 'repeat_booking_same_worker' and user_id = 'planted_c_ready'"
        ).format(sql.Identifier(marts_schema, "readiness_triggers"))
    ).fetchall()

    assert rows == [("planted_c_ready", "client_preferred_pro", "planted_w_helper_1")]


def test_tier_entry_triggers_follow_the_history(pg_conn: psycopg.Connection, marts_schema: str) -> None:
    query = sql.SQL("select user_id, trigger_type from {} where trigger_type like 'entered_%%' and user_id = any(%s)")
    rows = pg_conn.execute(
        query.format(sql.Identifier(marts_schema, "readiness_triggers")),
        (["planted_c_ready", "planted_c_overdue", "planted_c_spend"],),
    ).fetchall()

    assert sorted(rows) == [("planted_c_overdue", "entered_overdue"), ("planted_c_ready", "entered_ready")]


def test_sync_payloads_carry_no_personal_data(pg_conn: psycopg.Connection, marts_schema: str) -> None:
    leaks = pg_conn.execute(
        sql.SQL(
            """
            select sync.external_id
            from {} as sync
            inner join {} as users
                on sync.external_id = users.user_id
            where strpos(sync.attributes::text, users.email) > 0 or strpos(sync.attributes::text, users.phone) > 0
            """
        ).format(sql.Identifier(marts_schema, "sync_braze__users"), sql.Identifier("raw", "users"))
    ).fetchall()
    synced = pg_conn.execute(
        sql.SQL("select count(*) from {}").format(sql.Identifier(marts_schema, "sync_braze__users"))
    ).fetchone()[0]

    assert synced > 0
    assert leaks == []


def test_held_out_users_are_scored_but_receive_nothing(
    pg_conn: psycopg.Connection, built: WarehouseSettings, marts_schema: str
) -> None:
    """planted_c_holdout_4 is Ready like planted_c_ready, but its id hashes into the 10% holdout."""
    holdout = built.relation("intermediate", "int_users_holdout_assigned")
    reached = pg_conn.execute(
        sql.SQL(
            """
            select user_id from {users} where user_id in (select user_id from {holdout} where is_holdout)
            union all
            select user_id from {events} where user_id in (select user_id from {holdout} where is_holdout)
            """
        ).format(
            users=sql.Identifier(marts_schema, "sync_iterable__users"),
            events=sql.Identifier(marts_schema, "sync_iterable__events"),
            holdout=holdout,
        )
    ).fetchall()
    planted_statuses = pg_conn.execute(
        sql.SQL("select distinct touchpoint_status from {} where user_id = 'planted_c_holdout_4'").format(
            sql.Identifier(marts_schema, "touchpoint_plan")
        )
    ).fetchall()

    assert reached == []
    assert planted_statuses == [("held_out",)]


def test_a_ready_user_gets_the_in_app_touch_now_and_email_later(pg_conn: psycopg.Connection, marts_schema: str) -> None:
    rows = pg_conn.execute(
        sql.SQL(
            "select step, channel, touchpoint_status from {} "
            "where user_id = 'planted_w_ready' and trigger_type = 'entered_ready' order by step"
        ).format(sql.Identifier(marts_schema, "touchpoint_plan"))
    ).fetchall()

    assert rows == [(1, "in_app", "due"), (2, "email", "scheduled"), (3, "sms", "scheduled")]


def test_rerunning_the_same_date_leaves_every_mart_identical(
    built: WarehouseSettings, pg_conn: psycopg.Connection, marts_schema: str
) -> None:
    before, after = around(lambda: _build(built, AS_OF), lambda table: _checksum(pg_conn, marts_schema, table), MARTS)

    assert after == before


def _new_york_target(settings: WarehouseSettings) -> list[str]:
    """The New York database's own dbt target path. dbt keeps one partial parse per target path,
    valid only for the connection it parsed with: in their own, the New York runs leave the
    module database's to the builds after them, which then need no full re-parse."""
    return ["--target-path", str(settings.home / f"dbt-target-{settings.database}")]


@pytest.fixture(scope="module")
def new_york_built(warehouse_server: WarehouseSettings) -> Iterator[WarehouseSettings]:
    """The planted data built as of AS_OF in a database whose default time zone is New York,
    by a process whose PGTZ says New York too: every time zone a session could inherit is
    non-UTC (5 hours behind on the month boundaries of the planted subscriptions)."""
    from upshift.generator import load_planted

    settings = warehouse_server.with_database(f"upshift_new_york_{uuid.uuid4().hex[:8]}")
    database = sql.Identifier(settings.database)
    with psycopg.connect(**warehouse_server.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(database))
        admin.execute(sql.SQL("alter database {} set timezone = {}").format(database, sql.Literal(NEW_YORK)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PGTZ", NEW_YORK)
        with connect(settings) as conn:
            load_planted(conn, PLANTED_DIR, as_of=AS_OF, schema=settings.raw_schema)
        _build(settings, AS_OF, *_new_york_target(settings))
    yield settings
    with psycopg.connect(**warehouse_server.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("drop database if exists {} with (force)").format(database))


def test_a_new_york_server_and_client_give_the_same_months_cohorts_and_marts_as_utc(
    built: WarehouseSettings, new_york_built: WarehouseSettings, pg_conn: psycopg.Connection, marts_schema: str
) -> None:
    """Runs before the backfill below, while `built` holds AS_OF's marts."""
    utc = {table: _checksum(pg_conn, marts_schema, table) for table in MARTS}

    with connect(new_york_built, autocommit=True) as conn:
        new_york = {table: _checksum(conn, marts_schema, table) for table in MARTS}
        months = conn.execute(
            sql.SQL("select count(*) from {}").format(sql.Identifier(marts_schema, "mrr_movements"))
        ).fetchone()[0]

    assert months > 0
    assert new_york == utc


def test_dbt_unit_tests_pass_under_a_new_york_session(
    new_york_built: WarehouseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The edges at midnight UTC (the 1st of a month, day 90, the as-of date) hold whatever
    time zone the server, the database and the caller's PGTZ name."""
    monkeypatch.setenv("PGTZ", NEW_YORK)

    results = _unit_tests(new_york_built, *_new_york_target(new_york_built))

    assert results
    assert {str(result.status) for result in results} == {"pass"}


def test_a_backfill_writes_one_history_partition_per_date_and_reruns_change_nothing(
    built: WarehouseSettings, pg_conn: psycopg.Connection, marts_schema: str
) -> None:
    history = sql.Identifier(marts_schema, "readiness_history")
    later_dates = [AS_OF + dt.timedelta(days=offset) for offset in (1, 2)]
    for as_of in later_dates:
        _build(built, as_of)
    after_backfill = _checksum(pg_conn, marts_schema, "readiness_history")

    _build(built, later_dates[0])

    partitions = pg_conn.execute(
        sql.SQL("select as_of_date, count(*), count(distinct user_id) from {} group by 1 order by 1").format(history)
    ).fetchall()
    assert [as_of for as_of, _, _ in partitions] == [AS_OF, *later_dates]
    assert all(rows == users for _, rows, users in partitions)
    assert _checksum(pg_conn, marts_schema, "readiness_history") == after_backfill


def test_the_tier_clock_carries_over_between_dates(pg_conn: psycopg.Connection, marts_schema: str) -> None:
    """Run after the backfill: a user Ready on three consecutive dates entered Ready once."""
    rows = pg_conn.execute(
        sql.SQL(
            "select as_of_date, readiness_tier, tier_entered_on, days_at_ready from {} "
            "where user_id = 'planted_c_ready' order by as_of_date"
        ).format(sql.Identifier(marts_schema, "readiness_history"))
    ).fetchall()

    assert [(tier, entered, days) for _, tier, entered, days in rows] == [
        ("Ready", AS_OF, 0),
        ("Ready", AS_OF, 1),
        ("Ready", AS_OF, 2),
    ]


def test_a_copy_of_an_id_an_earlier_run_kept_is_still_a_duplicate(
    built: WarehouseSettings, pg_conn: psycopg.Connection
) -> None:
    """Run after the backfill, as of AS_OF + 1: the first planted_b_dup copy (3 days before
    AS_OF) is outside that run's validation batch, the second one (1 day before) inside it."""
    rows = pg_conn.execute(
        sql.SQL("select quarantine_reason from {} where booking_id = 'planted_b_dup' order by booked_at").format(
            sql.Identifier(f"{built.schema}_intermediate", "int_bookings_validated")
        )
    ).fetchall()

    assert rows == [(None,), ("duplicate_id",)]


def test_incremental_validation_gives_the_tables_a_full_refresh_gives(
    built: WarehouseSettings, pg_conn: psycopg.Connection
) -> None:
    """Run after the backfill: the validated tables built day by day equal a rebuild from all
    of history as of the same date."""
    intermediate = f"{built.schema}_intermediate"

    incremental, full = validated_events_and_a_full_refresh(
        built, AS_OF + dt.timedelta(days=1), lambda table: _checksum(pg_conn, intermediate, table)
    )

    assert full == incremental


def test_an_as_of_date_that_is_not_a_date_fails_with_a_clear_message(
    built: WarehouseSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(DbtCommandFailed):
        run_dbt(["compile", "--select", "int_clients_signals_evaluated", "--vars", "{as_of_date: yesterday}"], built)

    assert "must be a date as YYYY-MM-DD, got 'yesterday'" in capsys.readouterr().out


def test_weights_that_could_exceed_100_are_refused(
    built: WarehouseSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = {
        "client": {"spend_frequency": 60, "repeat_hire": 25, "category_breadth": 20, "search_friction": 20},
        "worker": {"bid_to_win": 35, "profile_view_spike": 35, "earnings_plateau": 30},
    }

    with pytest.raises(DbtCommandFailed):
        run_dbt(
            ["compile", "--select", "int_readiness_signals_unpivoted", *_vars(AS_OF, readiness_signal_weights=weights)],
            built,
        )

    assert "for client sums to 125" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"holdout_share": 1.5}, "var('holdout_share') must be a number in [0, 1), got 1.5"),
        ({"holdout_share": -0.1}, "var('holdout_share') must be a number in [0, 1), got -0.1"),
        (
            {"client_spend_frequency_window_days": -7},
            "var('client_spend_frequency_window_days') must be a whole number >= 1, got -7",
        ),
        ({"worker_plateau_period_days": 0}, "var('worker_plateau_period_days') must be a whole number >= 1, got 0"),
        (
            {"tier_warming_min_score": 50},
            "vars tier_warming_min_score (50), tier_ready_min_score (50) and tier_overdue_min_score (90) must increase",
        ),
        (
            {"worker_bid_to_win_max_win_rate": "a quarter"},
            "var('worker_bid_to_win_max_win_rate') must be a number in [0, 1], got \"a quarter\"",
        ),
        ({"as_of_date": "2026-02-30"}, "var('as_of_date') must be a date as YYYY-MM-DD, got '2026-02-30'"),
        (
            {"metrics_time_to_upgrade_amber_max_days": 7},
            "var('metrics_time_to_upgrade_target_days') must not exceed var('metrics_time_to_upgrade_amber_max_days')",
        ),
        (
            {"metrics_conversion_triggered_target_pct": 120},
            "var('metrics_conversion_triggered_target_pct') must be a number in [0, 100], got 120",
        ),
    ],
)
def test_invalid_vars_fail_the_run_naming_the_var_before_anything_is_built(
    built: WarehouseSettings,
    pg_conn: psycopg.Connection,
    capsys: pytest.CaptureFixture[str],
    overrides: dict[str, object],
    message: str,
) -> None:
    intermediate = built.layer_schema("intermediate")
    before = _checksum(pg_conn, intermediate, "int_users_holdout_assigned")
    run_vars = json.dumps({"as_of_date": AS_OF.isoformat(), **overrides})

    with pytest.raises(DbtCommandFailed):
        run_dbt(["run", "--select", "int_users_holdout_assigned", "--vars", run_vars], built)

    assert message in capsys.readouterr().out
    assert _checksum(pg_conn, intermediate, "int_users_holdout_assigned") == before


def test_a_raw_timestamp_without_time_zone_stops_dbt_naming_the_column(
    built: WarehouseSettings, pg_conn: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    naive_raw = f"{built.raw_schema}_naive"
    tables = ["users", "bookings", "searches", "proposals", "profile_views", "contacts", "subscriptions"]
    with pg_conn.transaction():
        pg_conn.execute(sql.SQL("create schema {}").format(sql.Identifier(naive_raw)))
        for table in [*tables, "offer_exposures"]:
            pg_conn.execute(
                sql.SQL("create table {} as select * from {}").format(
                    sql.Identifier(naive_raw, table), sql.Identifier(built.raw_schema, table)
                )
            )
        pg_conn.execute(
            sql.SQL("alter table {} alter column viewed_at type timestamp using viewed_at at time zone 'UTC'").format(
                sql.Identifier(naive_raw, "profile_views")
            )
        )
    try:
        with pytest.raises(DbtCommandFailed):
            run_dbt(["run", "--select", "stg_marketplace__profile_views", *_vars(AS_OF, raw_schema=naive_raw)], built)
    finally:
        pg_conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(naive_raw)))

    assert f"{naive_raw}.profile_views.viewed_at is timestamp without time zone" in capsys.readouterr().out


def test_poisoned_values_never_reach_a_payload(pg_conn: psycopg.Connection, marts_schema: str) -> None:
    payloads = {
        "sync_braze__users": "attributes",
        "sync_iterable__users": "data_fields",
        "sync_braze__events": "properties",
        "sync_iterable__events": "properties",
    }

    poisoned = {
        table: pg_conn.execute(
            sql.SQL("select count(*) from {} where cast({} as text) ~ '\\mNaN\\M|\\mInfinity\\M'").format(
                sql.Identifier(marts_schema, table), sql.Identifier(column)
            )
        ).fetchone()[0]
        for table, column in payloads.items()
    }

    assert poisoned == dict.fromkeys(payloads, 0)


def test_sql_is_sqlfluff_clean(built: WarehouseSettings) -> None:
    env = {**os.environ, **built.env()}

    result = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "models", "--disable-progress-bar"],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-4000:]


@pytest.fixture(scope="module")
def manifest_models() -> dict[str, dict[str, Any]]:
    """The project's models by unique id, from the manifest dbt parse writes (what the DAG renders)."""
    nodes = json.loads(parse().read_text())["nodes"]
    return {unique_id: node for unique_id, node in nodes.items() if node["resource_type"] == "model"}


def test_no_model_reads_a_later_layer(manifest_models: dict[str, dict[str, Any]]) -> None:
    reads_up = sorted(
        f"{node['name']} ({node['fqn'][1]}) reads {manifest_models[parent]['name']} "
        f"({manifest_models[parent]['fqn'][1]})"
        for node in manifest_models.values()
        for parent in node["depends_on"]["nodes"]
        if parent in manifest_models and LAYERS.index(manifest_models[parent]["fqn"][1]) > LAYERS.index(node["fqn"][1])
    )

    assert {node["fqn"][1] for node in manifest_models.values()} == set(LAYERS)
    assert reads_up == []


def test_every_model_runs_in_exactly_one_stage(manifest_models: dict[str, dict[str, Any]]) -> None:
    stages = {
        node["name"]: sorted(tag for tag in node["tags"] if tag.startswith("stage_"))
        for node in manifest_models.values()
    }

    assert {name: tags for name, tags in stages.items() if len(tags) != 1 or tags[0] not in STAGE_TAGS} == {}
