"""The tasks of the `ingest_sheets` DAG, as functions (the DAG file only wires them).

- `load_tab(tab)`: one tab through the shared pipeline (archive → parse → quarantine → load). Reference
  tabs replace their ``ref`` table whole; the claude.ai tab replaces the ``period_start`` partitions its
  periods cover, so a re-pasted export replaces its period and never doubles it, and periods no longer in
  the tab keep what was loaded before.
- `build_attribution()`: ``ref.attribution`` from the freshly loaded ``ref.people`` and ``ref.api_key_owners``.
- `write_back_unmapped_keys()`: the unmapped-key workflow (`ai_usage.unmapped_keys`) and its digest.
- `quarantine_digest()`: one alert listing every row of the Sheet this run rejected, with the reason.

Each must run inside an Airflow task (run id and context come from it).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

SOURCE = "sheet"


def load_tab(tab: str) -> dict[str, Any]:
    """Load one tab of the configured Sheet into its table; returns the pipeline's figures."""
    from ai_usage import pipeline
    from ai_usage.hooks.sheet import open_sheet, tab_endpoint
    from ai_usage.sources.sheet import TABS, claude_ai_periods, parse_tab

    spec, sheet, day = TABS[tab], open_sheet(), pipeline.snapshot_day()
    log.info("reading tab %s of %s", tab, sheet.describe())
    dates = None                                   # a ref table is replaced whole
    pages: Any = lambda: [sheet.read_tab(tab)]     # noqa: E731 - read inside the load: failures are recorded
    if tab == "claude_ai_usage":
        # Read first: the periods in the tab decide which partitions the load replaces.
        page = sheet.read_tab(tab)
        dates, pages = claude_ai_periods(page.payload), (lambda: [page])
    return pipeline.run_stream(pipeline.Stream(
        source=SOURCE, endpoint=tab_endpoint(tab), table=spec.table,
        pages=pages, parse=lambda p: parse_tab(tab, p.payload),
        dates=dates, archive_day=day, counters=sheet,
    ))


def _run_info() -> Any:
    from airflow.sdk import get_current_context

    from ai_usage.pipeline import RunInfo

    return RunInfo.from_context(get_current_context())


def build_attribution() -> dict[str, int]:
    from ai_usage import attribution
    from ai_usage.warehouse import get_warehouse

    with get_warehouse() as wh:
        return attribution.rebuild(wh, run_id=_run_info().run_id)


def write_back_unmapped_keys() -> dict[str, Any]:
    from airflow.sdk import get_current_context

    from ai_usage import alerts, pipeline, unmapped_keys
    from ai_usage.hooks.sheet import open_sheet
    from ai_usage.warehouse import get_warehouse

    sheet, today = open_sheet(), pipeline.snapshot_day()
    with get_warehouse() as wh:
        result = unmapped_keys.write_back(sheet, wh, today=today)
    rows = result.digest_rows()
    out = result.to_dict()
    if rows:
        start, end = result.window or (today, today)
        summary = (f"{len(result.appended)} API key(s) newly appended to the {unmapped_keys.TAB} tab of "
                   f"{sheet.describe()} with empty owner columns, {len(result.waiting)} still waiting for an "
                   f"owner. Fill owner_email, team and cost_center; until then their cost is Unattributed. "
                   f"Spend is the vendor's estimated Claude Code cost {start} → {end}.")
        out["delivered"] = alerts.send_digest("Unmapped Anthropic API keys", summary, rows,
                                              severity="warning", context=get_current_context())
    return out


def quarantine_digest() -> dict[str, Any]:
    from airflow.sdk import get_current_context

    from ai_usage import alerts
    from ai_usage.warehouse import get_warehouse

    run = _run_info()
    with get_warehouse() as wh:
        wh.ensure_tables(["ops.quarantine"])
        rows = wh.run_sql_file("ops/select_quarantine_of_run.sql", {"run_id": run.run_id, "source": SOURCE})
    out: dict[str, Any] = {"quarantined": len(rows)}
    if rows:
        tables = sorted({r["target_table"] for r in rows})
        summary = (f"{len(rows)} row(s) of the Sheet were rejected and are in ops.quarantine (not loaded) "
                   f"for {', '.join(tables)}. Fix them in the Sheet; the next run loads them.")
        digest = [{"tab row": r["record_ref"], "reason": r["reason"]} for r in rows]
        out["delivered"] = alerts.send_digest("Sheet rows quarantined", summary, digest, severity="warning",
                                              context=get_current_context(), max_rows=50)
    return out
