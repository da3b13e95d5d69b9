"""The GX step of refresh_marts: validate the touched partitions and the reference tables, record the
results in ops.dq_results, publish Data Docs, and say which months an error-level failure blocks.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ai_usage.quality import suites
from ai_usage.quality.batches import read_batches
from ai_usage.quality.results import DqResult, write_results

log = logging.getLogger(__name__)

DateRange = tuple[date, date]


@dataclass
class ValidationReport:
    results: list[DqResult] = field(default_factory=list)
    data_docs: str | None = None

    @property
    def failed(self) -> list[DqResult]:
        return [r for r in self.results if r.failed]

    def blocked_months(self, months: Iterable[date]) -> list[date]:
        """Months whose refresh an error-level failure blocks: its own month, or every month for a
        failure of a whole table (a reference table is read by every month's marts)."""
        months = sorted(set(months))
        blocked: set[date] = set()
        for r in self.results:
            if not r.is_error or not suites.EXTRAS[r.table_name].blocks:
                continue
            if r.month is None:
                return months
            blocked.add(r.month)
        return [m for m in months if m in blocked]


def validate(
    warehouse: Any,
    tables: Mapping[str, Sequence[DateRange] | None],
    *,
    run_id: str,
    now: datetime,
    publish_docs: bool = True,
) -> ValidationReport:
    """Validate each table's touched ranges (None: the whole table) with its suite; write the results.

    Tables without a suite are skipped. Data Docs go to the archive location (see data_docs.publish).
    """
    from ai_usage.quality.data_docs import publish
    from ai_usage.quality.gx_runner import GxRunner

    report = ValidationReport()
    with tempfile.TemporaryDirectory(prefix="ai_usage_data_docs_") as tmp:
        runner = GxRunner(run_id, Path(tmp) if publish_docs else None)
        for table, ranges in sorted(tables.items()):
            if table not in suites.EXTRAS:
                continue
            warehouse.ensure_tables([table])

            def suite_for(window: DateRange | None, table: str = table) -> suites.Suite:
                return suites.build_suite(table, window, today=now.date())

            for batch in read_batches(warehouse, suite_for, table, None if ranges is None else list(ranges)):
                report.results.extend(runner.validate(batch))
        if publish_docs and report.results:
            runner.build_docs()
            report.data_docs = publish(Path(tmp), run_id)
    if report.data_docs:
        report.results = [
            DqResult(**{**r.__dict__, "details": {**r.details, "data_docs": report.data_docs}}) for r in report.results
        ]
    write_results(warehouse, report.results, run_id=run_id, checked_at=now)
    log.info("validated %d table(s): %d checks, %d failed (%d error-level); Data Docs: %s",
             len(tables), len(report.results), len(report.failed), sum(r.is_error for r in report.results),
             report.data_docs)
    return report
