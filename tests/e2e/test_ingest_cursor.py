"""ingest_cursor end to end: the DAG through Airflow (`dag.test()`), real HTTP to the Cursor simulator,
DuckDB; the warehouse is compared column by column with the synthetic organisation's ground truth."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from ai_usage.warehouse import get_warehouse
from sandbox.airflow_env import DagRunFailed, run_dag
from sandbox.clock import SimClock
from sandbox.org import Organisation
from sandbox.stack import LocalStack
from sandbox.vendors import cursor_truth as truth

pytestmark = pytest.mark.e2e

RAW = ("raw.cursor_daily_usage", "raw.cursor_usage_events", "raw.cursor_members", "raw.cursor_spend")
KEYS = {
    "raw.cursor_daily_usage": ("usage_date", "email"),
    "raw.cursor_usage_events": ("event_date", "event_key"),
    "raw.cursor_members": ("snapshot_date", "email"),
    "raw.cursor_spend": ("snapshot_date", "email"),
}


def table(name: str) -> list[dict]:
    """The table without its lineage columns (they record when and by which run a row was loaded)."""
    with get_warehouse() as wh:
        cols = [c for c in wh.contract(name).column_names if c not in ("_ingested_at", "_run_id")]
        return wh.query(f"SELECT {', '.join(cols)} FROM {name} ORDER BY {', '.join(KEYS[name])}")


def by_key(name: str, rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in KEYS[name]))


@pytest.fixture()
def org() -> Organisation:
    return Organisation.generate(seed=11, people=24, days=100)


@pytest.fixture()
def clock() -> SimClock:
    return SimClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture()
def stack(org: Organisation, clock: SimClock, airflow_db):
    with LocalStack(org, ["cursor"], clock=clock) as s:
        yield s


def expected(name: str, org: Organisation, clock: SimClock, start: date, end: date) -> list[dict]:
    now = clock.now()
    if name == "raw.cursor_daily_usage":
        rows = truth.expected_daily_usage(org, start, end, as_of=now)
    elif name == "raw.cursor_usage_events":
        rows = truth.expected_usage_events(org, start, end)
    elif name == "raw.cursor_members":
        rows = truth.expected_members(org, now.date())
    else:
        rows = truth.expected_spend(org, now)
    return by_key(name, rows)


def test_backfill_equals_ground_truth_and_rerun_changes_nothing(org, clock, stack) -> None:
    end = org.end
    start = end - timedelta(days=29)
    conf = {"start": start.isoformat(), "end": end.isoformat()}
    run_dag("ingest_cursor", conf)

    first = {name: table(name) for name in RAW}
    for name in RAW:
        want = expected(name, org, clock, start, end)
        assert len(first[name]) == len(want) > 0, name
        assert first[name] == want, name  # every column of every row, not just counts
    with get_warehouse() as wh:
        runs = wh.query("SELECT task_id, status, rows_loaded, api_calls FROM ops.ingestion_runs ORDER BY task_id")
        coverage = wh.query(
            "SELECT status, count(*) AS days FROM ops.source_coverage WHERE source = 'cursor_daily_usage' "
            "GROUP BY status ORDER BY status")
    assert {r["task_id"] for r in runs} == {"daily_usage", "usage_events", "members", "spend"}
    assert all(r["status"] == "success" and r["api_calls"] >= 1 for r in runs)
    assert sum(c["days"] for c in coverage) == 30
    # The two most recent days are inside Cursor's revision window.
    assert {c["status"] for c in coverage} == {"final", "provisional"}

    run_dag("ingest_cursor", conf)
    assert {name: table(name) for name in RAW} == first


def test_a_90_day_backfill_in_one_run_spans_several_api_windows(org, clock, stack) -> None:
    end = org.end
    start = end - timedelta(days=89)
    run_dag("ingest_cursor", {"start": start.isoformat(), "end": end.isoformat()})
    got = table("raw.cursor_daily_usage")
    assert got == expected("raw.cursor_daily_usage", org, clock, start, end)
    assert {r["usage_date"] for r in got} == {start + timedelta(days=i) for i in range(90)}
    windows = {(r.json["startDate"], r.json["endDate"]) for r in stack.servers["cursor"].requests(path="/teams/daily-usage-data")}
    day_ms = 86_400_000
    spans = sorted(windows)
    assert len(spans) == 3  # the API allows at most 30 days a request
    assert all((last - first) // day_ms + 1 <= 30 for first, last in spans)
    assert all(nxt[0] - prev[1] == day_ms for prev, nxt in zip(spans, spans[1:], strict=False))  # no gap, no overlap
    first_ms = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() * 1000)
    assert spans[0][0] == first_ms and spans[-1][1] == first_ms + 89 * day_ms


def test_machine_time_zone_does_not_shift_a_date(org, clock, stack, monkeypatch) -> None:
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        end = org.end
        start = end - timedelta(days=6)
        run_dag("ingest_cursor", {"start": start.isoformat(), "end": end.isoformat()})
        assert table("raw.cursor_daily_usage") == expected("raw.cursor_daily_usage", org, clock, start, end)
        assert table("raw.cursor_usage_events") == expected("raw.cursor_usage_events", org, clock, start, end)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_late_revision_is_corrected_by_the_next_run(org, clock, stack) -> None:
    """A scheduled run re-reads its lookback; a day read while provisional is replaced by its final values."""
    run_dag("ingest_cursor")  # scheduled-style: yesterday plus the 3-day lookback
    yesterday = org.end
    before = [r for r in table("raw.cursor_daily_usage") if r["usage_date"] == yesterday]
    final = [r for r in truth.expected_daily_usage(org, yesterday, yesterday, as_of=clock.now() + timedelta(days=5))]
    assert before and by_key("raw.cursor_daily_usage", final) != before  # read while still provisional

    clock.set(clock.now() + timedelta(days=5))  # the vendor has since re-aggregated the day
    run_dag("ingest_cursor")
    after = [r for r in table("raw.cursor_daily_usage") if r["usage_date"] == yesterday]
    assert after == by_key("raw.cursor_daily_usage", final)


def test_a_revoked_key_fails_cleanly_and_writes_nothing(org, clock, stack, caplog) -> None:
    end = org.end
    conf = {"start": (end - timedelta(days=3)).isoformat(), "end": end.isoformat()}
    run_dag("ingest_cursor", conf)
    before = {name: table(name) for name in RAW}

    conn = json.loads(os.environ["AIRFLOW_CONN_CURSOR_ADMIN"])
    revoked = "key_" + "0" * 64
    os.environ["AIRFLOW_CONN_CURSOR_ADMIN"] = json.dumps({**conn, "password": revoked})
    with pytest.raises(DagRunFailed) as failed:
        run_dag("ingest_cursor", {"start": (end - timedelta(days=10)).isoformat(), "end": end.isoformat()})
    assert "daily_usage" in str(failed.value)
    assert {name: table(name) for name in RAW} == before  # nothing half-written, nothing overwritten
    with get_warehouse() as wh:
        errors = wh.query("SELECT error FROM ops.ingestion_runs WHERE status = 'failed'")
    assert errors and all("cursor_admin" in e["error"] and "401" in e["error"] for e in errors)
    assert revoked not in caplog.text and all(revoked not in e["error"] for e in errors)


def test_usage_events_can_be_switched_off(org, clock, stack, monkeypatch) -> None:
    monkeypatch.setenv("AI_USAGE_CURSOR_USAGE_EVENTS", "off")
    end = org.end
    run = run_dag("ingest_cursor", {"start": (end - timedelta(days=2)).isoformat(), "end": end.isoformat()})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["usage_events"] == "skipped" and states["daily_usage"] == "success"
    assert table("raw.cursor_usage_events") == [] and table("raw.cursor_daily_usage") != []
    assert stack.servers["cursor"].requests(path="/teams/filtered-usage-events") == []


def test_the_dag_loads_a_dropped_csv_when_the_api_is_down(org, clock, stack, tmp_path) -> None:
    """Manual fallback through the same DAG: the API task fails (revoked key), csv_inbox still loads the file."""
    import csv
    import shutil
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "include/inbox_samples/cursor/daily_usage"
    sample_file = sample / "2026-11-02_cursor_daily_usage.csv"
    inbox = tmp_path / "state" / "inbox" / "cursor" / "daily_usage"  # AI_USAGE_INBOX (conftest)
    inbox.mkdir(parents=True)
    shutil.copy(sample_file, inbox / sample_file.name)
    with open(sample_file, newline="") as f:
        csv_rows = list(csv.DictReader(f))

    conn = json.loads(os.environ["AIRFLOW_CONN_CURSOR_ADMIN"])
    os.environ["AIRFLOW_CONN_CURSOR_ADMIN"] = json.dumps({**conn, "password": "key_" + "0" * 64})
    end = org.end
    with pytest.raises(DagRunFailed) as failed:
        run_dag("ingest_cursor", {"start": (end - timedelta(days=1)).isoformat(), "end": end.isoformat()})
    assert "daily_usage" in str(failed.value) and "csv_inbox" not in str(failed.value)

    loaded = table("raw.cursor_daily_usage")
    assert sorted((r["usage_date"].isoformat(), r["email"], r["total_lines_added"]) for r in loaded) == sorted(
        (r["Date"], r["Email"].strip().lower(), int(r["totalLinesAdded"])) for r in csv_rows)
    assert not list(inbox.glob("*.csv"))
    assert [p.name for p in (inbox / "processed").glob("*/*.csv")] == [sample_file.name]
