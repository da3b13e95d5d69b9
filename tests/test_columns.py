"""ai_usage.columns and their conversion to Arrow: a Columns batch loads exactly like the same rows as dicts."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from ai_usage.columns import Columns, RecordLists, Repeated
from ai_usage.exceptions import ContractError
from ai_usage.warehouse import arrow
from ai_usage.warehouse.contracts import get_contract

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def claude_batch() -> Columns:
    return Columns({
        "usage_date": [date(2026, 3, 1), date(2026, 3, 1), date(2026, 3, 2)],
        "actor_type": ["user_actor", "api_actor", "user_actor"],
        "actor_id": ["a@x.com", "key", "b@x.com"],
        "terminal_type": ["vscode", "unknown", "tmux"],
        "customer_type": ["api", "api", "subscription"],
        "num_sessions": [1, None, 3],
        "tool_actions": RecordLists([0, 2, 2, 3], {"tool": ["edit_tool", "write_tool", "edit_tool"],
                                                   "accepted": [1, 2, None], "rejected": [0, 1, 0]}),
        "model_breakdown": RecordLists([0, 1, 1, 3], {
            "model": ["m1", "m2", "m3"], "input_tokens": [10, 20, 30],
            "estimated_cost_usd": [Decimal("0.61"), None, Decimal("123456789.123456789")],
            "estimated_cost_amount_raw": ["61", None, "12345678912.3456789"]}),
        "estimated_cost_usd": [Decimal("0.61"), None, Decimal("123456789.123456789")],
        "_ingested_at": Repeated(NOW, 3),
        "_run_id": Repeated("run-1", 3),
    })


def test_rows_take_and_concat_keep_every_value() -> None:
    batch = claude_batch()
    rows = list(batch.rows())
    assert rows[0]["tool_actions"] == [{"tool": "edit_tool", "accepted": 1, "rejected": 0},
                                       {"tool": "write_tool", "accepted": 2, "rejected": 1}]
    assert rows[1]["tool_actions"] == [] and rows[1]["_run_id"] == "run-1"
    assert rows[2]["model_breakdown"][1]["model"] == "m3"
    assert list(batch.take([2, 0]).rows()) == [rows[2], rows[0]]
    both = Columns.concat([batch, batch.take([1])])
    assert list(both.rows()) == [*rows, rows[1]]
    assert isinstance(both.data["_run_id"], Repeated) and len(both.data["_run_id"]) == 4


def test_columns_of_different_lengths_or_names_are_refused() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        Columns({"a": [1, 2], "b": [1]})
    with pytest.raises(ValueError, match="same columns"):
        Columns.concat([Columns({"a": [1]}), Columns({"b": [1]})])
    with pytest.raises(ValueError, match="offsets"):
        RecordLists([0, 2], {"tool": ["x"]})


def test_a_batch_converts_to_the_same_arrow_table_as_its_rows() -> None:
    contract = get_contract("raw.claude_code_usage")
    batch = claude_batch()
    from_columns = arrow.page_to_table(contract, batch)
    from_rows = arrow.page_to_table(contract, list(batch.rows()))
    assert from_columns.equals(from_rows)
    assert from_columns.column("model_breakdown").to_pylist()[2][1]["estimated_cost_usd"] == \
        Decimal("123456789.123456789")


def test_a_batch_is_checked_like_rows() -> None:
    contract = get_contract("raw.claude_code_usage")
    missing = Columns({**claude_batch().data, "actor_id": ["a@x.com", None, "b@x.com"]})
    with pytest.raises(ContractError, match=r"row 12, column actor_id: REQUIRED"):
        arrow.page_to_table(contract, missing, first_row=11)
    nested = claude_batch()
    nested.data["model_breakdown"] = RecordLists([0, 1, 1, 3], {"model": ["m1", None, "m3"]})
    with pytest.raises(ContractError, match=r"row 3, column model_breakdown\[\]\.model: REQUIRED"):
        arrow.page_to_table(contract, nested)
    floats = claude_batch()
    floats.data["estimated_cost_usd"] = [0.61, None, None]
    with pytest.raises(ContractError, match="floats are refused"):
        arrow.page_to_table(contract, floats)
    unknown = Columns({**claude_batch().data, "surprise": [1, 2, 3]})
    with pytest.raises(ContractError, match="unknown column"):
        arrow.page_to_table(contract, unknown)
    lineage = Columns({**claude_batch().data, "_run_id": Repeated(None, 3)})
    with pytest.raises(ContractError, match="_run_id: REQUIRED"):
        arrow.page_to_table(contract, lineage)


def test_arrow_columns_are_checked_by_type_and_nulls() -> None:
    contract = get_contract("raw.claude_code_usage")
    typed = claude_batch()
    typed.data["actor_id"] = pa.array(["a@x.com", "key", "b@x.com"], type=pa.string())
    typed.data["num_sessions"] = pa.array([1, None, 3], type=pa.int64())
    typed.data["tool_actions"].fields["accepted"] = pa.array([1, 2, None], type=pa.int64())
    assert arrow.page_to_table(contract, typed).equals(arrow.page_to_table(contract, claude_batch()))
    assert list(typed.rows()) == list(claude_batch().rows())
    assert list(typed.take([2, 0]).rows()) == list(claude_batch().take([2, 0]).rows())
    joined = Columns.concat([typed, typed])
    assert isinstance(joined.data["actor_id"], pa.Array) and len(joined.data["actor_id"]) == 6
    wrong = claude_batch()
    wrong.data["num_sessions"] = pa.array([1, None, 3], type=pa.int32())
    with pytest.raises(ContractError, match=r"column num_sessions: an Arrow int32 column where the contract has INT64"):
        arrow.page_to_table(contract, wrong)
    missing = claude_batch()
    missing.data["actor_id"] = pa.array(["a@x.com", None, "b@x.com"], type=pa.string())
    with pytest.raises(ContractError, match=r"row 2, column actor_id: REQUIRED"):
        arrow.page_to_table(contract, missing)
    nested = claude_batch()
    nested.data["tool_actions"].fields["tool"] = pa.array(["edit_tool", None, "x"], type=pa.string())
    with pytest.raises(ContractError, match=r"row 1, column tool_actions\[\]\.tool: REQUIRED"):
        arrow.page_to_table(contract, nested)


def test_small_batches_are_joined_and_rows_are_regrouped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrow, "BATCH_ROWS", 5)
    batch = Columns({"a": [1, 2, 3]})
    pages = list(arrow.iter_pages([[{"a": 7}], [{"a": 8}], batch, batch, batch, [{"a": 9}], batch], page_rows=5))
    assert [type(p).__name__ for p in pages] == ["list", "Columns", "Columns", "list", "Columns"]
    assert [len(p) for p in pages] == [2, 6, 3, 1, 3]
    assert list(pages[1].rows()) == [{"a": 1}, {"a": 2}, {"a": 3}] * 2


def test_converting_rows_does_not_import_pandas() -> None:
    """pyarrow's first conversion would import pandas (seconds, tens of MiB) in every ingest task."""
    code = (
        "import sys\n"
        "from ai_usage.warehouse import arrow\n"
        "from ai_usage.warehouse.contracts import get_contract\n"
        "from tests.test_columns import claude_batch\n"
        "arrow.page_to_table(get_contract('raw.claude_code_usage'), claude_batch())\n"
        "assert 'pandas' not in sys.modules, 'pandas was imported'\n"
        "import pandas as pd, pyarrow as pa\n"
        "arrow.pandas_ready()\n"
        "assert pa.Table.from_pandas(pd.DataFrame({'a': [1.5, None]})).column('a').to_pylist() == [1.5, None]\n"
        "assert pa.array(pd.Series(['x', None])).to_pylist() == ['x', None]\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_repeated_behaves_as_a_sequence() -> None:
    r = Repeated("x", 3)
    assert list(r) == ["x", "x", "x"] and r[2] == "x" and r[-1] == "x" and "x" in r and "y" not in r
    assert len(r[1:]) == 2
    with pytest.raises(IndexError):
        r[3]
    assert pa.array(list(r)).to_pylist() == ["x"] * 3
