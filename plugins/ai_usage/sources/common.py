"""Shared pieces of the pure parsers: the rejected-row record, exact unit conversions, and value coercions.

No Airflow imports here or in any module of `ai_usage.sources`: parsers are plain functions from a vendor
payload to rows of a table contract (dicts keyed by column name, without the `_ingested_at` / `_run_id`
lineage columns, which the pipeline adds). A record the parser cannot trust is yielded as `Rejected`
instead of a row: the pipeline sends it to `ops.quarantine` with the reason, so nothing is silently lost.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from typing import Any

CENT = Decimal("0.01")
# BigQuery NUMERIC, the type of every money column of the contracts: 38 digits, 9 after the point.
NUMERIC_PRECISION = 38
NUMERIC_SCALE = 9
INT64_MAX = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Rejected:
    """An input record that did not become a row, with why and where it came from."""

    reason: str
    record: Any          # the offending input, as received (JSON-able)
    ref: str = ""        # where: "page 3 item 5", "tab people row 17", "2025-09-08 page 1 item 0"


class BadValue(ValueError):
    """A field could not be coerced; the message names the field. Parsers turn it into `Rejected`."""


class PayloadError(ValueError):
    """A whole payload has the wrong shape (not an object, no `data` list, ...).

    Raised, never quarantined: a vendor shape change must fail the run loudly, not turn every row of
    every page into a quarantine record.
    """


ParseResult = Iterator[dict[str, Any] | Rejected]


def split(results: Iterable[dict[str, Any] | Rejected]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for item in results:
        (rejected if isinstance(item, Rejected) else rows).append(item)  # type: ignore[arg-type]
    return rows, rejected


# --------------------------------------------------------------------------- numbers and money


def to_decimal(value: Any, field: str) -> Decimal:
    """Exact Decimal from a JSON number (int, float, Decimal) or a numeric string; never via binary float maths.

    A float is converted through its shortest repr (``2450.125487`` stays ``2450.125487``); hooks parse JSON
    with ``parse_float=Decimal`` so production values never pass through float at all.
    """
    if isinstance(value, bool) or value is None:
        raise BadValue(f"{field}: expected a number, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise BadValue(f"{field}: {value!r} is not a number") from None
    else:
        raise BadValue(f"{field}: expected a number, got {type(value).__name__}")
    if not result.is_finite():
        raise BadValue(f"{field}: {value!r} is not a finite number")
    return result


def cents_to_usd(value: Any, field: str) -> Decimal:
    """USD from USD cents (a JSON number or a decimal string), exactly: ``"123.78912"`` → ``Decimal("1.2378912")``.

    The exponent is shifted on the Decimal's digits, so no arithmetic context (28 digits) can round it.
    """
    sign, digits, exponent = to_decimal(value, field).as_tuple()
    assert isinstance(exponent, int)  # finite, checked by to_decimal
    return Decimal((sign, digits, exponent - 2))


def to_int(value: Any, field: str, *, default: int | None = None, non_negative: bool = True) -> int | None:
    """An integer counter; accepts ints, integral floats/Decimals and digit strings; None → `default`."""
    if value is None:
        return default
    if isinstance(value, bool):
        raise BadValue(f"{field}: expected an integer, got {value!r}")
    if isinstance(value, int):
        result = value
    else:
        d = to_decimal(value, field)
        if d != d.to_integral_value():
            raise BadValue(f"{field}: {value!r} is not a whole number")
        result = int(d)
    if non_negative and result < 0:
        raise BadValue(f"{field}: {value!r} is negative")
    return result


def to_bool(value: Any, field: str, *, default: bool | None = None) -> bool | None:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadValue(f"{field}: expected true/false, got {value!r}")


def to_str(value: Any, field: str, *, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if required:
            raise BadValue(f"{field}: missing")
        return None
    if isinstance(value, (dict, list)):
        raise BadValue(f"{field}: expected a string, got {type(value).__name__}")
    return str(value)


# --------------------------------------------------------------------------- people and days


def norm_email(value: Any, field: str = "email", *, required: bool = True) -> str | None:
    """E-mail trimmed and lowercased (the join key across every source); malformed → BadValue."""
    text = to_str(value, field, required=required)
    if text is None:
        return None
    email = text.strip().lower()
    if not _EMAIL.match(email):
        raise BadValue(f"{field}: {value!r} is not an e-mail address")
    return email


def epoch_ms_to_utc(value: Any, field: str) -> datetime:
    """Epoch milliseconds (number or digit string) → aware UTC datetime.

    Integer arithmetic on a UTC epoch (no float seconds, no local-time conversion at any step).
    """
    ms = to_int(value, field, non_negative=True)
    if ms is None:
        raise BadValue(f"{field}: missing")
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise BadValue(f"{field}: {value!r} is out of range for a timestamp") from None


def epoch_ms_to_date(value: Any, field: str) -> date:
    """The UTC day of an epoch-ms instant (never the machine's local day)."""
    return epoch_ms_to_utc(value, field).date()


def parse_day(value: Any, field: str) -> date:
    """``YYYY-MM-DD`` or an RFC 3339 timestamp → the UTC day (first 10 characters when it is UTC)."""
    text = to_str(value, field, required=True)
    assert text is not None
    text = text.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadValue(f"{field}: {value!r} is not a date") from None
    if stamp.tzinfo is None:
        return stamp.date()
    return stamp.astimezone(UTC).date()


def parse_timestamp(value: Any, field: str) -> datetime | None:
    """RFC 3339 → aware UTC datetime; None stays None."""
    text = to_str(value, field)
    if text is None:
        return None
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadValue(f"{field}: {value!r} is not an RFC 3339 timestamp") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC)


# --------------------------------------------------------------------------- contract-fitting values


def fit_numeric(value: Decimal, field: str, *, scale: int = NUMERIC_SCALE,
                precision: int = NUMERIC_PRECISION) -> Decimal:
    """A Decimal that fits NUMERIC(precision, scale): more decimals are rounded half-even to `scale`.

    This is the rounding the contracts document for money columns (the verbatim figure stays in the
    matching ``*_raw`` column); too many integer digits cannot be stored and raise BadValue.
    """
    too_big = f"{field}: {value} has more than {precision - scale} integer digits"
    if value != 0 and value.adjusted() >= precision - scale:
        raise BadValue(too_big)
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if exponent < -scale or exponent > 0:
        with localcontext() as ctx:
            ctx.prec = precision + scale + 2
            value = value.quantize(Decimal(1).scaleb(-scale) if exponent < -scale else Decimal(1),
                                   rounding=ROUND_HALF_EVEN)
        if value != 0 and value.adjusted() >= precision - scale:   # rounding carried into a new digit
            raise BadValue(too_big)
    return value


def usd_from_cents(value: Any, field: str, *, allow_negative: bool = False) -> Decimal:
    """USD cents (JSON number or decimal string) → exact USD Decimal fitted to NUMERIC(38, 9)."""
    usd = fit_numeric(cents_to_usd(value, field), field)
    if usd < 0 and not allow_negative:
        raise BadValue(f"{field}: {value!r} is negative")
    return usd


def usd_from_dollars(value: Any, field: str, *, allow_negative: bool = False) -> Decimal:
    """A dollars field (already USD) → exact Decimal fitted to NUMERIC(38, 9)."""
    usd = fit_numeric(to_decimal(value, field), field)
    if usd < 0 and not allow_negative:
        raise BadValue(f"{field}: {value!r} is negative")
    return usd


def to_numeric(value: Any, field: str, *, non_negative: bool = True) -> Decimal | None:
    """A non-money NUMERIC value (request units, percentages); None stays None."""
    if value is None:
        return None
    result = fit_numeric(to_decimal(value, field), field)
    if non_negative and result < 0:
        raise BadValue(f"{field}: {value!r} is negative")
    return result


def to_count(value: Any, field: str) -> int | None:
    """A non-negative INT64 counter: ints, integral numbers, digit strings; None stays None (missing ≠ 0)."""
    result = to_int(value, field, non_negative=True)
    if result is not None and result > INT64_MAX:
        raise BadValue(f"{field}: {value!r} does not fit INT64")
    return result


def number_text(value: Any) -> str | None:
    """The text of a JSON number for the contracts' ``*_raw`` audit columns.

    Strings are kept exactly as received; a Decimal (hooks parse JSON with ``parse_float=Decimal``) is
    written with its own digits and exponent, so it converts back to the identical value; a float by its
    shortest repr. None stays None.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_id(value: Any, field: str) -> str | None:
    """A vendor id that may be a JSON number or a string (Cursor changed id types) → text; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise BadValue(f"{field}: expected an id (number or string), got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        return text or None
    number = to_decimal(value, field)
    if number != number.to_integral_value():
        raise BadValue(f"{field}: {value!r} is not a whole-number id")
    return str(int(number))


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    """Sum of Decimals without the default 28-digit context rounding."""
    total = Decimal(0)
    with localcontext() as ctx:
        ctx.prec = 200
        for value in values:
            total += value
    return total


# --------------------------------------------------------------------------- payload structure


def as_record(item: Any) -> Mapping[str, Any]:
    """A list element that must be a JSON object (one vendor record); anything else → BadValue."""
    if not isinstance(item, Mapping):
        raise BadValue(f"expected an object, got {type(item).__name__}")
    return item


def obj(value: Any, field: str) -> Mapping[str, Any] | None:
    """A nested JSON object or None; anything else (a list, a number) is a wrong type → BadValue."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadValue(f"{field}: expected an object, got {type(value).__name__}")
    return value


def payload_list(payload: Any, key: str, endpoint: str) -> list[Any]:
    """``payload[key]`` when the payload is an object holding a list there; else PayloadError."""
    if not isinstance(payload, Mapping):
        raise PayloadError(f"{endpoint}: expected a JSON object with a {key!r} list, got {type(payload).__name__}")
    items = payload.get(key)
    if not isinstance(items, list):
        got = "no such key" if key not in payload else type(items).__name__
        raise PayloadError(f"{endpoint}: expected {key!r} to be a list ({got}); keys: {sorted(payload)[:20]}")
    return items


def require_date(value: Any, name: str) -> date:
    """A parser argument that must be a calendar day (a datetime is refused: it carries a time zone question)."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{name} must be a datetime.date (a UTC day), got {value!r}")
    return value


def item_ref(prefix: str, page: int, index: int, extra: str = "") -> str:
    """Where a record came from: ``"/teams/spend page 3 item 5"`` (item = 0-based index in the page's list)."""
    ref = f"page {page} item {index}{extra}"
    return f"{prefix} {ref}" if prefix else ref


class KeySeen:
    """Primary keys already yielded from one payload, so a duplicate record is rejected, not loaded twice.

    The first occurrence wins (API order); a later one is quarantined with a reason naming the first.
    """

    def __init__(self, columns: tuple[str, ...]):
        self.columns = columns
        self._first: dict[Hashable, str] = {}

    def duplicate_of(self, row: Mapping[str, Any], ref: str) -> str | None:
        key = tuple(row[c] for c in self.columns)
        first = self._first.get(key)
        if first is None:
            self._first[key] = ref
            return None
        return f"duplicate key ({', '.join(self.columns)}) = {key!r}: first seen at {first}"
