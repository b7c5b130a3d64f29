"""The sync when dbt builds on Apache Spark (UPSHIFT_WAREHOUSE=spark): models in, state out.

The sync's state store stays a transactional PostgreSQL (the `UPSHIFT_PG_*` / `upshift_warehouse`
connection; on PostgreSQL that is the warehouse itself), as reverse-ETL tools keep their own
state: the steps need transactions per batch, upserts, WITH HOLD cursors and advisory locks,
which Spark tables without Delta do not have. Two bridges make the rest engine-neutral:

- **Models in.** The first time a step names a dbt model (`SyncContext.model`), the model is read
  from Spark through the engine's session, one partition at a time (`toLocalIterator`: the
  driver holds one partition, not the table), and COPYed into a temporary table of the state
  store's session. The step's change SQL then runs unchanged against that copy. Temporary
  tables are per session, so steps running at once (braze_users and iterable_users) never see
  each other's copies, and they vanish with the connection. Column types come from the model's
  dbt contract (`data_type` for PostgreSQL in the models' yml, so JSON columns are jsonb) and,
  for columns without one, from the Spark type.
- **State out.** dbt reads `event_ledger` and `sync_log` back (source `upshift_sync`: which
  touchpoints earlier syncs delivered). When the context closes, after its step(s), both are
  written to Spark's database named like the sync schema, replacing what was there
  (idempotent: a rerun writes the same tables), so the next dbt build on Spark sees the
  deliveries. Written in chunks of `PUBLISH_CHUNK_ROWS` rows read from a server-side cursor.

Timestamps cross both ways as UTC text with an explicit zone, so no driver's local-time
conversion (pyspark turns timestamps into naive local datetimes) touches them.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jinja2
import psycopg
import yaml
from psycopg import sql

from upshift.dbt import DBT_PROJECT_DIR

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger("upshift.sync")

# The state tables dbt reads back (dbt_project/models/staging/upshift_sync).
PUBLISHED_STATE = ("event_ledger", "sync_log")
PUBLISH_CHUNK_ROWS = 10_000
_DECIMAL = re.compile(r"decimal\((\d+),(\d+)\)")
_SPARK_TO_POSTGRES = {
    "string": "text",
    "date": "date",
    "timestamp": "timestamp with time zone",
    "boolean": "boolean",
    "tinyint": "smallint",
    "smallint": "smallint",
    "int": "integer",
    "bigint": "bigint",
    "float": "real",
    "double": "double precision",
}
_POSTGRES_TO_SPARK = {
    "text": "string",
    "jsonb": "string",
    "date": "date",
    "timestamp with time zone": "timestamp",
    "boolean": "boolean",
    "smallint": "smallint",
    "integer": "int",
    "bigint": "bigint",
    "numeric": "double",
    "double precision": "double",
}


class SparkBridgeError(RuntimeError):
    """A model or state table cannot cross between Spark and the state store; the message says which."""


@functools.cache
def contract_types() -> dict[str, dict[str, str]]:
    """model -> {column: PostgreSQL data_type} from the models' yml (contracts are written per engine)."""
    render = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string
    target = {"type": "postgres"}
    types: dict[str, dict[str, str]] = {}
    for path in sorted((DBT_PROJECT_DIR / "models").rglob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for model in document.get("models") or []:
            declared = {
                column["name"]: render(str(column["data_type"])).render(target=target)
                for column in model.get("columns") or []
                if column.get("data_type")
            }
            if declared:
                types[model["name"]] = declared
    return types


def postgres_type(spark_type: str, where: str) -> str:
    """The state store's type for a Spark column type (arrays, maps and structs become jsonb)."""
    if spark_type in _SPARK_TO_POSTGRES:
        return _SPARK_TO_POSTGRES[spark_type]
    if decimal := _DECIMAL.fullmatch(spark_type):
        return f"numeric({decimal[1]}, {decimal[2]})"
    if spark_type.startswith(("array<", "map<", "struct<")):
        return "jsonb"
    raise SparkBridgeError(f"{where}: no PostgreSQL type for the Spark type {spark_type}")


def _as_text(column: str, spark_type: str) -> str:
    """A Spark expression giving the column as the text COPY reads (timestamps in UTC, with their zone)."""
    quoted = f"`{column}`"
    if spark_type == "timestamp":
        return f'date_format({quoted}, "yyyy-MM-dd HH:mm:ss.SSSSSSxxx")'
    if spark_type.startswith(("array<", "map<", "struct<")):
        return f"to_json({quoted})"
    return f"cast({quoted} as string)"


@dataclass
class SparkModels:
    """The dbt models on Spark, staged into the state store on first use, and the state published back."""

    session: SparkSession
    marts_database: str
    sync_schema: str
    staged: set[str] = field(default_factory=set)

    def model(self, conn: psycopg.Connection, name: str) -> sql.Identifier:
        """The staged copy of marts model `name` (staging it first if this session has none yet)."""
        if name not in self.staged:
            self.stage(conn, name)
            self.staged.add(name)
        return sql.Identifier("pg_temp", name)

    def stage(self, conn: psycopg.Connection, name: str) -> int:
        """COPY the Spark model into a temporary table of `conn`'s session; returns the rows copied."""
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise SparkBridgeError(f"{name}: a model is staged outside a transaction (the copy must outlive it)")
        frame = self.session.table(f"{self.marts_database}.{name}")
        declared = contract_types().get(name, {})
        fields = [(item.name, item.dataType.simpleString()) for item in frame.schema.fields]
        columns = [
            (column, declared.get(column) or postgres_type(spark_type, f"{name}.{column}"))
            for column, spark_type in fields
        ]
        texts = frame.selectExpr(*(_as_text(column, spark_type) for column, spark_type in fields))
        table = sql.Identifier("pg_temp", name)
        ddl = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns)
        copied = 0
        with conn.transaction():
            conn.execute(sql.SQL("drop table if exists {}").format(table))
            conn.execute(sql.SQL("create temporary table {} ({})").format(sql.Identifier(name), ddl))
            names = sql.SQL(", ").join(sql.Identifier(column) for column, _ in columns)
            with conn.cursor() as cursor, cursor.copy(sql.SQL("copy {} ({}) from stdin").format(table, names)) as copy:
                for row in _rows(texts):
                    copy.write_row(row)
                    copied += 1
            conn.execute(sql.SQL("analyze {}").format(table))
        logger.info("staged %s from Spark (%s): %d rows", name, self.marts_database, copied)
        return copied

    def publish(self, conn: psycopg.Connection) -> dict[str, int]:
        """Replace Spark's copies of the state tables dbt reads; rows written per table."""
        self.session.sql(f"create database if not exists `{self.sync_schema}`")
        return {table: self._publish_table(conn, table) for table in PUBLISHED_STATE}

    def _publish_table(self, conn: psycopg.Connection, table: str) -> int:
        from pyspark.sql.types import StringType, StructField, StructType

        columns = conn.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = %s and table_name = %s order by ordinal_position",
            (self.sync_schema, table),
        ).fetchall()
        if not columns:
            raise SparkBridgeError(f"{self.sync_schema}.{table} does not exist in the state store")
        spark_types = {name: _POSTGRES_TO_SPARK.get(data_type) for name, data_type in columns}
        unknown = sorted(name for name, spark_type in spark_types.items() if spark_type is None)
        if unknown:
            raise SparkBridgeError(f"{self.sync_schema}.{table}: no Spark type for {', '.join(unknown)}")
        texts = sql.SQL(", ").join(_text_of(name, data_type) for name, data_type in columns)
        text_schema = StructType([StructField(name, StringType()) for name, _ in columns])
        casts = [f"cast(`{name}` as {spark_type}) as `{name}`" for name, spark_type in spark_types.items()]
        target = f"`{self.sync_schema}`.`{table}`"
        written = 0
        with conn.transaction(), conn.cursor(name=f"upshift_publish_{table}") as cursor:
            cursor.execute(sql.SQL("select {} from {}").format(texts, sql.Identifier(self.sync_schema, table)))
            first = True
            while (chunk := cursor.fetchmany(PUBLISH_CHUNK_ROWS)) or first:
                frame = self.session.createDataFrame(chunk, text_schema).selectExpr(*casts)
                if first:
                    frame.write.mode("overwrite").format("parquet").saveAsTable(target)
                    first = False
                else:
                    frame.write.insertInto(target)
                written += len(chunk)
        logger.info("published %s.%s to Spark: %d rows", self.sync_schema, table, written)
        return written


def _text_of(column: str, data_type: str) -> sql.Composable:
    """A state column as text Spark casts back (timestamps in UTC, marked Z)."""
    if data_type == "timestamp with time zone":
        template = "to_char({} at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        return sql.SQL(template).format(sql.Identifier(column))
    return sql.SQL("{}::text").format(sql.Identifier(column))


def _rows(frame: DataFrame) -> Iterator[tuple[Any, ...]]:
    """The frame's rows, one partition at a time in the driver (memory flat in the table's size)."""
    for row in frame.toLocalIterator(prefetchPartitions=False):
        yield tuple(row)


def open_spark_models(home: str, marts_database: str, sync_schema: str) -> SparkModels:
    """The bridge over the Spark session profiles.yml's `spark` output describes (the open one, if any)."""
    import os

    from upshift.spark import spark_session

    return SparkModels(spark_session({**os.environ, "UPSHIFT_HOME": home}), marts_database, sync_schema)
