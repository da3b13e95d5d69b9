"""Every card SQL file of include/dashboards: parsed as BigQuery, executed on DuckDB against a warehouse
created from the real contracts (empty, then with marts rows), with and without every filter, and run the
way Metabase on DuckDB would run it; then what key cards compute, checked against the rows themselves."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ai_usage.dashboards.local import card_values, run_card
from ai_usage.dashboards.spec import Card, dashboards_dir, load_specs
from ai_usage.settings import DuckDBConfig
from ai_usage.warehouse.duckdb_backend import DuckDBBackend
from tests import _dashboards_data as dd

SPECS = load_specs()
BY_FILE: dict[str, Card] = {}
for _d in SPECS.dashboards:
    for _c in _d.cards:
        BY_FILE.setdefault(_c.sql_path, _c)
ALL_FILTERS: dict[str, Any] = {
    "date_from": date(2025, 2, 1), "date_to": date(2025, 3, 31), "team": "Platform", "cost_center": "CC-100",
    "tool": "cursor", "product": "cursor",
}


def _read_only(path: Path) -> Iterator[DuckDBBackend]:
    """A read-only backend; an open connection keeps DuckDB's instance (and file) cached between queries."""
    keep = duckdb.connect(str(path), read_only=True)
    try:
        yield DuckDBBackend(DuckDBConfig(path), read_only=True)
    finally:
        keep.close()


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBBackend]:
    path = tmp_path_factory.mktemp("empty") / "w.duckdb"
    DuckDBBackend(DuckDBConfig(path)).ensure_tables()
    yield from _read_only(path)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBBackend]:
    yield from _read_only(dd.populated_warehouse(tmp_path_factory.mktemp("full") / "w.duckdb"))


def test_every_sql_file_is_used_by_a_card() -> None:
    files = {p.relative_to(dashboards_dir()).as_posix() for p in dashboards_dir().rglob("*.sql")}
    assert files == set(BY_FILE)
    assert len(files) >= 25


def _metabase_on_duckdb(text: str, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What Metabase does with a native query: drop [[ ]] clauses lacking a value, bind the rest."""
    params: dict[str, Any] = {}

    def clause(match: re.Match[str]) -> str:
        tag = re.search(r"\{\{\s*(\w+)\s*\}\}", match.group(1)).group(1)  # type: ignore[union-attr]
        if values.get(tag) is None:
            return ""
        params[tag] = values[tag]
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", r"$\1", match.group(1))

    return re.sub(r"\[\[(.*?)\]\]", clause, text, flags=re.S), params


@pytest.mark.parametrize("sql_path", sorted(BY_FILE))
def test_card_sql_runs_on_duckdb(sql_path: str, empty: DuckDBBackend, full: DuckDBBackend) -> None:
    card = BY_FILE[sql_path]
    everything = {tag: ALL_FILTERS[tag] for tag in card.template.tags}
    sql, params = card.template.local_query(everything)
    empty.query(sql, params)
    # On the marts rows, with and without filters; Metabase on DuckDB (the translated template with its
    # own substitution of the clauses) must give the same answer.
    for values in ({}, everything):
        sql, params = card.template.local_query(values)
        expected = full.query(sql, params)
        mb_sql, mb_params = _metabase_on_duckdb(card.template.for_duckdb(), values)
        con = duckdb.connect(str(full.path), read_only=True)
        try:
            con.execute("SET TimeZone = 'UTC'")
            cursor = con.execute(mb_sql, mb_params or None)
            names = [d[0] for d in cursor.description]
            got = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            con.close()
        assert [{k: v for k, v in r.items() if k != "last_checked_at"} for r in got] == \
               [{k: v for k, v in r.items() if k != "last_checked_at"} for r in expected], sql_path


# --------------------------------------------------------------------------- what the cards compute

def card(dashboard: str, key: str) -> Card:
    return SPECS.dashboard(dashboard).card(key)


def run(wh: DuckDBBackend, dashboard: str, key: str, **filters: Any) -> list[dict[str, Any]]:
    result = run_card(wh, card(dashboard, key), filters)
    assert result.error is None, result.error
    return result.rows


def alloc() -> list[dict[str, Any]]:
    return dd.data().rows("marts.monthly_cost_allocation")


def test_cost_by_month_and_tool_sums_the_allocation(full: DuckDBBackend) -> None:
    want: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for r in alloc():
        want[(r["month"], r["tool"])] += r["amount_usd"]
    rows = run(full, "executive", "cost_by_month_tool")
    assert {(r["month"], r["tool"]): r["amount_usd"] for r in rows} == want
    platform = run(full, "executive", "cost_by_month_tool", team="Platform", date_from=date(2025, 2, 15))
    want_platform: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for r in alloc():
        if r["team"] == "Platform" and r["month"] >= date(2025, 2, 1):  # February overlaps the range
            want_platform[(r["month"], r["tool"])] += r["amount_usd"]
    assert {(r["month"], r["tool"]): r["amount_usd"] for r in platform} == want_platform


def test_allocation_table_splits_seat_fees_and_usage_exactly(full: DuckDBBackend) -> None:
    rows = run(full, "cost_allocation", "allocation")
    assert sum(r["total_usd"] for r in rows) == sum(r["amount_usd"] for r in alloc())
    assert sum(r["seat_fee_usd"] for r in rows) == sum(r["amount_usd"] for r in alloc() if r["cost_kind"] == "seat_fee")
    assert all(r["seat_fee_usd"] + r["usage_billed_usd"] == r["total_usd"] for r in rows)
    assert any(r["team"] == "Unattributed" and r["cost_center"] is None for r in rows)


def test_unattributed_share_and_keys(full: DuckDBBackend) -> None:
    (totals,) = run(full, "cost_allocation", "total_billed")
    unattributed = sum(r["amount_usd"] for r in alloc() if r["team"] == "Unattributed")
    total = sum(r["amount_usd"] for r in alloc())
    assert totals["unattributed_usd"] == unattributed > 0
    assert totals["unattributed_share"] == pytest.approx(float(unattributed) / float(total))
    keys = run(full, "cost_allocation", "unattributed_keys", tool="claude_code")
    assert {(r["api_key_id"], r["api_key_name"]) for r in keys} == {(dd.UNOWNED_KEY, "ci-bot")} and len(keys) == 3
    assert run(full, "cost_allocation", "unattributed_keys", tool="cursor") == []


def test_idle_seats_and_reconciliation(full: DuckDBBackend) -> None:
    (idle,) = run(full, "cost_allocation", "idle_seat_cost")
    assert idle["idle_cost_usd"] == sum(r["idle_cost_usd"] for r in dd.data().rows("marts.seat_utilization")) > 0
    failed = [r for r in run(full, "cost_allocation", "reconciliation") if r["status"] == "failed"]
    assert [(r["month"], r["tool"], r["difference_usd"]) for r in failed] == [
        (date(2025, 2, 1), "claude_code", Decimal("-1.5"))]


def test_executive_latest_month_is_the_partial_one(full: DuckDBBackend) -> None:
    (latest,) = run(full, "executive", "total_cost")
    exec_rows = dd.data().rows("marts.exec_monthly")
    assert latest["month"] == date(2025, 3, 1) and latest["is_partial_month"] is True
    assert latest["total_cost_usd"] == exec_rows[-1]["total_cost_usd"]
    (february,) = run(full, "executive", "total_cost", date_to=date(2025, 2, 28))
    assert february["month"] == date(2025, 2, 1) and february["is_partial_month"] is False


def test_missing_days_are_gaps_never_zero_and_provisional_days_are_flagged(full: DuckDBBackend) -> None:
    rows = {r["usage_date"]: r for r in run(full, "cursor_productivity", "daily_active_users")}
    missing = rows[dd.CURSOR_MISSING]
    assert missing["coverage"] == "missing"
    assert missing["active_users"] is None and missing["requests"] is None
    assert {d for d, r in rows.items() if r["coverage"] == "provisional"} == {
        date(2025, 3, 18), date(2025, 3, 19), date(2025, 3, 20)}
    usage = dd.data().rows("marts.daily_tool_usage")
    day = date(2025, 1, 7)
    assert rows[day]["active_users"] == len({r["email"] for r in usage if r["tool"] == "cursor"
                                             and r["usage_date"] == day and r["is_active"]})
    claude = {r["usage_date"]: r for r in run(full, "claude_productivity", "daily_sessions")}
    assert claude[dd.CLAUDE_MISSING]["sessions"] is None and claude[dd.CLAUDE_MISSING]["coverage"] == "missing"
    # a final day on which the selected team did nothing is a real zero, not a gap
    team_rows = run(full, "claude_productivity", "daily_sessions", team="Data")
    active_days = {r["usage_date"] for r in usage if r["tool"] == "claude_code" and r["team"] == "Data"}
    zero_days = [r for r in team_rows if r["usage_date"] not in active_days and r["coverage"] == "final"]
    assert zero_days and all(r["sessions"] == 0 for r in zero_days)


def test_freshness_card_lists_missing_and_provisional_days(full: DuckDBBackend) -> None:
    rows = {r["source"]: r for r in run(full, "executive", "data_freshness")}
    cursor = rows["cursor_daily_usage"]
    assert (cursor["status"], cursor["missing_days"], cursor["missing_dates"]) == ("missing", 1, "2025-02-10")
    assert cursor["provisional_dates"] == "2025-03-18, 2025-03-19, 2025-03-20"
    assert cursor["last_final_date"] == date(2025, 3, 17) and cursor["last_data_date"] == date(2025, 3, 20)
    claude = {r["source"] for r in run_card(full, card("claude_productivity", "data_freshness"), {}).rows}
    assert claude == {"claude_code_usage", "claude_ai_usage"}
    after = run(full, "executive", "data_freshness", date_from=date(2025, 3, 4), tool="claude_code")
    assert [(r["source"], r["status"], r["missing_days"]) for r in after] == [
        ("claude_code_usage", "provisional", 0)]


def test_per_person_and_models(full: DuckDBBackend) -> None:
    people = run(full, "claude_productivity", "per_person")
    bot = next(r for r in people if r["person"] == "ci-bot")
    assert bot["team"] == "Unattributed"
    usage = dd.data().rows("marts.daily_tool_usage")
    ada = next(r for r in people if r["person"] == "Ada Example")
    assert ada["sessions"] == sum(r["sessions"] for r in usage if r["tool"] == "claude_code"
                                  and r["email"] == "ada@example.com")
    kinds = {r["request_kind"]: r["requests"] for r in run(full, "cursor_productivity", "requests_by_kind")}
    assert set(kinds) == {"composer", "chat", "agent", "cmdk"}
    assert sum(kinds.values()) == sum(r["requests"] for r in usage if r["tool"] == "cursor")


def test_card_values_use_honoured_filters_and_defaults() -> None:
    freshness = card("cursor_productivity", "data_freshness")
    values = card_values(freshness, {"team": "Platform", "date_from": date(2025, 1, 1), "tool": "claude_ai"})
    assert values == {"date_from": date(2025, 1, 1), "date_to": None, "tool": None, "product": "cursor"}


def test_sql_files_open_with_a_comment() -> None:
    for path in sorted(Path(dashboards_dir()).rglob("*.sql")):
        first = path.read_text().splitlines()[0]
        assert re.match(r"^-- \S.*\S$", first), path
