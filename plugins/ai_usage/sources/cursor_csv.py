"""Cursor daily usage as a CSV file (the manual fallback) → rows of raw.cursor_daily_usage.

Cursor does not document the columns of its dashboard's CSV export, so this module defines the format
*we* accept (runbook/manual-csv-fallback.md): one row per UTC day and user, with the field names of the
Admin API's ``POST /teams/daily-usage-data`` (https://cursor.com/docs/account/teams/admin-api,
vendor-apis.md §2.3) or the contract's column names, in any case and spacing (``Total Lines Added``,
``totalLinesAdded`` and ``total_lines_added`` are one column). Required: ``Date`` (also ``Day``,
``usage_date``; ``YYYY-MM-DD`` in UTC, or an RFC 3339 timestamp, converted to its UTC day) and ``Email``
(also ``User Email``). Every other column is optional; an absent column or a blank cell is NULL (not 0),
as for an API version without that field.

A row is rejected (quarantined with the file name and spreadsheet row) when its date is not a date or
not a complete UTC day yet, its e-mail is not one, a counter is not a whole non-negative number (no
thousands separators), or its (day, e-mail) repeats an earlier row of the file.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ai_usage.sources.common import (
    BadValue,
    KeySeen,
    ParseResult,
    Rejected,
    norm_email,
    parse_day,
    require_date,
    to_count,
    to_id,
    to_str,
)
from ai_usage.sources.csv_table import Column, CsvFormat, CsvTable, bind, cell_bool, records
from ai_usage.sources.cursor import DAILY_COUNTERS, DAILY_STRINGS

DATE_ALIASES = ("date", "day", "date_utc", "day_utc")

DAILY_USAGE_FORMAT = CsvFormat(
    title="Cursor daily usage CSV",
    columns=(
        Column("usage_date", DATE_ALIASES),
        Column("email", ("user_email", "email_address")),
        Column("user_id", ("userId",)),
        Column("is_active", ("isActive", "active")),
        *(Column(column, (vendor,)) for column, vendor in {**DAILY_COUNTERS, **DAILY_STRINGS}.items()),
    ),
    required=("usage_date", "email"),
)


def complete_day(value: str | None, column: str, today: date) -> date:
    """The UTC day of a date cell, refused when it is today or later (not a complete UTC day yet)."""
    try:
        day = parse_day(value, column)
    except BadValue as exc:
        raise BadValue(f"{exc} (expected YYYY-MM-DD, the UTC day)") from None
    if day >= today:
        raise BadValue(f"{column}: {day.isoformat()} is not a complete UTC day yet (today is {today.isoformat()} UTC)")
    return day


def parse_daily_usage_csv(table: CsvTable, *, today: date) -> ParseResult:
    """A Cursor daily-usage CSV → raw.cursor_daily_usage rows, or Rejected records (see module docstring).

    `today` is the current UTC day: rows of today or later are partial and rejected. Raises
    CsvFormatError (a PayloadError) when the header lacks ``Date`` or ``Email``.
    """
    today = require_date(today, "today")
    binding = bind(table, DAILY_USAGE_FORMAT)
    seen = KeySeen(("usage_date", "email"))
    for item in records(table, binding):
        if isinstance(item, Rejected):
            yield item
            continue
        try:
            row = _row(item.values, today)
        except BadValue as exc:
            yield Rejected(str(exc), item.raw, item.ref)
            continue
        duplicate = seen.duplicate_of(row, item.ref)
        yield Rejected(duplicate, item.raw, item.ref) if duplicate else row


def _row(cells: dict[str, str | None], today: date) -> dict[str, Any]:
    row: dict[str, Any] = {
        "usage_date": complete_day(cells.get("usage_date"), "Date", today),
        "email": norm_email(cells.get("email"), "Email"),
        "user_id": to_id(cells.get("user_id"), "userId"),
        "is_active": cell_bool(cells.get("is_active"), "isActive"),
    }
    for column, vendor in DAILY_COUNTERS.items():
        row[column] = to_count(cells.get(column), vendor)
    for column, vendor in DAILY_STRINGS.items():
        row[column] = to_str(cells.get(column), vendor)
    return row
