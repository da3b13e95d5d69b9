"""POST /teams/daily-usage-data of the Cursor simulator: which rows a request gets, and their fast rendering.

A year of a 2,000-person team is half a million rows (~280 MB of JSON), so rows are rendered from text
templates, and a final day caches its rows' text; `json.dumps` over dicts would cost more than the whole
budget. `PrerenderedJSON` still exposes the equivalent payload (built only when a fault rule needs to
corrupt or extend it), and the tests check that both agree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

from sandbox.app import Response
from sandbox.vendors.cursor_model import (
    DAILY_INT_FIELDS,
    DAILY_STR_FIELDS,
    DAY_MS,
    N_INT,
    Counters,
    CursorMember,
    CursorModel,
    DayBlock,
    completeness,
    is_active,
    ms_day,
    scale_counters,
)

_INTS = ",".join(f'"{k}":%d' for k in DAILY_INT_FIELDS)
_STRS = "".join(f',"{k}":%s' for k in DAILY_STR_FIELDS)
_ZERO_INTS = (0,) * N_INT
_ZERO_BODY = "false," + _INTS % _ZERO_INTS + _STRS % (("null",) * len(DAILY_STR_FIELDS))
_JS: dict[str | None, str] = {None: "null"}


def _js(s: str | None) -> str:
    out = _JS.get(s)
    if out is None:
        out = _JS[s] = json.dumps(s)
    return out


def _text(m: CursorMember, b: DayBlock, c: Counters | None, end: str) -> str:
    """One daily row as JSON text: the template twin of `_row`."""
    if c is None:
        return m.row_head + b.json_part + m.row_email + _ZERO_BODY + end
    strs = (_js(c[N_INT]), _js(c[N_INT + 1]), _js(c[N_INT + 2]), _js(c[N_INT + 3]))
    flag = "true," if is_active(c) else "false,"
    return "".join((m.row_head, b.json_part, m.row_email, flag, _INTS % c[:N_INT], _STRS % strs, end))


def _row(m: CursorMember, b: DayBlock, c: Counters | None, team_id: int | None) -> dict[str, Any]:
    """One daily row as a dict (same keys, order and values as `_text`)."""
    row: dict[str, Any] = {"userId": m.number, "day": b.day_str, "date": b.date_ms, "email": m.shown_email}
    row["isActive"] = is_active(c)
    row.update(zip(DAILY_INT_FIELDS, c[:N_INT] if c is not None else _ZERO_INTS, strict=True))
    row.update(zip(DAILY_STR_FIELDS, c[N_INT:] if c is not None else (None,) * 4, strict=True))
    if team_id is not None:
        row["teamId"] = team_id
    return row


class PrerenderedJSON(Response):
    """A JSON response whose body is rendered up front; `json` (the payload) is built only if asked for.

    The server sends `render()` as is; a fault rule that corrupts or extends the payload reads `json`,
    and the framework re-renders its modified copy.
    """

    def __init__(
        self, body: bytes, payload: Callable[[], Any], *, records: str, required: tuple[str, ...]
    ) -> None:
        self._payload_factory = payload
        self._payload: Any = None
        self._built = False
        super().__init__(
            status=200, body=body, content_type="application/json", records=records, required=required
        )

    @property  # type: ignore[override]
    def json(self) -> Any:
        if not self._built:
            self._payload, self._built = self._payload_factory(), True
        return self._payload

    @json.setter
    def json(self, value: Any) -> None:
        """Ignored: the dataclass initialiser assigns its 'no JSON' sentinel here."""

    def render(self) -> bytes:
        return self.body or b""


Selection = Callable[[], Iterator[tuple[CursorMember, DayBlock, Counters | None, bool]]]


def daily_usage(
    model: CursorModel,
    *,
    start_ms: int,
    end_ms: int,
    page: int | None,
    page_size: int | None,
    now_ms: int,
    lateness_days: int,
    team_id: int | None,
    period: dict[str, Any],
) -> Response:
    """The response to a valid request: days d with start_ms <= midnight(d) <= end_ms, of the history to date.

    Unpaginated: active rows only. Paginated (`page` and `page_size`): every member holding a seat on a
    day of the window, all their days, users ordered by id. `team_id` None = no undocumented key.
    """
    first = max(ms_day(start_ms + DAY_MS - 1), model.org.start)  # the first midnight >= start_ms
    last = min(ms_day(end_ms), model.org.end, ms_day(now_ms))
    blocks = list(model.days(first, last)) if first <= last else []
    shares = [completeness(b.day, now_ms, lateness_days) for b in blocks]
    rest: dict[str, Any] = {"period": period}

    def shown(b: DayBlock, c: Counters | None, share: float) -> Counters | None:
        return c if share >= 1.0 or c is None else scale_counters(c, share)

    if page is None or page_size is None:

        def selection() -> Iterator[tuple[CursorMember, DayBlock, Counters | None, bool]]:
            for b, share in zip(blocks, shares, strict=True):
                for number, c in b.counters.items():
                    c = shown(b, c, share)
                    if is_active(c):
                        yield model.by_number[number], b, c, share >= 1.0

        active = sorted(selection(), key=lambda t: (t[1].day, t[0].number))
        return _respond(lambda: iter(active), rest, team_id)

    users = model.members_between(first, last) if blocks else []
    total_pages = math.ceil(len(users) / page_size)
    chosen = users[(page - 1) * page_size : page * page_size]
    rest["pagination"] = {
        "page": page,
        "pageSize": page_size,
        "totalUsers": len(users),
        "totalPages": total_pages,
        "hasNextPage": page < total_pages,
        "hasPreviousPage": page > 1,
    }

    def paged() -> Iterator[tuple[CursorMember, DayBlock, Counters | None, bool]]:
        for m in chosen:
            lo, hi = m.from_ord, m.to_ord
            for b, share in zip(blocks, shares, strict=True):
                if lo <= b.ord <= hi:
                    yield m, b, shown(b, b.counters.get(m.number), share), share >= 1.0

    return _respond(paged, rest, team_id)


def _respond(selection: Selection, rest: dict[str, Any], team_id: int | None) -> Response:
    end = "}" if team_id is None else f',"teamId":{team_id}}}'
    texts = []
    for m, b, c, final in selection():
        if not final:
            texts.append(_text(m, b, c, end))
            continue
        cache = b.fragments.get(end)
        if cache is None:
            cache = b.fragments[end] = {}
        text = cache.get(m.number)
        if text is None:
            text = cache[m.number] = _text(m, b, c, end)
        texts.append(text)
    tail = json.dumps(rest, separators=(",", ":"))
    body = '{"data":[' + ",".join(texts) + "]," + tail[1:]

    def payload() -> dict[str, Any]:
        return {"data": [_row(m, b, c, team_id) for m, b, c, _ in selection()], **rest}

    return PrerenderedJSON(body.encode("utf-8"), payload, records="data", required=("email", "day"))
