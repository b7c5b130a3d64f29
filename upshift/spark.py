"""Apache Spark as the engine of the dbt project (UPSHIFT_WAREHOUSE=spark).

The raw data contract on Spark is the same tables as on PostgreSQL (dbt's sources yml, upshift/contract.py),
as Parquet tables in a Spark database named like the raw schema. `spark_session()` opens the
local Spark the dbt profile's `spark` output describes (dbt-spark's session method: the same
JVM, warehouse directory and Derby metastore under UPSHIFT_HOME), so tables registered here are
the ones dbt reads, in this process or a later one.

Types: `text` is `string`, `timestamptz` is Spark's `timestamp` (an instant, shown in the
session's UTC), `numeric(12, 2)` is `decimal(12,2)`. Two things PostgreSQL feeds can hold have
no Spark value: `infinity` / `-infinity` timestamps are loaded as the last / first instant Spark
represents (so they are still quarantined as future / implausible), and a NaN or infinite
amount cannot be stored in a decimal column at all: such fixture rows are left out and
reported in `SparkLoad.unrepresentable`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from upshift.contract import raw_contract
from upshift.dbt import DBT_PROJECT_DIR
from upshift.generator.generate import GenerationOptions, GenerationReport, generate_chunks
from upshift.generator.planted import PlantedFixtureError, _read_fixture
from upshift.generator.tables import NULL, TABLES
from upshift.warehouse import check_schema_name

if TYPE_CHECKING:
    import numpy as np
    from pyspark.sql import SparkSession

PROFILES_YML = DBT_PROJECT_DIR / "profiles.yml"
# Where PostgreSQL's special timestamps land on Spark, whose timestamps span years 1-9999.
SPECIAL_TIMESTAMPS = {"infinity": "9999-12-31T23:59:59.999999+00:00", "-infinity": "0001-01-01T00:00:00+00:00"}
NON_FINITE = {"nan", "infinity", "-infinity", "+infinity", "inf", "-inf"}
_SPARK_TYPES = {"text": "string", "timestamptz": "timestamp", "boolean": "boolean"}


def raw_columns() -> dict[str, list[tuple[str, str]]]:
    """table -> [(column, Spark type)], from the raw contract's column types."""
    return {
        table.name: [(column.name, _spark_type(column.data_type)) for column in table.columns.values()]
        for table in raw_contract().tables.values()
    }


def _spark_type(pg_type: str) -> str:
    """The Spark type of a contract (PostgreSQL) type: text -> string, numeric(p, s) -> decimal(p,s)."""
    return _SPARK_TYPES.get(pg_type, pg_type.replace("numeric", "decimal").replace(" ", ""))


def session_parameters(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The Spark configuration of profiles.yml's `spark` output, its env_var() calls rendered."""
    import jinja2
    import yaml

    outputs = yaml.safe_load(PROFILES_YML.read_text(encoding="utf-8"))["upshift"]["outputs"]
    parameters = outputs["spark"]["server_side_parameters"]

    def env_var(name: str, default: str | None = None) -> str:
        value = env.get(name, default)
        if value is None:
            raise KeyError(f"profiles.yml's spark output needs the environment variable {name}")
        return value

    render = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string
    return {key: render(str(value)).render(env_var=env_var) for key, value in parameters.items()}


def spark_session(env: Mapping[str, str] = os.environ) -> SparkSession:
    """The local Spark session dbt-spark's session method opens (the same one, if it is open)."""
    from pyspark.sql import SparkSession

    # py4j logs each gateway connection it closes at INFO, some of them from finalizers at
    # interpreter exit, after logging's streams are gone ("I/O operation on closed file").
    logging.getLogger("py4j").setLevel(logging.WARNING)
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in session_parameters(env).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _spark_cell(column: str, value: str | None) -> str | None:
    if column.endswith("_at") and value in SPECIAL_TIMESTAMPS:
        return SPECIAL_TIMESTAMPS[value]
    return value


def _literal(value: str | None, spark_type: str) -> str:
    if value is None:
        return f"cast(null as {spark_type})"
    text = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"cast('{text}' as {spark_type})"


@dataclass
class SparkLoad:
    """Rows loaded per table, and the ids of fixture rows Spark cannot represent (per table)."""

    loaded: dict[str, int] = field(default_factory=dict)
    unrepresentable: dict[str, list[str]] = field(default_factory=dict)


def create_raw_tables(spark: SparkSession, schema: str = "raw") -> None:
    """The raw database and its Parquet tables, where missing."""
    check_schema_name("UPSHIFT_RAW_SCHEMA", schema)
    spark.sql(f"create database if not exists {schema}")
    for table, columns in raw_columns().items():
        ddl = ", ".join(f"{name} {spark_type}" for name, spark_type in columns)
        spark.sql(f"create table if not exists {schema}.{table} ({ddl}) using parquet")


def load_planted_spark(
    spark: SparkSession, fixture_dir: str | Path, *, as_of: dt.date, schema: str = "raw"
) -> SparkLoad:
    """Append the fixture rows (see tests/fixtures/planted/README.md) to the raw Spark tables."""
    fixture_dir = Path(fixture_dir)
    if not fixture_dir.is_dir():
        raise PlantedFixtureError(f"{fixture_dir} is not a directory of <table>.csv fixtures")
    create_raw_tables(spark, schema)
    contract = raw_columns()
    result = SparkLoad()
    for table in TABLES:
        path = fixture_dir / f"{table}.csv"
        if not path.is_file():
            continue
        header, rows = _read_fixture(path, as_of)
        types = dict(contract[table])
        kept = []
        for row in rows:
            cells = dict(zip(header, row, strict=True))
            if any(
                types[column].startswith("decimal") and (value or "").strip().lower() in NON_FINITE
                for column, value in cells.items()
            ):
                result.unrepresentable.setdefault(table, []).append(row[0] or "")
                continue
            kept.append(tuple(_spark_cell(column, cells.get(column)) for column, _ in contract[table]))
        if kept:
            # One insert of literal rows: no Python workers, one small Spark job per table.
            spark_types = [spark_type for _, spark_type in contract[table]]
            values = ",\n".join("(" + ", ".join(map(_literal, row, spark_types)) + ")" for row in kept)
            spark.sql(f"insert into {schema}.{table} values {values}")
        result.loaded[table] = len(kept)
    return result


@dataclass
class SparkGeneration:
    """A generated marketplace on Spark: the generator's report (rows stored per table), and the
    generated rows Spark cannot represent (NaN amounts, see the module docstring), per table."""

    report: GenerationReport
    unrepresentable: dict[str, int] = field(default_factory=dict)


def generate_marketplace_spark(spark: SparkSession, options: GenerationOptions) -> SparkGeneration:
    """Replace the raw Spark tables' contents with the marketplace generate_marketplace writes to PostgreSQL.

    The same generator loop, chunk by chunk: each table's chunk becomes a DataFrame of the
    contract's schema, appended to its Parquet table, so memory stays flat in the users. The
    rows are PostgreSQL's for the same arguments, but for the NaN amounts (left out, counted).
    """
    from pyspark.sql.types import StringType, StructField, StructType

    schema = options.schema
    create_raw_tables(spark, schema)
    for table in TABLES:
        spark.sql(f"truncate table {schema}.{table}")
    contract = raw_columns()
    skipped = dict.fromkeys(TABLES, 0)

    def write(table: str, columns: dict[str, np.ndarray]) -> int:
        types = dict(contract[table])
        names = list(columns)
        rows = []
        for values in zip(*columns.values(), strict=True):
            cells = dict(zip(names, (None if value == NULL else value for value in values), strict=True))
            if any(
                types[column].startswith("decimal") and (value or "").strip().lower() in NON_FINITE
                for column, value in cells.items()
            ):
                skipped[table] += 1
                continue
            rows.append(tuple(_spark_cell(column, cells.get(column)) for column, _ in contract[table]))
        if rows:
            text = StructType([StructField(column, StringType()) for column, _ in contract[table]])
            frame = spark.createDataFrame(rows, text).selectExpr(
                *(f"cast({column} as {spark_type}) as {column}" for column, spark_type in contract[table])
            )
            frame.write.insertInto(f"{schema}.{table}")
        return len(rows)

    report = generate_chunks(write, options)
    return SparkGeneration(report, {table: count for table, count in skipped.items() if count})
