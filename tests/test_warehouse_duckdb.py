"""The DuckDB backend: DDL from contracts, atomic and validated writes, queries, inventory, locking.

Most tests use small contracts of their own (an include/ folder under tmp_path, via AI_USAGE_INCLUDE);
one creates every real contract of include/schemas.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ai_usage.exceptions import ContractError, WarehouseError
from ai_usage.paths import schemas_dir
from ai_usage.settings import DuckDBConfig
from ai_usage.warehouse import get_warehouse
from ai_usage.warehouse.contracts import Column, TableContract, load_contracts
from ai_usage.warehouse.duckdb_backend import DuckDBBackend

REPO_INCLUDE = Path(__file__).resolve().parents[1] / "include"


def field(name: str, type_: str, mode: str = "NULLABLE", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "mode": mode, "description": f"{name} column", **extra}


EVENTS = {
    "description": "Test events, one partition per day.",
    "timePartitioning": {"type": "DAY", "field": "event_date"},
    "schema": {"fields": [
        field("event_date", "DATE", "REQUIRED"),
        field("email", "STRING", "REQUIRED"),
        field("n", "INT64"),
        field("amount_usd", "NUMERIC"),
        field("rate", "NUMERIC", precision="10", scale="4"),
        field("big_usd", "BIGNUMERIC"),
        field("ratio", "FLOAT64"),
        field("ok", "BOOL"),
        field("at", "TIMESTAMP"),
        field("civil", "DATETIME"),
        field("payload", "JSON"),
        field("blob", "BYTES"),
        field("tags", "STRING", "REPEATED"),
        field("models", "RECORD", "REPEATED", fields=[
            field("model", "STRING", "REQUIRED"),
            field("tokens", "INT64"),
            field("cost_usd", "NUMERIC"),
        ]),
        field("owner", "RECORD", fields=[field("team", "STRING", "REQUIRED"), field("since", "DATE")]),
    ]},
}
RUNS = {
    "description": "Test runs, unpartitioned.",
    "schema": {"fields": [
        field("run_id", "STRING", "REQUIRED"),
        field("task_id", "STRING", "REQUIRED"),
        field("status", "STRING"),
        field("started_at", "TIMESTAMP"),
    ]},
}
HITS = {
    "description": "Partitioned by a TIMESTAMP: partitions are UTC days.",
    "timePartitioning": {"type": "DAY", "field": "hit_at"},
    "schema": {"fields": [field("hit_at", "TIMESTAMP", "REQUIRED"), field("path", "STRING")]},
}
BASE = {"raw.events": EVENTS, "ops.runs": RUNS, "raw.hits": HITS}


def write_include(root: Path, contracts: dict[str, dict[str, Any]], sql: dict[str, str] | None = None) -> Path:
    """An include/ folder with the given contracts (and SQL files); each call needs a fresh `root`."""
    for name, doc in contracts.items():
        dataset, table = name.split(".")
        path = root / "schemas" / dataset / f"{table}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc))
    for rel, text in (sql or {}).items():
        path = root / "sql" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "sql").mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture
def include(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_include(tmp_path / "include", BASE, {
        "raw/select_events_between.sql": "-- Events of a date range.\n"
                                         "SELECT event_date, email, n FROM raw.events\n"
                                         "WHERE event_date BETWEEN @start_date AND @end_date ORDER BY event_date, email\n",
    })
    monkeypatch.setenv("AI_USAGE_INCLUDE", str(root))
    return root


@pytest.fixture
def wh(include: Path, tmp_path: Path) -> Iterator[DuckDBBackend]:
    backend = DuckDBBackend(DuckDBConfig(tmp_path / "wh" / "warehouse.duckdb"))
    backend.ensure_tables()
    yield backend
    backend.close()


NOW = datetime(2024, 5, 2, 8, 30, tzinfo=UTC)


def event(day: date, email: str, **values: Any) -> dict[str, Any]:
    return {"event_date": day, "email": email, **values}


def table_rows(wh: DuckDBBackend, table: str, order: str) -> list[tuple[Any, ...]]:
    return wh.connection.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


# --------------------------------------------------------------------------- DDL


def test_tables_are_created_with_wide_exact_types(wh: DuckDBBackend) -> None:
    columns = wh.connection.execute(
        "SELECT column_name, data_type, is_nullable, comment FROM duckdb_columns() "
        "WHERE schema_name = 'raw' AND table_name = 'events' ORDER BY column_index"
    ).fetchall()
    assert [(c[0], c[1], c[2]) for c in columns] == [
        ("event_date", "DATE", False),
        ("email", "VARCHAR", False),
        ("n", "BIGINT", True),
        ("amount_usd", "DECIMAL(38,9)", True),
        ("rate", "DECIMAL(38,9)", True),        # declared NUMERIC(10,4): stored at least as wide
        ("big_usd", "DECIMAL(38,9)", True),
        ("ratio", "DOUBLE", True),
        ("ok", "BOOLEAN", True),
        ("at", "TIMESTAMP WITH TIME ZONE", True),
        ("civil", "TIMESTAMP", True),
        ("payload", "JSON", True),
        ("blob", "BLOB", True),
        ("tags", "VARCHAR[]", True),
        ("models", "STRUCT(model VARCHAR, tokens BIGINT, cost_usd DECIMAL(38,9))[]", True),
        ("owner", "STRUCT(team VARCHAR, since DATE)", True),
    ]
    assert columns[1][3] == "email column"
    schemas = {r[0] for r in wh.connection.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()}
    assert {"raw", "ops"} <= schemas
    assert wh.connection.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)


def test_ensure_tables_is_idempotent_and_selective(wh: DuckDBBackend) -> None:
    changes = wh.ensure_tables()
    assert {(c.table, c.action) for c in changes} == {
        ("raw.events", "unchanged"), ("ops.runs", "unchanged"), ("raw.hits", "unchanged")
    }
    assert [c.table for c in wh.ensure_tables(["ops.runs"])] == ["ops.runs"]
    with pytest.raises(ContractError, match="no table contract"):
        wh.ensure_tables(["raw.nope"])


def _evolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, doc: dict[str, Any]) -> None:
    root = write_include(tmp_path / f"include_{name}_{time.monotonic_ns()}", {**BASE, name: doc})
    monkeypatch.setenv("AI_USAGE_INCLUDE", str(root))


def test_new_nullable_column_is_added_and_data_kept(
    wh: DuckDBBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh.append_rows("ops.runs", [{"run_id": "r1", "task_id": "t"}])
    grown = {**RUNS, "schema": {"fields": [*RUNS["schema"]["fields"], field("rows_loaded", "INT64")]}}
    _evolve(tmp_path, monkeypatch, "ops.runs", grown)
    changes = {c.table: c for c in wh.ensure_tables()}
    assert changes["ops.runs"].action == "columns_added"
    assert changes["ops.runs"].columns_added == ("rows_loaded",)
    assert wh.query("SELECT run_id, rows_loaded FROM ops.runs") == [{"run_id": "r1", "rows_loaded": None}]
    assert wh.ensure_tables(["ops.runs"])[0].action == "unchanged"


def test_new_required_column_only_on_an_empty_table(
    wh: DuckDBBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grown = {**RUNS, "schema": {"fields": [*RUNS["schema"]["fields"], field("dag_id", "STRING", "REQUIRED")]}}
    _evolve(tmp_path, monkeypatch, "ops.runs", grown)
    assert wh.ensure_tables(["ops.runs"])[0].columns_added == ("dag_id",)     # empty: fine, NOT NULL
    with pytest.raises(ContractError, match="REQUIRED"):
        wh.append_rows("ops.runs", [{"run_id": "r1", "task_id": "t"}])
    wh.append_rows("ops.runs", [{"run_id": "r1", "task_id": "t", "dag_id": "d"}])
    again = {**grown, "schema": {"fields": [*grown["schema"]["fields"], field("pool", "STRING", "REQUIRED")]}}
    _evolve(tmp_path, monkeypatch, "ops.runs", again)
    with pytest.raises(ContractError, match="'pool' is REQUIRED but the table already has 1 rows"):
        wh.ensure_tables(["ops.runs"])
    assert [r[0] for r in wh.connection.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'runs'").fetchall()] == \
        ["run_id", "task_id", "status", "started_at", "dag_id"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda fields: [f if f["name"] != "status" else field("status", "INT64") for f in fields], "type change"),
        (lambda fields: [f if f["name"] != "status" else field("status", "STRING", "REQUIRED") for f in fields],
         "mode change"),
        (lambda fields: [f for f in fields if f["name"] != "status"], "no longer has"),
    ],
)
def test_other_drift_is_refused_before_anything_changes(
    wh: DuckDBBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: Any, message: str
) -> None:
    doc = {**RUNS, "schema": {"fields": change(RUNS["schema"]["fields"])}}
    added = {"description": "Another table.", "schema": {"fields": [field("k", "STRING")]}}
    root = write_include(tmp_path / f"drift_{time.monotonic_ns()}", {**BASE, "ops.runs": doc, "ops.aaa_new": added})
    monkeypatch.setenv("AI_USAGE_INCLUDE", str(root))
    with pytest.raises(ContractError, match=message):
        wh.ensure_tables()
    # Checked first, changed after: the new table of the same call was not created either.
    assert ("ops", "aaa_new") not in {
        (r[0], r[1]) for r in wh.connection.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
    }


# --------------------------------------------------------------------------- writes


def test_replace_partitions_replaces_only_the_given_days(wh: DuckDBBackend) -> None:
    d1, d2, d3 = date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)
    assert wh.replace_partitions("raw.events", [event(d1, "a"), event(d2, "a"), event(d2, "b")], [d1, d2]) == 3
    assert wh.replace_partitions("raw.events", [[event(d2, "c", n=7)], [event(d3, "c")]], [d2, d3]) == 2
    assert table_rows(wh, "raw.events", "event_date, email") == [
        (d1, "a", *[None] * 10, [], [], None),
        (d2, "c", 7, *[None] * 9, [], [], None),
        (d3, "c", *[None] * 10, [], [], None),
    ]
    # Idempotent: the same call again yields the same table.
    before = table_rows(wh, "raw.events", "event_date, email")
    wh.replace_partitions("raw.events", [[event(d2, "c", n=7)], [event(d3, "c")]], [d2, d3])
    assert table_rows(wh, "raw.events", "event_date, email") == before
    # Emptying a day: no rows for it.
    assert wh.replace_partitions("raw.events", [], [d3]) == 0
    assert [r[0] for r in table_rows(wh, "raw.events", "event_date")] == [d1, d2]


def test_rows_pages_and_generators_are_all_accepted(wh: DuckDBBackend) -> None:
    day = date(2024, 5, 1)

    def mixed() -> Iterator[Any]:
        yield event(day, "a")
        yield [event(day, "b"), event(day, "c")]
        yield (event(day, "d"),)
        yield event(day, "e")

    assert wh.replace_partitions("raw.events", mixed(), [day]) == 5
    assert [r[1] for r in table_rows(wh, "raw.events", "email")] == ["a", "b", "c", "d", "e"]
    with pytest.raises(ContractError, match="dicts or pages"):
        wh.append_rows("raw.events", ["not a row"])


def test_every_type_round_trips_exactly(wh: DuckDBBackend) -> None:
    day = date(2024, 5, 1)
    la = timezone(timedelta(hours=-7))
    row = event(
        day, "a@x.com", n=2**62, amount_usd=Decimal("12345678901234567890.123456789"), rate=Decimal("1.2345"),
        big_usd=Decimal("-0.000000001"), ratio=0.1, ok=False, at=datetime(2024, 5, 1, 20, 0, tzinfo=la),
        civil=datetime(2024, 5, 1, 20, 0), payload={"cost": Decimal("0.10"), "day": day, "list": [1, "x", None]},
        blob=b"\x00\xff", tags=["x", "y"],
        models=[{"model": "sonnet", "tokens": 3, "cost_usd": Decimal("0.000000001")}, {"model": "opus"}],
        owner={"team": "data", "since": date(2020, 1, 1)},
    )
    wh.replace_partitions("raw.events", [row], [day])
    out = wh.query("SELECT * FROM raw.events")
    assert out == [{
        "event_date": day, "email": "a@x.com", "n": 2**62,
        "amount_usd": Decimal("12345678901234567890.123456789"), "rate": Decimal("1.2345"),
        "big_usd": Decimal("-0.000000001"), "ratio": 0.1, "ok": False,
        "at": datetime(2024, 5, 2, 3, 0, tzinfo=UTC), "civil": datetime(2024, 5, 1, 20, 0),
        "payload": {"cost": "0.10", "day": "2024-05-01", "list": [1, "x", None]},
        "blob": b"\x00\xff", "tags": ["x", "y"],
        "models": [{"model": "sonnet", "tokens": 3, "cost_usd": Decimal("0.000000001")},
                   {"model": "opus", "tokens": None, "cost_usd": None}],
        "owner": {"team": "data", "since": date(2020, 1, 1)},
    }]
    assert out[0]["at"].utcoffset() == timedelta(0)
    # Money sums exactly, in SQL as well.
    assert wh.query("SELECT SUM(m.cost_usd) AS s FROM raw.events, UNNEST(models) AS m") == [
        {"s": Decimal("0.000000001")}
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"colour": "red"}, r"raw.events row 2: unknown column\(s\) \['colour'\]"),
        ({"email": None}, "row 2, column email: REQUIRED"),
        ({"amount_usd": Decimal("0.0000000001")}, "column amount_usd: .* does not fit NUMERIC"),
        ({"rate": Decimal("1.23456")}, "column rate: .* does not fit NUMERIC\\(10,4\\)"),
        ({"amount_usd": 0.1}, "floats are refused"),
        ({"n": 1.5}, "INT64 column got float"),
        ({"event_date": datetime(2024, 5, 1, 23, 0)}, "DATE column got datetime"),
        ({"at": datetime(2024, 5, 1, 23, 0)}, "naive"),
        ({"civil": datetime(2024, 5, 1, 23, 0, tzinfo=UTC)}, r"naive \(civil\)"),
        ({"n": 2**63}, "does not fit INT64"),
        ({"ok": 1}, "BOOL column got int"),
        ({"models": [{"model": None}]}, r"column models\[\].model: REQUIRED"),
        ({"models": [{"model": "m", "price": 1}]}, r"models\[\]: unknown column\(s\) \['price'\]"),
        ({"tags": ["a", None]}, "cannot hold NULL"),
        ({"tags": "a"}, "needs a list"),
        ({"owner": {"since": date(2020, 1, 1)}}, "column owner.team: REQUIRED"),
        ({"payload": {"x": object()}}, "not JSON-encodable"),
        ({"event_date": date(2024, 5, 9)}, "outside the partitions being replaced"),
    ],
)
def test_bad_rows_are_refused_and_nothing_changes(wh: DuckDBBackend, bad: dict[str, Any], message: str) -> None:
    day = date(2024, 5, 1)
    wh.replace_partitions("raw.events", [event(day, "old")], [day])
    with pytest.raises(ContractError, match=message):
        wh.replace_partitions("raw.events", [event(day, "new"), {**event(day, "bad"), **bad}], [day])
    assert [r[1] for r in table_rows(wh, "raw.events", "email")] == ["old"]


def test_failure_inside_the_rows_iterator_rolls_back(wh: DuckDBBackend, tmp_path: Path) -> None:
    day = date(2024, 5, 1)
    wh.replace_partitions("raw.events", [event(day, "old")], [day])

    def pages() -> Iterator[list[dict[str, Any]]]:
        for i in range(5):
            yield [event(day, f"p{i}-{j}") for j in range(6_000)]
        raise RuntimeError("vendor API went away")

    with pytest.raises(RuntimeError, match="went away"):
        wh.replace_partitions("raw.events", pages(), [day])
    assert [r[1] for r in table_rows(wh, "raw.events", "email")] == ["old"]
    assert not list((tmp_path / "wh").glob(".ai_usage_staging_*"))    # staged pages cleaned up


def test_a_database_error_mid_write_rolls_back_the_delete(wh: DuckDBBackend) -> None:
    """A constraint only DuckDB knows (added behind the contract's back) fails the INSERT after the DELETE."""
    wh.connection.execute("DROP TABLE ops.runs")
    wh.connection.execute(
        "CREATE TABLE ops.runs (run_id VARCHAR NOT NULL, task_id VARCHAR NOT NULL CHECK (task_id <> 'boom'), "
        "status VARCHAR, started_at TIMESTAMPTZ)"
    )
    wh.replace_where("ops.runs", [{"run_id": "r1", "task_id": "a"}], {"run_id": ["r1"]})
    many = [{"run_id": "r1", "task_id": f"t{i}"} for i in range(25_000)] + [{"run_id": "r1", "task_id": "boom"}]
    with pytest.raises(WarehouseError, match="CHECK"):
        wh.replace_where("ops.runs", many, {"run_id": ["r1"]})
    assert wh.query("SELECT run_id, task_id FROM ops.runs") == [{"run_id": "r1", "task_id": "a"}]


def test_replace_where_deletes_by_key_and_requires_it_on_rows(wh: DuckDBBackend) -> None:
    wh.append_rows("ops.runs", [{"run_id": r, "task_id": t, "status": "old"} for r in ("r1", "r2") for t in ("a", "b")])
    n = wh.replace_where("ops.runs", [{"run_id": "r1", "task_id": "a", "status": "new"}],
                         {"run_id": ["r1"], "task_id": ["a", "zzz"]})
    assert n == 1
    assert [(r["run_id"], r["task_id"], r["status"]) for r in wh.query(
        "SELECT * FROM ops.runs ORDER BY run_id, task_id")] == [
        ("r1", "a", "new"), ("r1", "b", "old"), ("r2", "a", "old"), ("r2", "b", "old")
    ]
    with pytest.raises(ContractError, match="run_id='r3' is not among the key values"):
        wh.replace_where("ops.runs", [{"run_id": "r3", "task_id": "a"}], {"run_id": ["r1"]})
    with pytest.raises(ContractError, match="no column"):
        wh.replace_where("ops.runs", [], {"nope": ["x"]})
    with pytest.raises(ContractError, match="needs a list"):
        wh.replace_where("ops.runs", [], {"run_id": "r1"})


def test_append_rows_is_all_or_nothing(wh: DuckDBBackend) -> None:
    rows = [{"run_id": f"r{i}", "task_id": "t"} for i in range(15_000)]
    assert wh.append_rows("ops.runs", rows) == 15_000
    with pytest.raises(ContractError, match="row 12001"):
        wh.append_rows("ops.runs", [*rows[:12_000], {"run_id": "x"}])
    assert wh.query("SELECT COUNT(*) AS n FROM ops.runs") == [{"n": 15_000}]


def test_replace_whole_table_and_unpartitioned_rules(wh: DuckDBBackend) -> None:
    wh.append_rows("ops.runs", [{"run_id": "r1", "task_id": "t"}])
    assert wh.replace_partitions("ops.runs", [{"run_id": "r2", "task_id": "t"}], None) == 1
    assert wh.query("SELECT run_id FROM ops.runs") == [{"run_id": "r2"}]
    with pytest.raises(ContractError, match="not partitioned"):
        wh.replace_partitions("ops.runs", [], [date(2024, 5, 1)])
    with pytest.raises(ContractError, match="datetime.date"):
        wh.replace_partitions("raw.events", [], [datetime(2024, 5, 1)])


def test_timestamp_partitions_are_utc_days_whatever_the_machine_zone(
    wh: DuckDBBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")     # UTC+14: any local-time leak shows
    time.tzset()
    try:
        est = timezone(timedelta(hours=-5))
        late = datetime(2024, 5, 1, 22, 30, tzinfo=est)          # 2024-05-02 03:30 UTC
        early = datetime(2024, 5, 2, 0, 10, tzinfo=UTC)
        with pytest.raises(ContractError, match="outside the partitions"):
            wh.replace_partitions("raw.hits", [{"hit_at": late}], [date(2024, 5, 1)])
        assert wh.replace_partitions("raw.hits", [{"hit_at": late}, {"hit_at": early}], [date(2024, 5, 2)]) == 2
        assert wh.query("SELECT DATE(hit_at) AS d, COUNT(*) AS n FROM raw.hits GROUP BY d") == [
            {"d": date(2024, 5, 2), "n": 2}
        ]
        before = datetime.now(UTC).date()
        today = wh.query("SELECT CURRENT_DATE() AS today")[0]["today"]
        assert today in {before, datetime.now(UTC).date()}     # UTC's day, not Kiritimati's
        wh.replace_partitions("raw.hits", [], [date(2024, 5, 2)])
        assert wh.query("SELECT COUNT(*) AS n FROM raw.hits") == [{"n": 0}]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# --------------------------------------------------------------------------- reads


def test_query_params_dml_and_sql_files(wh: DuckDBBackend) -> None:
    days = [date(2024, 5, d) for d in (1, 2, 3)]
    wh.replace_partitions("raw.events", [event(d, "a", n=d.day) for d in days], days)
    out = wh.run_sql_file("raw/select_events_between.sql", {"start_date": days[1], "end_date": days[2], "unused": 1})
    assert out == [{"event_date": days[1], "email": "a", "n": 2}, {"event_date": days[2], "email": "a", "n": 3}]
    with pytest.raises(WarehouseError, match="@end_date"):
        wh.run_sql_file("raw/select_events_between.sql", {"start_date": days[0]})
    assert wh.query("UPDATE raw.events SET n = n * 10 WHERE event_date = @d", {"d": days[0]}) == []
    assert wh.query("SELECT SUM(n) AS s, DATE_TRUNC(MIN(event_date), MONTH) AS m FROM raw.events") == [
        {"s": 15, "m": date(2024, 5, 1)}
    ]
    with pytest.raises(WarehouseError, match="not found"):
        wh.run_sql_file("raw/nope.sql")
    with pytest.raises(WarehouseError, match="DuckDB failed"):
        wh.query("SELECT no_such_column FROM raw.events")


def test_inventory(wh: DuckDBBackend) -> None:
    days = [date(2024, 5, 1), date(2024, 5, 3)]
    wh.replace_partitions("raw.events", [event(days[0], "a"), event(days[0], "b"), event(days[1], "a")], days)
    wh.append_rows("ops.runs", [{"run_id": "r", "task_id": "t"}])
    wh.connection.execute("DROP TABLE raw.hits")
    inventory = {i.table: i for i in wh.inventory()}
    assert set(inventory) == {"raw.events", "ops.runs"}          # a missing table is skipped
    ev = inventory["raw.events"]
    assert (ev.rows, ev.partition_field, ev.min_date, ev.max_date, ev.partitions) == (3, "event_date", *days, 2)
    runs = inventory["ops.runs"]
    assert (runs.rows, runs.partition_field, runs.min_date, runs.partitions) == (1, None, None, None)


def test_read_only_backend(wh: DuckDBBackend, tmp_path: Path) -> None:
    day = date(2024, 5, 1)
    wh.replace_partitions("raw.events", [event(day, "a")], [day])
    wh.close()
    with DuckDBBackend(wh.config, read_only=True) as ro:
        assert ro.query("SELECT email FROM raw.events") == [{"email": "a"}]
        assert [i.rows for i in ro.inventory() if i.table == "raw.events"] == [1]
        with pytest.raises(WarehouseError, match="read-only"):
            ro.append_rows("ops.runs", [{"run_id": "r", "task_id": "t"}])
        with pytest.raises(WarehouseError, match="read-only"):
            ro.ensure_tables()
    with pytest.raises(WarehouseError, match="create it first"):
        DuckDBBackend(DuckDBConfig(tmp_path / "missing.duckdb"), read_only=True).query("SELECT 1 AS x")


def _hold_file(path: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
         "time.sleep(float(sys.argv[2])); c.close()",
         str(path), str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    return holder


def test_a_locked_file_is_waited_for_then_fails_naming_the_lock(wh: DuckDBBackend) -> None:
    wh.close()
    holder = _hold_file(wh.path, 60)
    try:
        with pytest.raises(WarehouseError, match="one writing process per file; waited 1 s"):
            DuckDBBackend(wh.config, lock_timeout_s=1).query("SELECT 1 AS x")
    finally:
        holder.kill()
        holder.wait()


def test_a_write_waits_for_another_process_to_release_the_file(wh: DuckDBBackend) -> None:
    """Parallel tasks are separate processes: the second writer waits instead of failing."""
    wh.close()
    holder = _hold_file(wh.path, 1.5)
    try:
        assert DuckDBBackend(wh.config, lock_timeout_s=60).query("SELECT 1 AS x") == [{"x": 1}]
    finally:
        holder.wait()


def test_the_file_is_released_between_operations(wh: DuckDBBackend) -> None:
    """A backend kept open for a whole task must not block other processes between its operations."""
    wh.query("SELECT 1 AS x")
    probe = subprocess.run(
        [sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).close(); print('opened')",
         str(wh.path)],
        capture_output=True, text=True, timeout=60,
    )
    assert probe.stdout.strip() == "opened", probe.stderr


def test_deferred_ddl_waits_for_the_first_write_and_never_for_the_file(include: Path, tmp_path: Path) -> None:
    """A task about to extract defers its DDL: nothing is opened (or waited for) until it writes."""
    path = tmp_path / "wh" / "warehouse.duckdb"
    path.parent.mkdir()
    backend = DuckDBBackend(DuckDBConfig(path), lock_timeout_s=1)
    holder = _hold_turn(path)  # another task has the warehouse: an immediate DDL would time out
    try:
        assert backend.ensure_tables(["raw.events", "ops.runs"], defer=True) == []
        with pytest.raises(ContractError):
            backend.ensure_tables(["raw.nope"], defer=True)  # an unknown table fails at once, not at the write
        with pytest.raises(WarehouseError, match="kept by another process"):
            backend.ensure_tables(["raw.events"])
    finally:
        _stop(holder)
    assert not path.exists()
    backend.replace_partitions("raw.events", [event(date(2024, 5, 1), "a@x.io", n=1)], [date(2024, 5, 1)])
    # The first write created every deferred table, so other writes find theirs.
    tables = {r[0] for r in backend.connection.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables()").fetchall()}
    backend.close()
    assert tables == {"raw.events", "ops.runs"}
    assert backend.append_rows("ops.runs", [{"run_id": "r", "task_id": "t"}]) == 1
    # With the file open (inside a session), a deferred ensure applies at once.
    with backend.session():
        backend.query("SELECT 1 AS x")
        assert [c.action for c in backend.ensure_tables(["raw.hits"], defer=True)] == ["created"]


def test_a_session_keeps_one_opening_of_the_file_for_several_writes(wh: DuckDBBackend) -> None:
    opened = []
    with wh.session():
        wh.append_rows("ops.runs", [{"run_id": "a", "task_id": "t"}])
        opened.append(wh._con)
        wh.replace_where("ops.runs", [{"run_id": "b", "task_id": "t"}], {"run_id": ["b"]})
        opened.append(wh._con)
        # Meanwhile another process waits for its turn.
        probe = subprocess.run([sys.executable, "-c", TAKE_TURN, str(wh.path), "0.3"], capture_output=True, text=True)
        assert "TurnTimeout" in probe.stderr
    assert opened[0] is not None and opened[0] is opened[1]
    assert wh._con is None
    subprocess.run([sys.executable, "-c", TAKE_TURN, str(wh.path), "5"], check=True)
    assert wh.query("SELECT count(*) AS n FROM ops.runs") == [{"n": 2}]


def test_a_task_gets_the_warehouse_as_soon_as_the_task_before_it_closes_it(
    wh: DuckDBBackend, caplog: pytest.LogCaptureFixture,
) -> None:
    """Tasks take turns on the companion lock: the second is told it waits, opens the file after the first
    has let go of it, and never hammers DuckDB's own lock meanwhile."""
    wh.close()
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from ai_usage.settings import DuckDBConfig\n"
         "from ai_usage.warehouse.duckdb_backend import DuckDBBackend\n"
         "b = DuckDBBackend(DuckDBConfig(sys.argv[1]))\n"
         "with b.session():\n"
         "    b.append_rows('ops.runs', [{'run_id': 'first', 'task_id': 't'}])\n"
         "    print('writing', flush=True); time.sleep(1.0)\n"
         "print('closed', time.time(), flush=True)\n",
         str(wh.path)],
        stdout=subprocess.PIPE, text=True,
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    caplog.set_level("INFO", logger="ai_usage.warehouse.duckdb_backend")
    second = DuckDBBackend(wh.config, lock_timeout_s=60)
    assert second.append_rows("ops.runs", [{"run_id": "second", "task_id": "t"}]) == 1
    opened_at = time.time()
    closed_at = float(writer.stdout.readline().split()[1])
    writer.wait()
    assert opened_at >= closed_at
    messages = [r.getMessage() for r in caplog.records]
    assert any("in use by another task; waiting" in m for m in messages)
    assert not any("locked by another process" in m for m in messages)
    assert second.query("SELECT run_id FROM ops.runs ORDER BY run_id") == [{"run_id": "first"}, {"run_id": "second"}]


TAKE_TURN = ("import sys; from pathlib import Path; from ai_usage.warehouse import turns; "
             "turns.take(Path(sys.argv[1]), shared=False, timeout_s=float(sys.argv[2]))")


def _hold_turn(path: Path) -> subprocess.Popen:
    """Another process holding the warehouse's turn (as a task between opening and closing the file)."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from ai_usage.warehouse import turns; "
         "turns.take(Path(sys.argv[1]), shared=False, timeout_s=5); print('ready', flush=True); sys.stdin.read()",
         str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    return holder


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def test_get_warehouse_builds_the_duckdb_backend(include: Path, tmp_path: Path) -> None:
    with get_warehouse() as warehouse:       # AI_USAGE_WAREHOUSE points under tmp_path (conftest)
        assert isinstance(warehouse, DuckDBBackend) and warehouse.kind == "duckdb"
        assert warehouse.path.is_relative_to(tmp_path)
        warehouse.ensure_tables(["ops.runs"])
        assert warehouse.path.is_file()


# --------------------------------------------------------------------------- real contracts and speed


def sample_value(col: Column, i: int) -> Any:
    """A valid value of a column's type (for loading one row into every real table)."""
    if col.repeated:
        return [sample_value(Column(col.name, col.type, "NULLABLE", fields=col.fields,
                                    precision=col.precision, scale=col.scale), i)]
    if col.type == "RECORD":
        return {f.name: sample_value(f, i) for f in col.fields}
    return {
        "STRING": f"v{i}", "INT64": i, "FLOAT64": i / 2, "BOOL": True, "NUMERIC": Decimal("1.25"),
        "BIGNUMERIC": Decimal("1.25"), "DATE": date(2024, 5, 1), "DATETIME": datetime(2024, 5, 1, 12),
        "TIMESTAMP": datetime(2024, 5, 1, 12, tzinfo=UTC), "TIME": datetime(2024, 5, 1, 12).time(),
        "JSON": {"k": i}, "BYTES": b"x",
    }[col.type]


def test_every_real_contract_is_created_and_loadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_USAGE_INCLUDE", str(REPO_INCLUDE))
    contracts: dict[str, TableContract] = load_contracts(schemas_dir())
    assert contracts, "include/schemas holds no contracts"
    with DuckDBBackend(DuckDBConfig(tmp_path / "real.duckdb")) as wh:
        changes = wh.ensure_tables()
        assert {c.table for c in changes if c.action == "created"} == set(contracts)
        for name, contract in contracts.items():
            row = {c.name: sample_value(c, 1) for c in contract.columns}
            dates = [row[contract.partition_field]] if contract.partition_field else None
            if contract.partition_field and contract.column(contract.partition_field).type == "TIMESTAMP":
                dates = [row[contract.partition_field].date()]
            assert wh.replace_partitions(name, [row], dates) == 1, name
            (back,) = wh.query(f"SELECT * FROM {name}")
            assert set(back) == set(contract.column_names), name
        assert all(c.action == "unchanged" for c in wh.ensure_tables())
        assert {i.table: i.rows for i in wh.inventory()} == dict.fromkeys(contracts, 1)


def test_bulk_write_speed_is_reported(wh: DuckDBBackend, capsys: pytest.CaptureFixture[str]) -> None:
    """200k rows in pages, as a 100-day backfill of 2,000 people would arrive (prints rows/s; no timing assert)."""
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(100)]

    def pages() -> Iterator[list[dict[str, Any]]]:
        for day in days:
            yield [{"event_date": day, "email": f"p{i}@x.com", "n": i, "amount_usd": Decimal(i) / 1000,
                    "rate": None, "big_usd": None, "ratio": None, "ok": True, "at": NOW, "civil": None,
                    "payload": None, "blob": None, "tags": ["a"],
                    "models": [{"model": "sonnet", "tokens": i, "cost_usd": Decimal("0.000123")}],
                    "owner": {"team": "t", "since": None}}
                   for i in range(2_000)]

    started = time.perf_counter()
    written = wh.replace_partitions("raw.events", pages(), days)
    elapsed = time.perf_counter() - started
    with capsys.disabled():     # shown in every run's output, not only with -s
        print(f"\nDuckDB bulk write: {written:,} rows in {elapsed:.2f}s = {written / elapsed:,.0f} rows/s")
    assert written == 200_000
    assert wh.query("SELECT COUNT(*) AS n, SUM(amount_usd) AS s FROM raw.events") == [
        {"n": 200_000, "s": Decimal(sum(range(2_000))) / 1000 * 100}
    ]


def test_a_bulk_write_is_checkpointed_before_the_full_buffer_pool_returns(wh: DuckDBBackend, tmp_path: Path) -> None:
    """A write staged as files leaves nothing in the write-ahead log: it was checkpointed under the insert's
    small buffer pool, not later at the file's close under the full one (up to +50 MiB of peak RSS)."""
    day = date(2024, 5, 1)
    wal = tmp_path / "wh" / "warehouse.duckdb.wal"
    limit = wh.query("SELECT current_setting('memory_limit') AS m")
    with wh._operation():  # the file stays open, as inside a longer operation: no checkpoint on close
        assert wh.replace_partitions("raw.events", [event(day, f"p{j}@x.com", n=j) for j in range(30_000)],
                                     [day]) == 30_000
        assert not wal.exists() or wal.stat().st_size == 0
        assert wh.query("SELECT current_setting('memory_limit') AS m") == limit  # the backend's own, restored
        assert wh.query("SELECT COUNT(*) AS n, SUM(n) AS s FROM raw.events") == [
            {"n": 30_000, "s": sum(range(30_000))}]


@pytest.mark.parametrize("text", ["plain", 'we"ird', "it's", "back\\slash", "new\nline", "ünï", "", "''\"\""])
def test_quoting_without_sqlglot_matches_sqlglots_duckdb_output(text: str) -> None:
    from sqlglot import exp

    from ai_usage.warehouse.duckdb_backend import _ident, _literal

    assert _ident(text) == exp.to_identifier(text, quoted=True).sql(dialect="duckdb")
    assert _literal(text) == exp.Literal.string(text).sql(dialect="duckdb")


INGEST_WITHOUT_QUERIES = """
import json, sys
from datetime import UTC, date, datetime

from ai_usage import pipeline
from ai_usage.archive import RawArchive
from ai_usage.hooks.pages import ApiPage
from ai_usage.warehouse import get_warehouse

day = date(2026, 3, 1)
body = json.dumps({"teamMembers": [{"id": 1, "email": "a@example.com", "name": "A"}]})
page = ApiPage(endpoint="members", n=1, request={"method": "GET", "path": "/teams/members", "params": {}},
               status=200, text=body, payload=json.loads(body), day=day)
stream = pipeline.Stream(
    source="cursor", endpoint="members", table="raw.cursor_members", pages=lambda: iter([page]),
    parse=lambda p: iter([{"snapshot_date": day, "email": "a@example.com", "name": "A", "member_id": "1"}]),
    dates=[day], archive_day=day, counters=None, lateness_days=1)
run = pipeline.RunInfo(run_id="manual__probe", dag_id="ingest_cursor", task_id="members")
with get_warehouse() as wh:
    wh.ensure_tables([stream.table, *pipeline.OPS_TABLES])
    result = pipeline.ingest(stream, run=run, warehouse=wh, archive=RawArchive(), now=datetime(2026, 3, 2, tzinfo=UTC))
print(json.dumps({"rows": result.rows_loaded, "sqlglot": "sqlglot" in sys.modules}))
"""


def test_an_ingest_task_does_not_import_the_sql_translator(tmp_path: Path) -> None:
    """sqlglot costs every ingest task's process ~0.35 s; writes and DDL never need it, only queries do."""
    import os

    env = {**os.environ, "AI_USAGE_WAREHOUSE": f"duckdb:///{tmp_path / 'w.duckdb'}",
           "AI_USAGE_ARCHIVE": f"file:///{tmp_path / 'archive'}"}
    done = subprocess.run([sys.executable, "-c", INGEST_WITHOUT_QUERIES], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"rows": 1, "sqlglot": False}
