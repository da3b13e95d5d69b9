"""The manual CSV inbox (ai_usage.inbox) on a real DuckDB warehouse, a real file archive, and a real
inbox on disk or on gs:// (the loopback GCS stub, extended here with the copy and delete calls a move needs)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from ai_usage import inbox, pipeline, settings
from ai_usage.exceptions import ConfigurationError, ContractError
from ai_usage.warehouse import get_warehouse
from tests._gcs_stub import GcsStub

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "include" / "inbox_samples"
CURSOR_VALID = SAMPLES / "cursor" / "daily_usage" / "2026-11-02_cursor_daily_usage.csv"
CURSOR_HOSTILE = SAMPLES / "cursor" / "daily_usage" / "2026-11-04_cursor_daily_usage_hostile.csv"
COST_VALID = SAMPLES / "anthropic" / "cost_report" / "2026-11-02_anthropic_costs.csv"
COST_HOSTILE = SAMPLES / "anthropic" / "cost_report" / "2026-11-04_anthropic_costs_hostile.csv"
NOW = datetime(2026, 11, 6, 3, 0, tzinfo=UTC)
RUN = pipeline.RunInfo(run_id="scheduled__2026-11-06T02:30:00+00:00", dag_id="ingest_cursor", task_id="csv_inbox")
RUN2 = pipeline.RunInfo(run_id="scheduled__2026-11-07T02:30:00+00:00", dag_id="ingest_cursor", task_id="csv_inbox")
CURSOR = "cursor/daily_usage"
COSTS = "anthropic/cost_report"


@pytest.fixture()
def box() -> Path:
    """The test's file inbox root (conftest points AI_USAGE_INBOX under tmp_path)."""
    location = settings.inbox()
    assert isinstance(location, settings.FileLocation)
    return location.path


def drop(root: Path, kind: str, name: str, data: bytes | str | Path) -> Path:
    target = root / kind / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, Path):
        data = data.read_bytes()
    target.write_bytes(data.encode() if isinstance(data, str) else data)
    return target


def query(sql: str) -> list[dict]:
    with get_warehouse() as wh:
        return wh.query(sql)


def table(name: str, order: str) -> list[dict]:
    """A table without its lineage columns (they say when and by which run a row was written)."""
    with get_warehouse() as wh:
        cols = [c for c in wh.contract(name).column_names if c not in ("_ingested_at", "_run_id")]
        return wh.query(f"SELECT {', '.join(cols)} FROM {name} ORDER BY {order}")


def pending(root: Path, kind: str) -> list[str]:
    return sorted(p.name for p in (root / kind).iterdir() if p.is_file())


# --------------------------------------------------------------------------- listing


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown inbox kind 'cursor'; known: \['anthropic/claude_code'"):
        inbox.load_pending("cursor", run=RUN)


def test_listing_skips_partial_hidden_and_filed_away_files(box: Path) -> None:
    for name in ("b.csv", "a.CSV", ".hidden.csv", "c.csv.part", "d.csv.crdownload", "~$lock.csv", "notes.xlsx"):
        drop(box, CURSOR, name, "x")
    drop(box, CURSOR, "processed/2026-11-01/old.csv", "x")
    drop(box, CURSOR, "rejected/bad.csv", "x")
    names = [f.name for f in inbox.Inbox().pending(CURSOR)]
    assert names == ["a.CSV", "b.csv", "notes.xlsx"]  # a non-CSV file is listed, to be rejected with a reason
    assert inbox.Inbox().pending(COSTS) == []


def test_empty_inbox_returns_at_once_without_touching_the_warehouse(_isolated_locations: Path) -> None:
    # No run identity is needed either: nothing is looked up before the listing.
    assert inbox.load_pending(CURSOR) == []
    assert not (_isolated_locations / "warehouse.duckdb").exists()


# --------------------------------------------------------------------------- loading


def csv_oracle(path: Path) -> list[dict]:
    """The sample read independently of the product: csv.DictReader and literal conversions."""
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_valid_file_loads_every_value_of_the_csv_and_is_filed_away(box: Path, _isolated_locations: Path) -> None:
    drop(box, CURSOR, CURSOR_VALID.name, CURSOR_VALID)
    results = inbox.load_pending(CURSOR, run=RUN, now=NOW)

    processed = box / CURSOR / "processed" / "2026-11-06" / CURSOR_VALID.name
    assert results == [{
        "file": CURSOR_VALID.name, "uri": (box / CURSOR / CURSOR_VALID.name).as_uri(), "status": "loaded",
        "sha256": hashlib.sha256(CURSOR_VALID.read_bytes()).hexdigest(), "days": ["2026-11-02", "2026-11-03"],
        "rows_loaded": 6, "rows_quarantined": 0, "rows_superseded": 0, "moved_to": processed.as_uri(), "reason": None,
    }]
    assert processed.read_bytes() == CURSOR_VALID.read_bytes()
    assert pending(box, CURSOR) == []

    loaded = {(str(r["usage_date"]), r["email"]): r for r in table("raw.cursor_daily_usage", "usage_date, email")}
    expected = csv_oracle(CURSOR_VALID)
    assert len(loaded) == len(expected) == 6
    for cells in expected:
        row = loaded[(cells["Date"], cells["Email"].lower())]
        assert row["user_id"] == cells["userId"]
        assert row["is_active"] is (cells["isActive"] == "true")
        assert row["total_lines_added"] == int(cells["totalLinesAdded"])
        assert row["accepted_lines_deleted"] == int(cells["acceptedLinesDeleted"])
        assert row["subscription_included_reqs"] == int(cells["subscriptionIncludedReqs"])
        assert row["bugbot_usages"] == int(cells["bugbotUsages"])
        assert row["most_used_model"] == (cells["mostUsedModel"] or None)
        assert row["tab_most_used_extension"] == (cells["tabMostUsedExtension"] or None)
        assert row["client_version"] == (cells["clientVersion"] or None)
    assert {r["_run_id"] for r in query("SELECT _run_id FROM raw.cursor_daily_usage")} == {RUN.run_id}

    runs = query("SELECT source, endpoint, target_table, status, rows_loaded, rows_quarantined, interval_start, "
                 "interval_end, task_id FROM ops.ingestion_runs")
    assert runs == [{"source": "cursor_csv", "endpoint": "daily_usage", "target_table": "raw.cursor_daily_usage",
                     "status": "success", "rows_loaded": 6, "rows_quarantined": 0,
                     "interval_start": date(2026, 11, 2), "interval_end": date(2026, 11, 3), "task_id": "csv_inbox"}]
    coverage = query("SELECT coverage_date, source, status, row_count FROM ops.source_coverage ORDER BY coverage_date")
    assert [(c["coverage_date"], c["source"], c["row_count"]) for c in coverage] == [
        (date(2026, 11, 2), "cursor_daily_usage", 3), (date(2026, 11, 3), "cursor_daily_usage", 3)]

    # Archived verbatim, with where it came from, before anything parsed it.
    archived = sorted((_isolated_locations / "archive" / "cursor_csv" / "daily_usage").rglob("*.json.gz"))
    assert [p.parent.name for p in archived] == ["2026-11-02"]
    doc = json.loads(gzip.decompress(archived[0].read_bytes()))
    assert doc["response"]["body"] == CURSOR_VALID.read_text(encoding="utf-8")
    assert doc["request"]["url"] == (box / CURSOR / CURSOR_VALID.name).as_uri()
    assert doc["request"]["sha256"] == results[0]["sha256"]


def test_hostile_rows_are_quarantined_with_file_and_row(box: Path) -> None:
    drop(box, CURSOR, CURSOR_HOSTILE.name, CURSOR_HOSTILE)
    [result] = inbox.load_pending(CURSOR, run=RUN, now=NOW)
    assert (result["status"], result["rows_loaded"], result["rows_quarantined"]) == ("loaded", 2, 12)
    rows = query("SELECT record_ref, reason, payload, source, target_table, run_id FROM ops.quarantine")
    by_ref = {r["record_ref"]: r for r in rows}
    prefix = f"daily_usage file {CURSOR_HOSTILE.name} row"
    assert sorted(by_ref) == sorted(f"{prefix} {n}" for n in (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14))
    assert by_ref[f"{prefix} 4"]["reason"] == "totalLinesAdded: '-5' is negative"
    assert json.loads(by_ref[f"{prefix} 4"]["payload"])["User Email"] == "grace.hopper@example.com"
    assert {(r["source"], r["target_table"], r["run_id"]) for r in rows} == {
        ("cursor_csv", "raw.cursor_daily_usage", RUN.run_id)}
    assert [(r["usage_date"], r["email"]) for r in table("raw.cursor_daily_usage", "usage_date")] == [
        (date(2026, 11, 4), "ada.lovelace@example.com"), (date(2026, 11, 5), "katherine.johnson@example.com")]


def test_missing_required_column_rejects_the_file_and_fails_naming_file_and_column(box: Path) -> None:
    drop(box, CURSOR, "a_good.csv", CURSOR_VALID)
    drop(box, CURSOR, "b_no_email.csv", "Date,Name,chatRequests\n2026-11-03,Ada,4\n")
    with pytest.raises(ContractError, match=r"b_no_email\.csv: the header has no required column 'email'"):
        inbox.load_pending(CURSOR, run=RUN, now=NOW)
    # The good file loaded and was filed away; the bad one sits in rejected/ with its reason.
    assert len(query("SELECT * FROM raw.cursor_daily_usage")) == 6
    assert pending(box, CURSOR) == []
    assert (box / CURSOR / "processed" / "2026-11-06" / "a_good.csv").is_file()
    assert (box / CURSOR / "rejected" / "b_no_email.csv").read_text() == "Date,Name,chatRequests\n2026-11-03,Ada,4\n"
    reason = (box / CURSOR / "rejected" / "b_no_email.csv.reason.txt").read_text()
    assert "the header has no required column 'email'" in reason
    assert f"run_id: {RUN.run_id}" in reason


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("report.xlsx", b"PK\x03\x04", r"report\.xlsx: not a \.csv file"),
        ("latin.csv", "Date,Email\n2026-11-03,jos\xe9@example.com\n".encode("latin-1"), r"latin\.csv: not UTF-8"),
        ("header_only.csv", b"Date,Email\n", r"header_only\.csv: no data rows"),
        ("all_bad.csv", b"Date,Email\n03/11/2026,a@example.com\n04/11/2026,b@example.com\n",
         r"all_bad\.csv: none of its 2 rows is valid, e\.g\. file all_bad\.csv row 2: Date: '03/11/2026' is not a date"),
        ("amount.csv", b"date,workspace,description,amount\n2026-11-03,Default Workspace,x,1\n",
         r"amount\.csv: column 'amount' is refused"),
    ],
)
def test_files_that_cannot_be_loaded_are_rejected_with_the_reason(box: Path, name: str, data: bytes,
                                                                  message: str) -> None:
    kind = COSTS if name == "amount.csv" else CURSOR
    drop(box, kind, name, data)
    with pytest.raises(ContractError, match=message):
        inbox.load_pending(kind, run=RUN, now=NOW)
    assert (box / kind / "rejected" / name).read_bytes() == data
    assert (box / kind / "rejected" / f"{name}.reason.txt").is_file()
    assert pending(box, kind) == []


def test_run_task_loads_every_kind_then_fails_a_rejection_without_retries(box: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    drop(box, COSTS, "no_amount.csv", "date,workspace,description\n2026-11-03,Default Workspace,x\n")
    drop(box, "anthropic/claude_code", "ok.csv", "date,email,customer_type,sessions\n2026-11-03,a@example.com,api,2\n")
    with pytest.raises(AirflowFailException, match=r"no_amount\.csv: the header has no required column 'amount_usd'"):
        inbox.run_task(COSTS, "anthropic/claude_code", run=RUN, now=NOW)
    # The kind after the rejection still loaded.
    assert [(r["actor_id"], r["num_sessions"]) for r in query("SELECT actor_id, num_sessions FROM raw.claude_code_usage")] \
        == [("a@example.com", 2)]
    # What a retry would see, and why there is none: an empty inbox, a task that merely skips.
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException, match="inbox empty"):
        inbox.run_task(COSTS, "anthropic/claude_code", run=RUN, now=NOW)


def test_in_a_task_the_run_comes_from_the_context_and_the_asset_event_names_the_days(box: Path) -> None:
    from collections import defaultdict
    from types import SimpleNamespace

    from ai_usage import assets

    drop(box, CURSOR, CURSOR_VALID.name, CURSOR_VALID)
    events: defaultdict = defaultdict(SimpleNamespace)
    context = {
        "ti": SimpleNamespace(dag_id="ingest_cursor", task_id="csv_inbox", try_number=1),
        "dag_run": SimpleNamespace(run_id="manual__2026-11-06T04:00:00+00:00"),
        "task": SimpleNamespace(outlets=[assets.CURSOR_DAILY_USAGE]),
        "outlet_events": events,
    }
    inbox.load_pending(CURSOR, context=context, now=NOW)
    assert events[assets.CURSOR_DAILY_USAGE].extra == {
        "table": "raw.cursor_daily_usage", "start": "2026-11-02", "end": "2026-11-03", "rows": 6}
    assert query("SELECT run_id, dag_id, task_id, try_number FROM ops.ingestion_runs") == [
        {"run_id": "manual__2026-11-06T04:00:00+00:00", "dag_id": "ingest_cursor", "task_id": "csv_inbox",
         "try_number": 1}]
    # Nothing pending: no event detail, so refresh_marts rebuilds nothing for this task.
    quiet: defaultdict = defaultdict(SimpleNamespace)
    assert inbox.load_pending(CURSOR, context={**context, "outlet_events": quiet}, now=NOW) == []
    assert not hasattr(quiet[assets.CURSOR_DAILY_USAGE], "extra")


# --------------------------------------------------------------------------- idempotence and days


def test_redropping_the_same_file_changes_nothing(box: Path) -> None:
    drop(box, CURSOR, CURSOR_HOSTILE.name, CURSOR_HOSTILE)
    inbox.load_pending(CURSOR, run=RUN, now=NOW)
    first = table("raw.cursor_daily_usage", "usage_date, email")
    quarantine = query("SELECT record_ref, reason FROM ops.quarantine ORDER BY record_ref")

    # A task retry before the file moved (same run): same partitions, the quarantine replaced, not doubled.
    drop(box, CURSOR, CURSOR_HOSTILE.name, CURSOR_HOSTILE)
    inbox.load_pending(CURSOR, run=RUN, now=NOW)
    assert table("raw.cursor_daily_usage", "usage_date, email") == first
    assert query("SELECT record_ref, reason FROM ops.quarantine ORDER BY record_ref") == quarantine

    # Dropped again the next day by someone else (a new run): the same rows, nothing loaded twice.
    drop(box, CURSOR, CURSOR_HOSTILE.name, CURSOR_HOSTILE)
    [again] = inbox.load_pending(CURSOR, run=RUN2, now=datetime(2026, 11, 7, 3, 0, tzinfo=UTC))
    assert table("raw.cursor_daily_usage", "usage_date, email") == first
    assert {r["_run_id"] for r in query("SELECT _run_id FROM raw.cursor_daily_usage")} == {RUN2.run_id}
    assert again["moved_to"].endswith(f"processed/2026-11-07/{CURSOR_HOSTILE.name}")
    # Same name, same day: the earlier copy keeps its place, the new one gets its hash.
    filed = sorted(p.name for p in (box / CURSOR / "processed" / "2026-11-06").iterdir())
    digest = hashlib.sha256(CURSOR_HOSTILE.read_bytes()).hexdigest()[:8]
    assert filed == sorted([CURSOR_HOSTILE.name, CURSOR_HOSTILE.name.replace(".csv", f"-{digest}.csv")])


def test_a_file_replaces_exactly_its_days(box: Path) -> None:
    drop(box, CURSOR, "week.csv", "Date,Email,chatRequests\n" + "".join(
        f"2026-11-0{d},{who}@example.com,{d}\n" for d in (1, 2, 3) for who in ("ann", "bob")))
    inbox.load_pending(CURSOR, run=RUN, now=NOW)
    drop(box, CURSOR, "fix.csv", "Date,Email,chatRequests\n2026-11-02,ann@example.com,99\n")
    inbox.load_pending(CURSOR, run=RUN2, now=NOW)
    got = [(str(r["usage_date"]), r["email"], r["chat_requests"]) for r in table("raw.cursor_daily_usage",
                                                                                  "usage_date, email")]
    assert got == [("2026-11-01", "ann@example.com", 1), ("2026-11-01", "bob@example.com", 1),
                   ("2026-11-02", "ann@example.com", 99),   # the whole day is the file's: bob's row is gone
                   ("2026-11-03", "ann@example.com", 3), ("2026-11-03", "bob@example.com", 3)]


def test_when_two_files_share_a_day_the_later_file_owns_it(box: Path) -> None:
    drop(box, CURSOR, "1_first.csv", "Date,Email,chatRequests\n2026-11-01,a@example.com,1\n2026-11-02,a@example.com,1\n"
                                     "2026-11-02,b@example.com,1\n")
    drop(box, CURSOR, "2_second.csv", "Date,Email,chatRequests\n2026-11-02,a@example.com,2\n2026-11-03,a@example.com,2\n")
    first, second = inbox.load_pending(CURSOR, run=RUN, now=NOW)
    assert (first["rows_loaded"], first["rows_superseded"], second["rows_loaded"]) == (1, 2, 2)
    got = [(str(r["usage_date"]), r["email"], r["chat_requests"]) for r in table("raw.cursor_daily_usage",
                                                                                  "usage_date, email")]
    assert got == [("2026-11-01", "a@example.com", 1), ("2026-11-02", "a@example.com", 2),
                   ("2026-11-03", "a@example.com", 2)]
    archived = query("SELECT rows_loaded FROM ops.ingestion_runs")
    assert archived == [{"rows_loaded": 3}]


def test_days_are_utc_whatever_the_machine_time_zone(box: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: the local day is already the 7th
    time.tzset()
    try:
        late = datetime(2026, 11, 6, 23, 30, tzinfo=UTC)
        drop(box, CURSOR, "tz.csv", "Date,Email\n"
             "2026-11-05,a@example.com\n"                   # complete
             "2026-11-06,b@example.com\n"                   # today in UTC: refused
             "2026-11-05T21:00:00-05:00,c@example.com\n"   # 02:00 UTC on the 6th: refused
             "2026-11-05T10:00:00+14:00,d@example.com\n")  # 20:00 UTC on the 4th
        [result] = inbox.load_pending(CURSOR, run=RUN, now=late)
        assert result["days"] == ["2026-11-04", "2026-11-05"]
        assert result["moved_to"].endswith("/processed/2026-11-06/tz.csv")
        got = [(r["usage_date"], r["email"]) for r in table("raw.cursor_daily_usage", "usage_date, email")]
        assert got == [(date(2026, 11, 4), "d@example.com"), (date(2026, 11, 5), "a@example.com")]
        reasons = sorted(r["reason"] for r in query("SELECT reason FROM ops.quarantine"))
        assert reasons == ["Date: 2026-11-06 is not a complete UTC day yet (today is 2026-11-06 UTC)"] * 2
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_file_changed_while_loading_is_left_for_the_next_run(box: Path) -> None:
    path = drop(box, CURSOR, "live.csv", "Date,Email\n2026-11-05,a@example.com\n")
    store = inbox.Inbox()
    [listed] = store.pending(CURSOR)
    path.write_text("Date,Email\n2026-11-05,a@example.com\n2026-11-05,b@example.com\n")  # overwritten meanwhile
    assert store.move_processed(listed, date(2026, 11, 6), "0" * 64) is None
    assert path.is_file() and not (box / CURSOR / "processed").exists()
    [relisted] = store.pending(CURSOR)
    assert store.move_processed(relisted, date(2026, 11, 6), "0" * 64) == (
        box / CURSOR / "processed" / "2026-11-06" / "live.csv").as_uri()
    assert store.read(relisted) is None  # gone: a later read says so instead of failing the task


# --------------------------------------------------------------------------- Anthropic cost files


def seed_workspaces_and_sheet_marks() -> None:
    stamp = datetime(2026, 11, 1, tzinfo=UTC)
    lineage = {"_ingested_at": stamp, "_run_id": "seed"}
    with get_warehouse() as wh:
        wh.ensure_tables(["raw.anthropic_workspaces", "ref.api_key_owners"])
        wh.replace_partitions("raw.anthropic_workspaces", [
            {"snapshot_date": date(2026, 11, 1), "workspace_id": "wrkspc_01ClaudeCode0000000001", "name": "Claude Code",
             **lineage},
            {"snapshot_date": date(2026, 11, 1), "workspace_id": "wrkspc_01ProductBackend00000002",
             "name": "Product Backend", **lineage},
        ], [date(2026, 11, 1)])
        wh.replace_partitions("ref.api_key_owners", [
            {"workspace": "Product Backend", "team": "Platform", "is_developer_tooling": True, **lineage}], None)


def test_cost_files_resolve_workspaces_and_apply_the_platform_rules(box: Path) -> None:
    seed_workspaces_and_sheet_marks()
    drop(box, COSTS, COST_VALID.name, COST_VALID)
    drop(box, COSTS, COST_HOSTILE.name, COST_HOSTILE)
    valid, hostile = inbox.load_pending(COSTS, run=RUN, now=NOW)
    assert (valid["rows_loaded"], hostile["rows_loaded"], hostile["rows_quarantined"]) == (6, 2, 8)
    rows = table("raw.anthropic_costs", "cost_date, workspace_id NULLS FIRST, description")
    got = [(str(r["cost_date"]), r["workspace_name"], r["description"], r["amount_usd"], r["platform"],
            r["platform_rule"]) for r in rows]
    assert got == [
        ("2026-11-02", "Default Workspace", "Web Search Usage", Decimal("1.00"), "api", "default"),
        ("2026-11-02", "Claude Code", "Claude Sonnet 4 Usage - Input Tokens", Decimal("12.3456789"), "claude_code",
         "workspace_name:Claude Code"),
        ("2026-11-02", "Claude Code", "Claude Sonnet 4 Usage - Output Tokens", Decimal("48.10"), "claude_code",
         "workspace_name:Claude Code"),
        ("2026-11-02", "Product Backend", "Claude Haiku 3.5 Usage - Input Tokens", Decimal("0.000000125"),
         "claude_code", "sheet:is_developer_tooling"),
        ("2026-11-03", "Claude Code", "Claude Sonnet 4 Usage - Input Tokens", Decimal("9.99"), "claude_code",
         "workspace_name:Claude Code"),
        ("2026-11-03", "Product Backend", "Code Execution Usage", Decimal("0.05"), "claude_code",
         "sheet:is_developer_tooling"),
        ("2026-11-04", "Default Workspace", "Code Execution Usage", Decimal("0.75"), "api", "default"),
        ("2026-11-04", "Claude Code", "Claude Sonnet 4 Usage - Input Tokens", Decimal("3.50"), "claude_code",
         "workspace_name:Claude Code"),   # resolved from its name through the listing
    ]
    refs = {r["record_ref"]: r["reason"] for r in query("SELECT record_ref, reason FROM ops.quarantine")}
    assert refs[f"cost_report file {COST_HOSTILE.name} row 6"].startswith("workspace: 'Marketing Experiments' is not")


def test_dollar_and_cent_files_store_the_same_exact_numeric(box: Path) -> None:
    figures = [("a", "0.000000001", "0.0000001"), ("b", "1234567890.123456789", "123456789012.3456789"),
               ("c", "0.1", "10"), ("d", "0.2", "20")]
    dollars = "date,workspace_id,description,amount_usd\n" + "".join(
        f"2026-11-01,,{d},{usd}\n" for d, usd, _ in figures)
    cents = "date,workspace_id,description,amount_cents\n" + "".join(
        f"2026-11-02,,{d},{c}\n" for d, _, c in figures)
    drop(box, COSTS, "dollars.csv", dollars)
    drop(box, COSTS, "cents.csv", cents)
    inbox.load_pending(COSTS, run=RUN, now=NOW)
    rows = table("raw.anthropic_costs", "cost_date, description")
    by_day = {d: [(r["description"], r["amount_usd"]) for r in rows if str(r["cost_date"]) == d]
              for d in ("2026-11-01", "2026-11-02")}
    assert by_day["2026-11-01"] == by_day["2026-11-02"] == [(d, Decimal(usd)) for d, usd, _ in figures]
    totals = query("SELECT cost_date, SUM(amount_usd) AS total FROM raw.anthropic_costs GROUP BY 1 ORDER BY 1")
    assert [t["total"] for t in totals] == [Decimal("1234567890.423456790")] * 2  # 0.1 + 0.2 is 0.3, exactly
    raws = {(str(r["cost_date"]), r["description"]): r["amount_cents_raw"] for r in rows}
    assert raws[("2026-11-01", "b")] == raws[("2026-11-02", "b")] == "123456789012.3456789"


# --------------------------------------------------------------------------- gs://


class GcsStubWithMoves(GcsStub):
    """The archive's GCS stub plus what moving an object needs: generations, ``copyTo`` and DELETE with
    ``ifGenerationMatch`` (https://cloud.google.com/storage/docs/json_api/v1/objects/copy, …/delete)."""

    def __init__(self) -> None:
        super().__init__()
        self.generations: dict[tuple[str, str], int] = {}
        stub = self

        def do_delete(handler) -> None:  # type: ignore[no-untyped-def]
            stub._record(handler)
            stub._delete(handler)

        self.server.RequestHandlerClass.do_DELETE = do_delete  # type: ignore[attr-defined]

    def put(self, bucket: str, name: str, data: bytes) -> None:
        with self._lock:
            self.objects[(bucket, name)] = (data, "text/csv")
            self.generations[(bucket, name)] = self.generations.get((bucket, name), 0) + 1

    def _resource(self, bucket: str, name: str, data: bytes, content_type: str) -> dict:  # type: ignore[override]
        resource = GcsStub._resource(bucket, name, data, content_type)
        resource["generation"] = str(self.generations.setdefault((bucket, name), 1))
        return resource

    def _object(self, path: str) -> tuple[str, str]:
        segs = path.split("/")  # ['', 'storage', 'v1', 'b', bucket, 'o', name]
        return unquote(segs[4]), unquote("/".join(segs[6:]))

    def _get(self, h) -> None:  # type: ignore[no-untyped-def]
        parts = urlsplit(h.path)
        wanted = parse_qs(parts.query).get("ifGenerationMatch", [None])[0]
        if wanted is not None:
            key = self._object(parts.path.removeprefix("/download"))
            with self._lock:
                if key in self.objects and str(self.generations.get(key, 1)) != wanted:
                    return self._send_json(h, 412, {"error": {"code": 412, "message": "Precondition Failed"}})
        return super()._get(h)

    def _upload(self, h) -> None:  # type: ignore[no-untyped-def]
        parts = urlsplit(h.path)
        if "/copyTo/" not in parts.path:
            return super()._upload(h)
        h.rfile.read(int(h.headers.get("Content-Length") or 0))
        src_path, dst_path = parts.path.split("/copyTo")
        src, dst = self._object(src_path), self._object("/storage/v1" + dst_path)
        wanted = parse_qs(parts.query).get("sourceGeneration", [None])[0]
        with self._lock:
            found = self.objects.get(src)
            if found is None or (wanted is not None and str(self.generations.get(src, 1)) != wanted):
                return self._send_json(h, 404, {"error": {"code": 404, "message": "No such object"}})
            self.objects[dst] = found
            self.generations[dst] = self.generations.get(dst, 0) + 1
        return self._send_json(h, 200, self._resource(*dst, *found))

    def _delete(self, h) -> None:  # type: ignore[no-untyped-def]
        parts = urlsplit(h.path)
        key = self._object(parts.path)
        wanted = parse_qs(parts.query).get("ifGenerationMatch", [None])[0]
        with self._lock:
            if key not in self.objects:
                return self._send_json(h, 404, {"error": {"code": 404, "message": "No such object"}})
            if wanted is not None and str(self.generations.get(key, 1)) != wanted:
                return self._send_json(h, 412, {"error": {"code": 412, "message": "Precondition Failed"}})
            del self.objects[key]
            self.generations.pop(key, None)
        h.send_response(204)
        h.end_headers()
        return None


@pytest.fixture()
def gcs(monkeypatch: pytest.MonkeyPatch):
    with GcsStubWithMoves() as stub:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", stub.url)
        monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT",
                           json.dumps({"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True}}))
        monkeypatch.setenv("AI_USAGE_INBOX", "gs://ai-usage-inbox/drop")
        yield stub


def test_gcs_inbox_lists_loads_and_files_away(gcs: GcsStubWithMoves) -> None:
    bucket, base = "ai-usage-inbox", "drop/cursor/daily_usage"
    gcs.put(bucket, f"{base}/{CURSOR_VALID.name}", CURSOR_VALID.read_bytes())
    gcs.put(bucket, f"{base}/no_email.csv", b"Date,Name\n2026-11-03,Ada\n")
    gcs.put(bucket, f"{base}/upload.csv.part", b"Date,Email\n")
    gcs.put(bucket, f"{base}/processed/2026-11-01/old.csv", b"x")
    gcs.put(bucket, "drop/anthropic/cost_report/costs.csv", b"x")

    listed = inbox.Inbox().pending(CURSOR)
    assert [(f.name, f.uri) for f in listed] == [
        (CURSOR_VALID.name, f"gs://{bucket}/{base}/{CURSOR_VALID.name}"), ("no_email.csv", f"gs://{bucket}/{base}/no_email.csv")]

    with pytest.raises(ContractError, match=r"no_email\.csv: the header has no required column 'email'"):
        inbox.load_pending(CURSOR, run=RUN, now=NOW)
    names = sorted(n for b, n in gcs.objects if b == bucket)
    assert names == sorted([
        f"{base}/processed/2026-11-06/{CURSOR_VALID.name}", f"{base}/rejected/no_email.csv",
        f"{base}/rejected/no_email.csv.reason.txt", f"{base}/upload.csv.part", f"{base}/processed/2026-11-01/old.csv",
        "drop/anthropic/cost_report/costs.csv"])
    assert gcs.objects[(bucket, f"{base}/processed/2026-11-06/{CURSOR_VALID.name}")][0] == CURSOR_VALID.read_bytes()
    assert b"no required column 'email'" in gcs.objects[(bucket, f"{base}/rejected/no_email.csv.reason.txt")][0]
    assert len(query("SELECT * FROM raw.cursor_daily_usage")) == 6
    assert inbox.load_pending(CURSOR, run=RUN2, now=NOW) == []


def test_gcs_file_replaced_while_loading_is_left_for_the_next_run(gcs: GcsStubWithMoves) -> None:
    name = "drop/cursor/daily_usage/live.csv"
    gcs.put("ai-usage-inbox", name, b"Date,Email\n2026-11-05,a@example.com\n")
    store = inbox.Inbox()
    [listed] = store.pending(CURSOR)
    assert store.read(listed) == b"Date,Email\n2026-11-05,a@example.com\n"
    gcs.put("ai-usage-inbox", name, b"Date,Email\n2026-11-05,b@example.com\n")  # a new generation
    assert store.read(listed) is None   # what was listed is not there any more
    assert store.move_processed(listed, date(2026, 11, 6), "0" * 64) is None
    assert gcs.objects[("ai-usage-inbox", name)][0] == b"Date,Email\n2026-11-05,b@example.com\n"
    [relisted] = store.pending(CURSOR)
    assert relisted.version == "2"
    assert store.move_processed(relisted, date(2026, 11, 6), "0" * 64) == (
        "gs://ai-usage-inbox/drop/cursor/daily_usage/processed/2026-11-06/live.csv")
    assert ("ai-usage-inbox", name) not in gcs.objects
