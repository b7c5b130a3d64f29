"""Stage gates on a real PostgreSQL: each passes on clean data, fails on its planted bad data
(tests/fixtures/gates/*.sql), reports what failed without PII or secrets, and the Airflow
operator stops the run on a blocking failure."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.planted import PLANTED_DIR
from upshift.dbt import run_dbt
from upshift.gates import GateConfigError, load_stage_plan, run_gate, stage_names
from upshift.gates.config import EXPECTATIONS_DIR
from upshift.gates.dialect import POSTGRES
from upshift.local_airflow import PLUGINS_FOLDER
from upshift.warehouse import AIRFLOW_CONN_ID, WarehouseSettings

AS_OF = dt.date(2025, 6, 2)
GATE_FIXTURES = Path(__file__).parent / "fixtures" / "gates"
GATED_STAGES = ("raw", "features", "scores", "sync_payload")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clean(warehouse: WarehouseSettings, pg_conn: psycopg.Connection) -> WarehouseSettings:
    """A small generated marketplace without dirty rows plus the planted users (whose dirty
    rows dbt quarantines), scored for the day before AS_OF and for AS_OF. Big enough that the
    planted bad rows stay under the raw gate's 1% blocking shares within its window whatever
    the generator's random stream gives (at 250 clients a window held 192 bookings, and the
    planted duplicate's two rows were 1.04%)."""
    from upshift.generator import GenerationOptions, generate_marketplace, load_planted

    generate_marketplace(
        pg_conn,
        GenerationOptions(schema=warehouse.raw_schema, as_of=AS_OF, clients=500, workers=240, days=60, dirty_rate=0),
    )
    load_planted(pg_conn, PLANTED_DIR, as_of=AS_OF, schema=warehouse.raw_schema)
    for as_of in (AS_OF - dt.timedelta(days=1), AS_OF):
        run_dbt(
            ["build", "--exclude-resource-type", "unit_test", "--vars", json.dumps({"as_of_date": str(as_of)})],
            warehouse,
        )
    return warehouse


def _schemas(settings: WarehouseSettings) -> dict[str, str]:
    return {
        "raw": settings.raw_schema,
        "intermediate": settings.layer_schema("intermediate"),
        "marts": settings.layer_schema("marts"),
    }


@contextmanager
def planted(conn: psycopg.Connection, settings: WarehouseSettings, fixture: str, tables: list[str]) -> Iterator[None]:
    """Run a bad-data fixture on `tables` (layer.table) and restore them afterwards."""
    schemas = _schemas(settings)
    relations = [sql.Identifier(schemas[layer], table) for layer, table in (name.split(".") for name in tables)]
    backups = [sql.Identifier(schemas[name.split(".")[0]], f"gate_backup_{name.split('.')[1]}") for name in tables]
    statement = (
        (GATE_FIXTURES / fixture)
        .read_text(encoding="utf-8")
        .format(
            **{layer: POSTGRES.quote(schema) for layer, schema in schemas.items()},
            as_of_at=f"cast('{AS_OF} 00:00:00+00' as timestamp with time zone)",
            as_of=f"cast('{AS_OF}' as date)",
        )
    )
    with conn.transaction():
        for relation, backup in zip(relations, backups, strict=True):
            conn.execute(sql.SQL("create table {} as select * from {}").format(backup, relation))
        conn.execute(statement)
    try:
        yield
    finally:
        with conn.transaction():
            for relation, backup in zip(relations, backups, strict=True):
                conn.execute(sql.SQL("truncate {}").format(relation))
                conn.execute(sql.SQL("insert into {} select * from {}").format(relation, backup))
                conn.execute(sql.SQL("drop table {}").format(backup))


# --- configuration (no database) -----------------------------------------------------------


def test_config_every_stage_suite_agrees_with_gates_yml() -> None:
    settings = WarehouseSettings.from_env({})

    plans = {stage: load_stage_plan(stage, settings, AS_OF) for stage in GATED_STAGES}

    for plan in plans.values():
        assert plan.expectations
        assert {expectation.severity for expectation in plan.expectations} <= {"blocking", "warning"}
        assert len({expectation.name for expectation in plan.expectations}) == len(plan.expectations)
    assert set(stage_names()) == set(GATED_STAGES)


def test_config_an_unknown_stage_is_refused() -> None:
    with pytest.raises(GateConfigError, match="no stage 'sync'"):
        load_stage_plan("sync", WarehouseSettings.from_env({}), AS_OF)


def test_config_a_check_without_a_severity_is_refused(tmp_path: Path) -> None:
    shutil.copytree(EXPECTATIONS_DIR, tmp_path, dirs_exist_ok=True)
    config = tmp_path / "gates.yml"
    config.write_text(
        config.read_text().replace("      severity: blocking\n      max_age_hours", "      max_age_hours")
    )

    with pytest.raises(GateConfigError, match=r"raw\.feed_fresh needs `severity"):
        load_stage_plan("raw", WarehouseSettings.from_env({}), AS_OF, expectations_dir=tmp_path)


def test_config_thresholds_and_as_of_reach_the_sql() -> None:
    plan = load_stage_plan("raw", WarehouseSettings.from_env({"UPSHIFT_RAW_SCHEMA": "landing"}), AS_OF)

    fresh = next(item for item in plan.expectations if item.name == "feed_fresh[bookings.booked_at]")

    assert (
        "cast('2025-06-02 00:00:00+00' as timestamp with time zone) - 36 * interval '1' hour"
        in (fresh.kwargs["unexpected_rows_query"])
    )
    assert plan.assets["bookings"].schema == "landing"


def test_config_writes_each_engines_sql_from_one_suite() -> None:
    """The suites are one SQL for both engines; the dialect words differ (upshift/gates/dialect.py)."""
    queries = {
        engine: {
            item.name: item.kwargs.get("unexpected_rows_query", "")
            for stage in ("raw", "sync_payload")
            for item in load_stage_plan(
                stage, WarehouseSettings.from_env({"UPSHIFT_WAREHOUSE": engine}), AS_OF
            ).expectations
        }
        for engine in ("postgres", "spark")
    }

    offer = "offer_personalisation_present[sync_braze__users]"
    assert "(attributes ? 'upshift_offer_code')" in queries["postgres"][offer]
    assert "array_contains(json_object_keys(attributes), 'upshift_offer_code')" in queries["spark"][offer]
    fresh = "feed_fresh[bookings.booked_at]"
    assert "cast('2025-06-02 00:00:00+00' as timestamp) - 36 * interval '1' hour" in queries["spark"][fresh]
    assert not any("${" in query or "::" in query for engine in queries.values() for query in engine.values())


def test_config_an_unknown_sql_call_is_refused(tmp_path: Path) -> None:
    shutil.copytree(EXPECTATIONS_DIR, tmp_path, dirs_exist_ok=True)
    suite = tmp_path / "suites" / "raw.yml"
    suite.write_text(
        suite.read_text().replace("${type_of(first_row.${column})} as", "${typeof(first_row.${column})} as")
    )

    with pytest.raises(GateConfigError, match=r"typeof\(\.\.\.\)\} is not a SQL call"):
        load_stage_plan("raw", WarehouseSettings.from_env({}), AS_OF, expectations_dir=tmp_path)


# --- gates on the warehouse ----------------------------------------------------------------


@pytest.mark.parametrize("stage", GATED_STAGES)
def test_gate_passes_on_clean_data(clean: WarehouseSettings, stage: str) -> None:
    result = run_gate(stage, clean, AS_OF)

    assert result.passed, result.summary()
    assert result.report_path.is_file()


def test_raw_gate_reports_quarantinable_rows_as_warnings_and_passes(clean: WarehouseSettings) -> None:
    result = run_gate("raw", clean, AS_OF)

    warned = {warning.name for warning in result.warnings}
    assert result.passed
    assert {
        "keys_present[bookings.booking_id]",
        "ids_unique[bookings.booking_id]",
        "enums_valid[bookings.status]",
        "amounts_not_negative[bookings.amount]",
        "timestamps_not_in_future[bookings.booked_at]",
        "amounts_finite[bookings.amount]",
        "amounts_finite[subscriptions.mrr]",
        "timestamps_plausible[bookings.booked_at]",
        "timestamps_plausible[searches.searched_at]",
        "timestamps_not_in_future[searches.searched_at]",
    } <= warned
    future = next(
        warning for warning in result.warnings if warning.name == "timestamps_not_in_future[bookings.booked_at]"
    )
    assert future.sample_rows[0]["booking_id"] == "planted_b_future"
    assert "Warnings:" in result.summary()


def test_raw_gate_shows_infinite_timestamps_instead_of_crashing(clean: WarehouseSettings) -> None:
    result = run_gate("raw", clean, AS_OF)

    by_name = {item.name: item for item in result.results}
    future = by_name["timestamps_not_in_future[searches.searched_at]"]
    implausible = by_name["timestamps_plausible[searches.searched_at]"]
    assert future.error is None
    assert implausible.error is None
    assert {"search_id": "planted_s_infinity", "searched_at": "infinity"} in future.sample_rows
    assert {"search_id": "planted_s_minus_infinity", "searched_at": "-infinity"} in implausible.sample_rows


@contextmanager
def raw_copy(conn: psycopg.Connection, settings: WarehouseSettings, *statements: str) -> Iterator[WarehouseSettings]:
    """A copy of the raw schema (no dbt view depends on it), altered by `statements` with
    `{raw}` the copy's quoted name; yields settings whose raw schema is the copy."""
    copy = f"{settings.raw_schema}_gate_copy"
    tables = [
        *("users", "bookings", "searches", "proposals"),
        *("profile_views", "contacts", "subscriptions", "offer_exposures"),
    ]
    with conn.transaction():
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(copy)))
        for table in tables:
            conn.execute(
                sql.SQL("create table {} as select * from {}").format(
                    sql.Identifier(copy, table), sql.Identifier(settings.raw_schema, table)
                )
            )
        for statement in statements:
            conn.execute(statement.format(raw=POSTGRES.quote(copy)))
    try:
        yield replace(settings, raw_schema=copy)
    finally:
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(copy)))


def test_raw_gate_blocks_a_timestamp_column_without_time_zone(
    clean: WarehouseSettings, pg_conn: psycopg.Connection
) -> None:
    naive = "alter table {raw}.contacts alter column contacted_at type timestamp using contacted_at at time zone 'UTC'"

    with raw_copy(pg_conn, clean, naive) as settings:
        result = run_gate("raw", settings, AS_OF)

    failure = next(item for item in result.blocking_failures if item.check == "timestamps_have_time_zone")
    assert not result.passed
    assert failure.name == "timestamps_have_time_zone[contacts.contacted_at]"
    assert failure.sample_rows == [
        {
            "column_name": "contacted_at",
            "column_type": "timestamp without time zone",
            "contract_type": "timestamp with time zone",
        }
    ]
    assert [item.check for item in result.blocking_failures] == ["timestamps_have_time_zone"]


def test_raw_gate_passes_without_offer_exposures_or_subscriptions(
    clean: WarehouseSettings, pg_conn: psycopg.Connection
) -> None:
    with raw_copy(pg_conn, clean, "truncate {raw}.offer_exposures", "truncate {raw}.subscriptions") as settings:
        result = run_gate("raw", settings, AS_OF)

    known = [item for item in result.results if item.check == "users_mostly_known"]
    assert result.passed, result.summary()
    assert known
    assert all(item.success and item.error is None for item in known)


@pytest.mark.parametrize(
    ("fixture", "tables", "stage", "expected_failures"),
    [
        ("raw_null_keys.sql", ["raw.bookings"], "raw", {"keys_mostly_present[bookings.client_id]"}),
        ("raw_stale_feed.sql", ["raw.bookings"], "raw", {"feed_fresh[bookings.booked_at]"}),
        ("raw_volume_explosion.sql", ["raw.searches"], "raw", {"volume_within_band[searches.searched_at]"}),
        ("raw_unknown_workers.sql", ["raw.bookings"], "raw", {"users_mostly_known[bookings.worker_id]"}),
        (
            "features_out_of_range.sql",
            ["intermediate.int_clients_signals_evaluated", "intermediate.int_workers_signals_evaluated"],
            "features",
            {
                "values_not_negative[clients_signals.spend_frequency_booking_count]",
                "shares_between_zero_and_one[workers_signals.bid_to_win_win_rate]",
            },
        ),
        (
            "scores_everyone_ready.sql",
            ["intermediate.int_users_readiness_scored"],
            "scores",
            {"ready_share_below_ceiling[readiness_scored.clients]"},
        ),
        (
            "sync_payload_email_in_attributes.sql",
            ["marts.sync_braze__users"],
            "sync_payload",
            {"no_personal_data_in_payload[sync_braze__users]"},
        ),
        (
            "sync_payload_missing_numbers.sql",
            ["marts.sync_iterable__users"],
            "sync_payload",
            {"offer_personalisation_present[sync_iterable__users]"},
        ),
        (
            "sync_payload_empty.sql",
            ["marts.sync_braze__users"],
            "sync_payload",
            {"payload_above_floor[sync_braze__users]"},
        ),
        (
            "sync_payload_duplicate_identity.sql",
            ["marts.sync_braze__users"],
            "sync_payload",
            {"one_row_per_identity[sync_braze__users]"},
        ),
        (
            "scores_tier_churn.sql",
            ["intermediate.int_users_readiness_scored"],
            "scores",
            {"tier_churn_below_ceiling[readiness_scored.workers]"},
        ),
    ],
)
def test_gate_fails_on_planted_bad_data(
    clean: WarehouseSettings,
    pg_conn: psycopg.Connection,
    fixture: str,
    tables: list[str],
    stage: str,
    expected_failures: set[str],
) -> None:
    with planted(pg_conn, clean, fixture, tables):
        result = run_gate(stage, clean, AS_OF)

    failed = {failure.name for failure in result.blocking_failures}
    assert not result.passed
    assert expected_failures <= failed, result.summary()
    report = result.report_path.read_text(encoding="utf-8")
    for name in expected_failures:
        assert name in report
        assert name in result.summary()


def test_a_failure_says_how_many_rows_and_shows_some(clean: WarehouseSettings, pg_conn: psycopg.Connection) -> None:
    with planted(pg_conn, clean, "raw_null_keys.sql", ["raw.bookings"]):
        result = run_gate("raw", clean, AS_OF)

        window = load_stage_plan("raw", clean, AS_OF).assets["bookings"].where
        bookings, without_client = pg_conn.execute(
            sql.SQL("select count(*), count(*) - count(client_id) from {} where {}").format(
                sql.Identifier(clean.raw_schema, "bookings"), sql.SQL(window)
            )
        ).fetchone()

    failure = next(item for item in result.blocking_failures if item.name == "keys_mostly_present[bookings.client_id]")
    assert without_client > 0
    assert failure.unexpected_count == without_client
    assert failure.element_count == bookings
    assert failure.sample_rows
    assert all(row["client_id"] is None and row["booking_id"] for row in failure.sample_rows)
    assert f"{without_client:,} unexpected of {bookings:,}" in result.summary()


def test_the_raw_gate_reads_only_its_window_of_the_event_tables(
    clean: WarehouseSettings, pg_conn: psycopg.Connection
) -> None:
    with planted(pg_conn, clean, "raw_old_null_keys.sql", ["raw.bookings"]):
        result = run_gate("raw", clean, AS_OF)
        broken_long_ago = pg_conn.execute(
            sql.SQL("select count(*) from {} where client_id is null").format(
                sql.Identifier(clean.raw_schema, "bookings")
            )
        ).fetchone()[0]

    assert broken_long_ago > 0
    assert "keys_mostly_present[bookings.client_id]" not in {item.name for item in result.blocking_failures}


@pytest.mark.parametrize("stage", ["raw", "scores"])
def test_no_gate_query_fetches_a_query_assets_rows(
    clean: WarehouseSettings, pg_conn: psycopg.Connection, stage: str
) -> None:
    """psycopg2 fetches whatever a query returns into the gate's memory, so no GX query may return
    the rows of an asset (a window of an event table, the as-of partition): only counts, columns
    and a few sample rows. GX's column lookup for a query asset used to run it whole."""
    import sqlalchemy
    from sqlalchemy import event

    most_rows = 200  # GX's own batch for the unexpected rows it keeps
    queries = [asset.rows_query or asset.query for asset in load_stage_plan(stage, clean, AS_OF).assets.values()]
    largest = max(
        pg_conn.execute(sql.SQL("select count(*) from ({}) as asset").format(sql.SQL(query))).fetchone()[0]
        for query in queries
        if query is not None
    )
    fetched: list[tuple[int, str]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        fetched.append((cursor.rowcount, statement))

    event.listen(sqlalchemy.engine.Engine, "after_cursor_execute", record)
    try:
        run_gate(stage, clean, AS_OF)
    finally:
        event.remove(sqlalchemy.engine.Engine, "after_cursor_execute", record)

    assert largest > most_rows
    assert fetched
    rows, statement = max(fetched)
    assert rows <= most_rows, statement


def test_reports_and_logs_carry_no_email_or_password(
    clean: WarehouseSettings, pg_conn: psycopg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    if not clean.embedded and not clean.password:
        pytest.skip("needs a password: the embedded server accepts any, an external one its own")
    settings = clean if clean.password else replace(clean, password="gate-test-secret-31415")
    emails = [
        email
        for (email,) in pg_conn.execute(
            sql.SQL("select email from {} where email is not null").format(sql.Identifier(clean.raw_schema, "users"))
        )
    ]

    with caplog.at_level(logging.DEBUG), planted(pg_conn, clean, "raw_null_keys.sql", ["raw.bookings"]):
        result = run_gate("raw", settings, AS_OF)

    written = [
        caplog.text,
        result.summary(),
        result.report_path.read_text(encoding="utf-8"),
        (result.report_path.parent / "validation_results.json").read_text(encoding="utf-8"),
    ]
    assert emails
    for text in written:
        assert settings.password not in text
        assert not any(email in text for email in emails)


# --- the Airflow operator ------------------------------------------------------------------


@pytest.fixture
def gate_operator(clean: WarehouseSettings, monkeypatch: pytest.MonkeyPatch) -> type:
    """ReadinessGateOperator, with the warehouse as the upshift_warehouse connection."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{AIRFLOW_CONN_ID.upper()}", clean.airflow_connection())
    monkeypatch.setenv("UPSHIFT_PG_SCHEMA", clean.schema)
    monkeypatch.setenv("UPSHIFT_RAW_SCHEMA", clean.raw_schema)
    monkeypatch.setenv("UPSHIFT_HOME", str(clean.home))
    monkeypatch.syspath_prepend(str(PLUGINS_FOLDER))
    sys.modules.pop("upshift_gates", None)
    from upshift_gates import ReadinessGateOperator

    return ReadinessGateOperator


def test_operator_returns_a_small_summary_when_the_gate_passes(gate_operator: type, clean: WarehouseSettings) -> None:
    operator = gate_operator(task_id="scores_gate", stage="scores", as_of_date=AS_OF.isoformat())

    summary = operator.execute(context={})

    assert summary["passed"] is True
    assert summary["stage"] == "scores"
    assert Path(summary["report_path"]).is_file()
    assert len(json.dumps(summary)) < 2_000


def test_operator_raises_gate_failed_on_a_blocking_failure(
    gate_operator: type, clean: WarehouseSettings, pg_conn: psycopg.Connection
) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from upshift_gates import GateFailed

    operator = gate_operator(task_id="raw_gate", stage="raw", as_of_date=AS_OF.isoformat())

    with planted(pg_conn, clean, "raw_stale_feed.sql", ["raw.bookings"]), pytest.raises(GateFailed) as failed:
        operator.execute(context={})

    message = str(failed.value)
    assert "feed_fresh[bookings.booked_at]" in message
    assert str(failed.value.result.report_path) in message
    assert isinstance(failed.value, AirflowFailException)  # no retries over the same data


def test_operator_declares_the_as_of_date_templated(gate_operator: type) -> None:
    assert gate_operator.template_fields == ("as_of_date",)
