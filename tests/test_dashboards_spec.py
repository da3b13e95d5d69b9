"""Dashboard specs (include/dashboards): what the four dashboards contain, the strict loader, the grid
layout, and the one-SQL-text template convention shared by Metabase and the local report."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from ai_usage.dashboards.spec import GRID_WIDTH, SpecError, dashboards_dir, load_specs
from ai_usage.dashboards.template import TemplateError, parse_template

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def specs():
    return load_specs()


def test_the_four_dashboards_in_order(specs) -> None:
    assert [d.key for d in specs.dashboards] == [
        "executive", "cost_allocation", "cursor_productivity", "claude_productivity"]
    assert {d.key: d.collection for d in specs.dashboards} == {
        "executive": "leadership", "cost_allocation": "finance",
        "cursor_productivity": "leadership", "claude_productivity": "leadership"}


def _columns(card) -> set[str]:
    return set(card.template.tree.named_selects)


def test_cards_cover_what_each_dashboard_must_answer(specs) -> None:
    shown = {d.key: {col for c in d.cards for col in ([c.value] if c.value else [*c.y, c.x or ""]) + (
        sorted(_columns(c)) if c.visual == "table" else [])} for d in specs.dashboards}
    assert {"total_cost_usd", "active_users", "adoption_rate", "cost_per_active_user_usd", "cost_change_pct",
            "projected_month_end_cost_usd", "amount_usd"} <= shown["executive"]
    assert {"seat_fee_usd", "usage_billed_usd", "unattributed_share", "idle_cost_usd", "difference_usd",
            "api_key_id"} <= shown["cost_allocation"]
    assert {"active_users", "requests", "tabs_accepted", "lines_accepted", "tab_acceptance_rate",
            "suggestion_acceptance_rate", "model", "request_kind", "team"} <= shown["cursor_productivity"]
    assert {"sessions", "lines_added", "commits", "pull_requests", "acceptance_rate", "input_tokens",
            "estimated_cost_usd", "person", "team", "editing_tool", "billed_usd"} <= shown["claude_productivity"]
    cost_by = next(c for c in specs.dashboard("executive").cards if c.key == "cost_by_month_tool")
    assert (cost_by.x, cost_by.series, cost_by.stacked) == ("month", "tool", True)


def test_every_dashboard_shows_freshness_and_coverage(specs) -> None:
    for dashboard in specs.dashboards:
        card = dashboard.card("data_freshness")
        assert {"status", "provisional_dates", "missing_dates", "last_final_date"} <= _columns(card)
        assert card.template.tables == {"marts.data_freshness"}
    assert specs.dashboard("cursor_productivity").card("data_freshness").defaults == {"product": "cursor"}
    assert specs.dashboard("claude_productivity").card("data_freshness").defaults == {"product": "claude"}
    # daily series flag coverage per day
    for key in ("cursor_productivity", "claude_productivity"):
        daily = [c for c in specs.dashboard(key).cards if c.visual == "line"]
        assert daily and all("coverage" in _columns(c) for c in daily)


def test_card_sql_reads_the_marts_only(specs) -> None:
    for dashboard in specs.dashboards:
        for card in dashboard.cards:
            assert card.template.tables, card.key
            assert {t.split(".")[0] for t in card.template.tables} == {"marts"}, (dashboard.key, card.key)


def test_visual_columns_exist_in_the_query(specs) -> None:
    for dashboard in specs.dashboards:
        for card in dashboard.cards:
            wanted = {c for c in (card.value, card.x, card.series, *card.y) if c} | set(card.formats)
            assert wanted <= _columns(card), (dashboard.key, card.key, wanted - _columns(card))


def test_layout_fits_the_grid_without_overlap(specs) -> None:
    for dashboard in specs.dashboards:
        taken: set[tuple[int, int]] = set()
        for card in dashboard.cards:
            place = dashboard.layout[card.key]
            assert 0 <= place.col and place.col + place.width <= GRID_WIDTH
            cells = {(r, c) for r in range(place.row, place.row + place.height)
                     for c in range(place.col, place.col + place.width)}
            assert not cells & taken, (dashboard.key, card.key)
            taken |= cells


def test_dashboard_filters_are_the_union_of_what_cards_honour(specs) -> None:
    for dashboard in specs.dashboards:
        assert set(dashboard.filters) == {f for c in dashboard.cards for f in c.filters}
    assert specs.dashboard("cost_allocation").filters == ("date_from", "date_to", "team", "cost_center", "tool")


def test_metabase_config(specs) -> None:
    mb = specs.metabase
    assert [g.name for g in mb.groups] == ["Finance", "Engineering Leadership", "Admins"]
    for group in mb.groups[:2]:
        assert group.data["create_queries"] == "query-builder" and group.data["download"] == "full"
    assert mb.all_users.data["create_queries"] == "no" and set(mb.all_users.collections.values()) == {"none"}
    (sub,) = mb.subscriptions
    assert (sub.dashboard, sub.group, sub.schedule["type"], set(sub.attachments)) == (
        "cost_allocation", "finance", "monthly", {"csv", "xlsx"})


# --------------------------------------------------------------------------- strict loading


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "dashboards"
    shutil.copytree(dashboards_dir(), target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("edit, message", [
    (("executive/monthly.sql", "FROM marts.exec_monthly", "FROM raw.cursor_spend"), r"reads \['raw.cursor_spend'\]"),
    (("executive/monthly.sql", "FROM marts.exec_monthly", "FROM ops.source_coverage"), "reads the marts only"),
    (("executive/monthly.sql", "FROM marts.exec_monthly", "FROM ref.people JOIN marts.exec_monthly ON TRUE"),
     r"ref.people"),
    (("executive/monthly.sql", "[[AND month <= CAST({{date_to}} AS DATE)]]", "AND month <= {{date_to}}"),
     "outside an optional"),
    (("executive/monthly.sql", "[[AND month <= CAST({{date_to}} AS DATE)]]",
      "[[AND LAST_DAY(month) <= CAST({{date_to}} AS DATE)]]"), "must read 'AND <column>"),
    (("executive.yaml", "    sql: executive/latest_month.sql\n", "    sql: executive/latest_month.sql\n    colour: red\n"),
     r"unknown key\(s\) \['colour'\]"),
    (("executive.yaml", "    filters: [date_from, date_to]\n    width: 4\n  - key: projected_cost",
      "    filters: [date_from, date_to, team]\n    width: 4\n  - key: projected_cost"), "no \\[\\[ \\]\\] clause"),
    (("executive.yaml", "filters: [date_from, date_to, team, cost_center, tool]\ncards",
      "filters: [date_from, date_to, team, cost_center, tool, product]\ncards"), "wired to no card"),
    (("cost_allocation.yaml", "    visual: number\n    value: total_usd", "    visual: line\n    value: total_usd"),
     "a line card takes"),
    (("filters.yaml", "  type: text\n  values: [cursor, claude_code, claude_ai]", "  type: number"),
     "type must be one of"),
    (("metabase.yaml", "create_queries: query-builder, download: full", "create_queries: sql, download: full"),
     "is not one of"),
])
def test_invalid_specs_are_refused_with_the_file_named(copy: Path, edit: tuple[str, str, str], message: str) -> None:
    name, old, new = edit
    _edit(copy / name, old, new)
    with pytest.raises(SpecError, match=message):
        load_specs(copy)


def test_a_card_wider_than_the_grid_is_refused(copy: Path) -> None:
    _edit(copy / "executive.yaml", "    width: 4\n", "    width: 25\n")
    with pytest.raises(SpecError, match="width must be 1-24"):
        load_specs(copy)


# --------------------------------------------------------------------------- the template convention

SQL = """-- Example.
SELECT month, 'marts.not_a_table' AS label
FROM marts.exec_monthly AS m
JOIN marts.seat_utilization AS s USING (month)
WHERE TRUE
  [[AND m.month >= CAST({{date_from}} AS DATE)]]
  [[AND s.tool = {{ tool }}]]
"""


def test_local_query_keeps_clauses_with_values_and_binds_them() -> None:
    t = parse_template(SQL)
    assert t.tags == ("date_from", "tool")
    sql, params = t.local_query({"date_from": date(2025, 2, 1), "tool": None})
    assert params == {"date_from": date(2025, 2, 1)}
    assert "CAST(@date_from AS DATE)" in sql and "tool" not in sql.split("WHERE")[1]
    sql, params = t.local_query({})
    assert params == {} and "@" not in sql and "[[" not in sql


def test_for_bigquery_repoints_table_references_only() -> None:
    text = parse_template(SQL).for_bigquery(lambda d: f"acme_{d}")
    assert "FROM acme_marts.exec_monthly AS m" in text and "JOIN acme_marts.seat_utilization" in text
    assert "'marts.not_a_table'" in text           # a string literal is left alone
    assert "[[AND s.tool = {{ tool }}]]" in text     # clauses untouched, for Metabase
    parsed = sqlglot.parse_one(text.replace("[[", "").replace("]]", "").replace("{{date_from}}", "@a")
                               .replace("{{ tool }}", "@b"), read="bigquery")
    assert {t.db for t in parsed.find_all(exp.Table)} == {"acme_marts"}


def test_for_duckdb_translates_around_the_clauses() -> None:
    text = parse_template("-- x.\nSELECT DATE_TRUNC(month, MONTH) AS m, SAFE_DIVIDE(1, 0) AS r "
                          "FROM marts.exec_monthly WHERE TRUE [[AND month >= CAST({{date_from}} AS DATE)]]"
                          ).for_duckdb()
    assert "[[AND month >= CAST({{date_from}} AS DATE)]]" in text
    assert "SAFE_DIVIDE" not in text and "CASE WHEN" in text


@pytest.mark.parametrize("bad, message", [
    ("SELECT 1 FROM marts.exec_monthly WHERE [[AND a = {{x}} AND b = {{y}}]]", "exactly one tag"),
    ("SELECT 1 FROM marts.exec_monthly WHERE TRUE [[AND a = {{x}}", "unbalanced"),
    ("SELECT 1 FROM `marts.exec_monthly`", "backtick"),
    ("SELECT 1 FROM marts.exec_monthly WHERE TRUE [[OR a = {{x}}]]", "must read"),
    ("SELECT FROM WHERE", "does not parse"),
    ("DELETE FROM marts.exec_monthly WHERE TRUE", "must be a query"),
])
def test_template_errors(bad: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        parse_template(bad)
