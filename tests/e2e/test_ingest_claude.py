"""ingest_claude end to end: the DAG through Airflow (`dag.test()`), real HTTP to the Anthropic simulator,
DuckDB; compared column by column with the synthetic organisation's ground truth."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ai_usage.warehouse import get_warehouse
from sandbox.airflow_env import DagRunFailed, run_dag
from sandbox.clock import SimClock
from sandbox.org import Organisation
from sandbox.stack import LocalStack
from sandbox.vendors import anthropic_truth as truth

pytestmark = pytest.mark.e2e

KEYS = {
    "raw.claude_code_usage": ("usage_date", "actor_type", "actor_id", "terminal_type", "customer_type"),
    "raw.anthropic_costs": ("cost_date", "workspace_id", "description", "cost_type", "model", "token_type",
                            "context_window", "service_tier", "inference_geo"),
    "raw.anthropic_messages_usage": ("usage_date", "api_key_id", "workspace_id", "model"),
    "raw.anthropic_api_keys": ("snapshot_date", "api_key_id"),
    "raw.anthropic_users": ("snapshot_date", "user_id"),
    "raw.anthropic_workspaces": ("snapshot_date", "workspace_id"),
}
SKIP = {"_ingested_at", "_run_id", "platform_rule"}  # the truth leaves the rule's name to the product


def norm(name: str, rows: list[dict]) -> list[dict]:
    out = [{k: v for k, v in r.items() if k not in SKIP} for r in rows]
    return sorted(out, key=lambda r: tuple("" if r.get(k) is None else str(r[k]) for k in KEYS[name]))


def table(name: str) -> list[dict]:
    with get_warehouse() as wh:
        return norm(name, wh.query(f"SELECT * FROM {name}"))


@pytest.fixture()
def org() -> Organisation:
    return Organisation.generate(seed=5, people=30, days=60)


@pytest.fixture()
def workspaces_setting(monkeypatch):
    # The organisation's Default Workspace holds only developer tooling (a personal Claude Code key).
    monkeypatch.setenv("AI_USAGE_CLAUDE_CODE_WORKSPACES", "Claude Code,Default Workspace")


def test_backfill_equals_ground_truth_and_rerun_changes_nothing(org, airflow_db, workspaces_setting) -> None:
    later = SimClock(datetime.now(UTC).replace(microsecond=0) + timedelta(days=5))  # every day final
    start, end = org.end - timedelta(days=29), org.end
    conf = {"start": start.isoformat(), "end": end.isoformat()}
    today = datetime.now(UTC).date()
    with LocalStack(org, ["anthropic"], clock=later):
        run_dag("ingest_claude", conf)
        expected = {
            "raw.claude_code_usage": truth.expected_claude_code(org, start, end),
            "raw.anthropic_costs": truth.expected_costs(org, start, end),
            "raw.anthropic_messages_usage": truth.expected_messages_usage(org, start, end),
            "raw.anthropic_api_keys": truth.expected_api_keys(org, today),
            "raw.anthropic_users": truth.expected_users(org, today),
            "raw.anthropic_workspaces": truth.expected_workspaces(org, today),
        }
        first = {name: table(name) for name in expected}
        for name, rows in expected.items():
            assert len(first[name]) == len(rows) > 0, name
            assert first[name] == norm(name, rows), name

        # Per-day billed totals equal the vendor's, and the platform split is the organisation's truth.
        with get_warehouse() as wh:
            per_day = wh.query("SELECT cost_date, SUM(amount_usd) AS usd FROM raw.anthropic_costs GROUP BY 1")
            rules = wh.query("SELECT DISTINCT platform, platform_rule FROM raw.anthropic_costs ORDER BY 1, 2")
        assert {r["cost_date"]: r["usd"] for r in per_day} == truth.billed_total_by_day(org, start, end)
        assert {r["platform"] for r in rules} == {"claude_code", "api"}
        assert {r["platform_rule"] for r in rules if r["platform"] == "claude_code"} == {
            "workspace_name:Claude Code", "workspace_name:Default Workspace"}

        run_dag("ingest_claude", conf)
        assert {name: table(name) for name in expected} == first


def test_estimates_stay_within_the_stated_tolerance_of_the_bill(org, airflow_db, workspaces_setting) -> None:
    later = SimClock(datetime.now(UTC).replace(microsecond=0) + timedelta(days=5))
    start, end = org.end - timedelta(days=13), org.end
    with LocalStack(org, ["anthropic"], clock=later):
        run_dag("ingest_claude", {"start": start.isoformat(), "end": end.isoformat()})
    with get_warehouse() as wh:
        est = wh.query("SELECT SUM(estimated_cost_usd) AS usd FROM raw.claude_code_usage WHERE customer_type = 'api'")
        billed = wh.query("SELECT SUM(amount_usd) AS usd FROM raw.anthropic_costs WHERE platform = 'claude_code'")
    estimate, bill = est[0]["usd"], billed[0]["usd"]
    assert bill > 0 and estimate != bill  # estimates are estimates: never the billed figure
    assert abs(estimate - bill) / bill <= truth.ESTIMATE_TOLERANCE
    assert isinstance(bill, Decimal)


def test_a_revised_cost_day_is_corrected_by_the_next_run(org, airflow_db, workspaces_setting) -> None:
    clock = SimClock(datetime.now(UTC).replace(microsecond=0))
    yesterday = org.end
    with LocalStack(org, ["anthropic"], clock=clock):
        run_dag("ingest_claude")  # scheduled-style: yesterday plus the lookbacks
        with get_warehouse() as wh:
            before = wh.query("SELECT SUM(amount_usd) AS usd FROM raw.anthropic_costs WHERE cost_date = @d",
                              {"d": yesterday})[0]["usd"]
            cov = wh.query("SELECT status FROM ops.source_coverage WHERE source = 'anthropic_costs' "
                           "AND coverage_date = @d", {"d": yesterday})
        final = truth.billed_total_by_day(org, yesterday, yesterday)[yesterday]
        assert before < final and cov == [{"status": "provisional"}]

        clock.set(clock.now() + timedelta(days=5))
        run_dag("ingest_claude")
        with get_warehouse() as wh:
            after = wh.query("SELECT SUM(amount_usd) AS usd FROM raw.anthropic_costs WHERE cost_date = @d",
                             {"d": yesterday})[0]["usd"]
        assert after == final


def test_a_revoked_admin_key_fails_cleanly(org, airflow_db, workspaces_setting, caplog) -> None:
    later = SimClock(datetime.now(UTC).replace(microsecond=0) + timedelta(days=5))
    with LocalStack(org, ["anthropic"], clock=later):
        conn = json.loads(os.environ["AIRFLOW_CONN_ANTHROPIC_ADMIN"])
        revoked = "sk-ant-admin01-" + "x" * 40
        os.environ["AIRFLOW_CONN_ANTHROPIC_ADMIN"] = json.dumps({**conn, "password": revoked})
        with pytest.raises(DagRunFailed):
            run_dag("ingest_claude", {"start": (org.end - timedelta(days=2)).isoformat(), "end": org.end.isoformat()})
    with get_warehouse() as wh:
        assert wh.query("SELECT count(*) AS n FROM raw.claude_code_usage") == [{"n": 0}]
        errors = wh.query("SELECT error FROM ops.ingestion_runs WHERE status = 'failed'")
    assert errors and all("anthropic_admin" in e["error"] and "401" in e["error"] for e in errors)
    assert revoked not in caplog.text


def test_a_multi_window_backfill_loses_and_doubles_no_day(airflow_db, workspaces_setting) -> None:
    """70 days: three cost-report windows of at most 31 buckets with exclusive ending_at, several pages each;
    the Claude Code report one day per call. A renamed key appears under the name valid on each day."""
    org = Organisation.generate(seed=5, people=30, days=100)
    renamed = next(k for k in org.api_keys if len(k.names) > 1)
    rename_day = renamed.names[1].valid_from
    end = min(org.end, rename_day + timedelta(days=20))
    start = end - timedelta(days=69)
    assert start < rename_day <= end
    later = SimClock(datetime.now(UTC).replace(microsecond=0) + timedelta(days=5))
    with LocalStack(org, ["anthropic"], clock=later) as stack:
        run_dag("ingest_claude", {"start": start.isoformat(), "end": end.isoformat()})
        cost_calls = stack.servers["anthropic"].requests(path="/v1/organizations/cost_report")
    with get_warehouse() as wh:
        per_day = wh.query("SELECT cost_date, SUM(amount_usd) AS usd FROM raw.anthropic_costs GROUP BY 1")
        names = wh.query("SELECT DISTINCT usage_date, actor_id FROM raw.claude_code_usage "
                         "WHERE actor_type = 'api_actor' AND actor_id IN (@old, @new)",
                         {"old": renamed.names[0].name, "new": renamed.names[1].name})
    # Each day exactly once, with the vendor's billed total (a doubled day would double its sum).
    assert {r["cost_date"]: r["usd"] for r in per_day} == truth.billed_total_by_day(org, start, end)
    windows = {(c.query["starting_at"][0], c.query["ending_at"][0]) for c in cost_calls}
    assert len(windows) == 3
    assert table("raw.claude_code_usage") == norm("raw.claude_code_usage", truth.expected_claude_code(org, start, end))
    assert names and all(
        r["actor_id"] == (renamed.names[1].name if r["usage_date"] >= rename_day else renamed.names[0].name)
        for r in names)


def test_machine_time_zone_does_not_shift_a_date(org, airflow_db, workspaces_setting, monkeypatch) -> None:
    import time

    later = SimClock(datetime.now(UTC).replace(microsecond=0) + timedelta(days=5))
    start, end = org.end - timedelta(days=6), org.end
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: every local date differs from the UTC one
    time.tzset()
    try:
        with LocalStack(org, ["anthropic"], clock=later):
            run_dag("ingest_claude", {"start": start.isoformat(), "end": end.isoformat()})
        assert table("raw.claude_code_usage") == norm("raw.claude_code_usage",
                                                      truth.expected_claude_code(org, start, end))
        assert table("raw.anthropic_costs") == norm("raw.anthropic_costs", truth.expected_costs(org, start, end))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
