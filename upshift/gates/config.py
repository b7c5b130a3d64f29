"""Read a stage's suite and the gate configuration, and render them for one run.

The suites (`expectations/suites/<stage>.yml`) say what is checked; `expectations/gates.yml`
says how strictly (severity, thresholds). This module joins the two into a `StagePlan`: every
expectation expanded over its `for_each` targets, with `${name}` placeholders filled from the
check's thresholds, the target's variables and the run (as-of date, schemas), in the SQL of
the settings' engine (upshift/gates/dialect.py: the few words PostgreSQL and Spark write
differently). It imports no
Great Expectations, so a broken configuration fails fast and is testable without a database.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from upshift.contract import RULES, ContractError, RawContract, raw_contract
from upshift.dbt import DBT_PROJECT_DIR
from upshift.gates.dialect import DIALECTS, Dialect
from upshift.warehouse import REPO_ROOT, WarehouseSettings

EXPECTATIONS_DIR = REPO_ROOT / "expectations"
CONFIG_FILE = "gates.yml"
SEVERITIES = ("blocking", "warning")
# Great Expectations' own severity names, by ours.
GX_SEVERITY = {"blocking": "critical", "warning": "warning"}
# The dbt vars of the plausible event window the raw gate shares, so a row dbt keeps never
# fails the gate.
FUTURE_GRACE_VAR = "quarantine_future_grace_days"
EARLIEST_EVENT_VAR = "quarantine_earliest_event_date"
# dbt's validation batch: the raw gate's window covers at least those days.
LOOKBACK_VAR = "validation_lookback_days"
_PLACEHOLDER = re.compile(r"\$\{([a-z_][a-z0-9_]*)\}")
# `${name(arg, ...)}`: a dialect call; arguments are (qualified) identifiers.
_CALL = re.compile(r"\$\{([a-z_][a-z0-9_]*)\(([^(){}$]*)\)\}")
_CALL_ARGUMENT = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_SCHEMA_LAYERS = ("raw", "staging", "intermediate", "marts")


class GateConfigError(ValueError):
    """The suites and gates.yml do not fit together; the message names the file and entry."""


class GateNotDefined(GateConfigError):
    """The stage exists in the pipeline but has no gate yet (gates.yml sets it to null)."""


class Sql(str):
    """Text already rendered as SQL (a quoted identifier, a literal): inserted as is."""


@dataclass(frozen=True)
class Asset:
    """A table or query the stage validates, with the column that identifies its rows."""

    name: str
    schema: str
    key: str
    table: str | None = None
    query: str | None = None
    # A table asset's rows the gate validates, as an SQL condition (None: every row).
    where: str | None = None
    # The table as the engine's SQL (quoted schema.table); None for a query asset.
    quoted_table: str | None = None

    @property
    def relation(self) -> str:
        """The asset's table as SQL, for re-running an unexpected-rows query to fetch sample rows."""
        if self.quoted_table is None:
            raise GateConfigError(f"asset {self.name} is a query; only table assets have a relation")
        return self.quoted_table

    @property
    def rows_query(self) -> str | None:
        """The rows of a windowed table asset as a query (None: the whole table)."""
        if self.where is None:
            return None
        return f"select * from {self.relation} where {self.where}"


@dataclass(frozen=True)
class PlannedExpectation:
    """One Great Expectations expectation, rendered for a run, with our name and severity."""

    check: str
    target: str
    asset: str
    severity: str
    expectation_type: str
    kwargs: dict[str, Any]
    description: str

    @property
    def name(self) -> str:
        """`check[target]`, e.g. `keys_mostly_present[bookings.client_id]`: what logs show."""
        return f"{self.check}[{self.target}]"


@dataclass(frozen=True)
class StagePlan:
    """Everything one gate run validates, fully rendered."""

    stage: str
    description: str
    assets: dict[str, Asset]
    expectations: list[PlannedExpectation]
    sample_rows: int
    pii_columns: frozenset[str]
    engine: str = "postgres"


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError as error:
        raise GateConfigError(f"{path} is missing") from error
    except yaml.YAMLError as error:
        raise GateConfigError(f"{path} is not valid YAML: {error}") from error


def _dbt_var(name: str) -> Any:
    project = _read_yaml(DBT_PROJECT_DIR / "dbt_project.yml")
    return (project.get("vars") or {}).get(name)


def future_grace_days() -> int:
    """dbt's `quarantine_future_grace_days`, read from dbt_project.yml (the one place it lives)."""
    value = _dbt_var(FUTURE_GRACE_VAR)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise GateConfigError(f"dbt_project.yml: var {FUTURE_GRACE_VAR} must be a whole number of days, got {value!r}")
    return value


def earliest_event_date() -> dt.date:
    """dbt's `quarantine_earliest_event_date`, read from dbt_project.yml."""
    value = _dbt_var(EARLIEST_EVENT_VAR)
    try:
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    except ValueError:
        raise GateConfigError(
            f"dbt_project.yml: var {EARLIEST_EVENT_VAR} must be a date as YYYY-MM-DD, got {value!r}"
        ) from None


def _window_days(config: dict[str, Any], checks: Mapping[str, Any]) -> int:
    """gates.yml's `window_days`: how many days before as-of a windowed asset's rows are
    validated. It must cover dbt's validation batch (validation_lookback_days) and every
    check's own look-back (`trailing_days` + the last day), or a check would see a cut window."""
    value = config.get("window_days")
    where = f"{CONFIG_FILE}: window_days"
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GateConfigError(f"{where} must be a whole number of days of at least 1, got {value!r}")
    needed = {LOOKBACK_VAR: _dbt_var(LOOKBACK_VAR)}
    for check_name, check in checks.items():
        if isinstance(check, dict) and isinstance(check.get("trailing_days"), int):
            needed[f"{check_name}.trailing_days + 1"] = check["trailing_days"] + 1
    short = {name: days for name, days in needed.items() if isinstance(days, int) and days > value}
    if short:
        raise GateConfigError(f"{where} = {value} is shorter than {', '.join(f'{n} ({d})' for n, d in short.items())}")
    return value


def stage_names(expectations_dir: Path = EXPECTATIONS_DIR) -> list[str]:
    """Every stage gates.yml lists, including those whose gate is not defined yet."""
    return list(_gates_config(expectations_dir)["stages"])


def _gates_config(expectations_dir: Path) -> dict[str, Any]:
    path = expectations_dir / CONFIG_FILE
    config = _read_yaml(path)
    if not isinstance(config, dict) or not isinstance(config.get("stages"), dict):
        raise GateConfigError(f"{path}: expected a mapping with a `stages` mapping")
    return config


def _run_variables(
    settings: WarehouseSettings, dialect: Dialect, as_of: dt.date, grace_days: int, window_days: int
) -> tuple[dict[str, Any], dict[str, str]]:
    def midnight(day: dt.date) -> Sql:
        return Sql(dialect.timestamp_literal(f"{day.isoformat()} 00:00:00+00"))

    schemas = {
        "raw": settings.raw_schema,
        **{layer: settings.layer_schema(layer) for layer in ("staging", "intermediate", "marts")},
    }
    return {
        "as_of": as_of,
        "as_of_at": midnight(as_of),
        "future_cutoff_at": midnight(as_of + dt.timedelta(days=grace_days)),
        "future_grace_days": grace_days,
        "window_start_at": midnight(as_of - dt.timedelta(days=window_days)),
        "earliest_event_at": midnight(earliest_event_date()),
        **{layer: Sql(dialect.quote(name)) for layer, name in schemas.items()},
        **{word: Sql(sql_text) for word, sql_text in dialect.words.items()},
        **dialect.functions(),
    }, schemas


def _sql_value(value: Any, name: str, where: str) -> str:
    """Render a variable inside SQL text. Strings must be plain identifiers: no quoting games."""
    if isinstance(value, Sql):
        return str(value)
    if isinstance(value, dt.date):
        return f"cast('{value.isoformat()}' as date)"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise GateConfigError(f"{where}: ${{{name}}} is {value!r}, which cannot be written into SQL")
    if isinstance(value, str) and not _IDENTIFIER.match(value):
        raise GateConfigError(f"{where}: ${{{name}}} = {value!r} must be a lowercase identifier to be used in SQL")
    return str(value)


def render(value: Any, variables: Mapping[str, Any], where: str) -> Any:
    """Fill `${name}` placeholders: a whole-string placeholder keeps the variable's type
    (a threshold stays a number, a value list a list); inside text it is rendered as SQL.
    Then `${name(arg, ...)}` calls (the dialect's, after the placeholders in their arguments)."""
    if isinstance(value, dict):
        return {key: render(item, variables, where) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, variables, where) for item in value]
    if not isinstance(value, str):
        return value
    missing = sorted({name for name in _PLACEHOLDER.findall(value) if name not in variables})
    if missing:
        raise GateConfigError(f"{where}: no value for {', '.join('${' + name + '}' for name in missing)}")
    whole = _PLACEHOLDER.fullmatch(value)
    if whole:
        found = variables[whole.group(1)]
        return str(found) if isinstance(found, Sql) else found
    text = _PLACEHOLDER.sub(lambda match: _sql_value(variables[match.group(1)], match.group(1), where), value)
    return _CALL.sub(lambda match: _call(match.group(1), match.group(2), variables, where), text)


def _call(name: str, arguments: str, variables: Mapping[str, Any], where: str) -> str:
    function = variables.get(name)
    if not callable(function):
        raise GateConfigError(f"{where}: ${{{name}(...)}} is not a SQL call the dialects define")
    parts = [part.strip() for part in arguments.split(",")]
    if not all(_CALL_ARGUMENT.match(part) for part in parts):
        raise GateConfigError(f"{where}: ${{{name}({arguments})}} takes identifiers only")
    return str(function(*parts))


def _merge(where: str, *layers: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        clash = sorted(set(merged) & set(layer))
        if clash:
            raise GateConfigError(f"{where}: variable {', '.join(clash)} is defined twice")
        merged.update(layer)
    return merged


def _window_condition(column: str, variables: Mapping[str, Any], dialect: Dialect) -> str:
    """The run's window of an event table: the last `window_days` days before as-of and
    anything later, plus the rows no window places (no timestamp, or an implausible one),
    which dbt's validation batch re-reads every run too."""
    column_sql = dialect.quote(column)
    return (
        f"({column_sql} >= {variables['window_start_at']} or {column_sql} is null "
        f"or {column_sql} < {variables['earliest_event_at']})"
    )


def _assets(
    suite: dict[str, Any], schemas: dict[str, str], variables: dict[str, Any], dialect: Dialect, path: Path
) -> dict[str, Asset]:
    assets = {}
    for name, spec in (suite.get("assets") or {}).items():
        where = f"{path}: asset {name}"
        if not isinstance(spec, dict) or spec.get("schema") not in _SCHEMA_LAYERS or not spec.get("key"):
            raise GateConfigError(f"{where}: needs `schema` (one of {', '.join(_SCHEMA_LAYERS)}) and `key`")
        if ("table" in spec) == ("query" in spec):
            raise GateConfigError(f"{where}: needs exactly one of `table` and `query`")
        if "window" in spec and ("table" not in spec or not _IDENTIFIER.match(str(spec["window"]))):
            raise GateConfigError(f"{where}: `window` names the event timestamp column of a table asset")
        assets[name] = Asset(
            name=name,
            schema=schemas[spec["schema"]],
            key=spec["key"],
            table=spec.get("table"),
            query=render(spec["query"], variables, where) if "query" in spec else None,
            where=_window_condition(spec["window"], variables, dialect) if "window" in spec else None,
            quoted_table=f"{dialect.quote(schemas[spec['schema']])}.{dialect.quote(spec['table'])}"
            if "table" in spec
            else None,
        )
    if not assets:
        raise GateConfigError(f"{path}: defines no assets")
    return assets


def _contract_targets(rule: Any, contract: RawContract, where: str) -> list[dict[str, Any]]:
    """`for_each: {contract: <rule>}`: every raw contract column carrying the rule, as targets
    (`asset` = the source table, `column`, and `values` for accepted_values)."""
    if rule not in RULES:
        raise GateConfigError(f"{where}: `for_each: {{contract: ...}}` takes one of {', '.join(RULES)}, got {rule!r}")
    return [
        {"asset": table, "column": column.name}
        | ({"values": list(column.accepted_values)} if rule == "accepted_values" else {})
        for table, column in contract.columns_with(rule)
    ]


def _expand(
    entry: dict[str, Any],
    check: dict[str, Any],
    assets: dict[str, Asset],
    run_variables: dict[str, Any],
    pii_columns: frozenset[str],
    path: Path,
    contract: RawContract | None,
) -> list[PlannedExpectation]:
    name = entry.get("name")
    where = f"{path}: expectation {name}"
    targets = entry.get("for_each")
    if isinstance(targets, dict) and set(targets) == {"contract"}:
        try:
            targets = _contract_targets(targets["contract"], contract or raw_contract(), where)
        except ContractError as error:
            raise GateConfigError(f"{where}: {error}") from error
    if not entry.get("type") or not isinstance(targets, list):
        raise GateConfigError(f"{where}: needs `type` and a `for_each` list of targets (or `{{contract: <rule>}}`)")
    thresholds = {key: value for key, value in check.items() if key != "severity"}
    planned = []
    for target_vars in targets:
        asset = assets.get(target_vars.get("asset"))
        if asset is None:
            raise GateConfigError(f"{where}: target {target_vars} names no asset of the suite")
        if entry["type"] == "UnexpectedRowsExpectation" and asset.table is None:
            raise GateConfigError(f"{where}: SQL expectations run on table assets only ({asset.name} is a query)")
        # `label` names a target that has no column (e.g. one side of a table).
        qualifier = target_vars.get("column") or target_vars.get("label")
        target = f"{asset.name}.{qualifier}" if qualifier else asset.name
        variables = _merge(where, run_variables, thresholds, {"key": asset.key}, target_vars)
        kwargs = render(entry.get("kwargs") or {}, variables, f"{where}[{target}]")
        if kwargs.get("column") in pii_columns:
            raise GateConfigError(f"{where}[{target}]: {kwargs['column']} is a PII column and is never validated")
        planned.append(
            PlannedExpectation(
                check=name,
                target=target,
                asset=asset.name,
                severity=check["severity"],
                expectation_type=entry["type"],
                kwargs=kwargs,
                description=" ".join(str(entry.get("description") or "").split()),
            )
        )
    return planned


def load_stage_plan(
    stage: str,
    settings: WarehouseSettings,
    as_of: dt.date,
    expectations_dir: Path = EXPECTATIONS_DIR,
    contract: RawContract | None = None,
) -> StagePlan:
    """The stage's suite rendered for `as_of` against the settings' schemas. Targets written
    `for_each: {contract: <rule>}` come from `contract` (default: the project's sources yml)."""
    config = _gates_config(expectations_dir)
    config_path = expectations_dir / CONFIG_FILE
    if stage not in config["stages"]:
        raise GateConfigError(f"{config_path}: no stage {stage!r}; stages are {', '.join(config['stages'])}")
    checks = config["stages"][stage]
    if checks is None:
        raise GateNotDefined(
            f"The {stage} gate is not defined yet: {config_path} keeps it as a stub until the models it "
            "validates exist (see expectations/README.md)."
        )
    suite_path = expectations_dir / "suites" / f"{stage}.yml"
    suite = _read_yaml(suite_path)
    if not isinstance(suite, dict) or suite.get("stage") != stage:
        raise GateConfigError(f"{suite_path}: expected a mapping with `stage: {stage}`")

    entries = suite.get("expectations") or []
    names = [entry.get("name") for entry in entries]
    for check_name, check in checks.items():
        if not isinstance(check, dict) or check.get("severity") not in SEVERITIES:
            raise GateConfigError(
                f"{config_path}: {stage}.{check_name} needs `severity: blocking` or `severity: warning`"
            )
    unconfigured = [name for name in names if name not in checks]
    unused = [name for name in checks if name not in names]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if unconfigured or unused or duplicated:
        raise GateConfigError(
            f"{suite_path} and {config_path} disagree: "
            f"in the suite but not configured: {unconfigured or 'none'}; "
            f"configured but not in the suite: {unused or 'none'}; "
            f"named twice in the suite: {duplicated or 'none'}"
        )

    dialect = DIALECTS[settings.engine]
    run_variables, schemas = _run_variables(settings, dialect, as_of, future_grace_days(), _window_days(config, checks))
    pii_columns = frozenset(config.get("pii_columns") or ())
    assets = _assets(suite, schemas, run_variables, dialect, suite_path)
    expectations = [
        planned
        for entry in entries
        for planned in _expand(entry, checks[entry["name"]], assets, run_variables, pii_columns, suite_path, contract)
    ]
    return StagePlan(
        stage=stage,
        description=" ".join(str(suite.get("description") or "").split()),
        assets=assets,
        expectations=expectations,
        sample_rows=int(config.get("sample_rows", 5)),
        pii_columns=pii_columns,
        engine=settings.engine,
    )
