"""A manual CSV export as a header plus numbered records, and the mapping of its header onto a format.

Shared by the inbox parsers (`cursor_csv`, `anthropic_csv`); pure, no Airflow. A format names each column
once (`Column`) with the header spellings it accepts. Header cells are compared after normalisation —
case, spaces, underscores, hyphens, dots and brackets are ignored — so ``User Email``, ``user_email`` and
``userEmail`` are one column. Unknown columns are ignored (exports drift), but a header that lacks a
required column, names a column twice, or carries two columns of different units for one value is a
whole-file problem: `CsvFormatError`, which the inbox turns into a rejected file.

Row numbers are spreadsheet row numbers: the header is row 1, the first data row is row 2 (a blank line
still counts as a row), so "row 7" in a quarantine record is row 7 in the spreadsheet the file came from.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ai_usage.sources.common import BadValue, PayloadError, Rejected, to_decimal

MAX_BYTES = 128 * 1024 * 1024   # a 90-day export of a 1,000-person team is ~30 MB
BOM = "\ufeff"
_DELIMITERS = (",", ";", "\t")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


class CsvFormatError(PayloadError):
    """The file as a whole does not fit its format (encoding, CSV syntax, header); the message says why."""


@dataclass(frozen=True)
class CsvRecord:
    row: int                      # spreadsheet row number (header = 1)
    cells: tuple[str, ...]


@dataclass(frozen=True)
class CsvTable:
    """One CSV file: its name (for references), header cells as written, and its data records."""

    name: str
    header: tuple[str, ...]
    records: tuple[CsvRecord, ...]
    delimiter: str = ","


@dataclass(frozen=True)
class Column:
    name: str                            # the canonical name (the contract column it feeds)
    aliases: tuple[str, ...] = ()        # other accepted header spellings


@dataclass(frozen=True)
class CsvFormat:
    """What a kind of file must contain.

    `required`: each entry is a column name, or a tuple of names of which at least one must be present.
    `exclusive`: tuples of names of which at most one may be present (one value in two units).
    `refused`: normalised header spellings that are refused with a reason (e.g. a bare ``amount`` whose
    unit is ambiguous).
    """

    title: str
    columns: tuple[Column, ...]
    required: tuple[str | tuple[str, ...], ...] = ()
    exclusive: tuple[tuple[str, ...], ...] = ()
    refused: Mapping[str, str] = field(default_factory=dict)

    def spellings(self) -> dict[str, str]:
        """normalised header spelling -> canonical column name."""
        out: dict[str, str] = {}
        for col in self.columns:
            for spelling in (col.name, *col.aliases):
                out[normalise(spelling)] = col.name
        return out


@dataclass(frozen=True)
class Binding:
    """Where each known column sits in a file's header, and the header cells no format column claimed."""

    index: dict[str, int]
    unknown: dict[int, str]

    def __contains__(self, column: str) -> bool:
        return column in self.index


def normalise(header: str) -> str:
    """``" User-Email "`` → ``"useremail"``: the form header cells are compared in."""
    return _NOT_ALNUM.sub("", header.replace(BOM, "").casefold())


def decode(data: bytes, name: str) -> str:
    """The file's text, exactly (a UTF-8 byte-order mark stays in the text; `read_csv` skips it)."""
    if len(data) > MAX_BYTES:
        raise CsvFormatError(f"file {name}: {len(data)} bytes is more than the {MAX_BYTES} accepted; "
                             "split the export into several files (one per month, say)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CsvFormatError(
            f"file {name}: not UTF-8 text (byte {exc.start}); save it as 'CSV UTF-8' and drop it again"
        ) from None


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(text: str, name: str) -> CsvTable:
    """Split a CSV text into header and records; comma, semicolon or tab separated (from the header line)."""
    text = text.removeprefix(BOM)
    if not text.strip():
        raise CsvFormatError(f"file {name}: empty (no header, no rows)")
    delimiter = _delimiter(text.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[CsvRecord] = []
    header: tuple[str, ...] | None = None
    try:
        # Spreadsheet rows, not text lines: a quoted cell with line breaks is still one row.
        for number, cells in enumerate(reader, start=1):
            if header is None:
                header = tuple(c.strip() for c in cells)
                continue
            if not any(c.strip() for c in cells):
                continue  # blank line (or a row of empty cells, as spreadsheets write them)
            rows.append(CsvRecord(number, tuple(cells)))
    except csv.Error as exc:
        raise CsvFormatError(f"file {name}: not valid CSV near text line {reader.line_num}: {exc}") from None
    assert header is not None
    return CsvTable(name=name, header=header, records=tuple(rows), delimiter=delimiter)


def _spelled(fmt: CsvFormat, column: str) -> str:
    col = next(c for c in fmt.columns if c.name == column)
    return " / ".join(dict.fromkeys((col.name, *col.aliases)))


def bind(table: CsvTable, fmt: CsvFormat) -> Binding:
    """Map the header onto `fmt`; CsvFormatError naming the file and the column when it does not fit."""
    spellings = fmt.spellings()
    index: dict[str, int] = {}
    unknown: dict[int, str] = {}
    for i, cell in enumerate(table.header):
        key = normalise(cell)
        if key in fmt.refused:
            raise CsvFormatError(f"file {table.name}: column {cell!r} is refused: {fmt.refused[key]}")
        column = spellings.get(key)
        if column is None:
            if key:
                unknown[i] = cell
            continue
        if column in index:
            raise CsvFormatError(
                f"file {table.name}: columns {table.header[index[column]]!r} and {cell!r} both mean "
                f"{column!r}; keep one"
            )
        index[column] = i
    for need in fmt.required:
        options = (need,) if isinstance(need, str) else need
        if not any(o in index for o in options):
            wanted = " or ".join(f"{o!r} ({_spelled(fmt, o)})" for o in options)
            raise CsvFormatError(
                f"file {table.name}: the header has no required column {wanted}; "
                f"header: {list(table.header)} ({fmt.title}, see runbook/manual-csv-fallback.md)"
            )
    for group in fmt.exclusive:
        present = [table.header[index[c]] for c in group if c in index]
        if len(present) > 1:
            raise CsvFormatError(
                f"file {table.name}: columns {present} give the same value in different units; keep exactly one"
            )
    return Binding(index=index, unknown=unknown)


@dataclass(frozen=True)
class CsvRow:
    """One data record of a file, ready for a parser."""

    ref: str                              # "file <name> row <n>"
    values: dict[str, str | None]         # known column -> stripped cell, None when blank
    cells: tuple[str, ...]                # every cell as written
    raw: dict[str, Any]                   # header cell -> cell as written: the quarantine payload

    def cell(self, index: int) -> str | None:
        """The stripped cell at `index` of the header, None when blank."""
        return self.cells[index].strip() or None


def records(table: CsvTable, binding: Binding) -> Iterator[CsvRow | Rejected]:
    """The file's data records as `CsvRow`s.

    A record whose cell count differs from the header's is yielded as Rejected: its cells would be read
    under the wrong columns.
    """
    width = len(table.header)
    for rec in table.records:
        ref = row_ref(table.name, rec.row)
        raw: dict[str, Any] = {(h or f"column {i + 1}"): (rec.cells[i] if i < len(rec.cells) else None)
                               for i, h in enumerate(table.header)}
        if len(rec.cells) != width:
            if len(rec.cells) > width:
                raw["(cells beyond the header)"] = list(rec.cells[width:])
            yield Rejected(f"row has {len(rec.cells)} cells but the header has {width}", raw, ref)
            continue
        values = {column: rec.cells[i].strip() or None for column, i in binding.index.items()}
        yield CsvRow(ref=ref, values=values, cells=rec.cells, raw=raw)


def row_ref(name: str, row: int) -> str:
    """``file 2026-03.csv row 7``: where a record came from, as the quarantine shows it."""
    return f"file {name} row {row}"


_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


def cell_bool(value: str | None, column: str) -> bool | None:
    """A yes/no cell: true/false, yes/no, 1/0 in any case (spreadsheets write TRUE); blank → None."""
    if value is None:
        return None
    text = value.strip().casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadValue(f"{column}: {value!r} is not true/false")


def unit_shift(value: str, column: str, places: int) -> str:
    """The decimal text of `value` × 10**places, exactly and without exponent (dollars → cents text)."""
    shifted = to_decimal(value, column).scaleb(places)
    return format(shifted, "f")
