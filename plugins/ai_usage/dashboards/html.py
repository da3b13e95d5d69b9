"""HTML of the local report: one page per dashboard and an index, self-contained (inline CSS and SVG).

Pages use no script and load nothing: no fonts, images or styles from the network, and a CSV download per
card as a ``data:`` link. Each card embeds its query result as JSON (``<script type="application/json">``,
inert data) next to what it shows, so a test can check that the page shows the query's numbers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from jinja2 import Environment
from markupsafe import Markup

from ai_usage.dashboards.charts import bar_chart, line_chart
from ai_usage.dashboards.formatting import csv_value, format_value, infer_format, raw_value, title_of
from ai_usage.dashboards.local import CardResult
from ai_usage.dashboards.spec import Card, Dashboard, Filter, Placement

STATUS_COLUMNS = {"status", "coverage", "month_status"}
STATUS_CLASS = {
    "final": "ok", "passed": "ok", "complete": "ok",
    "provisional": "warn", "partial": "warn", "unchecked": "warn",
    "missing": "bad", "failed": "bad",
}
MAX_TABLE_ROWS = 500

CSS = """
:root { --ink:#2e353b; --muted:#696e7b; --line:#e4e7ec; --bg:#f9fafb; --blue:#509EE3; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color:var(--ink); background:var(--bg); }
header { background:#fff; border-bottom:1px solid var(--line); padding:16px 24px; }
header h1 { margin:0 0 4px; font-size:22px; }
header p { margin:0; color:var(--muted); max-width:1100px; }
nav { display:flex; gap:16px; padding:8px 24px; background:#fff; border-bottom:1px solid var(--line); }
nav a { color:var(--blue); text-decoration:none; } nav a.current { font-weight:600; color:var(--ink); }
.meta { color:var(--muted); font-size:12px; margin-top:6px; }
.filters { display:flex; flex-wrap:wrap; gap:8px; padding:12px 24px; }
.filter { background:#fff; border:1px solid var(--line); border-radius:6px; padding:4px 10px; font-size:13px; }
.filter b { font-weight:600; }
.grid { display:grid; grid-template-columns:repeat(24, minmax(0, 1fr)); grid-auto-rows:50px; gap:12px;
        padding:0 24px 24px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 14px; overflow:auto;
        display:flex; flex-direction:column; }
.card h2 { font-size:15px; margin:0 0 2px; }
.card .desc { color:var(--muted); font-size:12px; margin:0 0 6px; }
.card .honours { color:var(--muted); font-size:11px; margin:0 0 6px; }
.card .actions { margin-top:auto; padding-top:6px; font-size:12px; display:flex; gap:12px; }
.card .actions a { color:var(--blue); }
.number { font-size:34px; font-weight:700; margin:4px 0; }
.number-caption { color:var(--muted); font-size:12px; }
.chart { width:100%; height:auto; max-height:300px; }
.chart .grid { stroke:#eef0f3; stroke-width:1; }
.chart text { font-size:11px; fill:var(--muted); }
.legend { display:flex; flex-wrap:wrap; gap:10px; font-size:12px; color:var(--muted); }
.legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:4px; }
table { border-collapse:collapse; width:100%; font-size:12.5px; }
th, td { border-bottom:1px solid var(--line); padding:4px 8px; text-align:left; white-space:nowrap; }
th { position:sticky; top:0; background:#fff; font-weight:600; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
.chip { display:inline-block; padding:0 8px; border-radius:10px; font-size:12px; }
.chip.ok { background:#e3f3d8; color:#3d6b1c; } .chip.warn { background:#fdf1c9; color:#7a5b00; }
.chip.bad { background:#fbdada; color:#8f1d1d; }
.empty { color:var(--muted); font-style:italic; }
.error { color:#8f1d1d; background:#fbdada; padding:8px; border-radius:6px; }
.key { display:flex; gap:14px; font-size:12px; color:var(--muted); padding:0 24px 8px; }
.key span::before { content:""; display:inline-block; width:10px; height:10px; margin-right:4px;
                    vertical-align:-1px; border-radius:2px; }
.key .k-prov::before { background:#F9D45C; } .key .k-miss::before { background:#B8BBC3; }
.list { padding:8px 24px 24px; display:grid; grid-template-columns:repeat(auto-fill, minmax(320px, 1fr)); gap:12px; }
.list a.tile { display:block; background:#fff; border:1px solid var(--line); border-radius:8px; padding:14px;
               color:var(--ink); text-decoration:none; }
.list a.tile h2 { margin:0 0 6px; font-size:17px; color:var(--blue); }
details summary { cursor:pointer; color:var(--muted); font-size:12px; }
pre { white-space:pre-wrap; font-size:11px; background:var(--bg); padding:8px; border-radius:6px; }
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{{ title }}</title>
<style>{{ css }}</style>
</head>
<body>
<header>
  <h1>{{ title }}</h1>
  <p>{{ description }}</p>
  <div class="meta">Generated {{ generated }} from the {{ warehouse }} warehouse (marts only).</div>
</header>
<nav>
  <a href="index.html"{% if current == "index" %} class="current"{% endif %}>All dashboards</a>
  {% for d in dashboards %}<a href="{{ d.key }}.html"{% if current == d.key %} class="current"{% endif %}>{{ d.title }}</a>
  {% endfor %}
</nav>
{{ body }}
</body>
</html>
"""

_DASHBOARD = """
<div class="filters" aria-label="Filters">
  {% for f in filters %}<span class="filter" data-filter="{{ f.key }}" title="{{ f.description }}"><b>{{ f.name }}:</b> {{ f.value }}</span>
  {% endfor %}
</div>
<div class="key"><span class="k-prov">provisional day (the vendor may still revise it)</span>
<span class="k-miss">missing day (no data: a gap, never a zero)</span></div>
<main class="grid">
{% for c in cards %}
<section class="card card-{{ c.visual }}" id="card-{{ c.key }}" data-card="{{ c.key }}" data-visual="{{ c.visual }}"
  style="grid-column: {{ c.col }} / span {{ c.width }}; grid-row: {{ c.row }} / span {{ c.height }};">
  <h2 title="{{ c.description }}">{{ c.title }}</h2>
  {% if c.visual != "number" %}<p class="desc">{{ c.description }}</p>{% endif %}
  <p class="honours">Filters: {{ c.honours }}</p>
  {{ c.content }}
  <div class="actions">
    <a class="csv" download="{{ c.csv_name }}" href="{{ c.csv_href }}">Download CSV</a>
    <details><summary>SQL</summary><pre>{{ c.sql }}</pre></details>
  </div>
  <script type="application/json" class="card-data">{{ c.data }}</script>
</section>
{% endfor %}
</main>
"""

_INDEX = """
{% if nothing %}<p class="filters empty">The marts hold no rows yet: the dashboards fill in once refresh_marts has run.</p>{% endif %}
<section class="list">
{% for d in dashboards %}
  <a class="tile" href="{{ d.key }}.html" data-dashboard="{{ d.key }}">
    <h2>{{ d.title }}</h2>
    <p>{{ d.description }}</p>
    <p class="meta">{{ d.cards }} cards{% if d.empty %}, {{ d.empty }} without rows{% endif %}{% if d.errors %}, {{ d.errors }} failed{% endif %}</p>
  </a>
{% endfor %}
</section>
"""

_env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
PAGE = _env.from_string(_PAGE)
DASHBOARD = _env.from_string(_DASHBOARD)
INDEX = _env.from_string(_INDEX)


def _formats(card: Card, result: CardResult) -> dict[str, str]:
    first = result.rows[0] if result.rows else {}
    return {c: card.formats.get(c) or infer_format(c, first.get(c)) for c in result.columns}


def _number(card: Card, result: CardResult, formats: Mapping[str, str]) -> Markup:
    assert card.value is not None
    row = result.rows[0] if result.rows else {}
    value = row.get(card.value)
    shown = format_value(value, formats.get(card.value, "text"))
    caption = []
    if row.get("month") is not None:
        caption.append(f"Month {format_value(row['month'], 'month')}")
    if row.get("is_partial_month"):
        through = row.get("data_through_date")
        caption.append("partial" + (f", data through {format_value(through, 'date')}" if through else ""))
    if not row:
        caption.append("no data for this selection")
    return Markup(
        '<div class="number" data-column="{col}" data-value="{raw}">{shown}</div>'
        '<div class="number-caption">{caption}</div>'
    ).format(col=card.value, raw=_raw_attr(value), shown=shown, caption=" · ".join(caption))


def _raw_attr(value: Any) -> str:
    raw = raw_value(value)
    return "" if raw is None else str(raw)


def _table(result: CardResult, formats: Mapping[str, str]) -> Markup:
    if not result.rows:
        return Markup('<p class="empty">No rows for this selection.</p>')
    numeric = {"usd", "percent", "pct_change", "int"}
    head = Markup("").join(
        Markup('<th data-column="{c}">{t}</th>').format(c=c, t=title_of(c)) for c in result.columns
    )
    lines = []
    for row in result.rows[:MAX_TABLE_ROWS]:
        cells = []
        for c in result.columns:
            value = row.get(c)
            shown = format_value(value, formats[c])
            css = "num" if formats[c] in numeric else ""
            if c in STATUS_COLUMNS and value in STATUS_CLASS:
                shown_markup = Markup('<span class="chip {k}">{v}</span>').format(k=STATUS_CLASS[value], v=shown)
            else:
                shown_markup = Markup("{v}").format(v=shown)
            cells.append(Markup('<td class="{css}" data-column="{c}" data-value="{raw}">{v}</td>').format(
                css=css, c=c, raw=_raw_attr(value), v=shown_markup))
        lines.append(Markup("<tr>") + Markup("").join(cells) + Markup("</tr>"))
    note = ""
    if len(result.rows) > MAX_TABLE_ROWS:
        note = f'<p class="meta">First {MAX_TABLE_ROWS} of {len(result.rows)} rows; the CSV has them all.</p>'
    return (Markup("<table><thead><tr>") + head + Markup("</tr></thead><tbody>") + Markup("").join(lines)
            + Markup("</tbody></table>") + Markup(note))


def card_content(card: Card, result: CardResult) -> Markup:
    """The visualisation of one card's result."""
    if result.error is not None:
        return Markup('<p class="error card-error">This card failed: {e}</p>').format(e=result.error)
    formats = _formats(card, result)
    if card.visual == "number":
        return _number(card, result, formats)
    if card.visual == "line":
        assert card.x is not None
        return line_chart(result.rows, card.x, card.y, formats, card.title)
    if card.visual == "bar":
        assert card.x is not None
        return bar_chart(result.rows, card.x, card.y, card.series, card.stacked, formats, card.title)
    return _table(result, formats)


def card_csv(result: CardResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([csv_value(row.get(c)) for c in result.columns])
    return out.getvalue()


def card_json(result: CardResult) -> Markup:
    """The result as inert JSON for the page (``<`` escaped so it cannot close the script element)."""
    doc = {
        "columns": result.columns,
        "rows": [[raw_value(row.get(c)) for c in result.columns] for row in result.rows],
        "params": {k: raw_value(v) for k, v in result.params.items()},
        "error": result.error,
    }
    return Markup(json.dumps(doc, sort_keys=True).replace("<", "\\u003c").replace(">", "\\u003e"))


def dashboard_body(
    dashboard: Dashboard, results: Mapping[str, CardResult], catalogue: Mapping[str, Filter],
    selected: Mapping[str, Any],
) -> Markup:
    filters = [
        {"key": k, "name": catalogue[k].name, "description": catalogue[k].description,
         "value": format_value(selected[k], "date" if catalogue[k].type == "date" else "text")
         if selected.get(k) is not None else "All"}
        for k in dashboard.filters
    ]
    cards = []
    for card in dashboard.cards:
        result = results[card.key]
        place: Placement = dashboard.layout[card.key]
        csv_text = card_csv(result)
        cards.append({
            "key": card.key, "visual": card.visual, "title": card.title, "description": card.description,
            "honours": ", ".join(catalogue[f].name for f in card.filters) or "none (organisation-wide)",
            "content": card_content(card, result), "data": card_json(result),
            "csv_name": f"{dashboard.key}-{card.key}.csv",
            "csv_href": "data:text/csv;charset=utf-8," + quote(csv_text, safe=""),
            "sql": result.sql.strip(), "col": place.col + 1, "row": place.row + 1,
            "width": place.width, "height": place.height,
        })
    return Markup(DASHBOARD.render(filters=filters, cards=cards))


def page(title: str, description: str, body: Markup, *, current: str, dashboards: Sequence[Dashboard],
         generated: str, warehouse: str) -> str:
    return PAGE.render(title=title, description=description, body=body, current=current,
                       dashboards=dashboards, generated=generated, warehouse=warehouse, css=Markup(CSS))
