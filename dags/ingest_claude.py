"""
### ingest_claude

Loads the **Anthropic Admin API** into the ledger, daily at 02:45 UTC:

| task | endpoint | table | replaces |
|---|---|---|---|
| `claude_code` | `GET /v1/organizations/usage_report/claude_code` (one call series per UTC day) | `raw.claude_code_usage` | the window's days |
| `cost_report` | `GET /v1/organizations/cost_report` (daily buckets by workspace and description) | `raw.anthropic_costs` | the window's days |
| `messages_usage` | `GET /v1/organizations/usage_report/messages` (tokens by key, workspace, model) | `raw.anthropic_messages_usage` | the window's days |
| `api_keys`, `users`, `workspaces` | the organisation listings | `raw.anthropic_*` | today's snapshot |
| `csv_inbox` | Console CSV exports in `AI_USAGE_INBOX/anthropic/{claude_code,cost_report}/` (runbook: manual CSV fallback) | `raw.claude_code_usage`, `raw.anthropic_costs` | the files' days |

**Windows**: the last complete UTC day plus a lookback — `AI_USAGE_LOOKBACK_CLAUDE_CODE` (default 4:
the Claude Code report lags) and `AI_USAGE_LOOKBACK_ANTHROPIC_COSTS` (default 3: cost data is revised).
Each task computes its window from its run (conf or interval) and logs it. All partitions of a window are
replaced atomically; re-running changes nothing. Each task creates or migrates the tables it writes
with its first write (on DuckDB it never waits for the warehouse file while it extracts; parallel tasks
take turns on it); `setup_warehouse` creates every table at once.

**Platform filtering**: each cost row gets `platform` (`claude_code` = developer tooling, `api` = other
API use such as product workloads) and the `platform_rule` that decided it: the Claude Code workspaces
(`AI_USAGE_CLAUDE_CODE_WORKSPACES`, default the workspace named "Claude Code"), workspaces the Sheet marks
as developer tooling, then `AI_USAGE_PLATFORM_PATTERNS`. Only developer-tool platforms are allocated to
teams; the whole bill stays in `raw.anthropic_costs` for reconciliation with the invoice.

**Backfill** any range with the conf `{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}` (the Claude Code
report is fetched one day at a time, the cost report in 31-day pages). Connection: `anthropic_admin`
(an admin key `sk-ant-admin…`); a 401/403 fails at once naming the connection.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from ai_usage import assets
from ai_usage.dag_defaults import default_args


@dag(
    dag_id="ingest_claude",
    schedule="45 2 * * *",  # UTC; the Claude Code report serves data older than an hour
    start_date=datetime(2025, 1, 1),
    catchup=False,  # backfills are one run with {"start", "end"} in its conf
    max_active_runs=1,  # runs replace overlapping partitions: never two at once
    default_args=default_args(),
    tags=["ai-usage", "ingest", "claude", "anthropic"],
    doc_md=__doc__,
)
def ingest_claude() -> None:
    @task(outlets=[assets.CLAUDE_CODE_USAGE])
    def claude_code() -> dict:
        from ai_usage import pipeline, streams

        return pipeline.run_stream(streams.claude_code(pipeline.current_window("claude_code")))

    @task
    def workspaces() -> dict:
        from ai_usage import pipeline, streams

        return pipeline.run_stream(streams.anthropic_listing("workspaces"))

    @task(outlets=[assets.ANTHROPIC_API_KEYS])
    def api_keys() -> dict:
        from ai_usage import pipeline, streams

        return pipeline.run_stream(streams.anthropic_listing("api_keys"))

    @task
    def users() -> dict:
        from ai_usage import pipeline, streams

        return pipeline.run_stream(streams.anthropic_listing("users"))

    @task(outlets=[assets.ANTHROPIC_COSTS])
    def cost_report() -> dict:
        from ai_usage import pipeline, streams
        from ai_usage.warehouse import get_warehouse

        with get_warehouse() as wh:  # the Sheet's developer-tooling marks and the workspace names
            stream = streams.anthropic_cost_report(pipeline.current_window("anthropic_costs"), wh)
        return pipeline.run_stream(stream)

    @task
    def messages_usage() -> dict:
        from ai_usage import pipeline, streams

        return pipeline.run_stream(streams.anthropic_messages_usage(pipeline.current_window("anthropic_costs")))

    @task(outlets=[assets.CLAUDE_CODE_USAGE, assets.ANTHROPIC_COSTS], trigger_rule="all_done")
    def csv_inbox() -> dict:
        """Console CSV exports in <AI_USAGE_INBOX>/anthropic/{claude_code,cost_report}/ (runbook/manual-csv-fallback.md)."""
        from ai_usage import inbox

        return inbox.run_task("anthropic/claude_code", "anthropic/cost_report")

    usage = claude_code()
    api_keys()
    users()
    listing = workspaces()
    costs = cost_report()
    listing >> costs
    # After the API tasks, whatever their outcome (all_done): a file a person dropped wins for its days and
    # still loads when the API is down; cost rows name workspaces from the latest listing.
    [listing, usage, costs] >> csv_inbox()
    messages_usage()


ingest_claude()
