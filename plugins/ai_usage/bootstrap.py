"""Warehouse bootstrap steps used by the `setup_warehouse` DAG (and by every ingest DAG's first task)."""

from __future__ import annotations

import logging
from typing import Any

from ai_usage import settings

log = logging.getLogger(__name__)


def check_settings() -> dict[str, str]:
    """Parse every setting now so a typo fails here, naming the setting, not deep inside a load."""
    settings.warehouse()
    settings.sheet()
    settings.archive()
    settings.inbox()
    settings.alert_emails()
    settings.cursor_usage_events()
    settings.estimate_tolerance()
    settings.cursor_spend_tolerance()
    settings.claude_ai_spend_band()
    settings.ref_refresh_months()
    from ai_usage.sources.platform import PlatformRules

    PlatformRules.from_env()  # AI_USAGE_CLAUDE_CODE_WORKSPACES, AI_USAGE_PLATFORM_PATTERNS
    for source in settings.DEFAULT_LOOKBACK_DAYS:
        settings.lookback_days(source)
    effective = settings.describe()
    for name, value in effective.items():
        log.info("%s = %s", name, value)
    return effective


def ensure_tables() -> list[dict[str, Any]]:
    """Create or migrate every table of include/schemas; return what changed."""
    from ai_usage.warehouse import get_warehouse

    with get_warehouse() as wh:
        changes = wh.ensure_tables()
    for c in changes:
        if c.action != "unchanged":
            log.info("%s: %s %s", c.table, c.action, ", ".join(c.columns_added))
    log.info("%d tables checked, %d created, %d migrated", len(changes),
             sum(c.action == "created" for c in changes), sum(c.action == "columns_added" for c in changes))
    return [{"table": c.table, "action": c.action, "columns_added": list(c.columns_added)} for c in changes]


def inventory_rows() -> list[dict[str, Any]]:
    from ai_usage.warehouse import get_warehouse

    with get_warehouse() as wh:
        inv = wh.inventory()
    return [
        {
            "table": i.table,
            "rows": i.rows,
            "partition_field": i.partition_field,
            "min_date": i.min_date.isoformat() if i.min_date else None,
            "max_date": i.max_date.isoformat() if i.max_date else None,
            "partitions": i.partitions,
        }
        for i in inv
    ]


def format_inventory(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table of the inventory for logs and the terminal."""
    header = f"{'table':<36} {'rows':>10}  {'partition':<20} {'from':<10}  {'to':<10}  {'days':>5}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['table']:<36} {r['rows']:>10}  {r['partition_field'] or '-':<20} "
            f"{r['min_date'] or '-':<10}  {r['max_date'] or '-':<10}  "
            f"{r['partitions'] if r['partitions'] is not None else '-':>5}"
        )
    return "\n".join(lines)


def log_inventory() -> list[dict[str, Any]]:
    rows = inventory_rows()
    log.info("warehouse inventory (%s):\n%s", settings.describe()["AI_USAGE_WAREHOUSE"], format_inventory(rows))
    return rows
