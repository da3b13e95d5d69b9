"""The local HTML report: the dashboard specs rendered from the warehouse, one page per dashboard.

`render_report` runs every card of every dashboard on the configured warehouse (DuckDB by default; the
same code renders from BigQuery) with the given filter values, and writes ``index.html`` plus
``<dashboard>.html`` to the output folder (default ``.ai_usage/report``). Pages are self-contained: open
them from disk, no server and no network needed.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from ai_usage import settings
from ai_usage.dashboards import html
from ai_usage.dashboards.local import CardResult, run_card
from ai_usage.dashboards.spec import Specs, load_specs
from ai_usage.warehouse import get_warehouse
from ai_usage.warehouse.base import Warehouse

log = logging.getLogger(__name__)


def default_report_dir() -> Path:
    return settings.project_home() / ".ai_usage" / "report"


def _write(path: Path, text: str) -> None:
    """Write atomically, so a browser never opens a half-written page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def run_dashboards(
    specs: Specs, warehouse: Warehouse, selected: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, CardResult]]:
    """Every card's result, per dashboard key and card key."""
    selected = dict(selected or {})
    out: dict[str, dict[str, CardResult]] = {}
    for dashboard in specs.dashboards:
        out[dashboard.key] = {card.key: run_card(warehouse, card, selected) for card in dashboard.cards}
    return out


def render_report(
    out_dir: str | Path | None = None,
    *,
    filters: Mapping[str, Any] | None = None,
    specs: Specs | None = None,
    warehouse: Warehouse | None = None,
    now: datetime | None = None,
) -> list[Path]:
    """Render every dashboard to ``<out_dir>/<dashboard>.html`` plus ``index.html``; return the paths written.

    `filters` are typed filter values (``{"date_from": date(2025, 1, 1), "team": "Platform"}``); each card
    gets those it honours. A card whose query fails shows the error on its page (and is logged) instead
    of failing the whole report.
    """
    out = Path(out_dir) if out_dir is not None else default_report_dir()
    specs = specs or load_specs()
    selected = dict(filters or {})
    generated = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    own = warehouse is None
    wh = warehouse or get_warehouse()
    try:
        results = run_dashboards(specs, wh, selected)
        kind = wh.kind
    finally:
        if own:
            wh.close()
    paths: list[Path] = []
    tiles = []
    for dashboard in specs.dashboards:
        body = html.dashboard_body(dashboard, results[dashboard.key], specs.filters, selected)
        path = out / f"{dashboard.key}.html"
        _write(path, html.page(dashboard.title, dashboard.description, body, current=dashboard.key,
                               dashboards=specs.dashboards, generated=generated, warehouse=kind))
        paths.append(path)
        errors = sum(r.error is not None for r in results[dashboard.key].values())
        empty = sum(r.error is None and not r.rows for r in results[dashboard.key].values())
        tiles.append({"key": dashboard.key, "title": dashboard.title, "description": dashboard.description,
                      "cards": len(dashboard.cards), "errors": errors, "empty": empty})
        if errors:
            log.warning("%s: %d of %d cards failed; see the page for the errors", dashboard.key, errors,
                        len(dashboard.cards))
    index = out / "index.html"
    # Totals always return one row; only charts and tables tell whether the marts hold anything.
    nothing = all(not results[d.key][c.key].rows for d in specs.dashboards for c in d.cards if c.visual != "number")
    body = Markup(html.INDEX.render(dashboards=tiles, nothing=nothing))
    _write(index, html.page("AI usage ledger - dashboards",
                            "Cost, adoption and productivity of the AI developer tools, from the marts.",
                            body, current="index", dashboards=specs.dashboards, generated=generated,
                            warehouse=kind))
    log.info("report written to %s (%d dashboards)", out, len(specs.dashboards))
    return [index, *paths]
