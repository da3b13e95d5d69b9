"""JSON shapes of the Anthropic Admin API (newest documented versions, vendor-apis.md §1.2-§1.5).

Pure functions from the simulator's day books to report objects (listing objects: `anthropic_objects`).
Unknown-but-harmless fields appear by default on a few objects (``extra_fields``): about 5 % of Claude
Code records carry ``claude_code_version``. Parsers must ignore it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from sandbox.app import Response
from sandbox.vendors.anthropic_catalog import U_1H, U_5M, U_IN, U_OUT, U_READ, U_WEB, cents_text
from sandbox.vendors.anthropic_types import CCRecord, CostLine, DayBook, UsageKey

COST_DIMENSIONS = ("workspace_id", "description")
USAGE_DIMENSIONS = (
    "api_key_id",
    "workspace_id",
    "model",
    "service_tier",
    "context_window",
    "inference_geo",
    "account_id",
    "service_account_id",
    "speed",
)
_USAGE_INDEX = {
    "workspace_id": 0,
    "api_key_id": 1,
    "account_id": 2,
    "model": 3,
    "service_tier": 4,
    "context_window": 5,
    "inference_geo": 6,
}


# --------------------------------------------------------------------------- Claude Code report


def cc_record(r: CCRecord, date_text: str, organization_id: str, extra_fields: bool) -> dict[str, Any]:
    """One ``ClaudeCodeUsageReport`` record (§1.2): estimated_cost.amount is a JSON number of cents."""
    actor = (
        {"type": "user_actor", "email_address": r.actor_id}
        if r.actor_type == "user_actor"
        else {"type": "api_actor", "api_key_name": r.actor_id}
    )
    out: dict[str, Any] = {
        "date": date_text,
        "actor": actor,
        "organization_id": organization_id,
        "customer_type": r.customer_type,
        "terminal_type": r.terminal_type,
        "core_metrics": {
            "num_sessions": r.num_sessions,
            "lines_of_code": {"added": r.lines_added, "removed": r.lines_removed},
            "commits_by_claude_code": r.commits,
            "pull_requests_by_claude_code": r.pull_requests,
        },
        "tool_actions": {name: {"accepted": a, "rejected": rj} for name, a, rj in r.tool_actions},
        "model_breakdown": [
            {
                "model": m.model,
                "tokens": {
                    "input": m.input,
                    "output": m.output,
                    "cache_read": m.cache_read,
                    "cache_creation": m.cache_5m + m.cache_1h,
                },
                "estimated_cost": {"currency": "USD", "amount": m.estimate_cents},
            }
            for m in r.models
        ],
        "subscription_type": r.subscription_type,
    }
    if extra_fields and r.extra:
        out["claude_code_version"] = _version(r)
    return out


@lru_cache(maxsize=65_536)
def _q(text: str) -> str:
    """A JSON string literal (cached: actors, terminals and models repeat all day long)."""
    return json.dumps(text)


def cc_record_text(r: CCRecord, date_q: str, org_q: str, extra_fields: bool) -> str:
    """`cc_record` rendered straight to compact JSON text (the hot path: ~4x faster than json.dumps)."""
    if r.actor_type == "user_actor":
        actor = '{"type":"user_actor","email_address":' + _q(r.actor_id) + "}"
    else:
        actor = '{"type":"api_actor","api_key_name":' + _q(r.actor_id) + "}"
    tools = ",".join(f'{_q(name)}:{{"accepted":{a},"rejected":{rj}}}' for name, a, rj in r.tool_actions)
    models = ",".join(
        f'{{"model":{_q(m.model)},"tokens":{{"input":{m.input},"output":{m.output},'
        f'"cache_read":{m.cache_read},"cache_creation":{m.cache_5m + m.cache_1h}}},'
        f'"estimated_cost":{{"currency":"USD","amount":{m.estimate_cents}}}}}'
        for m in r.models
    )
    sub = "null" if r.subscription_type is None else _q(r.subscription_type)
    tail = f',"claude_code_version":{_q(_version(r))}' if extra_fields and r.extra else ""
    return (
        f'{{"date":{date_q},"actor":{actor},"organization_id":{org_q},"customer_type":{_q(r.customer_type)},'
        f'"terminal_type":{_q(r.terminal_type)},"core_metrics":{{"num_sessions":{r.num_sessions},'
        f'"lines_of_code":{{"added":{r.lines_added},"removed":{r.lines_removed}}},'
        f'"commits_by_claude_code":{r.commits},"pull_requests_by_claude_code":{r.pull_requests}}},'
        f'"tool_actions":{{{tools}}},"model_breakdown":[{models}],"subscription_type":{sub}{tail}}}'
    )


def cc_texts(book: DayBook, lo: int, hi: int, date_q: str, org_q: str, extra_fields: bool) -> list[str]:
    """`cc_record_text` of the book's records [lo, hi), rendered once per record and kept in the book.

    Only for a final day (every record visible): its records never change while the book lives, so
    serving the day again joins stored text, as the Cursor simulator does with its final days' rows.
    """
    key = (date_q, org_q, extra_fields)
    records = book.records
    texts = book.texts.get(key)
    if texts is None:
        texts = book.texts.setdefault(key, [None] * len(records))
    out = []
    for i in range(lo, min(hi, len(records))):
        text = texts[i]
        if text is None:  # two threads may both render it: the same text either way
            text = texts[i] = cc_record_text(records[i], date_q, org_q, extra_fields)
        out.append(text)
    return out


def _version(r: CCRecord) -> str:
    return f"2.{r.num_sessions % 3}.{r.lines_added % 40}"


class TextJSONResponse(Response):
    """A JSON response whose bytes come from `render_text` (fast); its `json` object is only built
    (by `build`) when something needs it, e.g. a fault that corrupts records. Both must agree."""

    def __init__(
        self,
        render_text: Callable[[], str],
        build: Callable[[], Any],
        *,
        records: str | None = None,
        required: tuple[str, ...] = (),
    ) -> None:
        self._render_text, self._build, self._built = render_text, build, None
        super().__init__(status=200, json=None, records=records, required=required)

    @property  # type: ignore[override]
    def json(self) -> Any:
        if self._built is None:
            self._built = self._build()
        return self._built

    @json.setter
    def json(self, value: Any) -> None:  # the dataclass __init__ assigns it; the lazy value wins
        self._built = value

    @property
    def is_json(self) -> bool:
        return True

    def render(self) -> bytes:
        if self._built is not None:
            return super().render()
        return self._render_text().encode("utf-8")


# --------------------------------------------------------------------------- cost report


def cost_results(
    lines: Iterable[tuple[CostLine, int]], groups: tuple[str, ...], with_speed: bool
) -> list[dict[str, Any]]:
    """Cost results of one bucket: served units summed per grouping; ungrouped dimensions are null."""
    by_ws, by_desc = "workspace_id" in groups, "description" in groups
    sums: dict[tuple[Any, ...], int] = {}
    for line, units in lines:
        dims = (
            line.workspace_id if by_ws else None,
            *(
                (
                    line.description,
                    line.cost_type,
                    line.context_window,
                    line.model,
                    line.service_tier,
                    line.token_type,
                    line.inference_geo,
                )
                if by_desc
                else (None,) * 7
            ),
        )
        sums[dims] = sums.get(dims, 0) + units
    out = []
    for dims, units in sorted(sums.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or "")):
        if units <= 0:
            continue
        ws, desc, cost_type, context, model, tier, token_type, geo = dims
        result: dict[str, Any] = {
            "amount": cents_text(units),
            "currency": "USD",
            "workspace_id": ws,
            "description": desc,
            "cost_type": cost_type,
            "context_window": context,
            "model": model,
            "service_tier": tier,
            "token_type": token_type,
            "inference_geo": geo,
        }
        if with_speed:
            result["speed"] = "standard" if token_type is not None else None
        out.append(result)
    return out


# --------------------------------------------------------------------------- usage report


def usage_dims(key: UsageKey, groups: tuple[str, ...]) -> tuple[str | None, ...]:
    """The grouping values of one usage line, None for every dimension not grouped by."""
    return tuple(
        (key[_USAGE_INDEX[g]] if g in _USAGE_INDEX else ("standard" if g == "speed" else None))
        if g in groups
        else None
        for g in USAGE_DIMENSIONS
    )


def usage_result(dims: tuple[str | None, ...], vec: list[int], with_speed: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "uncached_input_tokens": vec[U_IN],
        "cache_creation": {
            "ephemeral_1h_input_tokens": vec[U_1H],
            "ephemeral_5m_input_tokens": vec[U_5M],
        },
        "cache_read_input_tokens": vec[U_READ],
        "output_tokens": vec[U_OUT],
        "server_tool_use": {"web_search_requests": vec[U_WEB]},
    }
    for name, value in zip(USAGE_DIMENSIONS, dims, strict=True):
        if name != "speed" or with_speed:
            out[name] = value
    return out
