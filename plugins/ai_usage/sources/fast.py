"""Shared pieces of the parsers' typed fast paths.

A fast path decodes a page's record list straight into msgspec Structs whose field types are the usual
shape of the vendor's records (strict: a string where a number belongs, a fraction in a counter, a
missing required field all fail the decode), then builds `ai_usage.columns.Columns` with column-wide
checks. It either vouches for the *whole* page or raises `Fallback`, and the parser then runs its
careful, record-by-record path on the same page, which decides what is loaded, coerced or quarantined.
So the fast path never has to handle a hostile record; it only has to produce exactly what the careful
path would for a clean page (tests/test_sources_fast.py checks that on mutated records).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Annotated, Any, Protocol, TypeVar

import msgspec
import pyarrow as pa

from ai_usage import pyarrow_setup  # noqa: F401  # before any conversion: no pandas import by pyarrow
from ai_usage.columns import Columns
from ai_usage.sources.common import INT64_MAX, BadValue, Rejected, norm_email, parse_day

T = TypeVar("T")
# Arrow types of the columns a fast path hands over as arrays: values the typed decoder guarantees are
# converted exactly, and the warehouse checks the array's type instead of every value.
STRING, INT64, BOOL = pa.string(), pa.int64(), pa.bool_()
# A counter as the contracts store it (`to_count`): a JSON integer in [0, INT64_MAX], checked by the decoder.
Count = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]


# What a parser with a fast path yields for one page: a `Columns` batch, or the careful path's rows and rejects.
PageResult = Iterator[dict[str, Any] | Columns | Rejected]


class Fallback(Exception):
    """The fast path cannot vouch for this page: parse it record by record instead."""


class JsonPage(Protocol):
    """What the page parsers read off an API page (`ai_usage.hooks.pages.ApiPage`)."""

    @property
    def n(self) -> int: ...

    @property
    def day(self) -> date | None: ...

    @property
    def members(self) -> Mapping[str, msgspec.Raw] | None: ...

    @property
    def payload(self) -> Any: ...


def decode_records(page: JsonPage, key: str, decoder: msgspec.json.Decoder[list[T]]) -> list[T]:
    """`page.members[key]` decoded with a typed decoder; Fallback when absent or not of the usual shape."""
    members = page.members
    raw = members.get(key) if members is not None else None
    if raw is None:
        raise Fallback(f"no {key!r} member")
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise Fallback(str(exc)) from None


def transpose(records: Sequence[Any], width: int) -> list[Sequence[Any]]:
    """Struct records -> one tuple per field (in field order); `width` fields when there are no records."""
    if not records:
        return [()] * width
    return list(zip(*map(msgspec.structs.astuple, records), strict=True))


class Memo:
    """A careful coercion applied once per distinct value (e-mails, days and models repeat all page long).

    Any `BadValue` of the careful function becomes `Fallback`: the record-by-record path will reject the
    record with the careful path's own reason.
    """

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        self._convert = convert
        self._seen: dict[Hashable, Any] = {}

    def __call__(self, value: Hashable) -> Any:
        try:
            return self._seen[value]
        except KeyError:
            pass
        try:
            out = self._convert(value)
        except BadValue as exc:
            raise Fallback(str(exc)) from None
        self._seen[value] = out
        return out

    def column(self, values: Sequence[Hashable]) -> Sequence[Any]:
        """The converted column; `values` itself when converting changes none of its distinct values."""
        unchanged = True
        for value in set(values):
            out = self(value)
            unchanged = unchanged and out is value
        if unchanged:
            return values
        seen = self._seen
        return [seen[v] for v in values]


def email_memo() -> Memo:
    """Required e-mails, trimmed and lowercased (`norm_email`)."""
    return Memo(lambda v: norm_email(v, "email"))


def day_memo() -> Memo:
    """``YYYY-MM-DD`` or RFC 3339 texts -> UTC days (`parse_day`)."""
    return Memo(lambda v: parse_day(v, "date"))


def texts(values: Sequence[str | None]) -> Sequence[str | None]:
    """`to_str` on a column of strings: blank or missing -> None, anything else verbatim."""
    if not any(v is not None and not v.strip() for v in set(values)):
        return values
    return [v if v is not None and v.strip() else None for v in values]


def required_texts(values: Sequence[str | None]) -> Sequence[str]:
    """A required string column (`to_str(..., required=True)`): Fallback when one is blank or missing."""
    if None in values or not all(v.strip() for v in values):  # type: ignore[union-attr]
        raise Fallback("a required text is blank or missing")
    return values  # type: ignore[return-value]


def array(values: Sequence[Any], typ: pa.DataType) -> pa.Array:
    """A decoded column (only values of `typ`'s Python type, or None) as an Arrow array."""
    return pa.array(values, type=typ)


def unique(keys: Iterable[Hashable], n: int) -> None:
    """Fallback when a key repeats (the careful path quarantines the later record, naming the first)."""
    if len(set(keys)) != n:
        raise Fallback("duplicate key")
