"""The provisioning steps as plain functions, shared by the `provision_dashboards` DAG and the command line."""

from __future__ import annotations

import logging
import re
from typing import Any

from ai_usage.dashboards.spec import load_specs
from ai_usage.exceptions import ConfigurationError
from ai_usage.settings import METABASE_CONN_ID

log = logging.getLogger(__name__)

_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")


def validate_specs() -> dict[str, Any]:
    """Load every spec (strict) and say what is there: dashboards and their card counts."""
    specs = load_specs()
    summary = {d.key: len(d.cards) for d in specs.dashboards}
    log.info("dashboard specs are valid: %s", summary)
    return {"dashboards": summary, "subscriptions": [s.key for s in specs.metabase.subscriptions]}


def _extra_recipients(extra: dict[str, Any]) -> list[str]:
    raw = extra.get("subscription_emails") or []
    emails = [e.strip() for e in (re.split(r"[,;]", raw) if isinstance(raw, str) else raw) if str(e).strip()]
    bad = [e for e in emails if not _EMAIL.match(str(e))]
    if bad:
        raise ConfigurationError(f"metabase_default extra.subscription_emails has invalid address(es) {bad}")
    return [str(e) for e in emails]


def export_for_metabase(conn_id: str = METABASE_CONN_ID) -> dict[str, int] | None:
    """DuckDB: write the marts-only copy Metabase reads; BigQuery: nothing to do (returns None)."""
    from ai_usage import settings
    from ai_usage.dashboards.export import export_marts
    from ai_usage.dashboards.metabase_hook import MetabaseHook
    from ai_usage.dashboards.target import target_from_settings

    if settings.warehouse_kind() != "duckdb":
        log.info("warehouse is BigQuery: Metabase reads the marts dataset directly, nothing to export")
        return None
    target = target_from_settings(MetabaseHook(conn_id).extra())
    assert target.export_path is not None
    return export_marts(target.export_path)


def provision(conn_id: str = METABASE_CONN_ID, *, update_credentials: bool = False) -> dict[str, Any]:
    """Bring the Metabase of connection `conn_id` in line with include/dashboards; return the summary."""
    from ai_usage.dashboards.metabase_hook import MetabaseHook
    from ai_usage.dashboards.provision import Provisioner
    from ai_usage.dashboards.target import target_from_settings

    specs = load_specs()
    hook = MetabaseHook(conn_id)
    try:
        extra = hook.extra()
        target = target_from_settings(extra)
        report = Provisioner(hook, specs, target, extra_recipients=_extra_recipients(extra),
                             update_credentials=update_credentials).run()
    finally:
        hook.close()
    return {
        "summary": report.summary(),
        "changes": [
            {"kind": a.kind, "key": a.key, "verb": a.verb, "id": a.id, "detail": a.detail} for a in report.changes
        ],
        "skipped": [{"kind": a.kind, "key": a.key, "detail": a.detail} for a in report.skipped],
    }
