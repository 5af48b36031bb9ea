"""Small server-side SVG charts for the admin dashboard: no JavaScript, no CDN, nothing vendored.

Each function returns a complete ``<svg class="chart">``; every label is escaped. Lines are
``<path class="series">``, bars ``<rect class="bar">`` with a ``<title>`` tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#2563eb", "#f59e0b", "#dc2626", "#16a34a", "#7c3aed", "#0891b2", "#db2777")
FONT = 'font-family="system-ui, sans-serif" font-size="11" fill="#555"'
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 30


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    color: str = ""
    dashed: bool = False


def nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= value (axis top)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * 10**exponent
        if top >= value * 0.999:
            return float(top)
    return float(10 ** (exponent + 1))


def fmt(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _open(width: int, height: int, title: str, css: str = "chart") -> list[str]:
    return [
        f'<svg class="{css}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px" role="img" aria-label="{escape(title)}">',
        f'<text x="{LEFT}" y="16" font-family="system-ui, sans-serif" font-size="13" '
        f'font-weight="600" fill="#222">{escape(title)}</text>',
    ]


def _empty(width: int, height: int, title: str) -> SafeString:
    parts = _open(width, height, title, "chart chart-empty")
    parts.append(
        f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" {FONT}>'
        "No data in this window</text></svg>"
    )
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated label is escaped


def _y_axis(parts: list[str], top_value: float, unit: str, width: int, height: int) -> None:
    plot_h = height - TOP - BOTTOM
    for i in range(5):
        value = top_value * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{"#999" if i == 0 else "#e5e5e5"}"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT}>'
            f"{escape(fmt(value))}{escape(unit)}</text>"
        )


def _legend(parts: list[str], names: Sequence[tuple[str, str]], width: int) -> None:
    x = width - RIGHT
    for name, color in reversed(names):
        label_w = 7 * len(name) + 22
        x -= label_w
        parts.append(f'<rect x="{x}" y="7" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{x + 14}" y="16" {FONT}>{escape(name)}</text>')


def line_chart(
    *,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    unit: str = "",
    y_max: float | None = None,
    hlines: Sequence[tuple[float, str]] = (),
    width: int = 760,
    height: int = 220,
) -> SafeString:
    """Lines over time; ``None`` values leave gaps. ``hlines``: (value, label) reference lines."""
    values = [v for s in series for v in s.values if v is not None]
    if not x_labels or not values:
        return _empty(width, height, title)
    top_value = y_max if y_max is not None else nice_max(max([*values, *(v for v, _ in hlines)]))
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    n = len(x_labels)

    def x_at(i: int) -> float:
        return LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y_at(v: float) -> float:
        return TOP + plot_h - plot_h * min(v, top_value) / top_value

    parts = _open(width, height, title)
    _y_axis(parts, top_value, unit, width, height)
    every = max(1, math.ceil(n / 8))
    for i in range(0, n, every):
        parts.append(
            f'<text x="{x_at(i):.1f}" y="{height - 10}" text-anchor="middle" {FONT}>'
            f"{escape(x_labels[i])}</text>"
        )
    for value, label in hlines:
        y = y_at(value)
        parts.append(
            f'<line class="threshold" x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="#dc2626" stroke-dasharray="6 4"/>'
        )
        parts.append(f'<text x="{LEFT + 4}" y="{y - 4:.1f}" {FONT}>{escape(label)}</text>')
    names = []
    for index, s in enumerate(series):
        color = s.color or PALETTE[index % len(PALETTE)]
        names.append((s.name, color))
        segments: list[str] = []
        pen_down = False
        for i, v in enumerate(s.values):
            if v is None:
                pen_down = False
                continue
            segments.append(f"{'L' if pen_down else 'M'}{x_at(i):.1f},{y_at(v):.1f}")
            pen_down = True
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        parts.append(
            f'<path class="series" data-series="{escape(s.name)}" d="{" ".join(segments)}" '
            f'fill="none" stroke="{color}" stroke-width="2"{dash}/>'
        )
        for i, v in enumerate(s.values):
            if v is not None and (n <= 60 or i == n - 1):
                parts.append(
                    f'<circle cx="{x_at(i):.1f}" cy="{y_at(v):.1f}" r="2.5" fill="{color}">'
                    f"<title>{escape(s.name)} {escape(x_labels[i])}: {escape(fmt(v))}"
                    f"{escape(unit)}</title></circle>"
                )
    _legend(parts, names, width)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated label is escaped


def column_chart(
    *,
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    unit: str = "",
    color: str = PALETTE[0],
    width: int = 760,
    height: int = 200,
) -> SafeString:
    """Vertical bars, one per label (a histogram or a count per time step)."""
    if not labels or not any(values):
        return _empty(width, height, title)
    top_value = nice_max(max(values))
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / len(labels)
    parts = _open(width, height, title)
    _y_axis(parts, top_value, unit, width, height)
    every = max(1, math.ceil(len(labels) / 16))
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        bar_h = plot_h * value / top_value
        x = LEFT + slot * i + slot * 0.15
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - bar_h:.1f}" '
            f'width="{slot * 0.7:.1f}" height="{bar_h:.1f}" fill="{color}">'
            f"<title>{escape(label)}: {escape(fmt(value))}{escape(unit)}</title></rect>"
        )
        if i % every == 0:
            parts.append(
                f'<text x="{LEFT + slot * (i + 0.5):.1f}" y="{height - 10}" '
                f'text-anchor="middle" {FONT}>{escape(label)}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated label is escaped


def bar_chart(
    *,
    title: str,
    rows: Sequence[tuple[str, Sequence[float]]],
    series_names: Sequence[str],
    unit: str = "",
    x_max: float | None = None,
    width: int = 760,
) -> SafeString:
    """Horizontal bars: one group per row, one bar per series (e.g. p50/p95/p99 per operation)."""
    bar_h, gap, label_w = 9, 8, 230
    height = TOP + len(rows) * (bar_h * len(series_names) + gap) + BOTTOM
    if not rows:
        return _empty(width, 120, title)
    top_value = x_max or nice_max(max(v for _, values in rows for v in values))
    plot_w = width - label_w - RIGHT
    parts = _open(width, height, title)
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(series_names))]
    plot_bottom = height - BOTTOM
    for i in range(5):
        x = label_w + plot_w * i / 4
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{plot_bottom}" stroke="#e5e5e5"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{plot_bottom + 14}" text-anchor="middle" {FONT}>'
            f"{escape(fmt(top_value * i / 4))}{escape(unit)}</text>"
        )
    y = TOP
    for label, values in rows:
        group_h = bar_h * len(series_names)
        shown = label if len(label) <= 34 else label[:33] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + group_h / 2 + 4:.1f}" text-anchor="end" {FONT}>'
            f"<title>{escape(label)}</title>{escape(shown)}</text>"
        )
        for name, value, color in zip(series_names, values, colors, strict=True):
            length = plot_w * min(value, top_value) / top_value
            parts.append(
                f'<rect class="bar" x="{label_w}" y="{y}" width="{max(length, 1):.1f}" '
                f'height="{bar_h - 1}" fill="{color}"><title>{escape(label)} {escape(name)}: '
                f"{escape(fmt(value))}{escape(unit)}</title></rect>"
            )
            y += bar_h
        y += gap
    _legend(parts, list(zip(series_names, colors, strict=True)), width)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated label is escaped
