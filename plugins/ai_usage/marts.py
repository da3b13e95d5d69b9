"""Refresh of the marts: which months and days a refresh_marts run rebuilds, and the rebuild itself.

What a run rebuilds (`RefreshPlan`) comes from the asset events that triggered it: each ingest task
attaches the table and the days it replaced (`pipeline.touched_extra`). Days of the activity tables
rebuild those days of marts.daily_tool_usage and their whole months of the month marts; billing tables
(cost report, claude.ai exports) rebuild their months; listings (members, spend, keys) are validated but
rebuild nothing. A reference table (the Sheet) changes attribution anywhere, so it rebuilds the last
`ref_months()` months; older months are rebuilt on demand with the conf ``{"start", "end"}``, which
rebuilds every mart of any range.

The rebuild of a month reads only that month's raw partitions (plus the small reference tables and key
listings), so its cost does not grow with history. Each mart's month (or day) partitions are replaced
atomically with `Warehouse.replace_partitions`; re-running changes nothing but the lineage columns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ai_usage.exceptions import ConfigurationError
from ai_usage.quality.batches import month_end, month_start, split_by_month

log = logging.getLogger(__name__)

DateRange = tuple[date, date]

ACTIVITY_TABLES = ("raw.cursor_daily_usage", "raw.cursor_usage_events", "raw.claude_code_usage")
BILLING_TABLES = ("raw.anthropic_costs", "raw.claude_ai_usage")
FACT_TABLES = ACTIVITY_TABLES + BILLING_TABLES
# ref.attribution is the Sheet's mapping resolved per day (built by ingest_sheets from people and owners):
# the marts attribute through it only.
REF_TABLES = ("ref.people", "ref.api_key_owners", "ref.seat_prices", "ref.attribution")
# Sources (ops.source_coverage.source) whose days the marts read: they bound exec_monthly.data_through_date.
MART_SOURCES = ("cursor_daily_usage", "cursor_usage_events", "claude_code_usage", "anthropic_costs")

DAILY = "marts.daily_tool_usage"
BREAKDOWN = "marts.daily_usage_breakdown"
ALLOCATION = "marts.monthly_cost_allocation"
SEATS = "marts.seat_utilization"
EXEC = "marts.exec_monthly"
FRESHNESS = "marts.data_freshness"
RECONCILIATION = "marts.reconciliation_status"
MART_TABLES = (DAILY, BREAKDOWN, ALLOCATION, SEATS, EXEC, FRESHNESS, RECONCILIATION)
SQL = {
    DAILY: "marts/select_daily_tool_usage.sql",
    BREAKDOWN: "marts/select_daily_usage_breakdown.sql",
    ALLOCATION: "marts/select_monthly_cost_allocation.sql",
    SEATS: "marts/select_seat_utilization.sql",
    EXEC: "marts/select_exec_monthly.sql",
    FRESHNESS: "marts/select_data_freshness.sql",
}
COVERAGE_LOOKBACK_DAYS = 35    # completeness (and data_freshness) always cover at least the last five weeks
SQL_EXEC_MONTHS = "marts/select_exec_monthly_months.sql"
DEFAULT_WINDOW_DAYS = 7        # an event that does not say which days it touched: the last week


def ref_months() -> int:
    """Months a Sheet (reference table) change rebuilds: ``AI_USAGE_REF_REFRESH_MONTHS`` (ai_usage.settings)."""
    from ai_usage import settings

    return settings.ref_refresh_months()


# --------------------------------------------------------------------------- the plan


def merge_ranges(ranges: Iterable[DateRange]) -> list[DateRange]:
    """Sorted, non-overlapping, non-adjacent inclusive day ranges covering `ranges`."""
    out: list[list[date]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + timedelta(days=1):
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(a, b) for a, b in out]


@dataclass(frozen=True)
class RefreshPlan:
    """What one run validates (`tables`) and rebuilds (`months`, and `days` of the daily mart)."""

    months: tuple[date, ...]
    days: tuple[DateRange, ...]
    tables: Mapping[str, tuple[DateRange, ...] | None]   # None: the whole table
    reason: str

    def days_of(self, month: date) -> list[DateRange]:
        """The daily mart's day ranges inside `month`."""
        lo, hi = month, month_end(month)
        return [(max(a, lo), min(b, hi)) for a, b in self.days if a <= hi and b >= lo]

    def to_dict(self) -> dict[str, Any]:
        return {
            "months": [m.isoformat() for m in self.months],
            "days": [[a.isoformat(), b.isoformat()] for a, b in self.days],
            "tables": {t: None if r is None else [[a.isoformat(), b.isoformat()] for a, b in r]
                       for t, r in self.tables.items()},
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RefreshPlan:
        def rng(pair: Sequence[str]) -> DateRange:
            return date.fromisoformat(pair[0]), date.fromisoformat(pair[1])

        return cls(
            months=tuple(date.fromisoformat(m) for m in d["months"]),
            days=tuple(rng(p) for p in d["days"]),
            tables={t: None if r is None else tuple(rng(p) for p in r) for t, r in d["tables"].items()},
            reason=str(d.get("reason", "")),
        )


def _months_of(ranges: Iterable[DateRange]) -> set[date]:
    return set(split_by_month(list(ranges)))


def _recent_months(today: date, n: int) -> list[DateRange]:
    first = month_start(today - timedelta(days=1))
    months = [first]
    for _ in range(n - 1):
        months.append(month_start(months[-1] - timedelta(days=1)))
    return [(m, min(month_end(m), today - timedelta(days=1))) for m in months]


def _relevant(events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Drop events that say nothing the plan needs.

    An event without detail (an outlet of a task that does not attach `pipeline.touched_extra`, e.g. a
    task that found nothing to load) is dropped when the same DAG run reported the same table with
    detail; a detailed event with no days and no rows loaded touched nothing.
    """
    detailed = {(e.get("table"), e.get("source")) for e in events if e.get("detailed")}
    out = []
    for e in events:
        if not e.get("detailed") and (e.get("table"), e.get("source")) in detailed:
            continue
        if e.get("detailed") and not e.get("start") and e.get("rows") == 0 and e.get("table") not in REF_TABLES:
            continue
        out.append(e)
    return out


def plan_from_events(events: Iterable[Mapping[str, Any]], *, today: date) -> RefreshPlan:
    """The plan for asset events: ``{"table", "start", "end"}`` (ISO days, None = whole table or not said),
    optionally ``"detailed"`` (the producer attached the extra), ``"rows"`` and ``"source"`` (its DAG run).

    An event that does not say which days it touched counts as the last week.
    """
    touched: dict[str, list[DateRange] | None] = {}
    default = (today - timedelta(days=DEFAULT_WINDOW_DAYS), today - timedelta(days=1))
    for event in _relevant(list(events)):
        table = str(event.get("table") or "")
        if not table:
            continue
        if event.get("start") and event.get("end"):
            window = (date.fromisoformat(str(event["start"])), date.fromisoformat(str(event["end"])))
        elif table in REF_TABLES or table == "raw.claude_ai_usage":
            touched[table] = None
            continue
        else:
            window = default
        if touched.get(table, []) is not None:
            touched.setdefault(table, []).append(window)  # type: ignore[union-attr]
    day_ranges = [r for t in ACTIVITY_TABLES for r in (touched.get(t) or [])]
    month_ranges = [r for t in FACT_TABLES for r in (touched.get(t) or [])]
    if any(touched.get(t, []) is None for t in (*REF_TABLES, "raw.claude_ai_usage")):
        recent = _recent_months(today, ref_months())
        month_ranges += recent
        if any(touched.get(t, []) is None for t in REF_TABLES):
            day_ranges += recent       # attribution of every day of those months may have changed
    for table in REF_TABLES:           # attribution reads them: validate them whenever marts are rebuilt
        touched.setdefault(table, None)
    return RefreshPlan(
        months=tuple(sorted(_months_of(month_ranges))),
        days=tuple(merge_ranges(day_ranges)),
        tables={t: None if r is None else tuple(merge_ranges(r)) for t, r in sorted(touched.items())},
        reason="asset events",
    )


def plan_from_conf(conf: Mapping[str, Any], *, today: date) -> RefreshPlan:
    """The plan for a manual rebuild ``{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}`` (inclusive)."""
    try:
        start, end = date.fromisoformat(str(conf["start"])), date.fromisoformat(str(conf["end"]))
    except (KeyError, ValueError):
        raise ConfigurationError(
            f'run conf {dict(conf)!r}: expected {{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}}') from None
    if start > end:
        raise ConfigurationError(f"rebuild start {start} is after end {end}")
    if start >= today:
        raise ConfigurationError(f"rebuild start {start} is not a complete UTC day yet")
    end = min(end, today - timedelta(days=1))
    tables: dict[str, tuple[DateRange, ...] | None] = {t: ((start, end),) for t in FACT_TABLES}
    tables.update({t: None for t in REF_TABLES})
    return RefreshPlan(months=tuple(sorted(_months_of([(start, end)]))), days=((start, end),), tables=tables,
                       reason=f"conf rebuild {start} → {end}")


def plan_for_run(conf: Mapping[str, Any] | None, events: Sequence[Mapping[str, Any]], *,
                 today: date | None = None) -> RefreshPlan:
    """A conf range wins; else the triggering asset events; else (manual run) the last week."""
    today = today or datetime.now(UTC).date()
    if conf and ("start" in conf or "end" in conf):
        return plan_from_conf(conf, today=today)
    if events:
        return plan_from_events(events, today=today)
    plan = plan_from_conf({"start": (today - timedelta(days=DEFAULT_WINDOW_DAYS)).isoformat(),
                           "end": (today - timedelta(days=1)).isoformat()}, today=today)
    return RefreshPlan(plan.months, plan.days, plan.tables, "manual run without conf: the last week")


# --------------------------------------------------------------------------- the rebuild


def _with_lineage(rows: Iterable[Mapping[str, Any]], lineage: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{**r, **lineage} for r in rows]


def _days(lo: date, hi: date) -> list[date]:
    return [lo + timedelta(days=i) for i in range((hi - lo).days + 1)]


def coverage_range(plan: RefreshPlan, today: date) -> DateRange:
    """The days completeness checks and marts.data_freshness copies: the plan's months and the last weeks."""
    end = today - timedelta(days=1)
    return min([end - timedelta(days=COVERAGE_LOOKBACK_DAYS), *plan.months]), end


def _replace_days(warehouse: Any, table: str, ranges: Sequence[DateRange], lineage: Mapping[str, Any]) -> int:
    written = 0
    for lo, hi in ranges:
        rows = warehouse.run_sql_file(SQL[table], {"start_date": lo, "end_date": hi})
        written += warehouse.replace_partitions(table, _with_lineage(rows, lineage), _days(lo, hi))
    return written


def refresh_month(warehouse: Any, month: date, days: Sequence[DateRange], *, lineage: Mapping[str, Any],
                  as_of: date) -> dict[str, int]:
    """Rebuild one month: its `days` of the daily marts, then allocation, seats and the exec row.

    The breakdown also rebuilds the month's first day: claude.ai export rows are dated by their period's
    first day, and a month's export may change without any activity day of the month being touched.
    """
    written: dict[str, int] = {DAILY: _replace_days(warehouse, DAILY, days, lineage)}
    written[BREAKDOWN] = _replace_days(warehouse, BREAKDOWN, merge_ranges([*days, (month, month)]), lineage)
    params = {"month_start": month, "month_end": month_end(month)}
    for table in (ALLOCATION, SEATS):
        rows = warehouse.run_sql_file(SQL[table], params)
        written[table] = warehouse.replace_partitions(table, _with_lineage(rows, lineage), [month])
    written[EXEC] = refresh_exec(warehouse, month, lineage=lineage, as_of=as_of)
    return written


def refresh_exec(warehouse: Any, month: date, *, lineage: Mapping[str, Any], as_of: date) -> int:
    rows = warehouse.run_sql_file(SQL[EXEC], {"month_start": month, "month_end": month_end(month),
                                              "as_of_date": as_of, "sources": list(MART_SOURCES)})
    return warehouse.replace_partitions(EXEC, _with_lineage(rows, lineage), [month])


def refresh(
    warehouse: Any, plan: RefreshPlan, *, run_id: str, now: datetime, blocked: Iterable[date] = (),
) -> dict[str, Any]:
    """Rebuild the plan's months (oldest first) except `blocked` ones; return what was done."""
    blocked = set(blocked)
    warehouse.ensure_tables([*MART_TABLES, *FACT_TABLES, *REF_TABLES, "raw.anthropic_api_keys", "ops.source_coverage",
                             "ops.dq_results"])
    lineage = {"_refreshed_at": now, "_run_id": run_id}
    done: list[date] = []
    rows: dict[str, int] = {}
    for month in plan.months:
        if month in blocked:
            log.warning("%s: not refreshed, an error-level data-quality check failed for it", month.isoformat()[:7])
            continue
        written = refresh_month(warehouse, month, plan.days_of(month), lineage=lineage, as_of=now.date())
        for table, n in written.items():
            rows[table] = rows.get(table, 0) + n
        done.append(month)
        log.info("%s refreshed: %s", month.isoformat()[:7], written)
    # The next month's change-on-previous-month reads this month's total: recompute its exec row.
    followers = sorted({month_start(month_end(m) + timedelta(days=1)) for m in done} - set(done) - blocked)
    existing = warehouse.run_sql_file(SQL_EXEC_MONTHS, {"months": followers}) if followers else []
    for month in [r["month"] for r in existing]:
        refresh_exec(warehouse, month, lineage=lineage, as_of=now.date())
        log.info("%s: exec row recomputed (its previous month changed)", month.isoformat()[:7])
    # Dashboards see coverage through the marts only (their connection cannot read ops).
    rows[FRESHNESS] = _replace_days(warehouse, FRESHNESS, [coverage_range(plan, now.date())], lineage)
    return {
        "refreshed_months": [m.isoformat() for m in done],
        "blocked_months": sorted(m.isoformat() for m in blocked & set(plan.months)),
        "rows": rows,
    }
