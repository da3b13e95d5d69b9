"""Deterministic marts rows for the dashboard tests, written through the warehouse layer.

The marts are built by `refresh_marts` from the raw data; the dashboards only read them, so their tests
fill the marts directly, following the contracts (include/schemas/marts), with a small organisation over
2025-01-01..2025-03-20: three complete months and one in progress, a missing Cursor day, a missing Claude
Code day, provisional tails, an unowned API key (team Unattributed) and idle seats. `MartsData` keeps the
rows so tests can compute what a card must show independently of its SQL.
"""

from __future__ import annotations

import atexit
import random
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from ai_usage.settings import DuckDBConfig
from ai_usage.warehouse.base import Warehouse
from ai_usage.warehouse.duckdb_backend import DuckDBBackend

START, END = date(2025, 1, 1), date(2025, 3, 20)
MONTHS = (date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1))
CURSOR_MISSING = date(2025, 2, 10)
CLAUDE_MISSING = date(2025, 3, 3)
CURSOR_PROVISIONAL_FROM = date(2025, 3, 18)
CLAUDE_PROVISIONAL_FROM = date(2025, 3, 17)
REFRESHED = datetime(2025, 3, 21, 6, 0, tzinfo=UTC)
RUN = "scheduled__2025-03-21T06:00:00+00:00"
TEAMS = (("Platform", "CC-100"), ("Payments", "CC-200"), ("Mobile", "CC-300"), ("Data", "CC-400"))
FIRST = ("ada", "bo", "cy", "dee", "eli", "fay", "gus", "hal", "ivy", "jo", "kai", "lu", "max", "nia", "oz", "pia",
         "quin", "ria", "sol", "tom")
CURSOR_SEAT = Decimal("40.00")
CLAUDE_AI_SEAT = Decimal("30.00")
UNOWNED_KEY = "apikey_01UNOWNEDKEY"


@dataclass
class Person:
    email: str
    name: str
    team: str
    cost_center: str
    cursor: bool
    claude_code: bool
    claude_ai: bool


@dataclass
class MartsData:
    people: list[Person]
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.tables[table]


def _days() -> Iterable[date]:
    day = START
    while day <= END:
        yield day
        day += timedelta(days=1)


def _month(day: date) -> date:
    return day.replace(day=1)


def _lineage(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "_refreshed_at": REFRESHED, "_run_id": RUN}


def _people(rng: random.Random) -> list[Person]:
    out = []
    for i, first in enumerate(FIRST):
        team, cc = TEAMS[i % len(TEAMS)]
        out.append(Person(email=f"{first}@example.com", name=first.title() + " Example", team=team, cost_center=cc,
                          cursor=i % 5 != 4, claude_code=i % 3 != 2, claude_ai=i % 4 == 0))
    return out


def _status(day: date, missing: date, provisional_from: date) -> str:
    if day == missing:
        return "missing"
    return "provisional" if day >= provisional_from else "final"


def build(seed: int = 11) -> MartsData:
    """Every marts table's rows (deterministic for a seed)."""
    rng = random.Random(seed)
    people = _people(rng)
    data = MartsData(people=people)
    usage: list[dict[str, Any]] = []
    breakdown: list[dict[str, Any]] = []
    freshness: list[dict[str, Any]] = []
    for day in _days():
        for source, tool, missing, prov in (("cursor_daily_usage", "cursor", CURSOR_MISSING, CURSOR_PROVISIONAL_FROM),
                                            ("claude_code_usage", "claude_code", CLAUDE_MISSING,
                                             CLAUDE_PROVISIONAL_FROM)):
            status = _status(day, missing, prov)
            freshness.append(_lineage({"coverage_date": day, "source": source, "tool": tool, "status": status,
                                       "row_count": 0 if status == "missing" else 20,
                                       "checked_at": datetime(day.year, day.month, day.day, 23, tzinfo=UTC)}))
        if day.day == 1:
            freshness.append(_lineage({"coverage_date": day, "source": "claude_ai_usage", "tool": "claude_ai",
                                       "status": "final" if day < MONTHS[-1] else "provisional", "row_count": 5,
                                       "checked_at": REFRESHED}))
        for p in people:
            base = {"usage_date": day, "name": p.name, "team": p.team, "cost_center": p.cost_center,
                    "api_key_name": None, "email": p.email}
            if p.cursor and day != CURSOR_MISSING:
                active = rng.random() < 0.75
                kinds = {k: (rng.randint(0, 12) if active else 0) for k in ("composer", "chat", "agent", "cmdk")}
                shown = rng.randint(20, 90) if active else 0
                added = rng.randint(10, 300) if active else 0
                usage.append(_lineage({
                    **base, "tool": "cursor", "is_active": active, "requests": sum(kinds.values()),
                    "lines_added": added, "lines_accepted": added // 2, "accepts": rng.randint(0, 10) if active else 0,
                    "rejects": rng.randint(0, 5) if active else 0, "tabs_shown": shown,
                    "tabs_accepted": shown // 3, "sessions": None, "commits": None, "pull_requests": None,
                }))
                if active:
                    for kind, n in kinds.items():
                        breakdown.append(_lineage({**base, "tool": "cursor", "breakdown": "request_kind",
                                                   "item": kind, "requests": n}))
                    model = ("claude-4-sonnet", "gpt-5", "cursor-small")[rng.randint(0, 2)]
                    breakdown.append(_lineage({**base, "tool": "cursor", "breakdown": "model", "item": model,
                                               "requests": sum(kinds.values())}))
            if p.claude_code and day != CLAUDE_MISSING and rng.random() < 0.6:
                sessions = rng.randint(1, 6)
                cost = Decimal(rng.randint(50, 900)) / Decimal(100)
                accepted, rejected = rng.randint(1, 30), rng.randint(0, 8)
                usage.append(_lineage({
                    **base, "tool": "claude_code", "is_active": True, "sessions": sessions,
                    "lines_added": rng.randint(20, 400), "lines_accepted": None, "accepts": accepted,
                    "rejects": rejected, "commits": rng.randint(0, 4), "pull_requests": rng.randint(0, 2),
                    "input_tokens": rng.randint(10_000, 90_000), "output_tokens": rng.randint(1_000, 9_000),
                    "estimated_cost_usd": cost,
                }))
                edits = rng.randint(0, accepted)
                for item, acc, rej in (("Edit", edits, rejected // 2), ("Write", accepted - edits, rejected - rejected // 2)):
                    breakdown.append(_lineage({**base, "tool": "claude_code", "breakdown": "tool_action", "item": item,
                                               "accepted": acc, "rejected": rej}))
                model = ("claude-sonnet-4", "claude-opus-4", "claude-haiku-3-5")[rng.randint(0, 2)]
                breakdown.append(_lineage({**base, "tool": "claude_code", "breakdown": "model",
                                           "item": model, "input_tokens": 1000 * sessions,
                                           "output_tokens": 100 * sessions, "estimated_cost_usd": cost}))
            if p.claude_ai and day.day == 1:
                usage.append(_lineage({**base, "tool": "claude_ai", "is_active": True,
                                       "requests": rng.randint(50, 400), "input_tokens": rng.randint(100_000, 900_000),
                                       "output_tokens": rng.randint(10_000, 90_000)}))
        if day != CLAUDE_MISSING and rng.random() < 0.5:
            usage.append(_lineage({"usage_date": day, "tool": "claude_code", "email": None, "api_key_name": "ci-bot",
                                   "name": None, "team": "Unattributed", "cost_center": None, "is_active": True,
                                   "sessions": 2, "lines_added": 50, "accepts": 3, "rejects": 1, "commits": 1,
                                   "pull_requests": 0, "estimated_cost_usd": Decimal("1.25")}))
    data.tables["marts.daily_tool_usage"] = usage
    data.tables["marts.daily_usage_breakdown"] = breakdown
    data.tables["marts.data_freshness"] = freshness
    _costs(data, rng)
    return data


def _costs(data: MartsData, rng: random.Random) -> None:
    allocation: list[dict[str, Any]] = []
    seats: list[dict[str, Any]] = []
    recon: list[dict[str, Any]] = []
    usage = data.rows("marts.daily_tool_usage")
    for month in MONTHS:
        def active(tool: str, m: date = month) -> set[str]:
            return {r["email"] for r in usage if r["tool"] == tool and r["is_active"] and r["email"]
                    and _month(r["usage_date"]) == m}
        for tool, seat_price, flag in (("cursor", CURSOR_SEAT, "cursor"), ("claude_ai", CLAUDE_AI_SEAT, "claude_ai")):
            holders = [p for p in data.people if getattr(p, flag)] + ([] if tool == "cursor" else data.people[:2])
            for p in holders:
                allocation.append(_lineage({"month": month, "tool": tool, "cost_kind": "seat_fee", "team": p.team,
                                            "cost_center": p.cost_center, "email": p.email, "api_key_id": None,
                                            "allocation_basis": "seat", "amount_usd": seat_price}))
            n_active = len(active(tool) & {p.email for p in holders})
            idle = max(len(holders) - n_active, 0)
            seats.append(_lineage({"month": month, "tool": tool, "seats_paid": len(holders), "seats_active": n_active,
                                   "seats_idle": idle, "seat_price_usd": seat_price,
                                   "seat_cost_usd": seat_price * len(holders), "idle_cost_usd": seat_price * idle}))
        for p in data.people:
            if p.cursor:
                allocation.append(_lineage({
                    "month": month, "tool": "cursor", "cost_kind": "usage_billed", "team": p.team,
                    "cost_center": p.cost_center, "email": p.email, "api_key_id": None,
                    "allocation_basis": "vendor_per_user", "amount_usd": Decimal(rng.randint(0, 4000)) / 100}))
            if p.claude_code:
                allocation.append(_lineage({
                    "month": month, "tool": "claude_code", "cost_kind": "usage_billed", "team": p.team,
                    "cost_center": p.cost_center, "email": p.email, "api_key_id": None,
                    "allocation_basis": "estimate_share",
                    "amount_usd": Decimal(rng.randint(1000, 9000)) / 100 + Decimal("0.004")}))
        allocation.append(_lineage({"month": month, "tool": "claude_code", "cost_kind": "usage_billed",
                                    "team": "Unattributed", "cost_center": None, "email": None,
                                    "api_key_id": UNOWNED_KEY, "api_key_name": "ci-bot",
                                    "allocation_basis": "unattributed",
                                    "amount_usd": Decimal(rng.randint(2000, 6000)) / 100}))
        for tool in ("cursor", "claude_code", "claude_ai"):
            total = sum((r["amount_usd"] for r in allocation if r["month"] == month and r["tool"] == tool), Decimal(0))
            failed = month == MONTHS[1] and tool == "claude_code"
            recon.append(_lineage({
                "month": month, "tool": tool, "check_name": "allocated_equals_billed",
                "description": "Allocated cost equals the vendor's billed total", "level": "error",
                "status": "failed" if failed else "passed", "billed_usd": total + (Decimal("1.50") if failed else 0),
                "allocated_usd": total, "difference_usd": Decimal("-1.50") if failed else Decimal(0),
                "observed": str(total), "expected": "= billed", "checked_at": REFRESHED,
            }))
    data.tables["marts.monthly_cost_allocation"] = allocation
    data.tables["marts.seat_utilization"] = seats
    data.tables["marts.reconciliation_status"] = recon
    data.tables["marts.exec_monthly"] = _exec(data, allocation, seats)


def _exec(data: MartsData, allocation: list[dict[str, Any]], seats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    usage = data.rows("marts.daily_tool_usage")
    out = []
    previous: Decimal | None = None
    for month in MONTHS:
        def cost(tool: str | None, m: date = month) -> Decimal:
            return sum((r["amount_usd"] for r in allocation if r["month"] == m and tool in (None, r["tool"])),
                       Decimal(0))
        total = cost(None)
        active = {r["email"] for r in usage if r["is_active"] and r["email"] and _month(r["usage_date"]) == month}
        partial = month == MONTHS[-1]
        days_in_month = 31
        projected = (total * days_in_month / END.day).quantize(Decimal("0.000000001")) if partial else total
        out.append(_lineage({
            "month": month, "total_cost_usd": total, "cursor_cost_usd": cost("cursor"),
            "claude_code_cost_usd": cost("claude_code"), "claude_ai_cost_usd": cost("claude_ai"),
            "active_users": len(active), "seats": sum(s["seats_paid"] for s in seats if s["month"] == month),
            "adoption_rate": len(active) / len(data.people),
            "cost_per_active_user_usd": (total / len(active)).quantize(Decimal("0.000000001")) if active else None,
            "cost_change_pct": float((total - previous) / previous * 100) if previous else None,
            "projected_month_end_cost_usd": projected, "is_partial_month": partial,
            "data_through_date": END if partial else None,
        }))
        previous = total
    return out


PARTITION = {
    "marts.daily_tool_usage": "usage_date", "marts.daily_usage_breakdown": "usage_date",
    "marts.data_freshness": "coverage_date", "marts.monthly_cost_allocation": "month",
    "marts.seat_utilization": "month", "marts.reconciliation_status": "month", "marts.exec_monthly": "month",
}


def populate(warehouse: Warehouse, data: MartsData | None = None) -> MartsData:
    """Create every table and write the marts rows (partition replace, as refresh_marts would)."""
    data = data or build()
    warehouse.ensure_tables()
    for table, rows in data.tables.items():
        field_name = PARTITION[table]
        warehouse.replace_partitions(table, rows, sorted({r[field_name] for r in rows}))
    return data


@lru_cache(maxsize=1)
def data() -> MartsData:
    """The default rows (built once per process)."""
    return build()


@lru_cache(maxsize=1)
def _template_file() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="ai-usage-dashboards-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "warehouse.duckdb"
    with DuckDBBackend(DuckDBConfig(path)) as wh:
        populate(wh, data())
    return path


def populated_warehouse(dest: Path) -> Path:
    """A DuckDB warehouse file at `dest` with every table and the default marts rows (copied, fast)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_template_file(), dest)
    return dest
