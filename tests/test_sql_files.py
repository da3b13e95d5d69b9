"""Every SQL file of include/sql: one BigQuery statement, a one-line comment first, declared parameters,
and it runs on DuckDB against a warehouse created from the real contracts.

Parameter convention: a file that takes query parameters declares them in its leading comment block,

    -- params: start_date DATE, end_date DATE

with BigQuery type names (ARRAY<T> allowed). Every ``@name`` the statement uses must be declared, and
every declared parameter used; the tests run each file with typed sample values of the declared types.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ai_usage.settings import DuckDBConfig
from ai_usage.warehouse.contracts import DATASETS
from ai_usage.warehouse.duckdb_backend import DuckDBBackend
from ai_usage.warehouse.sql import parse_bigquery
from ai_usage.warehouse.transpile import translate

SQL_DIR = Path(__file__).resolve().parents[1] / "include" / "sql"
SQL_FILES = sorted(SQL_DIR.rglob("*.sql"))
_PARAMS = re.compile(r"^--\s*params:\s*(?P<list>.+)$", re.IGNORECASE)
_PARAM = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s+(?P<type>[A-Za-z0-9_<>]+)$")
SAMPLES: dict[str, Any] = {
    "STRING": "sample", "INT64": 1, "FLOAT64": 1.5, "NUMERIC": Decimal("1.5"), "BIGNUMERIC": Decimal("1.5"),
    "BOOL": True, "DATE": date(2024, 5, 15), "TIMESTAMP": datetime(2024, 5, 15, 12, tzinfo=UTC),
    "DATETIME": datetime(2024, 5, 15, 12),
}


def declared_params(text: str) -> dict[str, str]:
    """``-- params: a DATE, b ARRAY<STRING>`` lines of the leading comment block -> {name: type}."""
    params: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        match = _PARAMS.match(line.strip())
        if not match:
            continue
        for item in match["list"].split(","):
            spec = _PARAM.match(item.strip())
            if not spec:
                raise ValueError(f"bad parameter declaration {item.strip()!r}; expected '<name> <TYPE>'")
            params[spec["name"]] = spec["type"].upper()
    return params


def sample_value(name: str, type_: str) -> Any:
    """A typed sample; a range's start comes before its end, so BETWEEN and GENERATE_DATE_ARRAY see a range."""
    if type_.startswith("ARRAY<") and type_.endswith(">"):
        return [sample_value(name, type_[6:-1])]
    if type_ == "DATE" and re.search(r"(^|_)(end|to|until)(_|$)", name):
        return date(2024, 5, 31)
    if type_ == "DATE" and re.search(r"(^|_)(start|from|since)(_|$)", name):
        return date(2024, 5, 1)
    return SAMPLES[type_]


def rel(path: Path) -> str:
    return path.relative_to(SQL_DIR).as_posix()


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DuckDBBackend]:
    """A DuckDB warehouse with every table of the real contracts (include/schemas), empty."""
    monkeypatch.delenv("AI_USAGE_INCLUDE", raising=False)
    with DuckDBBackend(DuckDBConfig(tmp_path / "sql_files.duckdb")) as wh:
        wh.ensure_tables()
        yield wh


def test_there_are_sql_files() -> None:
    assert SQL_FILES, f"no SQL files under {SQL_DIR}"
    assert "ops/select_source_coverage_summary.sql" in {rel(p) for p in SQL_FILES}


def test_the_params_convention() -> None:
    text = "-- What it does.\n-- params: start_date DATE, keys ARRAY<STRING>,n INT64\nSELECT 1"
    assert declared_params(text) == {"start_date": "DATE", "keys": "ARRAY<STRING>", "n": "INT64"}
    assert declared_params("-- What.\nSELECT 1 -- params: x DATE") == {}
    with pytest.raises(ValueError, match="bad parameter"):
        declared_params("-- params: start_date")
    assert sample_value("start_date", "DATE") < sample_value("end_date", "DATE")
    assert sample_value("keys", "ARRAY<STRING>") == ["sample"]


@pytest.mark.parametrize("path", SQL_FILES, ids=rel)
def test_sql_file(path: Path, warehouse: DuckDBBackend) -> None:
    text = path.read_text()
    first = text.splitlines()[0] if text.strip() else ""
    assert re.match(r"^-- \S.*\S$", first), f"{rel(path)} must open with a one-line '-- what it does' comment"
    assert path.parent.name in DATASETS and re.match(r"^[a-z]+_[a-z0-9_]+$", path.stem), \
        f"{rel(path)} must be named include/sql/<dataset>/<verb>_<table>.sql"
    parse_bigquery(text)                                   # exactly one BigQuery statement
    params = declared_params(text)
    used = set(translate(text).parameters)
    assert used == set(params), f"{rel(path)}: uses {sorted(used)}, declares {sorted(params)}"
    warehouse.run_sql_file(path, {name: sample_value(name, t) for name, t in params.items()})


# --------------------------------------------------------------------------- what the ops files compute

CHECKED = datetime(2024, 5, 5, 6, tzinfo=UTC)


def coverage(day: int, source: str, status: str, rows: int) -> dict[str, Any]:
    return {"coverage_date": date(2024, 5, day), "source": source, "status": status, "row_count": rows,
            "checked_at": CHECKED.replace(hour=day), "run_id": "r"}


@pytest.fixture
def covered(warehouse: DuckDBBackend) -> DuckDBBackend:
    warehouse.append_rows("ops.source_coverage", [
        coverage(1, "cursor_daily_usage", "final", 10), coverage(2, "cursor_daily_usage", "final", 12),
        coverage(3, "cursor_daily_usage", "provisional", 5), coverage(4, "cursor_daily_usage", "missing", 0),
        coverage(1, "claude_code_usage", "missing", 0), coverage(2, "claude_code_usage", "provisional", 3),
    ])
    return warehouse


def test_source_coverage_summary(covered: DuckDBBackend) -> None:
    assert covered.run_sql_file("ops/select_source_coverage_summary.sql") == [
        {"source": "claude_code_usage", "days_final": 0, "days_provisional": 1, "days_missing": 1,
         "first_date": date(2024, 5, 2), "last_date": date(2024, 5, 2), "last_final_date": None,
         "row_count": 3, "last_checked_at": CHECKED.replace(hour=2)},
        {"source": "cursor_daily_usage", "days_final": 2, "days_provisional": 1, "days_missing": 1,
         "first_date": date(2024, 5, 1), "last_date": date(2024, 5, 3), "last_final_date": date(2024, 5, 2),
         "row_count": 27, "last_checked_at": CHECKED.replace(hour=4)},
    ]


def test_source_coverage_gaps(covered: DuckDBBackend) -> None:
    out = covered.run_sql_file("ops/select_source_coverage_gaps.sql",
                               {"start_date": date(2024, 4, 30), "end_date": date(2024, 5, 3)})
    assert [(r["source"], r["coverage_date"].day, r["status"], r["row_count"]) for r in out] == [
        ("claude_code_usage", 30, "unchecked", None),
        ("claude_code_usage", 1, "missing", 0),
        ("claude_code_usage", 2, "provisional", 3),
        ("claude_code_usage", 3, "unchecked", None),
        ("cursor_daily_usage", 30, "unchecked", None),
        ("cursor_daily_usage", 3, "provisional", 5),
    ]


def test_latest_ingestion_runs(warehouse: DuckDBBackend) -> None:
    def run(task: str, try_number: int, status: str, hour: int, endpoint: str | None = "/e") -> dict[str, Any]:
        started = datetime(2024, 5, 2, hour, tzinfo=UTC)
        return {"run_date": started.date(), "run_id": f"scheduled__{hour}", "dag_id": "ingest_cursor",
                "task_id": task, "try_number": try_number, "source": "cursor", "endpoint": endpoint,
                "started_at": started, "status": status, "rows_loaded": hour}

    warehouse.append_rows("ops.ingestion_runs", [
        run("daily_usage", 1, "failed", 1), run("daily_usage", 2, "success", 2),
        run("members", 1, "success", 3), run("members", 1, "success", 4, endpoint=None),
    ])
    out = warehouse.run_sql_file("ops/select_ingestion_runs_latest.sql")
    assert [(r["task_id"], r["endpoint"], r["status"], r["rows_loaded"]) for r in out] == [  # NULLs first, as in BigQuery
        ("daily_usage", "/e", "success", 2), ("members", None, "success", 4), ("members", "/e", "success", 3),
    ]
