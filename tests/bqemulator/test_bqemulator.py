"""The BigQuery backend against bqemulator: the statements it sends actually execute, with real data.

Run with ``tests/bqemulator/run.sh``. Where the stub tests prove *what* is sent, these prove that the
MERGE replaces exactly the partitions in scope, that values survive the JSON load exactly, and that
staging tables are gone afterwards. bqemulator executes BigQuery SQL on DuckDB, so it is evidence, not
proof, of BigQuery's own behaviour.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from ai_usage.exceptions import ContractError
from ai_usage.settings import BigQueryConfig
from ai_usage.warehouse.bigquery_backend import BigQueryBackend
from ai_usage.warehouse.contracts import load_contracts
from tests.test_warehouse_bigquery import TABLES, usage_row, write_contracts

pytestmark = pytest.mark.bqemulator
PROJECT = "emu-proj"
D1, D2, D3 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)


def _client() -> bigquery.Client:
    return bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(),
                           client_options={"api_endpoint": os.environ["BQEMULATOR_URL"]})


@pytest.fixture
def wh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BigQueryBackend]:
    """A backend on its own dataset prefix (the emulator is shared by all tests of a run)."""
    monkeypatch.setenv("AI_USAGE_INCLUDE", str(write_contracts(tmp_path / "include", TABLES)))
    config = BigQueryConfig(project=PROJECT, location=None, dataset_prefix=f"t{uuid.uuid4().hex[:12]}")
    backend = BigQueryBackend(config, client=_client(), timeout=30, job_timeout=120, retry=Retry(timeout=30))
    backend.ensure_tables()
    yield backend
    backend.close()


def usage(wh: BigQueryBackend) -> list[tuple[Any, ...]]:
    rows = wh.query("SELECT usage_date, email, amount_usd, _run_id FROM raw.usage ORDER BY usage_date, email")
    return [(r["usage_date"], r["email"], r["amount_usd"], r["_run_id"]) for r in rows]


def staging_tables(wh: BigQueryBackend) -> list[str]:
    return [t.table_id for t in wh.client.list_tables(wh.dataset_id("raw")) if t.table_id.startswith("_stg_")]


def test_ensure_tables_is_idempotent_on_the_emulator(wh: BigQueryBackend) -> None:
    assert {c.action for c in wh.ensure_tables()} == {"unchanged"}
    table = wh.client.get_table(wh.table_id("raw.usage"))
    assert table.time_partitioning.field == "usage_date"
    assert [f.name for f in table.schema][:3] == ["usage_date", "email", "sessions"]


def test_replace_partitions_replaces_exactly_the_dates_in_scope_and_reruns_are_stable(wh: BigQueryBackend) -> None:
    wh.replace_partitions("raw.usage", [usage_row(d, "a@x", "1", _run_id="old") for d in (D1, D2, D3)],
                          [D1, D2, D3])
    new = [usage_row(D1, "a@x", "0.000000001", _run_id="new"), usage_row(D1, "b@x", "12345678901234567890.5",
                                                                         _run_id="new")]
    for _ in range(2):  # the second run must change nothing
        assert wh.replace_partitions("raw.usage", iter([new]), [D1, D2]) == 2
        assert usage(wh) == [
            (D1, "a@x", Decimal("0.000000001"), "new"),
            (D1, "b@x", Decimal("12345678901234567890.5"), "new"),
            (D3, "a@x", Decimal("1"), "old"),           # outside the scope: untouched; D2 emptied
        ]
    assert staging_tables(wh) == []


def test_nested_records_and_timestamps_round_trip(wh: BigQueryBackend) -> None:
    at = datetime(2024, 3, 1, 23, 59, 59, 123456, tzinfo=UTC)
    row = usage_row(D1, "a@x", models=[{"model": "m1", "cost_usd": Decimal("0.25")}, {"model": "m2"}],
                    _ingested_at=at)
    wh.replace_partitions("raw.usage", [row], [D1])
    (out,) = wh.query("SELECT models, _ingested_at FROM raw.usage")
    assert out["_ingested_at"] == at
    assert out["models"] == [{"model": "m1", "cost_usd": Decimal("0.25")}, {"model": "m2", "cost_usd": None}]


def test_zero_rows_empty_the_scope(wh: BigQueryBackend) -> None:
    wh.replace_partitions("raw.usage", [usage_row(d, "a@x") for d in (D1, D2)], [D1, D2])
    assert wh.replace_partitions("raw.usage", [], [D2]) == 0
    assert [r[0] for r in usage(wh)] == [D1]


def test_replace_where_append_and_whole_table_replace(wh: BigQueryBackend) -> None:
    assert wh.append_rows("ops.runs", [{"run_id": "r1", "source": "cursor", "rows": 1},
                                       {"run_id": "r2", "source": "claude", "rows": 2}]) == 2
    wh.replace_where("ops.runs", [{"run_id": "r1", "source": "cursor", "rows": 10}], {"run_id": ["r1"]})
    rows = wh.query("SELECT run_id, `rows` FROM ops.runs ORDER BY run_id")
    assert [(r["run_id"], r["rows"]) for r in rows] == [("r1", 10), ("r2", 2)]
    with pytest.raises(ContractError):
        wh.replace_where("ops.runs", [{"run_id": "r3", "source": "x"}], {"run_id": ["r1"]})
    wh.replace_partitions("ops.runs", [{"run_id": "r9", "source": "x"}], None)
    assert [r["run_id"] for r in wh.query("SELECT run_id FROM ops.runs")] == ["r9"]
    assert staging_tables(wh) == []


def test_queries_bind_typed_parameters_and_inventory_counts(wh: BigQueryBackend) -> None:
    wh.replace_partitions("raw.usage", [usage_row(D1, "a@x", "1.000000001"), usage_row(D2, "b@x", "2"),
                                        usage_row(D3, "c@x", "3")], [D1, D2, D3])
    rows = wh.query("SELECT email FROM raw.usage WHERE usage_date IN UNNEST(@days) AND amount_usd >= @min "
                    "ORDER BY email", {"days": [D1, D2], "min": Decimal("1.000000001")})
    assert [r["email"] for r in rows] == ["a@x", "b@x"]
    (total,) = wh.query("SELECT SUM(amount_usd) AS s FROM raw.usage")
    assert total["s"] == Decimal("6.000000001")
    inventory = {i.table: i for i in wh.inventory()}
    assert (inventory["raw.usage"].rows, inventory["raw.usage"].min_date, inventory["raw.usage"].max_date,
            inventory["raw.usage"].partitions) == (3, D1, D3, 3)
    assert inventory["ops.runs"].rows == 0 and inventory["ops.runs"].partitions is None


def test_the_real_contracts_create_and_stay_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AI_USAGE_INCLUDE", raising=False)
    assert load_contracts(), "include/schemas holds no contracts"
    config = BigQueryConfig(project=PROJECT, location=None, dataset_prefix=f"r{uuid.uuid4().hex[:12]}")
    backend = BigQueryBackend(config, client=_client(), timeout=30, job_timeout=120, retry=Retry(timeout=30))
    assert {c.action for c in backend.ensure_tables()} == {"created"}
    assert {c.action for c in backend.ensure_tables()} == {"unchanged"}
