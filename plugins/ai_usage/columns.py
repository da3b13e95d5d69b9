"""Rows held as columns: what the parsers' typed fast paths produce and the warehouse loads without a dict per row.

A page of half a year of Cursor usage is tens of thousands of rows; building, filtering and re-reading a dict
per row costs more than decoding the page. `Columns` keeps one list per column instead (`RecordLists` for a
REPEATED RECORD column: its records' fields as flat lists plus offsets), and can still hand out the same rows
as dicts (`rows()`) to any consumer that wants them, such as the BigQuery backend or a test. A column may
also be a pyarrow Array that a parser built with the column's exact type (the warehouse checks the type,
not every value).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any


class RecordLists:
    """A REPEATED RECORD column: row i holds the records ``offsets[i]:offsets[i + 1]`` of the flat `fields`."""

    __slots__ = ("offsets", "fields")

    def __init__(self, offsets: list[int], fields: Mapping[str, Sequence[Any]]) -> None:
        if not offsets or offsets[0] != 0:
            raise ValueError("offsets must start at 0")
        size = offsets[-1]
        for name, values in fields.items():
            if len(values) != size:
                raise ValueError(f"field {name!r} has {len(values)} values, the offsets say {size}")
        self.offsets = offsets
        self.fields = dict(fields)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def records(self, i: int) -> list[dict[str, Any]]:
        """Row i's records as dicts (field order as given)."""
        names = list(self.fields)
        cols = [values_of(self.fields[n]) for n in names]
        return [dict(zip(names, (c[k] for c in cols), strict=True))
                for k in range(self.offsets[i], self.offsets[i + 1])]

    def as_lists(self) -> RecordLists:
        """The same records with every field as a Python list."""
        return RecordLists(self.offsets, {n: values_of(v) for n, v in self.fields.items()})

    def take(self, rows: Sequence[int]) -> RecordLists:
        spans = [(self.offsets[i], self.offsets[i + 1]) for i in rows]
        offsets = [0, *itertools.accumulate(b - a for a, b in spans)]
        fields = {n: [v for a, b in spans for v in values_of(values)[a:b]] for n, values in self.fields.items()}
        return RecordLists(offsets, fields)

    @staticmethod
    def concat(parts: Sequence[RecordLists]) -> RecordLists:
        names = list(parts[0].fields)
        offsets = [0]
        for part in parts:
            if list(part.fields) != names:
                raise ValueError("RecordLists to concatenate must have the same fields")
            base = offsets[-1]
            offsets.extend(base + o for o in part.offsets[1:])
        fields = {n: _joined([p.fields[n] for p in parts]) for n in names}
        return RecordLists(offsets, fields)


class Repeated(Sequence[Any]):
    """One value in every row (a run's lineage columns): stored once, converted once."""

    __slots__ = ("value", "n")

    def __init__(self, value: Any, n: int) -> None:
        self.value, self.n = value, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return Repeated(self.value, len(range(*i.indices(self.n))))
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return self.value

    def __iter__(self) -> Iterator[Any]:
        return itertools.repeat(self.value, self.n)

    def __contains__(self, item: object) -> bool:
        return self.n > 0 and (item is self.value or item == self.value)


Column = Sequence[Any] | RecordLists


class Columns:
    """Equal-length columns, name -> values; a column missing from `data` is NULL in every row."""

    __slots__ = ("data", "n")

    def __init__(self, data: Mapping[str, Column]) -> None:
        lengths = {len(v) for v in data.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: { {k: len(v) for k, v in data.items()} }")
        self.data: dict[str, Column] = dict(data)
        self.n = lengths.pop() if lengths else 0

    def __len__(self) -> int:
        return self.n

    def rows(self) -> Iterator[dict[str, Any]]:
        """The rows as dicts, nested records included (for row-wise consumers)."""
        names = list(self.data)
        cols = [col.as_lists() if isinstance(col, RecordLists) else values_of(col) for col in self.data.values()]
        for i in range(self.n):
            yield {name: (col.records(i) if isinstance(col, RecordLists) else col[i])
                   for name, col in zip(names, cols, strict=True)}

    def take(self, rows: Sequence[int]) -> Columns:
        """The rows at the given indices, in that order."""
        return Columns({name: _take(col, rows) for name, col in self.data.items()})

    def with_constants(self, values: Mapping[str, Any]) -> Columns:
        """A copy with a column of one repeated value per item of `values` (e.g. lineage columns)."""
        return Columns({**self.data, **{name: Repeated(value, self.n) for name, value in values.items()}})

    @staticmethod
    def concat(parts: Sequence[Columns]) -> Columns:
        """One batch of the parts' rows, in order; every part must have the same columns."""
        if len(parts) == 1:
            return parts[0]
        names = list(parts[0].data)
        if any(p.data.keys() != parts[0].data.keys() for p in parts):
            raise ValueError("Columns to concatenate must have the same columns")
        out: dict[str, Column] = {}
        for name in names:
            cols = [p.data[name] for p in parts if p.n]
            if cols and isinstance(cols[0], RecordLists):
                out[name] = RecordLists.concat(cols)  # type: ignore[arg-type]
            elif cols and all(isinstance(c, Repeated) and c.value is cols[0].value for c in cols):  # type: ignore[union-attr]
                out[name] = Repeated(cols[0].value, sum(len(c) for c in cols))  # type: ignore[union-attr]
            else:
                out[name] = _joined(cols)  # type: ignore[arg-type]
        return Columns(out)


def is_array(col: Any) -> bool:
    """A pyarrow Array (duck-typed: this module does not import pyarrow)."""
    return hasattr(col, "to_pylist") and hasattr(col, "type")


def values_of(col: Sequence[Any]) -> Sequence[Any]:
    """A column's Python values (an Array's converted; anything else as it is)."""
    return col.to_pylist() if is_array(col) else col  # type: ignore[attr-defined]


def _joined(cols: Sequence[Sequence[Any]]) -> Sequence[Any]:
    if cols and all(is_array(c) for c in cols):
        import pyarrow as pa

        return pa.concat_arrays(cols)
    return list(itertools.chain.from_iterable(values_of(c) for c in cols))


def _take(col: Column, rows: Sequence[int]) -> Column:
    if isinstance(col, RecordLists):
        return col.take(rows)
    if isinstance(col, Repeated):
        return Repeated(col.value, len(rows))
    if is_array(col):
        return col.take(list(rows))  # type: ignore[attr-defined]  # a pyarrow Array
    return [col[i] for i in rows]
