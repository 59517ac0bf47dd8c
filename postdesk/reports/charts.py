"""Charts as inline SVG, drawn on the server: grouped or stacked bars and lines. No script, no style attribute (the CSP
allows neither): series take their colours from classes (.series-0 ...) in app.css. Every label is escaped; each bar
and point carries a <title> (the browser's tooltip) with its exact value."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 64
LEGEND = 26
MAX_PLOT_WIDTH = 1240  # wider data gets narrower bars and steps, so that text keeps its size on screen
LABEL_ROOM = 16  # horizontal pixels a slanted label needs


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float]


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round axis steps (1, 2, 2.5 or 5 times a power of ten) from 0 to at least `top`."""
    if top <= 0:
        return [0, 1]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if step < 1:
        step = 1  # counters are whole numbers
    ticks = [0.0]
    while ticks[-1] < top:
        ticks.append(ticks[-1] + step)
    return ticks


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _open(width: int, height: int, title: str, css: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {escape(css)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]


def _axis(out: list[str], ticks: list[float], width: int, plot_h: float) -> Callable[[float], float]:
    """Horizontal grid lines with their values; returns value -> y."""
    top = ticks[-1]

    def y(value: float) -> float:
        return TOP + plot_h - (value / top) * plot_h

    for tick in ticks:
        ty = y(tick)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{width - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>')
        out.append(
            f'<text class="tick" x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end">{_number(tick)}</text>'
        )
    return y


def _legend(out: list[str], series: list[Series], height: int) -> None:
    x = LEFT
    for i, s in enumerate(series):
        out.append(
            f'<rect class="series-{i % 8}" x="{x}" y="{height - 16}" width="10" height="10" rx="2"/>'
            f'<text class="legend" x="{x + 14}" y="{height - 7}">{escape(s.name)}</text>'
        )
        x += 24 + 7 * len(s.name)


def _x_label(out: list[str], x: float, label: str, base: float, slanted: bool) -> None:
    label = label if len(label) <= 18 else label[:17] + "…"
    if slanted:
        out.append(
            f'<text class="label" x="{x:.1f}" y="{base + 14:.1f}" text-anchor="end" '
            f'transform="rotate(-35 {x:.1f} {base + 14:.1f})">{escape(label)}</text>'
        )
    else:
        out.append(
            f'<text class="label" x="{x:.1f}" y="{base + 16:.1f}" text-anchor="middle">{escape(label)}</text>'
        )


def bar_chart(
    categories: list[str],
    series: list[Series],
    *,
    title: str,
    stacked: bool = False,
    height: int = 300,
    group_width: int | None = None,
) -> SafeString:
    """Bars per category: side by side (grouped) or on top of each other (stacked)."""
    n = max(1, len(categories))
    group_width = group_width or (max(28, 14 * len(series) + 14) if not stacked else 44)
    group_width = max(6.0, min(group_width, MAX_PLOT_WIDTH / n))
    width = round(max(360, LEFT + RIGHT + n * group_width))
    plot_h = height - TOP - BOTTOM - LEGEND
    if stacked:
        top = max((sum(s.values[i] for s in series) for i in range(len(categories))), default=0)
    else:
        top = max((v for s in series for v in s.values), default=0)
    ticks = nice_ticks(top)
    out = _open(width, height, title, "bars stacked" if stacked else "bars")
    y = _axis(out, ticks, width, plot_h)
    base = TOP + plot_h
    slanted = any(len(c) > 6 for c in categories) or n > 12
    every = max(1, math.ceil(LABEL_ROOM / group_width))
    inner = group_width - min(8, group_width / 4)
    for i, category in enumerate(categories):
        gx = LEFT + i * group_width + (group_width - inner) / 2
        if stacked:
            level = 0.0
            for k, s in enumerate(series):
                value = s.values[i]
                if value:
                    y0, y1 = y(level), y(level + value)
                    out.append(
                        f'<rect class="series-{k % 8}" x="{gx:.1f}" y="{y1:.1f}" width="{inner:.1f}" '
                        f'height="{max(0.5, y0 - y1):.1f}"><title>{escape(category)} · {escape(s.name)}: '
                        f"{_number(value)}</title></rect>"
                    )
                level += value
        else:
            bar = inner / max(1, len(series))
            for k, s in enumerate(series):
                value = s.values[i]
                y1 = y(value)
                out.append(
                    f'<rect class="series-{k % 8}" x="{gx + k * bar:.1f}" y="{y1:.1f}" '
                    f'width="{max(1.0, bar - 1):.1f}" height="{max(0.0, base - y1):.1f}"><title>'
                    f"{escape(category)} · {escape(s.name)}: {_number(value)}</title></rect>"
                )
        if i % every == 0:
            _x_label(out, gx + inner / 2, category, base, slanted)
    out.append(f'<line class="axis" x1="{LEFT}" x2="{width - RIGHT}" y1="{base:.1f}" y2="{base:.1f}"/>')
    _legend(out, series, height)
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped


def line_chart(
    labels: list[str], series: list[Series], *, title: str, height: int = 300, step: float = 22
) -> SafeString:
    """Lines over ordered labels (days), with a dot per value; only some labels are written when they are many."""
    n = max(1, len(labels))
    step = min(step, MAX_PLOT_WIDTH / n)
    width = round(max(480, LEFT + RIGHT + n * step))
    plot_h = height - TOP - BOTTOM - LEGEND
    ticks = nice_ticks(max((v for s in series for v in s.values), default=0))
    out = _open(width, height, title, "lines")
    y = _axis(out, ticks, width, plot_h)
    base = TOP + plot_h
    span = (width - LEFT - RIGHT) / n

    def x(i: int) -> float:
        return LEFT + span * i + span / 2

    every = max(1, math.ceil(n / 16), math.ceil(LABEL_ROOM / step))
    for i, label in enumerate(labels):
        if i % every == 0:
            _x_label(out, x(i), label, base, True)
    for k, s in enumerate(series):
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(s.values))
        out.append(f'<polyline class="line series-{k % 8}" points="{points}"/>')
        if len(s.values) <= 62:
            for i, v in enumerate(s.values):
                out.append(
                    f'<circle class="dot series-{k % 8}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3"><title>'
                    f"{escape(labels[i])} · {escape(s.name)}: {_number(v)}</title></circle>"
                )
    out.append(f'<line class="axis" x1="{LEFT}" x2="{width - RIGHT}" y1="{base:.1f}" y2="{base:.1f}"/>')
    _legend(out, series, height)
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped
