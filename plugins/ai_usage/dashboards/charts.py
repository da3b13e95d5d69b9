"""Inline SVG charts for the HTML report: line and bar, drawn server-side, no script, no network.

Every mark carries ``data-x``, ``data-series`` and ``data-value`` (the exact value of the query result) and a
``<title>`` tooltip, so what a chart shows can be checked against the card's query. Line charts break the
line at NULL values (missing data is a gap, not a zero) and, when the result has a ``coverage`` column,
shade provisional days and mark missing or unchecked ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from ai_usage.dashboards.formatting import as_number, format_value, raw_value, title_of

WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 74, 34, 16, 44
PALETTE = ("#509EE3", "#88BF4D", "#A989C5", "#EF8C8C", "#F9D45C", "#F2A86F", "#98D9D9", "#7172AD")
COVERAGE_STYLE = {
    "provisional": ("band-provisional", "#F9D45C", 0.28),
    "missing": ("band-missing", "#B8BBC3", 0.45),
    "unchecked": ("band-unchecked", "#DCDFE5", 0.35),
}

Row = Mapping[str, Any]


def _attr(value: Any) -> str:
    raw = raw_value(value)
    return "" if raw is None else str(raw)


def _nice_max(value: float, y_format: str = "text") -> float:
    """A round axis maximum; counts get one divisible by the 4 grid steps, so every tick is whole."""
    if y_format == "int":
        return float(max(4, math.ceil(_nice_max(value) / 4) * 4))
    if value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def _frame(y_max: float, y_format: str, y_min: float = 0.0) -> list[str]:
    """Grid lines and y labels (5 ticks)."""
    parts = []
    plot_h = HEIGHT - TOP - BOTTOM
    for i in range(5):
        value = y_min + (y_max - y_min) * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        if y_format in ("usd", "percent", "pct_change"):
            label = format_value(value, y_format)
        else:  # counts: a tick between whole numbers keeps its decimal (12.5, not 12)
            label = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
        parts.append(f'<text class="ylabel" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>')
    return parts


def _x_labels(labels: Sequence[str], xs: Sequence[float]) -> list[str]:
    step = max(1, math.ceil(len(labels) / 8))
    out = []
    for i, (label, x) in enumerate(zip(labels, xs, strict=True)):
        if i % step == 0 or i == len(labels) - 1 and len(labels) <= 8:
            out.append(f'<text class="xlabel" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                       f"{escape(label[:14])}</text>")
    return out


def _legend(names: Sequence[str]) -> Markup:
    items = "".join(
        f'<span class="legend-item"><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{escape(name)}</span>'
        for i, name in enumerate(names)
    )
    return Markup(f'<div class="legend">{items}</div>')


def _svg(body: list[str], label: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" '
            f'xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>")


def line_chart(rows: Sequence[Row], x: str, y: Sequence[str], formats: Mapping[str, str], label: str) -> Markup:
    """One line per `y` column over the rows' `x` values (in row order)."""
    if not rows:
        return Markup('<p class="empty">No rows for this selection.</p>')
    x_format = formats.get(x, "text")
    labels = [format_value(r.get(x), x_format) for r in rows]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(rows) - 1, 1)
    xs = [LEFT + (i * step if len(rows) > 1 else plot_w / 2) for i in range(len(rows))]
    numbers = [as_number(r.get(col)) for r in rows for col in y]
    y_format = formats.get(y[0], "text")
    y_max = _nice_max(max([n for n in numbers if n is not None] or [0.0]), y_format)

    def to_y(value: float) -> float:
        return TOP + plot_h - plot_h * value / y_max

    body = _frame(y_max, y_format)
    if "coverage" in rows[0]:
        band = step if len(rows) > 1 else plot_w
        for row, cx in zip(rows, xs, strict=True):
            status = row.get("coverage")
            if status in COVERAGE_STYLE:
                css, color, opacity = COVERAGE_STYLE[status]
                body.append(
                    f'<rect class="band {css}" data-x="{escape(_attr(row.get(x)))}" data-coverage="{escape(status)}" '
                    f'x="{cx - band / 2:.1f}" y="{TOP}" width="{band:.1f}" height="{plot_h}" '
                    f'fill="{color}" fill-opacity="{opacity}"><title>{escape(format_value(row.get(x), x_format))}: '
                    f"{escape(status)}</title></rect>"
                )
    for s, col in enumerate(y):
        color = PALETTE[s % len(PALETTE)]
        segments: list[list[tuple[float, float]]] = [[]]
        for row, cx in zip(rows, xs, strict=True):
            value = as_number(row.get(col))
            if value is None:
                if segments[-1]:
                    segments.append([])
                continue
            segments[-1].append((cx, to_y(value)))
        for segment in segments:
            if len(segment) > 1:
                points = " ".join(f"{px:.1f},{py:.1f}" for px, py in segment)
                body.append(f'<polyline class="series-line" data-series="{escape(col)}" points="{points}" '
                            f'fill="none" stroke="{color}" stroke-width="2"/>')
        for row, cx in zip(rows, xs, strict=True):
            value = row.get(col)
            number = as_number(value)
            if number is None:
                continue
            shown = format_value(value, formats.get(col, "text"))
            body.append(
                f'<circle class="point" data-series="{escape(col)}" data-x="{escape(_attr(row.get(x)))}" '
                f'data-value="{escape(_attr(value))}" cx="{cx:.1f}" cy="{to_y(number):.1f}" r="3" fill="{color}">'
                f"<title>{escape(format_value(row.get(x), x_format))} · {escape(title_of(col))}: {escape(shown)}"
                "</title></circle>"
            )
    body += _x_labels(labels, xs)
    return Markup(_svg(body, label)) + _legend([title_of(c) for c in y])


def bar_chart(
    rows: Sequence[Row], x: str, y: Sequence[str], series: str | None, stacked: bool,
    formats: Mapping[str, str], label: str,
) -> Markup:
    """Bars per `x` category: one per series value (`series` column) or per `y` column; stacked or side by side."""
    if not rows:
        return Markup('<p class="empty">No rows for this selection.</p>')
    x_format = formats.get(x, "text")
    categories = list(dict.fromkeys(_attr(r.get(x)) for r in rows))
    shown_x = {_attr(r.get(x)): format_value(r.get(x), x_format) for r in rows}
    # (category, series name) -> (value, column)
    cells: dict[tuple[str, str], tuple[Any, str]] = {}
    if series:
        names = list(dict.fromkeys(_attr(r.get(series)) for r in rows))
        for r in rows:
            cells[(_attr(r.get(x)), _attr(r.get(series)))] = (r.get(y[0]), y[0])
    else:
        names = list(y)
        for r in rows:
            for col in y:
                cells[(_attr(r.get(x)), col)] = (r.get(col), col)
    totals = []
    for cat in categories:
        values = [as_number(cells.get((cat, n), (None, ""))[0]) or 0.0 for n in names]
        totals.append(sum(v for v in values if v > 0) if stacked else max(values + [0.0]))
    y_format = formats.get(y[0], "text")
    y_max = _nice_max(max(totals + [0.0]), y_format)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(categories)
    bar_w = slot * 0.7 / (1 if stacked else len(names))
    body = _frame(y_max, y_format)
    xs = []
    for i, cat in enumerate(categories):
        left = LEFT + i * slot + slot * 0.15
        xs.append(LEFT + i * slot + slot / 2)
        base = 0.0
        for s, name in enumerate(names):
            value, col = cells.get((cat, name), (None, y[0]))
            number = as_number(value)
            if number is None:
                continue
            height = plot_h * max(number, 0.0) / y_max
            bx = left if stacked else left + s * bar_w
            by = TOP + plot_h - base - height
            if stacked:
                base += height
            shown = format_value(value, formats.get(col, "text"))
            series_label = name if series else title_of(name)
            body.append(
                f'<rect class="bar" data-x="{escape(cat)}" data-series="{escape(name)}" '
                f'data-value="{escape(_attr(value))}" x="{bx:.1f}" y="{by:.1f}" width="{max(bar_w, 1):.1f}" '
                f'height="{height:.1f}" fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(shown_x[cat])} · '
                f"{escape(series_label)}: {escape(shown)}</title></rect>"
            )
    body += _x_labels([shown_x[c] for c in categories], xs)
    legend = names if series else [title_of(n) for n in names]
    return Markup(_svg(body, label)) + _legend(legend)
