"""
### ingest_cursor

Loads the **Cursor Admin API** into the ledger, daily at 02:30 UTC (Cursor aggregates usage hourly, so
the previous UTC day is complete by then):

| task | endpoint | table | replaces |
|---|---|---|---|
| `daily_usage` | `POST /teams/daily-usage-data` (every member, idle ones included) | `raw.cursor_daily_usage` | the window's days |
| `usage_events` | `POST /teams/filtered-usage-events` (skipped when `AI_USAGE_CURSOR_USAGE_EVENTS=off`) | `raw.cursor_usage_events` | the window's days |
| `members` | `GET /teams/members` | `raw.cursor_members` | today's snapshot |
| `spend` | `POST /teams/spend` (current billing cycle) | `raw.cursor_spend` | today's snapshot |
| `csv_inbox` | manual CSV exports in `AI_USAGE_INBOX/cursor/daily_usage/` (runbook: manual CSV fallback) | `raw.cursor_daily_usage` | the files' days |

**Window**: the last complete UTC day plus a lookback (`AI_USAGE_LOOKBACK_CURSOR`, default 3 days),
because Cursor re-aggregates recent days. Each task computes the window from its run (conf or interval)
and logs it. Every partition of the window is replaced atomically, so re-running a run changes nothing,
and a failed run leaves the previous data intact. Each task creates or migrates the tables it writes
with its first write (on DuckDB it never waits for the warehouse file while it extracts; parallel tasks
take turns on it); `setup_warehouse` creates every table at once.

**Backfill** any range (chunked into the API's 30-day windows) by triggering the DAG with a conf:
`{"start": "2025-01-01", "end": "2025-12-31"}` (inclusive UTC days, up to yesterday). Progress is
logged every few seconds. `catchup` is off on purpose: one run with a range is faster and gentler on the
vendor's 20 requests/minute limit than hundreds of daily runs.

**Where things go**: every response is archived verbatim (`AI_USAGE_ARCHIVE`); rows that cannot be
trusted go to `ops.quarantine` with the reason; each task writes `ops.ingestion_runs` and
`ops.source_coverage`. Connection: `cursor_admin` (API key as password). A 401/403 fails at once with
a message naming the connection — rotate the key (runbook: credentials).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from ai_usage import assets
from ai_usage.dag_defaults import default_args


@dag(
    dag_id="ingest_cursor",
    schedule="30 2 * * *",  # UTC
    start_date=datetime(2025, 1, 1),
    catchup=False,  # backfills are one run with {"start", "end"} in its conf
    max_active_runs=1,  # runs replace overlapping partitions: never two at once
    default_args=default_args(),
    tags=["ai-usage", "ingest", "cursor"],
    doc_md=__doc__,
)
def ingest_cursor() -> None:
    @task(outlets=[assets.CURSOR_DAILY_USAGE])
    def daily_usage() -> dict:
        from ai_usage import pipeline, streams

        return pipeline.run_stream(streams.cursor_daily_usage(pipeline.current_window("cursor")))

    @task(outlets=[assets.CURSOR_USAGE_EVENTS])
    def usage_events() -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from ai_usage import settings

        if not settings.cursor_usage_events():
            from ai_usage.warehouse import get_warehouse

            with get_warehouse() as wh:  # the table exists, empty, for the marts and checks that read it
                wh.ensure_tables(["raw.cursor_usage_events"])
            raise AirflowSkipException("AI_USAGE_CURSOR_USAGE_EVENTS=off: usage events are not loaded")

        from ai_usage import pipeline, streams

        return pipeline.run_stream(streams.cursor_usage_events(pipeline.current_window("cursor")))

    @task(outlets=[assets.CURSOR_MEMBERS])
    def members() -> dict:
        from ai_usage import pipeline, streams

        return pipeline.run_stream(streams.cursor_members())

    @task(outlets=[assets.CURSOR_SPEND])
    def spend() -> dict:
        from ai_usage import pipeline, streams

        return pipeline.run_stream(streams.cursor_spend())

    @task(outlets=[assets.CURSOR_DAILY_USAGE], trigger_rule="all_done")
    def csv_inbox() -> dict:
        """Manual CSV exports in <AI_USAGE_INBOX>/cursor/daily_usage/ (runbook/manual-csv-fallback.md)."""
        from ai_usage import inbox

        return inbox.run_task("cursor/daily_usage")

    daily = daily_usage()
    usage_events()
    members()
    spend()
    # After the API task, whatever its outcome: a file a person dropped wins for its days, and it still
    # loads when the API is down (all_done).
    daily >> csv_inbox()


ingest_cursor()
