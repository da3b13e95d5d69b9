"""Test-session set-up: an isolated Airflow home per xdist worker, configured before anything imports Airflow.

Airflow reads its configuration at import time, so the environment is set here at conftest import. Each
worker gets its own metadata DB: a copy of the one `make setup` migrated (fast), else a fresh migration.
Every test gets its own warehouse, archive and inbox under tmp_path, so no test touches `.ai_usage/`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
_home = Path(tempfile.mkdtemp(prefix=f"ai-usage-airflow-{_worker}-"))

os.environ["AIRFLOW_HOME"] = str(_home)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["GX_ANALYTICS_ENABLED"] = "False"
os.environ.pop("AI_USAGE_WAREHOUSE", None)
for _var in [v for v in os.environ if v.startswith("AIRFLOW_CONN_")]:
    os.environ.pop(_var)

_template = ROOT / ".ai_usage" / "airflow" / "airflow.db"


def _prepare_metadata_db() -> None:
    target = _home / "airflow.db"
    if target.exists():
        return
    if _template.exists():
        shutil.copyfile(_template, target)
        # The template may be older than the installed Airflow: migrating an up-to-date DB is a quick no-op.
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True, capture_output=True, env=dict(os.environ), timeout=300,
    )


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata DB for this worker (needed by dag.test())."""
    _prepare_metadata_db()
    return _home / "airflow.db"


@pytest.fixture(autouse=True)
def _isolated_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test writes its warehouse, archive and inbox under its own tmp_path."""
    state = tmp_path / "state"
    monkeypatch.setenv("AI_USAGE_WAREHOUSE", f"duckdb:///{state}/warehouse.duckdb")  # state is absolute: four slashes
    monkeypatch.setenv("AI_USAGE_ARCHIVE", "file:///" + str(state / "archive"))
    monkeypatch.setenv("AI_USAGE_INBOX", "file:///" + str(state / "inbox"))
    return state
