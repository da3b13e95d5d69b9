"""provision_dashboards end to end: the DAG through Airflow (`dag.test()`) on DuckDB against the Metabase
stand-in on loopback: the marts-only export for Metabase's DuckDB driver, then provisioning; a second run
writes nothing to Metabase."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ai_usage import settings
from ai_usage.dashboards import service
from sandbox.airflow_env import run_dag
from sandbox.metabase_standin import StandInState, build_app
from sandbox.server import SimServer
from tests import _dashboards_data as dd

pytestmark = pytest.mark.e2e


@pytest.fixture
def metabase(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, airflow_db) -> Iterator[tuple[SimServer, StandInState]]:
    config = settings.warehouse()
    assert isinstance(config, settings.DuckDBConfig)
    dd.populated_warehouse(config.path)
    app, state = build_app()
    with SimServer(app) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_METABASE_DEFAULT", json.dumps({
            "conn_type": "metabase", "host": srv.url, "login": state.username, "password": state.password,
            "extra": {"duckdb_export": str(tmp_path / "metabase" / "ai_usage_marts.duckdb"),
                      "subscription_emails": "finance-team@example.com"}}))
        yield srv, state


def test_dag_exports_the_marts_and_provisions_idempotently(metabase, tmp_path: Path) -> None:
    srv, st = metabase
    run_dag("provision_dashboards")
    export = tmp_path / "metabase" / "ai_usage_marts.duckdb"
    con = duckdb.connect(str(export), read_only=True)
    try:
        rows = con.execute("SELECT count(*) FROM marts.monthly_cost_allocation").fetchone()[0]
        schemas = {r[0] for r in con.execute("SELECT DISTINCT schema_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()
    assert rows == len(dd.data().rows("marts.monthly_cost_allocation")) and schemas == {"marts"}
    (database,) = st.databases.values()
    assert database["details"]["database_file"] == str(export)
    assert len(st.dashboards) == 4 and len(st.pulses) == 1
    (pulse,) = st.pulses.values()
    assert [r["email"] for r in pulse["channels"][0]["recipients"]] == ["finance-team@example.com"]
    writes_before = [r for r in srv.requests() if r.method != "GET" and r.path != "/api/session"]
    again = service.provision()  # the DAG's provision step, run again directly (a second dag.test costs ~8 s)
    writes_after = [r for r in srv.requests() if r.method != "GET" and r.path != "/api/session"]
    assert again["changes"] == [] and len(writes_after) == len(writes_before)
