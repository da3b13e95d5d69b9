"""The Sheet's tab parsers: cell forms people type, header variants, hostile rows, duplicates, overlaps, and
the shipped sample sheet — with nothing silently dropped (rows in = rows loaded + rows quarantined)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ai_usage.hooks.sheet import CsvFolderSource
from ai_usage.sources import sheet_cells as cells
from ai_usage.sources.common import BadValue, Rejected, split
from ai_usage.sources.sheet import SheetLayoutError, align_row, claude_ai_periods, parse_tab

SAMPLE = Path(__file__).resolve().parents[1] / "include" / "sample_sheet"
PEOPLE_HEADER = ["email", "name", "team", "cost_center", "valid_from", "valid_to"]


def parse(tab: str, values: list[list[str]]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    return split(parse_tab(tab, values))


def data_row_count(values: list[list[str]]) -> int:
    return sum(1 for row in values[1:] if any(c.strip() for c in row))


# --------------------------------------------------------------------------- cells


@pytest.mark.parametrize(("text", "day"), [
    ("2025-03-04", date(2025, 3, 4)), ("2025/3/4", date(2025, 3, 4)), ("2025-03-04 00:00:00", date(2025, 3, 4)),
    ("2025-03-04T00:00:00Z", date(2025, 3, 4)), ("3/15/2025", date(2025, 3, 15)), ("15/3/2025", date(2025, 3, 15)),
    ("4/4/2025", date(2025, 4, 4)), ("04.03.2025", date(2025, 3, 4)), ("4 Mar 2025", date(2025, 3, 4)),
    ("4-Mar-2025", date(2025, 3, 4)), ("March 4, 2025", date(2025, 3, 4)), ("Sept 30, 2025", date(2025, 9, 30)),
    (" 2025-03-04\u00a0", date(2025, 3, 4)),
])
def test_unambiguous_dates(text: str, day: date) -> None:
    assert cells.to_date(text, "valid_from") == day


@pytest.mark.parametrize(("text", "reason"), [
    ("03/04/2025", "ambiguous"), ("45720", "serial number"), ("3/4/25", "two-digit year"),
    ("2025-02-30", "not a calendar date"), ("2025-03-04T23:00:00-05:00", "time zone offset"),
    ("next monday", "not a date"), ("4 Foo 2025", "unknown month"),
])
def test_dates_that_cannot_be_trusted(text: str, reason: str) -> None:
    with pytest.raises(BadValue, match=reason):
        cells.to_date(text, "valid_from")


@pytest.mark.parametrize(("text", "amount"), [
    ("1234.5", Decimal("1234.5")), ("$1,234.50", Decimal("1234.50")), ("USD 1,234.50", Decimal("1234.50")),
    ("1,234.50 USD", Decimal("1234.50")), ("US$ 0.10", Decimal("0.10")), (".5", Decimal("0.5")),
    ("0.000000001", Decimal("0.000000001")), ("1,000,000", Decimal("1000000")),
])
def test_money(text: str, amount: Decimal) -> None:
    got = cells.to_money(text, "x")
    assert got == amount and str(got) == str(amount)  # exact, digits kept


@pytest.mark.parametrize(("text", "reason"), [
    ("12,50", "not an amount"), ("€12", "not an amount"), ("(12.00)", "negative"), ("-$3", "negative"),
    ("1,23,4", "not an amount"), ("12.5.1", "not an amount"), ("$", "not an amount"),
])
def test_money_refused(text: str, reason: str) -> None:
    with pytest.raises(BadValue, match=reason):
        cells.to_money(text, "x")


def test_counts_flags_and_headers() -> None:
    assert cells.to_count("1,024", "n") == 1024 and cells.to_count("12.0", "n") == 12 and cells.to_count("", "n") is None
    for bad in ("12.5", "-1", "$5", "many"):
        with pytest.raises(BadValue):
            cells.to_count(bad, "n")
    assert [cells.to_flag(v, "f") for v in ("TRUE", "no", "x", "", "0")] == [True, False, True, None, False]
    with pytest.raises(BadValue, match="not TRUE or FALSE"):
        cells.to_flag("maybe", "f")
    assert cells.normalize_header("  Cost Center ") == "cost_center"
    assert cells.normalize_header("E-mail") == "e_mail"
    assert cells.normalize_header("Total Net Spend (USD)") == "total_net_spend_usd"
    assert cells.to_timestamp("2025-03-01 09:00:00", "t") == datetime(2025, 3, 1, 9, tzinfo=UTC)
    assert cells.to_timestamp("2025-03-01T09:00:00+02:00", "t") == datetime(2025, 3, 1, 7, tzinfo=UTC)
    for broken in ("#REF!", "#N/A", "=A1*2"):
        with pytest.raises(BadValue):
            cells.check_cell(broken, "team")


# --------------------------------------------------------------------------- a hostile people tab

HOSTILE_PEOPLE = [
    [" Email ", "Name", "TEAM", "Cost Centre", "Valid From", "valid_to", "Comment", "", ""],
    ["alice@example.com", "Alice", "Platform", "CC-1", "2025-01-01", "", "", "", ""],
    ["  Bob.Smith@Example.COM ", "Bob", "Payments", "CC-2", "2025-01-01", "2025-03-14", "moved", "", ""],
    ["bob.smith@example.com", "Bob", "Data", "CC-3", "2025-03-15", "", "", "", ""],
    [],
    ["", "", "", "", "", "", "", "", ""],
    ["alice@example.com", "Alice", "Platform", "CC-1", "1/1/2025", "", "pasted again", "", ""],
    ["carol@example.com", "Carol", "Data", "CC-3", "2025-01-01", "", "", "", ""],
    ["carol@example.com", "Carol", "Mobile", "CC-4", "2025-01-01", "", "", "", ""],
    ["dan@example.com", "Dan", "Data", "CC-3", "2025-01-01", "", "", "", ""],
    ["dan@example.com", "Dan", "Mobile", "CC-4", "2025-02-01", "", "", "", ""],
    ["erin@example", "Erin", "Data", "", "", "", "", "", ""],
    ["fay@example.com", "Fay", "=VLOOKUP(A2,Teams!A:B,2)", "", "", "", "", "", ""],
    ["gus@example.com", "Gus", "", "", "", "", "", "", ""],
    ["hal@example.com", "Hal", "Data", "", "2025-05-01", "2025-04-01", "", "", ""],
    ["", "", "", "", "", "", "a stray note in an extra column", "", ""],
    ["ivy@example.com", "=IMPORTRANGE(x)", "Data", "#REF!", "", "", "", "", ""],
]


def test_hostile_people_tab_loads_or_quarantines_every_row() -> None:
    rows, rejected = parse("people", HOSTILE_PEOPLE)
    assert len(rows) + len(rejected) == data_row_count(HOSTILE_PEOPLE) == 14
    assert [(r["email"], r["team"], r["valid_from"], r["valid_to"]) for r in rows] == [
        ("alice@example.com", "Platform", date(2025, 1, 1), None),
        ("bob.smith@example.com", "Payments", date(2025, 1, 1), date(2025, 3, 14)),   # trimmed, lowercased
        ("bob.smith@example.com", "Data", date(2025, 3, 15), None),                   # touching ranges are fine
    ]
    assert rows[0] == {"email": "alice@example.com", "name": "Alice", "team": "Platform", "cost_center": "CC-1",
                       "valid_from": date(2025, 1, 1), "valid_to": None}
    reasons = {r.ref: r.reason for r in rejected}
    assert reasons == {
        "row 7": "exact duplicate of row 2",                 # same values once parsed (1/1/2025 = 2025-01-01)
        "row 8": "conflicts with row(s) 9: same email=carol@example.com, valid_from=2025-01-01 but different "
                 "values; keep one row",
        "row 9": "conflicts with row(s) 8: same email=carol@example.com, valid_from=2025-01-01 but different "
                 "values; keep one row",
        "row 10": "validity overlaps row 11 (email dan@example.com, 2025-02-01..); close one range (valid_to) "
                  "the day before the other starts",
        "row 11": "validity overlaps row 10 (email dan@example.com, 2025-01-01..); close one range (valid_to) "
                  "the day before the other starts",
        "row 12": "email: 'erin@example' is not an e-mail address",
        "row 13": "team: '=VLOOKUP(A2,Teams!A:B,2)' is a formula shown as text, not its value (the cell is "
                  "formatted as plain text; re-enter it or paste the value)",
        "row 14": "team: missing",
        "row 15": "valid_to 2025-04-01 is before valid_from 2025-05-01",
        "row 16": "email: missing",
        "row 17": "cost_center: the cell shows the spreadsheet error #REF!",
    }
    # The quarantined record is the row as received, keyed by the sheet's own headers.
    assert next(r for r in rejected if r.ref == "row 7").record == {
        "Email": "alice@example.com", "Name": "Alice", "TEAM": "Platform", "Cost Centre": "CC-1",
        "Valid From": "1/1/2025", "Comment": "pasted again"}
    assert next(r for r in rejected if r.ref == "row 16").record == {"Comment": "a stray note in an extra column"}


def test_ref_prefix_and_a_name_may_start_with_equals() -> None:
    values = [PEOPLE_HEADER, ["x@example.com", "=Xavier", "Data"], ["bad", "", "Data"]]
    rows, rejected = parse("people", values)
    assert rows[0]["name"] == "=Xavier"        # free text: not a formula check
    assert [r.ref for r in split(parse_tab("people", values, ref_prefix="tab people"))[1]] == ["tab people row 3"]


@pytest.mark.parametrize(("header", "message"), [
    (["email", "name", "valid_from"], "tab people: required column 'team' is missing"),
    (["name", "team"], "tab people: required column 'email' is missing"),
    (["email", "E-Mail", "team"], "columns A ('email') and B ('E-Mail') both mean 'email'"),
    ([], "tab people: row 1 is empty"),
    (["", "", ""], "tab people: row 1 is empty"),
])
def test_a_bad_header_fails_the_tab_naming_the_column(header: list[str], message: str) -> None:
    with pytest.raises(SheetLayoutError) as err:
        list(parse_tab("people", [header, ["a@example.com", "A", "Data"]] if header else []))
    assert message in str(err.value)


def test_only_a_header_loads_nothing() -> None:
    assert parse("people", [PEOPLE_HEADER]) == ([], [])


# --------------------------------------------------------------------------- other tabs

OWNERS_HEADER = ["api_key_id", "api_key_name", "workspace", "owner_email", "team", "cost_center", "valid_from",
                 "valid_to", "notes", "is_developer_tooling"]


def test_api_key_owners_overlaps_per_key_name_and_workspace() -> None:
    values = [
        OWNERS_HEADER,
        ["apikey_1", "k-one", "Claude Code", "A@Example.com", "Platform", "", "", "2025-02-28", "", "TRUE"],
        ["apikey_1", "k-one", "Claude Code", "a@example.com", "Data", "", "2025-03-01", "", "", "TRUE"],
        ["apikey_2", "k-two", "Claude Code", "", "", "", "", "", "=not a formula check in notes", ""],
        ["", "", "Research", "", "Data", "", "", "", "", "yes"],
        ["", "", "Research", "", "Mobile", "", "2025-06-01", "", "", ""],
        ["apikey_3", "k-one", "", "", "Data", "", "2025-04-01", "", "", ""],   # the name k-one overlaps row 3
        ["", "", "", "", "", "", "", "", "only a note", ""],
    ]
    rows, rejected = parse("api_key_owners", values)
    assert len(rows) + len(rejected) == 7
    assert [(r["api_key_id"], r["team"], r["owner_email"], r["is_developer_tooling"]) for r in rows] == [
        ("apikey_1", "Platform", "a@example.com", True), ("apikey_2", None, None, None)]
    assert rows[1]["notes"] == "=not a formula check in notes"
    reasons = {r.ref: r.reason for r in rejected}
    assert reasons["row 3"].startswith("validity overlaps row 7 (api_key_name k-one, 2025-04-01..)")
    assert reasons["row 7"].startswith("validity overlaps row 3 (api_key_name k-one, 2025-03-01..)")
    assert reasons["row 5"].startswith("validity overlaps row 6 (workspace Research")
    assert reasons["row 8"] == "the row maps nothing: fill api_key_id, api_key_name or workspace"


def test_seat_prices_tools_and_money() -> None:
    values = [["Tool", "Plan", "Monthly Price", "Seats", "valid_from", "valid_to"],
              ["Claude AI", "Team", "$30.00", "8", "2025-01-01", "2025-02-28"],
              ["claude_ai", "Team", "25", "8", "2025-03-01", ""],
              ["Cursor", "Teams", "$1,234.50", "1,200", "", ""],
              ["copilot", "Business", "19", "", "", ""],
              ["cursor", "Pro", "", "", "", ""]]
    rows, rejected = parse("seat_prices", values)
    assert [(r["tool"], r["plan"], r["monthly_price_usd"], r["seats"]) for r in rows] == [
        ("claude_ai", "Team", Decimal("30.00"), 8), ("claude_ai", "Team", Decimal("25"), 8),
        ("cursor", "Teams", Decimal("1234.50"), 1200)]
    assert [r.reason for r in rejected] == ["tool: 'copilot' is not one of cursor, claude_code, claude_ai",
                                            "monthly_price_usd: missing"]


CLAUDE_AI_HEADER = ["period_start", "period_end", "period_label", "exported_at", "user_email", "account_uuid",
                    "product", "model", "model_family", "total_requests", "total_prompt_tokens",
                    "total_completion_tokens", "total_net_spend_usd", "total_gross_spend_usd"]
EXPORT = [
    ["2025-02-01", "2025-02-28", "LastMonth", "2025-03-01 09:00:00", "", "", "Chat", "", "", "48", "52,310",
     "9,870", "4.05", "4.50"],
    ["2025-02-01", "2025-02-28", "LastMonth", "2025-03-01 09:00:00", "A@Example.com", "u-1", "Claude Code",
     "claude-opus-4-1", "Opus", "1,024", "9,870,112", "1,650,220", "$1,234.50", "$1,371.67"],
]


def test_claude_ai_both_header_variants_and_spacing_give_the_same_rows() -> None:
    variant = [" Period Start", "period_end", "period_label", "Exported At", "Email ", "account_uuid", "Product",
               "Model", "model_family", "total_requests", "total_prompt_tokens", "total_completion_tokens",
               "Total Net Spend USD", "total gross spend (USD)", "extra", ""]
    a, _ = parse("claude_ai_usage", [CLAUDE_AI_HEADER, *EXPORT])
    b, _ = parse("claude_ai_usage", [variant, *[[*r, "x", ""] for r in EXPORT]])
    assert a == b and len(a) == 2
    assert a[0]["email"] is None and a[0]["model"] is None        # organisation-level usage
    assert a[1] == {
        "period_start": date(2025, 2, 1), "period_end": date(2025, 2, 28), "period_label": "LastMonth",
        "email": "a@example.com", "account_uuid": "u-1", "product": "Claude Code", "model": "claude-opus-4-1",
        "model_family": "Opus", "total_requests": 1024, "total_prompt_tokens": 9870112,
        "total_completion_tokens": 1650220, "net_spend_usd": Decimal("1234.50"),
        "gross_spend_usd": Decimal("1371.67"), "net_spend_raw": "$1,234.50", "gross_spend_raw": "$1,371.67",
        "exported_at": datetime(2025, 3, 1, 9, tzinfo=UTC), "source_row": 3,
    }
    with pytest.raises(SheetLayoutError, match="both mean 'email'"):
        list(parse_tab("claude_ai_usage", [[*CLAUDE_AI_HEADER, "email"], *EXPORT]))


def test_claude_ai_repasted_and_overlapping_exports() -> None:
    mtd = [["2025-03-01", "2025-03-15", "MTD", "", "a@example.com", "", "Chat", "m", "", "1", "1", "1", "0", "0"]]
    month = [["2025-03-01", "2025-03-31", "LastMonth", "", "a@example.com", "", "Chat", "m", "", "2", "2", "2",
              "1", "1"]]
    values = [CLAUDE_AI_HEADER, *EXPORT, EXPORT[1], *mtd, *month,
              ["2025-04-01", "garbage", "", "", "b@example.com", "", "Chat", "m", "", "", "", "", "0", ""]]
    rows, rejected = parse("claude_ai_usage", values)
    assert len(rows) + len(rejected) == 6 and len(rows) == 2
    reasons = {r.ref: r.reason for r in rejected}
    assert reasons["row 4"] == "exact duplicate of row 3"        # the export pasted twice never doubles
    assert reasons["row 5"].startswith("period 2025-03-01..2025-03-15 overlaps the period 2025-03-01..2025-03-31")
    assert reasons["row 6"].startswith("period 2025-03-01..2025-03-31 overlaps the period 2025-03-01..2025-03-15")
    assert reasons["row 7"] == "period_end: 'garbage' is not a date (expected YYYY-MM-DD)"
    # Partitions replaced: every readable period start, rejected rows included.
    assert claude_ai_periods(values) == [date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)]


def test_align_row_follows_the_tabs_own_header() -> None:
    header = ["Notes", "API Key ID", "extra", "api_key_name", "Owner", "team", "cost_center", "workspace"]
    assert align_row("api_key_owners", header, {"api_key_id": "k1", "api_key_name": "n", "notes": "found",
                                                "owner_email": None, "valid_from": "2025-01-01"}) == [
        "found", "k1", "", "n", "", "", "", ""]


# --------------------------------------------------------------------------- the shipped sample sheet


def test_the_shipped_sample_loads_and_quarantines_what_it_documents() -> None:
    source = CsvFolderSource(SAMPLE)
    outcome: dict[str, tuple[int, dict[str, str]]] = {}
    for tab in ("people", "api_key_owners", "seat_prices", "claude_ai_usage"):
        values = source.read_tab(tab).payload
        rows, rejected = parse(tab, values)
        assert len(rows) + len(rejected) == data_row_count(values), tab
        outcome[tab] = (len(rows), {r.ref: r.reason.split(":")[0] for r in rejected})
        # Each row's `comment` (an extra column the parser ignores) says HOSTILE when it must be quarantined.
        header = [cells.normalize_header(h) for h in values[0]]
        if "comment" in header or "notes" in header:
            col = header.index("comment") if "comment" in header else header.index("notes")
            said = {f"row {i}" for i, r in enumerate(values[1:], start=2)
                    if len(r) > col and r[col].startswith("HOSTILE") and "quarantined" in r[col]}
            assert said == set(outcome[tab][1]), tab
    assert outcome == {
        "people": (6, {"row 8": "exact duplicate of row 6", "row 9": "validity overlaps row 10 (email erin.walsh@example.com, 2025-02-01..); close one range (valid_to) the day before the other starts",
                       "row 10": "validity overlaps row 9 (email erin.walsh@example.com, 2025-01-01..); close one range (valid_to) the day before the other starts",
                       "row 11": "email", "row 12": "team", "row 13": "valid_from"}),
        "api_key_owners": (5, {"row 7": "the row maps nothing", "row 8": "is_developer_tooling"}),
        "seat_prices": (5, {"row 7": "monthly_price_usd"}),
        "claude_ai_usage": (6, {"row 6": "exact duplicate of row 3", "row 7": "total_requests",
                                "row 8": "total_net_spend_usd"}),
    }
