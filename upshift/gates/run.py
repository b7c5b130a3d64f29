"""run_gate: validate one stage's warehouse tables with Great Expectations and judge the result.

Great Expectations runs against the warehouse itself, in an ephemeral context built here:
nothing is read from or written to a GX project directory, no GX Cloud, no analytics. On
PostgreSQL through its SQL datasource (every metric is a query; no table is pulled into pandas),
on Spark (UPSHIFT_WAREHOUSE=spark) through its Spark datasource, each asset a DataFrame of the
session's table or query (every metric a Spark job). One validation definition per asset of the
stage's suite; together they are the stage's checkpoint. The two engines differ only in the
datasource and in how sample rows are fetched (`_PostgresEngine`, `_SparkEngine`); the plan and
its SQL are the same (upshift/gates/dialect.py renders the few words that differ).
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import psycopg
from psycopg import sql
from psycopg.types.datetime import DateLoader, TimestampLoader, TimestamptzLoader

from upshift import warehouse
from upshift.contract import RawContract
from upshift.gates.config import GX_SEVERITY, Asset, PlannedExpectation, StagePlan, load_stage_plan
from upshift.gates.report import REPORT_FILE, report_directory, write_report
from upshift.gates.result import ExpectationResult, GateResult
from upshift.warehouse import SESSION_ENV, WarehouseSettings

if TYPE_CHECKING:
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.data_context import AbstractDataContext
    from pyspark.sql import SparkSession

DATASOURCE_NAME = "upshift_warehouse"


def _context() -> AbstractDataContext:
    # Read when great_expectations is imported and when the context starts.
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


class _Engine(Protocol):
    """Where a gate's assets live: GX's datasource for them, and sample rows of a failed query."""

    def environment(self) -> AbstractContextManager[Any]: ...

    def add_datasource(self, context: AbstractDataContext) -> Any: ...

    def batch(self, datasource: Any, asset: Asset) -> tuple[BatchDefinition, dict[str, Any]]: ...

    def sample(self, query: str, asset: Asset, limit: int) -> list[dict[str, Any]]: ...


class _PostgresEngine:
    """GX's generic SQL datasource on the warehouse; samples through psycopg."""

    def __init__(self, settings: WarehouseSettings, conn: psycopg.Connection) -> None:
        self.settings = settings
        self.conn = conn

    def environment(self) -> AbstractContextManager[Any]:
        return warehouse.environment(SESSION_ENV)

    def add_datasource(self, context: AbstractDataContext) -> Any:
        from great_expectations.datasource.fluent.interfaces import GxDatasourceWarning

        _query_asset_columns_without_rows()
        # The generic SQL datasource on purpose: GX's Postgres one validates the URL as a DSN with
        # a network host and rejects the embedded warehouse's socket directory (`?host=/dir`).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GxDatasourceWarning)
            return context.data_sources.add_sql(
                name=DATASOURCE_NAME, connection_string=warehouse.sqlalchemy_url(self.settings)
            )

    def batch(self, datasource: Any, asset: Asset) -> tuple[BatchDefinition, dict[str, Any]]:
        if asset.table is not None and asset.rows_query is None:
            data_asset = datasource.add_table_asset(name=asset.name, table_name=asset.table, schema_name=asset.schema)
        else:
            data_asset = datasource.add_query_asset(name=asset.name, query=asset.rows_query or asset.query)
        return data_asset.add_batch_definition_whole_table(asset.name), {}

    def sample(self, query: str, asset: Asset, limit: int) -> list[dict[str, Any]]:
        """Re-run a failed SQL expectation's query with a limit: GX's SUMMARY format keeps only the count."""
        if asset.rows_query is None:
            statement = sql.SQL("select * from ({}) as unexpected limit {}").format(
                sql.SQL(query.format(batch=asset.relation)), sql.Literal(limit)
            )
        else:
            statement = sql.SQL("with gate_batch as ({}) select * from ({}) as unexpected limit {}").format(
                sql.SQL(asset.rows_query), sql.SQL(query.format(batch="gate_batch")), sql.Literal(limit)
            )
        cursor = self.conn.execute(statement)
        columns = [column.name for column in cursor.description or ()]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


class _SparkEngine:
    """GX's Spark datasource on the session dbt-spark builds in (upshift.spark.spark_session):
    each asset a DataFrame of its table, window or query; samples from the same session."""

    def __init__(self, session: SparkSession) -> None:
        self.session = session
        self.frames: dict[str, Any] = {}

    def environment(self) -> AbstractContextManager[Any]:
        return nullcontext()

    def add_datasource(self, context: AbstractDataContext) -> Any:
        # No spark_config: GX reuses the session as it is (getOrCreate) instead of restarting it.
        return context.data_sources.add_spark(name=DATASOURCE_NAME)

    def batch(self, datasource: Any, asset: Asset) -> tuple[BatchDefinition, dict[str, Any]]:
        query = asset.rows_query or asset.query
        frame = self.session.sql(query) if query is not None else self.session.table(asset.relation)
        self.frames[asset.name] = frame
        data_asset = datasource.add_dataframe_asset(name=asset.name)
        return data_asset.add_batch_definition_whole_dataframe(asset.name), {"dataframe": frame}

    def sample(self, query: str, asset: Asset, limit: int) -> list[dict[str, Any]]:
        self.frames[asset.name].createOrReplaceTempView("gate_batch")
        return [row.asDict() for row in self.session.sql(query.format(batch="gate_batch")).limit(limit).collect()]


@contextmanager
def _engine(settings: WarehouseSettings) -> Iterator[_Engine]:
    if settings.engine == "spark":
        from upshift.spark import spark_session

        yield _SparkEngine(spark_session(settings.env()))
        return
    with _sample_connection(settings) as conn:
        yield _PostgresEngine(settings, conn)


def _validate(plan: StagePlan, engine: _Engine) -> list[tuple[Asset, ExpectationSuiteValidationResult]]:
    import great_expectations as gx

    context = _context()
    datasource = engine.add_datasource(context)
    outcomes = []
    for asset in plan.assets.values():
        planned = [expectation for expectation in plan.expectations if expectation.asset == asset.name]
        if not planned:
            continue
        batch_definition, batch_parameters = engine.batch(datasource, asset)
        suite = context.suites.add(gx.ExpectationSuite(name=f"{plan.stage}.{asset.name}"))
        for expectation in planned:
            suite.add_expectation(_expectation(expectation))
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{plan.stage}.{asset.name}", data=batch_definition, suite=suite)
        )
        result_format = {
            "result_format": "SUMMARY",
            "partial_unexpected_count": plan.sample_rows,
            "unexpected_index_column_names": [asset.key],
        }
        outcomes.append((asset, validation.run(batch_parameters=batch_parameters, result_format=result_format)))
    return outcomes


@cache
def _query_asset_columns_without_rows() -> None:
    """Make GX learn a query asset's columns from `select * ... limit 0`, not from its rows.

    A query asset (a windowed event table, the scores gate's as-of partition) is a text clause
    to GX, which SQLAlchemy cannot introspect, so GX's `table.column_types` metric falls back to
    `column_reflection_fallback`: it executes the asset's query as it is and reads the result's
    column names. psycopg2's client-side cursor has fetched every row of the window by then: the
    raw gate's peak RSS grew with users (1.0 GiB at 300k users, 2.8 GiB at 1M, against 0.26 GiB
    without these fetches). Wrapped in a subquery with `limit 0` the same query names the same columns in
    the same order and returns no row. Other selectables (tables) keep GX's own fallback.
    """
    import sqlalchemy as sa
    from great_expectations.expectations.metrics import util

    reflection_fallback = util.column_reflection_fallback

    def column_names(
        selectable: Any, dialect: Any, sqlalchemy_engine: Any, schema_name: str | None = None
    ) -> list[dict[str, str]]:
        if not isinstance(selectable, sa.TextClause):
            return reflection_fallback(selectable, dialect, sqlalchemy_engine, schema_name)
        no_rows = sa.select(sa.text("*")).select_from(selectable.columns().subquery("gate_columns")).limit(0)
        with sqlalchemy_engine.connect() as connection:
            names = connection.execute(no_rows).keys()  # a result's columns; iterating it gives rows
        return [{"name": name} for name in names]

    util.column_reflection_fallback = column_names


@cache
def _counted_unexpected_rows() -> type:
    """GX's UnexpectedRowsExpectation without its `unexpected_rows_query.table` metric.

    That metric runs the query and keeps 200 rows, but psycopg2's client-side cursor has already
    fetched every row the query returns into the gate's memory by then. The gate needs only the count
    (`unexpected_rows_query.row_count`, a `count(*)` the server computes) for the verdict; its
    sample rows come from a query of its own with a limit (`_Engine.sample`).
    """
    import great_expectations as gx

    class UnexpectedRowsCounted(gx.expectations.UnexpectedRowsExpectation):
        metric_dependencies: ClassVar[tuple[str, ...]] = ("unexpected_rows_query.row_count",)

        def _validate(
            self, metrics: dict, runtime_configuration: dict | None = None, execution_engine: Any = None
        ) -> dict[str, Any]:
            count = metrics["unexpected_rows_query.row_count"]
            return {"success": count == 0, "result": {"observed_value": count}}

    return UnexpectedRowsCounted


def _expectation(planned: PlannedExpectation) -> Any:
    import great_expectations as gx

    if planned.expectation_type == "UnexpectedRowsExpectation":
        expectation_class = _counted_unexpected_rows()
    else:
        expectation_class = getattr(gx.expectations, planned.expectation_type, None)
    if expectation_class is None:
        raise ValueError(f"{planned.name}: great_expectations has no expectation {planned.expectation_type}")
    return expectation_class(
        **planned.kwargs,
        severity=GX_SEVERITY[planned.severity],
        description=planned.description or None,
        meta={"upshift_name": planned.name},
    )


def _without_pii(row: dict[str, Any], pii_columns: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key not in pii_columns}


def _lenient(loader: type) -> type:
    """`loader`, but a value Python cannot hold (`infinity`, year 10000+) comes back as its text."""

    class Lenient(loader):  # type: ignore[misc, valid-type]
        def load(self, data: Any) -> Any:
            try:
                return super().load(data)
            except psycopg.DataError:
                return bytes(data).decode()

    return Lenient


def _sample_connection(settings: WarehouseSettings) -> psycopg.Connection:
    """A connection for sample rows: a raw table may hold timestamps no datetime can (a sample
    of exactly those rows is what a failed timestamp check shows)."""
    conn = warehouse.connect(settings, autocommit=True)
    for type_name, loader in (("timestamptz", TimestamptzLoader), ("timestamp", TimestampLoader), ("date", DateLoader)):
        conn.adapters.register_loader(type_name, _lenient(loader))
    return conn


def _error_message(exception_info: Any) -> str | None:
    """The first exception message GX recorded for an expectation (its info nests per metric)."""
    if isinstance(exception_info, dict):
        if exception_info.get("exception_message"):
            return str(exception_info["exception_message"]).strip().splitlines()[0]
        for value in exception_info.values():
            message = _error_message(value)
            if message:
                return message
    return None


def _expectation_result(
    planned: PlannedExpectation,
    validation: ExpectationValidationResult,
    asset: Asset,
    plan: StagePlan,
    engine: _Engine,
) -> ExpectationResult:
    result = validation.result or {}
    error = _error_message(validation.exception_info)
    samples: list[dict[str, Any]] = []
    if not validation.success and error is None:
        if planned.expectation_type == "UnexpectedRowsExpectation":
            samples = engine.sample(planned.kwargs["unexpected_rows_query"], asset, plan.sample_rows)
        else:
            samples = list(result.get("partial_unexpected_index_list") or [])
            if not samples:
                samples = [{"value": value} for value in result.get("partial_unexpected_list") or []]
    return ExpectationResult(
        name=planned.name,
        check=planned.check,
        target=planned.target,
        severity=planned.severity,
        expectation_type=planned.expectation_type,
        description=planned.description,
        success=bool(validation.success),
        observed_value=result.get("observed_value"),
        unexpected_count=result.get("unexpected_count"),
        element_count=result.get("element_count"),
        sample_rows=[_without_pii(row, plan.pii_columns) for row in samples[: plan.sample_rows]],
        error=error,
    )


def _strip_pii(value: Any, pii_columns: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {key: _strip_pii(item, pii_columns) for key, item in value.items() if key not in pii_columns}
    if isinstance(value, list):
        return [_strip_pii(item, pii_columns) for item in value]
    return value


def run_gate(
    stage: str, settings: WarehouseSettings, as_of: dt.date, contract: RawContract | None = None
) -> GateResult:
    """Validate `stage` for `as_of` and write its report; `passed` is False on a blocking failure.

    Raises GateConfigError (or GateNotDefined) when the configuration is broken or the stage has
    no gate yet, and lets connection errors through: neither is a data-quality verdict.
    `contract` replaces the project's raw contract (the sources yml), e.g. with an edited copy.
    """
    plan = load_stage_plan(stage, settings, as_of, contract=contract)
    by_name = {expectation.name: expectation for expectation in plan.expectations}
    results = []
    with _engine(settings) as engine:
        with engine.environment():
            outcomes = _validate(plan, engine)
        for asset, suite_result in outcomes:
            for validation in suite_result.results:
                planned = by_name[validation.expectation_config.meta["upshift_name"]]
                results.append(_expectation_result(planned, validation, asset, plan, engine))
    gate = GateResult(
        stage=stage,
        as_of=as_of,
        results=results,
        report_path=report_directory(settings, stage, as_of) / REPORT_FILE,
    )
    validations = [_strip_pii(suite_result.describe_dict(), plan.pii_columns) for _, suite_result in outcomes]
    write_report(gate, plan.description, validations)
    return gate
