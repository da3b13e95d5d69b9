"""The manual CSV fallback end to end, below the DAG: the shipped sample files of every kind dropped into a
real file inbox, loaded by `inbox.load_pending` into DuckDB with an explicit run identity, compared with
the CSV values read independently (csv module + literal conversions); then the outage scenario: a day the
API could not deliver is filled by a CSV, and a later API run over that day replaces it again."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ai_usage import inbox, pipeline, settings
from ai_usage.archive import RawArchive
from ai_usage.hooks.pages import ApiPage
from ai_usage.sources import cursor
from ai_usage.warehouse import get_warehouse

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "include" / "inbox_samples"
NOW = datetime(2026, 11, 6, 3, 0, tzinfo=UTC)
RUN = pipeline.RunInfo(run_id="manual__2026-11-06T03:00:00+00:00", dag_id="ingest_claude", task_id="csv_inbox")
WORKSPACES = {"wrkspc_01ClaudeCode0000000001": "Claude Code", "wrkspc_01ProductBackend00000002": "Product Backend"}
# The sample headers (Admin API field names) → contract columns, written out here rather than imported.
CURSOR_COLUMNS = {
    "totalLinesAdded": "total_lines_added", "totalLinesDeleted": "total_lines_deleted",
    "acceptedLinesAdded": "accepted_lines_added", "acceptedLinesDeleted": "accepted_lines_deleted",
    "totalApplies": "total_applies", "totalAccepts": "total_accepts", "totalRejects": "total_rejects",
    "totalTabsShown": "total_tabs_shown", "totalTabsAccepted": "total_tabs_accepted",
    "composerRequests": "composer_requests", "chatRequests": "chat_requests", "agentRequests": "agent_requests",
    "cmdkUsages": "cmdk_usages", "subscriptionIncludedReqs": "subscription_included_reqs",
    "apiKeyReqs": "api_key_reqs", "usageBasedReqs": "usage_based_reqs", "bugbotUsages": "bugbot_usages",
}
CURSOR_TEXT = {"mostUsedModel": "most_used_model", "applyMostUsedExtension": "apply_most_used_extension",
               "tabMostUsedExtension": "tab_most_used_extension", "clientVersion": "client_version"}


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def table(name: str, order: str) -> list[dict]:
    with get_warehouse() as wh:
        cols = [c for c in wh.contract(name).column_names if c not in ("_ingested_at", "_run_id")]
        return wh.query(f"SELECT {', '.join(cols)} FROM {name} ORDER BY {order}")


def query(sql: str) -> list[dict]:
    with get_warehouse() as wh:
        return wh.query(sql)


def inbox_root() -> Path:
    location = settings.inbox()
    assert isinstance(location, settings.FileLocation)
    return location.path


def drop_samples() -> None:
    shutil.copytree(SAMPLES, inbox_root(), dirs_exist_ok=True)


def seed_workspace_listing() -> None:
    lineage = {"_ingested_at": datetime(2026, 11, 1, tzinfo=UTC), "_run_id": "seed"}
    with get_warehouse() as wh:
        wh.ensure_tables(["raw.anthropic_workspaces"])
        wh.replace_partitions("raw.anthropic_workspaces", [
            {"snapshot_date": date(2026, 11, 1), "workspace_id": k, "name": v, **lineage} for k, v in WORKSPACES.items()
        ], [date(2026, 11, 1)])


def load_all() -> dict[str, list[dict]]:
    return {kind: inbox.load_pending(kind, run=RUN, now=NOW) for kind in inbox.KINDS}


def valid_sample(kind: str) -> Path:
    return next(p for p in (SAMPLES / kind).glob("*.csv") if "hostile" not in p.name)


def hostile_sample(kind: str) -> Path:
    return next(p for p in (SAMPLES / kind).glob("*.csv") if "hostile" in p.name)


def test_every_sample_loads_as_written_and_a_second_drop_changes_nothing() -> None:
    seed_workspace_listing()
    drop_samples()
    results = load_all()
    assert {k: [(r["status"], r["rows_loaded"], r["rows_quarantined"]) for r in v] for k, v in results.items()} == {
        "cursor/daily_usage": [("loaded", 6, 0), ("loaded", 2, 12)],
        "anthropic/cost_report": [("loaded", 6, 0), ("loaded", 2, 8)],
        "anthropic/claude_code": [("loaded", 4, 0), ("loaded", 2, 9)],
    }
    assert not any(p.is_file() for kind in inbox.KINDS for p in (inbox_root() / kind).iterdir())

    # Cursor: every counter and text column of the valid file, as the CSV says.
    loaded = {(str(r["usage_date"]), r["email"]): r for r in table("raw.cursor_daily_usage", "usage_date, email")}
    for cells in rows_of(valid_sample("cursor/daily_usage")):
        row = loaded[(cells["Date"], cells["Email"].lower())]
        assert {c: row[c] for c in CURSOR_COLUMNS.values()} == {c: int(cells[h]) for h, c in CURSOR_COLUMNS.items()}
        assert {c: row[c] for c in CURSOR_TEXT.values()} == {c: cells[h] or None for h, c in CURSOR_TEXT.items()}
        assert (row["user_id"], row["is_active"]) == (cells["userId"], cells["isActive"] == "true")

    # Costs: exact dollars, the workspace of the id, the platform of the default rules.
    costs = {(str(r["cost_date"]), r["workspace_id"], r["description"]): r
             for r in table("raw.anthropic_costs", "cost_date, description")}
    for cells in rows_of(valid_sample("anthropic/cost_report")):
        row = costs[(cells["date"], cells["workspace_id"] or None, cells["description"])]
        assert row["amount_usd"] == Decimal(cells["amount_usd"])
        assert Decimal(row["amount_cents_raw"]) == Decimal(cells["amount_usd"]) * 100
        assert row["workspace_name"] == cells["workspace"]
        assert row["platform"] == ("claude_code" if cells["workspace"] == "Claude Code" else "api")
        for column in ("cost_type", "context_window", "model", "service_tier", "token_type"):
            assert row[column] == (cells[column] or None), column

    # Claude Code: actors, counters, tool actions from the <tool>_accepted/_rejected columns, no models.
    usage = {(str(r["usage_date"]), r["actor_id"]): r for r in table("raw.claude_code_usage", "usage_date, actor_id")}
    for cells in rows_of(valid_sample("anthropic/claude_code")):
        actor = cells["email"].lower() or cells["api_key_name"]
        row = usage[(cells["date"], actor)]
        assert row["actor_type"] == ("user_actor" if cells["email"] else "api_actor")
        assert (row["num_sessions"], row["lines_added"], row["lines_removed"], row["commits_by_claude_code"],
                row["pull_requests_by_claude_code"]) == tuple(
            int(cells[c]) for c in ("sessions", "lines_added", "lines_removed", "commits", "pull_requests"))
        assert row["estimated_cost_usd"] == Decimal(cells["estimated_cost_usd"])
        assert row["terminal_type"] == (cells["terminal_type"] or "unknown")
        tools = {t["tool"]: (t["accepted"], t["rejected"]) for t in row["tool_actions"]}
        expected = {tool: (int(cells[f"{tool}_accepted"]), int(cells[f"{tool}_rejected"]))
                    for tool in ("edit_tool", "multi_edit_tool", "write_tool") if cells[f"{tool}_accepted"]}
        assert tools == expected
        assert row["model_breakdown"] == []

    # Every quarantined record points at its file and spreadsheet row, and carries that row's cells.
    quarantined = query("SELECT target_table, record_ref, payload FROM ops.quarantine")
    assert len(quarantined) == 12 + 8 + 9
    for q in quarantined:
        _, _, name, _, row = q["record_ref"].split(" ")
        kind = next(k for k in inbox.KINDS if (SAMPLES / k / name).is_file())
        with (SAMPLES / kind / name).open(newline="", encoding="utf-8") as fh:
            records = list(csv.reader(fh))
        cells = records[int(row) - 1]
        payload = json.loads(q["payload"])
        assert [payload[h] for h in records[0]] == (cells + [None] * len(records[0]))[:len(records[0])]

    before = {name: table(name, order) for name, order in (
        ("raw.cursor_daily_usage", "usage_date, email"), ("raw.anthropic_costs", "cost_date, description, amount_usd"),
        ("raw.claude_code_usage", "usage_date, actor_id"))}
    drop_samples()
    load_all()
    assert {name: table(name, order) for name, order in (
        ("raw.cursor_daily_usage", "usage_date, email"), ("raw.anthropic_costs", "cost_date, description, amount_usd"),
        ("raw.claude_code_usage", "usage_date, actor_id"))} == before
    assert len(query("SELECT * FROM ops.quarantine")) == 12 + 8 + 9  # same run: replaced, not doubled


def api_page(n: int, records: list[dict]) -> ApiPage:
    body = json.dumps({"data": records})
    return ApiPage(endpoint="daily_usage", n=n, request={"method": "POST", "path": "/teams/daily-usage-data"},
                   status=200, text=body, payload=json.loads(body))


def api_run(run_id: str, days: list[date], records: list[dict]) -> None:
    """What the DAG's daily_usage task does with one API response (pages built here, no HTTP)."""
    with get_warehouse() as wh:
        wh.ensure_tables(["raw.cursor_daily_usage", *pipeline.OPS_TABLES])
        pipeline.ingest(pipeline.Stream(
            source="cursor", endpoint="daily_usage", table="raw.cursor_daily_usage",
            pages=lambda: [api_page(1, records)],
            parse=lambda page: cursor.parse_daily_usage(page.payload, page=page.n),
            dates=days, archive_day=days[0], lateness_days=3,
        ), run=pipeline.RunInfo(run_id=run_id, dag_id="ingest_cursor", task_id="daily_usage"),
            warehouse=wh, archive=RawArchive(), now=NOW)


def test_an_outage_day_is_filled_by_csv_and_a_later_api_run_replaces_it() -> None:
    d1, d2, d3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)

    def record(day: date, email: str, chats: int) -> dict:
        return {"day": day.isoformat(), "email": email, "chatRequests": chats, "isActive": True}

    # Day 2 came back empty from the API (outage); days 1 and 3 are fine.
    api_run("scheduled__a", [d1, d2, d3], [record(d1, "ann@example.com", 1), record(d3, "ann@example.com", 3)])
    assert [r["usage_date"] for r in table("raw.cursor_daily_usage", "usage_date")] == [d1, d3]

    csv_file = inbox_root() / "cursor" / "daily_usage" / "outage.csv"
    csv_file.parent.mkdir(parents=True)
    csv_file.write_text("Date,Email,chatRequests,isActive\n2026-11-02,ann@example.com,20,true\n"
                        "2026-11-02,bob@example.com,21,true\n")
    inbox.load_pending("cursor/daily_usage", run=RUN, now=NOW)
    got = [(r["usage_date"], r["email"], r["chat_requests"]) for r in table("raw.cursor_daily_usage", "usage_date, email")]
    assert got == [(d1, "ann@example.com", 1), (d2, "ann@example.com", 20), (d2, "bob@example.com", 21),
                   (d3, "ann@example.com", 3)]
    coverage = query("SELECT coverage_date, row_count, run_id FROM ops.source_coverage WHERE coverage_date = DATE '2026-11-02'")
    assert coverage == [{"coverage_date": d2, "row_count": 2, "run_id": RUN.run_id}]

    # The API is back and re-reads its lookback: day 2 is the API's again, CSV rows included.
    api_run("scheduled__b", [d2, d3], [record(d2, "ann@example.com", 2), record(d3, "ann@example.com", 3)])
    got = [(r["usage_date"], r["email"], r["chat_requests"]) for r in table("raw.cursor_daily_usage", "usage_date, email")]
    assert got == [(d1, "ann@example.com", 1), (d2, "ann@example.com", 2), (d3, "ann@example.com", 3)]
    # The API's run records and the CSV's live side by side (different sources: neither replaces the other).
    sources = sorted(r["source"] for r in query("SELECT source FROM ops.ingestion_runs"))
    assert sources == ["cursor", "cursor", "cursor_csv"]
