"""The two Sheet backends: a folder of CSV files, and a Google spreadsheet read with gspread over real HTTP
from the Sheets v4 simulator on loopback. Same content in, identical tables out; appends land under each
tab's own header; transient failures are retried; permission and layout problems say what to do."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.oauth2 import service_account

from ai_usage.exceptions import ConfigurationError, VendorAPIError
from ai_usage.hooks.gsheet import SHEETS_SCOPE, GoogleSheetSource, build_client
from ai_usage.hooks.sheet import CsvFolderSource, normalize_grid, open_sheet
from ai_usage.settings import parse_sheet
from ai_usage.sources.common import split
from ai_usage.sources.sheet import TABS, parse_tab
from sandbox.clock import SimClock
from sandbox.server import SimServer
from sandbox.vendors.sheets import SheetsApp, build_sheets, connection_env, org_spreadsheet_id

SHEET_ID = "1SampleSpreadsheetId_abcdefghijklmnopqrstuvw"

# The same hostile content a person might type, tab by tab, as the cells they see.
TABS_CONTENT: dict[str, list[list[str]]] = {
    "people": [
        [" Email", "Name", "team", "Cost Center", "valid_from", "valid_to", "note", "", ""],
        ["  Alice@Example.COM ", "Alice", "Platform", "CC-1", "1/15/2025", "", "", "", ""],
        [],
        ["bob@example.com", "Bob, Jr.", "Data", "CC-3", "2025-01-01", "2025-03-14", "moved", "", ""],
        ["bob@example.com", "Bob, Jr.", "Mobile", "CC-4", "2025-03-15", "", "", "", ""],
        ["bob@example.com", "Bob, Jr.", "Mobile", "CC-4", "2025-03-15", "", "pasted twice", "", ""],
        ["carol@example", "Carol", "=VLOOKUP(A2,T!A:B,2)", "", "", "", "", "", ""],
        ["", "", "", "", "", "", "", "", ""],
    ],
    "api_key_owners": [
        ["api_key_id", "api_key_name", "workspace", "owner_email", "team", "cost_center", "valid_from",
         "valid_to", "notes", "is_developer_tooling"],
        ["apikey_1", "claude-code-alice", "Claude Code", "alice@example.com", "Platform", "CC-1", "", "", "",
         "TRUE"],
        ["", "", "Research", "", "Data", "CC-3", "", "", "multi\nline note", "yes"],
    ],
    "seat_prices": [
        ["tool", "plan", "monthly_price_usd", "seats", "valid_from", "valid_to"],
        ["cursor", "Teams", "$1,234.50", "1,200", "2025-01-01", ""],
        ["claude_ai", "Team", "€25", "8", "", ""],
    ],
    "claude_ai_usage": [
        ["period_start", "period_end", "period_label", "exported_at", "email", "account_uuid", "product", "model",
         "model_family", "total_requests", "total_prompt_tokens", "total_completion_tokens",
         "total_net_spend_usd", "total_gross_spend_usd"],
        ["2025-02-01", "2025-02-28", "LastMonth", "", "", "", "Chat", "", "", "4", "10", "2", "0.40", "0.45"],
        ["2025-02-01", "2025-02-28", "LastMonth", "", "alice@example.com", "u1", "Chat", "claude-sonnet-4-5",
         "Sonnet", "1,024", "5,000", "700", "$12.50", "$13.89"],
    ],
}


def write_csv_folder(folder: Path, content: dict[str, list[list[str]]], *, newline: str = "\n",
                     bom: bool = False, delimiter: str = ",") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for tab, grid in content.items():
        out = io.StringIO()
        csv.writer(out, lineterminator=newline, delimiter=delimiter).writerows(grid)
        (folder / f"{tab}.csv").write_bytes(("\ufeff" if bom else "").encode() + out.getvalue().encode())
    return folder


@pytest.fixture()
def sheets() -> Iterator[tuple[SheetsApp, SimServer]]:
    app = SheetsApp(SimClock())
    app.add_spreadsheet(SHEET_ID, "AI usage", {t: [list(r) for r in g] for t, g in TABS_CONTENT.items()})
    app.add_route("POST", "/token", app.issue_token)
    app.add_route("GET", "/v4/spreadsheets/{spreadsheet_id}", app.metadata)
    app.add_route("GET", "/v4/spreadsheets/{spreadsheet_id}/values/{range}", app.get_values)
    app.add_route("POST", "/v4/spreadsheets/{spreadsheet_id}/values/{range}", app.post_values)
    with SimServer(app) as server:
        yield app, server


def gsheet(app: SheetsApp, server: SimServer, scopes: tuple[str, ...] = (SHEETS_SCOPE,)) -> GoogleSheetSource:
    creds = service_account.Credentials.from_service_account_info(app.service_account_info(server.url),
                                                                  scopes=list(scopes))
    client = build_client(creds, endpoint=server.url)
    client.http_client.retry_wait_scale = 0.001  # the real retry path, without the real waits
    return GoogleSheetSource(SHEET_ID, client=client)


def test_both_backends_yield_identical_tables_from_the_same_content(sheets, tmp_path) -> None:
    app, server = sheets
    google, local = gsheet(app, server), CsvFolderSource(write_csv_folder(tmp_path / "csv", TABS_CONTENT))
    crlf_bom_semicolon = CsvFolderSource(write_csv_folder(tmp_path / "excel", TABS_CONTENT, newline="\r\n",
                                                          bom=True, delimiter=";"))
    for tab in TABS:
        pages = [google.read_tab(tab), local.read_tab(tab), crlf_bom_semicolon.read_tab(tab)]
        assert pages[0].payload == pages[1].payload == pages[2].payload, tab
        assert pages[0].payload[-1] and all(p.endpoint == f"tab {tab}" for p in pages)
        parsed = [split(parse_tab(tab, p.payload)) for p in pages]
        assert parsed[0] == parsed[1] == parsed[2], tab
        assert parsed[0][0] or parsed[0][1]
    # What is archived is what came over the wire: the API's JSON, the file's text.
    page = google.read_tab("people")
    assert json.loads(page.text)["values"][1] == ["  Alice@Example.COM ", "Alice", "Platform", "CC-1", "1/15/2025"]
    assert page.request["params"] == {"valueRenderOption": "FORMATTED_VALUE", "majorDimension": "ROWS"}
    assert local.read_tab("people").text == (tmp_path / "csv" / "people.csv").read_text()
    assert google.api_calls >= 5 and all(r.status == 200 for r in server.requests(path="/v4/*"))
    people, rejected = split(parse_tab("people", page.payload))
    assert [p["email"] for p in people] == ["alice@example.com", "bob@example.com", "bob@example.com"]
    assert [r.reason for r in rejected][0] == "exact duplicate of row 5"


def test_appends_land_under_each_tabs_own_header_in_both_backends(sheets, tmp_path) -> None:
    app, server = sheets
    header = ["Notes", "API Key ID", "api_key_name", "workspace", "owner_email", "team", "cost_center"]
    content = {"api_key_owners": [header, ["x", "apikey_1", "n1", "", "", "Data", ""]]}
    app.set_tab(SHEET_ID, "api_key_owners", content["api_key_owners"] + [[], ["", ""]])
    local = CsvFolderSource(write_csv_folder(tmp_path / "csv", content, newline="\r\n", bom=True))
    new = [{"api_key_id": "apikey_2", "api_key_name": "=looks like a formula", "workspace": "Claude Code",
            "owner_email": None, "team": None, "notes": "discovered 2025-03-02 in the API key listing"}]
    for source in (gsheet(app, server), local):
        assert source.append_rows("api_key_owners", new) == 1
        assert source.append_rows("api_key_owners", []) == 0
    expected = ["discovered 2025-03-02 in the API key listing", "apikey_2", "=looks like a formula", "Claude Code"]
    assert app.grid(SHEET_ID, "api_key_owners")[-1] == expected      # after the table's last non-empty row
    assert len(app.grid(SHEET_ID, "api_key_owners")) == 3
    [append] = server.requests(path="/v4/spreadsheets/*:append", method="POST")
    assert append.query["valueInputOption"] == ["RAW"] and append.query["insertDataOption"] == ["INSERT_ROWS"]
    raw = (tmp_path / "csv" / "api_key_owners.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    assert local.read_tab("api_key_owners").payload[-1] == expected


def test_transient_failures_are_retried_then_reported(sheets) -> None:
    app, server = sheets
    source = gsheet(app, server)
    server.arm(path="/v4/spreadsheets/*/values/*", status=429, retry_after=1, times=1)
    server.arm(path="/v4/spreadsheets/*/values/*", status=503, times=1)
    assert source.read_tab("seat_prices").payload == normalize_grid(TABS_CONTENT["seat_prices"])
    assert source.http.retries == 2
    server.arm(path="/v4/spreadsheets/*/values/*", status=500)
    with pytest.raises(VendorAPIError, match="failed after 5 attempt"):
        source.read_tab("people")


def test_permission_scope_and_layout_errors_say_what_to_do(sheets) -> None:
    app, server = sheets
    with pytest.raises(VendorAPIError, match="Share the spreadsheet with the service account"):
        gsheet(app, server, scopes=("https://www.googleapis.com/auth/bigquery",)).read_tab("people")
    other = GoogleSheetSource("1NoSuchSpreadsheet_abcdefghijklmnopqrstuvwxyz", client=gsheet(app, server).client)
    with pytest.raises(VendorAPIError, match="Check AI_USAGE_SHEET"):
        other.read_tab("people")
    app.set_tab(SHEET_ID, "People ", app.grid(SHEET_ID, "people"))       # a renamed tab is still found
    del app.spreadsheets[SHEET_ID].tabs["people"]
    assert gsheet(app, server).read_tab("people").payload[0][0] == " Email"
    del app.spreadsheets[SHEET_ID].tabs["seat_prices"]
    with pytest.raises(ConfigurationError, match="tab seat_prices: spreadsheet .* has no such tab"):
        gsheet(app, server).read_tab("seat_prices")


def test_csv_folder_errors_and_the_factory(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="not a folder"):
        CsvFolderSource(tmp_path / "missing").read_tab("people")
    (tmp_path / "People.csv").write_text("email,team\n")
    assert CsvFolderSource(tmp_path).read_tab("people").payload == [["email", "team"]]
    with pytest.raises(ConfigurationError, match=r"tab seat_prices: no seat_prices\.csv"):
        CsvFolderSource(tmp_path).read_tab("seat_prices")
    (tmp_path / "seat_prices.csv").write_bytes("tool,plan,monthly_price_usd\ncursor,Équipe,40\n".encode("cp1252"))
    assert CsvFolderSource(tmp_path).read_tab("seat_prices").payload[1] == ["cursor", "Équipe", "40"]
    assert isinstance(open_sheet(parse_sheet("file:///" + str(tmp_path))), CsvFolderSource)
    assert isinstance(open_sheet(parse_sheet(SHEET_ID)), GoogleSheetSource)   # no connection read until used


def test_the_production_hook_reads_the_connection_credentials_and_endpoint(monkeypatch) -> None:
    """google_cloud_default (service-account key JSON + extra sheets_endpoint) → gspread over HTTP."""
    from sandbox.org import Organisation

    org = Organisation.generate(seed=3, people=6, days=20)
    app = build_sheets(org, SimClock())
    with SimServer(app) as server:
        monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", connection_env(app, server.url))
        source = GoogleSheetSource(org_spreadsheet_id(org))
        page = source.read_tab("people")
        assert page.payload[0] == ["email", "name", "team", "cost_center", "valid_from", "valid_to"]
        assert len(page.payload) == 1 + sum(len(p.history) for p in org.people)
        [token] = server.requests(path="/token", method="POST")
        reads = server.requests(path="/v4/*")
        assert token.status == 200 and reads and all(r.status == 200 for r in reads)
        assert all(r.headers.get("authorization") == "Bearer [redacted]" for r in reads)
        # The connection's default scope (cloud-platform) plus the Sheets scope the hook adds.
        assert list(app.tokens.values()) == [("https://www.googleapis.com/auth/cloud-platform", SHEETS_SCOPE)]
    monkeypatch.delenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT")
    with pytest.raises(ConfigurationError, match="connection 'google_cloud_default' is not defined"):
        GoogleSheetSource(org_spreadsheet_id(org)).read_tab("people")
