"""ingest_sheets end to end: the DAG through Airflow (`dag.test()`), the Sheet as a CSV folder written by the
synthetic organisation and as a Google spreadsheet served by the Sheets simulator over HTTP (gspread), DuckDB;
the ref tables and raw.claude_ai_usage are compared row by row with the organisation's ground truth."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ai_usage import attribution
from ai_usage.warehouse import get_warehouse
from sandbox import claude_ai
from sandbox.airflow_env import DagRunFailed, run_dag
from sandbox.export import key_owner_rows
from sandbox.org import Organisation
from sandbox.sheet import _notes
from sandbox.stack import LocalStack
from sandbox.vendors import anthropic_truth
from sandbox.vendors.sheets import org_spreadsheet_id
from tests._alert_receivers import HttpReceiver

pytestmark = pytest.mark.e2e

KEYS = {
    "ref.people": ("email", "valid_from"),
    "ref.api_key_owners": ("api_key_id", "valid_from"),
    "ref.seat_prices": ("tool", "plan", "valid_from"),
    "raw.claude_ai_usage": ("source_row",),
}


def table(name: str) -> list[dict[str, Any]]:
    with get_warehouse() as wh:
        cols = [c for c in wh.contract(name).column_names if c not in ("_ingested_at", "_run_id")]
        rows = wh.query(f"SELECT {', '.join(cols)} FROM {name}")
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in KEYS.get(name, tuple(cols))))


def truth(org: Organisation) -> dict[str, list[dict[str, Any]]]:
    gt = org.ground_truth()
    owners = [
        {"api_key_id": r["api_key_id"], "api_key_name": r["api_key_name"], "workspace": r["workspace"],
         "owner_email": r["owner_email"], "team": r["team"], "cost_center": r["cost_center"],
         "valid_from": r["valid_from"], "valid_to": r["valid_to"], "notes": _notes(org, r["api_key_id"]) or None,
         "is_developer_tooling": r["is_developer_tooling"]}
        for r in key_owner_rows(org)
    ]
    out = {"ref.people": gt["people_history"], "ref.api_key_owners": owners, "ref.seat_prices": gt["price_card"],
           "raw.claude_ai_usage": claude_ai.expected_claude_ai_usage(org)}
    return {name: sorted(rows, key=lambda r: tuple(str(r[k]) for k in KEYS[name])) for name, rows in out.items()}


@pytest.fixture(scope="module")
def org() -> Organisation:
    # 75 days: two complete months of claude.ai exports (at least) plus the month to date, a team change.
    return Organisation.generate(seed=5, people=24, days=75)


@pytest.fixture()
def anthropic_data(org: Organisation) -> date:
    """What ingest_claude would have loaded: today's key and workspace listings, 30 days of Claude Code usage."""
    today = datetime.now(UTC).date()
    lineage = {"_ingested_at": datetime.now(UTC), "_run_id": "seed"}
    with get_warehouse() as wh:
        wh.ensure_tables(["raw.anthropic_api_keys", "raw.anthropic_workspaces", "raw.claude_code_usage"])
        wh.replace_partitions("raw.anthropic_api_keys",
                              [{**r, **lineage} for r in anthropic_truth.expected_api_keys(org, today)], [today])
        wh.replace_partitions("raw.anthropic_workspaces",
                              [{**r, **lineage} for r in anthropic_truth.expected_workspaces(org, today)], [today])
        days = [today - timedelta(days=i) for i in range(1, 31)]
        usage = anthropic_truth.expected_claude_code(org, min(days), max(days))
        wh.replace_partitions("raw.claude_code_usage", [{**r, **lineage} for r in usage], days)
    return today


@pytest.fixture()
def slack(monkeypatch: pytest.MonkeyPatch):
    with HttpReceiver() as receiver:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS",
                           json.dumps({"conn_type": "slackwebhook", "password": receiver.url + "/hook"}))
        yield receiver


def digests(slack: HttpReceiver, title: str) -> list[str]:
    return [json.dumps(r.json()) for r in slack.received if title in json.dumps(r.json())]


def expected_unmapped(org: Organisation, today: date) -> tuple[set[str], set[str]]:
    """(ids of listed keys nobody owns, names of API actors of the last 30 days the listing does not know)."""
    listed = anthropic_truth.expected_api_keys(org, today)
    owned = {k.id for k in org.api_keys if k.owner_email is not None}
    ids = {k["api_key_id"] for k in listed if k["api_key_id"] not in owned}
    names = {k["name"] for k in listed}
    usage = anthropic_truth.expected_claude_code(org, today - timedelta(days=30), today - timedelta(days=1))
    actors = {r["actor_id"] for r in usage if r["actor_type"] == "api_actor"} - names
    return ids, actors


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_csv_folder_equals_ground_truth_writes_back_once_and_rerun_changes_nothing(
        org, anthropic_data, slack, tmp_path, monkeypatch, airflow_db) -> None:
    folder = tmp_path / "sheet"
    org.export_sheet_csv(folder)
    monkeypatch.setenv("AI_USAGE_SHEET", "file:///" + str(folder))
    run_dag("ingest_sheets")

    want = truth(org)
    first = {name: table(name) for name in want}
    for name, rows in want.items():
        assert len(first[name]) == len(rows) > 0, name
        assert first[name] == rows, name
    with get_warehouse() as wh:
        assert wh.query("SELECT COUNT(*) AS n FROM ops.quarantine")[0]["n"] == 0
        runs = wh.query("SELECT task_id, status, rows_loaded FROM ops.ingestion_runs ORDER BY task_id")
        assert {r["task_id"]: r["rows_loaded"] for r in runs} == {
            "api_key_owners": len(want["ref.api_key_owners"]), "claude_ai_usage": len(want["raw.claude_ai_usage"]),
            "people": len(want["ref.people"]), "seat_prices": len(want["ref.seat_prices"])}

        # A person who changed team resolves to the old team before the change and the new one from it.
        mover = next(p for p in org.people if p.changed_team)
        old, new = mover.history[0], mover.history[1]
        for day, a in ((new.valid_from - timedelta(days=1), old), (new.valid_from, new)):
            got = attribution.resolve(wh, "email", mover.email.upper(), day)
            assert (got["team"], got["cost_center"], got["basis"]) == (a.team, a.cost_center, "people")
        assert attribution.resolve(wh, "email", "nobody@example.com", new.valid_from)["team"] == "Unattributed"

    # The unmapped keys were appended to the CSV once, with empty owner columns, and reported with spend.
    today = anthropic_data
    ids, actor_names = expected_unmapped(org, today)
    assert ids  # the organisation has unowned keys
    appended = [r for r in csv_rows(folder / "api_key_owners.csv") if r["notes"].startswith("discovered")]
    assert {r["api_key_id"] for r in appended if r["api_key_id"]} == ids
    assert {r["api_key_name"] for r in appended if not r["api_key_id"]} == actor_names
    assert all(r["owner_email"] == r["team"] == r["cost_center"] == "" for r in appended)
    assert all(r["notes"].startswith(f"discovered {today.isoformat()} in the ") for r in appended)
    [digest] = digests(slack, "Unmapped Anthropic API keys")
    unowned_names = {k.name for k in org.api_keys if k.id in ids}
    usage = anthropic_truth.expected_claude_code(org, today - timedelta(days=30), today - timedelta(days=1))
    spend = {n: sum((r["estimated_cost_usd"] for r in usage if r["actor_id"] == n), start=0)
             for n in unowned_names}
    busiest = max(spend, key=lambda n: spend[n])
    assert spend[busiest] > 0 and busiest in digest and str(spend[busiest]) in digest

    run_dag("ingest_sheets")   # the appended rows are in the tab now: loaded, never appended again
    again = [r for r in csv_rows(folder / "api_key_owners.csv") if r["notes"].startswith("discovered")]
    assert again == appended
    assert {n: table(n) for n in ("ref.people", "ref.seat_prices", "raw.claude_ai_usage")} == {
        n: first[n] for n in ("ref.people", "ref.seat_prices", "raw.claude_ai_usage")}
    owners = table("ref.api_key_owners")
    assert len(owners) == len(want["ref.api_key_owners"]) + len(appended)
    with get_warehouse() as wh:
        unowned = next(iter(ids))
        assert attribution.resolve(wh, "api_key_id", unowned, today)["basis"] == "unmapped"
    [second] = digests(slack, "Unmapped Anthropic API keys")[1:]
    assert "waiting for an owner" in second and "new: appended" not in second


def test_gspread_backend_over_http_equals_ground_truth_and_appends_once(org, anthropic_data, airflow_db) -> None:
    """The same DAG with AI_USAGE_SHEET = a spreadsheet id: gspread over HTTP to the Sheets simulator, with the
    service-account key and endpoint of connection google_cloud_default (idempotence: test_sheet_unmapped)."""
    with LocalStack(org, ["sheets"]) as stack:
        server, sheet_id = stack.servers["sheets"], org_spreadsheet_id(org)
        run_dag("ingest_sheets")
        want = truth(org)
        for name, rows in want.items():
            assert table(name) == rows, name
        reads = server.requests(path="/v4/spreadsheets/*/values/*", method="GET")
        assert len(reads) >= 5 and all(r.query.get("valueRenderOption") == ["FORMATTED_VALUE"] for r in reads)
        assert server.requests(path="/token", method="POST")  # the service-account key was exchanged
        grid = server.app.grid(sheet_id, "api_key_owners")
        ids, actor_names = expected_unmapped(org, anthropic_data)
        discovered = [r for r in grid[1:] if len(r) > 8 and r[8].startswith("discovered")]
        assert {r[0] for r in discovered if r[0]} == ids and {r[1] for r in discovered if not r[0]} == actor_names
        assert len(server.requests(path="/v4/spreadsheets/*/values/*:append", method="POST")) == 1


def test_hostile_rows_are_quarantined_and_a_missing_column_fails_only_its_tab(
        org, tmp_path, monkeypatch, slack, airflow_db) -> None:
    folder = tmp_path / "sheet"
    org.export_sheet_csv(folder)
    people = (folder / "people.csv").read_text()
    people += ("\n,,,,,\n"                                                 # two blank rows: skipped
               "  Ada.Lovelace@Example.COM ,Ada,Platform,CC-1,2025-01-01,\n"   # loads, normalised
               "ada.lovelace@example.com,Ada,Platform,CC-1,2025-01-01,\n"      # exact duplicate: rejected
               "not-an-email,X,Platform,CC-1,,\n"                                # rejected
               "grace@example.com,Grace,=VLOOKUP(A2;Teams!A:B;2),CC-1,,\n")      # formula as text: rejected
    (folder / "people.csv").write_text(people)
    monkeypatch.setenv("AI_USAGE_SHEET", "file:///" + str(folder))
    run_dag("ingest_sheets")

    n = len(org.ground_truth()["people_history"])
    with get_warehouse() as wh:
        quarantined = wh.query("SELECT record_ref, reason FROM ops.quarantine ORDER BY record_ref")
    assert {r["record_ref"]: r["reason"] for r in quarantined} == {
        f"tab people row {n + 5}": f"exact duplicate of row {n + 4}",
        f"tab people row {n + 6}": "email: 'not-an-email' is not an e-mail address",
        f"tab people row {n + 7}": ("team: '=VLOOKUP(A2;Teams!A:B;2)' is a formula shown as text, not its value "
                                    "(the cell is formatted as plain text; re-enter it or paste the value)"),
    }
    loaded = table("ref.people")
    assert len(loaded) == n + 1 and "ada.lovelace@example.com" in {r["email"] for r in loaded}
    [digest] = digests(slack, "Sheet rows quarantined")
    assert f"tab people row {n + 6}" in digest and "not-an-email" in digest
    prices = table("ref.seat_prices")

    lines = (folder / "seat_prices.csv").read_text().splitlines()
    (folder / "seat_prices.csv").write_text("\n".join(
        [lines[0].replace("monthly_price_usd", "price_per_seat"), *lines[1:]]) + "\n")  # required column gone
    with pytest.raises(DagRunFailed) as failed:
        run_dag("ingest_sheets")
    assert "seat_prices" in str(failed.value) and "'people'" not in str(failed.value)
    with get_warehouse() as wh:
        errors = wh.query("SELECT task_id, error FROM ops.ingestion_runs WHERE status = 'failed'")
    assert [e["task_id"] for e in errors] == ["seat_prices"]
    assert "tab seat_prices: required column 'monthly_price_usd' is missing" in errors[0]["error"]
    assert table("ref.seat_prices") == prices          # the failed tab's table is left as it was
    assert len(table("ref.people")) == n + 1            # the other tabs loaded
