"""Completeness: every source × UTC day has a row in ops.source_coverage, and a gap past the vendor's
lateness window alerts.

The ingest pipeline records `final` / `provisional` for every day it fetched. This check adds `missing`
rows for the days nobody fetched (from each source's first covered day on, so history before the
deployment is not a gap), so dashboards show them as missing instead of zero. A day still missing after
its source's lateness window (the ingest lookback, `settings.lookback_days`) fails the check
'days_missing_after_lateness' (warning: the marts stay correct for what arrived; the month stays partial).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from ai_usage import settings
from ai_usage.quality.results import FAILED, PASSED, DqResult

log = logging.getLogger(__name__)

SUITE = "completeness"
# coverage source (raw table name) -> the lookback setting that is its lateness window
SOURCES: Mapping[str, str] = {
    "cursor_daily_usage": "cursor",
    "cursor_usage_events": "cursor",
    "claude_code_usage": "claude_code",
    "anthropic_costs": "anthropic_costs",
    "anthropic_messages_usage": "anthropic_costs",
}


def monitored_sources() -> list[str]:
    """The sources checked: Cursor usage events only while ingest_cursor loads them."""
    switch = getattr(settings, "cursor_usage_events", None)
    events_on = switch() if callable(switch) else True
    return [s for s in SOURCES if events_on or s != "cursor_usage_events"]


def check_coverage(warehouse: Any, start: date, end: date, *, run_id: str, now: datetime) -> list[DqResult]:
    """Record missing days of [start, end] in ops.source_coverage; one result per source."""
    sources = monitored_sources()
    warehouse.ensure_tables(["ops.source_coverage"])
    gaps = warehouse.run_sql_file("ops/select_coverage_missing_days.sql",
                                  {"start_date": start, "end_date": end, "sources": sources})
    today = now.date()
    results = []
    for source in sources:
        days = [g["coverage_date"] for g in gaps if g["source"] == source]
        if days:
            rows = [{"coverage_date": d, "source": source, "status": "missing", "row_count": 0,
                     "checked_at": now, "run_id": run_id} for d in days]
            warehouse.replace_where("ops.source_coverage", rows, {"source": [source], "coverage_date": days})
        lateness = settings.lookback_days(SOURCES[source])
        late = [d for d in days if (today - d).days > lateness]
        if days:
            log.warning("%s: %d day(s) missing in %s → %s, %d past the %d-day lateness window: %s", source,
                        len(days), start, end, len(late), lateness, ", ".join(d.isoformat() for d in days[:10]))
        results.append(DqResult(
            SUITE, f"raw.{source}", f"days_missing_after_lateness:{source}", "warning",
            FAILED if late else PASSED,
            observed=f"{len(late)} day(s) missing past the lateness window, {len(days) - len(late)} inside it",
            expected=f"every day of {start} → {end} covered within {lateness} day(s)",
            details={"start": start, "end": end, "lateness_days": lateness, "missing": days},
            sample_rows=[{"source": source, "coverage_date": d, "status": "missing"} for d in late],
        ))
    return results
