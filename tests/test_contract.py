"""The raw contract is written once, in the dbt sources yml: the generator and the raw gate read
it (upshift/contract.py), so editing an enum there (in a copy, here) changes what the generator
writes and what the gate accepts, and nothing else in the project restates the lists."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import psycopg
import pytest
from psycopg import sql

from upshift.contract import SOURCES_YML, ContractError, load_contract, raw_contract
from upshift.dbt import DBT_PROJECT_DIR
from upshift.gates import GateConfigError, load_stage_plan
from upshift.generator.dirty import Corrupter
from upshift.generator.tables import TABLES, raw_tables, schema_ddl
from upshift.warehouse import REPO_ROOT, WarehouseSettings

AS_OF = dt.date(2025, 6, 2)
BOOKING_STATUS = "config: {meta: {accepted_values: [completed, cancelled, pending]}}"


def _edited_contract(tmp_path: Path, old: str, new: str) -> Path:
    text = SOURCES_YML.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not written once in {SOURCES_YML}"
    copy = tmp_path / SOURCES_YML.name
    copy.write_text(text.replace(old, new), encoding="utf-8")
    return copy


def _bookings(rows: int) -> dict[str, np.ndarray]:
    """Clean encoded bookings rows, every one completed."""
    numbers = np.arange(1, rows + 1)
    text = lambda prefix: np.array([f"{prefix}{number:08d}" for number in numbers], dtype=object)  # noqa: E731
    return {
        "booking_id": text("bkg_"),
        "client_id": text("cli_"),
        "worker_id": text("wrk_"),
        "category": np.full(rows, "cleaning", dtype=object),
        "amount": np.full(rows, "42.00", dtype=object),
        "currency": np.full(rows, "EUR", dtype=object),
        "status": np.full(rows, "completed", dtype=object),
        "booked_at": np.full(rows, "2025-05-20T10:00:00+00", dtype=object),
    }


def _corrupted_statuses(tables) -> tuple[np.ndarray, int]:
    corrupter = Corrupter(0.3, int(dt.datetime(2025, 6, 2, tzinfo=dt.UTC).timestamp()), tables=tables)
    columns = corrupter.apply("bookings", _bookings(3_000), np.random.default_rng(7))
    return columns["status"], corrupter.counts["bookings"]["invalid_enum"]


def test_the_project_contract_is_what_the_generator_and_the_gate_use() -> None:
    contract = raw_contract()
    plan = load_stage_plan("raw", WarehouseSettings.from_env({}), AS_OF)

    enum_targets = {
        item.target: tuple(item.kwargs["value_set"]) for item in plan.expectations if item.check == "enums_valid"
    }
    assert enum_targets == {
        f"{table}.{column.name}": column.accepted_values for table, column in contract.columns_with("accepted_values")
    }
    assert enum_targets["bookings.status"] == ("completed", "cancelled", "pending")
    for name, spec in TABLES.items():
        if spec.enum_column:
            assert spec.enum_values == contract.accepted_values(name, spec.enum_column)


def test_a_value_added_to_the_contract_is_generated_and_accepted(tmp_path: Path) -> None:
    copy = _edited_contract(
        tmp_path, BOOKING_STATUS, "config: {meta: {accepted_values: [completed, cancelled, pending, refunded]}}"
    )
    edited = load_contract(copy)

    before, before_invalid = _corrupted_statuses(TABLES)
    after, after_invalid = _corrupted_statuses(raw_tables(edited))

    # The project contract does not know "refunded", so the generator plants it as a bad value;
    # once the contract accepts it, it restates re-delivered bookings with it instead and never
    # counts it as invalid.
    accepted = set(edited.accepted_values("bookings", "status"))
    assert "refunded" in set(before)
    assert before_invalid == sum(value not in TABLES["bookings"].enum_values for value in before)
    assert "refunded" in set(after)
    assert after_invalid == sum(value not in accepted for value in after) > 0

    plan = load_stage_plan("raw", WarehouseSettings.from_env({}), AS_OF, contract=edited)
    value_sets = {item.name: item.kwargs["value_set"] for item in plan.expectations if "value_set" in item.kwargs}
    assert value_sets["enums_valid[bookings.status]"] == ["completed", "cancelled", "pending", "refunded"]
    assert value_sets["enums_mostly_valid[bookings.status]"] == ["completed", "cancelled", "pending", "refunded"]


def test_a_key_added_to_the_contract_is_checked_by_the_gate(tmp_path: Path) -> None:
    old = "description: Category searched.\n"
    copy = _edited_contract(tmp_path, old, old + "            config: {meta: {not_null: true}}\n")

    plan = load_stage_plan("raw", WarehouseSettings.from_env({}), AS_OF, contract=load_contract(copy))
    default = load_stage_plan("raw", WarehouseSettings.from_env({}), AS_OF)

    names = {item.name for item in plan.expectations}
    assert {"keys_present[searches.category]", "keys_mostly_present[searches.category]"} <= names
    assert "keys_mostly_present[searches.category]" not in {item.name for item in default.expectations}


def test_a_timestamp_column_added_to_the_contract_is_type_checked_by_the_gate(tmp_path: Path) -> None:
    old = "          - name: ended_at\n            data_type: timestamptz\n"
    new = old + "            description: x\n          - name: renewed_at\n            data_type: timestamptz\n"
    copy = _edited_contract(tmp_path, old, new)

    plan = load_stage_plan("raw", WarehouseSettings.from_env({}), AS_OF, contract=load_contract(copy))

    checked = [item.target for item in plan.expectations if item.check == "timestamps_have_time_zone"]
    assert "subscriptions.renewed_at" in checked
    assert len(checked) == 1 + sum(1 for _ in raw_contract().columns_with("timestamptz"))


def test_the_generator_creates_the_raw_tables_with_the_contract_columns_and_types(
    tmp_path: Path, pg_conn: psycopg.Connection
) -> None:
    copy = _edited_contract(
        tmp_path,
        "          - name: currency\n            data_type: text\n",
        "          - name: currency\n            data_type: char(3)\n",
    )
    created = {}
    for schema, contract in (("rawcontract_project", raw_contract()), ("rawcontract_edited", load_contract(copy))):
        pg_conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
        pg_conn.execute(schema_ddl(schema, contract))
        created[schema] = {
            (table, column): data_type
            for table, column, data_type in pg_conn.execute(
                "select table_name, column_name, format_type(atttypid, atttypmod)"
                " from information_schema.columns"
                " join pg_attribute on attrelid = format('%%I.%%I', table_schema, table_name)::regclass"
                " and attname = column_name"
                " where table_schema = %s order by table_name, ordinal_position",
                (schema,),
            ).fetchall()
        }
        pg_conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))

    project = created["rawcontract_project"]
    assert set(project) == {
        (table.name, column) for table in raw_contract().tables.values() for column in table.columns
    }
    assert project[("bookings", "booked_at")] == "timestamp with time zone"
    assert project[("bookings", "amount")] == "numeric(12,2)"
    assert project[("bookings", "currency")] == "text"
    assert created["rawcontract_edited"][("bookings", "currency")] == "character(3)"
    assert TABLES["bookings"].columns == raw_contract().table("bookings").column_names


def test_a_state_the_generator_names_cannot_be_dropped_silently(tmp_path: Path) -> None:
    copy = _edited_contract(tmp_path, BOOKING_STATUS, "config: {meta: {accepted_values: [completed, pending]}}")

    with pytest.raises(ContractError, match=r"bookings\.status no longer accepts 'cancelled'"):
        load_contract(copy).value("bookings", "status", "cancelled")


def test_a_misspelt_contract_rule_is_refused_naming_the_column(tmp_path: Path) -> None:
    copy = _edited_contract(tmp_path, BOOKING_STATUS, "config: {meta: {acepted_values: [completed]}}")

    with pytest.raises(ContractError, match=r"bookings\.status: unknown contract meta acepted_values"):
        load_contract(copy)


def test_a_gate_target_naming_an_unknown_rule_is_refused(tmp_path: Path) -> None:
    import shutil

    from upshift.gates.config import EXPECTATIONS_DIR

    shutil.copytree(EXPECTATIONS_DIR, tmp_path, dirs_exist_ok=True)
    suite = tmp_path / "suites" / "raw.yml"
    suite.write_text(suite.read_text().replace("{contract: unique}", "{contract: uniqe}", 1))

    with pytest.raises(GateConfigError, match=re.escape("ids_unique: `for_each: {contract: ...}` takes one of")):
        load_stage_plan("raw", WarehouseSettings.from_env({}), AS_OF, expectations_dir=tmp_path)


def _quoted_lists(text: str) -> list[set[str]]:
    """Every bracketed or parenthesised list of two or more words in `text`, quoted or (yml) bare."""
    quoted = re.findall(r"[\[(]\s*((?:['\"]\w+['\"]\s*,\s*)+['\"]\w+['\"])\s*,?\s*[\])]", text)
    bare = re.findall(r"\[\s*(\w+(?:\s*,\s*\w+)+)\s*\]", text)
    return [set(re.findall(r"['\"](\w+)['\"]", found)) for found in quoted] + [
        {word.strip() for word in found.split(",")} for found in bare
    ]


def test_no_file_but_the_sources_yml_restates_an_enum_list() -> None:
    enums = {
        f"{table}.{column.name}": set(column.accepted_values)
        for table, column in raw_contract().columns_with("accepted_values")
    }
    # The readers of the raw tables: staging (models, tests, macros), the raw gate, the generator.
    # Later layers name roles and channels of their own derived columns.
    staging = DBT_PROJECT_DIR / "models" / "staging"
    files = [
        *staging.rglob("*.sql"),
        *staging.rglob("*.yml"),
        *(DBT_PROJECT_DIR / "macros").rglob("*.sql"),
        REPO_ROOT / "expectations" / "suites" / "raw.yml",
        *(REPO_ROOT / "upshift" / "generator").rglob("*.py"),
        *(REPO_ROOT / "upshift" / "gates").rglob("*.py"),
    ]
    restated = [
        f"{path.relative_to(DBT_PROJECT_DIR.parent if path.is_relative_to(DBT_PROJECT_DIR) else REPO_ROOT)}: {name}"
        for path in files
        if path != SOURCES_YML
        for found in _quoted_lists(path.read_text(encoding="utf-8"))
        for name, values in enums.items()
        if found == values
    ]
    assert restated == []
