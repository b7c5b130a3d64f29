"""What every sync step shares: the run's options, the connection, the state schema, the
dbt models it reads, the errors table and the sync log.

The connection is the state store, a PostgreSQL: the warehouse itself when dbt builds on
PostgreSQL; when it builds on Spark, the PostgreSQL the same `UPSHIFT_PG_*` settings name, with
the models staged into it from Spark and the state dbt reads published back (on_spark.py)."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from upshift.sync.errors import MassRemovalRefused, SyncModelsOutOfDate, TooManyRejected
from upshift.sync.settings import SyncSettings
from upshift.warehouse import WarehouseSettings, connect

if TYPE_CHECKING:
    from upshift.sync.on_spark import SparkModels

logger = logging.getLogger("upshift.sync")

STATE_DDL = Path(__file__).with_name("state.sql")
DESTINATIONS = ("braze", "iterable")


@dataclass(frozen=True)
class SyncOptions:
    """The knobs of one run: its id, the as-of date it syncs, dry run, full resync, and
    `force_backfill`: send an as-of date older than the newest one already synced."""

    run_id: str
    as_of_date: dt.date | None = None
    dry_run: bool = False
    full_resync: bool = False
    force_backfill: bool = False


@dataclass
class SyncContext:
    """A step's view of the warehouse. `conn` is autocommit; steps open their own transactions.

    `spark` is set when the models live on Spark: `model()` then names their staged copies.
    """

    conn: psycopg.Connection
    marts_schema: str
    options: SyncOptions
    settings: SyncSettings = field(default_factory=SyncSettings)
    spark: SparkModels | None = None

    def state(self, table: str) -> sql.Composed:
        return sql.Identifier(self.settings.schema, table)

    def model(self, name: str) -> sql.Composed:
        """A dbt marts model, for the step's SQL; on Spark, staged on first use (outside a transaction)."""
        if self.spark is not None:
            return self.spark.model(self.conn, name)
        return sql.Identifier(self.marts_schema, name)

    def fetch(self, query: sql.Composable, params: Any = None) -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()


@contextmanager
def open_context(
    warehouse: WarehouseSettings, options: SyncOptions, settings: SyncSettings | None = None
) -> Iterator[SyncContext]:
    """Connect to the state store, create the state tables if missing, and check the models'
    as-of date. On Spark, the models are read through the engine's session, and the state dbt
    reads is published to Spark when the block ends (also when a step failed: what the
    destinations accepted is recorded either way)."""
    settings = settings or SyncSettings.from_env()
    with connect(warehouse, autocommit=True) as conn:
        spark = None
        if warehouse.engine == "spark":
            from upshift.sync.on_spark import open_spark_models

            spark = open_spark_models(str(warehouse.home), warehouse.layer_schema("marts"), settings.schema)
        context = SyncContext(conn, warehouse.layer_schema("marts"), options, settings, spark)
        ensure_state_schema(conn, settings.schema)
        try:
            check_models_as_of(context)
            yield context
        except BaseException:
            if spark is not None:
                _publish_after_failure(spark, conn)
            raise
        if spark is not None:
            spark.publish(conn)


def _publish_after_failure(spark: SparkModels, conn: psycopg.Connection) -> None:
    """Publish what a failed step recorded, without hiding the step's own error behind this one's."""
    try:
        spark.publish(conn)
    except Exception:
        logger.exception("publishing the sync state to Spark failed too; the next sync publishes it")


def ensure_state_schema(conn: psycopg.Connection, schema: str) -> None:
    """Create the sync schema and its tables (idempotent).

    Two sync steps starting together on a fresh warehouse (braze_users and iterable_users) would
    race on `create schema if not exists`, which PostgreSQL does not serialise: a transaction
    advisory lock per schema makes the second wait for the first instead of failing.
    """
    ddl = STATE_DDL.read_text(encoding="utf-8").format(schema=sql.Identifier(schema).as_string(conn))
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"upshift_sync_state:{schema}",))
        conn.execute(ddl)


def check_models_as_of(context: SyncContext) -> None:
    """Refuse to sync models built for another date than the run's (a stale or rerun build)."""
    wanted = context.options.as_of_date
    if wanted is None:
        return
    rows = context.fetch(sql.SQL("select as_of_date from {}").format(context.model("platform_benchmarks")))
    built = {row["as_of_date"] for row in rows}
    if built and built != {wanted}:
        raise SyncModelsOutOfDate(
            f"The activation models in {context.marts_schema} were built for as-of "
            f"{', '.join(sorted(str(day) for day in built))}, not {wanted}: rebuild the stage_activation "
            "models for this date before syncing it (clear the dbt tasks of this run)."
        )


def newer_state_synced(context: SyncContext, destination: str) -> dt.date | None:
    """The newest as-of date already synced to `destination` when it is newer than this run's.

    The sync only moves forward per destination: an older as-of date (a backfill) would push
    old attributes, removals and touchpoints over newer ones. None means: go ahead.
    """
    wanted = context.options.as_of_date
    if wanted is None or context.options.force_backfill:
        return None
    rows = context.fetch(
        sql.SQL(
            "select max(as_of_date) as newest from {} where destination = %s and not dry_run "
            "and coalesce(summary ->> 'skipped', '') = ''"
        ).format(context.state("sync_log")),
        (destination,),
    )
    newest = rows[0]["newest"] if rows else None
    return newest if newest is not None and newest > wanted else None


def skipped_backfill(log: StepLog, summary: dict[str, Any], newest: dt.date) -> dict[str, Any]:
    """Write and return the summary of a step that sent nothing because newer state was synced."""
    options = log.context.options
    logger.warning(
        "%s %s: as-of %s is older than %s, already synced to %s; sent nothing "
        "(scores and history are written; pass force_backfill_sync to send it anyway)",
        log.destination,
        log.step,
        options.as_of_date,
        newest,
        log.destination,
    )
    return log.write({**summary, "skipped": "backfill_over_newer_state", "newest_synced_as_of": str(newest)})


def refuse_mass_removal(context: SyncContext, what: str, removing: int, holding: int) -> None:
    """Fail before sending when a run would clear more than `max_removal_share` of what is held."""
    share = context.settings.max_removal_share
    if removing and removing > share * holding:
        raise MassRemovalRefused(
            f"{what}: this run would remove {removing} of the {holding} held at the destination "
            f"({removing / max(holding, 1):.0%}, over max_removal_share {share:.0%}); nothing was sent. "
            "Check the models (an empty or mostly empty payload usually means a bad build or config); "
            "if the removal is intended, raise UPSHIFT_SYNC_MAX_REMOVAL_SHARE for this run."
        )


def fail_on_rejections(context: SyncContext, what: str, rejected: int, attempted: int) -> None:
    """Fail (after everything is recorded) when the destination refused too large a share."""
    share = context.settings.max_rejected_share
    if attempted and rejected > share * attempted:
        raise TooManyRejected(
            f"{what}: {rejected} of {attempted} rows were refused ({rejected / attempted:.0%}, over "
            f"max_rejected_share {share:.0%}). Each is in {context.settings.schema}.sync_errors for run "
            f"{context.options.run_id} with the reason; fix the values and rerun."
        )


def record_errors(
    context: SyncContext,
    destination: str,
    step: str,
    object_type: str,
    failures: Mapping[str, tuple[str, str]],
) -> None:
    """One sync_errors row per failed object: (reason, detail). Call inside a transaction."""
    if not failures:
        return
    query = sql.SQL(
        "insert into {} (run_id, destination, step, object_type, object_id, reason, detail, occurred_at) "
        "values (%s, %s, %s, %s, %s, %s, %s, now())"
    ).format(context.state("sync_errors"))
    with context.conn.cursor() as cursor:
        cursor.executemany(
            query,
            [
                (context.options.run_id, destination, step, object_type, object_id, reason, detail)
                for object_id, (reason, detail) in failures.items()
            ],
        )


def resolve_errors(
    context: SyncContext, destination: str, step: str, object_type: str, object_ids: Iterable[str]
) -> set[str]:
    """Mark open errors of these objects resolved by this run; return the ids that had one."""
    ids = list(object_ids)
    if not ids:
        return set()
    query = sql.SQL(
        "update {} set resolved_at = now(), resolved_by_run_id = %s "
        "where destination = %s and step = %s and object_type = %s and object_id = any(%s) "
        "and resolved_at is null returning object_id"
    ).format(context.state("sync_errors"))
    rows = context.conn.execute(query, (context.options.run_id, destination, step, object_type, ids)).fetchall()
    return {row[0] for row in rows}


class StepLog:
    """Times a step and writes its sync_log row (replacing the row of an earlier try of the run)."""

    COUNTERS = ("considered", "sent", "unchanged", "removed", "failed", "retried", "events_sent", "events_failed")

    def __init__(self, context: SyncContext, step: str, destination: str) -> None:
        self.context = context
        self.step = step
        self.destination = destination
        self.started_at = dt.datetime.now(dt.UTC)
        self._clock = time.monotonic()
        self.counts: dict[str, int] = dict.fromkeys(self.COUNTERS, 0)

    def write(self, summary: dict[str, Any]) -> dict[str, Any]:
        options = self.context.options
        duration = round(time.monotonic() - self._clock, 3)
        summary = {**summary, "duration_seconds": duration}
        columns = [
            "run_id",
            "step",
            "destination",
            "as_of_date",
            "dry_run",
            "full_resync",
            "started_at",
            "finished_at",
            *self.COUNTERS,
            "duration_seconds",
            "summary",
        ]
        values = [
            options.run_id,
            self.step,
            self.destination,
            options.as_of_date,
            options.dry_run,
            options.full_resync,
            self.started_at,
            dt.datetime.now(dt.UTC),
            *(self.counts[name] for name in self.COUNTERS),
            duration,
            Jsonb(summary),
        ]
        query = sql.SQL(
            "insert into {} ({}) values ({}) on conflict (run_id, step, destination) do update set {}"
        ).format(
            self.context.state("sync_log"),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
            sql.SQL(", ").join(sql.SQL("{0} = excluded.{0}").format(sql.Identifier(name)) for name in columns[3:]),
        )
        with self.context.conn.transaction():
            self.context.conn.execute(query, values)
        return summary


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of at most `size` items, in order; `items` is read as they are needed (a stream)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, max(1, size))):
        yield batch
