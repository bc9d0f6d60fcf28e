"""Charts for the dashboard as server-side SVG: no JavaScript, nothing fetched from anywhere.

``line_chart`` draws one line per series over shared time buckets, with a
y axis of round steps, a few time labels and a legend; a bucket without a value
(no successful request that hour, for a latency chart) is a gap in its line.
Colours are CSS classes (``series-0`` ...) styled in ``byok/admin.css``, so the
chart follows the admin's light and dark themes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from byok.admin.formats import compact

WIDTH, HEIGHT = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28
SERIES_COLOURS = 8  # series-0 .. series-7 in byok/admin.css, then the colours repeat


@dataclass(frozen=True)
class Series:
    """One line: its name and one value (or None: no data) per bucket."""

    name: str
    values: Sequence[float | None]


def nice_step(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value`` (a grid step)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power  # pragma: no cover - the loop ends at 10 * power


def axis(peak: float, lines: int = 4) -> tuple[float, int]:
    """The axis' top and its number of grid steps: at most ``lines`` round steps (``nice_step``) reaching ``peak``."""
    step = nice_step(peak / lines) if peak > 0 else 1.0
    steps = max(1, math.ceil(peak / step - 1e-9))
    return step * steps, steps


def _x(index: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span * index / (count - 1) if count > 1 else span / 2)


def _y(value: float, top: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / top)


def _paths(values: Sequence[float | None], top: float) -> list[str]:
    """Polyline point lists, broken where a value is missing."""
    runs: list[list[str]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(f"{_x(i, len(values)):.1f},{_y(value, top):.1f}")
    return [" ".join(run) for run in runs if run]


def line_chart(
    title: str,
    buckets: Sequence[datetime],
    series: Sequence[Series],
    *,
    label: Callable[[datetime], str],
    value_format: Callable[[float], str] = compact,
) -> SafeString:
    """An accessible SVG line chart (``role="img"`` with a title and a text summary of each series' last value)."""
    peak = max((v for s in series for v in s.values if v is not None), default=0.0)
    top, steps = axis(peak)
    parts = [
        f'<svg class="byok-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for step in range(steps + 1):  # horizontal grid lines and y labels at round values from 0 to the top
        value = top * step / steps
        y = _y(value, top)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        text = escape(value_format(value))
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>')
    count = len(buckets)
    ticks = sorted({0, count // 3, 2 * count // 3, count - 1}) if count else []
    for i in ticks:
        text = escape(label(buckets[i]))
        anchor = "start" if i == 0 else "end" if i == count - 1 else "middle"  # the end labels stay inside
        parts.append(f'<text class="axis" x="{_x(i, count):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">{text}</text>')
    for n, item in enumerate(series):
        css = f"series-{n % SERIES_COLOURS}"
        for points in _paths(item.values, top):
            if " " in points:
                parts.append(f'<polyline class="line {css}" points="{points}"/>')
            else:  # a lone point between gaps: a dot, or it would not show
                cx, cy = points.split(",")
                parts.append(f'<circle class="dot {css}" cx="{cx}" cy="{cy}" r="2.5"/>')
    if not series:
        middle = f'x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle"'
        parts.append(f'<text class="empty" {middle}>No requests in this period</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every interpolated text is escaped above
