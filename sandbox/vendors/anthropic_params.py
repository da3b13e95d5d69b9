"""Request parsing of the Anthropic Admin API simulator: errors, limits, instants, buckets and cursors.

Every rejection is the vendor's 400 ``invalid_request_error`` (vendor-apis.md §1.6) with a message that
names the parameter, so a client bug is obvious from the response alone.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.app import HTTPAbort, Request

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
BUCKET_WIDTHS = {"1d": 86_400, "1h": 3_600, "1m": 60}
# (default, maximum) buckets per page of the usage report by width (§1.4); the cost report is 1d only.
USAGE_LIMITS = {"1d": (7, 31), "1h": (24, 168), "1m": (60, 1440)}
COST_LIMIT_DEFAULT, COST_LIMIT_MAX = 7, 31  # the reference gives no default: 7, as for usage 1d buckets

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def bad_request(message: str) -> HTTPAbort:
    return HTTPAbort(400, message)


def parse_limit(request: Request, default: int, maximum: int, minimum: int = 1) -> int:
    raw = request.arg("limit")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"limit: Input should be a valid integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise bad_request(f"limit: must be between {minimum} and {maximum}, got {value}")
    return value


def parse_day(raw: str | None, name: str = "starting_at") -> datetime:
    """A ``YYYY-MM-DD`` parameter as UTC midnight; 400 when missing, mis-shaped or not a real date."""
    if raw is None or raw == "":
        raise bad_request(f"{name}: Field required")
    if not _DATE.match(raw):
        raise bad_request(f"{name}: String should match pattern '^\\d{{4}}-\\d{{2}}-\\d{{2}}$', got {raw!r}")
    try:
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise bad_request(f"{name}: {raw!r} is not a valid date") from None


def parse_instant(raw: str | None, name: str) -> datetime:
    """An RFC 3339 date-time with an offset, as an aware UTC datetime; 400 otherwise."""
    if raw is None or raw == "":
        raise bad_request(f"{name}: Field required")
    if not _RFC3339.match(raw):
        raise bad_request(f"{name}: Input should be a valid RFC 3339 datetime, got {raw!r}")
    text = raw.upper().replace("Z", "+00:00")
    frac = re.search(r"\.(\d+)", text)
    if frac and len(frac.group(1)) > 6:  # datetime keeps microseconds only
        text = text.replace(frac.group(0), "." + frac.group(1)[:6])
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        raise bad_request(f"{name}: {raw!r} is not a valid datetime") from None


def ceil_to(when: datetime, width_s: int) -> datetime:
    """The first bucket boundary at or after `when` (boundaries are multiples of `width_s` since the epoch)."""
    ts = int(when.timestamp())
    if ts != when.timestamp():
        ts += 1
    aligned = -(-ts // width_s) * width_s
    return datetime.fromtimestamp(aligned, UTC)


def encode_cursor(payload: dict[str, Any]) -> str:
    """An opaque ``page_…`` token (base64 of compact JSON)."""
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return "page_" + base64.urlsafe_b64encode(raw).decode()


def decode_cursor(token: str, kind: str) -> dict[str, Any]:
    """The payload of a token this simulator issued for `kind`; 400 for anything else."""
    try:
        if not token.startswith("page_"):
            raise ValueError("no page_ prefix")
        payload = json.loads(base64.urlsafe_b64decode(token[5:].encode()))
        if not isinstance(payload, dict) or payload.get("k") != kind:
            raise ValueError("not a cursor of this endpoint")
        return payload
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_request(f"page: invalid page token {token[:40]!r}") from None


@dataclass(frozen=True)
class BucketQuery:
    """A parsed time-bucketed report request: the buckets of this page and the token of the next."""

    width: str
    width_s: int
    starts: list[datetime]  # bucket starts of this page
    next_start: datetime | None  # first bucket of the next page, None on the last page


def bucket_query(
    request: Request,
    *,
    kind: str,
    now: datetime,
    widths: tuple[str, ...],
    limits: dict[str, tuple[int, int]],
    default_width: str = "1d",
) -> BucketQuery:
    """Validate starting_at / ending_at / bucket_width / limit / page and cut this page's buckets.

    Bounds must be RFC 3339 and aligned to the bucket width (UTC midnight for 1d); ending_at is exclusive
    and must lie after starting_at. Buckets starting at or after `now` do not exist yet.
    """
    width = request.arg("bucket_width") or default_width
    if width not in widths:
        raise bad_request(
            f"bucket_width: Input should be {' or '.join(repr(w) for w in widths)}, got {width!r}"
        )
    width_s = BUCKET_WIDTHS[width]
    default, maximum = limits[width]
    limit = parse_limit(request, default, maximum)
    start = parse_instant(request.arg("starting_at"), "starting_at")
    if int(start.timestamp()) % width_s or start.microsecond:
        raise bad_request(
            f"starting_at: {stamp_text(start)} is not aligned to a {width} bucket boundary (UTC)"
        )
    raw_end = request.arg("ending_at")
    if raw_end:
        end = parse_instant(raw_end, "ending_at")
        if int(end.timestamp()) % width_s or end.microsecond:
            raise bad_request(
                f"ending_at: {stamp_text(end)} is not aligned to a {width} bucket boundary (UTC)"
            )
        if end <= start:
            raise bad_request("ending_at: must be after starting_at")
    else:
        end = ceil_to(now, width_s)
    end = min(end, ceil_to(now, width_s))
    first = start
    page = request.arg("page")
    if page:
        payload = decode_cursor(page, kind)
        try:
            first = datetime.fromtimestamp(int(payload["s"]), UTC)
        except (KeyError, TypeError, ValueError, OverflowError):
            raise bad_request("page: invalid page token") from None
        if first < start or int(first.timestamp()) % width_s:
            raise bad_request("page: the page token does not belong to this starting_at")
    step = timedelta(seconds=width_s)
    starts: list[datetime] = []
    cursor = first
    while cursor < end and len(starts) < limit:
        starts.append(cursor)
        cursor += step
    return BucketQuery(width, width_s, starts, cursor if cursor < end else None)


def stamp_text(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def group_by(request: Request, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The repeated ``group_by[]`` values (``group_by`` accepted too), validated, in request order."""
    values = request.args("group_by[]") + request.args("group_by")
    out: list[str] = []
    for v in values:
        if v not in allowed:
            raise bad_request(f"group_by[]: Input should be one of {', '.join(allowed)}, got {v!r}")
        if v not in out:
            out.append(v)
    return tuple(out)
