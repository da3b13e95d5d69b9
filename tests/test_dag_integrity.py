"""Tier 1: every DAG file imports with no error, no network and no connection, and follows the house rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DAG_FILES = sorted(p for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))

# Runs in a fresh interpreter so nothing earlier in the session (sockets, connections) can hide a parse-time
# side effect. Network and Connection/Variable look-ups are made to fail loudly while the DAGs are parsed.
_PARSE_SCRIPT = r"""
import json, os, socket, sys

def _no_network(*a, **k):
    raise RuntimeError("network access at DAG-parse time")
socket.socket.connect = _no_network
socket.create_connection = _no_network

from airflow.sdk import BaseHook, Variable
def _no_lookup(*a, **k):
    raise RuntimeError("Connection/Variable read at DAG-parse time")
BaseHook.get_connection = classmethod(_no_lookup)
Variable.get = staticmethod(_no_lookup)

from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "fileloc": dag.fileloc,
        "tags": sorted(dag.tags or []),
        "doc_md": dag.doc_md or "",
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "tasks": {
            t.task_id: {
                "owner": t.owner,
                "retries": t.retries,
                "on_failure_callback": bool(t.on_failure_callback),
            }
            for t in dag.tasks
        },
    }
print("JSON:" + json.dumps(out))
"""


def _parse(warehouse: str) -> dict:
    env = dict(os.environ, AI_USAGE_WAREHOUSE=warehouse)
    env.pop("AIRFLOW_CONN_CURSOR_ADMIN", None)
    proc = subprocess.run(
        [sys.executable, "-c", _PARSE_SCRIPT, str(ROOT / "dags")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("JSON:"))
    return json.loads(line[5:])


@pytest.fixture(scope="module", params=["duckdb:///.ai_usage/warehouse.duckdb", "bigquery://my-project-123?location=EU"])
def parsed(request: pytest.FixtureRequest) -> dict:
    """The DAG bag parsed under each warehouse backend (the one setting allowed at parse time)."""
    return _parse(request.param)


def test_dag_folder_is_not_empty() -> None:
    assert DAG_FILES, "dags/ holds no DAG files"


def test_no_import_errors(parsed: dict) -> None:
    assert parsed["errors"] == {}


def test_one_dag_per_file_named_after_it(parsed: dict) -> None:
    by_file = {Path(d["fileloc"]).stem: dag_id for dag_id, d in parsed["dags"].items()}
    assert sorted(by_file) == sorted(p.stem for p in DAG_FILES)
    for stem, dag_id in by_file.items():
        assert stem == dag_id, f"dags/{stem}.py defines {dag_id!r}: file name must equal dag_id"


def test_house_rules(parsed: dict) -> None:
    problems = []
    for dag_id, d in parsed["dags"].items():
        if not d["tags"]:
            problems.append(f"{dag_id}: no tags")
        if len(d["doc_md"].strip()) < 80:
            problems.append(f"{dag_id}: doc_md missing or too short to help an operator")
        if d["catchup"]:
            problems.append(f"{dag_id}: catchup must be off (backfills go through the run conf)")
        for task_id, t in d["tasks"].items():
            if t["owner"] in ("", "airflow", None):
                problems.append(f"{dag_id}.{task_id}: no owner")
            if t["retries"] < 2:
                problems.append(f"{dag_id}.{task_id}: retries={t['retries']} < 2")
            if not t["on_failure_callback"]:
                problems.append(f"{dag_id}.{task_id}: no failure callback")
    assert problems == []


def test_parse_guard_catches_parse_time_lookups(tmp_path: Path) -> None:
    """The guard above must really fail a DAG file that reads a Connection at parse time."""
    bad = tmp_path / "bad_dag.py"
    bad.write_text(
        "# a dag file\nfrom airflow.sdk import BaseHook, dag\nBaseHook.get_connection('cursor_admin')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", _PARSE_SCRIPT, str(tmp_path)],
        capture_output=True, text=True, env=dict(os.environ), timeout=300,
    )
    out = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("JSON:"))[5:])
    assert any("Connection/Variable read at DAG-parse time" in e for e in out["errors"].values())
