"""JSON shapes of Cursor members, spend and usage events (vendor-apis.md §2.2, §2.4, §2.5) from the model.

Money: the model holds exact `Decimal` cents with at most 15 significant digits (or the float-noise text
itself), so a JSON float prints exactly that decimal (`repr` of a double is the shortest text that reads
back to it). `num_text` is the JSON text of an amount; the ground truth keeps it as the *_raw columns.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandbox.vendors.cursor_events import Event, Totals
from sandbox.vendors.cursor_model import CursorMember, day_ms


def num(d: Decimal) -> int | float:
    """A JSON number whose text is exactly `num_text(d)`."""
    return int(d) if d == d.to_integral_value() else float(d)


def num_text(d: Decimal) -> str:
    """The JSON text of an amount as the simulator emits it (e.g. '2450.125487', '8', '40.16699999999999')."""
    value = num(d)
    text = repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, float) and Decimal(text) != d:
        raise ValueError(f"{d} does not survive a JSON float; the model must keep <= 15 significant digits")
    return text


def member_json(
    m: CursorMember, removed: bool, id_style: str, shape: str, extra: bool, team_id: int
) -> dict[str, Any]:
    """One GET /teams/members entry: newest {id,name,email,role,isRemoved}; first release {name,email,role}."""
    if shape == "array":
        return {"name": m.name, "email": m.shown_email, "role": m.role}
    out: dict[str, Any] = {
        "id": m.encoded_id if id_style == "string" else m.number,
        "name": m.name,
        "email": m.shown_email,
        "role": m.role,
        "isRemoved": removed,
    }
    if extra:  # undocumented keys, as vendors add them: parsers must ignore them
        out["teamId"] = team_id
        out["createdAt"] = day_ms(m.seat_from)
    return out


def spend_json(m: CursorMember, totals: Totals, id_style: str, extra: bool, team_id: int) -> dict[str, Any]:
    """One teamMemberSpend entry (2026 shape: on-demand `spendCents`, total `overallSpendCents`)."""
    overall, on_demand, n_usage = totals
    out: dict[str, Any] = {
        "userId": m.encoded_id if id_style == "string" else m.number,
        "name": m.name,
        "email": m.shown_email,
        "role": m.role,
        "spendCents": num(on_demand),
        "overallSpendCents": num(overall),
        "fastPremiumRequests": n_usage,
        "hardLimitOverrideDollars": m.hard_limit_override_dollars,
        "monthlyLimitDollars": m.monthly_limit_dollars,
        "effectivePerUserLimitDollars": m.effective_limit_dollars,
    }
    if extra:
        out["teamId"] = team_id
    return out


def event_json(e: Event, extra: bool, team_id: int) -> dict[str, Any]:
    """One usageEvents entry; `tokenUsage` only on token-based calls, `cursorTokenFee` only with a fee."""
    out: dict[str, Any] = {"timestamp": str(e.ts)}
    if e.member is not None:
        out["userEmail"] = e.member.shown_email
    if e.service_account is not None:
        out["serviceAccountId"] = e.service_account.id
        out["serviceAccountName"] = e.service_account.name
    if e.cloud_agent_id is not None:
        out["cloudAgentId"] = e.cloud_agent_id
    if e.automation_id is not None:
        out["automationId"] = e.automation_id
    if e.conversation_id is not None:
        out["conversationId"] = e.conversation_id
    out.update(
        model=e.model,
        kind=e.kind,
        maxMode=e.max_mode,
        requestsCosts=num(e.requests_costs),
        isTokenBasedCall=e.token_based,
        isChargeable=e.chargeable,
        isHeadless=e.headless,
    )
    if e.tokens is not None and e.total_cents is not None:
        usage: dict[str, Any] = {
            "inputTokens": e.tokens[0],
            "outputTokens": e.tokens[1],
            "cacheWriteTokens": e.tokens[2],
            "cacheReadTokens": e.tokens[3],
            "totalCents": num(e.total_cents),
        }
        if e.discount_percent is not None:
            usage["discountPercentOff"] = e.discount_percent
        out["tokenUsage"] = usage
    out["chargedCents"] = num(e.charged_cents)
    if e.token_fee_cents is not None:
        out["cursorTokenFee"] = num(e.token_fee_cents)
    if extra:
        out["teamId"] = team_id
        if e.member is not None:
            out["owningUser"] = str(e.member.number)
    return out
