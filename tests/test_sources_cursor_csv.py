"""Unit tests of the CSV reader (ai_usage.sources.csv_table) and the Cursor daily-usage CSV parser on the
shipped samples (include/inbox_samples) and on hostile input."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ai_usage.sources.common import Rejected, split
from ai_usage.sources.csv_table import CsvFormatError, decode, normalise, read_csv
from ai_usage.sources.cursor import DAILY_COUNTERS
from ai_usage.sources.cursor_csv import parse_daily_usage_csv
from tests.test_sources_common import assert_fits_contract

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "include" / "inbox_samples" / "cursor" / "daily_usage"
VALID = SAMPLES / "2026-11-02_cursor_daily_usage.csv"
HOSTILE = SAMPLES / "2026-11-04_cursor_daily_usage_hostile.csv"
TODAY = date(2026, 11, 6)


def parse_text(text: str, name: str = "t.csv", today: date = TODAY) -> tuple[list[dict], list[Rejected]]:
    return split(parse_daily_usage_csv(read_csv(text, name), today=today))


def parse_file(path: Path, today: date = TODAY) -> tuple[list[dict], list[Rejected]]:
    return parse_text(decode(path.read_bytes(), path.name), path.name, today)


# --------------------------------------------------------------------------- the reader


def test_normalise_ignores_case_spacing_and_punctuation() -> None:
    assert {normalise(h) for h in ("User Email", "user_email", "userEmail", " USER-EMAIL ", "\ufeffuser.email")} \
        == {"useremail"}
    assert normalise("Amount (USD)") == normalise("amount_usd") == "amountusd"


def test_reader_handles_bom_crlf_semicolons_quotes_and_counts_spreadsheet_rows() -> None:
    text = '\ufeffDate;Email;mostUsedModel\r\n2026-11-01;a@example.com;"multi\r\nline; model"\r\n\r\n2026-11-02;b@example.com;x\r\n'
    table = read_csv(text, "semi.csv")
    assert table.delimiter == ";"
    assert table.header == ("Date", "Email", "mostUsedModel")
    # Row 2 holds a quoted line break, row 3 is blank: the next record is spreadsheet row 4.
    assert [(r.row, r.cells) for r in table.records] == [
        (2, ("2026-11-01", "a@example.com", "multi\r\nline; model")),
        (4, ("2026-11-02", "b@example.com", "x")),
    ]
    rows, rejected = parse_text(text, "semi.csv")
    assert rejected == []
    assert [r["most_used_model"] for r in rows] == ["multi\r\nline; model", "x"]


def test_reader_refuses_what_is_not_utf8_csv() -> None:
    with pytest.raises(CsvFormatError, match=r"file latin\.csv: not UTF-8 text.*CSV UTF-8"):
        decode("Date,Email\n2026-11-01,jos\xe9@example.com\n".encode("latin-1"), "latin.csv")
    with pytest.raises(CsvFormatError, match=r"file empty\.csv: empty"):
        read_csv("\ufeff \n", "empty.csv")
    with pytest.raises(CsvFormatError, match=r"file quote\.csv: not valid CSV"):
        read_csv('Date,Email\n2026-11-01,"a@example.com"x\n', "quote.csv")


# --------------------------------------------------------------------------- the valid sample


def test_valid_sample_loads_every_value_exactly() -> None:
    rows, rejected = parse_file(VALID)
    assert rejected == []
    assert len(rows) == 6
    assert_fits_contract("raw.cursor_daily_usage", rows)
    ada = rows[0]
    assert ada == {
        "usage_date": date(2026, 11, 2), "email": "ada.lovelace@example.com", "user_id": "1001", "is_active": True,
        "total_lines_added": 1543, "total_lines_deleted": 892, "accepted_lines_added": 1102,
        "accepted_lines_deleted": 645, "total_applies": 87, "total_accepts": 73, "total_rejects": 14,
        "total_tabs_shown": 342, "total_tabs_accepted": 289, "composer_requests": 45, "chat_requests": 128,
        "agent_requests": 12, "cmdk_usages": 67, "subscription_included_reqs": 180, "api_key_reqs": 0,
        "usage_based_reqs": 5, "bugbot_usages": 3, "most_used_model": "gpt-5", "apply_most_used_extension": ".tsx",
        "tab_most_used_extension": ".ts", "client_version": "1.7.2",
    }
    alan = rows[2]
    assert (alan["email"], alan["is_active"], alan["total_lines_added"], alan["most_used_model"]) == (
        "alan.turing@example.com", False, 0, None)  # e-mail lowercased; a blank string cell is NULL
    assert sorted({r["usage_date"] for r in rows}) == [date(2026, 11, 2), date(2026, 11, 3)]


def test_header_spellings_are_one_column() -> None:
    spellings = [
        "Date,Email,totalLinesAdded,isActive",
        "Day,User Email,Total Lines Added,Is Active",
        "usage_date,user_email,total_lines_added,is_active",
        "DATE,EMAIL,TOTAL-LINES-ADDED,ISACTIVE",
    ]
    parsed = [parse_text(f"{h}\n2026-11-01,A@Example.com,7,yes\n")[0] for h in spellings]
    assert all(p == parsed[0] for p in parsed)
    assert (parsed[0][0]["usage_date"], parsed[0][0]["email"], parsed[0][0]["total_lines_added"],
            parsed[0][0]["is_active"]) == (date(2026, 11, 1), "a@example.com", 7, True)


def test_absent_column_and_blank_cell_are_null_not_zero() -> None:
    rows, _ = parse_text("Date,Email,chatRequests\n2026-11-01,a@example.com,\n2026-11-01,b@example.com,0\n")
    assert [r["chat_requests"] for r in rows] == [None, 0]
    assert all(r[c] is None for r in rows for c in DAILY_COUNTERS if c != "chat_requests")
    assert all(r["is_active"] is None and r["user_id"] is None for r in rows)


def test_unknown_columns_are_ignored() -> None:
    rows, rejected = parse_text("Date,Email,Team Name,chatRequests\n2026-11-01,a@example.com,Platform,4\n")
    assert rejected == [] and rows[0]["chat_requests"] == 4 and "Team Name" not in rows[0]


# --------------------------------------------------------------------------- whole-file problems


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Date,totalLinesAdded", r"file bad\.csv: the header has no required column 'email' \(email / user_email"),
        ("Email,totalLinesAdded", r"file bad\.csv: the header has no required column 'usage_date' \(usage_date / date"),
        ("Date,Email,User Email", r"file bad\.csv: columns 'Email' and 'User Email' both mean 'email'"),
    ],
)
def test_header_problems_fail_the_file_naming_it_and_the_column(header: str, message: str) -> None:
    with pytest.raises(CsvFormatError, match=message):
        parse_text(f"{header}\n2026-11-01,a@example.com,1\n", "bad.csv")


# --------------------------------------------------------------------------- hostile rows


def test_hostile_sample_quarantines_each_bad_row_with_its_file_row_and_reason() -> None:
    rows, rejected = parse_file(HOSTILE)
    got = {r.ref.removeprefix(f"file {HOSTILE.name} "): r.reason for r in rejected}
    expected = {
        "row 3": "Email: 'not-an-email' is not an e-mail address",
        "row 4": "totalLinesAdded: '-5' is negative",
        "row 5": "totalLinesAdded: '1,234' is not a number",
        "row 6": "Date: '11/04/2026' is not a date (expected YYYY-MM-DD, the UTC day)",
        "row 7": "totalLinesAdded: '2.5' is not a whole number",
        "row 9": "isActive: 'maybe' is not true/false",
        "row 10": "totalLinesAdded: '99999999999999999999' does not fit INT64",
        "row 11": "Date: 2099-01-01 is not a complete UTC day yet (today is 2026-11-06 UTC)",
        "row 12": "row has 8 cells but the header has 7",
        "row 13": "row has 4 cells but the header has 7",
        "row 14": "Date: missing (expected YYYY-MM-DD, the UTC day)",
    }
    assert {k: v for k, v in got.items() if k != "row 8"} == expected
    assert got["row 8"].startswith("duplicate key (usage_date, email)") and got["row 8"].endswith(
        f"first seen at file {HOSTILE.name} row 2")
    # The quarantine keeps the record as written, under its header names.
    row12 = next(r for r in rejected if r.ref.endswith("row 12"))
    assert row12.record["User Email"] == "margaret.hamilton@example.com"
    assert row12.record["(cells beyond the header)"] == ["surplus"]
    # Two rows survive: a plain one, and one whose offset timestamp is 04:30 UTC on the 5th.
    assert [(r["usage_date"], r["email"]) for r in rows] == [
        (date(2026, 11, 4), "ada.lovelace@example.com"), (date(2026, 11, 5), "katherine.johnson@example.com")]
    assert rows[1]["most_used_model"] == '=HYPERLINK("http://x")'  # text stays text, verbatim


def test_today_is_not_a_complete_day_but_yesterday_is() -> None:
    text = "Date,Email\n2026-11-05,a@example.com\n2026-11-06,b@example.com\n2026-11-06T00:30:00+01:00,c@example.com\n"
    rows, rejected = parse_text(text, today=date(2026, 11, 6))
    assert [(r["usage_date"], r["email"]) for r in rows] == [
        (date(2026, 11, 5), "a@example.com"), (date(2026, 11, 5), "c@example.com")]
    assert [r.reason for r in rejected] == ["Date: 2026-11-06 is not a complete UTC day yet (today is 2026-11-06 UTC)"]


def test_today_must_be_a_date() -> None:
    from datetime import datetime

    with pytest.raises(TypeError):
        list(parse_daily_usage_csv(read_csv("Date,Email\n", "x.csv"), today=datetime(2026, 11, 6)))  # type: ignore[arg-type]


def test_csv_parsers_import_nothing_from_airflow() -> None:
    import subprocess
    import sys

    code = ("import sys, ai_usage.sources.cursor_csv, ai_usage.sources.anthropic_csv, ai_usage.sources.csv_table\n"
            "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={"PYTHONPATH": f"{ROOT / 'plugins'}", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
