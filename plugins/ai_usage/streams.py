"""The ingest DAGs' streams: for each task, which vendor pages go, parsed how, into which table and partitions.

A DAG task only calls ``pipeline.run_stream(streams.<name>(...))``. Keeping the definitions here keeps the
DAG files to wiring, and lets the same streams run outside an Airflow task with `pipeline.ingest` (the
benchmark measures the product's own cost that way too). Hooks are created here, which is cheap: no
connection is read before the first request.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ai_usage import settings
from ai_usage.hooks.anthropic import AnthropicAdminHook, ListKind
from ai_usage.hooks.cursor import CursorAdminHook
from ai_usage.pipeline import Stream, Window, snapshot_day
from ai_usage.sources import anthropic, claude_code_fast, cursor, cursor_fast
from ai_usage.sources.platform import PlatformRules

# --------------------------------------------------------------------------- Cursor Admin API


def cursor_daily_usage(w: Window) -> Stream:
    hook = CursorAdminHook()
    return Stream(
        source="cursor", endpoint="daily_usage", table="raw.cursor_daily_usage",
        pages=lambda: hook.daily_usage_pages(w.start, w.end),
        parse=cursor_fast.parse_daily_usage_page,
        dates=w.days, archive_day=w.start, counters=hook, interval=w,
        lateness_days=settings.lookback_days("cursor"),
    )


def cursor_usage_events(w: Window) -> Stream:
    hook = CursorAdminHook()
    ordinals: dict[Any, Any] = {}  # per-day counters of identical same-millisecond events (see the parser)
    return Stream(
        source="cursor", endpoint="usage_events", table="raw.cursor_usage_events",
        pages=lambda: hook.usage_events_pages(w.start, w.end),
        parse=lambda page: cursor.parse_usage_events(
            page.payload, page=page.n, ordinals=ordinals.setdefault(page.day, {})),
        dates=w.days, archive_day=w.start, counters=hook, interval=w,
        lateness_days=settings.lookback_days("cursor"),
    )


def cursor_members(day: date | None = None) -> Stream:
    hook, day = CursorAdminHook(), day or snapshot_day()
    return Stream(
        source="cursor", endpoint="members", table="raw.cursor_members",
        pages=lambda: [hook.members()],
        parse=lambda page: cursor.parse_members(page.payload, snapshot_date=day, page=page.n),
        dates=[day], archive_day=day, counters=hook,
    )


def cursor_spend(day: date | None = None) -> Stream:
    hook, day = CursorAdminHook(), day or snapshot_day()
    return Stream(
        source="cursor", endpoint="spend", table="raw.cursor_spend",
        pages=lambda: hook.spend_pages(),
        parse=lambda page: cursor.parse_spend(page.payload, snapshot_date=day, page=page.n),
        dates=[day], archive_day=day, counters=hook,
    )


# --------------------------------------------------------------------------- Anthropic Admin API


def claude_code(w: Window) -> Stream:
    hook = AnthropicAdminHook()
    return Stream(
        source="anthropic", endpoint="claude_code", table="raw.claude_code_usage",
        pages=lambda: (page for day in w.days for page in hook.claude_code_pages(day)),
        parse=claude_code_fast.parse_claude_code_page,
        dates=w.days, archive_day=w.start, counters=hook, interval=w,
        lateness_days=settings.lookback_days("claude_code"),
    )


_LISTINGS = {
    "api_keys": ("raw.anthropic_api_keys", anthropic.parse_api_keys),
    "users": ("raw.anthropic_users", anthropic.parse_users),
    "workspaces": ("raw.anthropic_workspaces", anthropic.parse_workspaces),
}


def anthropic_listing(kind: ListKind, day: date | None = None) -> Stream:
    """The organisation's API keys, users or workspaces, as a snapshot of `day` (default: today, UTC)."""
    table, parse = _LISTINGS[kind]
    hook, day = AnthropicAdminHook(), day or snapshot_day()
    return Stream(
        source="anthropic", endpoint=kind, table=table,
        pages=lambda: hook.list_pages(kind),
        parse=lambda page: parse(page.payload, snapshot_date=day, page=page.n),
        dates=[day], archive_day=day, counters=hook,
    )


def anthropic_cost_report(w: Window, warehouse: Any) -> Stream:
    """The cost report, each row classified by the platform rules with the Sheet's developer-tooling marks
    and the latest workspace names, both read from `warehouse` now."""
    with warehouse.session():
        warehouse.ensure_tables(["ref.api_key_owners", "raw.anthropic_workspaces"])
        tooling = [r["workspace"] for r in warehouse.run_sql_file("ref/select_developer_tooling_workspaces.sql")]
        names = {r["workspace_id"]: r["name"]
                 for r in warehouse.run_sql_file("raw/select_latest_workspace_names.sql")}
    rules = PlatformRules.from_env(developer_tooling_workspaces=tooling)
    workspace_names = {None: anthropic.DEFAULT_WORKSPACE_NAME, **names}
    hook = AnthropicAdminHook()
    return Stream(
        source="anthropic", endpoint="cost_report", table="raw.anthropic_costs",
        pages=lambda: hook.cost_report_pages(w.start, w.end),
        parse=lambda page: anthropic.parse_cost_report(
            page.payload, page=page.n, rules=rules, workspace_names=workspace_names),
        dates=w.days, archive_day=w.start, counters=hook, interval=w,
        lateness_days=settings.lookback_days("anthropic_costs"),
    )


def anthropic_messages_usage(w: Window) -> Stream:
    hook = AnthropicAdminHook()
    return Stream(
        source="anthropic", endpoint="messages_usage", table="raw.anthropic_messages_usage",
        pages=lambda: hook.messages_usage_pages(w.start, w.end),
        parse=lambda page: anthropic.parse_messages_usage(page.payload, page=page.n),
        dates=w.days, archive_day=w.start, counters=hook, interval=w,
        lateness_days=settings.lookback_days("anthropic_costs"),
    )
