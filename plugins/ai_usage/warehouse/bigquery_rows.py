"""Rows → newline-delimited JSON for BigQuery load jobs, checked against the table contract first.

Encoding follows BigQuery's JSON load format
(https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-json#details_of_loading_json_data):
NUMERIC/BIGNUMERIC as decimal strings (never floats: money stays exact), DATE as ``YYYY-MM-DD``,
TIMESTAMP as RFC 3339 in UTC with a ``Z`` (a naive datetime is refused: its zone is unknowable),
DATETIME as civil time, BYTES as base64, RECORD as objects, REPEATED as arrays; missing keys and None are
NULL. Values must already have the contract's Python types; nothing is coerced from strings, so a
parser bug surfaces here as a ContractError instead of as a silently different value.

`spool_rows` streams pages into a spooled temporary file (memory up to a bound, then disk), so the
size of a backfill does not grow the worker's memory, and every row is checked before a byte is sent.
"""

from __future__ import annotations

import base64
import json
import math
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import IO, Any

from ai_usage.exceptions import ContractError
from ai_usage.warehouse.base import Rows
from ai_usage.warehouse.contracts import Column, TableContract

SPOOL_MEMORY_BYTES = 16 * 1024 * 1024
# Digits BigQuery allows before/after the point when the contract gives no precision/scale
# (https://cloud.google.com/bigquery/docs/reference/standard-sql/data-types#decimal_types).
_DEFAULT_DIGITS = {"NUMERIC": (29, 9), "BIGNUMERIC": (38, 38)}


def iter_rows(rows: Rows) -> Iterator[Mapping[str, Any]]:
    """Flatten an iterable of rows or of pages of rows (lists) into rows."""
    for item in rows:
        if isinstance(item, Mapping):
            yield item
        elif isinstance(item, Sequence) and not isinstance(item, str | bytes):
            for row in item:
                if not isinstance(row, Mapping):
                    raise ContractError(f"a page must hold row dicts, got {type(row).__name__}")
                yield row
        else:
            raise ContractError(f"rows must be dicts or pages (lists) of dicts, got {type(item).__name__}")


def format_decimal(value: Decimal) -> str:
    """Plain positional notation (never ``1E-9``), exactly the digits given."""
    return format(value, "f")


def check_decimal(value: Decimal | int, col: Column, where: str) -> str:
    """Validate a NUMERIC value against the column's precision/scale and return its JSON string."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ContractError(f"{where}: {col.type} needs a Decimal (or int), got {type(value).__name__} "
                            f"{value!r}; floats are refused so money stays exact")
    dec = Decimal(value)
    if not dec.is_finite():
        raise ContractError(f"{where}: {dec} is not a finite number")
    default_int, default_scale = _DEFAULT_DIGITS[col.type]
    scale = col.scale if col.scale is not None else default_scale
    int_digits = (col.precision - scale) if col.precision is not None else default_int
    sign, digits, exponent = dec.as_tuple()
    assert isinstance(exponent, int)
    extra = -exponent - scale                 # fractional digits beyond the column's scale
    if extra > 0:
        if any(digits[-extra:]):
            raise ContractError(f"{where}: {dec} has more than {scale} decimals; BigQuery would round it")
        digits, exponent = digits[:-extra] or (0,), exponent + extra   # only zeros dropped: exact
        dec = Decimal((sign, digits, exponent))
    whole = len(digits) + exponent if any(digits) else 0
    if whole > int_digits:
        raise ContractError(f"{where}: {value} has more than {int_digits} integer digits")
    return format_decimal(dec)


def _scalar(value: Any, col: Column, where: str) -> Any:
    t = col.type
    if t == "STRING":
        if isinstance(value, str):
            return value
    elif t == "INT64":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif t == "FLOAT64":
        if isinstance(value, float | int) and not isinstance(value, bool):
            f = float(value)
            if math.isnan(f):
                return "NaN"
            if math.isinf(f):
                return "Infinity" if f > 0 else "-Infinity"
            return f
    elif t in ("NUMERIC", "BIGNUMERIC"):
        return check_decimal(value, col, where)
    elif t == "BOOL":
        if isinstance(value, bool):
            return value
    elif t == "DATE":
        if isinstance(value, date) and not isinstance(value, datetime):
            return value.isoformat()
    elif t == "TIMESTAMP":
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise ContractError(f"{where}: TIMESTAMP needs a timezone-aware datetime, got naive {value!r}")
            return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    elif t == "DATETIME":
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.isoformat(sep=" ", timespec="microseconds")
    elif t == "TIME":
        if isinstance(value, time) and value.tzinfo is None:
            return value.isoformat(timespec="microseconds")
    elif t == "BYTES":
        if isinstance(value, bytes | bytearray):
            return base64.b64encode(bytes(value)).decode("ascii")
    elif t == "JSON":
        try:
            json.dumps(value, allow_nan=False, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise ContractError(f"{where}: value is not JSON-encodable: {exc}") from None
        return value
    else:  # pragma: no cover - contracts.py admits no other scalar type
        raise ContractError(f"{where}: unsupported type {t}")
    raise ContractError(f"{where}: {t} column got {type(value).__name__} {value!r}")


def check_value(value: Any, col: Column, where: str) -> Any:
    """Check one non-NULL scalar against its column type; return its JSON encoding."""
    if value is None:
        raise ContractError(f"{where}: NULL is not allowed here")
    return _scalar(value, col, where)


def _json_default(value: Any) -> Any:
    """Inside JSON columns only: Decimals as strings (exact), dates/datetimes as ISO strings."""
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-encodable")


def _value(value: Any, col: Column, where: str) -> Any:
    if col.repeated:
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
            raise ContractError(f"{where}: REPEATED column needs a list, got {type(value).__name__}")
        out = []
        for i, item in enumerate(value):
            if item is None:
                raise ContractError(f"{where}[{i}]: BigQuery arrays cannot hold NULL")
            out.append(_one(item, col, f"{where}[{i}]"))
        return out
    return _one(value, col, where)


def _one(value: Any, col: Column, where: str) -> Any:
    if col.type == "RECORD":
        if not isinstance(value, Mapping):
            raise ContractError(f"{where}: RECORD needs a dict, got {type(value).__name__}")
        return encode_record(value, col.fields, where)
    return _scalar(value, col, where)


def encode_record(row: Mapping[str, Any], columns: Sequence[Column], where: str) -> dict[str, Any]:
    """Check one row (or nested record) against its columns and return its JSON-ready dict."""
    by_name = {c.name: c for c in columns}
    unknown = [k for k in row if k not in by_name]
    if unknown:
        raise ContractError(f"{where}: unknown column(s) {sorted(map(str, unknown))}")
    out: dict[str, Any] = {}
    for col in columns:
        value = row.get(col.name)
        if value is None:
            if col.required:
                raise ContractError(f"{where}: REQUIRED column {col.name!r} is missing or None")
            continue
        out[col.name] = _value(value, col, f"{where}.{col.name}")
    return out


def partition_date(value: Any) -> date:
    """The UTC day a partition-field value belongs to."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    return value


@dataclass
class Spooled:
    """Validated rows as newline-delimited JSON in a temporary file, rewound, ready to upload."""

    file: IO[bytes]
    rows: int
    size: int

    def close(self) -> None:
        self.file.close()


RowCheck = Callable[[Mapping[str, Any], str], None]


def spool_rows(
    contract: TableContract,
    rows: Rows,
    *,
    dates: Collection[date] | None = None,
    check: RowCheck | None = None,
    memory_bytes: int = SPOOL_MEMORY_BYTES,
) -> Spooled:
    """Validate and encode every row into a spooled NDJSON file; raise ContractError on the first bad row.

    With `dates`, each row's partition-field value (its UTC day) must be one of them. `check` is an
    extra per-row test (``replace_where`` uses it to require the key). The caller closes the result.
    """
    allowed = set(dates) if dates is not None else None
    pfield = contract.partition_field
    spool = tempfile.SpooledTemporaryFile(max_size=memory_bytes, mode="r+b")
    count = 0
    try:
        for row in iter_rows(rows):
            count += 1
            where = f"{contract.qualified_name} row {count}"
            encoded = encode_record(row, contract.columns, where)
            if allowed is not None and pfield is not None:
                day = partition_date(row.get(pfield))
                if day not in allowed:
                    raise ContractError(f"{where}: {pfield}={row.get(pfield)!r} is outside the partitions "
                                        f"being replaced ({_span(allowed)})")
            if check is not None:
                check(row, where)
            line = json.dumps(encoded, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                              default=_json_default)
            spool.write(line.encode("utf-8"))
            spool.write(b"\n")
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return Spooled(file=spool, rows=count, size=size)  # type: ignore[arg-type]


def _span(days: Collection[date]) -> str:
    if not days:
        return "none"
    ordered = sorted(days)
    return f"{len(ordered)} day(s) {ordered[0]}..{ordered[-1]}"
