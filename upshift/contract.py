"""The raw data contract, read from its one home: the dbt sources yml.

`dbt_project/models/staging/marketplace/_marketplace__sources.yml` lists the raw tables and
their columns in order, each with its `data_type` (the generator creates the raw tables from
them); a column's `config.meta` says what it must hold (`not_null`, `unique`,
`accepted_values`). The staging models read the accepted values
through dbt's graph (macro `source_accepted_values`), the generator (upshift/generator/tables.py)
and the raw gate (`for_each: {contract: ...}` in expectations/suites/raw.yml) through this
module, so changing an enum in the yml changes all three. No dbt import: it parses the yml.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from upshift.dbt import DBT_PROJECT_DIR

SOURCE_NAME = "marketplace"
SOURCES_YML = DBT_PROJECT_DIR / "models" / "staging" / "marketplace" / "_marketplace__sources.yml"
# The `meta` keys a contract column may carry.
_META_KEYS = frozenset({"not_null", "unique", "accepted_values"})
# A PostgreSQL type name, optionally with a precision: `text`, `timestamptz`, `numeric(12, 2)`.
_DATA_TYPE = re.compile(r"^[a-z][a-z0-9_ ]*(\(\d+(, ?\d+)?\))?$")
# What the raw gate's `for_each: {contract: <rule>}` can expand over: a meta rule, or
# `timestamptz` for every column of that data_type.
RULES = ("not_null", "unique", "accepted_values", "timestamptz")


class ContractError(ValueError):
    """The sources yml does not state a readable contract; the message names the file and entry."""


@dataclass(frozen=True)
class ContractColumn:
    name: str
    data_type: str
    not_null: bool = False
    unique: bool = False
    accepted_values: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ContractTable:
    name: str
    columns: dict[str, ContractColumn]

    def column(self, name: str) -> ContractColumn:
        try:
            return self.columns[name]
        except KeyError:
            raise ContractError(f"raw contract: {self.name} has no column {name!r}") from None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(self.columns)


@dataclass(frozen=True)
class RawContract:
    """The tables of the marketplace source, in the yml's order."""

    path: Path
    tables: dict[str, ContractTable]

    def table(self, name: str) -> ContractTable:
        try:
            return self.tables[name]
        except KeyError:
            raise ContractError(f"{self.path}: no source table {name!r}") from None

    def accepted_values(self, table: str, column: str) -> tuple[str, ...]:
        values = self.table(table).column(column).accepted_values
        if values is None:
            raise ContractError(f"{self.path}: {table}.{column} declares no accepted_values")
        return values

    def value(self, table: str, column: str, value: str) -> str:
        """`value`, after checking it is one of the column's accepted values: the generator's
        named values (a completed booking, a won proposal) fail loudly when the contract drops them."""
        if value not in self.accepted_values(table, column):
            raise ContractError(
                f"{self.path}: {table}.{column} no longer accepts {value!r} "
                f"(accepted: {', '.join(self.accepted_values(table, column))})"
            )
        return value

    def columns_with(self, rule: str) -> Iterator[tuple[str, ContractColumn]]:
        """(table, column) of every column carrying `rule` (one of RULES), in yml order."""
        if rule not in RULES:
            raise ContractError(f"raw contract: unknown rule {rule!r}; rules are {', '.join(RULES)}")
        for table in self.tables.values():
            for column in table.columns.values():
                if rule == "timestamptz":
                    carries = column.data_type == "timestamptz"
                else:
                    carries = getattr(column, rule) not in (None, False)
                if carries:
                    yield table.name, column


def _column(entry: Any, where: str) -> ContractColumn:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ContractError(f"{where}: a column needs a `name`")
    where = f"{where}.{entry['name']}"
    meta = ((entry.get("config") or {}).get("meta")) or {}
    unknown = sorted(set(meta) - _META_KEYS)
    if unknown:
        raise ContractError(
            f"{where}: unknown contract meta {', '.join(unknown)}; known: {', '.join(sorted(_META_KEYS))}"
        )
    for flag in ("not_null", "unique"):
        if not isinstance(meta.get(flag, False), bool):
            raise ContractError(f"{where}: meta {flag} must be true or false")
    values = meta.get("accepted_values")
    if values is not None and (
        not isinstance(values, list) or not values or not all(isinstance(value, str) for value in values)
    ):
        raise ContractError(f"{where}: meta accepted_values must be a non-empty list of strings")
    if values is not None and len(set(values)) != len(values):
        raise ContractError(f"{where}: meta accepted_values lists a value twice")
    data_type = entry.get("data_type")
    if not isinstance(data_type, str) or not _DATA_TYPE.match(data_type):
        raise ContractError(
            f"{where}: needs a `data_type` such as text, timestamptz or numeric(12, 2), got {data_type!r}"
        )
    return ContractColumn(
        name=entry["name"],
        data_type=data_type,
        not_null=meta.get("not_null", False),
        unique=meta.get("unique", False),
        accepted_values=tuple(values) if values is not None else None,
    )


def load_contract(path: Path = SOURCES_YML) -> RawContract:
    """Parse the sources yml at `path` (a copy, in tests) into the raw contract."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ContractError(f"{path} is missing") from error
    except yaml.YAMLError as error:
        raise ContractError(f"{path} is not valid YAML: {error}") from error
    sources = [source for source in (document or {}).get("sources") or [] if source.get("name") == SOURCE_NAME]
    if len(sources) != 1:
        raise ContractError(f"{path}: expected one source named {SOURCE_NAME!r}")
    tables = {}
    for table in sources[0].get("tables") or []:
        where = f"{path}: {table.get('name')}"
        columns = [_column(entry, where) for entry in table.get("columns") or []]
        if not columns:
            raise ContractError(f"{where}: lists no columns")
        tables[table["name"]] = ContractTable(table["name"], {column.name: column for column in columns})
    if not tables:
        raise ContractError(f"{path}: source {SOURCE_NAME!r} lists no tables")
    return RawContract(path=path, tables=tables)


@functools.cache
def raw_contract() -> RawContract:
    """The project's contract, parsed once per process."""
    return load_contract(SOURCES_YML)
