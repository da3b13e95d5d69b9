"""The unmapped-key workflow: keys in the Anthropic data but not in the api_key_owners tab are appended once
(CSV folder and, over HTTP, the Sheets simulator), never twice across runs, and reported with their spend."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from google.oauth2 import service_account

from ai_usage import unmapped_keys
from ai_usage.hooks.gsheet import SHEETS_SCOPE, GoogleSheetSource, build_client
from ai_usage.hooks.sheet import CsvFolderSource
from ai_usage.warehouse import get_warehouse
from sandbox.clock import SimClock
from sandbox.server import SimServer
from sandbox.vendors.sheets import SheetsApp

TODAY = date(2025, 6, 30)
LINEAGE = {"_ingested_at": datetime(2025, 6, 30, tzinfo=UTC), "_run_id": "seed"}
HEADER = ["api_key_id", "api_key_name", "workspace", "owner_email", "team", "cost_center", "valid_from",
          "valid_to", "notes", "is_developer_tooling"]
TAB = [
    HEADER,
    ["apikey_owned", "claude-code-alice", "Claude Code", "alice@example.com", "Platform", "CC-1", "", "", "", ""],
    ["", "named-only", "", "", "", "", "", "", "a person typed only the name", ""],
    ["", "known-by-name", "", "bob@example.com", "", "", "", "", "", ""],
    ["apikey_broken", "", "", "", "", "", "2025-13-01", "", "quarantined, but it is in the tab", ""],
]


def key(key_id: str, name: str, status: str = "active", workspace: str | None = "wrkspc_cc",
        day: date = TODAY) -> dict[str, Any]:
    return {"snapshot_date": day, "api_key_id": key_id, "name": name, "status": status, "workspace_id": workspace,
            **LINEAGE}


def actor(name: str, day: date, usd: str) -> dict[str, Any]:
    return {"usage_date": day, "actor_type": "api_actor", "actor_id": name, "terminal_type": "vscode",
            "customer_type": "api", "estimated_cost_usd": Decimal(usd), "tool_actions": [], "model_breakdown": [],
            **LINEAGE}


@pytest.fixture()
def wh() -> Iterator[Any]:
    with get_warehouse() as warehouse:
        warehouse.ensure_tables(list(unmapped_keys.SOURCE_TABLES))
        yesterday = TODAY - timedelta(days=1)
        warehouse.replace_partitions("raw.anthropic_api_keys", [
            key("apikey_gone", "gone", day=yesterday),                 # only in an older snapshot: ignored
            key("apikey_owned", "claude-code-alice"), key("apikey_ci", "ci-bot"),
            key("apikey_default", "default-key", workspace=None), key("apikey_old", "old-key", "archived"),
            key("apikey_old_used", "old-used", "archived"), key("apikey_named", "named-only"),
            key("apikey_broken", "broken"),
        ], [yesterday, TODAY])
        warehouse.replace_partitions("raw.anthropic_workspaces", [
            {"snapshot_date": TODAY, "workspace_id": "wrkspc_cc", "name": "Claude Code", **LINEAGE}], [TODAY])
        days = [TODAY - timedelta(days=n) for n in (1, 2, 29, 31, 40)]
        warehouse.replace_partitions("raw.claude_code_usage", [
            actor("ci-bot", days[0], "1.25"), actor("ci-bot", days[1], "2.50"),
            actor("ci-bot", days[4], "100.00"),                         # outside the 30-day window
            actor("old-used", days[2], "0.10"), actor("renamed-old-name", days[0], "3.00"),
            actor("known-by-name", days[1], "0.40"), actor("stale-name", days[3], "9.99"),
            {**actor("alice@example.com", days[0], "5.00"), "actor_type": "user_actor"},
        ], days)
        warehouse.replace_partitions("raw.anthropic_messages_usage", [
            {"usage_date": days[0], "api_key_id": "apikey_ci", "uncached_input_tokens": 1000, "output_tokens": 200,
             **LINEAGE}], [days[0]])
        yield warehouse


def write_tab(folder: Path) -> CsvFolderSource:
    folder.mkdir()
    with (folder / "api_key_owners.csv").open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(TAB)
    return CsvFolderSource(folder)


def appended_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))[len(TAB) - 1:]


def test_unmapped_keys_are_appended_once_with_their_spend(wh, tmp_path) -> None:
    source = write_tab(tmp_path / "sheet")
    result = unmapped_keys.write_back(source, wh, today=TODAY)
    rows = appended_rows(tmp_path / "sheet" / "api_key_owners.csv")
    assert [(r["api_key_id"], r["api_key_name"], r["workspace"]) for r in rows] == [   # by spend
        ("apikey_ci", "ci-bot", "Claude Code"),
        ("", "renamed-old-name", ""),                  # an API actor the listing does not know, by name
        ("apikey_old_used", "old-used", "Claude Code"),    # archived, but used in the window
        ("apikey_default", "default-key", "Default Workspace"),
    ]
    assert all(r["owner_email"] == r["team"] == r["cost_center"] == r["valid_from"] == "" for r in rows)
    assert rows[1]["notes"] == "discovered 2025-06-30 in the Claude Code report"
    assert rows[0]["notes"] == "discovered 2025-06-30 in the API key listing"

    digest = {r["api_key_name"]: r for r in result.digest_rows()}
    assert digest["ci-bot"]["estimated_spend_30d_usd"] == Decimal("3.75")     # 40 days ago is not counted
    assert digest["ci-bot"]["tokens_30d"] == 1200 and digest["ci-bot"]["state"] == "new: appended to the tab"
    assert digest["renamed-old-name"]["estimated_spend_30d_usd"] == Decimal("3.00")
    assert digest["named-only"]["state"] == "waiting for an owner"              # its row names no one yet
    assert digest["broken"]["state"] == "waiting for an owner"        # a quarantined row is still in the tab
    assert "known-by-name" not in digest and "old-key" not in digest and "gone" not in digest
    assert [r["api_key_name"] for r in result.digest_rows()][:2] == ["ci-bot", "renamed-old-name"]  # by spend
    assert result.to_dict()["appended"] == 4 and result.window == (date(2025, 5, 31), date(2025, 6, 29))

    again = unmapped_keys.write_back(source, wh, today=TODAY)
    assert again.appended == [] and appended_rows(tmp_path / "sheet" / "api_key_owners.csv") == rows
    assert {r["api_key_name"] for r in again.digest_rows()} == {
        "renamed-old-name", "ci-bot", "old-used", "default-key", "named-only", "broken"}
    assert {r["state"] for r in again.digest_rows()} == {"waiting for an owner"}


def test_the_write_back_over_http_to_the_sheets_simulator_is_idempotent(wh) -> None:
    sheet_id = "1UnmappedKeysSpreadsheet_abcdefghijklmnopq"
    app = SheetsApp(SimClock())
    app.add_spreadsheet(sheet_id, "AI usage", {"api_key_owners": TAB})
    app.add_route("POST", "/token", app.issue_token)
    app.add_route("GET", "/v4/spreadsheets/{spreadsheet_id}", app.metadata)
    app.add_route("GET", "/v4/spreadsheets/{spreadsheet_id}/values/{range}", app.get_values)
    app.add_route("POST", "/v4/spreadsheets/{spreadsheet_id}/values/{range}", app.post_values)
    with SimServer(app) as server:
        creds = service_account.Credentials.from_service_account_info(app.service_account_info(server.url),
                                                                      scopes=[SHEETS_SCOPE])
        source = GoogleSheetSource(sheet_id, client=build_client(creds, endpoint=server.url))
        first = unmapped_keys.write_back(source, wh, today=TODAY)
        grid = app.grid(sheet_id, "api_key_owners")
        assert len(first.appended) == 4 and len(grid) == len(TAB) + 4
        assert grid[-1] == ["apikey_default", "default-key", "Default Workspace", "", "", "", "", "",
                            "discovered 2025-06-30 in the API key listing"]
        for _ in range(2):
            assert unmapped_keys.write_back(source, wh, today=TODAY).appended == []
        assert app.grid(sheet_id, "api_key_owners") == grid
        assert len(server.requests(path="/v4/spreadsheets/*:append", method="POST")) == 1


def test_the_shipped_sample_sheet_is_never_edited(tmp_path) -> None:
    """Write-back into include/sample_sheet (the default AI_USAGE_SHEET) would modify a tracked file."""
    from ai_usage.hooks.sheet import CsvFolderSource
    from ai_usage.paths import include_dir
    from ai_usage.unmapped_keys import is_shipped_sample

    assert is_shipped_sample(CsvFolderSource(include_dir() / "sample_sheet"))
    assert not is_shipped_sample(CsvFolderSource(tmp_path))
