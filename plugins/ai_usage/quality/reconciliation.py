"""Reconciliation checks of refresh_marts, recorded in ops.dq_results (suite 'reconciliation'), per month:

- ``allocated_equals_billed`` (error): per tool, the usage_billed rows of marts.monthly_cost_allocation add
  up exactly to the vendor-billed total computed straight from raw by a separate SQL file;
- ``seat_fees_equal_price_card`` (error): per tool, the seat_fee rows add up to seats x price;
- ``claude_code_estimates_within_tolerance`` (warning): the Claude Code report's estimates of API-billed
  usage against the billed Claude Code platform cost, within `config.estimate_tolerance()`;
- ``cursor_spend_matches_usage`` (warning): the month's latest Cursor spend snapshot against the summed
  Usage-based charges of its billing cycle (between the charges before the snapshot day and those through
  it, with `config.cursor_spend_tolerance()` of slack for snapshot-day charges not yet ingested);
- ``claude_ai_spend_within_seat_band`` (warning): claude.ai spend above the allotment between 0 and
  `config.claude_ai_spend_band()` x the month's claude.ai seat fees (a sanity band: the vendor bills no total).

Money is compared as Decimal, exactly; "equals to the cent" is met by equality to the nano-dollar.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ai_usage.quality import config
from ai_usage.quality.batches import month_end
from ai_usage.quality.results import FAILED, PASSED, DqResult

log = logging.getLogger(__name__)

SUITE = "reconciliation"
ALLOCATION = "marts.monthly_cost_allocation"
ZERO = Decimal(0)
CENT = Decimal("0.01")


def _status(ok: bool) -> str:
    return PASSED if ok else FAILED


def _name(check: str, tool: str, month: date) -> str:
    return f"{check}:{tool}:{month.isoformat()[:7]}"


def check_month(warehouse: Any, month: date) -> list[DqResult]:
    params = {"month_start": month, "month_end": month_end(month)}
    out: list[DqResult] = []
    for r in warehouse.run_sql_file("ops/select_billed_vs_allocated.sql", params):
        out.extend(_totals(r, month))
    out.extend(_cursor_spend(warehouse.run_sql_file("ops/select_cursor_spend_vs_usage.sql", params), month))
    return out


def _totals(r: dict[str, Any], month: date) -> list[DqResult]:
    tool = r["tool"]
    billed, allocated = r["billed_usd"] or ZERO, r["allocated_usd"] or ZERO
    out = [DqResult(
        SUITE, ALLOCATION, _name("allocated_equals_billed", tool, month), "error", _status(allocated == billed),
        month=month, observed=f"allocated {allocated:.9f} USD", expected=f"= billed {billed:.9f} USD (from raw)",
        details={"tool": tool, "billed_usd": billed, "allocated_usd": allocated, "difference_usd": allocated - billed},
    )]
    seat_cost, seat_fee = r["seat_cost_usd"], r["seat_fee_usd"] or ZERO
    if seat_cost is not None or seat_fee:
        seat_cost = seat_cost or ZERO
        out.append(DqResult(
            SUITE, ALLOCATION, _name("seat_fees_equal_price_card", tool, month), "error",
            _status(seat_fee == seat_cost), month=month, observed=f"seat fees allocated {seat_fee:.9f} USD",
            expected=f"= seats x price {seat_cost:.9f} USD (marts.seat_utilization)",
            details={"tool": tool, "billed_usd": seat_cost, "allocated_usd": seat_fee,
                     "difference_usd": seat_fee - seat_cost},
        ))
    if tool == "claude_code" and r["estimated_usd"] is not None and billed:
        tolerance = config.estimate_tolerance()
        gap = abs(r["estimated_usd"] - billed) / abs(billed)
        out.append(DqResult(
            SUITE, "raw.claude_code_usage", _name("claude_code_estimates_within_tolerance", tool, month), "warning",
            _status(gap <= tolerance), month=month,
            observed=f"estimates {r['estimated_usd']:.2f} USD vs billed {billed:.2f} USD ({gap:.2%} apart)",
            expected=f"within {tolerance:.2%}",
            details={"tool": tool, "billed_usd": billed, "allocated_usd": r["estimated_usd"],
                     "difference_usd": r["estimated_usd"] - billed, "tolerance": tolerance},
        ))
    if tool == "claude_ai" and r["seat_cost_usd"]:
        band = config.claude_ai_spend_band()
        ceiling = r["seat_cost_usd"] * band
        out.append(DqResult(
            SUITE, "raw.claude_ai_usage", _name("claude_ai_spend_within_seat_band", tool, month), "warning",
            _status(ZERO <= billed <= ceiling), month=month,
            observed=f"spend above allotment {billed:.2f} USD, seat fees {r['seat_cost_usd']:.2f} USD",
            expected=f"0 <= spend <= {band} x seat fees ({ceiling:.2f} USD)",
            details={"tool": tool, "billed_usd": r["seat_cost_usd"], "allocated_usd": billed, "band": band},
        ))
    return out


def _cursor_spend(rows: list[dict[str, Any]], month: date) -> list[DqResult]:
    if not rows:
        return []
    spend = sum((r["spend_usd"] for r in rows), ZERO)
    before = sum((r["before_snapshot_day_usd"] for r in rows), ZERO)
    through = sum((r["through_snapshot_day_usd"] for r in rows), ZERO)
    slack = config.cursor_spend_tolerance()
    upper = max(through, before * (1 + slack)) + CENT
    ok = before - CENT <= spend <= upper
    off = [r for r in rows if not (r["before_snapshot_day_usd"] - CENT <= r["spend_usd"]
                                   <= max(r["through_snapshot_day_usd"], r["before_snapshot_day_usd"] * (1 + slack)) + CENT)]
    snapshot, cycle = rows[0]["snapshot_date"], rows[0]["cycle_start"]
    return [DqResult(
        SUITE, "raw.cursor_spend", _name("cursor_spend_matches_usage", "cursor", month), "warning", _status(ok),
        month=month, observed=f"snapshot of {snapshot}: spend {spend:.2f} USD; Usage-based charges since {cycle}: "
                              f"{before:.2f} USD before the snapshot day, {through:.2f} USD through it",
        expected=f"{before:.2f} <= spend <= {upper:.2f} USD",
        details={"tool": "cursor", "snapshot_date": snapshot, "cycle_start": cycle, "billed_usd": spend,
                 "allocated_usd": through, "members_off": len(off)},
        sample_rows=sorted(off, key=lambda r: -abs(r["spend_usd"] - r["before_snapshot_day_usd"]))[:5],
    )]


DESCRIPTIONS = {
    "allocated_equals_billed": "The usage allocated to teams adds up exactly to what the vendor billed for the month.",
    "seat_fees_equal_price_card": "The seat fees allocated add up to seats x price on the price card.",
    "claude_code_estimates_within_tolerance":
        "Claude Code's own cost estimates are close to the billed Claude Code cost (they only split the bill).",
    "cursor_spend_matches_usage": "Cursor's spend snapshot of the billing cycle matches the summed usage charges.",
    "claude_ai_spend_within_seat_band": "claude.ai spend above the seat allotment is plausible next to the seat fees.",
}
STATUS_TABLE = "marts.reconciliation_status"


def status_rows(results: Iterable[DqResult], *, run_id: str, checked_at: datetime) -> list[dict[str, Any]]:
    """Rows of marts.reconciliation_status (the dashboards' view of the checks, without sample rows)."""
    rows = []
    for r in results:
        check = r.check_name.split(":")[0]
        billed, allocated = r.details.get("billed_usd"), r.details.get("allocated_usd")
        rows.append({
            "month": r.month, "tool": r.details["tool"], "check_name": check, "description": DESCRIPTIONS.get(check),
            "level": r.level, "status": r.status, "billed_usd": billed, "allocated_usd": allocated,
            "difference_usd": allocated - billed if billed is not None and allocated is not None else None,
            "observed": r.observed, "expected": r.expected, "checked_at": checked_at,
            "_refreshed_at": checked_at, "_run_id": run_id,
        })
    return rows


def write_status(warehouse: Any, results: Iterable[DqResult], months: Iterable[date], *, run_id: str,
                 checked_at: datetime) -> int:
    """Replace the months' rows of marts.reconciliation_status with these results."""
    months = sorted(set(months))
    if not months:
        return 0
    rows = [row for row in status_rows(results, run_id=run_id, checked_at=checked_at) if row["month"] in months]
    return warehouse.replace_partitions(STATUS_TABLE, rows, months)


def reconcile(warehouse: Any, months: Iterable[date]) -> list[DqResult]:
    """Every check for every month (months whose marts were not refreshed should not be passed)."""
    results: list[DqResult] = []
    for month in sorted(set(months)):
        results.extend(check_month(warehouse, month))
    log.info("reconciliation: %d checks, %d failed", len(results), sum(r.failed for r in results))
    return results
