"""Airflow Assets: the cross-DAG contract. Each ingest DAG updates its assets; `refresh_marts` is scheduled on them.

Asset URIs name the logical tables (``x-ai-usage://raw/cursor_daily_usage``), not a backend location, so the
same DAGs schedule identically on DuckDB and BigQuery. Defined once, here. The ``x-`` prefix marks a private
scheme: Airflow then skips looking for a URI normaliser among all providers, which would import the Google
provider's GCS hook in every process that parses the DAGs (about 0.9 s and 44 MiB).
"""

from __future__ import annotations

from airflow.sdk import Asset


def _table_asset(table: str) -> Asset:
    dataset, name = table.split(".", 1)
    return Asset(uri=f"x-ai-usage://{dataset}/{name}", name=table, group="ai_usage")


# Raw and reference tables written by the ingest DAGs.
CURSOR_DAILY_USAGE = _table_asset("raw.cursor_daily_usage")
CURSOR_SPEND = _table_asset("raw.cursor_spend")
CURSOR_MEMBERS = _table_asset("raw.cursor_members")
CURSOR_USAGE_EVENTS = _table_asset("raw.cursor_usage_events")
CLAUDE_CODE_USAGE = _table_asset("raw.claude_code_usage")
ANTHROPIC_COSTS = _table_asset("raw.anthropic_costs")
ANTHROPIC_API_KEYS = _table_asset("raw.anthropic_api_keys")
CLAUDE_AI_USAGE = _table_asset("raw.claude_ai_usage")
PEOPLE = _table_asset("ref.people")
API_KEY_OWNERS = _table_asset("ref.api_key_owners")
SEAT_PRICES = _table_asset("ref.seat_prices")

CURSOR_ASSETS = [CURSOR_DAILY_USAGE, CURSOR_SPEND, CURSOR_MEMBERS, CURSOR_USAGE_EVENTS]
CLAUDE_ASSETS = [CLAUDE_CODE_USAGE, ANTHROPIC_COSTS, ANTHROPIC_API_KEYS]
SHEET_ASSETS = [CLAUDE_AI_USAGE, PEOPLE, API_KEY_OWNERS, SEAT_PRICES]

# The marts, updated by refresh_marts (dashboards and provisioning may wait on them).
MARTS = _table_asset("marts.monthly_cost_allocation")


def table_asset(table: str) -> Asset:
    """The Asset of a logical table name (for tables not listed above)."""
    return _table_asset(table)
