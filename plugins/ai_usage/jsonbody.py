"""JSON bodies of vendor responses: exact decoding (floats as `Decimal`) and a cheap look at the top level.

msgspec does the work: it decodes 2-3 times faster than the standard library, and `float_hook=Decimal`
hands it the number's own text, so ``12.345678`` cents never pass through a binary float. `scan_object`
splits an object into its members *without decoding them* (`msgspec.Raw` slices of the text, after a
full syntax check): a hook reads the paging fields off a 4 MB page without building its records, and a
parser with a typed fast path decodes the record list once, straight into its own types.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import msgspec

_DECODER = msgspec.json.Decoder(float_hook=Decimal)
_MEMBERS = msgspec.json.Decoder(dict[str, msgspec.Raw])


class JsonBodyError(ValueError):
    """The body is not JSON (a cut or garbled answer)."""


class InvalidTextError(JsonBodyError):
    """The body is complete JSON, but a string in it is not Unicode text: a ``\\uD800``-``\\uDFFF`` escape
    without its pair (a lone UTF-16 surrogate), which no UTF-8 column can store. Asking again will not
    help: the vendor sends what it has."""


# A \uXXXX escape of a surrogate, not itself escaped (preceded by an even number of backslashes).
_SURROGATE_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u([dD][89a-fA-F][0-9a-fA-F]{2})")


def _refused(text: str | bytes | memoryview | msgspec.Raw, exc: msgspec.DecodeError) -> JsonBodyError:
    """The error for a body the decoder refused; a precise one when the only fault is a lone surrogate.

    The decoder calls such a body "truncated"; only complete JSON (the standard library's parser accepts
    lone surrogates) with an unpaired surrogate escape is reported as `InvalidTextError`, so a body cut
    between the two halves of a pair still counts as cut.
    """
    try:
        body = bytes(text).decode("utf-8") if not isinstance(text, str) else text
        json.loads(body)
    except ValueError:
        return JsonBodyError(str(exc))
    lone = pending = None  # pending: a high half waiting for its low half
    for match in _SURROGATE_ESCAPE.finditer(body):
        start = match.start(1) - 2  # the escape's backslash
        if int(match.group(1), 16) < 0xDC00:  # a high half
            if pending is not None:
                lone = pending
                break
            pending = start
        elif pending is not None and start == pending + 6:  # the low half right after its high half
            pending = None
        else:
            lone = start
            break
    else:
        lone = pending
    if lone is None:
        return JsonBodyError(str(exc))
    return InvalidTextError(
        f"invalid Unicode escape: a lone UTF-16 surrogate {body[lone:lone + 6]} at character {lone}; "
        "JSON strings must be Unicode text"
    )


def decode_json(data: str | bytes | memoryview | msgspec.Raw) -> Any:
    """Decode JSON with every non-integer number as an exact `Decimal`; raises `JsonBodyError`."""
    try:
        return _DECODER.decode(data)
    except UnicodeDecodeError as exc:
        raise JsonBodyError(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise _refused(data, exc) from None


def scan_object(text: str | bytes) -> dict[str, msgspec.Raw] | None:
    """The members of a JSON object, each left undecoded; None when the body is JSON but not an object.

    The whole text is syntax-checked (a truncated or garbled body raises `JsonBodyError`), so a caller
    can trust that decoding any member later succeeds.
    """
    try:
        return _MEMBERS.decode(text)
    except msgspec.ValidationError:
        decode_json(text)  # valid JSON of another shape (a bare array), or raises JsonBodyError
        return None
    except msgspec.DecodeError as exc:
        raise _refused(text, exc) from None


def top_level(members: dict[str, msgspec.Raw]) -> dict[str, Any]:
    """The members of an object that are not arrays, decoded: the envelope (paging fields, totals).

    Arrays are the record lists, left to the parsers; everything a paginator reads (``has_more``,
    ``next_page``, ``pagination``, ``totalPages``, ``last_id``) is a scalar or a small object.
    """
    return {k: decode_json(v) for k, v in members.items() if memoryview(v)[:1] != b"["}
