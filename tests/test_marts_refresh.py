"""The marts on the sandbox organisation: every figure equals an independent Python computation from the
ground truth (tests/_marts_truth.py), allocations add up exactly, refreshes are idempotent and local to
the touched months, and a missing day is missing, never zero."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ai_usage import attribution, marts
from ai_usage.quality.completeness import check_coverage
from ai_usage.quality.reconciliation import reconcile
from ai_usage.settings import DuckDBConfig
from ai_usage.warehouse.duckdb_backend import DuckDBBackend
from sandbox.org import Organisation
from tests._marts_truth import (
    Expected,
    Truth,
    allocation_key,
    breakdown_key,
    daily_key,
    load_truth,
    month_end,
    month_of,
    without_lineage,
)

TODAY = datetime.now(UTC).date()


@pytest.fixture(scope="module")
def truth() -> Truth:
    return Truth.of(Organisation.generate(seed=7, people=30, days=75))


@pytest.fixture(scope="module")
def months(truth: Truth) -> list[date]:
    return sorted({month_of(truth.org.start + timedelta(days=i)) for i in range(truth.org.days)})


@pytest.fixture(scope="module")
def expected(truth: Truth) -> Expected:
    return Expected(truth, as_of=TODAY)


def _warehouse(path: Path, truth: Truth) -> DuckDBBackend:
    wh = DuckDBBackend(DuckDBConfig(path))
    load_truth(wh, truth)
    return wh


def _rebuild_all(wh: DuckDBBackend, truth: Truth, run_id: str) -> dict:
    plan = marts.plan_from_conf({"start": truth.org.start.isoformat(), "end": truth.org.end.isoformat()},
                                today=TODAY)
    return marts.refresh(wh, plan, run_id=run_id, now=datetime.now(UTC))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, truth: Truth) -> DuckDBBackend:
    """A warehouse holding the truth, with every mart rebuilt once (read-only for the tests using it)."""
    wh = _warehouse(tmp_path_factory.mktemp("marts") / "built.duckdb", truth)
    _rebuild_all(wh, truth, "run-1")
    return wh


def mart(wh: DuckDBBackend, table: str) -> list[dict]:
    return without_lineage(wh.query(f"SELECT * FROM {table}"))


def test_daily_tool_usage_equals_the_independent_computation(built: DuckDBBackend, expected: Expected) -> None:
    got = sorted(mart(built, "marts.daily_tool_usage"), key=daily_key)
    want = expected.daily()
    assert len(got) == len(want) > 1000
    assert {r["tool"] for r in got} == {"cursor", "claude_code"}
    assert got == want  # every column of every row


def test_daily_usage_breakdown_equals_the_independent_computation(built: DuckDBBackend, expected: Expected) -> None:
    got = sorted(mart(built, "marts.daily_usage_breakdown"), key=breakdown_key)
    want = expected.breakdown()
    assert {(r["tool"], r["breakdown"]) for r in want} == {
        ("cursor", "request_kind"), ("cursor", "billing_kind"), ("cursor", "model"), ("claude_code", "model"),
        ("claude_code", "tool_action"), ("claude_ai", "model")}
    assert len(got) == len(want) > 2000
    assert got == want


def test_freshness_and_reconciliation_status_mirror_ops(built: DuckDBBackend, truth: Truth, months: list[date]) -> None:
    freshness = built.query("SELECT source, tool, status, coverage_date FROM marts.data_freshness")
    want = {(c["source"], c["status"], c["coverage_date"]) for c in truth.coverage}  # the rebuild's months: all
    assert {(r["source"], r["status"], r["coverage_date"]) for r in freshness} == want
    assert {(r["source"], r["tool"]) for r in freshness} == {
        ("cursor_daily_usage", "cursor"), ("cursor_usage_events", "cursor"), ("claude_code_usage", "claude_code"),
        ("anthropic_costs", "claude_code")}
    results = reconcile(built, months)
    from ai_usage.quality.reconciliation import write_status

    write_status(built, results, months, run_id="run-1", checked_at=datetime.now(UTC))
    status = built.query("SELECT month, tool, check_name, status, billed_usd, allocated_usd, difference_usd "
                         "FROM marts.reconciliation_status WHERE check_name = 'allocated_equals_billed'")
    assert len(status) == 3 * len(months)  # every tool, every month (0 = 0 where nothing was billed)
    assert all(r["status"] == "passed" and r["difference_usd"] == 0 and r["billed_usd"] == r["allocated_usd"]
               for r in status)


def test_monthly_cost_allocation_equals_the_independent_computation(
    built: DuckDBBackend, expected: Expected, months: list[date],
) -> None:
    got = sorted(mart(built, "marts.monthly_cost_allocation"), key=allocation_key)
    want = sorted((r for m in months for r in expected.allocation(m)), key=allocation_key)
    assert {(r["tool"], r["cost_kind"]) for r in want} == {
        (t, k) for t in ("cursor", "claude_code", "claude_ai") for k in ("usage_billed", "seat_fee")
    } - {("claude_code", "seat_fee")}
    assert got == want


def test_seat_utilization_and_exec_monthly_equal_the_independent_computation(
    built: DuckDBBackend, expected: Expected, months: list[date],
) -> None:
    got_seats = sorted(mart(built, "marts.seat_utilization"), key=lambda r: (r["month"], r["tool"]))
    assert got_seats == [r for m in months for r in expected.seat_utilization(m)]
    assert any(r["seats_idle"] > 0 and r["idle_cost_usd"] > 0 for r in got_seats)  # the sandbox has idle seats
    got = sorted(mart(built, "marts.exec_monthly"), key=lambda r: r["month"])
    want = expected.exec_monthly(months)
    for g, w in zip(got, want, strict=True):
        for key in ("cost_change_pct", "adoption_rate", "seat_adoption_rate"):  # FLOAT64: computed in floating point
            assert g.pop(key) == pytest.approx(w.pop(key)), key
        assert g == w
    assert got[-1]["is_partial_month"] and got[-1]["projected_month_end_cost_usd"] >= got[-1]["total_cost_usd"]


def test_allocation_adds_up_exactly_to_the_billed_totals(built: DuckDBBackend, truth: Truth, months: list[date]) -> None:
    """Per month and tool, usage_billed = what raw says was billed (summed here from the truth rows)."""
    billed: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for c in truth.costs:
        if c["platform"] == "claude_code":
            billed[(month_of(c["cost_date"]), "claude_code")] += c["amount_usd"]
    for e in truth.events:
        if e["kind"] == "Usage-based" and e["is_chargeable"] is not False:
            billed[(month_of(e["event_date"]), "cursor")] += e["charged_usd"]
    for m in months:
        export = Expected(truth, as_of=TODAY).ai_rows(m)
        if export:
            billed[(m, "claude_ai")] += sum((r["net_spend_usd"] for r in export), Decimal(0))
    allocated = {(r["month"], r["tool"]): r["amount_usd"] for r in built.query(
        "SELECT month, tool, SUM(amount_usd) AS amount_usd FROM marts.monthly_cost_allocation "
        "WHERE cost_kind = 'usage_billed' GROUP BY month, tool")}
    assert len(billed) >= 8
    assert allocated == dict(billed)
    results = reconcile(built, months)
    exact = [r for r in results if r.check_name.startswith(("allocated_equals_billed", "seat_fees_equal"))]
    assert len(exact) >= 14 and all(r.status == "passed" for r in exact)
    # the Claude Code estimates are within 5 % of the bill, never equal to it
    estimates = [r for r in results if r.check_name.startswith("claude_code_estimates")]
    assert estimates and all(r.status == "passed" and r.details["difference_usd"] != 0 for r in estimates)


def test_unmapped_keys_are_unattributed_never_dropped(built: DuckDBBackend, truth: Truth) -> None:
    owned = {o["api_key_id"] for o in truth.owners}
    unowned_names = {k["name"] for k in truth.keys if k["api_key_id"] not in owned}
    rows = built.query("SELECT api_key_name, api_key_id, team, allocation_basis, amount_usd "
                       "FROM marts.monthly_cost_allocation WHERE tool = 'claude_code' AND team = 'Unattributed'")
    named = {r["api_key_name"] for r in rows}
    assert unowned_names & named  # keys nobody owns in the Sheet
    assert any(r["api_key_id"] is None and r["api_key_name"] for r in rows)  # a key renamed since: no id by name
    assert all(r["allocation_basis"] == "unattributed" and r["amount_usd"] > 0 for r in rows)


def test_a_second_refresh_changes_nothing(tmp_path: Path, truth: Truth) -> None:
    wh = _warehouse(tmp_path / "twice.duckdb", truth)
    _rebuild_all(wh, truth, "run-1")
    first = {t: mart(wh, t) for t in marts.MART_TABLES}
    _rebuild_all(wh, truth, "run-2")
    assert {t: mart(wh, t) for t in marts.MART_TABLES} == first
    assert {r["_run_id"] for r in wh.query("SELECT _run_id FROM marts.monthly_cost_allocation")} == {"run-2"}


def test_a_one_day_ingest_refreshes_only_its_month(tmp_path: Path, truth: Truth, months: list[date]) -> None:
    wh = _warehouse(tmp_path / "one_day.duckdb", truth)
    _rebuild_all(wh, truth, "run-1")
    day = months[1] + timedelta(days=9)
    events = [{"table": t, "start": day.isoformat(), "end": day.isoformat(), "detailed": True, "rows": 5,
               "source": "ingest_cursor/r"} for t in ("raw.cursor_daily_usage", "raw.cursor_usage_events")]
    events.append({"table": "raw.cursor_spend", "start": TODAY.isoformat(), "end": TODAY.isoformat(),
                   "detailed": True, "rows": 5, "source": "ingest_cursor/r"})
    events.append({"table": "raw.cursor_daily_usage", "detailed": False, "source": "ingest_cursor/r"})  # no detail
    plan = marts.plan_from_events(events, today=TODAY)
    assert plan.months == (months[1],) and plan.days == ((day, day),)
    marts.refresh(wh, plan, run_id="run-2", now=datetime.now(UTC))
    runs = wh.query("SELECT month, _run_id FROM marts.monthly_cost_allocation GROUP BY month, _run_id")
    assert {(r["month"], r["_run_id"]) for r in runs} == {(m, "run-2" if m == months[1] else "run-1") for m in months}
    daily = wh.query("SELECT usage_date, _run_id FROM marts.daily_tool_usage WHERE _run_id = 'run-2' "
                     "GROUP BY usage_date, _run_id")
    assert [r["usage_date"] for r in daily] == [day]


def test_a_missing_day_is_missing_never_zero(tmp_path: Path, truth: Truth) -> None:
    wh = _warehouse(tmp_path / "gap.duckdb", truth)
    gap = truth.org.end - timedelta(days=12)
    for table in ("raw.cursor_daily_usage", "raw.cursor_usage_events", "raw.claude_code_usage"):
        wh.replace_partitions(table, [], [gap])  # the vendor never delivered the day
    wh.replace_where("ops.source_coverage", [], {"coverage_date": [gap]})
    now = datetime.now(UTC)
    results = check_coverage(wh, month_of(gap), TODAY - timedelta(days=1), run_id="run-1", now=now)
    _rebuild_all(wh, truth, "run-1")

    coverage = wh.query("SELECT source, status, row_count FROM ops.source_coverage WHERE coverage_date = @d",
                        {"d": gap})
    assert sorted((r["source"], r["status"], r["row_count"]) for r in coverage) == [
        ("anthropic_costs", "missing", 0), ("claude_code_usage", "missing", 0),
        ("cursor_daily_usage", "missing", 0), ("cursor_usage_events", "missing", 0),
    ]
    assert {r.table_name for r in results if r.failed} == {
        "raw.anthropic_costs", "raw.claude_code_usage", "raw.cursor_daily_usage", "raw.cursor_usage_events"}
    assert all(r.level == "warning" and gap in r.details["missing"] for r in results if r.failed)
    assert wh.query("SELECT COUNT(*) AS n FROM marts.daily_tool_usage WHERE usage_date = @d", {"d": gap}) == [{"n": 0}]
    assert wh.query("SELECT COUNT(*) AS n FROM marts.daily_tool_usage WHERE usage_date = @d",
                    {"d": gap + timedelta(days=1)})[0]["n"] > 0
    exec_row = wh.query("SELECT is_partial_month, data_through_date FROM marts.exec_monthly WHERE month = @m",
                        {"m": month_of(gap)})[0]
    assert exec_row == {"is_partial_month": True,
                        "data_through_date": gap - timedelta(days=1) if gap.day > 1 else None}


def test_a_rebuild_range_covers_whole_months_and_only_complete_days() -> None:
    plan = marts.plan_from_conf({"start": "2026-01-20", "end": "2026-03-03"}, today=date(2026, 3, 2))
    assert plan.months == (date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1))
    assert plan.days == ((date(2026, 1, 20), date(2026, 3, 1)),)
    assert plan.days_of(date(2026, 2, 1)) == [(date(2026, 2, 1), date(2026, 2, 28))]
    assert plan.tables["ref.people"] is None and plan.tables["raw.anthropic_costs"] == (plan.days[0],)
    assert marts.RefreshPlan.from_dict(plan.to_dict()) == plan


def test_sheet_changes_rebuild_recent_months_and_billing_days_rebuild_months_only() -> None:
    today = date(2026, 3, 10)
    plan = marts.plan_from_events([
        {"table": "ref.people", "start": None, "end": None, "detailed": True, "rows": 40},
        {"table": "raw.anthropic_costs", "start": "2025-12-30", "end": "2026-01-02", "detailed": True, "rows": 9},
    ], today=today)
    assert plan.months == (date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1))
    assert plan.days == ((date(2026, 2, 1), date(2026, 3, 9)),)  # attribution of the recent months' days
    assert plan.tables["ref.people"] is None and plan.tables["ref.seat_prices"] is None
    undetailed = marts.plan_from_events([{"table": "raw.claude_code_usage", "detailed": False}], today=today)
    assert undetailed.days == ((date(2026, 3, 3), date(2026, 3, 9)),)  # says nothing: the last week


def test_split_is_exact_for_credits_and_one_nano_dollar(tmp_path: Path) -> None:
    """Three equal estimates share 10 nano-dollars as 4/3/3 and a credit of -10 as -4/-3/-3 — with an empty
    ref.attribution, the shape that made DuckDB 2.0.1's statistics propagation drop every part."""
    wh = DuckDBBackend(DuckDBConfig(tmp_path / "tiny.duckdb"))
    wh.ensure_tables()
    now = datetime.now(UTC)
    lineage = {"_ingested_at": now, "_run_id": "r"}
    day = date(2026, 1, 5)
    wh.append_rows("raw.claude_code_usage", [
        {"usage_date": day, "actor_type": "user_actor", "actor_id": f"p{i}@example.com", "terminal_type": "vscode",
         "customer_type": "api", "estimated_cost_usd": Decimal("1.00"), **lineage} for i in range(3)])
    for amount, shares in ((Decimal("0.000000010"), [4, 3, 3]), (Decimal("-0.000000010"), [-4, -3, -3])):
        wh.replace_partitions("raw.anthropic_costs", [
            {"cost_date": day, "description": "x", "currency": "USD", "amount_usd": amount, "amount_cents_raw": "x",
             "platform": "claude_code", "platform_rule": "t", **lineage}], None)
        rows = wh.run_sql_file(marts.SQL[marts.ALLOCATION], {"month_start": day.replace(day=1),
                                                            "month_end": month_end(day.replace(day=1))})
        assert [r["amount_usd"] * 10**9 for r in rows] == shares
        assert [r["email"] for r in rows] == ["p0@example.com", "p1@example.com", "p2@example.com"]
        assert {r["team"] for r in rows} == {"Unattributed"}


def test_a_workspace_the_sheet_maps_as_a_whole_goes_to_its_owner(tmp_path: Path) -> None:
    """Developer-tooling cost of a workspace owned in the Sheet (by name, any case) is not split by estimates."""
    wh = DuckDBBackend(DuckDBConfig(tmp_path / "ws.duckdb"))
    wh.ensure_tables()
    lineage = {"_ingested_at": datetime.now(UTC), "_run_id": "r"}
    day = date(2026, 2, 3)

    def cost(workspace_id: str, name: str, amount: str) -> dict:
        return {"cost_date": day, "workspace_id": workspace_id, "workspace_name": name, "description": name,
                "currency": "USD", "amount_usd": Decimal(amount), "amount_cents_raw": "x", "platform": "claude_code",
                "platform_rule": "t", **lineage}

    wh.append_rows("raw.anthropic_costs", [cost("wrkspc_A", "Claude Code", "30.00"),
                                           cost("wrkspc_B", "Dev Tools", "12.34")])
    wh.append_rows("raw.claude_code_usage", [
        {"usage_date": day, "actor_type": "user_actor", "actor_id": "ann@example.com", "terminal_type": "vscode",
         "customer_type": "api", "estimated_cost_usd": Decimal("29.00"), **lineage}])
    wh.append_rows("ref.people", [{"email": "ann@example.com", "team": "Payments", "cost_center": "CC-1", **lineage}])
    wh.append_rows("ref.api_key_owners", [{"workspace": "dev tools", "team": "Platform", "cost_center": "CC-9",
                                           "owner_email": "lead@example.com", **lineage}])
    attribution.rebuild(wh, run_id="r")
    rows = wh.run_sql_file(marts.SQL[marts.ALLOCATION], {"month_start": date(2026, 2, 1),
                                                         "month_end": date(2026, 2, 28)})
    assert [(r["team"], r["email"], r["allocation_basis"], r["amount_usd"]) for r in rows] == [
        ("Payments", "ann@example.com", "estimate_share", Decimal("30.000000000")),
        ("Platform", "lead@example.com", "workspace_owner", Decimal("12.340000000")),
    ]


def test_a_bad_rebuild_conf_names_the_expected_form() -> None:
    with pytest.raises(marts.ConfigurationError, match='"start": "YYYY-MM-DD"'):
        marts.plan_for_run({"start": "last week"}, [], today=TODAY)
    with pytest.raises(marts.ConfigurationError, match="after end"):
        marts.plan_for_run({"start": "2026-02-02", "end": "2026-02-01"}, [], today=TODAY)
    default = marts.plan_for_run({}, [], today=date(2026, 3, 3))
    assert default.days == ((date(2026, 2, 24), date(2026, 3, 2)),) and "last week" in default.reason


def test_aggregates_survive_a_left_join_whose_right_side_is_empty(tmp_path: Path) -> None:
    """DuckDB 2.0.1 folds COALESCE(SUM(x), 0) to 0 after such a join unless the backend disables its
    statistics propagation; the marts SQL is full of this shape (ref.attribution may hold no e-mails)."""
    wh = DuckDBBackend(DuckDBConfig(tmp_path / "shape.duckdb"))
    wh.ensure_tables(["raw.claude_code_usage", "ref.attribution"])
    lineage = {"_ingested_at": datetime.now(UTC), "_run_id": "r"}
    wh.append_rows("raw.claude_code_usage", [
        {"usage_date": date(2026, 1, 5), "actor_type": "user_actor", "actor_id": "a@example.com",
         "terminal_type": "vscode", "customer_type": "api", "num_sessions": 3, **lineage}])
    rows = wh.query(
        "SELECT * FROM (SELECT u.actor_id, COALESCE(SUM(u.num_sessions), 0) AS n FROM raw.claude_code_usage AS u "
        "LEFT JOIN ref.attribution AS a ON a.subject_type = 'email' AND a.subject = u.actor_id "
        "GROUP BY u.actor_id) WHERE n > 0")
    assert rows == [{"actor_id": "a@example.com", "n": 3}]
