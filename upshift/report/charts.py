"""Bar charts as inline SVG, so the review needs no JavaScript, fonts or network to read.

Every bar is a `<rect class="mark">` carrying `data-series`, `data-category` and `data-value`,
and its value in a `<title>` the browser shows on hover; the `<svg>` carries `data-chart` and
`data-marks` (the number of bars), which is what the tests count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

FULL_WIDTH = 960
HALF_WIDTH = 520
HEIGHT = 240
MARGIN_LEFT = 56
MARGIN_RIGHT = 16
MARGIN_TOP = 28
MARGIN_BOTTOM = 48
MAX_X_LABELS = 14


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class Line:
    """A horizontal reference line, e.g. the 70% retention floor."""

    value: float
    label: str
    color: str = "#444"


@dataclass(frozen=True)
class Band:
    """A shaded value range behind the bars, e.g. the 25-35% healthy expansion share."""

    low: float
    high: float
    label: str
    color: str


@dataclass(frozen=True)
class Chart:
    chart_id: str
    title: str
    categories: Sequence[str]
    series: Sequence[Series]
    unit: str = ""
    stacked: bool = False
    lines: Sequence[Line] = field(default_factory=tuple)
    bands: Sequence[Band] = field(default_factory=tuple)
    y_max: float | None = None
    # Half-width charts sit two to a row; their own viewBox keeps the text readable.
    half: bool = False


def render(chart: Chart) -> str:
    """The chart as an `<svg>` element with a legend."""
    top = _top(chart)
    width = HALF_WIDTH if chart.half else FULL_WIDTH
    plot_width = width - MARGIN_LEFT - MARGIN_RIGHT
    plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    slot = plot_width / max(len(chart.categories), 1)

    def y(value: float) -> float:
        return MARGIN_TOP + plot_height * (1 - min(value, top) / top)

    parts: list[str] = []
    for band in chart.bands:
        high = min(band.high, top)
        if band.low >= top:
            continue
        parts.append(
            f'<rect class="band" x="{MARGIN_LEFT}" y="{y(high):.1f}" width="{plot_width}" '
            f'height="{y(band.low) - y(high):.1f}" fill="{band.color}" opacity="0.35">'
            f"<title>{escape(band.label)}</title></rect>"
        )
    for tick in _ticks(top):
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{width - MARGIN_RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            'stroke="#e3e3e3"/>'
            f'<text x="{MARGIN_LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" class="axis">'
            f"{_tick_label(tick, chart.unit)}</text>"
        )
    marks = _bars(chart, slot, y)
    parts.extend(marks)
    for line in chart.lines:
        if line.value > top:
            continue
        parts.append(
            f'<line class="reference" x1="{MARGIN_LEFT}" x2="{width - MARGIN_RIGHT}" y1="{y(line.value):.1f}" '
            f'y2="{y(line.value):.1f}" stroke="{line.color}" stroke-width="1.5" stroke-dasharray="6 4"/>'
            f'<text x="{width - MARGIN_RIGHT}" y="{y(line.value) - 4:.1f}" text-anchor="end" class="axis">'
            f"{escape(line.label)}</text>"
        )
    parts.extend(_x_labels(chart.categories, slot, MAX_X_LABELS // 2 if chart.half else MAX_X_LABELS))
    parts.append(
        f'<line x1="{MARGIN_LEFT}" x2="{width - MARGIN_RIGHT}" y1="{MARGIN_TOP + plot_height}" '
        f'y2="{MARGIN_TOP + plot_height}" stroke="#999"/>'
    )
    return (
        f'<figure class="chart"><figcaption>{escape(chart.title)}</figcaption>'
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {HEIGHT}" role="img" '
        f'aria-label="{escape(chart.title)}" data-chart="{escape(chart.chart_id)}" data-marks="{len(marks)}">'
        + "".join(parts)
        + "</svg>"
        + _legend(chart)
        + "</figure>"
    )


def _bars(chart: Chart, slot: float, y: Callable[[float], float]) -> list[str]:
    groups = 1 if chart.stacked else max(len(chart.series), 1)
    bar_width = max(min(slot * 0.8 / groups, 60), 1.5)
    marks = []
    for index, category in enumerate(chart.categories):
        base = 0.0
        start = MARGIN_LEFT + slot * index + (slot - bar_width * groups) / 2
        for position, series in enumerate(chart.series):
            value = series.values[index]
            # A zero is a bar of its own in a grouped chart (a 0% holdout is news), nothing in a stack.
            if value is None or value < 0 or (value == 0 and chart.stacked):
                continue
            low, high = (base, base + value) if chart.stacked else (0.0, value)
            x = start if chart.stacked else start + bar_width * position
            marks.append(
                f'<rect class="mark" x="{x:.1f}" y="{y(high):.1f}" width="{bar_width:.1f}" '
                f'height="{max(y(low) - y(high), 0.5):.1f}" fill="{series.color}" '
                f'data-series="{escape(series.name)}" data-category="{escape(category)}" data-value="{value:g}">'
                f"<title>{escape(category)} - {escape(series.name)}: {_value_label(value, chart.unit)}</title></rect>"
            )
            if chart.stacked:
                base += value
    return marks


def _top(chart: Chart) -> float:
    if chart.y_max is not None:
        return chart.y_max
    totals = [0.0]
    for index in range(len(chart.categories)):
        values = [series.values[index] or 0.0 for series in chart.series]
        totals.append(sum(values) if chart.stacked else max(values, default=0.0))
    totals.extend(line.value for line in chart.lines)
    totals.extend(band.high for band in chart.bands)
    return _nice(max(totals) * 1.05)


def _nice(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^n at or above value, so the four gridlines fall on round
    numbers; small counts get a multiple of 4, so every gridline is a whole number."""
    if value <= 0:
        return 4.0
    if value <= 20:
        return 4.0 * math.ceil(value / 4)
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def _ticks(top: float) -> list[float]:
    return [top * share / 4 for share in range(5)]


def _tick_label(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:,.1f}"
    return text + unit


def _value_label(value: float, unit: str) -> str:
    return (f"{value:,.1f}" if unit else f"{value:,.0f}" if value == int(value) else f"{value:,.2f}") + unit


def _x_labels(categories: Sequence[str], slot: float, most: int) -> list[str]:
    every = max(math.ceil(len(categories) / most), 1)
    base = HEIGHT - MARGIN_BOTTOM + 16
    return [
        f'<text x="{MARGIN_LEFT + slot * (index + 0.5):.1f}" y="{base}" text-anchor="middle" class="axis">'
        f"{escape(category)}</text>"
        for index, category in enumerate(categories)
        if index % every == 0
    ]


def _legend(chart: Chart) -> str:
    items = [
        f'<span class="key"><i style="background:{series.color}"></i>{escape(series.name)}</span>'
        for series in chart.series
    ]
    items += [
        f'<span class="key"><i style="background:{band.color};opacity:.5"></i>{escape(band.label)}</span>'
        for band in chart.bands
    ]
    items += [
        f'<span class="key"><i class="dash" style="border-color:{line.color}"></i>{escape(line.label)}</span>'
        for line in chart.lines
    ]
    return '<div class="legend">' + "".join(items) + "</div>"
