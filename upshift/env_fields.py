"""Frozen settings dataclasses filled field by field from prefixed environment variables.

The sync (`UPSHIFT_SYNC_*`) and the emulator (`EMULATOR_*`) name every knob as a field, so a
new knob is one field: the variable, its type and its error message follow from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, get_type_hints

TRUE = {"1", "true", "yes"}
FALSE = {"0", "false", "no"}


def fields_from_env(cls: type, prefix: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The fields of dataclass `cls` whose variable `<prefix><FIELD>` is set and not empty, as
    values of the field's type (int, float, bool or str); a value that does not convert raises
    ValueError naming the variable."""
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for spec in fields(cls):
        variable = prefix + spec.name.upper()
        raw = env.get(variable)
        if raw not in (None, ""):
            values[spec.name] = _converted(variable, raw, hints[spec.name])
    return values


def _converted(variable: str, raw: str, kind: Any) -> Any:
    try:
        if kind is bool:
            if raw.lower() not in TRUE | FALSE:
                raise ValueError(raw)
            return raw.lower() in TRUE
        if kind in (int, float):
            return kind(raw)
    except ValueError as error:
        raise ValueError(f"{variable}={raw!r} is not a valid {kind.__name__}") from error
    return raw
