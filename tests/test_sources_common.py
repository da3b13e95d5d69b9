"""Unit tests of ai_usage.sources.common: exact money conversions, coercions, UTC days, payload shape checks.

Also home of `assert_fits_contract`, which the parser tests use to check every row they produce against
the table contract in include/schemas (exact column set, REQUIRED values, Python types, NUMERIC scale).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ai_usage.sources.common import (
    INT64_MAX,
    BadValue,
    KeySeen,
    PayloadError,
    Rejected,
    cents_to_usd,
    epoch_ms_to_date,
    epoch_ms_to_utc,
    exact_sum,
    fit_numeric,
    item_ref,
    norm_email,
    number_text,
    obj,
    parse_day,
    parse_timestamp,
    payload_list,
    require_date,
    split,
    to_count,
    to_decimal,
    to_id,
    to_numeric,
    usd_from_cents,
    usd_from_dollars,
)
from ai_usage.warehouse.contracts import Column, get_contract

ROOT = Path(__file__).resolve().parents[1]
LINEAGE = {"_ingested_at", "_run_id"}


# --------------------------------------------------------------------------- contract checker (shared)


def _check_value(value: Any, col: Column, where: str) -> None:
    if col.repeated:
        assert isinstance(value, list), f"{where}: REPEATED needs a list, got {value!r}"
        for n, element in enumerate(value):
            assert element is not None, f"{where}[{n}] is None"
            _check_scalar_or_record(element, col, f"{where}[{n}]")
        return
    if value is None:
        assert not col.required, f"{where}: REQUIRED but None"
        return
    _check_scalar_or_record(value, col, where)


def _check_scalar_or_record(value: Any, col: Column, where: str) -> None:
    t = col.type
    if t == "RECORD":
        assert isinstance(value, dict), f"{where}: RECORD needs a dict, got {value!r}"
        names = {f.name for f in col.fields}
        assert set(value) == names, f"{where}: keys {sorted(value)} != contract {sorted(names)}"
        for f in col.fields:
            _check_value(value[f.name], f, f"{where}.{f.name}")
    elif t == "STRING":
        assert isinstance(value, str), f"{where}: STRING needs str, got {value!r}"
    elif t == "INT64":
        assert type(value) is int and -INT64_MAX - 1 <= value <= INT64_MAX, f"{where}: INT64 needs int, got {value!r}"
    elif t == "NUMERIC":
        assert isinstance(value, Decimal), f"{where}: NUMERIC needs Decimal, got {value!r}"
        scale = col.scale if col.scale is not None else 9
        precision = col.precision if col.precision is not None else 38
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int) and exponent >= -scale, f"{where}: {value} has more than {scale} decimals"
        assert value == 0 or value.adjusted() < precision - scale, f"{where}: {value} too many integer digits"
    elif t == "DATE":
        assert type(value) is date, f"{where}: DATE needs a date (not a datetime), got {value!r}"
    elif t == "TIMESTAMP":
        assert isinstance(value, datetime), f"{where}: TIMESTAMP needs a datetime, got {value!r}"
        assert value.utcoffset() is not None and value.utcoffset().total_seconds() == 0, f"{where}: not aware UTC"
    elif t == "BOOL":
        assert type(value) is bool, f"{where}: BOOL needs bool, got {value!r}"
    elif t == "JSON":
        json.dumps(value)
    else:  # pragma: no cover - a contract type the raw tables do not use
        raise AssertionError(f"{where}: unexpected contract type {t}")


def assert_fits_contract(table: str, rows: Iterable[Mapping[str, Any]]) -> None:
    """Every row has exactly the contract's columns (minus lineage) with values of the contract's types."""
    contract = get_contract(table)
    columns = [c for c in contract.columns if c.name not in LINEAGE]
    names = {c.name for c in columns}
    rows = list(rows)
    assert rows, f"{table}: no rows to check"
    for i, row in enumerate(rows):
        assert not isinstance(row, Rejected), f"{table} row {i} is Rejected: {row}"
        assert set(row) == names, f"{table} row {i}: extra {set(row) - names}, missing {names - set(row)}"
        for col in columns:
            _check_value(row[col.name], col, f"{table} row {i} {col.name}")


# --------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("cents", "usd"),
    [
        ("123.78912", "1.2378912"),           # cost-report string (vendor-apis.md G-A2)
        ("123.45", "1.2345"),
        (1025, "10.25"),                      # Claude Code integer cents
        (Decimal("2450.125487"), "24.50125487"),  # Cursor fractional cents, parsed with parse_float=Decimal
        (2450.125487, "24.50125487"),         # the same as a float: its shortest repr, never binary maths
        ("123456789012.3456789", "1234567890.123456789"),
        ("0.0000001", "0.000000001"),
        ("0", "0"),
        (" 42 ", "0.42"),
    ],
)
def test_cents_to_usd_is_exact(cents: Any, usd: str) -> None:
    result = cents_to_usd(cents, "amount")
    assert result == Decimal(usd)
    assert isinstance(result, Decimal)


def test_cents_to_usd_keeps_digits_beyond_the_default_context() -> None:
    # 40 significant digits: Decimal's default 28-digit context would round this, the exponent shift must not.
    cents = "1234567890123456789012345678901234.567891"
    assert str(cents_to_usd(cents, "amount")) == "12345678901234567890123456789012.34567891"


@pytest.mark.parametrize("bad", ["abc", "", "NaN", "Infinity", None, True, [1], {"a": 1}])
def test_cents_to_usd_rejects_non_numbers(bad: Any) -> None:
    with pytest.raises(BadValue, match="amount"):
        cents_to_usd(bad, "amount")


@pytest.mark.parametrize(
    ("cents", "usd"),
    [
        ("40.16699999999999", "0.401670000"),        # 16 decimals of USD: half-even to 9 (contract rule)
        ("0.00000005", "0"),                         # 0.0000000005 USD -> ties to even: 0
        ("0.00000015", "0.000000002"),               # 0.0000000015 -> 0.000000002 (even)
        ("0.00000025", "0.000000002"),               # 0.0000000025 -> 0.000000002 (even)
        ("123456789012.3456789", "1234567890.123456789"),  # exactly 9 decimals: untouched
        (Decimal("1E+3"), "10"),                     # a positive exponent comes back as a plain integer
    ],
)
def test_usd_from_cents_fits_numeric_38_9(cents: Any, usd: str) -> None:
    result = usd_from_cents(cents, "x")
    assert result == Decimal(usd)
    assert -result.as_tuple().exponent <= 9  # type: ignore[operator]
    assert result.as_tuple().exponent <= 0   # type: ignore[operator]


def test_fit_numeric_refuses_more_than_29_integer_digits() -> None:
    assert fit_numeric(Decimal("9" * 29), "x") == Decimal("9" * 29)
    with pytest.raises(BadValue, match="integer digits"):
        fit_numeric(Decimal("1" + "0" * 29), "x")
    with pytest.raises(BadValue, match="integer digits"):  # rounding carries into a 30th digit
        fit_numeric(Decimal("9" * 29 + ".9999999999"), "x")
    with pytest.raises(BadValue):
        usd_from_cents("1e99999", "amount")


def test_negative_money_is_refused_unless_allowed() -> None:
    with pytest.raises(BadValue, match="negative"):
        usd_from_cents("-1.5", "spendCents")
    assert usd_from_cents("-1.5", "x", allow_negative=True) == Decimal("-0.015")
    with pytest.raises(BadValue, match="negative"):
        usd_from_dollars(-100, "monthlyLimitDollars")


@pytest.mark.parametrize(("dollars", "usd"), [(100, "100"), (Decimal("12.5"), "12.5"), ("0", "0"), (0.1, "0.1")])
def test_usd_from_dollars_copies_exactly(dollars: Any, usd: str) -> None:
    assert usd_from_dollars(dollars, "x") == Decimal(usd)


def test_exact_sum_does_not_round_at_28_digits() -> None:
    values = [Decimal("12345678901234567890.123456789"), Decimal("0.000000002")]
    assert exact_sum(values) == Decimal("12345678901234567890.123456791")
    assert sum(values) != exact_sum(values)  # the default context would have rounded


def test_to_decimal_never_goes_through_binary_float_maths() -> None:
    assert to_decimal(0.1, "x") == Decimal("0.1")
    assert to_decimal(40.16699999999999, "x") == Decimal("40.16699999999999")


def test_to_numeric_for_request_units() -> None:
    assert to_numeric(1.4, "requestsCosts") == Decimal("1.4")
    assert to_numeric(None, "requestsCosts") is None
    with pytest.raises(BadValue, match="negative"):
        to_numeric(-1, "requestsCosts")


# --------------------------------------------------------------------------- counters, ids, raw text


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (12, 12), ("12", 12), (Decimal("7"), 7), (3.0, 3), (None, None)])
def test_to_count_accepts_whole_numbers_and_digit_strings(value: Any, expected: int | None) -> None:
    assert to_count(value, "n") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [("twelve", "not a number"), (-1, "negative"), ("-3", "negative"), (1.5, "whole"), (True, "integer"),
     (2**63, "INT64"), ([1], "number"), ({"a": 1}, "number")],
)
def test_to_count_rejects_what_is_not_a_count(value: Any, message: str) -> None:
    with pytest.raises(BadValue, match=message):
        to_count(value, "n")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(12345, "12345"), ("user_PDSPmvukpYgZEDXsoNirw3CFhy", "user_PDSPmvukpYgZEDXsoNirw3CFhy"),
     (Decimal("12345"), "12345"), (12345.0, "12345"), (None, None), ("  ", None)],
)
def test_to_id_turns_numbers_and_strings_into_text(value: Any, expected: str | None) -> None:
    assert to_id(value, "id") == expected


@pytest.mark.parametrize("value", [True, 1.5, [1], {"id": 1}])
def test_to_id_rejects_other_types(value: Any) -> None:
    with pytest.raises(BadValue, match="id"):
        to_id(value, "id")


def test_number_text_keeps_the_vendor_figure() -> None:
    assert number_text("123.78912") == "123.78912"
    assert number_text(" 1.50 ") == " 1.50 "          # strings verbatim, whitespace included
    assert number_text(Decimal("40.16699999999999")) == "40.16699999999999"
    assert number_text(Decimal("2450.1250")) == "2450.1250"   # trailing zero kept
    assert number_text(2450) == "2450"
    assert number_text(0.1) == "0.1"
    assert number_text(None) is None
    assert Decimal(number_text(Decimal("1E-7"))) == Decimal("1E-7")  # converts back to the same value


def test_norm_email() -> None:
    assert norm_email("  Dev@Company.COM ") == "dev@company.com"
    assert norm_email(None, required=False) is None
    for bad in ["not-an-email", "a@b", "a b@c.d", 42]:
        with pytest.raises(BadValue, match="e-mail"):
            norm_email(bad)
    with pytest.raises(BadValue, match="missing"):
        norm_email(None)


# --------------------------------------------------------------------------- days and instants


def test_epoch_ms_is_converted_in_utc_exactly() -> None:
    assert epoch_ms_to_utc(1710720000000, "date") == datetime(2024, 3, 18, tzinfo=UTC)
    assert epoch_ms_to_utc("1750979225854", "ts") == datetime(2025, 6, 26, 23, 7, 5, 854000, tzinfo=UTC)
    assert epoch_ms_to_utc(1710719999999, "d") == datetime(2024, 3, 17, 23, 59, 59, 999000, tzinfo=UTC)
    assert epoch_ms_to_date(1710719999999, "d") == date(2024, 3, 17)
    with pytest.raises(BadValue, match="out of range"):
        epoch_ms_to_utc(10**20, "d")
    with pytest.raises(BadValue, match="negative"):
        epoch_ms_to_utc(-1, "d")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2025-09-08", date(2025, 9, 8)), ("2025-09-08T00:00:00Z", date(2025, 9, 8)),
     ("2025-09-08T00:00:00+00:00", date(2025, 9, 8)), ("2025-09-08T23:30:00-02:00", date(2025, 9, 9))],
)
def test_parse_day(value: str, expected: date) -> None:
    assert parse_day(value, "date") == expected


@pytest.mark.parametrize("bad", ["yesterday", "2025-13-01", "2025-02-30", "", None])
def test_parse_day_rejects(bad: Any) -> None:
    with pytest.raises(BadValue):
        parse_day(bad, "date")


def test_parse_timestamp() -> None:
    assert parse_timestamp("2024-10-30T23:58:27.427722Z", "t") == datetime(2024, 10, 30, 23, 58, 27, 427722, tzinfo=UTC)
    assert parse_timestamp("2025-01-01T01:00:00+01:00", "t") == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_timestamp(None, "t") is None
    with pytest.raises(BadValue, match="RFC 3339"):
        parse_timestamp("last tuesday", "t")


def test_epoch_and_day_helpers_ignore_the_machine_time_zone() -> None:
    code = (
        "from ai_usage.sources.common import epoch_ms_to_utc, epoch_ms_to_date, parse_day, parse_timestamp\n"
        "import time\n"
        "print(time.localtime(0).tm_hour, epoch_ms_to_utc(1710719999999, 'x').isoformat(),"
        " epoch_ms_to_date(1710719999999, 'x'), epoch_ms_to_date(1710720000000, 'x'),"
        " parse_day('2025-09-08T00:00:00Z', 'x'), parse_timestamp('2025-09-08T23:30:00Z', 'x').date())\n"
    )
    outputs = {}
    for tz in ("UTC", "America/Los_Angeles", "Pacific/Kiritimati"):
        env = dict(os.environ, TZ=tz, PYTHONPATH=f"{ROOT / 'plugins'}{os.pathsep}{ROOT}")
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        local_hour, rest = done.stdout.strip().split(" ", 1)
        outputs[tz] = (int(local_hour), rest)
    assert len({hour for hour, _ in outputs.values()}) == 3, "TZ did not change the subprocess' local time"
    assert {rest for _, rest in outputs.values()} == {
        "2024-03-17T23:59:59.999000+00:00 2024-03-17 2024-03-18 2025-09-08 2025-09-08"
    }


# --------------------------------------------------------------------------- structure helpers


def test_payload_list_raises_on_wrong_shapes() -> None:
    assert payload_list({"data": [1]}, "data", "/x") == [1]
    for bad in (None, [], "text", {"data": None}, {"data": {"a": 1}}, {"other": []}):
        with pytest.raises(PayloadError, match="/x"):
            payload_list(bad, "data", "/x")
    assert issubclass(PayloadError, ValueError)


def test_obj_and_require_date() -> None:
    assert obj(None, "f") is None
    assert obj({"a": 1}, "f") == {"a": 1}
    with pytest.raises(BadValue, match="f: expected an object"):
        obj([1], "f")
    assert require_date(date(2025, 1, 1), "d") == date(2025, 1, 1)
    with pytest.raises(TypeError, match="snapshot_date"):
        require_date(datetime(2025, 1, 1, tzinfo=UTC), "snapshot_date")
    with pytest.raises(TypeError):
        require_date("2025-01-01", "snapshot_date")


def test_item_ref_and_key_seen() -> None:
    assert item_ref("/teams/spend", 3, 5) == "/teams/spend page 3 item 5"
    assert item_ref("", 1, 0) == "page 1 item 0"
    seen = KeySeen(("a", "b"))
    assert seen.duplicate_of({"a": 1, "b": None}, "page 1 item 0") is None
    assert seen.duplicate_of({"a": 1, "b": 2}, "page 1 item 1") is None
    reason = seen.duplicate_of({"a": 1, "b": None}, "page 1 item 2")
    assert reason is not None and "first seen at page 1 item 0" in reason


def test_split() -> None:
    rejected = Rejected("bad", {"x": 1}, "page 1 item 1")
    rows, bad = split([{"a": 1}, rejected, {"a": 2}])
    assert rows == [{"a": 1}, {"a": 2}] and bad == [rejected]
