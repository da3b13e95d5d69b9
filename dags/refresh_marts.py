"""
### refresh_marts

Decides whether the ingested data can be trusted and turns it into the tables every dashboard reads.
**Scheduled on the Assets** the ingest DAGs update (`ingest_cursor`, `ingest_claude`, `ingest_sheets`:
any of them; of the Sheet's people and owners it waits for `ref.attribution`, which ingest_sheets rebuilds
from them), it rebuilds only what the triggering runs touched:

| task | what |
|---|---|
| `plan` | the touched tables and days, from the triggering asset events (each ingest task records its table and days); activity days → those days of `marts.daily_tool_usage` and their months; billing days → their months; a Sheet change → the last `AI_USAGE_REF_REFRESH_MONTHS` (2) months |
| `validate` | Great Expectations suites (one per raw and ref table) on the touched partitions and the reference tables → `ops.dq_results`, Data Docs under `<AI_USAGE_ARCHIVE>/data_docs/<run_id>/` |
| `coverage` | `ops.source_coverage`: days nobody fetched become `missing`; a day missing past its lateness window alerts |
| `refresh` | `marts.daily_tool_usage`, `marts.daily_usage_breakdown` (days), `marts.monthly_cost_allocation`, `marts.seat_utilization`, `marts.exec_monthly` (months): partitions replaced atomically, **except months an error-level check blocked**; `marts.data_freshness` (coverage for the dashboards) |
| `reconcile` | allocated = billed per tool and month (exact), seat fees = price card, Claude Code estimates vs billed, Cursor spend snapshot vs usage, claude.ai spend vs seats → `ops.dq_results`, `marts.reconciliation_status` |
| `gate` | fails the run (no retry) when a month was blocked or a reconciliation error failed |

**Alerts**: a failed check sends a digest (Slack / e-mail) with the failing expectations and sample rows;
error level blocks the months it covers and the run ends failed, warning level only alerts. Triage:
`runbook/data-quality.md`; month-end close: `runbook/month-end-reconciliation.md`.

**Rebuild any range** (after a Sheet correction, a backfill, a fix): trigger with the conf
`{"start": "2025-01-01", "end": "2025-12-31"}` (inclusive UTC days): every table of the range is validated
and every mart of its months rebuilt. A manual run without conf rebuilds the last week's months.
Re-running changes nothing but the lineage columns. `catchup` is off: the schedule is data, not time;
`max_active_runs` is 1 because two runs would replace the same partitions.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import AssetAny, dag, task

from ai_usage import assets
from ai_usage.dag_defaults import default_args


@dag(
    dag_id="refresh_marts",
    # The Sheet's people and owners count once ingest_sheets has rebuilt ref.attribution from them.
    schedule=AssetAny(*assets.CURSOR_ASSETS, *assets.CLAUDE_ASSETS, assets.CLAUDE_AI_USAGE, assets.SEAT_PRICES,
                      assets.table_asset("ref.attribution")),
    start_date=datetime(2025, 1, 1),
    catchup=False,  # asset-triggered; older ranges are rebuilt with {"start", "end"} in the conf
    max_active_runs=1,  # runs replace overlapping mart partitions: never two at once
    default_args=default_args(),
    tags=["ai-usage", "marts", "data-quality"],
    doc_md=__doc__,
)
def refresh_marts() -> None:
    @task
    def plan() -> dict:
        from ai_usage.quality import tasks

        return tasks.plan()

    @task
    def validate(plan: dict) -> dict:
        from ai_usage.quality import tasks

        return tasks.validate(plan)

    @task
    def coverage(plan: dict) -> dict:
        from ai_usage.quality import tasks

        return tasks.coverage(plan)

    @task(outlets=[assets.MARTS])
    def refresh(plan: dict, validation: dict) -> dict:
        from ai_usage.quality import tasks

        return tasks.refresh(plan, validation)

    @task
    def reconcile(refreshed: dict) -> dict:
        from ai_usage.quality import tasks

        return tasks.reconcile(refreshed)

    @task
    def gate(validation: dict, refreshed: dict, reconciliation: dict) -> None:
        from ai_usage.quality import tasks

        tasks.gate(validation, refreshed, reconciliation)

    planned = plan()
    validation = validate(planned)
    covered = coverage(planned)
    refreshed = refresh(planned, validation)
    covered >> refreshed  # exec_monthly reads the coverage this run records
    gate(validation, refreshed, reconcile(refreshed))


refresh_marts()
