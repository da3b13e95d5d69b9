"""The GX suites on the sandbox's ground truth: clean data passes; planted bad rows fail the right
expectation at the right level, with sample rows, block the months they cover, reach a real webhook,
and leave ops.dq_results and the Data Docs behind."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ai_usage.quality import suites
from ai_usage.quality.batches import daily_counts, split_by_month
from ai_usage.quality.results import alert_failures
from ai_usage.quality.validation import validate
from ai_usage.settings import DuckDBConfig
from ai_usage.warehouse.duckdb_backend import DuckDBBackend
from sandbox.org import Organisation
from tests._alert_receivers import HttpReceiver
from tests._marts_truth import Truth, load_truth, month_of

RUN_ID = "manual__2026-11-26T00:00:00+00:00"
NOW = datetime.now(UTC)


@pytest.fixture(scope="module", autouse=True)
def _gx_imported() -> None:
    """Import GX once per worker (~7 s); every test of the module reuses it."""
    import great_expectations  # noqa: F401


@pytest.fixture(scope="module")
def truth() -> Truth:
    return Truth.of(Organisation.generate(seed=3, people=14, days=40))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, truth: Truth) -> Path:
    path = tmp_path_factory.mktemp("gx") / "truth.duckdb"
    with DuckDBBackend(DuckDBConfig(path)) as wh:
        load_truth(wh, truth)
    return path


@pytest.fixture
def wh(tmp_path: Path, template: Path) -> DuckDBBackend:
    path = tmp_path / "wh.duckdb"
    shutil.copyfile(template, path)
    return DuckDBBackend(DuckDBConfig(path))


def touched(truth: Truth, *tables: str) -> dict:
    window = ((truth.org.start, truth.org.end),)
    out: dict = {t: window for t in tables}
    out.update({t: None for t in ("ref.people", "ref.api_key_owners", "ref.seat_prices", "ref.attribution")})
    return out


FACTS = ("raw.cursor_daily_usage", "raw.cursor_usage_events", "raw.claude_code_usage", "raw.anthropic_costs",
         "raw.claude_ai_usage", "raw.anthropic_api_keys")


def test_ground_truth_passes_every_error_level_check_and_leaves_results_and_docs(
    wh: DuckDBBackend, truth: Truth, tmp_path: Path,
) -> None:
    report = validate(wh, touched(truth, *FACTS), run_id=RUN_ID, now=NOW)
    months = sorted(split_by_month([(truth.org.start, truth.org.end)]))
    assert [r.check_name for r in report.results if r.is_error] == []
    assert report.blocked_months(months) == []
    tables = {r.table_name for r in report.results}
    assert tables == set(FACTS) | {"ref.people", "ref.api_key_owners", "ref.seat_prices", "ref.attribution"}
    overlap = [r for r in report.results if r.table_name == "ref.attribution" and "overlapping" in r.check_name]
    assert overlap and overlap[0].status == "passed" and overlap[0].details["rows_checked"] > 20
    names = {r.check_name.split("@")[0] for r in report.results}
    assert {"unique:__primary_key", "not_null:usage_date", "in_set:__negative_columns", "between:usage_date",
            "in_set:actor_type", "in_set:currency", "pair_ge:period_end>=period_start",
            "in_set:__no_overlapping_range", "row_count_vs_previous_day"} <= names
    stored = wh.query("SELECT table_name, check_name, level, status, month FROM ops.dq_results WHERE run_id = @r",
                      {"r": RUN_ID})
    assert len(stored) == len(report.results) > 40
    assert {r["month"] for r in stored if r["table_name"] == "raw.anthropic_costs"} == set(months)
    index = tmp_path / "state" / "archive" / "data_docs" / "manual__2026-11-26T00_00_00_00_00" / "index.html"
    assert report.data_docs == index.as_uri() and index.is_file()
    pages = list(index.parent.rglob("*.html"))
    assert len(pages) > 10 and any("anthropic_costs" in p.read_text(errors="replace") for p in pages)


def test_a_negative_amount_fails_blocks_its_month_and_alerts_with_the_row(
    wh: DuckDBBackend, truth: Truth, monkeypatch: pytest.MonkeyPatch,
) -> None:
    day = truth.org.end - timedelta(days=3)
    bad = next(c for c in truth.costs if c["cost_date"] == day)
    rows = [c for c in truth.costs if c["cost_date"] == day and c is not bad]
    rows.append({**bad, "amount_usd": Decimal("-12.345"), "amount_cents_raw": "-1234.5"})
    lineage = {"_ingested_at": NOW, "_run_id": "planted"}
    wh.replace_partitions("raw.anthropic_costs", [{**r, **lineage} for r in rows], [day])

    report = validate(wh, {"raw.anthropic_costs": ((day - timedelta(days=2), day),)}, run_id=RUN_ID, now=NOW,
                      publish_docs=False)
    failed = [r for r in report.results if r.failed]
    assert [(r.table_name, r.check_name, r.level) for r in failed] == [
        ("raw.anthropic_costs", f"in_set:__negative_columns@{day.isoformat()[:7]}", "error")]
    sample = failed[0].sample_rows[0]
    assert sample["amount_usd"] == Decimal("-12.345") and sample["cost_date"] == day
    in_window = [c for c in truth.costs if day - timedelta(days=2) <= c["cost_date"] <= day]
    assert failed[0].observed == f"1 of {len(in_window)} rows unexpected"
    other = month_of(day) - timedelta(days=1)
    assert report.blocked_months([month_of(day), month_of(other)]) == [month_of(day)]

    with HttpReceiver() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps({"conn_type": "slackwebhook", "host": slack.url,
                                                                    "password": "T0/B0/XYZ"}))
        sent = alert_failures(report.results, title="Data quality: GX suites of refresh_marts")
    assert sent == {"slack": True, "email": False}
    text = slack.received[0].body.decode()
    assert "__negative_columns" in text and "-12.345" in text and "raw.anthropic_costs" in text
    assert slack.received[0].json()["text"].startswith(":rotating_light:")  # error severity

    stored = wh.query("SELECT status, sample_rows FROM ops.dq_results WHERE run_id = @r AND status = 'failed'",
                      {"r": RUN_ID})
    assert len(stored) == 1 and Decimal(stored[0]["sample_rows"][0]["amount_usd"]) == Decimal("-12.345")


def test_a_duplicate_key_and_an_overlapping_directory_range_are_errors(wh: DuckDBBackend, truth: Truth) -> None:
    day = truth.org.end - timedelta(days=1)
    row = next(r for r in truth.daily if r["usage_date"] == day)
    lineage = {"_ingested_at": NOW, "_run_id": "planted"}
    wh.append_rows("raw.cursor_daily_usage", [{**row, **lineage}])          # the same (day, email) twice
    person = truth.people[0]
    wh.append_rows("ref.people", [{**person, "team": "Moonshots", **lineage}])  # same e-mail, same range
    report = validate(wh, {"raw.cursor_daily_usage": ((day, day),), "ref.people": None}, run_id=RUN_ID, now=NOW,
                      publish_docs=False)
    errors = {r.check_name for r in report.results if r.is_error}
    assert errors == {f"unique:__primary_key@{day.isoformat()[:7]}", "unique:__primary_key@all",
                      "in_set:__no_overlapping_range@all"}
    # a reference table is read by every month: its failure blocks all of them
    assert report.blocked_months([date(2026, 1, 1), date(2026, 2, 1)]) == [date(2026, 1, 1), date(2026, 2, 1)]


def test_warnings_alert_without_blocking(wh: DuckDBBackend, truth: Truth, monkeypatch: pytest.MonkeyPatch) -> None:
    day = truth.org.end - timedelta(days=1)
    rows = [{**r, "email": r["email"].upper()} if i == 0 else r
            for i, r in enumerate(r for r in truth.daily if r["usage_date"] == day)]
    wh.replace_partitions("raw.cursor_daily_usage", [{**r, "_ingested_at": NOW, "_run_id": "x"} for r in rows], [day])
    report = validate(wh, {"raw.cursor_daily_usage": ((day, day),)}, run_id=RUN_ID, now=NOW, publish_docs=False)
    failed = [r for r in report.results if r.failed]
    assert [(r.check_name.split("@")[0], r.level) for r in failed] == [("regex:email", "warning")]
    assert report.blocked_months([month_of(day)]) == [] and report.data_docs is None
    with HttpReceiver() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps({"conn_type": "slackwebhook", "host": slack.url,
                                                                    "password": "T0/B0/XYZ"}))
        alert_failures(report.results, title="dq")
    assert slack.received[0].json()["text"].startswith(":warning:")


def test_dates_outside_the_window_fail() -> None:
    suite = suites.build_suite("raw.claude_code_usage", (date(2026, 1, 5), date(2026, 1, 9)), today=date(2026, 1, 7))
    window = next(c for c in suite.checks if c.name == "between:usage_date")
    assert window.args == {"min_value": date(2026, 1, 5), "max_value": date(2026, 1, 7)}  # never after today
    assert suite.blocks and not suites.build_suite("raw.cursor_spend").blocks


def test_row_count_band_compares_like_with_like() -> None:
    rows = [{"day": date(2026, 1, d), "row_count": n} for d, n in ((1, 100), (2, 0), (5, 100), (8, 10), (9, 100),
                                                                    (10, 3))]
    daily = daily_counts(rows, (date(2026, 1, 8), date(2026, 1, 11)))
    assert daily["previous_row_count"].tolist()[:3] == [100, 10, 100]  # nearest earlier day with rows
    assert daily["ratio"].isna().tolist() == [False, True, False, True]  # 10 or 3 rows: too few to compare with
    assert daily["ratio"].tolist()[0] == 0.1 and daily["ratio"].tolist()[2] == 0.03
    weekly = daily_counts(rows, (date(2026, 1, 8), date(2026, 1, 9)), weekly=True)
    assert weekly["previous_row_count"].tolist()[0] == 100 and weekly["ratio"].isna().tolist() == [False, True]


def test_negative_columns_names_each_offending_column() -> None:
    import pandas as pd

    frame = pd.DataFrame({"a": [1, -1, None, -2], "b": [Decimal("0"), Decimal("-0.01"), Decimal("1"), None]})
    assert suites.negative_columns(frame, ["a", "b"]).tolist() == ["", "a,b", "", "a"]


def test_data_docs_are_published_to_a_gcs_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ai_usage.quality.data_docs import publish
    from ai_usage.settings import GcsLocation
    from tests._gcs_stub import GcsStub

    site = tmp_path / "site"
    (site / "validations").mkdir(parents=True)
    (site / "static" / "fonts").mkdir(parents=True)
    (site / "index.html").write_text("<html>index</html>")
    (site / "validations" / "raw.cursor_spend.html").write_text("<html>v</html>")
    (site / "static" / "fonts" / "big.otf").write_bytes(b"x" * 1000)
    with GcsStub() as gcs:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
        monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT",
                           json.dumps({"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True}}))
        uri = publish(site, RUN_ID, GcsLocation("ai-usage-archive", "prod/archive"))
    prefix = "prod/archive/data_docs/manual__2026-11-26T00_00_00_00_00"
    assert uri == f"gs://ai-usage-archive/{prefix}/index.html"
    assert sorted(name for _, name in gcs.objects) == [f"{prefix}/index.html",
                                                       f"{prefix}/validations/raw.cursor_spend.html"]
    assert gcs.objects[("ai-usage-archive", f"{prefix}/index.html")] == (b"<html>index</html>", "text/html")
