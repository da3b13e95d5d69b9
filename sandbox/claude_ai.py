"""The organisation's claude.ai Spend Report exports, as pasted into the Sheet's `claude_ai_usage` tab, and
their ground truth (the rows raw.claude_ai_usage must hold after the sheets DAG loads the tab).

vendor-apis.md §3.1: one export per period (Settings → Analytics → Spend → Export Spend Report), one row per
person × product × model with activity in the period, summed over it; money in USD **dollars**; one row
without an e-mail for organisation-level service usage (no model either). The organisation's claude.ai
plan is seat-based, so the report holds only spend **above** each seat's monthly allotment: most rows show
requests and tokens with $0.00, heavy users show the excess. Net spend is after a negotiated discount.

Periods: every complete calendar month inside the organisation's history ("LastMonth" for the latest,
"Custom" for older ones, as people re-export them), plus the current month to date ("MTD") when the
history does not end on a month end. Periods never overlap. Claude Code used through a claude.ai seat
(the subscription users the Claude Code API leaves out, G-A3) appears here as product "Claude Code".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from sandbox.rng import digest, stable_rng

if TYPE_CHECKING:
    from sandbox.org import Organisation

CENT = Decimal("0.01")
DISCOUNT = Decimal("0.10")                     # negotiated rate: net = gross less 10 %
ALLOTMENT_USD = {"team": Decimal("2.00"), "premium": Decimal("10.00")}   # included usage per seat and month
# (model, family, USD per million input tokens, per million output tokens)
MODELS: tuple[tuple[str, str, Decimal, Decimal], ...] = (
    ("claude-sonnet-4-5", "Sonnet", Decimal("3"), Decimal("15")),
    ("claude-opus-4-1", "Opus", Decimal("15"), Decimal("75")),
    ("claude-haiku-4-5", "Haiku", Decimal("1"), Decimal("5")),
)
CHAT_PRODUCTS = (("Chat", 0.8), ("Cowork", 0.15), ("Office Agents", 0.05))
COLUMNS = [
    "period_start", "period_end", "period_label", "exported_at", "user_email", "account_uuid", "product",
    "model", "model_family", "total_requests", "total_prompt_tokens", "total_completion_tokens",
    "total_net_spend_usd", "total_gross_spend_usd",
]


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    label: str
    exported_at: datetime


def _month_end(day: date) -> date:
    first_next = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first_next - timedelta(days=1)


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def periods(org: Organisation) -> list[Period]:
    """The exported periods, oldest first (see the module docstring)."""
    months: list[tuple[date, date]] = []
    month = org.start.replace(day=1)
    while month <= org.end:
        months.append((month, _month_end(month)))
        month = months[-1][1] + timedelta(days=1)
    complete = [(a, b) for a, b in months if a >= org.start and b <= org.end]
    out = [Period(a, b, "LastMonth" if (a, b) == complete[-1] else "Custom", _at(b + timedelta(days=1), 7))
           for a, b in complete]
    first, last = months[-1]
    if first >= org.start and last > org.end:
        out.append(Period(first, org.end, "MTD", _at(org.end + timedelta(days=1), 6, 30)))
    return out


def account_uuid(org: Organisation, email: str) -> str:
    return str(uuid.UUID(bytes=digest(org.seed, "claude-ai-account", email, size=16), version=4))


def _usage(org: Organisation, email: str, period: Period) -> dict[tuple[str, str], list[Any]]:
    """(product, model) → [requests, prompt tokens, completion tokens, list-price USD] over the period."""
    totals: dict[tuple[str, str], list[Any]] = {}
    day = period.start
    while day <= period.end:
        for act in org.activity_of(email, day):
            if act.tool == "claude_ai":
                rng = act.rng()
                product = rng.choices([p for p, _ in CHAT_PRODUCTS], [w for _, w in CHAT_PRODUCTS])[0]
                scale = 1
            elif act.tool == "claude_code" and act.via == "subscription":
                rng, product, scale = act.rng(), "Claude Code", 6
            else:
                day += timedelta(days=1)
                continue
            model, _, price_in, price_out = rng.choices(MODELS, (0.7, 0.1, 0.2))[0]
            requests = max(1, round(act.intensity * rng.uniform(6, 20)))
            prompt = requests * rng.randint(1500, 6000) * scale
            completion = requests * rng.randint(200, 1200) * scale
            cost = (prompt * price_in + completion * price_out) / Decimal(1_000_000)
            entry = totals.setdefault((product, model), [0, 0, 0, Decimal(0)])
            entry[0] += requests
            entry[1] += prompt
            entry[2] += completion
            entry[3] += cost
        day += timedelta(days=1)
    return totals


def _plan(org: Organisation, email: str, period: Period) -> str | None:
    """The person's claude.ai seat plan in the period (the latest seat that overlaps it)."""
    plans = [s.plan for s in org.seats if s.tool == "claude_ai" and s.email == email
             and s.valid_from <= period.end and (s.valid_to is None or s.valid_to >= period.start)]
    return plans[-1] if plans else None


def _person_rows(org: Organisation, email: str, period: Period) -> Iterator[dict[str, Any]]:
    totals = _usage(org, email, period)
    remaining = ALLOTMENT_USD.get(_plan(org, email, period) or "", Decimal(0))
    family = {m: f for m, f, _, _ in MODELS}
    for (product, model), (requests, prompt, completion, cost) in sorted(totals.items()):
        covered = min(cost, remaining)
        remaining -= covered
        gross = (cost - covered).quantize(CENT, rounding=ROUND_HALF_EVEN)
        net = (gross * (1 - DISCOUNT)).quantize(CENT, rounding=ROUND_HALF_EVEN)
        yield {"email": email, "account_uuid": account_uuid(org, email), "product": product, "model": model,
               "model_family": family[model], "total_requests": requests, "total_prompt_tokens": prompt,
               "total_completion_tokens": completion, "net_spend_usd": net, "gross_spend_usd": gross}


def _org_row(org: Organisation, period: Period) -> dict[str, Any]:
    rng = stable_rng(org.seed, "claude-ai-org-usage", period.start)
    gross = Decimal(rng.randint(150, 900)) * CENT
    return {"email": None, "account_uuid": None, "product": "Chat", "model": None, "model_family": None,
            "total_requests": rng.randint(20, 200), "total_prompt_tokens": rng.randint(10_000, 90_000),
            "total_completion_tokens": rng.randint(2_000, 20_000),
            "net_spend_usd": (gross * (1 - DISCOUNT)).quantize(CENT), "gross_spend_usd": gross}


def expected_claude_ai_usage(org: Organisation) -> list[dict[str, Any]]:
    """raw.claude_ai_usage rows (without lineage) of the tab, in tab order; `source_row` = sheet row."""
    rows: list[dict[str, Any]] = []
    for period in periods(org):
        found = [_org_row(org, period)]
        for person in org.people:
            found.extend(_person_rows(org, person.email, period))
        for row in found:
            rows.append({
                "period_start": period.start, "period_end": period.end, "period_label": period.label,
                **row,
                "net_spend_raw": str(row["net_spend_usd"]), "gross_spend_raw": str(row["gross_spend_usd"]),
                "exported_at": period.exported_at, "source_row": len(rows) + 2,
            })
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def tab_rows(org: Organisation) -> list[dict[str, str]]:
    """The `claude_ai_usage` tab as cell text (the export's own header, `user_email`)."""
    return [
        {"period_start": _cell(r["period_start"]), "period_end": _cell(r["period_end"]),
         "period_label": _cell(r["period_label"]), "exported_at": _cell(r["exported_at"]),
         "user_email": _cell(r["email"]), "account_uuid": _cell(r["account_uuid"]), "product": _cell(r["product"]),
         "model": _cell(r["model"]), "model_family": _cell(r["model_family"]),
         "total_requests": _cell(r["total_requests"]), "total_prompt_tokens": _cell(r["total_prompt_tokens"]),
         "total_completion_tokens": _cell(r["total_completion_tokens"]),
         "total_net_spend_usd": r["net_spend_raw"], "total_gross_spend_usd": r["gross_spend_raw"]}
        for r in expected_claude_ai_usage(org)
    ]
