"""The SQL the suites write differently on PostgreSQL and on Spark: the one per-engine place.

The suites' queries are written once, in SQL both engines read (`count(*) filter (where ...)`,
`interval '1' hour`, `position(... in ...)`, `is distinct from`, `cast(... as numeric)`), and
reach what differs only through the placeholders below: `${text}` (the string type),
`${timestamptz}` (the type of an instant), `${regex_match}` (the regex operator), and the
calls `${type_of(expression)}`, `${json_text(document, key)}` and
`${json_has_key(document, key)}`. JSON documents are jsonb on PostgreSQL and JSON text on Spark
(dbt_project/macros/cross_db/json.sql builds them so); a key holding JSON null is present on
both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Dialect:
    """How one engine writes the few things the suites cannot write portably."""

    engine: str
    quote_char: str
    # `${name}` words, inserted as SQL.
    words: dict[str, str]
    # `${name(arg, ...)}` calls: SQL templates whose {0}, {1} are the call's arguments.
    calls: dict[str, str] = field(default_factory=dict)

    def quote(self, name: str) -> str:
        """An identifier quoted for the engine (PostgreSQL "name", Spark `name`)."""
        quote = self.quote_char
        return quote + name.replace(quote, quote * 2) + quote

    def timestamp_literal(self, text: str) -> str:
        """An instant written as `YYYY-MM-DD hh:mm:ss+00`, as this engine's timestamp type."""
        return f"cast('{text}' as {self.words['timestamptz']})"

    def functions(self) -> dict[str, Callable[..., str]]:
        return {name: template.format for name, template in self.calls.items()}


POSTGRES = Dialect(
    engine="postgres",
    quote_char='"',
    words={"text": "text", "timestamptz": "timestamp with time zone", "regex_match": "~"},
    calls={
        "type_of": "cast(pg_typeof({0}) as text)",
        "json_text": "({0} ->> '{1}')",
        "json_has_key": "({0} ? '{1}')",
    },
)

SPARK = Dialect(
    engine="spark",
    quote_char="`",
    # Spark's `timestamp` is an instant (shown in the session's UTC), what timestamptz is on PostgreSQL.
    words={"text": "string", "timestamptz": "timestamp", "regex_match": "rlike"},
    calls={
        "type_of": "typeof({0})",
        "json_text": "get_json_object({0}, '$.{1}')",
        "json_has_key": "array_contains(json_object_keys({0}), '{1}')",
    },
)

# By WarehouseSettings.engine (UPSHIFT_WAREHOUSE).
DIALECTS = {dialect.engine: dialect for dialect in (POSTGRES, SPARK)}
