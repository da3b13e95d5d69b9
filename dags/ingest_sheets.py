"""
### ingest_sheets

Loads the **Google Sheet** people maintain (or its CSV fallback) into the ledger, daily at 02:15 UTC:

| task | tab | table | replaces |
|---|---|---|---|
| `people` | `people` | `ref.people` | the whole table |
| `api_key_owners` | `api_key_owners` | `ref.api_key_owners` | the whole table |
| `seat_prices` | `seat_prices` | `ref.seat_prices` | the whole table |
| `claude_ai_usage` | `claude_ai_usage` (claude.ai Spend Report exports) | `raw.claude_ai_usage` | the periods in the tab |
| `attribution` | – | `ref.attribution` (e-mail / API key / workspace → team, per day) | the whole table |
| `unmapped_keys` | appends to `api_key_owners` | – | – |
| `quarantine_digest` | – | – | – |

**Source**: `AI_USAGE_SHEET` — a spreadsheet id (read with gspread as the service account of connection
`google_cloud_default`; share the Sheet with it as Editor) or `file:///<folder>` of one CSV per tab (the
manual-upload fallback). Template and validation rules: runbook/sheet.md.

**Validation**: rows the pipeline cannot trust (bad e-mails, dates or amounts, formulas shown as text,
duplicates, overlapping validity ranges) go to `ops.quarantine` with the tab, the row number and the
reason; every other row loads, and `quarantine_digest` alerts with the list. A missing required column
fails the tab's task with a message naming the tab and the column (and the run: the digest waits for
every load); the table keeps its previous content and the other tabs still load.

**Unmapped keys**: API keys and Claude Code API actors seen in the Anthropic data but absent from the
`api_key_owners` tab are appended to it once, with empty owner columns, and reported with their estimated
spend over the last 30 days.

`catchup` is off: every run reads the Sheet as it is now, so there is nothing to catch up; runs never
overlap (`max_active_runs=1`) because the write-back reads, then appends to, the owners tab.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from ai_usage import assets
from ai_usage.dag_defaults import default_args


@dag(
    dag_id="ingest_sheets",
    schedule="15 2 * * *",  # UTC; before ingest_claude (02:45), whose platform rules read the Sheet's marks
    start_date=datetime(2025, 1, 1),
    catchup=False,  # the Sheet has no history to replay: each run loads it as it is
    max_active_runs=1,  # the write-back reads the owners tab, then appends: never two runs at once
    default_args=default_args(),
    tags=["ai-usage", "ingest", "sheet"],
    doc_md=__doc__,
)
def ingest_sheets() -> None:
    @task(outlets=[assets.PEOPLE])
    def people() -> dict:
        from ai_usage.sheet_ingest import load_tab

        return load_tab("people")

    @task(outlets=[assets.API_KEY_OWNERS])
    def api_key_owners() -> dict:
        from ai_usage.sheet_ingest import load_tab

        return load_tab("api_key_owners")

    @task(outlets=[assets.SEAT_PRICES])
    def seat_prices() -> dict:
        from ai_usage.sheet_ingest import load_tab

        return load_tab("seat_prices")

    @task(outlets=[assets.CLAUDE_AI_USAGE])
    def claude_ai_usage() -> dict:
        from ai_usage.sheet_ingest import load_tab

        return load_tab("claude_ai_usage")

    @task(outlets=[assets.table_asset("ref.attribution")])
    def attribution() -> dict:
        from ai_usage.sheet_ingest import build_attribution

        return build_attribution()

    @task
    def unmapped_keys() -> dict:
        from ai_usage.sheet_ingest import write_back_unmapped_keys

        return write_back_unmapped_keys()

    @task
    def quarantine_digest() -> dict:
        from ai_usage.sheet_ingest import quarantine_digest as digest

        return digest()

    loaded_people, loaded_owners = people(), api_key_owners()
    loads = [loaded_people, loaded_owners, seat_prices(), claude_ai_usage()]
    [loaded_people, loaded_owners] >> attribution()
    loaded_owners >> unmapped_keys()
    loads >> quarantine_digest()


ingest_sheets()
