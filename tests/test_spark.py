"""The same dbt project on Apache Spark gives the same answers as on PostgreSQL.

The planted fixtures are loaded into both engines (PostgreSQL through COPY, Spark as Parquet
tables, upshift/spark.py) and built once on each with the same vars; then the readiness marts
(tiers, scores, reasons, offers, suppressions), the quarantine reasons and every metrics mart are
compared row by row. Spark runs in local mode inside this process (dbt-spark's session method),
so the test needs Java 17 and the lock's pyspark, nothing else.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.planted import PLANTED_DIR, expected_quarantine, expected_readiness
from tests.reruns import around, dbt_vars, pg_checksum, validated_events_and_a_full_refresh
from upshift.dbt import run_dbt
from upshift.warehouse import WarehouseSettings

pytestmark = [pytest.mark.spark, pytest.mark.slow]

AS_OF = dt.date(2026, 3, 1)
VARS = ["--vars", json.dumps({"as_of_date": AS_OF.isoformat()})]
READINESS_MARTS = ("user_readiness",)
METRICS_MARTS = (
    "mrr_movements",
    "upsell_conversion",
    "upsell_lift",
    "time_to_upgrade",
    "upgrade_retention",
    "addressable_gap",
    "tier_mix_daily",
    "ready_without_conversion",
    "signal_backtest",
    "growth_headlines",
)
# Metrics marts the planted world leaves empty (no history of earlier as-of dates): compared, but
# their equality proves nothing beyond both builds succeeding.
EMPTY_WITH_PLANTED = {"ready_without_conversion", "signal_backtest"}
# Activation marts compared too; hashes of JSON text differ by engine (key order, number format).
ACTIVATION_MARTS = {
    "readiness_triggers": None,
    "touchpoint_plan": None,
    "sync_braze__users": ["external_id", "role", "readiness_tier", "attributes"],
    "sync_iterable__users": ["user_id", "email", "role", "readiness_tier", "data_fields", "list_names"],
}
# Columns holding JSON documents (jsonb on PostgreSQL, JSON text on Spark): compared parsed.
JSON_COLUMNS = {"readiness_reasons", "signal_values", "context", "personal_numbers", "attributes", "properties"}


def _java_missing() -> bool:
    return shutil.which("java") is None


@pytest.fixture(scope="module")
def spark_settings(warehouse: WarehouseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Settings for the Spark engine, with this module's own Spark home, and its session."""
    if _java_missing():
        pytest.skip("no Java runtime: Spark needs one (Debian: openjdk-17-jre-headless)")
    from upshift.spark import spark_session

    home = tmp_path_factory.mktemp("spark-home")
    settings = replace(warehouse, engine="spark", home=Path(home))
    session = spark_session({**settings.env()})
    session.sparkContext.setLogLevel("ERROR")
    yield settings, session
    session.stop()


@pytest.fixture(scope="module")
def builds(
    warehouse: WarehouseSettings,
    pg_conn: psycopg.Connection,
    spark_settings: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """The planted fixtures built on PostgreSQL and on Spark (one dbt build each, unit tests apart)."""
    from upshift.generator import load_planted
    from upshift.spark import load_planted_spark

    settings, session = spark_settings
    # Target paths of their own: the DAG's manifest in dbt_project/target stays PostgreSQL's.
    load_planted(pg_conn, PLANTED_DIR, as_of=AS_OF, schema=warehouse.raw_schema)
    pg_target = tmp_path_factory.mktemp("postgres-target")
    on_postgres = run_dbt(
        ["build", "--exclude-resource-type", "unit_test", *VARS, "--target-path", str(pg_target)], warehouse
    )
    started = time.monotonic()
    load = load_planted_spark(session, PLANTED_DIR, as_of=AS_OF, schema=settings.raw_schema)
    target = tmp_path_factory.mktemp("spark-target")
    # Seeds, models and data tests, as on PostgreSQL; failures are named by the test below.
    results = run_dbt(
        ["build", "--exclude-resource-type", "unit_test", *VARS, "--target-path", str(target)], settings, check=False
    )
    return {
        "load": load,
        "session": session,
        "settings": settings,
        "results": results,
        "postgres_results": on_postgres,
        "target": Path(target),
        "seconds": time.monotonic() - started,
    }


def _normal(value: Any, column: str) -> Any:
    """A value as both engines' drivers should agree on it: numbers to 6 places, JSON parsed."""
    if value is None:
        return None
    if column in JSON_COLUMNS or column in {"data_fields", "list_names"}:
        document = json.loads(value) if isinstance(value, str) else value
        return _normal_json(document)
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, decimal.Decimal)):
        number = float(value)
        return None if math.isnan(number) else round(number, 6)
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _normal_json(document: Any) -> Any:
    if isinstance(document, dict):
        return {key: _normal_json(item) for key, item in document.items()}
    if isinstance(document, list):
        return [_normal_json(item) for item in document]
    if isinstance(document, (int, float)) and not isinstance(document, bool):
        return round(float(document), 6)
    return document


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))


def _pg_rows(conn: psycopg.Connection, schema: str, table: str, columns: list[str] | None = None) -> list[dict]:
    selected = sql.SQL(", ").join(map(sql.Identifier, columns)) if columns else sql.SQL("*")
    query = sql.SQL("select {} from {}").format(selected, sql.Identifier(schema, table))
    with conn.cursor() as cursor:
        cursor.execute(query)
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    keep = columns or names
    return _sorted([{name: _normal(row[name], name) for name in keep} for row in rows])


def _spark_rows(session: Any, schema: str, table: str, columns: list[str] | None = None) -> list[dict]:
    relation = session.table(f"{schema}.{table}")
    rows = [row.asDict() for row in (relation.select(*columns) if columns else relation).collect()]
    keep = columns or (list(rows[0]) if rows else [])
    return _sorted([{name: _normal(row[name], name) for name in keep} for row in rows])


def _marts(settings: WarehouseSettings) -> str:
    return settings.layer_schema("marts")


def _nodes(results: Any) -> dict[str, set[str]]:
    """A build's seeds, models and data tests by kind."""
    nodes: dict[str, set[str]] = {"seed": set(), "model": set(), "test": set()}
    for result in results:
        nodes.setdefault(str(result.node.resource_type), set()).add(result.node.unique_id)
    return nodes


def test_every_model_and_data_test_passes_on_spark(builds: dict[str, Any]) -> None:
    """The Spark build ran every seed, model and data test the PostgreSQL build runs, and none
    failed (any that did are named); the time is reported."""
    print(f"\nSpark: planted fixtures loaded and built (data tests included) in {builds['seconds']:.0f} s")
    results = builds["results"]
    failed = {
        result.node.unique_id: f"{result.status}: {result.message}"
        for result in results
        if str(result.status) not in {"pass", "success", "no-op"}  # an exposure runs nothing: no-op
    }

    assert failed == {}
    assert _nodes(results) == _nodes(builds["postgres_results"])
    assert len(_nodes(results)["test"]) >= 250
    assert builds["load"].unrepresentable == {"bookings": ["planted_b_nan"], "subscriptions": ["planted_sub_nan"]}


def test_tiers_scores_reasons_and_offers_match(
    builds: dict[str, Any], warehouse: WarehouseSettings, pg_conn: psycopg.Connection
) -> None:
    session, settings = builds["session"], builds["settings"]
    columns = [
        "user_id",
        "role",
        "readiness_score",
        "readiness_tier",
        "readiness_reasons",
        "offer_code",
        "matched_offer_code",
        "is_suppressed",
        "suppression_reason",
        "days_in_tier",
        "days_at_ready",
        "current_plan_code",
    ]
    for mart in READINESS_MARTS:
        on_postgres = _pg_rows(pg_conn, _marts(warehouse), mart, columns)
        on_spark = _spark_rows(session, _marts(settings), mart, columns)
        assert on_postgres, mart
        assert on_spark == on_postgres, mart
    planted = {row["user_id"]: row for mart in READINESS_MARTS for row in _spark_rows(session, _marts(settings), mart)}
    for user_id, expected in expected_readiness().items():
        fired = "|".join(sorted(reason["signal"] for reason in planted[user_id]["readiness_reasons"]))
        assert (planted[user_id]["readiness_tier"], fired) == (expected["readiness_tier"], expected["fired_signals"])


def test_quarantine_reasons_match(
    builds: dict[str, Any], warehouse: WarehouseSettings, pg_conn: psycopg.Connection
) -> None:
    """The same rows quarantined for the same reasons, but for the NaN amounts Spark cannot load."""
    columns = ["source_table", "record_id", "quarantine_reason"]
    unloadable = {record_id for ids in builds["load"].unrepresentable.values() for record_id in ids}
    quarantined = _pg_rows(pg_conn, _marts(warehouse), "raw_quarantine", columns)
    on_postgres = [row for row in quarantined if row["record_id"] not in unloadable]
    on_spark = _spark_rows(builds["session"], _marts(builds["settings"]), "raw_quarantine", columns)

    assert on_spark == on_postgres
    planted = {(row["source_table"], row["record_id"] or "", row["quarantine_reason"]) for row in on_spark}
    assert {row for row in expected_quarantine() if row[1] not in unloadable} <= planted


@pytest.mark.parametrize("mart", METRICS_MARTS)
def test_metric_values_match(
    builds: dict[str, Any], warehouse: WarehouseSettings, pg_conn: psycopg.Connection, mart: str
) -> None:
    on_postgres = _pg_rows(pg_conn, _marts(warehouse), mart)
    columns = list(on_postgres[0]) if on_postgres else None
    on_spark = _spark_rows(builds["session"], _marts(builds["settings"]), mart, columns)

    assert on_spark == on_postgres
    assert bool(on_postgres) != (mart in EMPTY_WITH_PLANTED), f"{mart}: rows on PostgreSQL: {len(on_postgres)}"


@pytest.mark.parametrize("mart", ACTIVATION_MARTS)
def test_activation_marts_match(
    builds: dict[str, Any], warehouse: WarehouseSettings, pg_conn: psycopg.Connection, mart: str
) -> None:
    columns = ACTIVATION_MARTS[mart]
    on_postgres = _pg_rows(pg_conn, _marts(warehouse), mart, columns)
    on_spark = _spark_rows(builds["session"], _marts(builds["settings"]), mart, columns or list(on_postgres[0]))

    assert on_postgres
    assert on_spark == on_postgres


def test_the_unit_tests_pass_on_spark(builds: dict[str, Any], tmp_path: Path) -> None:
    arguments = ["test", "--select", "resource_type:unit_test", *VARS, "--target-path", str(tmp_path)]

    results = run_dbt(arguments, builds["settings"])

    unit_tests = [result for result in results if str(result.node.resource_type) == "unit_test"]
    # Every unit test of the project ran on Spark, not a subset; and every one passed.
    project_unit_tests = json.loads((tmp_path / "manifest.json").read_text())["unit_tests"]
    assert project_unit_tests
    assert sorted(result.node.unique_id for result in unit_tests) == sorted(project_unit_tests)
    assert {str(result.status) for result in unit_tests} == {"pass"}


def test_the_generator_writes_the_same_marketplace_to_spark(
    spark_settings: Any, warehouse: WarehouseSettings, pg_conn: psycopg.Connection
) -> None:
    """A generated world on Spark has PostgreSQL's rows for the same seed (NaN amounts apart), per chunk."""
    from upshift.generator import GenerationOptions, generate_marketplace
    from upshift.spark import generate_marketplace_spark

    _, session = spark_settings
    schema = f"{warehouse.raw_schema}_generated"
    world = {"clients": 200, "workers": 100, "days": 30, "as_of": AS_OF, "seed": 7, "chunk_users": 64}
    on_postgres = generate_marketplace(pg_conn, GenerationOptions(schema=schema, **world))

    on_spark = generate_marketplace_spark(session, GenerationOptions(schema=schema, **world))

    counts = {table: session.table(f"{schema}.{table}").count() for table in on_postgres.rows}
    assert counts == on_spark.report.rows
    stored = {table: rows + on_spark.unrepresentable.get(table, 0) for table, rows in counts.items()}
    assert stored == on_postgres.rows
    assert all(on_postgres.rows.values())
    nan_amounts = {table: kinds.get("non_finite_amount", 0) for table, kinds in on_postgres.dirty.items()}
    assert on_spark.unrepresentable == {table: rows for table, rows in nan_amounts.items() if rows}
    # pyspark's collect cannot turn Spark's first instant (year 1) into a Python datetime: rows are
    # compared apart from the implausible-timestamp ones, which the counts above cover.
    for table, column in (("users", "created_at"), ("proposals", "submitted_at")):
        spark_rows, pg_rows = _plausible_rows(session, pg_conn, schema, table, column)
        assert len(pg_rows) > on_postgres.dirty[table]["implausible_timestamp"], table
        assert spark_rows == pg_rows, table


def _plausible_rows(
    session: Any, conn: psycopg.Connection, schema: str, table: str, column: str
) -> tuple[list[dict], list[dict]]:
    """A raw table's rows on Spark and on PostgreSQL whose `column` is null or after 1900, normalised."""
    plausible = f"{column} is null or {column} >= '1900-01-01'"
    on_spark = [row.asDict() for row in session.table(f"{schema}.{table}").where(plausible).collect()]
    with conn.cursor() as cursor:
        cursor.execute(sql.SQL("select * from {} where " + plausible).format(sql.Identifier(schema, table)))
        names = [description.name for description in cursor.description]
        on_postgres = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return tuple(
        _sorted([{key: _normal(value, key) for key, value in row.items()} for row in rows])
        for rows in (on_spark, on_postgres)
    )


# Sync on Spark
#
# The sync reads its models from the Spark build through the engine's session (staged into the
# state store, a PostgreSQL) and publishes the state dbt reads back to Spark. The same planted
# fixtures synced from each engine's build leave the same profiles, lists and events in the
# emulator; a rerun sends nothing; a Spark rebuild of a later date sees the deliveries.


def _destination_state(emulator: Any) -> dict[str, Any]:
    """What the emulator holds: profiles, list memberships by list name, events (as comparable keys)."""
    from tests.test_sync import braze_event_keys, braze_profiles, iterable_lists, iterable_profiles

    state = emulator.emulator.state()
    return {
        "braze_profiles": braze_profiles(emulator),
        "iterable_profiles": {
            user: {"email": profile.get("email"), "dataFields": profile["dataFields"]}
            for user, profile in iterable_profiles(emulator).items()
        },
        "iterable_lists": iterable_lists(emulator),
        "iterable_field_types": state["iterable"]["field_types"],
        "braze_events": braze_event_keys(emulator),
        "iterable_events": sorted(
            (event["id"], event["eventName"], event["userId"], json.dumps(event["dataFields"], sort_keys=True))
            for event in state["iterable"]["events"]
        ),
    }


@pytest.fixture(scope="module")
def spark_sync(builds: dict[str, Any], warehouse: WarehouseSettings) -> Iterator[dict[str, Any]]:
    """The planted fixtures synced from the PostgreSQL build, then (a fresh emulator) from the Spark build, twice."""
    from tests.test_sync import BRAZE_KEY, ITERABLE_KEY, SETTINGS, api_requests, sync
    from upshift.emulator import EmulatorSettings, serve_in_thread

    with serve_in_thread(EmulatorSettings(braze_api_key=BRAZE_KEY, iterable_api_key=ITERABLE_KEY)) as emulator:
        from_postgres = sync(warehouse, emulator, "from-postgres", SETTINGS.with_overrides(schema="upshift_sync_pg"))
        on_postgres = _destination_state(emulator)
        emulator.emulator.reset()
        started = time.monotonic()
        from_spark = sync(builds["settings"], emulator, "from-spark", SETTINGS)
        first_seconds = time.monotonic() - started
        on_spark = _destination_state(emulator)
        emulator.emulator.log.clear()
        rerun = sync(builds["settings"], emulator, "from-spark-again", SETTINGS)
        yield {
            "from_postgres": from_postgres,
            "on_postgres": on_postgres,
            "from_spark": from_spark,
            "on_spark": on_spark,
            "rerun": rerun,
            "rerun_requests": api_requests(emulator),
            "seconds": first_seconds,
        }


def _sent(summaries: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {step: summary.get("sent", 0) for step, summary in summaries.items()}


def test_the_sync_from_the_spark_build_sends_what_the_postgres_build_sends(spark_sync: dict[str, Any]) -> None:
    print(f"\nSpark: first sync of the planted fixtures in {spark_sync['seconds']:.1f} s")
    on_spark, on_postgres = spark_sync["on_spark"], spark_sync["on_postgres"]

    assert on_spark == on_postgres
    assert _sent(spark_sync["from_spark"]) == _sent(spark_sync["from_postgres"])
    assert all(on_postgres[part] for part in ("braze_profiles", "iterable_lists", "braze_events", "iterable_events"))


def test_a_second_sync_from_spark_sends_nothing(spark_sync: dict[str, Any]) -> None:
    assert spark_sync["rerun_requests"] == []
    assert set(_sent(spark_sync["rerun"]).values()) == {0}
    assert spark_sync["rerun"]["braze_users"]["unchanged"] == spark_sync["from_spark"]["braze_users"]["sent"] > 0


def test_a_spark_rebuild_after_the_sync_sees_the_delivered_touchpoints(
    spark_sync: dict[str, Any], builds: dict[str, Any], pg_conn: psycopg.Connection, tmp_path: Path
) -> None:
    """The ledger is published to Spark; a build of the next date counts what both destinations
    accepted. Built into a target schema of its own, so the module's AS_OF build stays as it is."""
    session = builds["session"]
    settings = replace(builds["settings"], schema=f"{builds['settings'].schema}_next_day")
    ledger = pg_conn.execute("select destination, event_id from upshift_sync.event_ledger where status = 'sent'")
    sent: dict[str, set[str]] = {}
    for destination, event_id in ledger.fetchall():
        sent.setdefault(destination, set()).add(event_id)
    published = session.table("upshift_sync.event_ledger").where("status = 'sent'").count()
    next_day = ["--vars", json.dumps({"as_of_date": (AS_OF + dt.timedelta(days=1)).isoformat()})]

    build = [
        "build",
        "--select",
        "+int_touchpoints_delivered",
        "--exclude-resource-type",
        "test",
        "--exclude-resource-type",
        "unit_test",
    ]
    run_dbt([*build, *next_day, "--target-path", str(tmp_path)], settings)

    model = session.table(f"{settings.layer_schema('intermediate')}.int_touchpoints_delivered")
    delivered = {row["touchpoint_id"] for row in model.select("touchpoint_id").collect()}
    assert published == sum(len(ids) for ids in sent.values())
    assert delivered == sent["braze"] & sent["iterable"]
    assert delivered


# Gates on Spark
# Each stage's Great Expectations gate runs on the Spark build through GX's Spark datasource
# (upshift/gates/run.py) and judges every expectation as the same gate does on PostgreSQL's
# build of the same planted fixtures: one gate run per stage and engine.


def _verdicts(result: Any) -> dict[str, tuple[bool, int | None]]:
    """Per expectation: passed, and its unexpected count (rows of an unexpected-rows query)."""
    return {
        item.name: (
            item.success,
            item.observed_value if item.expectation_type == "UnexpectedRowsExpectation" else item.unexpected_count,
        )
        for item in result.results
    }


@pytest.mark.parametrize("stage", ["raw", "features", "scores", "sync_payload"])
def test_each_gate_gives_the_same_verdicts_on_spark(
    builds: dict[str, Any], warehouse: WarehouseSettings, stage: str
) -> None:
    from upshift.gates import load_stage_plan, run_gate

    on_postgres = run_gate(stage, warehouse, AS_OF)
    started = time.monotonic()
    on_spark = run_gate(stage, builds["settings"], AS_OF)
    print(f"\n{stage} gate on Spark: {len(on_spark.results)} expectations in {time.monotonic() - started:.1f} s")

    postgres_verdicts, spark_verdicts = _verdicts(on_postgres), _verdicts(on_spark)
    assert all(item.error is None for item in on_spark.results), on_spark.summary()
    # The NaN amounts Spark cannot store (refused at load) are the one planted difference:
    # amounts_finite finds them on PostgreSQL only.
    unloadable = builds["load"].unrepresentable
    differing = {
        item.name: len(unloadable[item.target.split(".")[0]])
        for item in on_postgres.results
        if item.check == "amounts_finite" and item.target.split(".")[0] in unloadable
    }
    for name, rows in differing.items():
        assert (postgres_verdicts.pop(name), spark_verdicts.pop(name)) == ((False, rows), (True, 0))
    assert spark_verdicts == postgres_verdicts
    assert on_spark.passed == on_postgres.passed
    # Failed expectations show sample rows from the Spark session, PII columns left out.
    pii = load_stage_plan(stage, builds["settings"], AS_OF).pii_columns
    samples = {item.name: item.sample_rows for item in on_spark.results if not item.success}
    expected_samples = {
        item.name: item.sample_rows for item in on_postgres.results if not item.success and item.name not in differing
    }
    assert {name: [sorted(row) for row in rows] for name, rows in samples.items()} == {
        name: [sorted(row) for row in rows] for name, rows in expected_samples.items()
    }
    assert not any(pii & set(row) for rows in samples.values() for row in rows)
    if stage == "raw":
        assert samples, "the planted raw data has dirty rows: the raw gate must find some"


# Incremental reruns on Spark
# Run last: the builds are moved on to the next date. The incremental models replace the
# partitions they rebuild (insert_overwrite on Spark, macros/cross_db/types.sql), as the
# PostgreSQL module checks for delete+insert with the same helpers (tests/reruns.py).

NEXT_DAY = AS_OF + dt.timedelta(days=1)


def _spark_fingerprint(session: Any, relation: str) -> tuple[int, str]:
    """Rows and an md5 over them in a stable order: equal fingerprints mean identical tables."""
    row = session.sql(
        "select count(*) as row_count, "
        "md5(coalesce(concat_ws(char(10), array_sort(collect_list(to_json(struct(*))))), '')) as content "
        f"from {relation}"
    ).first()
    return row["row_count"], row["content"]


def _incremental_models(target: Path) -> list[str]:
    """schema.table of every model the build's manifest materialises incrementally on Spark."""
    nodes = json.loads((target / "manifest.json").read_text())["nodes"].values()
    return sorted(
        f"{node['schema']}.{node['alias']}"
        for node in nodes
        if node["resource_type"] == "model" and node["config"]["materialized"] == "incremental"
    )


def test_rerunning_the_same_date_on_spark_leaves_every_incremental_model_identical(
    builds: dict[str, Any], tmp_path: Path
) -> None:
    """A rerun of AS_OF replaces the partitions it rebuilt with the same rows. Only the incremental
    models are rerun: every other model is a table or view rebuilt whole from them."""
    session, settings = builds["session"], builds["settings"]
    incremental = _incremental_models(builds["target"])
    rerun = ["run", "--select", "config.materialized:incremental", *VARS, "--target-path", str(tmp_path)]

    before, after = around(
        lambda: run_dbt(rerun, settings), lambda table: _spark_fingerprint(session, table), incremental
    )

    assert len(incremental) >= 9
    assert all(rows for rows, _ in before.values()), before
    assert after == before


def test_the_next_date_built_on_spark_carries_the_history_over_as_postgres_does(
    builds: dict[str, Any], warehouse: WarehouseSettings, pg_conn: psycopg.Connection, tmp_path: Path
) -> None:
    """NEXT_DAY's readiness history built on top of AS_OF's (the previous partition read back from
    the table being overwritten): one partition per date, one row per user, the tier clock carried
    over, and the rows PostgreSQL's history holds built the same way."""
    session, settings = builds["session"], builds["settings"]
    build = ["run", "--select", "+readiness_history", *dbt_vars(NEXT_DAY)]
    columns = [
        "as_of_date",
        "user_id",
        "readiness_score",
        "readiness_tier",
        "readiness_reasons",
        "previous_readiness_tier",
        "tier_entered_on",
        "ready_streak_started_on",
        "days_at_ready",
    ]

    run_dbt([*build, "--target-path", str(tmp_path / "spark")], settings)
    run_dbt([*build, "--target-path", str(tmp_path / "postgres")], warehouse)

    on_spark = _spark_rows(session, _marts(settings), "readiness_history", columns)
    assert on_spark == _pg_rows(pg_conn, _marts(warehouse), "readiness_history", columns)
    users = {row["user_id"] for row in on_spark}
    assert sorted({(row["as_of_date"], row["user_id"]) for row in on_spark}) == sorted(
        (day.isoformat(), user) for day in (AS_OF, NEXT_DAY) for user in users
    )
    assert len(on_spark) == 2 * len(users)
    ready = sorted(
        (row["as_of_date"], row["tier_entered_on"], row["days_at_ready"])
        for row in on_spark
        if row["user_id"] == "planted_c_ready"
    )
    assert ready == [(AS_OF.isoformat(), AS_OF.isoformat(), 0), (NEXT_DAY.isoformat(), AS_OF.isoformat(), 1)]


def test_incremental_validation_on_spark_gives_the_tables_a_full_refresh_and_postgres_give(
    builds: dict[str, Any], warehouse: WarehouseSettings, pg_conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Run after the next date's build above: the tables validated run by run (AS_OF, then
    NEXT_DAY on top of the partitions AS_OF kept) equal a rebuild from all of history as of
    NEXT_DAY, on Spark as on PostgreSQL, and both engines give every row the same verdict (the
    NaN amounts Spark refuses at load apart)."""
    session, settings = builds["session"], builds["settings"]
    unloadable = {record_id for ids in builds["load"].unrepresentable.values() for record_id in ids}
    on_spark, on_postgres = settings.layer_schema("intermediate"), warehouse.layer_schema("intermediate")

    def verdicts(table: str) -> list[str]:
        # The id, and the verdict: timestamps and partition dates differ where PostgreSQL holds
        # -infinity (Spark's first instant), which Python cannot hold either.
        return [session.table(f"{on_spark}.{table}").columns[0], "quarantine_reason", "is_valid"]

    def spark_table(table: str) -> tuple[tuple[int, str], list[dict[str, Any]]]:
        return _spark_fingerprint(session, f"{on_spark}.{table}"), _spark_rows(
            session, on_spark, table, verdicts(table)
        )

    def postgres_table(table: str) -> tuple[str, list[dict[str, Any]]]:
        keys = verdicts(table)
        rows = [row for row in _pg_rows(pg_conn, on_postgres, table, keys) if row[keys[0]] not in unloadable]
        return pg_checksum(pg_conn, on_postgres, table), rows

    spark = validated_events_and_a_full_refresh(settings, NEXT_DAY, spark_table, "--target-path", str(tmp_path / "s"))
    postgres = validated_events_and_a_full_refresh(
        warehouse, NEXT_DAY, postgres_table, "--target-path", str(tmp_path / "p")
    )

    assert spark[1] == spark[0]
    assert postgres[1] == postgres[0]
    assert {table: rows for table, (_, rows) in spark[0].items()} == {
        table: rows for table, (_, rows) in postgres[0].items()
    }
    assert all(rows for _, rows in postgres[0].values())
