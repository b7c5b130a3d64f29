"""Numbers, dates and flags as the growth team reads them: thousands separators, one decimal
for rates, whole days, month names instead of ISO dates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

NO_DATA = "no data yet"
Number = int | float | Decimal

FLAG_WORDS = {
    "green": "on target",
    "amber": "watch",
    "red": "act",
    "grey": "no data",
}


def count(value: Number | None) -> str:
    return NO_DATA if value is None else f"{int(value):,}"


def plural(value: int, noun: str) -> str:
    return f"{value:,} {noun}" + ("" if value == 1 else "s")


def money(value: Number | None) -> str:
    """Plan-catalog currency: whole units when the amount is whole, cents otherwise."""
    if value is None:
        return NO_DATA
    amount = Decimal(value)
    return f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"


def percent(value: Number | None) -> str:
    return NO_DATA if value is None else f"{float(value):.1f}%"


def points(value: Number | None, *, signed: bool = True) -> str:
    """Percentage points, for differences between two rates."""
    if value is None:
        return NO_DATA
    return f"{float(value):+.1f} pts" if signed else f"{float(value):.1f} pts"


def days(value: Number | None) -> str:
    if value is None:
        return NO_DATA
    amount = float(value)
    return f"{amount:.0f} days" if amount == int(amount) else f"{amount:.1f} days"


def day(value: dt.date | None) -> str:
    return NO_DATA if value is None else f"{value.day} {value:%b %Y}"


def month(value: dt.date | None) -> str:
    return NO_DATA if value is None else f"{value:%b %Y}"


def flag_word(flag: str | None) -> str:
    return FLAG_WORDS.get(flag or "grey", FLAG_WORDS["grey"])


def label(code: str | None) -> str:
    """`repeat_booking_same_worker` -> `Repeat booking same worker`; codes stay recognisable."""
    if not code:
        return ""
    text = code.replace("_", " ")
    return text[0].upper() + text[1:]


def edge(value: Number) -> str:
    """A target or band edge as an analyst writes it in dbt_project.yml: 25, 12.5, -1."""
    return f"{float(value):g}"
