"""Cells of a human-maintained spreadsheet → typed values, strictly: what cannot be trusted raises BadValue.

A cell arrives as the text a person sees (the Sheets API's FORMATTED_VALUE, or a CSV export of it). People
type dates, money and counts in many ways; every form accepted here has exactly one meaning, and every
form with two meanings is refused with a reason that says how to write it instead:

- dates: ISO ``2025-03-04`` (also with a time, or ``2025/03/04``), ``4 Mar 2025``, ``Mar 4, 2025``,
  ``4-Mar-2025``, ``04.03.2025`` (day first, as written with dots), and slashed day/month forms only when
  they cannot be misread (``3/15/2025`` or ``15/3/2025``); ``03/04/2025`` is ambiguous and refused, as is
  a bare serial number (``45720``: a date cell that lost its format) and a two-digit year;
- money: ``1234.5``, ``$1,234.50``, ``USD 1,234.50``, ``1,234.50 USD``, ``(12.00)`` = −12; a decimal
  comma (``12,50``) or another currency is refused;
- counts: whole numbers, with thousands separators;
- booleans: TRUE/FALSE, yes/no, y/n, 1/0, x (ticked) and blank (unset);
- a formula shown as text (``=VLOOKUP(...)``: the cell is formatted as plain text, so the sheet shows the
  formula, not its value) and spreadsheet error values (``#REF!``, ``#N/A``…) are refused in every column.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from ai_usage.sources.common import BadValue, fit_numeric

_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_HEADER_JUNK = re.compile(r"[^a-z0-9]+")
_ERRORS = ("#REF!", "#N/A", "#VALUE!", "#NAME?", "#DIV/0!", "#ERROR!", "#NUM!", "#NULL!", "#SPILL!", "#CALC!")
_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
                "october", "november", "december")
_ISO = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?"
                  r"\s*(Z|[+-]\d{2}:?\d{2}|UTC)?)?$", re.IGNORECASE)
_SLASHED = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_DOTTED = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_DAY_MONTH = re.compile(r"^(\d{1,2})[ -]([A-Za-z]{3,9})\.?[ ,-]+(\d{4})$")
_MONTH_DAY = re.compile(r"^([A-Za-z]{3,9})\.? (\d{1,2}),? (\d{4})$")
_SERIAL = re.compile(r"^\d{5}(?:\.\d+)?$")
_TWO_DIGIT_YEAR = re.compile(r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{2}$")
_MONEY_NUMBER = re.compile(r"^-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$|^-?\.\d+$")
_TRUE = {"true", "yes", "y", "1", "x", "✓", "✔"}
_FALSE = {"false", "no", "n", "0"}


def normalize_header(text: str) -> str:
    """``" Cost Center "`` → ``cost_center``; ``E-mail`` → ``e_mail``; ``Total (USD)`` → ``total_usd``."""
    return _HEADER_JUNK.sub("_", text.strip().lower()).strip("_")


def clean(value: str | None) -> str | None:
    """The cell's text trimmed (non-breaking spaces too); blank → None."""
    if value is None:
        return None
    text = _SPACES.sub(" ", str(value)).strip()
    return text or None


def check_cell(value: str | None, column: str) -> None:
    """Refuse a formula shown as text or a spreadsheet error value (in any column)."""
    if value is None:
        return
    if value.startswith("=") and len(value) > 1:
        raise BadValue(f"{column}: {value!r} is a formula shown as text, not its value "
                       "(the cell is formatted as plain text; re-enter it or paste the value)")
    if value.upper() in _ERRORS:
        raise BadValue(f"{column}: the cell shows the spreadsheet error {value}")


def text(value: str | None, column: str, *, required: bool = False) -> str | None:
    out = clean(value)
    if out is None and required:
        raise BadValue(f"{column}: missing")
    return out


def _make_date(year: int, month: int, day: int, raw: str, column: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise BadValue(f"{column}: {raw!r} is not a calendar date") from None


def _month(name: str, raw: str, column: str) -> int:
    """``Mar`` / ``March`` / ``Sept`` → 3 / 3 / 9: an abbreviation of at least three letters of an English month."""
    word = name.lower()
    for number, full in enumerate(_MONTH_NAMES, start=1):
        if full.startswith(word):
            return number
    raise BadValue(f"{column}: {raw!r} has an unknown month name")


def to_date(value: str | None, column: str, *, required: bool = False) -> date | None:
    """A calendar day in any unambiguous form (module docstring); a time part must not move the day."""
    raw = clean(value)
    if raw is None:
        if required:
            raise BadValue(f"{column}: missing")
        return None
    if m := _ISO.match(raw):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
        if m[7] and m[7].upper() not in ("Z", "UTC", "+00:00", "+0000", "-00:00"):
            raise BadValue(f"{column}: {raw!r} carries a time zone offset; write the UTC day as YYYY-MM-DD")
        return _make_date(year, month, day, raw, column)
    if m := _SLASHED.match(raw):
        a, b, year = int(m[1]), int(m[2]), int(m[3])
        if a > 12 >= b:
            return _make_date(year, b, a, raw, column)      # day/month
        if b > 12 >= a or a == b:
            return _make_date(year, a, b, raw, column)      # month/day (or both readings agree)
        if a > 12 and b > 12:
            raise BadValue(f"{column}: {raw!r} is not a calendar date")
        raise BadValue(f"{column}: {raw!r} is ambiguous (day/month or month/day?); write it as YYYY-MM-DD")
    if m := _DOTTED.match(raw):
        return _make_date(int(m[3]), int(m[2]), int(m[1]), raw, column)
    if m := _DAY_MONTH.match(raw):
        return _make_date(int(m[3]), _month(m[2], raw, column), int(m[1]), raw, column)
    if m := _MONTH_DAY.match(raw):
        return _make_date(int(m[3]), _month(m[1], raw, column), int(m[2]), raw, column)
    if _SERIAL.match(raw):
        raise BadValue(f"{column}: {raw!r} looks like a spreadsheet date serial number; "
                       "format the column as a date (YYYY-MM-DD)")
    if _TWO_DIGIT_YEAR.match(raw):
        raise BadValue(f"{column}: {raw!r} has a two-digit year; write it as YYYY-MM-DD")
    raise BadValue(f"{column}: {raw!r} is not a date (expected YYYY-MM-DD)")


def to_timestamp(value: str | None, column: str) -> datetime | None:
    """An instant: ISO date and time (no offset = UTC), or a bare day (= its UTC midnight)."""
    raw = clean(value)
    if raw is None:
        return None
    m = _ISO.match(raw)
    if m is None or m[4] is None:
        day = to_date(raw, column)
        assert day is not None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    zone = (m[7] or "Z").upper()
    offset = timedelta(0)
    if zone not in ("Z", "UTC"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    try:
        local = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6] or 0), tzinfo=UTC)
    except ValueError:
        raise BadValue(f"{column}: {raw!r} is not a timestamp") from None
    return local - offset


def _number_text(raw: str, column: str, what: str) -> tuple[str, bool]:
    """Strip currency, spaces and accounting parentheses; return (plain number text, negative?)."""
    body = raw.replace(" ", "")
    negative = False
    if body.startswith("(") and body.endswith(")"):
        body, negative = body[1:-1], True
    for prefix in ("US$", "USD", "$"):
        if body.upper().startswith(prefix):
            body = body[len(prefix):]
            break
        if body.upper().startswith("-" + prefix):
            body, negative = body[len(prefix) + 1:], not negative
            break
    if body.upper().endswith("USD"):
        body = body[:-3]
    if body.startswith("-"):
        body, negative = body[1:], not negative
    if not _MONEY_NUMBER.match(body):
        raise BadValue(f"{column}: {raw!r} is not {what} (write e.g. 1234.50 or $1,234.50)")
    return body.replace(",", ""), negative


def to_money(value: str | None, column: str, *, required: bool = False,
             allow_negative: bool = False) -> Decimal | None:
    """USD dollars, exact (Decimal) and fitted to NUMERIC(38, 9)."""
    raw = clean(value)
    if raw is None:
        if required:
            raise BadValue(f"{column}: missing")
        return None
    number, negative = _number_text(raw, column, "an amount in USD")
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise BadValue(f"{column}: {raw!r} is not an amount in USD") from None
    amount = -amount if negative else amount
    if amount < 0 and not allow_negative:
        raise BadValue(f"{column}: {raw!r} is negative")
    return fit_numeric(amount, column)


def to_count(value: str | None, column: str, *, required: bool = False) -> int | None:
    """A non-negative whole number (``1,234`` and ``12.0`` accepted)."""
    raw = clean(value)
    if raw is None:
        if required:
            raise BadValue(f"{column}: missing")
        return None
    if any(c in raw for c in "$€£") or "usd" in raw.lower():
        raise BadValue(f"{column}: {raw!r} is not a count")
    number, negative = _number_text(raw, column, "a whole number")
    count = Decimal(number)
    if count != count.to_integral_value():
        raise BadValue(f"{column}: {raw!r} is not a whole number")
    if negative and count != 0:
        raise BadValue(f"{column}: {raw!r} is negative")
    if count > 2**63 - 1:
        raise BadValue(f"{column}: {raw!r} is too large")
    return int(count)


def to_flag(value: str | None, column: str) -> bool | None:
    """TRUE/FALSE (and the usual spellings); blank → None."""
    raw = clean(value)
    if raw is None:
        return None
    word = raw.lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise BadValue(f"{column}: {raw!r} is not TRUE or FALSE")
