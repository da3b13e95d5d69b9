"""The three report endpoints of the Anthropic Admin API simulator (vendor-apis.md §1.2-§1.4).

- ``usage_report/claude_code``: one UTC day per call, records sorted by actor, opaque ``page_…`` cursors
  that pin the data boundary of the first page (paging stays consistent while data arrives);
- ``cost_report``: daily buckets ``[starting_at, ending_at)``, ``group_by[]`` workspace_id / description,
  amounts as decimal strings of cents, recent days revised upward; ``limit`` 1-31 buckets, default 7
  (the reference gives none);
- ``usage_report/messages``: 1d / 1h / 1m buckets (default / max 7 / 31, 24 / 168, 60 / 1440), grouping
  and filters, tokens only.

Bounds must be RFC 3339 and aligned to the bucket width (UTC midnight for 1d), else 400; buckets that
have not started yet (per the simulator clock) are not returned.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sandbox.app import Request, Response, json_response
from sandbox.vendors.anthropic_params import (
    COST_LIMIT_DEFAULT,
    COST_LIMIT_MAX,
    USAGE_LIMITS,
    bad_request,
    bucket_query,
    decode_cursor,
    encode_cursor,
    group_by,
    parse_day,
    parse_limit,
)
from sandbox.vendors.anthropic_render import (
    COST_DIMENSIONS,
    USAGE_DIMENSIONS,
    TextJSONResponse,
    cc_record,
    cc_record_text,
    cc_texts,
    cost_results,
    usage_dims,
    usage_result,
)
from sandbox.vendors.anthropic_timing import (
    DAY_S,
    accrued,
    day_start,
    served_cost_units,
    stamp,
    visible_until_s,
)
from sandbox.vendors.anthropic_types import CCRecord, DayBook

if TYPE_CHECKING:
    from sandbox.vendors.anthropic import AnthropicApp

FAST_MODE_BETA = "fast-mode-2026-02-01"
# Usage-report filters: query parameter -> index in a usage key (workspace, key, account, model, tier, ctx, geo).
USAGE_FILTERS = {
    "workspace_ids[]": 0,
    "api_key_ids[]": 1,
    "account_ids[]": 2,
    "models[]": 3,
    "service_tiers[]": 4,
    "context_window[]": 5,
    "inference_geos[]": 6,
}


def fast_mode(request: Request) -> bool:
    """True when the request enables the ``speed`` dimension with the fast-mode beta header."""
    betas = request.header("anthropic-beta") or ""
    return FAST_MODE_BETA in {b.strip() for b in betas.split(",")}


def claude_code_report(app: AnthropicApp, request: Request) -> Response:
    """GET /v1/organizations/usage_report/claude_code: one day, data older than the lateness delay."""
    day = parse_day(request.arg("starting_at")).date()
    limit = parse_limit(request, 20, 1000)
    page = request.arg("page")
    if page:
        payload = decode_cursor(page, "claude_code")
        try:
            index, cutoff = int(payload["i"]), datetime.fromtimestamp(int(payload["c"]), UTC)
        except (KeyError, TypeError, ValueError, OverflowError):
            raise bad_request("page: invalid page token") from None
        if payload.get("d") != day.isoformat() or index < 0:
            raise bad_request("page: the page token belongs to another starting_at")
    else:
        index, cutoff = 0, app.clock.now().replace(microsecond=0)
    until = visible_until_s(day, cutoff, app.options.claude_code_delay_s)
    final: DayBook | None = None  # set when every record of the day is visible: its text is kept
    if until < 0 or not app.org.start <= day <= app.org.end:
        records: tuple[CCRecord, ...] = ()
    else:
        book = app.days.book(day)
        records = book.records
        if until < DAY_S:
            records = tuple(r for r in records if r.end_s <= until)
        else:
            final = book
    chunk = records[index : index + limit]
    more = index + limit < len(records)
    next_page = (
        encode_cursor(
            {"k": "claude_code", "d": day.isoformat(), "i": index + limit, "c": int(cutoff.timestamp())}
        )
        if more
        else None
    )
    date_text = f"{day.isoformat()}T00:00:00Z"
    extra, org_id = app.options.extra_fields, app.org.organization_id

    def build() -> dict[str, Any]:
        data = [cc_record(r, date_text, org_id, extra) for r in chunk]
        return {"data": data, "has_more": more, "next_page": next_page}

    def text() -> str:
        date_q, org_q = json.dumps(date_text), json.dumps(org_id)
        if final is None:
            rows = ",".join(cc_record_text(r, date_q, org_q, extra) for r in chunk)
        else:
            rows = ",".join(cc_texts(final, index, index + limit, date_q, org_q, extra))
        return f'{{"data":[{rows}],"has_more":{json.dumps(more)},"next_page":{json.dumps(next_page)}}}'

    return TextJSONResponse(text, build, records="data", required=("date", "actor.type", "model_breakdown"))


def cost_report(app: AnthropicApp, request: Request) -> Response:
    """GET /v1/organizations/cost_report: daily buckets, grouped amounts as decimal strings of cents."""
    now = app.clock.now()
    q = bucket_query(
        request, kind="cost", now=now, widths=("1d",), limits={"1d": (COST_LIMIT_DEFAULT, COST_LIMIT_MAX)}
    )
    groups = group_by(request, COST_DIMENSIONS)
    speed = fast_mode(request)
    opts = app.options
    data = []
    for start in q.starts:
        day = start.date()
        results: list[dict[str, Any]] = []
        if app.org.start <= day <= app.org.end and now > start:
            served = (
                (
                    line,
                    served_cost_units(
                        line.units,
                        day,
                        f"{line.workspace_id}|{line.description}",
                        now,
                        delay_s=opts.cost_delay_s,
                        revision_days=opts.revision_days,
                    ),
                )
                for line in app.days.costs(day)
            )
            results = cost_results(served, groups, speed)
        data.append(
            {"starting_at": stamp(start), "ending_at": stamp(start + timedelta(days=1)), "results": results}
        )
    return json_response(
        _bucket_page(data, q.next_start, "cost"), records="data.*.results", required=("amount", "currency")
    )


def messages_report(app: AnthropicApp, request: Request) -> Response:
    """GET /v1/organizations/usage_report/messages: token usage per bucket and grouping."""
    now = app.clock.now()
    q = bucket_query(request, kind="messages", now=now, widths=("1d", "1h", "1m"), limits=USAGE_LIMITS)
    speed = fast_mode(request)
    allowed = USAGE_DIMENSIONS if speed else tuple(d for d in USAGE_DIMENSIONS if d != "speed")
    groups = group_by(request, allowed)
    filters = {idx: set(request.args(name)) for name, idx in USAGE_FILTERS.items() if request.args(name)}
    per_day: dict[date, dict[tuple[str | None, ...], list[int]]] = {}
    data = []
    for start in q.starts:
        day = start.date()
        if day not in per_day:
            per_day[day] = _grouped_usage(app, day, groups, filters)
        parts, index = DAY_S // q.width_s, int((start - day_start(day)).total_seconds()) // q.width_s
        results = []
        for dims, vec in per_day[day].items():
            visible = [
                accrued(_share(n, parts, index), start, q.width_s, now, app.options.usage_delay_s)
                for n in vec
            ]
            if any(visible):
                results.append(usage_result(dims, visible, speed))
        data.append(
            {
                "starting_at": stamp(start),
                "ending_at": stamp(start + timedelta(seconds=q.width_s)),
                "results": results,
            }
        )
    return json_response(
        _bucket_page(data, q.next_start, "messages"),
        records="data.*.results",
        required=("uncached_input_tokens",),
    )


def _grouped_usage(
    app: AnthropicApp, day: date, groups: tuple[str, ...], filters: dict[int, set[str]]
) -> dict[tuple[str | None, ...], list[int]]:
    """A day's usage lines, filtered, summed per grouping, in a stable order."""
    if not app.org.start <= day <= app.org.end:
        return {}
    sums: dict[tuple[str | None, ...], list[int]] = {}
    for key, vec in app.days.book(day).usage.items():
        if any(key[idx] not in wanted for idx, wanted in filters.items()):
            continue
        dims = usage_dims(key, groups)
        acc = sums.setdefault(dims, [0] * len(vec))
        for k, n in enumerate(vec):
            acc[k] += n
    return dict(sorted(sums.items(), key=lambda kv: tuple(v or "" for v in kv[0])))


def _share(n: int, parts: int, index: int) -> int:
    """Bucket `index` of `n` split evenly into `parts` integers (the remainder goes to the first ones)."""
    base, rest = divmod(n, parts)
    return base + (1 if index < rest else 0)


def _bucket_page(data: list[dict[str, Any]], next_start: datetime | None, kind: str) -> dict[str, Any]:
    token = encode_cursor({"k": kind, "s": int(next_start.timestamp())}) if next_start is not None else None
    return {"data": data, "has_more": token is not None, "next_page": token}
