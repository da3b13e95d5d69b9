"""Rows -> pyarrow Tables with the contract's exact types, checked column by column on the way.

Bulk loads convert each page of row dicts into one Arrow table whose schema comes from the contract
(NUMERIC -> decimal128, DATE -> date32, TIMESTAMP -> timestamp[us, UTC], REPEATED RECORD ->
list<struct>), so the warehouse receives typed columns, never strings to re-parse. Checks work on whole
columns (the set of Python types in a column, not a function call per value), about 3 µs per row of
25 columns. pyarrow alone would coerce silently (1.5 -> 1 in an INT64, a datetime truncated to a DATE,
an int read as an epoch DATE), which is why every column's types are checked before conversion:

- unknown keys, REQUIRED values missing, values of the wrong Python type (a float in an INT64, a
  datetime in a DATE, a naive datetime in a TIMESTAMP) -> ContractError naming table, row and column;
- a Decimal with more decimals than the column's scale, or more integer digits than its precision,
  is refused (ContractError), never rounded: money stays exact;
- REPEATED values: None becomes an empty list (BigQuery has no NULL arrays), a NULL element is refused;
- JSON values (any JSON-able value; Decimals as strings, dates as ISO strings) are stored as JSON text.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ai_usage import pyarrow_setup
from ai_usage.columns import Columns, RecordLists, Repeated
from ai_usage.exceptions import ContractError
from ai_usage.warehouse.base import Row, Rows
from ai_usage.warehouse.contracts import Column, TableContract

PAGE_ROWS = 10_000
# Column batches smaller than this are joined before conversion (a Claude Code day is a few hundred rows;
# per-column overhead); larger ones are converted as they come.
BATCH_ROWS = 2_000
# Scale and precision used when a NUMERIC column declares none (BigQuery NUMERIC is (38, 9)); DuckDB
# stores BIGNUMERIC in the same width, so an undeclared BIGNUMERIC takes the same digits.
DEFAULT_PRECISION = 38
DEFAULT_SCALE = 9
MAX_PRECISION = 38

_NONE = type(None)
# Exact Python types accepted per BigQuery type; subclasses (pendulum's DateTime, str enums) are checked
# one by one with isinstance only when a page contains them.
_EXACT: dict[str, frozenset[type]] = {
    "STRING": frozenset({str}),
    "INT64": frozenset({int}),
    "FLOAT64": frozenset({float, int}),
    "BOOL": frozenset({bool}),
    "NUMERIC": frozenset({Decimal, int}),
    "BIGNUMERIC": frozenset({Decimal, int}),
    "DATE": frozenset({date}),
    "DATETIME": frozenset({datetime}),
    "TIMESTAMP": frozenset({datetime}),
    "TIME": frozenset({time}),
    "BYTES": frozenset({bytes, bytearray}),
}


# pyarrow without its pandas probe (see ai_usage.pyarrow_setup); `pandas_ready` re-enables it.
pandas_ready = pyarrow_setup.pandas_ready


def decimal_digits(col: Column) -> tuple[int, int]:
    """(precision, scale) a NUMERIC/BIGNUMERIC column is checked against (and stored with in Arrow)."""
    if col.precision is None:
        return DEFAULT_PRECISION, DEFAULT_SCALE
    scale = col.scale or 0
    return min(col.precision, MAX_PRECISION), min(scale, MAX_PRECISION)


def arrow_type(col: Column, *, element: bool = False) -> pa.DataType:
    """The Arrow type of a column (of one element of it when `element`, for REPEATED columns)."""
    if col.repeated and not element:
        return pa.list_(arrow_type(col, element=True))
    t = col.type
    if t == "RECORD":
        return pa.struct([pa.field(f.name, arrow_type(f)) for f in col.fields])
    if t in ("NUMERIC", "BIGNUMERIC"):
        return pa.decimal128(*decimal_digits(col))
    return {
        "STRING": pa.string(), "INT64": pa.int64(), "FLOAT64": pa.float64(), "BOOL": pa.bool_(),
        "DATE": pa.date32(), "DATETIME": pa.timestamp("us"), "TIMESTAMP": pa.timestamp("us", tz="UTC"),
        "TIME": pa.time64("us"), "BYTES": pa.binary(), "JSON": pa.string(),
    }[t]


def arrow_schema(contract: TableContract) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c)) for c in contract.columns])


def iter_pages(rows: Rows, page_rows: int = PAGE_ROWS) -> Iterator[list[Row] | Columns]:
    """Regroup rows or pages of rows into pages of about `page_rows` (bulk inserts; flat memory).

    `Columns` batches are joined only up to `BATCH_ROWS`: they are converted to compact Arrow right away
    rather than gathered as Python objects (the stage gathers the Arrow pages).
    """
    buf: list[Row] = []
    parts: list[Columns] = []
    size = 0
    for item in rows:
        if isinstance(item, Columns):
            if buf:
                yield buf
                buf = []
            parts.append(item)
            size += item.n
            if size >= BATCH_ROWS:
                yield Columns.concat(parts)
                parts, size = [], 0
            continue
        if parts:
            yield Columns.concat(parts)
            parts, size = [], 0
        if isinstance(item, Mapping):
            buf.append(item)
        elif isinstance(item, Sequence) and not isinstance(item, str | bytes):
            buf.extend(item)
        else:
            raise ContractError(f"rows must be dicts or pages (lists) of dicts, got {type(item).__name__}")
        if len(buf) >= page_rows:
            yield buf
            buf = []
    if parts:
        yield Columns.concat(parts)
    if buf:
        yield buf


def page_to_table(contract: TableContract, page: Sequence[Row] | Columns, *, first_row: int = 1) -> pa.Table:
    """Check one page against the contract and return it as an Arrow table of the contract's schema.

    Raises ContractError on the first bad value; `first_row` numbers the page's first row in messages.
    """
    table = contract.qualified_name
    if isinstance(page, Columns):
        return _columns_to_table(contract, page, first_row)
    if not all(type(r) is dict for r in page):
        for i, r in enumerate(page):
            if not isinstance(r, Mapping):
                raise ContractError(f"{table} row {first_row + i}: a row must be a dict, got {type(r).__name__}")
    _check_keys(page, frozenset(contract.column_names), lambda i: f"{table} row {first_row + i}")
    arrays = [_build([r.get(col.name) for r in page], col, _Where(table, col.name, first_row))
              for col in contract.columns]
    return pa.Table.from_arrays(arrays, schema=arrow_schema(contract))


def check_partitions(
    contract: TableContract, data: pa.Table, dates: Collection[date], *, first_row: int = 1
) -> None:
    """Every row's partition value (its UTC day) must be one of `dates` (else ContractError)."""
    field = contract.partition_field
    if field is None:
        raise ContractError(f"{contract.qualified_name} has no partition field; replace it whole (dates=None)")
    column = data.column(field)
    days = column.cast(pa.date32()) if pa.types.is_timestamp(column.type) else column
    allowed = pa.array(sorted(set(dates)), type=pa.date32())
    inside = pc.is_in(days, value_set=allowed)
    if not pc.all(pc.fill_null(inside, False)).as_py():
        bad = pc.indices_nonzero(pc.invert(pc.fill_null(inside, False)))[0].as_py()
        raise ContractError(
            f"{contract.qualified_name} row {first_row + bad}: {field}={column[bad].as_py()!r} is outside the "
            f"partitions being replaced ({_span(allowed.to_pylist())})"
        )


# --------------------------------------------------------------------------- internals


def _columns_to_table(contract: TableContract, page: Columns, first_row: int) -> pa.Table:
    """`page_to_table` for a column batch: the same checks, one column at a time, no row dicts."""
    table = contract.qualified_name
    unknown = set(page.data) - set(contract.column_names)
    if unknown:
        raise ContractError(f"{table}: unknown column(s) {sorted(unknown)}; the contract has {contract.column_names}")
    arrays = []
    for col in contract.columns:
        values = page.data.get(col.name)
        where = _Where(table, col.name, first_row)
        if isinstance(values, RecordLists):
            arrays.append(_build_record_lists(values, col, where))
        elif isinstance(values, pa.Array):
            arrays.append(_typed(values, col, where, page.n))
        elif isinstance(values, Repeated) and values.n:
            arrays.append(pa.repeat(_build([values.value], col, where)[0], values.n))
        else:
            arrays.append(_build(values if values is not None else [None] * page.n, col, where))
    return pa.Table.from_arrays(arrays, schema=arrow_schema(contract))


def _build_record_lists(values: RecordLists, col: Column, where: _Where) -> pa.Array:
    """A REPEATED RECORD column from flat field lists and offsets (no dict per record)."""
    if not (col.repeated and col.type == "RECORD"):
        raise ContractError(f"{where.at(0)}: nested records given for a {col.mode} {col.type} column")
    unknown = set(values.fields) - {f.name for f in col.fields}
    if unknown:
        raise ContractError(f"{where.at(0)}: unknown field(s) {sorted(unknown)} in {col.name}")
    offsets = values.offsets
    size = offsets[-1]
    row_of = functools.partial(_row_of_flat, offsets)
    children = [_field(values.fields.get(f.name), f, where.nested(f"{where.path}[].{f.name}", row_of), size)
                for f in col.fields]
    struct = pa.StructArray.from_arrays(children, fields=list(arrow_type(col, element=True)))
    return pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), struct)


def _field(values: Any, f: Column, where: _Where, size: int) -> pa.Array:
    if values is None:
        return _build([None] * size, f, where)
    if isinstance(values, pa.Array):
        return _typed(values, f, where, size)
    return _build(values, f, where)


def _typed(values: pa.Array, col: Column, where: _Where, n: int) -> pa.Array:
    """A column a parser built as an Arrow array: checked by its type (exact or refused), not value by value."""
    expected = arrow_type(col, element=True) if not col.repeated else arrow_type(col)
    if values.type != expected:
        raise ContractError(f"{where.at(0)}: an Arrow {values.type} column where the contract has "
                            f"{_type_label(col)} ({expected})")
    if len(values) != n:
        raise ContractError(f"{where.at(0)}: {len(values)} values for {n} rows")
    if col.required and values.null_count:
        i = pc.indices_nonzero(values.is_null())[0].as_py()
        raise ContractError(f"{where.at(i)}: REQUIRED value is missing or None")
    return values


def _row_of_flat(offsets: Sequence[int], k: int) -> int:
    return bisect.bisect_right(offsets, k) - 1


class _Where:
    """Where a value sits (table, row, column path), formatted only when an error is raised.

    `row_of` maps an index in the current value list to its index in the page (nested values are
    flattened: list elements and the fields of non-NULL records are checked as columns too).
    """

    def __init__(self, table: str, path: str, first_row: int, row_of: Callable[[int], int] | None = None):
        self.table, self.path, self.first_row, self.row_of = table, path, first_row, row_of

    def nested(self, path: str, row_of: Callable[[int], int]) -> _Where:
        parent = self.row_of
        return _Where(self.table, path, self.first_row, row_of if parent is None else lambda i: parent(row_of(i)))

    def at(self, i: int) -> str:
        row = self.row_of(i) if self.row_of is not None else i
        return f"{self.table} row {self.first_row + row}, column {self.path}"


def _check_keys(records: Sequence[Mapping[str, Any]], names: frozenset[str], where: Callable[[int], str]) -> None:
    seen: set[str] = set().union(*records) if records else set()
    unknown = seen - names
    if unknown:
        first = next(i for i, r in enumerate(records) if not r.keys() <= names)
        bad = sorted(str(k) for k in records[first] if k not in names)
        raise ContractError(f"{where(first)}: unknown column(s) {bad}; the contract has {sorted(names)}")


def _build(values: Sequence[Any], col: Column, where: _Where) -> pa.Array:
    if col.required and None in values:
        i = next(i for i, v in enumerate(values) if v is None)
        raise ContractError(f"{where.at(i)}: REQUIRED value is missing or None")
    if col.repeated:
        return _build_list(values, col, where)
    return _build_one(values, col, where)


def _build_list(values: Sequence[Any], col: Column, where: _Where) -> pa.Array:
    if not set(map(type, values)) <= {list, tuple, _NONE}:
        i = next(i for i, v in enumerate(values) if v is not None and not isinstance(v, list | tuple))
        raise ContractError(f"{where.at(i)}: REPEATED column needs a list, got {type(values[i]).__name__}")
    lists = [v if v is not None else () for v in values]
    offsets = [0, *itertools.accumulate(map(len, lists))]
    flat = list(itertools.chain.from_iterable(lists))
    inner_where = where.nested(f"{where.path}[]", lambda k: bisect.bisect_right(offsets, k) - 1)
    if None in flat:
        raise ContractError(f"{inner_where.at(flat.index(None))}: a REPEATED value cannot hold NULL elements")
    element = replace(col, mode="NULLABLE")
    inner = _build_one(flat, element, inner_where)
    return pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), inner)


def _build_one(values: Sequence[Any], col: Column, where: _Where) -> pa.Array:
    t = col.type
    if t == "RECORD":
        return _build_struct(values, col, where)
    if t == "JSON":
        return pa.array([_to_json(v, where, i) for i, v in enumerate(values)], type=pa.string())
    _check_types(values, col, where)
    typ = arrow_type(col, element=True)
    try:
        return pa.array(values, type=typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, ValueError) as exc:
        i, reason = _locate(values, typ, exc)
        raise ContractError(f"{where.at(i)}: {values[i]!r} does not fit {_type_label(col)}: {reason}") from None


def _build_struct(values: Sequence[Any], col: Column, where: _Where) -> pa.Array:
    if not set(map(type, values)) <= {dict, _NONE}:
        for i, v in enumerate(values):
            if v is not None and not isinstance(v, Mapping):
                raise ContractError(f"{where.at(i)}: RECORD needs a dict, got {type(v).__name__}")
    valid = [i for i, v in enumerate(values) if v is not None]
    records = [values[i] for i in valid]
    _check_keys(records, frozenset(f.name for f in col.fields), lambda j: where.at(valid[j]))
    # Fields are checked over the non-NULL records only (a REQUIRED field of a NULL record is fine),
    # then scattered back to one slot per value, NULL where the record is NULL.
    scatter = None
    if len(valid) != len(values):
        positions: list[int | None] = [None] * len(values)
        for j, i in enumerate(valid):
            positions[i] = j
        scatter = pa.array(positions, type=pa.int64())
    children = []
    for f in col.fields:
        child = _build([r.get(f.name) for r in records], f,
                       where.nested(f"{where.path}.{f.name}", valid.__getitem__))
        children.append(child.take(scatter) if scatter is not None else child)
    mask = pa.array([v is None for v in values], type=pa.bool_()) if scatter is not None else None
    return pa.StructArray.from_arrays(children, fields=list(arrow_type(col, element=True)), mask=mask)


def _check_types(values: Sequence[Any], col: Column, where: _Where) -> None:
    t = col.type
    exact = _EXACT[t]
    types = set(map(type, values))
    types.discard(_NONE)
    if not types <= exact:
        for i, v in enumerate(values):
            if v is not None and not _is_instance(v, t):
                raise ContractError(
                    f"{where.at(i)}: {_type_label(col)} column got {type(v).__name__} {v!r}"
                    + ("; floats are refused so money stays exact" if t in ("NUMERIC", "BIGNUMERIC") else "")
                )
    if t in ("TIMESTAMP", "DATETIME"):
        # Distinct values only: a page's _ingested_at is typically one object repeated.
        aware = {v.utcoffset() is not None for v in set(values) if v is not None}
        if t == "TIMESTAMP" and False in aware:
            i = next(i for i, v in enumerate(values) if v is not None and v.utcoffset() is None)
            raise ContractError(f"{where.at(i)}: TIMESTAMP needs a timezone-aware datetime, got naive {values[i]!r}")
        if t == "DATETIME" and True in aware:
            i = next(i for i, v in enumerate(values) if v is not None and v.utcoffset() is not None)
            raise ContractError(f"{where.at(i)}: DATETIME needs a naive (civil) datetime, got {values[i]!r}")


def _is_instance(v: Any, t: str) -> bool:
    if isinstance(v, bool):
        return t == "BOOL"
    if t == "DATE":
        return isinstance(v, date) and not isinstance(v, datetime)
    if t in ("NUMERIC", "BIGNUMERIC"):
        return isinstance(v, Decimal | int)
    return isinstance(v, tuple(_EXACT[t]))


def _type_label(col: Column) -> str:
    if col.type in ("NUMERIC", "BIGNUMERIC"):
        p, s = decimal_digits(col)
        return f"{col.type}({p},{s})"
    return col.type


def _locate(values: Sequence[Any], typ: pa.DataType, exc: Exception) -> tuple[int, str]:
    """Find the first value Arrow refuses (only on the error path)."""
    for i, v in enumerate(values):
        try:
            pa.array([v], type=typ)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, ValueError) as one:
            return i, str(one)
    return 0, str(exc)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-encodable")


def _to_json(value: Any, where: _Where, i: int) -> str | None:
    if value is None:
        return None
    try:
        return json.dumps(value, allow_nan=False, default=_json_default, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ContractError(f"{where.at(i)}: value is not JSON-encodable: {exc}") from None


def _span(days: list[date]) -> str:
    if not days:
        return "none"
    return f"{len(days)} day(s) {days[0]}..{days[-1]}"

