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
All partitions of a window are replaced atomically; re-running changes nothing.

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
    @task
    def plan() -> dict:
        from ai_usage import bootstrap, pipeline, settings

        bootstrap.ensure_tables()  # every contracted table exists, even one a skipped task would create

        return {
            "claude_code": pipeline.window_for_current_run(settings.lookback_days("claude_code")).to_dict(),
            "costs": pipeline.window_for_current_run(settings.lookback_days("anthropic_costs")).to_dict(),
        }

    @task(outlets=[assets.CLAUDE_CODE_USAGE])
    def claude_code(windows: dict) -> dict:
        from ai_usage import pipeline, settings
        from ai_usage.hooks.anthropic import AnthropicAdminHook
        from ai_usage.sources import claude_code_fast

        w, hook = pipeline.Window.from_dict(windows["claude_code"]), AnthropicAdminHook()
        return pipeline.run_stream(pipeline.Stream(
            source="anthropic", endpoint="claude_code", table="raw.claude_code_usage",
            pages=lambda: (page for day in w.days for page in hook.claude_code_pages(day)),
            parse=claude_code_fast.parse_claude_code_page,
            dates=w.days, archive_day=w.start, counters=hook, interval=w,
            lateness_days=settings.lookback_days("claude_code"),
        ))

    @task
    def workspaces() -> dict:
        from ai_usage import pipeline
        from ai_usage.hooks.anthropic import AnthropicAdminHook
        from ai_usage.sources import anthropic

        hook, day = AnthropicAdminHook(), pipeline.snapshot_day()
        return pipeline.run_stream(pipeline.Stream(
            source="anthropic", endpoint="workspaces", table="raw.anthropic_workspaces",
            pages=lambda: hook.list_pages("workspaces"),
            parse=lambda page: anthropic.parse_workspaces(page.payload, snapshot_date=day, page=page.n),
            dates=[day], archive_day=day, counters=hook,
        ))

    @task(outlets=[assets.ANTHROPIC_API_KEYS])
    def api_keys() -> dict:
        from ai_usage import pipeline
        from ai_usage.hooks.anthropic import AnthropicAdminHook
        from ai_usage.sources import anthropic

        hook, day = AnthropicAdminHook(), pipeline.snapshot_day()
        return pipeline.run_stream(pipeline.Stream(
            source="anthropic", endpoint="api_keys", table="raw.anthropic_api_keys",
            pages=lambda: hook.list_pages("api_keys"),
            parse=lambda page: anthropic.parse_api_keys(page.payload, snapshot_date=day, page=page.n),
            dates=[day], archive_day=day, counters=hook,
        ))

    @task
    def users() -> dict:
        from ai_usage import pipeline
        from ai_usage.hooks.anthropic import AnthropicAdminHook
        from ai_usage.sources import anthropic

        hook, day = AnthropicAdminHook(), pipeline.snapshot_day()
        return pipeline.run_stream(pipeline.Stream(
            source="anthropic", endpoint="users", table="raw.anthropic_users",
            pages=lambda: hook.list_pages("users"),
            parse=lambda page: anthropic.parse_users(page.payload, snapshot_date=day, page=page.n),
            dates=[day], archive_day=day, counters=hook,
        ))

    @task(outlets=[assets.ANTHROPIC_COSTS])
    def cost_report(windows: dict) -> dict:
        from ai_usage import pipeline, settings
        from ai_usage.hooks.anthropic import AnthropicAdminHook
        from ai_usage.sources import anthropic
        from ai_usage.sources.platform import PlatformRules
        from ai_usage.warehouse import get_warehouse

        with get_warehouse() as wh:  # the Sheet's developer-tooling marks and the workspace names
            wh.ensure_tables(["ref.api_key_owners", "raw.anthropic_workspaces"])
            tooling = [r["workspace"] for r in wh.run_sql_file("ref/select_developer_tooling_workspaces.sql")]
            names = {r["workspace_id"]: r["name"] for r in wh.run_sql_file("raw/select_latest_workspace_names.sql")}
        rules = PlatformRules.from_env(developer_tooling_workspaces=tooling)
        workspace_names = {None: anthropic.DEFAULT_WORKSPACE_NAME, **names}
        w, hook = pipeline.Window.from_dict(windows["costs"]), AnthropicAdminHook()
        return pipeline.run_stream(pipeline.Stream(
            source="anthropic", endpoint="cost_report", table="raw.anthropic_costs",
            pages=lambda: hook.cost_report_pages(w.start, w.end),
            parse=lambda page: anthropic.parse_cost_report(
                page.payload, page=page.n, rules=rules, workspace_names=workspace_names),
            dates=w.days, archive_day=w.start, counters=hook, interval=w,
            lateness_days=settings.lookback_days("anthropic_costs"),
        ))

    @task
    def messages_usage(windows: dict) -> dict:
        from ai_usage import pipeline, settings
        from ai_usage.hooks.anthropic import AnthropicAdminHook
        from ai_usage.sources import anthropic

        w, hook = pipeline.Window.from_dict(windows["costs"]), AnthropicAdminHook()
        return pipeline.run_stream(pipeline.Stream(
            source="anthropic", endpoint="messages_usage", table="raw.anthropic_messages_usage",
            pages=lambda: hook.messages_usage_pages(w.start, w.end),
            parse=lambda page: anthropic.parse_messages_usage(page.payload, page=page.n),
            dates=w.days, archive_day=w.start, counters=hook, interval=w,
            lateness_days=settings.lookback_days("anthropic_costs"),
        ))

    @task(outlets=[assets.CLAUDE_CODE_USAGE, assets.ANTHROPIC_COSTS], trigger_rule="all_done")
    def csv_inbox() -> dict:
        """Console CSV exports in <AI_USAGE_INBOX>/anthropic/{claude_code,cost_report}/ (runbook/manual-csv-fallback.md)."""
        from ai_usage import inbox

        return inbox.run_task("anthropic/claude_code", "anthropic/cost_report")

    windows = plan()
    usage = claude_code(windows)
    api_keys()
    users()
    listing = workspaces()
    costs = cost_report(windows)
    listing >> costs
    # After the API tasks, whatever their outcome (all_done): a file a person dropped wins for its days and
    # still loads when the API is down; cost rows name workspaces from the latest listing.
    [listing, usage, costs] >> csv_inbox()
    messages_usage(windows)


ingest_claude()
