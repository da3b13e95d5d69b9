"""Reconciliation on the sandbox's ground truth: every check passes on true data, and each fails — at its
level, with the figures that disagree — when one side is tampered with."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ai_usage import marts
from ai_usage.exceptions import ConfigurationError
from ai_usage.quality import config
from ai_usage.quality.reconciliation import reconcile
from ai_usage.settings import DuckDBConfig
from ai_usage.warehouse.duckdb_backend import DuckDBBackend
from sandbox.org import Organisation
from sandbox.vendors import cursor_truth
from tests._marts_truth import Truth, load_truth, month_of

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def truth() -> Truth:
    return Truth.of(Organisation.generate(seed=5, people=16, days=45))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, truth: Truth) -> Path:
    """Truth + the spend snapshot a run at 02:30 UTC after the last day takes + every mart rebuilt."""
    path = tmp_path_factory.mktemp("recon") / "built.duckdb"
    with DuckDBBackend(DuckDBConfig(path)) as wh:
        load_truth(wh, truth)
        taken = datetime.combine(truth.org.end + timedelta(days=1), time(2, 30), tzinfo=UTC)
        snapshot = cursor_truth.expected_spend(truth.org, taken)
        wh.replace_partitions("raw.cursor_spend", [{**r, "_ingested_at": NOW, "_run_id": "t"} for r in snapshot], None)
        plan = marts.plan_from_conf({"start": truth.org.start.isoformat(), "end": truth.org.end.isoformat()},
                                    today=truth.org.end + timedelta(days=1))
        marts.refresh(wh, plan, run_id="r", now=NOW)
    return path


@pytest.fixture
def wh(tmp_path: Path, template: Path) -> DuckDBBackend:
    shutil.copyfile(template, tmp_path / "wh.duckdb")
    return DuckDBBackend(DuckDBConfig(tmp_path / "wh.duckdb"))


def by_name(results: list) -> dict:
    return {r.check_name: r for r in results}


def test_every_check_passes_on_the_truth(wh: DuckDBBackend, truth: Truth) -> None:
    last, taken = month_of(truth.org.end), truth.org.end + timedelta(days=1)
    results = by_name(reconcile(wh, [last, month_of(taken)]))  # the snapshot may fall on the next month's 1st
    month = last.isoformat()[:7]
    assert {n for n, r in results.items() if r.failed} == set()
    assert {f"allocated_equals_billed:{t}:{month}" for t in ("cursor", "claude_code", "claude_ai")} <= set(results)
    spend = results[f"cursor_spend_matches_usage:cursor:{taken.isoformat()[:7]}"]
    assert spend.details["snapshot_date"] == taken
    assert spend.details["billed_usd"] > 0  # a real comparison, not an empty one
    assert results[f"claude_ai_spend_within_seat_band:claude_ai:{month}"].status == "passed"


def test_an_allocation_off_by_a_cent_is_an_error(wh: DuckDBBackend, truth: Truth) -> None:
    month = month_of(truth.org.end)
    row = wh.query("SELECT * FROM marts.monthly_cost_allocation WHERE month = @m AND tool = 'cursor' "
                   "AND cost_kind = 'usage_billed' ORDER BY amount_usd DESC LIMIT 1", {"m": month})[0]
    rows = [r for r in wh.query("SELECT * FROM marts.monthly_cost_allocation WHERE month = @m", {"m": month})
            if r != row] + [{**row, "amount_usd": row["amount_usd"] + Decimal("0.01")}]
    wh.replace_partitions("marts.monthly_cost_allocation", rows, [month])
    failed = [r for r in reconcile(wh, [month]) if r.failed]
    assert [(r.check_name, r.level) for r in failed] == [
        (f"allocated_equals_billed:cursor:{month.isoformat()[:7]}", "error")]
    assert failed[0].details["difference_usd"] == Decimal("0.01")


def test_a_spend_snapshot_above_the_usage_charges_is_flagged(wh: DuckDBBackend, truth: Truth) -> None:
    snapshot = wh.query("SELECT * FROM raw.cursor_spend")
    top = max(snapshot, key=lambda r: r["spend_usd"])
    wh.replace_partitions("raw.cursor_spend", [
        {**r, "spend_usd": r["spend_usd"] + Decimal("50")} if r is top else r for r in snapshot], None)
    month = snapshot[0]["snapshot_date"].replace(day=1)
    failed = [r for r in reconcile(wh, [month]) if r.failed]
    assert [(r.check_name.split(":")[0], r.level) for r in failed] == [("cursor_spend_matches_usage", "warning")]
    assert failed[0].sample_rows[0]["email"] == top["email"]


def test_estimates_outside_the_tolerance_and_spend_outside_the_band_warn(
    wh: DuckDBBackend, truth: Truth, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AI_USAGE_ESTIMATE_TOLERANCE", "0")      # estimates never equal the bill
    monkeypatch.setenv("AI_USAGE_CLAUDE_AI_SPEND_BAND", "0")    # any spend above the allotment
    failed = {r.check_name.split(":")[0]: r for r in reconcile(wh, [month_of(truth.org.end)]) if r.failed}
    assert set(failed) == {"claude_code_estimates_within_tolerance", "claude_ai_spend_within_seat_band"}
    assert all(r.level == "warning" for r in failed.values())
    assert failed["claude_code_estimates_within_tolerance"].details["difference_usd"] != 0


def test_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.estimate_tolerance() == Decimal("0.05")
    monkeypatch.setenv("AI_USAGE_ESTIMATE_TOLERANCE", "five percent")
    with pytest.raises(ConfigurationError, match="AI_USAGE_ESTIMATE_TOLERANCE"):
        config.estimate_tolerance()
    monkeypatch.setenv("AI_USAGE_CURSOR_SPEND_TOLERANCE", "2")
    with pytest.raises(ConfigurationError, match="between 0 and 1"):
        config.cursor_spend_tolerance()
