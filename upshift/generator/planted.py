"""load_planted: append hand-written fixture rows whose timestamps are relative to as-of.

Each `<table>.csv` in the fixture directory holds rows for that raw table; the header
names any subset of its columns. Timestamp cells may be relative to as-of midnight UTC
(`-61d`, `-0.5d`, `-30d+3h`, `+2d`, units d/h/m/s) or absolute ISO-8601 (UTC when no
offset is given). An empty cell is NULL. See tests/fixtures/planted/README.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import psycopg
from psycopg import sql

from upshift.generator.generate import as_of_epoch
from upshift.generator.tables import TABLES, schema_ddl

_TERM = re.compile(r"([+-]?)(\d+(?:\.\d+)?)([dhms])")
_RELATIVE = re.compile(rf"(?:{_TERM.pattern})+")
_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


class PlantedFixtureError(ValueError):
    """A fixture file or cell that cannot be loaded; the message names the file and what to fix."""


# PostgreSQL's special timestamps, loaded as written: feeds do deliver them.
SPECIAL_TIMESTAMPS = ("infinity", "-infinity")


def resolve_timestamp(value: str, as_of: dt.date) -> str:
    """A fixture timestamp cell as an ISO-8601 UTC timestamp (or `infinity` / `-infinity`)."""
    text = value.strip()
    if text in SPECIAL_TIMESTAMPS:
        return text
    if _RELATIVE.fullmatch(text):
        offset = sum(
            (-1 if sign == "-" else 1) * float(amount) * _UNIT_SECONDS[unit]
            for sign, amount, unit in _TERM.findall(text)
        )
        moment = dt.datetime.fromtimestamp(as_of_epoch(as_of), dt.UTC) + dt.timedelta(seconds=offset)
        return moment.isoformat()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise PlantedFixtureError(
            f"timestamp {value!r} is neither relative to as-of (e.g. -30d+3h) nor ISO-8601"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat()


def _read_fixture(path: Path, as_of: dt.date) -> tuple[list[str], list[list[str | None]]]:
    spec = TABLES[path.stem]
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = [column.strip() for column in next(reader, [])]
        unknown = [column for column in header if column not in spec.columns]
        if not header or unknown:
            raise PlantedFixtureError(
                f"{path}: header must name columns of {spec.name} ({', '.join(spec.columns)}); unknown: {unknown}"
            )
        rows = []
        for line_number, record in enumerate(reader, start=2):
            if not record:
                continue
            if len(record) != len(header):
                raise PlantedFixtureError(f"{path}:{line_number}: {len(record)} cells, header has {len(header)}")
            row: list[str | None] = []
            for column, cell in zip(header, record, strict=True):
                if cell == "":
                    row.append(None)
                elif column.endswith("_at"):
                    try:
                        row.append(resolve_timestamp(cell, as_of))
                    except PlantedFixtureError as error:
                        raise PlantedFixtureError(f"{path}:{line_number}: {error}") from None
                else:
                    row.append(cell)
            rows.append(row)
    return header, rows


def load_planted(
    conn: psycopg.Connection, fixture_dir: str | Path, *, as_of: dt.date, schema: str = "raw"
) -> dict[str, int]:
    """Append the fixture rows to the raw tables with COPY; returns rows loaded per table.

    Files are loaded in contract table order. Other files in the directory (expected
    results such as expected_readiness.csv) are not rows and are left alone.
    """
    fixture_dir = Path(fixture_dir)
    if not fixture_dir.is_dir():
        raise PlantedFixtureError(f"{fixture_dir} is not a directory of <table>.csv fixtures")
    files = {table: fixture_dir / f"{table}.csv" for table in TABLES if (fixture_dir / f"{table}.csv").is_file()}
    loaded = {}
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute(schema_ddl(schema))
        for table, path in files.items():
            header, rows = _read_fixture(path, as_of)
            statement = sql.SQL("copy {}.{} ({}) from stdin").format(
                sql.Identifier(schema), sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, header))
            )
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            loaded[table] = len(rows)
    return loaded
