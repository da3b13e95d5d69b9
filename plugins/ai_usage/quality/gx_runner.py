"""Run the suites with Great Expectations 1.x, called directly from tasks (no provider: stack notes).

One ephemeral context per task (it writes no files), one pandas datasource, one validation definition
per batch. GX is imported here, inside the call: the import costs ~7 s and must never happen at DAG-parse
time. Data Docs are built once at the end into a local folder (`ai_usage.quality.data_docs` publishes it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ai_usage.quality.batches import Batch
from ai_usage.quality.results import FAILED, PASSED, DqResult
from ai_usage.quality.suites import KEY_COLUMN, NEGATIVE_COLUMN, WARNING, Check, Suite, negative_columns

log = logging.getLogger(__name__)

ROW_COUNT_CHECK = "row_count_vs_previous_day"
SAMPLE_ROWS = 5


_NOISY_LOGGERS = ("great_expectations", "great_expectations._docs_decorators",
                  "great_expectations.data_context.types.base")


def _quiet_gx() -> None:
    """No analytics; GX's INFO chatter (hundreds of lines under Airflow's logging) down to warnings."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _expectation(gx: Any, check: Check, index: int = 0) -> Any:
    # GX returns results in its own order: `meta.check` says which check a result belongs to.
    meta = {"level": check.level, "check": index}
    e = gx.expectations
    if check.kind == "not_null":
        return e.ExpectColumnValuesToNotBeNull(column=check.column, meta=meta)
    if check.kind == "unique":
        return e.ExpectColumnValuesToBeUnique(column=check.column, meta=meta)
    if check.kind == "between":
        return e.ExpectColumnValuesToBeBetween(column=check.column, min_value=check.args.get("min_value"),
                                               max_value=check.args.get("max_value"), meta=meta)
    if check.kind == "in_set":
        return e.ExpectColumnValuesToBeInSet(column=check.column, value_set=list(check.args["value_set"]), meta=meta)
    if check.kind == "regex":
        return e.ExpectColumnValuesToMatchRegex(column=check.column, regex=check.args["regex"], meta=meta)
    if check.kind == "pair_ge":
        return e.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=check.column, column_B=check.args["other"], or_equal=True,
            ignore_row_if="either_value_is_missing", meta=meta)
    raise ValueError(f"unknown check kind {check.kind!r}")


def describe(check: Check, key: Sequence[str]) -> str:
    """The rule in words, for ops.dq_results.expected and the alert."""
    a = check.args
    if check.kind == "not_null":
        return f"{check.column} is not null"
    if check.kind == "unique":
        return f"one row per key ({', '.join(key)})"
    if check.kind == "between":
        lo, hi = a.get("min_value"), a.get("max_value")
        return f"{check.column} >= {lo}" if hi is None else f"{lo} <= {check.column} <= {hi}"
    if check.column == NEGATIVE_COLUMN:
        return f"no counter or money column below 0 ({', '.join(a['columns'])})"
    if check.kind == "in_set":
        return f"{check.column} in {sorted(map(str, a['value_set']))}"
    if check.kind == "regex":
        return f"{check.column} matches {a['regex']}"
    return f"{check.column} >= {a['other']} where both are set"


class GxRunner:
    """Validates batches and collects one `DqResult` per expectation and batch."""

    def __init__(self, run_id: str, docs_dir: Path | None = None):
        _quiet_gx()
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        _quiet_gx()  # again: importing GX may have set its own levels
        self.gx = gx
        self.run_id = run_id
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.datasource = self.context.data_sources.add_pandas("warehouse")
        self.docs_dir = docs_dir
        if docs_dir is not None:
            self.context.add_data_docs_site(site_name="archive", site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            })

    def _run(self, name: str, frame: Any, expectations: Iterable[Any]) -> list[Any]:
        from great_expectations.core.run_identifier import RunIdentifier

        gx = self.gx
        asset = self.datasource.add_dataframe_asset(name)
        definition = asset.add_batch_definition_whole_dataframe("batch")
        suite = self.context.suites.add(gx.ExpectationSuite(name=name, expectations=list(expectations)))
        validation = self.context.validation_definitions.add(gx.ValidationDefinition(name=name, data=definition,
                                                                                    suite=suite))
        result = validation.run(
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_ROWS},
            run_id=RunIdentifier(run_name=self.run_id),
        )
        return list(result.results)

    def validate(self, batch: Batch) -> list[DqResult]:
        """Run the batch's suite (and its row-count band); one result per check."""
        suite = batch.suite
        frame = batch.frame
        for name, derive in suite.derived.items():
            frame[name] = derive(frame).astype(bool) if len(frame) else []
        for check in suite.checks:
            if check.column == NEGATIVE_COLUMN:
                frame[NEGATIVE_COLUMN] = negative_columns(frame, check.args["columns"])
        name = f"{suite.table}@{batch.label}"
        outcomes = self._run(name, frame, (_expectation(self.gx, c, i) for i, c in enumerate(suite.checks)))
        by_check = {int(o.expectation_config.meta["check"]): o for o in outcomes}
        if sorted(by_check) != list(range(len(suite.checks))):
            raise RuntimeError(f"{name}: GX returned {len(outcomes)} results for {len(suite.checks)} checks")
        results = [self._result(batch, check, by_check[i]) for i, check in enumerate(suite.checks)]
        if batch.counts is not None and suite.row_band is not None:
            lo, hi = suite.row_band
            check = Check("between", "ratio", WARNING, {"min_value": lo, "max_value": hi})
            (outcome,) = self._run(f"{name}:row_count", batch.counts, [_expectation(self.gx, check)])
            results.append(self._row_count_result(batch, outcome, lo, hi))
        failed = [r for r in results if r.failed]
        log.info("%s: %d checks on %d rows, %d failed%s", name, len(results), len(frame), len(failed),
                 "".join(f"\n  {r.level}: {r.check_name} — {r.observed}" for r in failed))
        return results

    def _result(self, batch: Batch, check: Check, outcome: Any) -> DqResult:
        suite, frame = batch.suite, batch.frame
        res = dict(outcome.result or {})
        exception = (outcome.exception_info or {}).get("raised_exception") if outcome.exception_info else False
        if exception:
            observed = f"GX could not evaluate: {outcome.exception_info.get('exception_message')}"
        else:
            observed = f"{res.get('unexpected_count', 0)} of {res.get('element_count', len(frame))} rows unexpected"
        details: dict[str, Any] = {"rows_checked": len(frame), "window": list(batch.window) if batch.window else None}
        if res.get("partial_unexpected_list"):
            details["unexpected_values"] = res["partial_unexpected_list"][:SAMPLE_ROWS]
        return DqResult(
            suite=suite.table, table_name=suite.table, month=batch.month,
            check_name=f"{check.name}@{batch.label}", level=check.level,
            status=PASSED if outcome.success and not exception else FAILED,
            observed=observed, expected=describe(check, suite.key), details=details,
            sample_rows=self._samples(frame, res.get("partial_unexpected_index_list") or [], suite, check),
        )

    @staticmethod
    def _samples(frame: Any, index: list[Any], suite: Suite, check: Check) -> list[dict[str, Any]]:
        # The offending values first (an alert cell shows the start of a sample), then the row's key.
        checked = [c for c in (check.column, check.args.get("other")) if c and c != KEY_COLUMN]
        picked = [i for i in index if i in frame.index][:SAMPLE_ROWS]
        samples = []
        for i in picked:
            first = [c for c in str(frame.at[i, NEGATIVE_COLUMN]).split(",") if c] \
                if check.column == NEGATIVE_COLUMN else checked
            columns = [c for c in dict.fromkeys([*first, *suite.key]) if c in frame.columns]
            samples.append({c: frame.at[i, c] for c in columns})
        return samples

    def _row_count_result(self, batch: Batch, outcome: Any, lo: float, hi: float) -> DqResult:
        counts = batch.counts
        assert counts is not None  # only called for a batch with a row-count band (see validate)
        bad = counts[(counts["ratio"].notna()) & ((counts["ratio"] < lo) | (counts["ratio"] > hi))]
        return DqResult(
            suite=batch.suite.table, table_name=batch.suite.table, month=batch.month,
            check_name=f"{ROW_COUNT_CHECK}@{batch.label}", level=WARNING,
            status=PASSED if outcome.success else FAILED,
            observed=f"{len(bad)} of {int(counts['ratio'].notna().sum())} days outside the band",
            expected=f"{lo} <= rows / previous day's rows <= {hi}",
            details={"days": counts.to_dict("records")},
            sample_rows=bad.head(SAMPLE_ROWS).to_dict("records"),
        )

    def build_docs(self) -> Path | None:
        """Render Data Docs for every validation of this runner into `docs_dir`."""
        if self.docs_dir is None:
            return None
        self.context.build_data_docs(site_names=["archive"])
        return self.docs_dir / "index.html"
