"""Data-quality results: one `DqResult` per check, written to ops.dq_results and sent as alert digests.

Every check of this package (GX suites, reconciliation, completeness) reports the same record, so one
table and one digest format serve them all. Writes replace what the same run wrote for the same suites,
so a task retry does not duplicate rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

log = logging.getLogger(__name__)

PASSED = "passed"
FAILED = "failed"
MAX_SAMPLE_ROWS = 5


@dataclass(frozen=True)
class DqResult:
    """One check's outcome (the columns of ops.dq_results)."""

    suite: str
    table_name: str
    check_name: str
    level: str                         # 'error' | 'warning'
    status: str                        # 'passed' | 'failed'
    month: date | None = None
    observed: str | None = None
    expected: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    sample_rows: Sequence[Mapping[str, Any]] = ()

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    @property
    def is_error(self) -> bool:
        return self.failed and self.level == "error"

    def to_row(self, run_id: str, checked_at: datetime) -> dict[str, Any]:
        return {
            "check_date": checked_at.date(),
            "run_id": run_id,
            "checked_at": checked_at,
            "suite": self.suite,
            "table_name": self.table_name,
            "month": self.month,
            "check_name": self.check_name,
            "level": self.level,
            "status": self.status,
            "observed": self.observed,
            "expected": self.expected,
            "details": jsonable(dict(self.details)) if self.details else None,
            "sample_rows": jsonable(list(self.sample_rows)[:MAX_SAMPLE_ROWS]) if self.failed and self.sample_rows
            else None,
        }


def jsonable(value: Any) -> Any:
    """Dates, Decimals and other values as JSON-safe text (Decimal exactly, never through float)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if value != value else value  # NaN (a pandas missing value) -> null
    return str(value)


def write_results(warehouse: Any, results: Sequence[DqResult], *, run_id: str, checked_at: datetime) -> int:
    """Replace this run's rows of the results' suites in ops.dq_results (idempotent per run and suite)."""
    suites = sorted({r.suite for r in results})
    if not suites:
        return 0
    rows = [r.to_row(run_id, checked_at) for r in results]
    _check_unique(rows)
    return warehouse.replace_where("ops.dq_results", rows, {"run_id": [run_id], "suite": suites})


def _check_unique(rows: Iterable[Mapping[str, Any]]) -> None:
    seen: set[tuple[str, str, str]] = set()
    for r in rows:
        key = (r["suite"], r["table_name"], r["check_name"])
        if key in seen:
            raise ValueError(f"duplicate data-quality check {key}: check names must be unique per run")
        seen.add(key)


def sample_text(row: Mapping[str, Any]) -> str:
    """``amount_usd=-12.345; cost_date=2026-11-22; …``: a sample row in the order the check put it."""
    def text(value: Any) -> str:
        if isinstance(value, Decimal):
            return f"{value.normalize():f}"
        return json.dumps(jsonable(value)) if isinstance(value, list | dict) else str(jsonable(value))

    return "; ".join(f"{k}={text(v)}" for k, v in row.items())


def digest_rows(results: Iterable[DqResult]) -> list[dict[str, Any]]:
    """The rows of an alert digest: failing checks, errors first, with a sample of offending rows."""
    failed = sorted((r for r in results if r.failed), key=lambda r: (r.level != "error", r.table_name, r.check_name))
    return [
        {
            "level": r.level,
            "table": r.table_name,
            "month": r.month.isoformat()[:7] if r.month else "",
            "check": r.check_name,
            "observed": r.observed,
            "sample": sample_text(r.sample_rows[0]) if r.sample_rows else "",
        }
        for r in failed
    ]


def alert_failures(
    results: Sequence[DqResult], *, title: str, context: Mapping[str, Any] | None = None,
    note: str = "",
) -> dict[str, bool] | None:
    """Send one digest of the failed checks (severity error if any error failed); None when all passed."""
    from ai_usage.alerts import send_digest

    rows = digest_rows(results)
    if not rows:
        return None
    errors = sum(1 for r in results if r.is_error)
    warnings = len(rows) - errors
    summary = f"{errors} error-level and {warnings} warning-level check(s) failed. {note}".strip()
    log.warning("%s: %s", title, summary)
    return send_digest(title, summary, rows, severity="error" if errors else "warning", context=context)
