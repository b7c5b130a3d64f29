"""generate_marketplace: build the synthetic marketplace and load it into the raw tables."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from upshift.generator.catalog import Catalog, load_catalog
from upshift.generator.clients import client_events
from upshift.generator.dirty import Corrupter
from upshift.generator.exposures import exposure_rows
from upshift.generator.frames import Frame, frame_length
from upshift.generator.population import Population, Window, build_population
from upshift.generator.subscriptions import subscription_rows
from upshift.generator.tables import (
    EVENT_TABLES,
    TABLES,
    TextEncoder,
    copy_text,
    drop_timestamp_indexes,
    schema_ddl,
    timestamp_indexes,
    user_ids,
)
from upshift.generator.timing import DAY
from upshift.generator.users import user_rows
from upshift.generator.workers import worker_events

CHUNK_USERS = 4_000
# Rows encoded and written at a time: a chunk of workers holds events of every client, so its
# rows grow with the population; the text columns (the bulk of the memory) stay this size.
WRITE_ROWS = 50_000
AUTO_PROGRESS_USERS = 50_000
# Independent random streams, so e.g. changing dirty_rate leaves the clean rows unchanged.
POPULATION_STREAM, CLIENT_STREAM, WORKER_STREAM, DIRTY_STREAM = 0, 1, 2, 3


@dataclass(frozen=True)
class ProgressEvent:
    """One table chunk loaded: counts and speed only, never row contents."""

    table: str
    chunk: int
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


ProgressCallback = Callable[[ProgressEvent], None]


def print_progress(event: ProgressEvent) -> None:
    print(
        f"upshift.generator: {event.table:<16} chunk {event.chunk:>4}  "
        f"{event.rows:>10,} rows  {event.rows_per_second:>12,.0f} rows/s",
        file=sys.stderr,
        flush=True,
    )


@dataclass(frozen=True)
class GenerationOptions:
    """What to generate: the one home of the generator's knobs, whichever engine it writes to.

    Events fall in [as_of - days, as_of) UTC, except planted future-timestamp rows; the same
    options always give the same rows. `progress` prints a line per table write to stderr
    (True), calls a callback, or (None) prints only for runs of AUTO_PROGRESS_USERS users or more.
    """

    as_of: dt.date
    schema: str = "raw"
    clients: int = 2_000
    workers: int = 800
    days: int = 120
    seed: int = 42
    dirty_rate: float = 0.005
    progress: bool | ProgressCallback | None = None
    chunk_users: int = CHUNK_USERS
    seeds_dir: Path | None = None

    def __post_init__(self) -> None:
        as_of_epoch(self.as_of)
        if self.clients < 1 or self.workers < 1:
            raise ValueError(f"need at least one client and one worker, got {self.clients} and {self.workers}")
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days}")
        if self.chunk_users < 1:
            raise ValueError(f"chunk_users must be at least 1, got {self.chunk_users}")

    @classmethod
    def from_args(cls, args: argparse.Namespace, **overrides: Any) -> GenerationOptions:
        """Options from a command line's parsed arguments (`--clients`, `--dirty-rate`, ... as named
        here), the ones it does not have left at their defaults; keyword overrides win."""
        given = {item.name: getattr(args, item.name) for item in fields(cls) if hasattr(args, item.name)}
        return cls(**{**given, **overrides})

    @property
    def progress_callback(self) -> ProgressCallback | None:
        progress = self.progress
        if progress is None:
            progress = self.clients + self.workers >= AUTO_PROGRESS_USERS
        return print_progress if progress is True else (progress or None)


@dataclass
class GenerationReport:
    """What was loaded: rows per table (dirty rows included) and dirty rows per table and kind."""

    schema: str
    as_of: dt.date
    days: int
    seed: int
    clients: int
    workers: int
    dirty_rate: float
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    dirty: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return sum(self.rows[table] for table in EVENT_TABLES)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def dirty_by_kind(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for kinds in self.dirty.values():
            for kind, count in kinds.items():
                totals[kind] = totals.get(kind, 0) + count
        return totals


def as_of_epoch(as_of: dt.date) -> int:
    """Midnight UTC of the as-of date, in epoch seconds."""
    if isinstance(as_of, dt.datetime) or not isinstance(as_of, dt.date):
        raise TypeError(f"as_of must be a datetime.date (midnight UTC is implied), got {as_of!r}")
    return int(dt.datetime(as_of.year, as_of.month, as_of.day, tzinfo=dt.UTC).timestamp())


# Writes one chunk of encoded, corrupted text columns (NULL is tables.NULL) to a raw table and
# returns the rows it stored: COPY into PostgreSQL here, a Parquet append on Spark (upshift/spark.py).
ChunkWriter = Callable[[str, dict[str, np.ndarray]], int]


def copy_writer(cursor: psycopg.Cursor, schema: str) -> ChunkWriter:
    """A ChunkWriter that COPYs each chunk into `schema` inside the cursor's transaction."""

    def write(table: str, columns: dict[str, np.ndarray]) -> int:
        statement = sql.SQL("copy {}.{} ({}) from stdin").format(
            sql.Identifier(schema),
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
        )
        with cursor.copy(statement) as copy:
            copy.write(copy_text(columns))
        return len(next(iter(columns.values())))

    return write


class _Loader:
    """Encodes and corrupts chunks of generated rows, and hands them to a ChunkWriter."""

    def __init__(
        self,
        write: ChunkWriter,
        encoder: TextEncoder,
        corrupter: Corrupter,
        report: GenerationReport,
        progress: ProgressCallback | None,
    ) -> None:
        self._write = write
        self._encoder = encoder
        self._corrupter = corrupter
        self._report = report
        self._progress = progress

    def load(self, table: str, frame: Frame, chunk: int, rng: np.random.Generator) -> None:
        """Write a chunk's rows in event-time order, WRITE_ROWS at a time.

        In time order, a day's rows of a chunk sit on neighbouring pages, as in a feed appended
        day by day: a read of the last few days through the timestamp index touches few pages.
        """
        length = frame_length(frame)
        if not length:
            return
        order = np.argsort(frame[TABLES[table].timestamp_column], kind="stable")
        for start in range(0, length, WRITE_ROWS):
            started = time.perf_counter()
            part = {column: values[order[start : start + WRITE_ROWS]] for column, values in frame.items()}
            columns = self._corrupter.apply(table, self._encoder.encode(table, part), rng)
            rows = self._write(table, columns)
            del part, columns
            self._report.rows[table] += rows
            if self._progress:
                self._progress(ProgressEvent(table, chunk, rows, time.perf_counter() - started))


def _chunk_frames(
    role: str,
    rng: np.random.Generator,
    population: Population,
    members: np.ndarray,
    ids: np.ndarray,
    catalog: Catalog,
) -> dict[str, Frame]:
    side = population.clients if role == "client" else population.workers
    frames = {"users": user_rows(rng, side, members, role, ids)}
    events = client_events(rng, population, members) if role == "client" else worker_events(rng, population, members)
    frames.update(events)
    frames["subscriptions"] = subscription_rows(rng, side, members, role, ids, catalog, population.window)
    frames["offer_exposures"] = exposure_rows(rng, side, members, role, ids, catalog, population.window)
    return frames


def generate_marketplace(conn: psycopg.Connection, options: GenerationOptions) -> GenerationReport:
    """Replace the raw tables' contents in `options.schema` with a synthetic marketplace.

    The tables are created if missing, then truncated and loaded with COPY in one transaction,
    so the same options always give the same tables. The event-timestamp indexes are dropped
    for the load and built once after it (COPY maintaining them row by row costs several times
    the load).
    """
    schema = options.schema
    tables = sql.SQL(", ").join(sql.Identifier(schema, table) for table in TABLES)
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute(schema_ddl(schema))
        cursor.execute(drop_timestamp_indexes(schema))
        cursor.execute(sql.SQL("truncate table {}").format(tables))
        report = generate_chunks(copy_writer(cursor, schema), options)
        started = time.perf_counter()
        cursor.execute(timestamp_indexes(schema))
        # Fresh statistics, so the first dbt run plans its batch reads with real row counts.
        cursor.execute(sql.SQL("analyze {}").format(tables))
        report.seconds += time.perf_counter() - started
    return report


def generate_chunks(write: ChunkWriter, options: GenerationOptions) -> GenerationReport:
    """Generate the marketplace chunk by chunk (memory flat in the users), each table's chunk to `write`.

    The rows depend only on the options, not on the writer: PostgreSQL and Spark get the same ones.
    """
    end = as_of_epoch(options.as_of)
    callback = options.progress_callback
    clients, workers, seed, chunk_users = options.clients, options.workers, options.seed, options.chunk_users

    started = time.perf_counter()
    catalog = load_catalog(options.seeds_dir)
    window = Window(start=end - options.days * DAY, end=end)
    population = build_population(np.random.default_rng([seed, POPULATION_STREAM]), clients, workers, window)
    ids = {"client": user_ids("cli_", clients), "worker": user_ids("wrk_", workers)}
    report = GenerationReport(options.schema, options.as_of, options.days, seed, clients, workers, options.dirty_rate)
    corrupter = Corrupter(options.dirty_rate, end)
    loader = _Loader(write, TextEncoder(ids["client"], ids["worker"]), corrupter, report, callback)
    chunk = 0
    for role, stream, size in (("client", CLIENT_STREAM, clients), ("worker", WORKER_STREAM, workers)):
        for start in range(0, size, chunk_users):
            members = np.arange(start, min(size, start + chunk_users))
            rng = np.random.default_rng([seed, stream, start])
            frames = _chunk_frames(role, rng, population, members, ids[role], catalog)
            dirty_rng = np.random.default_rng([seed, DIRTY_STREAM, stream, start])
            for table in TABLES:
                loader.load(table, frames.get(table, {}), chunk, dirty_rng)
            del frames  # before the next chunk's are built
            chunk += 1

    report.dirty = {table: dict(kinds) for table, kinds in corrupter.counts.items()}
    report.seconds = time.perf_counter() - started
    if callback:
        print(
            f"upshift.generator: loaded {report.total_rows:,} rows ({report.events:,} events) "
            f"in {report.seconds:,.1f}s",
            file=sys.stderr,
            flush=True,
        )
    return report
