"""Ground truth of the Anthropic side: the FINAL rows the warehouse must hold, in table-contract shape.

Computed from the organisation model (through the same day generator the simulator serves from, never
through HTTP) in the shape of ``include/schemas/raw/{claude_code_usage, anthropic_costs,
anthropic_messages_usage, anthropic_api_keys, anthropic_users, anthropic_workspaces}.json`` without the
``_ingested_at`` / ``_run_id`` bookkeeping columns. Units are converted exactly: USD ``Decimal`` from the
API's cents (Claude Code: integer cents; cost report: the decimal string, kept verbatim in
``amount_cents_raw``); timestamps are aware UTC datetimes; JSON columns are dicts; ``tool_actions``
entries are sorted by tool name (the API's map has no order). Rows are sorted by day, then key.

"Final" means after the lateness and revision windows (`claude_code_final`, `cost_final`): the Claude
Code report is final one hour after the day ends, the cost report three days after.

Platform: ``platform`` is the organisation's own truth, ``'claude_code'`` for rows of a developer-tooling
workspace (the Claude Code workspace, and the Default Workspace, which only holds a personal Claude Code
key) and ``'api'`` for product workloads. ``platform_rule`` is left None here: which configured rule
matched is the pipeline's business, so compare it separately (or not at all).

Reconciliation: every day, the Claude Code report's estimates of API-billed usage lie within
`ESTIMATE_TOLERANCE` (5 %) of the billed cost of the same workspaces, and never equal it
(`estimated_total_by_day` vs `billed_total_by_day`).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sandbox.vendors.anthropic_catalog import U_1H, U_5M, U_IN, U_OUT, U_READ, U_WEB, cents_text, units_to_usd
from sandbox.vendors.anthropic_day import AnthropicDays
from sandbox.vendors.anthropic_objects import instant, workspace_residency, workspace_tags
from sandbox.vendors.anthropic_timing import claude_code_final, cost_final
from sandbox.vendors.anthropic_types import ESTIMATE_TOLERANCE, CCRecord, iter_days

if TYPE_CHECKING:
    from sandbox.org import Organisation

Row = dict[str, Any]
ALL = "*"  # workspace filter meaning "every workspace" (None already means the Default Workspace)
MESSAGES_GROUP_BY = ("api_key_id", "workspace_id", "model")

__all__ = [
    "ALL",
    "ESTIMATE_TOLERANCE",
    "billed_total_by_day",
    "claude_code_final",
    "cost_final",
    "estimated_total_by_day",
    "expected_api_keys",
    "expected_claude_code",
    "expected_costs",
    "expected_messages_usage",
    "expected_users",
    "expected_workspaces",
    "platform_of",
]


def _days(org: Organisation, start: date, end: date) -> list[date]:
    return [d for d in iter_days(max(start, org.start), min(end, org.end))]


def _cents_to_usd(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def platform_of(org: Organisation, workspace_id: str | None) -> str:
    """'claude_code' for a developer-tooling workspace of the organisation, else 'api'."""
    return "claude_code" if org.workspace(workspace_id).is_developer_tooling else "api"


# --------------------------------------------------------------------------- raw.claude_code_usage


def claude_code_row(org: Organisation, day: date, r: CCRecord) -> Row:
    """One raw.claude_code_usage row of a Claude Code record."""
    breakdown = [
        {
            "model": m.model,
            "input_tokens": m.input,
            "output_tokens": m.output,
            "cache_read_tokens": m.cache_read,
            "cache_creation_tokens": m.cache_5m + m.cache_1h,
            "estimated_cost_usd": _cents_to_usd(m.estimate_cents),
            "estimated_cost_currency": "USD",
            "estimated_cost_amount_raw": str(m.estimate_cents),
        }
        for m in r.models
    ]
    return {
        "usage_date": day,
        "actor_type": r.actor_type,
        "actor_id": r.actor_id.strip().lower() if r.actor_type == "user_actor" else r.actor_id,
        "terminal_type": r.terminal_type,
        "customer_type": r.customer_type,
        "subscription_type": r.subscription_type,
        "organization_id": org.organization_id,
        "num_sessions": r.num_sessions,
        "lines_added": r.lines_added,
        "lines_removed": r.lines_removed,
        "commits_by_claude_code": r.commits,
        "pull_requests_by_claude_code": r.pull_requests,
        "tool_actions": [
            {"tool": t, "accepted": a, "rejected": rj} for t, a, rj in sorted(r.tool_actions)
        ],  # a JSON map has no order: sorted by tool name
        "model_breakdown": breakdown,
        "estimated_cost_usd": sum((b["estimated_cost_usd"] for b in breakdown), Decimal(0)),
    }


def expected_claude_code(
    org: Organisation, start: date, end: date, *, subscription_users: bool = False
) -> list[Row]:
    """Final raw.claude_code_usage rows of [start, end], sorted by the primary key.

    `subscription_users` must match the simulator's switch (default: left out, as G-A3 describes).
    """
    days = AnthropicDays(org, subscription_users=subscription_users, cache_days=2)
    return [claude_code_row(org, d, r) for d in _days(org, start, end) for r in days.book(d).records]


# --------------------------------------------------------------------------- raw.anthropic_costs


def expected_costs(org: Organisation, start: date, end: date) -> list[Row]:
    """Final raw.anthropic_costs rows of [start, end] (group_by[]=workspace_id and description)."""
    days = AnthropicDays(org, cache_days=2)
    rows = []
    for d in _days(org, start, end):
        for line in days.costs(d):
            ws = org.workspace(line.workspace_id)
            rows.append(
                {
                    "cost_date": d,
                    "workspace_id": line.workspace_id,
                    "description": line.description,
                    "cost_type": line.cost_type,
                    "context_window": line.context_window,
                    "model": line.model,
                    "service_tier": line.service_tier,
                    "token_type": line.token_type,
                    "inference_geo": line.inference_geo,
                    "speed": None,  # only with the fast-mode beta header, which the pipeline does not send
                    "currency": "USD",
                    "amount_usd": units_to_usd(line.units),
                    "amount_cents_raw": cents_text(line.units),
                    "platform": platform_of(org, line.workspace_id),
                    "platform_rule": None,
                    "workspace_name": ws.name,
                }
            )
    return rows


def billed_total_by_day(
    org: Organisation, start: date, end: date, *, platform: str | None = None, workspace_id: str | None = ALL
) -> dict[date, Decimal]:
    """Billed USD per day of [start, end] (every day of the organisation's range, 0 when nothing was billed),
    optionally only one platform ('claude_code' / 'api') or one workspace (None = Default Workspace)."""
    days = AnthropicDays(org, cache_days=2)
    out: dict[date, Decimal] = {}
    for d in _days(org, start, end):
        units = sum(
            c.units
            for c in days.costs(d)
            if (platform is None or platform_of(org, c.workspace_id) == platform)
            and (workspace_id == ALL or c.workspace_id == workspace_id)
        )
        out[d] = units_to_usd(units)
    return out


def estimated_total_by_day(
    org: Organisation, start: date, end: date, *, workspace_id: str | None = ALL
) -> dict[date, Decimal]:
    """The Claude Code report's estimated USD per day for API-billed usage (customer_type 'api'),
    optionally only of records billed to one workspace (None = Default Workspace)."""
    days = AnthropicDays(org, cache_days=2)
    out: dict[date, Decimal] = {}
    for d in _days(org, start, end):
        cents = sum(
            r.estimate_cents
            for r in days.book(d).records
            if r.billed and (workspace_id == ALL or r.workspace_id == workspace_id)
        )
        out[d] = _cents_to_usd(cents)
    return out


# --------------------------------------------------------------------------- raw.anthropic_messages_usage


def expected_messages_usage(
    org: Organisation, start: date, end: date, *, group_by: tuple[str, ...] = MESSAGES_GROUP_BY
) -> list[Row]:
    """Final raw.anthropic_messages_usage rows of [start, end] for 1d buckets grouped by `group_by`."""
    index = {
        "workspace_id": 0,
        "api_key_id": 1,
        "account_id": 2,
        "model": 3,
        "service_tier": 4,
        "context_window": 5,
        "inference_geo": 6,
    }
    dims = (
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
    days = AnthropicDays(org, cache_days=2)
    rows = []
    for d in _days(org, start, end):
        sums: dict[tuple[str | None, ...], list[int]] = {}
        for key, vec in days.book(d).usage.items():
            k = tuple(key[index[g]] if g in group_by and g in index else None for g in dims)
            acc = sums.setdefault(k, [0] * 6)
            for i, n in enumerate(vec):
                acc[i] += n
        for k, acc in sorted(sums.items(), key=lambda kv: tuple(v or "" for v in kv[0])):
            rows.append(
                {
                    "usage_date": d,
                    **dict(zip(dims, k, strict=True)),
                    "uncached_input_tokens": acc[U_IN],
                    "cache_creation_1h_input_tokens": acc[U_1H],
                    "cache_creation_5m_input_tokens": acc[U_5M],
                    "cache_read_input_tokens": acc[U_READ],
                    "output_tokens": acc[U_OUT],
                    "web_search_requests": acc[U_WEB],
                }
            )
    return rows


# --------------------------------------------------------------------------- listings (snapshots)


def _created(org: Organisation, day: date, kind: str, item_id: str | None) -> datetime:
    return instant(day, org.seed, kind, item_id)


def expected_api_keys(org: Organisation, snapshot_date: date) -> list[Row]:
    """raw.anthropic_api_keys rows of a listing taken on `snapshot_date` (names and status of that day)."""
    return sorted(
        (
            {
                "snapshot_date": snapshot_date,
                "api_key_id": k.id,
                "name": k.name_on(snapshot_date),
                "status": k.status_on(snapshot_date),
                "workspace_id": k.workspace_id,
                "created_at": _created(org, k.created_date, "api_key", k.id),
                "created_by_id": k.created_by_user_id,
                "created_by_type": "user",
                "expires_at": None,
                "partial_key_hint": k.partial_key_hint,
            }
            for k in org.api_keys
            if k.created_date <= snapshot_date
        ),
        key=lambda r: r["api_key_id"],
    )


def expected_users(org: Organisation, snapshot_date: date) -> list[Row]:
    """raw.anthropic_users rows of a listing taken on `snapshot_date` (members on that day)."""
    return sorted(
        (
            {
                "snapshot_date": snapshot_date,
                "user_id": u.id,
                "email": u.email.strip().lower(),
                "name": u.name,
                "role": u.role,
                "added_at": _created(org, u.added_date, "user", u.id),
            }
            for u in org.users
            if u.member_on(snapshot_date)
        ),
        key=lambda r: r["user_id"],
    )


def expected_workspaces(org: Organisation, snapshot_date: date) -> list[Row]:
    """raw.anthropic_workspaces rows of a listing taken on `snapshot_date` (never the Default Workspace)."""
    return sorted(
        (
            {
                "snapshot_date": snapshot_date,
                "workspace_id": w.id,
                "name": w.name,
                "created_at": _created(org, w.created_date, "workspace", w.id),
                "archived_at": None,
                "display_color": w.display_color,
                "tags": workspace_tags(w),
                "data_residency": workspace_residency(w),
            }
            for w in org.workspaces
            if w.id is not None and w.created_date <= snapshot_date
        ),
        key=lambda r: r["workspace_id"],
    )
