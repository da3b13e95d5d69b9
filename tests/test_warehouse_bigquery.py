"""BigQuery backend: exact job configurations and SQL (units), then the real client over HTTP to a stub.

The HTTP tests point a real ``google.cloud.bigquery.Client`` at the loopback stub in ``_bq_stub.py`` and
assert what reached the wire. The stub does not execute SQL (see its docstring).
"""

from __future__ import annotations

import json
import logging
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from sqlglot import exp

from ai_usage.exceptions import ConfigurationError, ContractError, WarehouseError
from ai_usage.settings import BigQueryConfig
from ai_usage.warehouse import bigquery_jobs as jobs
from ai_usage.warehouse import get_warehouse
from ai_usage.warehouse.bigquery_backend import BigQueryBackend
from ai_usage.warehouse.bigquery_rows import encode_record, spool_rows
from ai_usage.warehouse.bigquery_schema import (
    added_columns,
    staging_definition,
    table_definition,
    table_schema,
)
from ai_usage.warehouse.contracts import _load_all, get_contract, load_contracts
from tests._bq_stub import BigQueryStub

PROJECT = "test-proj"
CONFIG = BigQueryConfig(project=PROJECT, location="EU", dataset_prefix="ai_usage")

USAGE = {
    "description": "Daily usage per person.",
    "timePartitioning": {"type": "DAY", "field": "usage_date"},
    "clustering": {"fields": ["email"]},
    "x-primaryKey": ["usage_date", "email"],
    "schema": {"fields": [
        {"name": "usage_date", "type": "DATE", "mode": "REQUIRED", "description": "UTC day"},
        {"name": "email", "type": "STRING", "mode": "REQUIRED", "description": "who"},
        {"name": "sessions", "type": "INTEGER", "description": "count"},
        {"name": "amount_usd", "type": "NUMERIC", "precision": "38", "scale": "9", "description": "money"},
        {"name": "active", "type": "BOOL", "description": "flag"},
        {"name": "models", "type": "RECORD", "mode": "REPEATED", "description": "per model", "fields": [
            {"name": "model", "type": "STRING", "mode": "REQUIRED", "description": "model id"},
            {"name": "cost_usd", "type": "NUMERIC", "description": "estimate"},
        ]},
        {"name": "_ingested_at", "type": "TIMESTAMP", "mode": "REQUIRED", "description": "load time"},
        {"name": "_run_id", "type": "STRING", "mode": "REQUIRED", "description": "Airflow run"},
    ]},
}
MONTHLY = {
    "description": "Monthly allocation.",
    "timePartitioning": {"field": "month"},
    "schema": {"fields": [
        {"name": "month", "type": "DATE", "mode": "REQUIRED", "description": "first day"},
        {"name": "amount_usd", "type": "NUMERIC", "mode": "REQUIRED", "description": "money"},
    ]},
}
RUNS = {
    "description": "Ingestion runs.",
    "schema": {"fields": [
        {"name": "run_id", "type": "STRING", "mode": "REQUIRED", "description": "run"},
        {"name": "source", "type": "STRING", "mode": "REQUIRED", "description": "source"},
        {"name": "rows", "type": "INT64", "description": "rows"},
    ]},
}
EVENTS = {
    "description": "Events by instant.",
    "timePartitioning": {"type": "DAY", "field": "event_at"},
    "schema": {"fields": [
        {"name": "event_at", "type": "TIMESTAMP", "mode": "REQUIRED", "description": "instant"},
        {"name": "kind", "type": "STRING", "description": "kind"},
    ]},
}
TABLES = {"raw.usage": USAGE, "marts.monthly": MONTHLY, "ops.runs": RUNS, "raw.events": EVENTS}

T0 = datetime(2024, 3, 2, 1, 30, tzinfo=UTC)


def write_contracts(root: Path, tables: dict[str, dict[str, Any]]) -> Path:
    for name, doc in tables.items():
        ds, table = name.split(".")
        path = root / "schemas" / ds / f"{table}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc))
    (root / "sql").mkdir(exist_ok=True)
    return root


@pytest.fixture
def include(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private include/ folder (its own path, so the per-root contract cache never mixes tests)."""
    root = write_contracts(tmp_path / "include", TABLES)
    monkeypatch.setenv("AI_USAGE_INCLUDE", str(root))
    return root


@pytest.fixture
def stub() -> Iterator[BigQueryStub]:
    with BigQueryStub() as s:
        yield s


def make_client(url: str) -> bigquery.Client:
    return bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(), location="EU",
                           client_options={"api_endpoint": url})


@pytest.fixture
def wh(stub: BigQueryStub, include: Path) -> Iterator[BigQueryBackend]:
    backend = BigQueryBackend(CONFIG, client=make_client(stub.url), timeout=5, job_timeout=20,
                              retry=Retry(timeout=5), labels={"airflow_dag": "ingest_cursor",
                                                              "airflow_task": "load.usage"})
    yield backend
    backend.close()


def usage_row(day: date, email: str, amount: str = "1.5", **over: Any) -> dict[str, Any]:
    row = {"usage_date": day, "email": email, "sessions": 3, "amount_usd": Decimal(amount), "active": True,
           "models": [{"model": "claude-x", "cost_usd": Decimal("0.25")}], "_ingested_at": T0, "_run_id": "r1"}
    row.update(over)
    return row


def seed(stub: BigQueryStub, wh: BigQueryBackend, *tables: str) -> None:
    """Create datasets and tables through the backend, then forget those requests."""
    wh.ensure_tables(tables or None)
    stub.requests.clear()


# =========================================================================== units: schema and DDL


def test_schema_fields_carry_numeric_precision_nested_repeated_records_and_descriptions(include: Path) -> None:
    fields = [f.to_api_repr() for f in table_schema(get_contract("raw.usage"))]
    assert fields[0] == {"name": "usage_date", "type": "DATE", "mode": "REQUIRED", "description": "UTC day"}
    assert fields[2]["type"] == "INT64"  # legacy INTEGER canonicalised by the contract loader
    assert fields[3] == {"name": "amount_usd", "type": "NUMERIC", "mode": "NULLABLE", "description": "money",
                         "precision": 38, "scale": 9}
    assert fields[5] == {
        "name": "models", "type": "RECORD", "mode": "REPEATED", "description": "per model",
        "fields": [
            {"name": "model", "type": "STRING", "mode": "REQUIRED", "description": "model id"},
            {"name": "cost_usd", "type": "NUMERIC", "mode": "NULLABLE", "description": "estimate"},
        ],
    }


def test_table_definition_partitions_by_day_clusters_and_never_requires_a_partition_filter(include: Path) -> None:
    table = table_definition(get_contract("raw.usage"), f"{PROJECT}.ai_usage_raw.usage").to_api_repr()
    assert table["timePartitioning"] == {"type": "DAY", "field": "usage_date"}
    assert table["requirePartitionFilter"] is False
    assert table["clustering"] == {"fields": ["email"]}
    assert table["labels"] == {"app": "ai-usage"}
    assert table["description"] == "Daily usage per person."
    assert table["tableReference"] == {"projectId": PROJECT, "datasetId": "ai_usage_raw", "tableId": "usage"}


def test_month_tables_are_day_partitioned_unless_the_contract_asks_for_month(tmp_path: Path) -> None:
    monthly = get_contract("marts.monthly", write_contracts(tmp_path / "a", TABLES) / "schemas")
    assert table_definition(monthly, "p.d.t").to_api_repr()["timePartitioning"] == {"type": "DAY", "field": "month"}
    asked = {**MONTHLY, "timePartitioning": {"type": "MONTH", "field": "month"}}
    monthly = get_contract("marts.monthly", write_contracts(tmp_path / "b", {"marts.monthly": asked}) / "schemas")
    assert table_definition(monthly, "p.d.t").to_api_repr()["timePartitioning"] == {"type": "MONTH", "field": "month"}
    unpartitioned = table_definition(get_contract("ops.runs", tmp_path / "a" / "schemas"), "p.d.t").to_api_repr()
    assert "timePartitioning" not in unpartitioned and "clustering" not in unpartitioned


def test_staging_table_has_the_contract_schema_and_expires(include: Path) -> None:
    expires = datetime(2024, 1, 2, tzinfo=UTC)
    table = staging_definition(get_contract("raw.usage"), "p.d._stg_usage_x", expires).to_api_repr()
    assert table["expirationTime"] == str(int(expires.timestamp() * 1000))
    assert table["schema"]["fields"] == [f.to_api_repr() for f in table_schema(get_contract("raw.usage"))]
    assert "timePartitioning" not in table


def _live(doc: dict[str, Any]) -> bigquery.Table:
    """A table resource as the API returns it (legacy type names, string precision)."""
    return bigquery.Table.from_api_repr({"tableReference": {"projectId": "p", "datasetId": "d", "tableId": "t"},
                                         **doc})


def _legacy(fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for f in fields:
        g = {**f, "type": {"INT64": "INTEGER", "BOOL": "BOOLEAN"}.get(f["type"], f["type"])}
        if "fields" in f:
            g["fields"] = _legacy(f["fields"])
        out.append(g)
    return out


def test_contract_growth_adds_nullable_columns_and_other_drift_is_a_contract_error(tmp_path: Path) -> None:
    contract = get_contract("raw.usage", write_contracts(tmp_path / "a", TABLES) / "schemas")
    same = {"schema": {"fields": _legacy(USAGE["schema"]["fields"])},
            "timePartitioning": {"type": "DAY", "field": "usage_date"}, "clustering": {"fields": ["email"]}}
    assert added_columns(contract, _live(same)) == []
    unparameterised = json.loads(json.dumps(same))   # NUMERIC is NUMERIC(38, 9): the same type
    del unparameterised["schema"]["fields"][3]["precision"], unparameterised["schema"]["fields"][3]["scale"]
    assert added_columns(contract, _live(unparameterised)) == []

    older = {**same, "schema": {"fields": _legacy(USAGE["schema"]["fields"][:-2])}}
    # the two columns missing from the live table are REQUIRED: adding them in place is impossible
    with pytest.raises(ContractError, match="new column '_ingested_at' is REQUIRED"):
        added_columns(contract, _live(older))

    grown = {**USAGE, "schema": {"fields": [*USAGE["schema"]["fields"],
                                            {"name": "lines", "type": "INT64", "description": "new"}]}}
    contract = get_contract("raw.usage", write_contracts(tmp_path / "b", {"raw.usage": grown}) / "schemas")
    assert [f.to_api_repr() for f in added_columns(contract, _live(same))] == [
        {"name": "lines", "type": "INT64", "mode": "NULLABLE", "description": "new"}]

    retyped = json.loads(json.dumps(same))
    retyped["schema"]["fields"][3]["scale"] = "2"
    with pytest.raises(ContractError, match=r"'amount_usd' is NULLABLE NUMERIC\(38,2\) in the table"):
        added_columns(contract, _live(retyped))
    extra = json.loads(json.dumps(same))
    extra["schema"]["fields"].append({"name": "legacy", "type": "STRING"})
    with pytest.raises(ContractError, match="'legacy' exists in the table but not in the contract"):
        added_columns(contract, _live(extra))
    reclustered = {**same, "clustering": {"fields": ["usage_date"]}}
    with pytest.raises(ContractError, match="clustering"):
        added_columns(contract, _live(reclustered))
    nested = json.loads(json.dumps(same))
    nested["schema"]["fields"][5]["fields"][1]["type"] = "FLOAT"
    with pytest.raises(ContractError, match="'models'"):
        added_columns(contract, _live(nested))


# =========================================================================== units: SQL, jobs, parameters


def test_merge_for_partitions_is_one_valid_bigquery_statement(include: Path) -> None:
    contract = get_contract("raw.usage")
    sql = jobs.merge_sql(contract, "test-proj.ai_usage_raw.usage", "test-proj.ai_usage_raw._stg_usage_abc",
                         dates=True)
    assert sql == (
        "MERGE `test-proj.ai_usage_raw.usage` AS T\n"
        "USING `test-proj.ai_usage_raw._stg_usage_abc` AS S\n"
        "ON FALSE\n"
        "WHEN NOT MATCHED BY SOURCE AND T.`usage_date` IN UNNEST(@dates) THEN DELETE\n"
        "WHEN NOT MATCHED THEN INSERT (`usage_date`, `email`, `sessions`, `amount_usd`, `active`, `models`, "
        "`_ingested_at`, `_run_id`)\n"
        "  VALUES (S.`usage_date`, S.`email`, S.`sessions`, S.`amount_usd`, S.`active`, S.`models`, "
        "S.`_ingested_at`, S.`_run_id`)"
    )
    statements = sqlglot.parse(sql, read="bigquery")
    assert len(statements) == 1 and isinstance(statements[0], exp.Merge)
    merge = statements[0]
    assert merge.this.catalog == "test-proj" and merge.this.db == "ai_usage_raw" and merge.this.name == "usage"
    whens = merge.args["whens"].expressions
    assert [(w.args["matched"], w.args.get("source")) for w in whens] == [(False, True), (False, False)]
    assert whens[0].args["condition"].sql(dialect="bigquery") == "T.`usage_date` IN UNNEST(@dates)"
    assert len(whens[1].args["then"].this.expressions) == len(contract.columns)


def test_merge_scopes_for_whole_table_key_and_timestamp_partitions(include: Path) -> None:
    usage, runs, events = get_contract("raw.usage"), get_contract("ops.runs"), get_contract("raw.events")
    whole = jobs.merge_sql(runs, "p.d.runs", "p.d._stg")
    assert "WHEN NOT MATCHED BY SOURCE THEN DELETE\n" in whole
    keyed = jobs.merge_sql(runs, "p.d.runs", "p.d._stg", key={"run_id": ["a"], "source": ["cursor"]})
    assert "WHEN NOT MATCHED BY SOURCE AND T.`run_id` IN UNNEST(@key_0) AND T.`source` IN UNNEST(@key_1) " \
           "THEN DELETE" in keyed
    by_instant = jobs.merge_sql(events, "p.d.events", "p.d._stg", dates=True)
    assert "AND DATE(T.`event_at`) IN UNNEST(@dates) THEN DELETE" in by_instant
    for sql in (whole, keyed, by_instant, jobs.delete_sql(usage, "p.d.usage", dates=True),
                jobs.delete_sql(runs, "p.d.runs")):
        assert len(sqlglot.parse(sql, read="bigquery")) == 1
    assert jobs.delete_sql(usage, "p.d.usage", dates=True) == \
        "DELETE FROM `p.d.usage` AS T\nWHERE T.`usage_date` IN UNNEST(@dates)"
    with pytest.raises(ContractError, match="no partition field"):
        jobs.merge_sql(runs, "p.d.runs", "p.d._stg", dates=True)
    with pytest.raises(ContractError, match="no column 'nope'"):
        jobs.merge_sql(runs, "p.d.runs", "p.d._stg", key={"nope": [1]})
    with pytest.raises(WarehouseError, match="refusing"):
        jobs.merge_sql(runs, "p.d.runs` WHERE TRUE; DROP TABLE x; --", "p.d._stg")


def test_scope_parameters_are_typed_by_the_contract(include: Path) -> None:
    usage, runs = get_contract("raw.usage"), get_contract("ops.runs")
    (dates,) = jobs.scope_parameters(usage, dates=[date(2024, 3, 2), date(2024, 3, 1)])
    assert dates.to_api_repr() == {
        "name": "dates", "parameterType": {"type": "ARRAY", "arrayType": {"type": "DATE"}},
        "parameterValue": {"arrayValues": [{"value": "2024-03-01"}, {"value": "2024-03-02"}]},
    }
    key = jobs.scope_parameters(runs, key={"run_id": ["r1", "r2"]})
    assert [p.to_api_repr() for p in key] == [{
        "name": "key_0", "parameterType": {"type": "ARRAY", "arrayType": {"type": "STRING"}},
        "parameterValue": {"arrayValues": [{"value": "r1"}, {"value": "r2"}]},
    }]
    with pytest.raises(ContractError, match="STRING column got int"):
        jobs.scope_parameters(runs, key={"run_id": [1]})


def test_inventory_selects_count_days_and_partitions_per_table(tmp_path: Path) -> None:
    root = write_contracts(tmp_path / "a", {**TABLES, "marts.monthly": {
        **MONTHLY, "timePartitioning": {"type": "MONTH", "field": "month"}}}) / "schemas"
    usage = jobs.inventory_select(0, get_contract("raw.usage", root), "p.d.usage")
    assert usage == ("SELECT 0 AS i, COUNT(*) AS row_count, MIN(`usage_date`) AS min_date, MAX(`usage_date`) AS "
                     "max_date, COUNT(DISTINCT `usage_date`) AS partitions FROM `p.d.usage`")
    events = jobs.inventory_select(1, get_contract("raw.events", root), "p.d.events")
    assert "MIN(DATE(`event_at`)) AS min_date" in events and "COUNT(DISTINCT DATE(`event_at`))" in events
    monthly = jobs.inventory_select(2, get_contract("marts.monthly", root), "p.d.monthly")
    assert "COUNT(DISTINCT DATE_TRUNC(`month`, MONTH)) AS partitions" in monthly
    runs = jobs.inventory_select(3, get_contract("ops.runs", root), "p.d.runs")
    assert "CAST(NULL AS INT64) AS partitions" in runs
    union = "\nUNION ALL\n".join([usage, events, monthly, runs])
    assert isinstance(sqlglot.parse_one(union, read="bigquery"), exp.Union)


def test_load_job_config_is_ndjson_with_the_explicit_schema_and_no_tolerance(include: Path) -> None:
    contract = get_contract("raw.usage")
    config = jobs.load_job_config(contract, "WRITE_TRUNCATE", {"app": "ai-usage", "table": "raw-usage"})
    assert config.to_api_repr() == {
        "load": {
            "sourceFormat": "NEWLINE_DELIMITED_JSON",
            "schema": {"fields": [f.to_api_repr() for f in table_schema(contract)]},
            "autodetect": False,
            "writeDisposition": "WRITE_TRUNCATE",
            "createDisposition": "CREATE_NEVER",
            "ignoreUnknownValues": False,
            "maxBadRecords": 0,
        },
        "labels": {"app": "ai-usage", "table": "raw-usage"},
    }


def test_query_parameters_are_typed_and_decimals_stay_exact_strings() -> None:
    def api(name: str, value: Any) -> dict[str, Any]:
        return jobs.query_parameter(name, value).to_api_repr()

    assert api("m", Decimal("123.000000001")) == {
        "name": "m", "parameterType": {"type": "NUMERIC"}, "parameterValue": {"value": "123.000000001"}}
    assert api("e", Decimal("1E-9"))["parameterValue"] == {"value": "0.000000001"}
    assert api("b", Decimal("0.0000000001"))["parameterType"] == {"type": "BIGNUMERIC"}
    assert api("b", Decimal("0.0000000001"))["parameterValue"] == {"value": "0.0000000001"}
    assert api("b", Decimal("1" * 30))["parameterType"] == {"type": "BIGNUMERIC"}
    assert api("d", date(2024, 2, 29)) == {
        "name": "d", "parameterType": {"type": "DATE"}, "parameterValue": {"value": "2024-02-29"}}
    plus2 = timezone(timedelta(hours=2))
    assert api("t", datetime(2024, 3, 1, 1, 0, tzinfo=plus2))["parameterType"] == {"type": "TIMESTAMP"}
    assert api("t", datetime(2024, 3, 1, 1, 0, tzinfo=plus2))["parameterValue"] == {
        "value": "2024-02-29 23:00:00+00:00"}
    assert api("c", datetime(2024, 3, 1, 1, 0))["parameterType"] == {"type": "DATETIME"}
    assert api("i", 7) == {"name": "i", "parameterType": {"type": "INT64"}, "parameterValue": {"value": "7"}}
    assert api("f", True)["parameterType"] == {"type": "BOOL"}
    assert api("s", "x")["parameterType"] == {"type": "STRING"}
    assert api("l", [date(2024, 1, 1), date(2024, 1, 2)]) == {
        "name": "l", "parameterType": {"type": "ARRAY", "arrayType": {"type": "DATE"}},
        "parameterValue": {"arrayValues": [{"value": "2024-01-01"}, {"value": "2024-01-02"}]}}
    assert api("n", [Decimal("1.5"), Decimal("0.0000000001")])["parameterType"] == {
        "type": "ARRAY", "arrayType": {"type": "BIGNUMERIC"}}
    typed = bigquery.ScalarQueryParameter("z", "STRING", None)
    assert jobs.query_parameter("z", typed) is typed
    for bad, message in ((None, "needs a type for NULL"), ([], "empty list"), ([1, "a"], "mixes types"),
                         ({"a": 1}, "cannot infer"), (Decimal("NaN"), "not a finite")):
        with pytest.raises(WarehouseError, match=message):
            jobs.query_parameter("p", bad)


def test_labels_are_sanitised_to_what_bigquery_accepts() -> None:
    labels = jobs.job_labels({"airflow_dag": "Ingest.Cursor", "airflow_task": "group.Task-1"},
                             table="raw.cursor_spend", operation="replace_partitions", empty=None)
    assert labels == {"app": "ai-usage", "airflow_dag": "ingest-cursor", "airflow_task": "group-task-1",
                      "table": "raw-cursor_spend", "operation": "replace_partitions"}
    assert len(jobs.job_labels(None, table="x" * 100)["table"]) == 63
    assert jobs.airflow_labels("d", None) == {"app": "ai-usage", "airflow_dag": "d"}


# =========================================================================== units: rows


def test_rows_encode_exactly_for_a_json_load(include: Path) -> None:
    contract = get_contract("raw.usage")
    plus2 = timezone(timedelta(hours=2))
    row = usage_row(date(2024, 3, 1), "a@x.io", "12345678901234567890.123456789", sessions=2**62,
                    _ingested_at=datetime(2024, 3, 1, 0, 30, 0, 5, tzinfo=plus2))
    assert encode_record(row, contract.columns, "r") == {
        "usage_date": "2024-03-01", "email": "a@x.io", "sessions": 2**62,
        "amount_usd": "12345678901234567890.123456789", "active": True,
        "models": [{"model": "claude-x", "cost_usd": "0.25"}],
        "_ingested_at": "2024-02-29T22:30:00.000005Z", "_run_id": "r1",
    }
    assert encode_record(usage_row(date(2024, 3, 1), "a", "1E-9", models=None, active=None), contract.columns,
                         "r")["amount_usd"] == "0.000000001"
    spooled = spool_rows(contract, [row])
    line = spooled.file.read().decode()
    spooled.close()
    assert '"amount_usd":"12345678901234567890.123456789"' in line and line.endswith("}\n")


@pytest.mark.parametrize("change, message", [
    ({"amount_usd": 1.5}, "floats are refused"),
    ({"amount_usd": Decimal("0.0000000001")}, "more than 9 decimals"),
    ({"amount_usd": Decimal("1" * 30)}, "more than 29 integer digits"),
    ({"_ingested_at": datetime(2024, 3, 1, 12, 0)}, "timezone-aware"),
    ({"usage_date": datetime(2024, 3, 1, tzinfo=UTC)}, "DATE column got datetime"),
    ({"usage_date": "2024-03-01"}, "DATE column got str"),
    ({"email": None}, "REQUIRED column 'email'"),
    ({"sessions": True}, "INT64 column got bool"),
    ({"extra": 1}, r"unknown column\(s\) \['extra'\]"),
    ({"models": [{"model": "m", "oops": 1}]}, r"models\[0\]: unknown column"),
    ({"models": [{"cost_usd": Decimal(1)}]}, r"models\[0\]: REQUIRED column 'model'"),
    ({"models": {"model": "m"}}, "REPEATED column needs a list"),
])
def test_rows_that_do_not_fit_the_contract_are_refused(include: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        row = {**usage_row(date(2024, 3, 1), "a@x"), **change}
        encode_record(row, get_contract("raw.usage").columns, "r")


def test_spooling_streams_pages_to_disk_with_flat_memory(include: Path) -> None:
    """20k rows (~4.5 MB of NDJSON) from a generator of pages: peak Python memory stays far below that."""
    def pages() -> Iterator[list[dict[str, Any]]]:
        for p in range(200):
            yield [usage_row(date(2024, 3, 1), f"user{p}-{i}@example.com", f"{p}.{i:09d}") for i in range(100)]

    tracemalloc.start()
    try:
        spooled = spool_rows(get_contract("raw.usage"), pages(), dates={date(2024, 3, 1)},
                             memory_bytes=128 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    try:
        assert spooled.rows == 20_000
        assert spooled.size > 4_000_000
        assert peak < 1_000_000, f"peak {peak} bytes: memory grows with the input"
        first = json.loads(spooled.file.readline())
        assert first["email"] == "user0-0@example.com" and first["amount_usd"] == "0.000000000"
    finally:
        spooled.close()


# =========================================================================== HTTP: DDL


def test_ensure_tables_creates_datasets_and_tables_then_is_idempotent(stub: BigQueryStub, wh: BigQueryBackend) -> None:
    changes = wh.ensure_tables()
    assert sorted((c.table, c.action) for c in changes) == [
        ("marts.monthly", "created"), ("ops.runs", "created"), ("raw.events", "created"), ("raw.usage", "created")]
    created = {r.json["datasetReference"]["datasetId"]: r.json for r in stub.ops("datasets.insert")}
    assert sorted(created) == ["ai_usage_marts", "ai_usage_ops", "ai_usage_raw"]
    assert all(d["location"] == "EU" and d["labels"] == {"app": "ai-usage"} for d in created.values())
    tables = {r.json["tableReference"]["tableId"]: r.json for r in stub.ops("tables.insert")}
    assert tables["usage"] == table_definition(get_contract("raw.usage"), "test-proj.ai_usage_raw.usage").to_api_repr()
    assert tables["usage"]["timePartitioning"] == {"type": "DAY", "field": "usage_date"}
    assert tables["usage"]["schema"]["fields"][3]["precision"] == 38
    assert "timePartitioning" not in tables["runs"]

    stub.requests.clear()
    again = wh.ensure_tables()
    assert {c.action for c in again} == {"unchanged"}
    assert {r.operation for r in stub.requests} == {"datasets.get", "tables.get"}


def test_a_grown_contract_patches_the_table_and_drift_is_refused(
    stub: BigQueryStub, wh: BigQueryBackend, include: Path
) -> None:
    seed(stub, wh, "ops.runs")
    grown = {**RUNS, "schema": {"fields": [*RUNS["schema"]["fields"],
                                           {"name": "note", "type": "STRING", "description": "free text"}]}}
    write_contracts(include, {"ops.runs": grown})
    _load_all.cache_clear()  # the contract file changed under the same root

    (change,) = wh.ensure_tables(["ops.runs"])
    assert (change.action, change.columns_added) == ("columns_added", ("note",))
    (patch,) = stub.ops("tables.patch")
    assert patch.path.endswith("/datasets/ai_usage_ops/tables/runs")
    assert [f["name"] for f in patch.json["schema"]["fields"]] == ["run_id", "source", "rows", "note"]
    assert patch.json["schema"]["fields"][-1] == {"name": "note", "type": "STRING", "mode": "NULLABLE",
                                                  "description": "free text"}
    assert "if-match" in patch.headers  # the etag guards against a concurrent change

    retyped = {**RUNS, "schema": {"fields": [{**RUNS["schema"]["fields"][0], "type": "INT64"},
                                             *RUNS["schema"]["fields"][1:]]}}
    write_contracts(include, {"ops.runs": retyped})
    _load_all.cache_clear()
    stub.requests.clear()
    with pytest.raises(ContractError, match="'run_id' is REQUIRED STRING in the table but REQUIRED INT64"):
        wh.ensure_tables(["ops.runs"])
    assert stub.ops("tables.patch") == []


def test_a_dataset_in_another_location_is_a_configuration_error(stub: BigQueryStub, include: Path) -> None:
    stub.datasets[(PROJECT, "ai_usage_ops")] = {
        "datasetReference": {"projectId": PROJECT, "datasetId": "ai_usage_ops"}, "location": "US"}
    backend = BigQueryBackend(CONFIG, client=make_client(stub.url), timeout=5, retry=Retry(timeout=5))
    with pytest.raises(ConfigurationError, match="is in US, but AI_USAGE_WAREHOUSE says location=EU"):
        backend.ensure_tables(["ops.runs"])
    assert stub.ops("tables.insert") == []


# =========================================================================== HTTP: writes


def _normalise(sql: str) -> str:
    import re

    return re.sub(r"_stg_(\w+?)_[0-9a-f]{32}", r"_stg_\1_<uuid>", sql)


def test_replace_partitions_stages_loads_merges_and_drops(stub: BigQueryStub, wh: BigQueryBackend) -> None:
    seed(stub, wh, "raw.usage")
    days = [date(2024, 3, 2), date(2024, 3, 1), date(2024, 3, 3)]   # 3 Mar gets no rows: it is emptied
    pages = iter([[usage_row(days[1], "a@x.io", "0.000000001")],
                  [usage_row(days[0], "b@x.io", "7"), usage_row(days[0], "c@x.io", "-2.5", models=[])]])

    assert wh.replace_partitions("raw.usage", pages, days) == 3

    ops = [r.operation for r in stub.requests]
    assert ops == ["tables.insert", "jobs.upload", "jobs.get", "jobs.insert", "jobs.get",
                   "jobs.getQueryResults", "tables.delete"]
    staging_req = stub.requests[0].json
    staging = staging_req["tableReference"]["tableId"]
    assert staging.startswith("_stg_usage_") and staging_req["tableReference"]["datasetId"] == "ai_usage_raw"
    assert staging_req["schema"]["fields"] == [f.to_api_repr() for f in table_schema(get_contract("raw.usage"))]
    expires = int(staging_req["expirationTime"]) / 1000
    assert abs(expires - (time.time() + 86400)) < 300

    upload = stub.requests[1]
    assert upload.query["uploadType"] == "multipart"
    load = upload.json["configuration"]["load"]
    assert load["destinationTable"] == {"projectId": PROJECT, "datasetId": "ai_usage_raw", "tableId": staging}
    assert (load["writeDisposition"], load["createDisposition"], load["sourceFormat"]) == (
        "WRITE_TRUNCATE", "CREATE_NEVER", "NEWLINE_DELIMITED_JSON")
    assert load["schema"] == staging_req["schema"]
    assert upload.json["configuration"]["labels"] == {
        "app": "ai-usage", "airflow_dag": "ingest_cursor", "airflow_task": "load-usage",
        "table": "raw-usage", "operation": "replace_partitions", "step": "stage"}
    assert upload.json["jobReference"]["location"] == "EU"
    lines = [json.loads(x) for x in upload.upload.decode().splitlines()]
    assert [(r["usage_date"], r["email"], r["amount_usd"]) for r in lines] == [
        ("2024-03-01", "a@x.io", "0.000000001"), ("2024-03-02", "b@x.io", "7"), ("2024-03-02", "c@x.io", "-2.5")]
    assert lines[0]["_ingested_at"] == "2024-03-02T01:30:00.000000Z" and lines[2]["models"] == []

    merge = stub.requests[3].json["configuration"]
    assert merge["query"]["query"] == jobs.merge_sql(get_contract("raw.usage"), "test-proj.ai_usage_raw.usage",
                                                     f"test-proj.ai_usage_raw.{staging}", dates=True)
    assert merge["query"]["useLegacySql"] is False
    assert merge["query"]["queryParameters"] == [{
        "name": "dates", "parameterType": {"type": "ARRAY", "arrayType": {"type": "DATE"}},
        "parameterValue": {"arrayValues": [{"value": "2024-03-01"}, {"value": "2024-03-02"},
                                           {"value": "2024-03-03"}]}}]
    assert merge["labels"]["step"] == "merge" and merge["labels"]["operation"] == "replace_partitions"
    assert stub.requests[-1].path.endswith(f"/datasets/ai_usage_raw/tables/{staging}")
    assert (PROJECT, "ai_usage_raw", staging) not in stub.tables


def test_a_rerun_sends_identical_content(stub: BigQueryStub, wh: BigQueryBackend) -> None:
    seed(stub, wh, "raw.usage")
    rows = [usage_row(date(2024, 3, 1), "a@x.io", "1.10"), usage_row(date(2024, 3, 1), "b@x.io", "2")]
    runs = []
    for _ in range(2):
        stub.requests.clear()
        wh.replace_partitions("raw.usage", list(rows), [date(2024, 3, 1)])
        upload = stub.ops("jobs.upload")[0]
        merge = stub.ops("jobs.insert")[0].json["configuration"]
        runs.append((upload.upload, _normalise(merge["query"]["query"]), merge["query"]["queryParameters"]))
    assert runs[0] == runs[1]
    assert runs[0][0].count(b"\n") == 2


def test_staging_is_dropped_when_the_merge_fails_and_the_error_names_it(
    stub: BigQueryStub, wh: BigQueryBackend
) -> None:
    seed(stub, wh, "raw.usage")
    stub.fail_jobs(lambda c: "query" in c and c["query"]["query"].startswith("MERGE"),
                   message="Could not serialize access to table due to concurrent update")
    with pytest.raises(WarehouseError, match="concurrent update"):
        wh.replace_partitions("raw.usage", [usage_row(date(2024, 3, 1), "a@x")], [date(2024, 3, 1)])
    staging = stub.ops("tables.insert")[0].json["tableReference"]["tableId"]
    (drop,) = stub.ops("tables.delete")
    assert drop.path.endswith(f"/tables/{staging}")
    assert not [t for t in stub.tables if t[2].startswith("_stg_")]


def test_staging_is_dropped_when_the_load_fails_and_no_merge_runs(stub: BigQueryStub, wh: BigQueryBackend) -> None:
    seed(stub, wh, "raw.usage")
    stub.fail_jobs(lambda c: "load" in c, reason="invalid", message="Error while reading data")
    with pytest.raises(WarehouseError, match="Error while reading data"):
        wh.replace_partitions("raw.usage", [usage_row(date(2024, 3, 1), "a@x")], [date(2024, 3, 1)])
    assert stub.ops("jobs.insert") == []  # no MERGE after a failed load
    assert len(stub.ops("tables.delete")) == 1
    assert not [t for t in stub.tables if t[2].startswith("_stg_")]


def test_a_failed_staging_drop_is_logged_not_raised_after_a_committed_merge(
    stub: BigQueryStub, wh: BigQueryBackend, caplog: pytest.LogCaptureFixture
) -> None:
    seed(stub, wh, "raw.usage")
    stub.fail_requests("tables.delete", 403, reason="accessDenied")
    with caplog.at_level(logging.WARNING, logger="ai_usage.warehouse.bigquery_backend"):
        assert wh.replace_partitions("raw.usage", [usage_row(date(2024, 3, 1), "a@x")], [date(2024, 3, 1)]) == 1
    assert "could not drop staging table" in caplog.text and "expires by itself" in caplog.text


def test_bad_rows_raise_contract_errors_before_anything_is_sent(stub: BigQueryStub, wh: BigQueryBackend) -> None:
    seed(stub, wh, "raw.usage")
    day = date(2024, 3, 1)
    with pytest.raises(ContractError, match=r"usage_date=datetime.date\(2024, 3, 2\) is outside the partitions"):
        wh.replace_partitions("raw.usage", [usage_row(day, "a"), usage_row(date(2024, 3, 2), "b")], [day])
    with pytest.raises(ContractError, match="unknown column"):
        wh.replace_partitions("raw.usage", [usage_row(day, "a", bogus=1)], [day])
    with pytest.raises(ContractError, match="REQUIRED column '_run_id'"):
        wh.append_rows("raw.usage", [usage_row(day, "a", _run_id=None)])
    with pytest.raises(ContractError, match="not partitioned"):
        wh.replace_partitions("ops.runs", [], [day])
    with pytest.raises(ContractError, match="outside the key"):
        wh.replace_where("ops.runs", [{"run_id": "r2", "source": "cursor"}], {"run_id": ["r1"]})

    def failing() -> Iterator[dict[str, Any]]:
        yield usage_row(day, "a")
        raise RuntimeError("vendor API went away mid-stream")

    with pytest.raises(RuntimeError, match="went away"):
        wh.replace_partitions("raw.usage", failing(), [day])
    assert stub.requests == []


def test_zero_rows_is_one_delete_of_the_scope_and_an_empty_scope_sends_nothing(
    stub: BigQueryStub, wh: BigQueryBackend
) -> None:
    seed(stub, wh, "raw.usage", "ops.runs")
    assert wh.replace_partitions("raw.usage", iter([[], []]), [date(2024, 3, 1)]) == 0
    (job,) = stub.job_configs()
    assert job["query"]["query"] == "DELETE FROM `test-proj.ai_usage_raw.usage` AS T\n" \
                                    "WHERE T.`usage_date` IN UNNEST(@dates)"
    assert job["labels"]["step"] == "delete"
    assert not stub.ops("tables.insert")

    stub.requests.clear()
    assert wh.replace_partitions("raw.usage", [], []) == 0
    assert wh.replace_where("ops.runs", [], {"run_id": []}) == 0
    assert wh.append_rows("ops.runs", []) == 0
    assert stub.requests == []


def test_whole_table_replace_and_replace_where_use_their_scopes(stub: BigQueryStub, wh: BigQueryBackend) -> None:
    seed(stub, wh, "ops.runs")
    rows = [{"run_id": "r1", "source": "cursor", "rows": 5}]
    assert wh.replace_partitions("ops.runs", rows, None) == 1
    merge = stub.job_configs()[-1]["query"]
    assert "WHEN NOT MATCHED BY SOURCE THEN DELETE" in merge["query"] and merge["queryParameters"] == []

    stub.requests.clear()
    assert wh.replace_where("ops.runs", rows, {"run_id": ["r1"], "source": ("cursor",)}) == 1
    merge = stub.job_configs()[-1]
    assert "T.`run_id` IN UNNEST(@key_0) AND T.`source` IN UNNEST(@key_1)" in merge["query"]["query"]
    assert [p["name"] for p in merge["query"]["queryParameters"]] == ["key_0", "key_1"]
    assert merge["labels"]["operation"] == "replace_where"


def test_append_rows_is_one_load_job_into_the_target(stub: BigQueryStub, wh: BigQueryBackend) -> None:
    seed(stub, wh, "ops.runs")
    assert wh.append_rows("ops.runs", [[{"run_id": "r1", "source": "cursor"}], [{"run_id": "r2", "source": "x"}]]) == 2
    assert [r.operation for r in stub.requests] == ["jobs.upload", "jobs.get"]
    load = stub.job_configs()[0]["load"]
    assert load["destinationTable"]["tableId"] == "runs" and load["writeDisposition"] == "WRITE_APPEND"
    assert stub.table_rows[(PROJECT, "ai_usage_ops", "runs")] == [
        {"run_id": "r1", "source": "cursor"}, {"run_id": "r2", "source": "x"}]


def test_large_loads_use_the_resumable_upload(stub: BigQueryStub, wh: BigQueryBackend) -> None:
    seed(stub, wh, "raw.usage")
    day = date(2024, 3, 1)

    def pages() -> Iterator[list[dict[str, Any]]]:
        for p in range(300):
            yield [usage_row(day, f"person-{p}-{i}@example.com", "1.000000001") for i in range(100)]

    assert wh.replace_partitions("raw.usage", pages(), [day]) == 30_000
    uploads = stub.ops("jobs.upload")
    assert [(u.method, u.query["uploadType"]) for u in uploads] == [("POST", "resumable"), ("PUT", "resumable")]
    assert uploads[0].json["configuration"]["load"]["writeDisposition"] == "WRITE_TRUNCATE"
    assert uploads[1].upload.count(b"\n") == 30_000 and len(uploads[1].upload) > 5 * 1024 * 1024
    assert stub.ops("jobs.insert")[0].json["configuration"]["query"]["query"].startswith("MERGE")


def test_a_load_that_lands_a_different_row_count_fails_before_the_merge(stub: BigQueryStub, wh: BigQueryBackend) -> None:
    seed(stub, wh, "raw.usage")
    stub.lose_rows = 1
    rows = [usage_row(date(2024, 3, 1), "a"), usage_row(date(2024, 3, 1), "b")]
    with pytest.raises(WarehouseError, match="wrote 1 row"):
        wh.replace_partitions("raw.usage", rows, [date(2024, 3, 1)])
    assert stub.ops("jobs.insert") == [] and len(stub.ops("tables.delete")) == 1


# =========================================================================== HTTP: queries


def test_query_qualifies_datasets_types_parameters_labels_and_returns_python_values(
    stub: BigQueryStub, wh: BigQueryBackend
) -> None:
    schema = [
        {"name": "amount_usd", "type": "NUMERIC", "mode": "NULLABLE"},
        {"name": "usage_date", "type": "DATE", "mode": "NULLABLE"},
        {"name": "ingested_at", "type": "TIMESTAMP", "mode": "NULLABLE"},
        {"name": "models", "type": "RECORD", "mode": "REPEATED",
         "fields": [{"name": "model", "type": "STRING"}, {"name": "n", "type": "INTEGER"}]},
    ]
    rows = [[Decimal("0.000000001"), "2024-03-01", T0, [{"model": "m", "n": 2}]],
            [None, "2024-03-02", None, []], [Decimal("5"), "2024-03-03", None, []]]
    stub.add_query_result(lambda c: "SELECT" in c["query"]["query"], schema, rows)
    stub.page_size = 2  # results come in two pages

    out = wh.query("SELECT amount_usd, usage_date, ingested_at, models FROM raw.usage u JOIN ref.people USING (email) "
                   "WHERE usage_date IN UNNEST(@days) AND amount_usd > @min AND note = 'raw.usage'",
                   {"days": [date(2024, 3, 1)], "min": Decimal("0.000000001")})

    assert out == [
        {"amount_usd": Decimal("0.000000001"), "usage_date": date(2024, 3, 1),
         "ingested_at": datetime(2024, 3, 2, 1, 30, tzinfo=UTC), "models": [{"model": "m", "n": 2}]},
        {"amount_usd": None, "usage_date": date(2024, 3, 2), "ingested_at": None, "models": []},
        {"amount_usd": Decimal("5"), "usage_date": date(2024, 3, 3), "ingested_at": None, "models": []},
    ]
    job = stub.job_configs()[0]
    assert job["query"]["query"] == (
        "SELECT amount_usd, usage_date, ingested_at, models FROM `test-proj`.ai_usage_raw.usage AS u "
        "JOIN `test-proj`.ai_usage_ref.people USING (email) WHERE usage_date IN UNNEST(@days) "
        "AND amount_usd > @min AND note = 'raw.usage'")
    assert job["query"]["queryParameters"] == [
        {"name": "days", "parameterType": {"type": "ARRAY", "arrayType": {"type": "DATE"}},
         "parameterValue": {"arrayValues": [{"value": "2024-03-01"}]}},
        {"name": "min", "parameterType": {"type": "NUMERIC"}, "parameterValue": {"value": "0.000000001"}}]
    assert job["labels"] == {"app": "ai-usage", "airflow_dag": "ingest_cursor", "airflow_task": "load-usage",
                             "operation": "query"}
    assert len([r for r in stub.ops("jobs.getQueryResults") if "pageToken" in r.query]) == 1


def test_run_sql_file_labels_the_job_with_the_file(stub: BigQueryStub, wh: BigQueryBackend, include: Path) -> None:
    path = include / "sql" / "marts" / "refresh_monthly.sql"
    path.parent.mkdir(parents=True)
    path.write_text("-- Rebuild the touched months.\nDELETE FROM marts.monthly WHERE month IN UNNEST(@months)\n")
    # an unused extra parameter is dropped, as on DuckDB (one call site serves both backends)
    assert wh.run_sql_file("marts/refresh_monthly.sql", {"months": [date(2024, 2, 1)], "unused": 1}) == []
    job = stub.job_configs()[0]
    assert job["query"]["query"] == ("/* Rebuild the touched months. */ "  # the comment stays visible in the console
                                     "DELETE FROM `test-proj`.ai_usage_marts.monthly WHERE month IN UNNEST(@months)")
    assert job["labels"]["sql_file"] == "refresh_monthly" and job["labels"]["operation"] == "sql_file"
    assert [p["name"] for p in job["query"]["queryParameters"]] == ["months"]
    config = wh.insert_job_configuration(path.read_text(), {"months": [date(2024, 2, 1)]}, sql_file="x")
    assert config["query"]["query"] == job["query"]["query"]
    assert config["query"]["queryParameters"] == job["query"]["queryParameters"]


def test_a_failed_query_is_a_warehouse_error_and_bad_params_send_nothing(
    stub: BigQueryStub, wh: BigQueryBackend
) -> None:
    with pytest.raises(WarehouseError, match="cannot infer"):
        wh.query("SELECT @x", {"x": object()})
    with pytest.raises(WarehouseError, match="does not parse"):
        wh.query("SELEC oops FROM")
    with pytest.raises(WarehouseError, match=r"needs parameter\(s\) \['@day'\]"):
        wh.query("SELECT * FROM raw.usage WHERE usage_date = @day", {"other": 1})
    with pytest.raises(ContractError, match="needs a list of values"):
        wh.replace_where("ops.runs", [], {"run_id": "r1"})
    assert stub.requests == []
    stub.fail_jobs(lambda c: True, message="Unrecognized name: nope")
    with pytest.raises(WarehouseError, match="Unrecognized name: nope"):
        wh.query("SELECT nope FROM raw.usage")


def test_inventory_reads_every_existing_table_in_one_query(stub: BigQueryStub, wh: BigQueryBackend) -> None:
    seed(stub, wh, "raw.usage", "ops.runs")
    stub.add_query_result(
        lambda c: "row_count" in c["query"]["query"],
        [{"name": "i", "type": "INTEGER"}, {"name": "row_count", "type": "INTEGER"},
         {"name": "min_date", "type": "DATE"}, {"name": "max_date", "type": "DATE"},
         {"name": "partitions", "type": "INTEGER"}],
        [[1, 12, "2024-03-01", "2024-03-03", 3], [0, 2, None, None, None]],   # UNION ALL keeps no order
    )
    inv = wh.inventory()
    assert [(i.table, i.rows, i.partition_field, i.min_date, i.max_date, i.partitions) for i in inv] == [
        ("ops.runs", 2, None, None, None, None),
        ("raw.usage", 12, "usage_date", date(2024, 3, 1), date(2024, 3, 3), 3),
    ]
    (job,) = stub.job_configs()
    sql = job["query"]["query"]
    assert "FROM `test-proj.ai_usage_raw.usage`" in sql and "FROM `test-proj.ai_usage_ops.runs`" in sql
    assert "ai_usage_marts" not in sql  # missing tables (and datasets) are skipped
    assert len(sqlglot.parse(sql, read="bigquery")) == 1
    assert job["labels"]["operation"] == "inventory"


# =========================================================================== wiring


def test_client_is_lazy_and_the_factory_builds_this_backend(include: Path) -> None:
    backend = get_warehouse(CONFIG, gcp_conn_id="no_such_connection")
    assert isinstance(backend, BigQueryBackend) and backend._client is None
    assert backend.table_id("raw.usage") == "test-proj.ai_usage_raw.usage"
    with pytest.raises(ContractError):  # validation needs no client
        backend.append_rows("raw.usage", [{"nope": 1}])
    assert backend._client is None


def test_a_down_endpoint_fails_fast_with_a_warehouse_error(include: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = BigQueryBackend(CONFIG, client=make_client(f"http://127.0.0.1:{port}"), timeout=2,
                              retry=Retry(timeout=3, initial=0.2, maximum=0.5))
    started = time.monotonic()
    with pytest.raises(WarehouseError, match="BigQuery dataset"):
        backend.ensure_tables(["ops.runs"])
    assert time.monotonic() - started < 20


def test_the_real_contracts_map_to_valid_bigquery_tables(stub: BigQueryStub, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shipped contract: its table is created over HTTP exactly as defined, a second run finds no
    drift, and its MERGE parses as BigQuery."""
    monkeypatch.delenv("AI_USAGE_INCLUDE", raising=False)
    contracts = load_contracts()
    if not contracts:
        pytest.fail("include/schemas holds no contracts yet")
    backend = BigQueryBackend(CONFIG, client=make_client(stub.url), timeout=5, retry=Retry(timeout=5))
    assert {c.action for c in backend.ensure_tables()} == {"created"}
    sent = {(r.json["tableReference"]["datasetId"], r.json["tableReference"]["tableId"]): r.json
            for r in stub.ops("tables.insert")}
    assert {c.action for c in backend.ensure_tables()} == {"unchanged"}
    for name, contract in contracts.items():
        table_id = backend.table_id(contract)
        resource = sent[(CONFIG.dataset(contract.dataset), contract.name)]
        assert resource == table_definition(contract, table_id).to_api_repr(), name
        assert len(resource["schema"]["fields"]) == len(contract.columns), name
        if contract.partition_field:
            assert resource["timePartitioning"]["field"] == contract.partition_field, name
        sql = jobs.merge_sql(contract, table_id, f"{PROJECT}.ai_usage_{contract.dataset}._stg_x",
                             dates=contract.partition_field is not None)
        assert len(sqlglot.parse(sql, read="bigquery")) == 1, name


def test_without_an_injected_client_the_google_provider_hook_authenticates_and_is_used(
    stub: BigQueryStub, include: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The production path: BigQueryHook reads the Airflow connection (a service-account key whose
    token_uri is the stub), signs a JWT, gets a token, and the client it builds sends it on every call;
    BIGQUERY_EMULATOR_HOST redirects the API to the stub."""
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    account = {"type": "service_account", "project_id": PROJECT, "private_key_id": "k1", "private_key": pem,
               "client_email": f"loader@{PROJECT}.iam.gserviceaccount.com", "client_id": "1",
               "token_uri": f"{stub.url}/token"}
    monkeypatch.setenv("AIRFLOW_CONN_BQ_TEST", json.dumps({
        "conn_type": "google_cloud_platform", "extra": {"keyfile_dict": json.dumps(account), "project": PROJECT}}))
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", stub.url)

    backend = BigQueryBackend(CONFIG, gcp_conn_id="bq_test", timeout=5, retry=Retry(timeout=5))
    assert backend._client is None
    try:
        assert [c.action for c in backend.ensure_tables(["ops.runs"])] == ["created"]
    finally:
        backend.close()

    token, *api = stub.requests
    assert token.operation == "oauth2.token"
    header, payload, signature = token.json["assertion"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    assert claims["iss"] == account["client_email"]
    key.public_key().verify(base64.urlsafe_b64decode(signature + "=="), f"{header}.{payload}".encode(),
                            padding.PKCS1v15(), hashes.SHA256())  # raises if the JWT was not signed by the key
    assert [r.operation for r in api] == ["datasets.get", "datasets.insert", "tables.get", "tables.insert"]
    assert {r.headers.get("authorization") for r in api} == {f"Bearer {stub.access_token}"}
