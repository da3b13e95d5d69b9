"""Anthropic Admin API payloads → rows of raw.claude_code_usage, anthropic_costs, anthropic_messages_usage,
anthropic_api_keys, anthropic_users and anthropic_workspaces.

https://platform.claude.com/docs/en/api/admin. Documented variants are accepted (vendor-apis.md §1.2–1.5,
§1.7): `date` as YYYY-MM-DD or RFC 3339 (G-A1), the actor union (G-A9), partial `tool_actions` maps
(G-A5), null grouping dimensions (G-A6), cost-report result fields of every API version, a missing
`next_page`. Unknown keys are ignored. Each parser is a generator over one API page yielding contract
rows or `Rejected`; a page of the wrong shape raises `PayloadError` (a ValueError).

Money units differ per endpoint (G-A2): Claude Code `estimated_cost.amount` is a JSON number of cents,
the cost report's `amount` a decimal string of cents; both become exact USD Decimals, with the verbatim
figure in the contract's `*_raw` column.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from ai_usage.sources.common import (
    BadValue,
    KeySeen,
    ParseResult,
    Rejected,
    as_record,
    exact_sum,
    fit_numeric,
    item_ref,
    norm_email,
    number_text,
    obj,
    parse_day,
    parse_timestamp,
    payload_list,
    require_date,
    to_count,
    to_decimal,
    to_str,
    usd_from_cents,
)
from ai_usage.sources.platform import DEFAULT_WORKSPACE_NAME, PlatformRules

CLAUDE_CODE = "/v1/organizations/usage_report/claude_code"
COST_REPORT = "/v1/organizations/cost_report"
MESSAGES_USAGE = "/v1/organizations/usage_report/messages"
API_KEYS = "/v1/organizations/api_keys"
USERS = "/v1/organizations/users"
WORKSPACES = "/v1/organizations/workspaces"

UNKNOWN_TERMINAL = "unknown"
COST_DIMENSIONS = ("workspace_id", "description", "cost_type", "context_window", "model", "service_tier",
                   "token_type", "inference_geo", "speed")
USAGE_DIMENSIONS = ("api_key_id", "workspace_id", "model", "service_tier", "context_window", "inference_geo",
                    "account_id", "service_account_id", "speed")


# --------------------------------------------------------------------------- Claude Code usage report


def parse_claude_code(payload: Any, *, page: int = 1, day: date | None = None,
                      ref_prefix: str = CLAUDE_CODE) -> ParseResult:
    """One page of the Claude Code report (one UTC `day` per call) → raw.claude_code_usage rows.

    `actor_id` is the lowercased e-mail of a user_actor or the key name (verbatim) of an api_actor; any
    other actor type is rejected. A missing `terminal_type` becomes 'unknown' (the contract keeps the key
    complete). `tool_actions` becomes a list sorted by tool name with only the tools the API gave;
    `model_breakdown` keeps API order with each estimate converted from cents; the row's
    `estimated_cost_usd` is the exact sum of the USD estimates (NULL when there are none). When `day` is
    given, a record of another day is rejected.
    """
    if day is not None:
        day = require_date(day, "day")
        ref_prefix = f"{ref_prefix} {day.isoformat()}"
    seen = KeySeen(("usage_date", "actor_type", "actor_id", "terminal_type", "customer_type"))
    for i, item in enumerate(payload_list(payload, "data", CLAUDE_CODE)):
        ref = item_ref(ref_prefix, page, i)
        try:
            row = _claude_code_row(as_record(item))
            if day is not None and row["usage_date"] != day:
                raise BadValue(f"date: {item.get('date')!r} is not the requested day {day.isoformat()}")
        except BadValue as exc:
            yield Rejected(str(exc), item, ref)
            continue
        duplicate = seen.duplicate_of(row, ref)
        yield Rejected(duplicate, item, ref) if duplicate else row


def _actor(rec: Mapping[str, Any]) -> tuple[str, str]:
    actor = obj(rec.get("actor"), "actor")
    if actor is None:
        raise BadValue("actor: missing")
    kind = to_str(actor.get("type"), "actor.type", required=True)
    if kind == "user_actor":
        return kind, norm_email(actor.get("email_address"), "actor.email_address")  # type: ignore[return-value]
    if kind == "api_actor":
        return kind, to_str(actor.get("api_key_name"), "actor.api_key_name", required=True)  # type: ignore[return-value]
    raise BadValue(f"actor.type: unknown actor type {kind!r} (expected 'user_actor' or 'api_actor')")


def _claude_code_row(rec: Mapping[str, Any]) -> dict[str, Any]:
    actor_type, actor_id = _actor(rec)
    core = obj(rec.get("core_metrics"), "core_metrics") or {}
    lines = obj(core.get("lines_of_code"), "core_metrics.lines_of_code") or {}
    breakdown = _model_breakdown(rec.get("model_breakdown"))
    usd = [m["estimated_cost_usd"] for m in breakdown if m["estimated_cost_usd"] is not None]
    return {
        "usage_date": parse_day(rec.get("date"), "date"),
        "actor_type": actor_type,
        "actor_id": actor_id,
        "terminal_type": to_str(rec.get("terminal_type"), "terminal_type") or UNKNOWN_TERMINAL,
        "customer_type": to_str(rec.get("customer_type"), "customer_type", required=True),
        "subscription_type": to_str(rec.get("subscription_type"), "subscription_type"),
        "organization_id": to_str(rec.get("organization_id"), "organization_id"),
        "num_sessions": to_count(core.get("num_sessions"), "core_metrics.num_sessions"),
        "lines_added": to_count(lines.get("added"), "core_metrics.lines_of_code.added"),
        "lines_removed": to_count(lines.get("removed"), "core_metrics.lines_of_code.removed"),
        "commits_by_claude_code": to_count(core.get("commits_by_claude_code"),
                                           "core_metrics.commits_by_claude_code"),
        "pull_requests_by_claude_code": to_count(core.get("pull_requests_by_claude_code"),
                                                 "core_metrics.pull_requests_by_claude_code"),
        "tool_actions": _tool_actions(rec.get("tool_actions")),
        "model_breakdown": breakdown,
        "estimated_cost_usd": fit_numeric(exact_sum(usd), "estimated_cost_usd") if usd else None,
    }


def _tool_actions(value: Any) -> list[dict[str, Any]]:
    actions = obj(value, "tool_actions") or {}
    out = []
    for tool in sorted(actions, key=str):
        counts = obj(actions[tool], f"tool_actions.{tool}") or {}
        out.append({
            "tool": str(tool),
            "accepted": to_count(counts.get("accepted"), f"tool_actions.{tool}.accepted"),
            "rejected": to_count(counts.get("rejected"), f"tool_actions.{tool}.rejected"),
        })
    return out


def _model_breakdown(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadValue(f"model_breakdown: expected a list, got {type(value).__name__}")
    out = []
    for n, entry in enumerate(value):
        where = f"model_breakdown[{n}]"
        entry = obj(entry, where)
        if entry is None:
            raise BadValue(f"{where}: null entry")
        tokens = obj(entry.get("tokens"), f"{where}.tokens") or {}
        cost = obj(entry.get("estimated_cost"), f"{where}.estimated_cost") or {}
        currency = to_str(cost.get("currency"), f"{where}.estimated_cost.currency")
        amount = cost.get("amount")
        usd = None
        if amount is not None:
            cents = to_decimal(amount, f"{where}.estimated_cost.amount")
            if cents < 0:
                raise BadValue(f"{where}.estimated_cost.amount: {amount!r} is negative")
            if currency is not None and currency.strip().upper() == "USD":
                usd = usd_from_cents(cents, f"{where}.estimated_cost.amount")
        out.append({
            "model": to_str(entry.get("model"), f"{where}.model", required=True),
            "input_tokens": to_count(tokens.get("input"), f"{where}.tokens.input"),
            "output_tokens": to_count(tokens.get("output"), f"{where}.tokens.output"),
            "cache_read_tokens": to_count(tokens.get("cache_read"), f"{where}.tokens.cache_read"),
            "cache_creation_tokens": to_count(tokens.get("cache_creation"), f"{where}.tokens.cache_creation"),
            "estimated_cost_usd": usd,
            "estimated_cost_currency": currency,
            "estimated_cost_amount_raw": number_text(amount),
        })
    return out


# --------------------------------------------------------------------------- daily buckets


def _daily_bucket(bucket: Mapping[str, Any]) -> date:
    """The UTC day of a bucket that is exactly one UTC day long (cost and usage reports at bucket_width=1d)."""
    start = parse_timestamp(bucket.get("starting_at"), "starting_at")
    end = parse_timestamp(bucket.get("ending_at"), "ending_at")
    if start is None or end is None:
        raise BadValue("bucket: starting_at and ending_at are both required")
    if end - start != timedelta(days=1):
        raise BadValue(f"bucket: {bucket.get('starting_at')!r} to {bucket.get('ending_at')!r} is not one day")
    if (start.hour, start.minute, start.second, start.microsecond) != (0, 0, 0, 0):
        raise BadValue(f"bucket: starting_at {bucket.get('starting_at')!r} is not a UTC midnight")
    return start.date()


def _buckets(payload: Any, endpoint: str, ref_prefix: str, page: int) -> ParseResult:
    """Yield ``{"_day", "_ref", "_result"}`` work items per result, or Rejected for a bad bucket / result."""
    for b, bucket in enumerate(payload_list(payload, "data", endpoint)):
        bucket_ref = f"{ref_prefix} page {page} bucket {b}".strip()
        try:
            rec = as_record(bucket)
            day = _daily_bucket(rec)
            results = rec.get("results")
            if not isinstance(results, list):
                raise BadValue(f"results: expected a list, got {type(results).__name__}")
        except BadValue as exc:
            yield Rejected(str(exc), bucket, bucket_ref)
            continue
        for r, result in enumerate(results):
            yield {"_day": day, "_ref": f"{bucket_ref} ({day.isoformat()}) result {r}", "_result": result}


def _dimensions(rec: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, str | None]:
    return {name: to_str(rec.get(name), name) for name in names}


# --------------------------------------------------------------------------- cost report


def parse_cost_report(payload: Any, *, page: int = 1, rules: PlatformRules,
                      workspace_names: Mapping[str | None, str] | None = None,
                      ref_prefix: str = COST_REPORT) -> ParseResult:
    """One page of the cost report → raw.anthropic_costs rows (one per day and grouping fields).

    `amount` (decimal string of USD cents) → `amount_usd` exactly, verbatim in `amount_cents_raw`; a
    currency other than USD is rejected, never converted. Null dimensions stay NULL; unknown `cost_type`
    values are kept. `workspace_name` comes from `workspace_names` (id → name from the workspaces
    listing; the Default Workspace, id NULL, is 'Default Workspace' unless the mapping names it) and
    feeds the platform rules, which set `platform` and `platform_rule`.
    """
    names = dict(workspace_names or {})
    seen = KeySeen(("cost_date", *COST_DIMENSIONS))
    for work in _buckets(payload, COST_REPORT, ref_prefix, page):
        if isinstance(work, Rejected):
            yield work
            continue
        result, ref = work["_result"], work["_ref"]
        try:
            rec = as_record(result)
            currency = to_str(rec.get("currency"), "currency", required=True)
            if currency.strip().upper() != "USD":  # type: ignore[union-attr]
                raise BadValue(f"currency: {currency!r} is not USD (only USD is stored; never converted)")
            currency = "USD"
            amount = rec.get("amount")
            if amount is None:
                raise BadValue("amount: missing")
            row: dict[str, Any] = {"cost_date": work["_day"], **_dimensions(rec, COST_DIMENSIONS)}
            row["currency"] = currency
            row["amount_usd"] = usd_from_cents(amount, "amount")
            row["amount_cents_raw"] = number_text(amount)
        except BadValue as exc:
            yield Rejected(str(exc), result, ref)
            continue
        workspace_id = row["workspace_id"]
        name = names.get(workspace_id) if workspace_id is not None else names.get(None, DEFAULT_WORKSPACE_NAME)
        row["platform"], row["platform_rule"] = rules.classify(row, name)
        row["workspace_name"] = name
        duplicate = seen.duplicate_of(row, ref)
        yield Rejected(duplicate, result, ref) if duplicate else row


# --------------------------------------------------------------------------- messages usage report


def parse_messages_usage(payload: Any, *, page: int = 1, ref_prefix: str = MESSAGES_USAGE) -> ParseResult:
    """One page of the token usage report (bucket_width=1d) → raw.anthropic_messages_usage rows.

    `cache_creation` is the nested object of the API ({ephemeral_1h_input_tokens, ephemeral_5m_input_tokens});
    `server_tool_use.web_search_requests` the web searches. Counts stay NULL when absent.
    """
    seen = KeySeen(("usage_date", *USAGE_DIMENSIONS))
    for work in _buckets(payload, MESSAGES_USAGE, ref_prefix, page):
        if isinstance(work, Rejected):
            yield work
            continue
        result, ref = work["_result"], work["_ref"]
        try:
            rec = as_record(result)
            cache = obj(rec.get("cache_creation"), "cache_creation") or {}
            tools = obj(rec.get("server_tool_use"), "server_tool_use") or {}
            row: dict[str, Any] = {"usage_date": work["_day"], **_dimensions(rec, USAGE_DIMENSIONS)}
            row.update({
                "uncached_input_tokens": to_count(rec.get("uncached_input_tokens"), "uncached_input_tokens"),
                "cache_creation_1h_input_tokens": to_count(cache.get("ephemeral_1h_input_tokens"),
                                                           "cache_creation.ephemeral_1h_input_tokens"),
                "cache_creation_5m_input_tokens": to_count(cache.get("ephemeral_5m_input_tokens"),
                                                           "cache_creation.ephemeral_5m_input_tokens"),
                "cache_read_input_tokens": to_count(rec.get("cache_read_input_tokens"), "cache_read_input_tokens"),
                "output_tokens": to_count(rec.get("output_tokens"), "output_tokens"),
                "web_search_requests": to_count(tools.get("web_search_requests"),
                                                "server_tool_use.web_search_requests"),
            })
        except BadValue as exc:
            yield Rejected(str(exc), result, ref)
            continue
        duplicate = seen.duplicate_of(row, ref)
        yield Rejected(duplicate, result, ref) if duplicate else row


# --------------------------------------------------------------------------- organisation listings


def _listing(payload: Any, endpoint: str, ref_prefix: str, page: int, key: str, build: Any) -> ParseResult:
    seen = KeySeen(("snapshot_date", key))
    for i, item in enumerate(payload_list(payload, "data", endpoint)):
        ref = item_ref(ref_prefix, page, i)
        try:
            row = build(as_record(item))
        except BadValue as exc:
            yield Rejected(str(exc), item, ref)
            continue
        duplicate = seen.duplicate_of(row, ref)
        yield Rejected(duplicate, item, ref) if duplicate else row


def parse_api_keys(payload: Any, *, snapshot_date: date, page: int = 1, ref_prefix: str = API_KEYS) -> ParseResult:
    """One page of the API key listing → raw.anthropic_api_keys rows for `snapshot_date`."""
    snapshot_date = require_date(snapshot_date, "snapshot_date")

    def build(rec: Mapping[str, Any]) -> dict[str, Any]:
        creator = obj(rec.get("created_by"), "created_by") or {}
        return {
            "snapshot_date": snapshot_date,
            "api_key_id": to_str(rec.get("id"), "id", required=True),
            "name": to_str(rec.get("name"), "name"),
            "status": to_str(rec.get("status"), "status"),
            "workspace_id": to_str(rec.get("workspace_id"), "workspace_id"),
            "created_at": parse_timestamp(rec.get("created_at"), "created_at"),
            "created_by_id": to_str(creator.get("id"), "created_by.id"),
            "created_by_type": to_str(creator.get("type"), "created_by.type"),
            "expires_at": parse_timestamp(rec.get("expires_at"), "expires_at"),
            "partial_key_hint": to_str(rec.get("partial_key_hint"), "partial_key_hint"),
        }

    return _listing(payload, API_KEYS, ref_prefix, page, "api_key_id", build)


def parse_users(payload: Any, *, snapshot_date: date, page: int = 1, ref_prefix: str = USERS) -> ParseResult:
    """One page of the organisation's user listing → raw.anthropic_users rows for `snapshot_date`."""
    snapshot_date = require_date(snapshot_date, "snapshot_date")

    def build(rec: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "snapshot_date": snapshot_date,
            "user_id": to_str(rec.get("id"), "id", required=True),
            "email": norm_email(rec.get("email"), "email", required=False),
            "name": to_str(rec.get("name"), "name"),
            "role": to_str(rec.get("role"), "role"),
            "added_at": parse_timestamp(rec.get("added_at"), "added_at"),
        }

    return _listing(payload, USERS, ref_prefix, page, "user_id", build)


def parse_workspaces(payload: Any, *, snapshot_date: date, page: int = 1,
                     ref_prefix: str = WORKSPACES) -> ParseResult:
    """One page of the workspace listing → raw.anthropic_workspaces rows for `snapshot_date`.

    `tags` and `data_residency` (2026) are kept as given, as JSON-able values (numbers as int or float).
    """
    snapshot_date = require_date(snapshot_date, "snapshot_date")

    def build(rec: Mapping[str, Any]) -> dict[str, Any]:
        tags = obj(rec.get("tags"), "tags")
        residency = obj(rec.get("data_residency"), "data_residency")
        return {
            "snapshot_date": snapshot_date,
            "workspace_id": to_str(rec.get("id"), "id", required=True),
            "name": to_str(rec.get("name"), "name"),
            "created_at": parse_timestamp(rec.get("created_at"), "created_at"),
            "archived_at": parse_timestamp(rec.get("archived_at"), "archived_at"),
            "display_color": to_str(rec.get("display_color"), "display_color"),
            "tags": None if tags is None else _jsonable(tags),
            "data_residency": None if residency is None else _jsonable(residency),
        }

    return _listing(payload, WORKSPACES, ref_prefix, page, "workspace_id", build)


def _jsonable(value: Any) -> Any:
    """A plain JSON value: Decimals from ``parse_float=Decimal`` become int (integral) or float."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def workspace_name_map(rows: list[dict[str, Any]]) -> dict[str | None, str]:
    """id → name from parsed workspace rows (for `parse_cost_report`), plus the Default Workspace (id None)."""
    names: dict[str | None, str] = {None: DEFAULT_WORKSPACE_NAME}
    for row in rows:
        if row.get("name") is not None:
            names[row["workspace_id"]] = row["name"]
    return names
