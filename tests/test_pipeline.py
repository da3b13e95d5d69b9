"""The shared ingest loop on a real DuckDB warehouse and a real file archive (pages built in the test)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime

import pytest

from ai_usage import pipeline
from ai_usage.archive import RawArchive
from ai_usage.exceptions import ConfigurationError
from ai_usage.hooks.pages import ApiPage
from ai_usage.sources.common import BadValue, Rejected, norm_email
from ai_usage.warehouse import get_warehouse

D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
RUN = pipeline.RunInfo(run_id="manual__2026-03-04T02:30:00+00:00", dag_id="ingest_test", task_id="members")
NOW = datetime(2026, 3, 4, 2, 30, tzinfo=UTC)


class FakeCounters:
    api_calls = 0
    retries = 0


def page(n: int, members: list[dict], day: date) -> ApiPage:
    body = json.dumps({"teamMembers": members})
    return ApiPage(endpoint="members", n=n, request={"method": "GET", "path": "/teams/members", "params": {}},
                   status=200, text=body, payload=json.loads(body), day=day)


def parse(p: ApiPage):
    """A minimal parser for the test: one row per member, a bad e-mail is rejected."""
    for i, m in enumerate(p.payload["teamMembers"]):
        try:
            email = norm_email(m.get("email"))
        except BadValue as exc:
            yield Rejected(str(exc), m, f"page {p.n} item {i}")
            continue
        yield {"snapshot_date": p.day, "email": email, "name": m.get("name"), "member_id": str(m["id"])}


@pytest.fixture()
def wh():
    warehouse = get_warehouse()
    warehouse.ensure_tables()
    yield warehouse
    warehouse.close()


def stream(pages_fn, dates, counters=None) -> pipeline.Stream:
    return pipeline.Stream(
        source="cursor", endpoint="members", table="raw.cursor_members", pages=pages_fn, parse=parse,
        dates=dates, archive_day=dates[0], counters=counters, lateness_days=1,
    )


def good_pages():
    yield page(1, [{"id": 1, "email": " Ann@Example.com ", "name": "Ann"}, {"id": 2, "email": "bob@example.com"}], D1)
    yield page(2, [{"id": 3, "email": "not-an-email"}, {"id": 4, "email": "cy@example.com"}], D2)


def table(wh, name: str, order: str) -> list[dict]:
    # Lineage timestamps record when a row was (re)loaded; everything else must be identical across re-runs.
    columns = ", ".join(c for c in wh.contract(name).column_names if c != "_ingested_at")
    return wh.query(f"SELECT {columns} FROM {name} ORDER BY {order}")


def test_ingest_loads_rows_quarantines_rejects_and_records_ops(wh) -> None:
    archive = RawArchive()
    result = pipeline.ingest(stream(good_pages, [D1, D2]), run=RUN, warehouse=wh, archive=archive, now=NOW)
    assert (result.rows_loaded, result.rows_quarantined, result.pages) == (3, 1, 2)
    assert result.rows_per_day == {"2026-03-01": 2, "2026-03-02": 1}

    rows = table(wh, "raw.cursor_members", "email")
    assert [(r["email"], r["snapshot_date"], r["_run_id"]) for r in rows] == [
        ("ann@example.com", D1, RUN.run_id), ("bob@example.com", D1, RUN.run_id), ("cy@example.com", D2, RUN.run_id),
    ]
    q = wh.query("SELECT record_ref, reason, payload, target_table FROM ops.quarantine")
    assert len(q) == 1 and q[0]["record_ref"] == "members page 2 item 0"
    assert "not an e-mail" in q[0]["reason"] and json.loads(q[0]["payload"])["email"] == "not-an-email"
    assert q[0]["target_table"] == "raw.cursor_members"

    cov = wh.query("SELECT coverage_date, status, row_count FROM ops.source_coverage ORDER BY coverage_date")
    # now = 2026-03-04: D1 is 3 days old (final with lateness 1), D2 2 days old (final), per lateness_days=1
    assert [(c["coverage_date"], c["status"], c["row_count"]) for c in cov] == [(D1, "final", 2), (D2, "final", 1)]

    runs = wh.query("SELECT status, rows_loaded, rows_quarantined, interval_start, interval_end FROM ops.ingestion_runs")
    assert runs == [{"status": "success", "rows_loaded": 3, "rows_quarantined": 1,
                     "interval_start": D1, "interval_end": D2}]

    # Every response is archived verbatim, with its request.
    uris = archive.list("cursor", "members", D2)
    assert len(uris) == 1
    doc = archive.read(uris[0])
    assert json.loads(doc["response"]["body"])["teamMembers"][0]["email"] == "not-an-email"


def test_rerun_changes_nothing(wh) -> None:
    archive = RawArchive()
    pipeline.ingest(stream(good_pages, [D1, D2]), run=RUN, warehouse=wh, archive=archive, now=NOW)
    first = [table(wh, t, o) for t, o in (("raw.cursor_members", "email"), ("ops.quarantine", "record_ref"),
                                          ("ops.source_coverage", "coverage_date"))]
    pipeline.ingest(stream(good_pages, [D1, D2]), run=RUN, warehouse=wh, archive=archive, now=NOW)
    second = [table(wh, t, o) for t, o in (("raw.cursor_members", "email"), ("ops.quarantine", "record_ref"),
                                           ("ops.source_coverage", "coverage_date"))]
    assert first == second
    assert wh.query("SELECT count(*) AS n FROM ops.ingestion_runs") == [{"n": 1}]


def test_failure_mid_stream_leaves_old_partitions_intact(wh) -> None:
    archive = RawArchive()
    pipeline.ingest(stream(good_pages, [D1, D2]), run=RUN, warehouse=wh, archive=archive, now=NOW)
    before = table(wh, "raw.cursor_members", "email")

    def failing_pages():
        yield page(1, [{"id": 9, "email": "new@example.com"}], D1)
        raise ConnectionError("vendor went away on page 2")

    run2 = pipeline.RunInfo(run_id="manual__2", dag_id="ingest_test", task_id="members")
    with pytest.raises(ConnectionError):
        pipeline.ingest(stream(failing_pages, [D1, D2]), run=run2, warehouse=wh, archive=archive, now=NOW)
    assert table(wh, "raw.cursor_members", "email") == before
    failed = wh.query("SELECT status, error FROM ops.ingestion_runs WHERE run_id = 'manual__2'")
    assert failed[0]["status"] == "failed" and "vendor went away" in failed[0]["error"]
    assert wh.query("SELECT count(*) AS n FROM ops.quarantine WHERE run_id = 'manual__2'") == [{"n": 0}]


def test_rows_outside_the_window_are_not_loaded(wh) -> None:
    def pages():
        yield page(1, [{"id": 1, "email": "a@example.com"}], D1)
        yield page(2, [{"id": 2, "email": "b@example.com"}], D3)  # a day this run does not own

    result = pipeline.ingest(stream(pages, [D1, D2]), run=RUN, warehouse=wh, archive=RawArchive(), now=NOW)
    assert (result.rows_loaded, result.rows_outside_window) == (1, 1)
    cov = wh.query("SELECT coverage_date, row_count FROM ops.source_coverage ORDER BY coverage_date")
    assert cov == [{"coverage_date": D1, "row_count": 1}, {"coverage_date": D2, "row_count": 0}]


def test_counters_are_recorded(wh) -> None:
    counters = FakeCounters()

    def pages():
        counters.api_calls += 3
        counters.retries += 1
        yield page(1, [{"id": 1, "email": "a@example.com"}], D1)

    result = pipeline.ingest(stream(pages, [D1], counters), run=RUN, warehouse=wh, archive=RawArchive(), now=NOW)
    assert (result.api_calls, result.retries) == (3, 1)
    assert wh.query("SELECT api_calls, retries FROM ops.ingestion_runs") == [{"api_calls": 3, "retries": 1}]


def test_coverage_status_lateness() -> None:
    today = date(2026, 3, 10)
    assert pipeline.coverage_status(date(2026, 3, 9), today, 2) == "provisional"
    assert pipeline.coverage_status(date(2026, 3, 8), today, 2) == "provisional"
    assert pipeline.coverage_status(date(2026, 3, 7), today, 2) == "final"


# --------------------------------------------------------------------------- run windows

TODAY = date(2026, 3, 10)


def test_scheduled_window_is_last_complete_day_plus_lookback() -> None:
    w = pipeline.plan_window(datetime(2026, 3, 10, 2, 30, tzinfo=UTC), None, 3, today=TODAY)
    assert (w.start, w.end, w.backfill) == (date(2026, 3, 6), date(2026, 3, 9), False)
    assert len(w.days) == 4


def test_window_uses_utc_not_the_data_interval_offset() -> None:
    from zoneinfo import ZoneInfo

    # 2026-03-10 01:00 in Los Angeles is 09:00 UTC on the 10th: the last complete UTC day is the 9th.
    end = datetime(2026, 3, 10, 1, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert pipeline.plan_window(end, None, 0, today=TODAY).end == date(2026, 3, 9)


def test_backfill_window_from_conf() -> None:
    w = pipeline.plan_window(None, {"start": "2025-03-01", "end": "2026-02-28"}, 3, today=TODAY)
    assert (w.start, w.end, w.backfill, len(w.days)) == (date(2025, 3, 1), date(2026, 2, 28), True, 365)
    assert pipeline.Window.from_dict(w.to_dict()) == w


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"start": "2026-03-01"}, 'needs both "start" and "end"'),
        ({"start": "2026-03-05", "end": "2026-03-01"}, "is after end"),
        ({"start": "2026-03-01", "end": "2026-03-10"}, "not a complete UTC day"),
        ({"start": "03/01/2026", "end": "2026-03-02"}, "is not a date"),
        ({"start": "2020-01-01", "end": "2026-03-01"}, "split it into several runs"),
    ],
)
def test_bad_backfill_conf_is_a_clear_error(conf: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        pipeline.plan_window(None, conf, 3, today=TODAY)


def test_archive_files_are_gzip_json(wh, tmp_path) -> None:
    archive = RawArchive()
    pipeline.ingest(stream(good_pages, [D1, D2]), run=RUN, warehouse=wh, archive=archive, now=NOW)
    uri = archive.list("cursor", "members", D1)[0]
    assert uri.startswith("file://") and "/cursor/members/2026-03-01/" in uri and uri.endswith("-1.json.gz")
    raw = gzip.decompress(open(uri[len("file://"):], "rb").read())
    assert json.loads(raw)["request"]["path"] == "/teams/members"


def test_whole_table_loads_keep_only_the_latest_rejects(wh) -> None:
    """A Sheet tab re-read by a new run must not pile up the same rejected rows run after run."""
    def pages():
        yield page(1, [{"id": 1, "email": "a@example.com"}, {"id": 2, "email": "broken"}], D1)

    def unpartitioned(run_id: str) -> None:
        s = pipeline.Stream(source="sheet", endpoint="tab people", table="raw.cursor_members", pages=pages,
                            parse=parse, dates=None, archive_day=D1)
        pipeline.ingest(s, run=pipeline.RunInfo(run_id=run_id, dag_id="d", task_id="t"), warehouse=wh,
                        archive=RawArchive(), now=NOW)

    unpartitioned("run_1")
    unpartitioned("run_2")
    assert wh.query("SELECT run_id, record_ref FROM ops.quarantine") == [
        {"run_id": "run_2", "record_ref": "tab people page 1 item 1"}]
