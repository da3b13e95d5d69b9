"""The local HTML report (`render_report`): one self-contained page per dashboard plus an index, showing
exactly the numbers of each card's query, with a CSV per card; filters change what the cards show."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import pytest

from ai_usage.dashboards.formatting import format_value, infer_format, raw_value
from ai_usage.dashboards.local import run_card
from ai_usage.dashboards.render import default_report_dir, render_report
from ai_usage.dashboards.spec import load_specs
from ai_usage.settings import DuckDBConfig
from ai_usage.warehouse.duckdb_backend import DuckDBBackend
from tests import _dashboards_data as dd

SPECS = load_specs()


class Page(HTMLParser):
    """Collects, per card section: its JSON data, the number shown, table cells, chart marks, CSV link."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[str, dict[str, Any]] = {}
        self.current: dict[str, Any] | None = None
        self.capture: str | None = None
        self.cell: dict[str, str] | None = None
        self.urls: list[str] = []
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name in ("src", "href"):
            if a.get(name):
                self.urls.append(str(a[name]))
        if tag == "script":
            self.scripts.append(a)
        if tag == "section" and a.get("data-card"):
            self.current = {"key": a["data-card"], "visual": a["data-visual"], "json": "", "number": "",
                            "cells": [], "marks": [], "csv": None}
            self.cards[str(a["data-card"])] = self.current
        if self.current is None:
            return
        if tag == "script" and a.get("class") == "card-data":
            self.capture = "json"
        elif tag == "div" and a.get("class") == "number":
            self.capture = "number"
            self.current["number_raw"] = a.get("data-value")
        elif tag == "td":
            self.cell = {"column": str(a.get("data-column")), "raw": str(a.get("data-value")), "text": ""}
            self.capture = "cell"
        elif tag in ("rect", "circle") and a.get("data-value") is not None:
            self.current["marks"].append((a.get("data-x"), a.get("data-series"), a.get("data-value")))
        elif tag == "a" and a.get("class") == "csv":
            self.current["csv"] = a.get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.cell is not None and self.current is not None:
            self.current["cells"].append(self.cell)
            self.cell = None
            self.capture = None
        elif tag in ("script", "div"):
            self.capture = None
        elif tag == "section":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.current is None or self.capture is None:
            return
        if self.capture == "cell" and self.cell is not None:
            self.cell["text"] += data
        elif self.capture in ("json", "number"):
            self.current[self.capture] += data


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text())
    return page


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBBackend]:
    path = dd.populated_warehouse(tmp_path_factory.mktemp("render") / "w.duckdb")
    keep = duckdb.connect(str(path), read_only=True)  # keeps the instance cached: fast queries
    try:
        yield DuckDBBackend(DuckDBConfig(path), read_only=True)
    finally:
        keep.close()


@pytest.fixture(scope="module")
def report(warehouse: DuckDBBackend, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return render_report(tmp_path_factory.mktemp("report"), warehouse=warehouse, specs=SPECS)


def test_writes_an_index_and_one_page_per_dashboard(report: list[Path]) -> None:
    assert [p.name for p in report] == ["index.html", "executive.html", "cost_allocation.html",
                                        "cursor_productivity.html", "claude_productivity.html"]
    assert "The marts hold no rows yet" not in report[0].read_text()
    index = parse(report[0])
    assert {u for u in index.urls if u.endswith(".html")} == {p.name for p in report}
    assert oct(report[1].stat().st_mode & 0o777) == "0o644"


def test_pages_are_self_contained(report: list[Path]) -> None:
    for path in report:
        page = parse(path)
        external = [u for u in page.urls if re.match(r"^(https?:)?//", u)]
        assert external == [], path.name
        assert all(u.startswith(("data:", "#")) or u.endswith(".html") for u in page.urls), path.name
        assert all(s.get("type") == "application/json" and not s.get("src") for s in page.scripts), path.name
        assert "@import" not in path.read_text() and "url(http" not in path.read_text()


@pytest.mark.parametrize("dashboard", [d.key for d in SPECS.dashboards])
def test_every_card_shows_its_query_result(dashboard: str, report: list[Path], warehouse: DuckDBBackend) -> None:
    page = parse(next(p for p in report if p.name == f"{dashboard}.html"))
    spec = SPECS.dashboard(dashboard)
    assert list(page.cards) == [c.key for c in spec.cards]
    for card in spec.cards:
        shown = page.cards[card.key]
        result = run_card(warehouse, card, {})
        assert result.error is None and result.rows, (dashboard, card.key)
        data = json.loads(shown["json"])
        assert data["columns"] == result.columns and data["error"] is None
        assert data["rows"] == [[raw_value(r[c]) for c in result.columns] for r in result.rows], card.key
        formats = {c: card.formats.get(c) or infer_format(c, result.rows[0].get(c)) for c in result.columns}
        if card.visual == "number":
            assert card.value is not None
            value = result.rows[0][card.value]
            assert shown["number"].strip() == format_value(value, formats[card.value])
            assert shown["number_raw"] == ("" if value is None else str(raw_value(value)))
        elif card.visual == "table":
            cells = shown["cells"]
            assert len(cells) == len(result.rows) * len(result.columns)
            for i, row in enumerate(result.rows):
                for j, column in enumerate(result.columns):
                    cell = cells[i * len(result.columns) + j]
                    assert cell["column"] == column
                    assert cell["text"] == format_value(row[column], formats[column]), (card.key, column)
        else:
            marks = {(x, s): v for x, s, v in shown["marks"]}
            expected = {}
            for row in result.rows:
                x = str(raw_value(row[card.x]))
                for column in card.y:
                    if row[column] is None:
                        continue
                    series = str(raw_value(row[card.series])) if card.series else column
                    expected[(x, series)] = str(raw_value(row[column]))
            assert marks == expected, card.key
        rows = list(csv.reader(io.StringIO(unquote(shown["csv"].split(",", 1)[1]))))
        assert rows[0] == result.columns and len(rows) == len(result.rows) + 1


def test_missing_day_is_a_gap_and_provisional_days_are_shaded(report: list[Path]) -> None:
    text = next(p for p in report if p.name == "cursor_productivity.html").read_text()
    section = text.split('data-card="daily_active_users"')[1].split("</section>")[0]
    assert f'data-x="{dd.CURSOR_MISSING.isoformat()}" data-coverage="missing"' in section
    assert f'data-series="active_users" data-x="{dd.CURSOR_MISSING.isoformat()}"' not in section  # no point
    assert section.count('data-coverage="provisional"') == 3
    assert section.count('<polyline class="series-line"') == 2  # the line breaks at the gap


def test_filters_change_the_numbers(warehouse: DuckDBBackend, tmp_path: Path) -> None:
    paths = render_report(tmp_path, warehouse=warehouse, specs=SPECS,
                          filters={"team": "Platform", "date_from": date(2025, 3, 1)})
    page = parse(next(p for p in paths if p.name == "cost_allocation.html"))
    platform_march = sum(r["amount_usd"] for r in dd.data().rows("marts.monthly_cost_allocation")
                         if r["team"] == "Platform" and r["month"] == date(2025, 3, 1))
    assert page.cards["total_billed"]["number"].strip() == format_value(platform_march, "usd")
    text = paths[2].read_text()
    assert '<b>Team:</b> Platform' in text and '<b>From:</b> 2025-03-01' in text and '<b>To:</b> All' in text


def _render_read_only(path: Path, out: Path) -> list[Path]:
    keep = duckdb.connect(str(path), read_only=True)
    try:
        return render_report(out, warehouse=DuckDBBackend(DuckDBConfig(path), read_only=True), specs=SPECS)
    finally:
        keep.close()


def test_empty_marts_render_without_errors_and_missing_tables_show_the_error(tmp_path: Path) -> None:
    DuckDBBackend(DuckDBConfig(tmp_path / "empty.duckdb")).ensure_tables()
    paths = _render_read_only(tmp_path / "empty.duckdb", tmp_path / "empty")
    assert "The marts hold no rows yet" in paths[0].read_text()
    text = paths[1].read_text()
    assert "card-error" not in text and "No rows for this selection." in text
    assert '<div class="number" data-column="total_cost_usd" data-value="">\u2014</div>' in text
    DuckDBBackend(DuckDBConfig(tmp_path / "bare.duckdb")).ensure_tables(["marts.exec_monthly"])
    text = _render_read_only(tmp_path / "bare.duckdb", tmp_path / "bare")[1].read_text()
    assert text.count('class="error card-error"') == 2  # cost by tool and freshness read missing tables


def test_default_output_is_the_project_report_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AI_USAGE_HOME", str(tmp_path))
    assert default_report_dir() == tmp_path / ".ai_usage" / "report"


def test_command_line_renders_with_filters_and_refuses_bad_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from ai_usage.dashboards.__main__ import main

    path = dd.populated_warehouse(tmp_path / "w.duckdb")
    monkeypatch.setenv("AI_USAGE_WAREHOUSE", f"duckdb:///{path}")
    assert main(["render", "--out", str(tmp_path / "out"), "--filter", "team=Payments",
                 "--filter", "tool=cursor"]) == 0
    assert (tmp_path / "out" / "cost_allocation.html").is_file()
    assert "<b>Team:</b> Payments" in (tmp_path / "out" / "cost_allocation.html").read_text()
    assert main(["render", "--out", str(tmp_path / "bad"), "--filter", "tool=copilot"]) == 1
    assert "is not one of" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main(["validate"]) == 0 and '"executive": 12' in capsys.readouterr().out
    assert main(["sql", "cost_allocation", "allocation", "--engine", "bigquery"]) == 0
    assert "ai_usage_marts.monthly_cost_allocation" in capsys.readouterr().out
