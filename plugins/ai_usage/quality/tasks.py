"""The bodies of refresh_marts' tasks: each reads the Airflow context, opens the warehouse, calls one step
of `ai_usage.marts` / `ai_usage.quality` and returns a small JSON-able summary for the next task (XCom).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from ai_usage import marts
from ai_usage.quality.results import alert_failures, write_results

log = logging.getLogger(__name__)


def _context() -> Any:
    from airflow.sdk import get_current_context

    return get_current_context()


def _run_id(context: Mapping[str, Any]) -> str:
    dag_run = context.get("dag_run")
    return str(getattr(dag_run, "run_id", None) or context.get("run_id"))


def triggering_events(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The triggering asset events as plan inputs (see `marts.plan_from_events`), from the extra the
    ingest attached (`pipeline.touched_extra`)."""
    accessor = context.get("triggering_asset_events") or {}
    out = []
    for asset in accessor:
        for event in accessor[asset]:
            extra = dict(getattr(event, "extra", None) or {})
            out.append({
                "table": extra.get("table") or getattr(asset, "name", None),
                "start": extra.get("start"), "end": extra.get("end"), "rows": extra.get("rows"),
                "detailed": "table" in extra,
                "source": f"{getattr(event, 'source_dag_id', None)}/{getattr(event, 'source_run_id', None)}",
            })
    return out


def plan() -> dict[str, Any]:
    context = _context()
    conf = dict(getattr(context.get("dag_run"), "conf", None) or {})
    events = triggering_events(context)
    result = marts.plan_for_run(conf, events)
    log.info("%s: months %s; daily mart days %s; tables %s (from %d asset event(s))", result.reason,
             [m.isoformat()[:7] for m in result.months], [f"{a} → {b}" for a, b in result.days],
             sorted(result.tables), len(events))
    return result.to_dict()


def validate(plan_dict: Mapping[str, Any]) -> dict[str, Any]:
    """GX suites on the touched partitions and the reference tables; alert on failures."""
    from ai_usage.quality.validation import validate as run_validation
    from ai_usage.warehouse import get_warehouse

    context = _context()
    refresh_plan = marts.RefreshPlan.from_dict(plan_dict)
    now = datetime.now(UTC)
    with get_warehouse() as wh:
        report = run_validation(wh, refresh_plan.tables, run_id=_run_id(context), now=now)
    blocked = report.blocked_months(refresh_plan.months)
    note = (f"Refresh blocked for {', '.join(m.isoformat()[:7] for m in blocked)}. " if blocked else "") + \
        (f"Data Docs: {report.data_docs}" if report.data_docs else "")
    alert_failures(report.results, title="Data quality: GX suites of refresh_marts", context=context, note=note)
    return {
        "blocked_months": [m.isoformat() for m in blocked],
        "checks": len(report.results),
        "failed": [r.check_name for r in report.failed],
        "errors": [r.check_name for r in report.results if r.is_error],
        "data_docs": report.data_docs,
    }


def coverage(plan_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Completeness of the sources over the plan's months and the last five weeks."""
    from ai_usage.quality.completeness import check_coverage
    from ai_usage.warehouse import get_warehouse

    context = _context()
    refresh_plan = marts.RefreshPlan.from_dict(plan_dict)
    now = datetime.now(UTC)
    start, end = marts.coverage_range(refresh_plan, now.date())
    run_id = _run_id(context)
    with get_warehouse() as wh:
        results = check_coverage(wh, start, end, run_id=run_id, now=now)
        write_results(wh, results, run_id=run_id, checked_at=now)
    alert_failures(results, title="Data completeness: days still missing after the lateness window",
                   context=context)
    return {"start": start.isoformat(), "end": end.isoformat(), "failed": [r.check_name for r in results if r.failed]}


def refresh(plan_dict: Mapping[str, Any], validation: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild the plan's months that no error-level check blocked."""
    from ai_usage.warehouse import get_warehouse

    context = _context()
    refresh_plan = marts.RefreshPlan.from_dict(plan_dict)
    blocked = [date.fromisoformat(m) for m in validation.get("blocked_months", [])]
    with get_warehouse() as wh:
        return marts.refresh(wh, refresh_plan, run_id=_run_id(context), now=datetime.now(UTC), blocked=blocked)


def reconcile(refreshed: Mapping[str, Any]) -> dict[str, Any]:
    """Reconciliation of the refreshed months; alert on failures."""
    from ai_usage.quality.reconciliation import SUITE, write_status
    from ai_usage.quality.reconciliation import reconcile as run_reconciliation
    from ai_usage.warehouse import get_warehouse

    context = _context()
    months = [date.fromisoformat(m) for m in refreshed.get("refreshed_months", [])]
    now = datetime.now(UTC)
    with get_warehouse() as wh:
        results = run_reconciliation(wh, months)
        if results:
            write_results(wh, results, run_id=_run_id(context), checked_at=now)
        write_status(wh, results, months, run_id=_run_id(context), checked_at=now)
    alert_failures(results, title=f"Data quality: {SUITE} of the marts", context=context)
    return {"months": [m.isoformat() for m in months], "checks": len(results),
            "failed": [r.check_name for r in results if r.failed],
            "errors": [r.check_name for r in results if r.is_error]}


def gate(validation: Mapping[str, Any], refreshed: Mapping[str, Any], reconciliation: Mapping[str, Any]) -> None:
    """Fail the run when a month was blocked or an error-level reconciliation failed (alerts already sent).

    AirflowFailException: retrying cannot fix data; the fix is upstream (runbook/data-quality.md).
    """
    from airflow.sdk.exceptions import AirflowFailException

    problems = []
    if refreshed.get("blocked_months"):
        problems.append(f"months not refreshed (error-level data-quality failures): {refreshed['blocked_months']}; "
                        f"failing checks: {validation.get('errors')}")
    if reconciliation.get("errors"):
        problems.append(f"reconciliation errors: {reconciliation['errors']}")
    if problems:
        raise AirflowFailException("; ".join(problems) + ". See ops.dq_results and runbook/data-quality.md.")
    log.info("refreshed %s; no error-level data-quality failure", refreshed.get("refreshed_months"))
