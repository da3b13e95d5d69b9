"""refresh_marts end to end: a real ingest_cursor run against the simulator lands one day, its asset events
trigger refresh_marts through Airflow (`dag.test()`), and the marts equal the independent computation
from the ground truth; a second run changes nothing; a planted bad row blocks the month and alerts a real
webhook. The reference tables come from the organisation's ground truth, resolved into ref.attribution as
ingest_sheets does (its own e2e test covers the Sheet itself).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ai_usage import attribution
from ai_usage.warehouse import get_warehouse
from sandbox.airflow_env import DagRunFailed, run_dag
from sandbox.org import Organisation
from sandbox.stack import LocalStack
from tests._alert_receivers import HttpReceiver
from tests._marts_truth import Expected, Truth, daily_key, month_of, without_lineage

pytestmark = pytest.mark.e2e

MARTS = ("marts.daily_tool_usage", "marts.daily_usage_breakdown", "marts.monthly_cost_allocation",
         "marts.seat_utilization", "marts.exec_monthly")


@contextlib.contextmanager
def triggered_by(run_id: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the next `dag.test()` run consume the asset events of the DAG run `run_id`, as the scheduler
    does when it creates an asset-triggered run (dag.test() itself only creates manual runs)."""
    import airflow.models.dagrun as dagrun_module
    from airflow.models.asset import AssetEvent
    from sqlalchemy import select

    original = dagrun_module.get_or_create_dagrun

    def consuming(**kwargs):  # type: ignore[no-untyped-def]
        dag_run = original(**kwargs)
        session = kwargs["session"]
        dag_run.consumed_asset_events.extend(
            session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == run_id)))
        session.commit()
        return dag_run

    with monkeypatch.context() as patch:
        patch.setattr(dagrun_module, "get_or_create_dagrun", consuming)
        yield


def marts_content() -> dict[str, list[dict]]:
    with get_warehouse() as wh:
        return {t: sorted(without_lineage(wh.query(f"SELECT * FROM {t}")), key=str) for t in MARTS}


def test_an_ingested_day_refreshes_its_month_and_a_bad_row_blocks_it(airflow_db, monkeypatch) -> None:
    org = Organisation.generate(seed=13, people=12, days=70)
    truth = Truth.of(org)
    day = org.end - timedelta(days=40)
    month = month_of(day)
    with get_warehouse() as wh:  # the Sheet's tables, as ingest_sheets lands them
        wh.ensure_tables()
        lineage = {"_ingested_at": datetime.now(UTC), "_run_id": "sheet"}
        for table in ("ref.people", "ref.api_key_owners", "ref.seat_prices"):
            wh.replace_partitions(table, [{**r, **lineage} for r in truth.tables()[table]], None)
        attribution.rebuild(wh, run_id="sheet")

    with LocalStack(org, ["cursor"]), HttpReceiver() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(
            {"conn_type": "slackwebhook", "host": slack.url, "password": "T0/B0/XYZ"}))
        ingest = run_dag("ingest_cursor", {"start": day.isoformat(), "end": day.isoformat()})
        with triggered_by(ingest.run_id, monkeypatch):
            refresh = run_dag("refresh_marts")

        plan = next(ti for ti in refresh.get_task_instances() if ti.task_id == "plan").xcom_pull(task_ids="plan")
        assert plan["months"] == [month.isoformat()] and plan["days"] == [[day.isoformat(), day.isoformat()]]
        first = marts_content()
        assert {r["month"] for r in first["marts.monthly_cost_allocation"]} == {month}
        assert {r["usage_date"] for r in first["marts.daily_tool_usage"]} == {day}
        assert {r["usage_date"] for r in first["marts.daily_usage_breakdown"]} == {day}
        want = [r for r in Expected(truth, as_of=org.end).daily() if r["usage_date"] == day and r["tool"] == "cursor"]
        assert sorted(first["marts.daily_tool_usage"], key=daily_key) == want and len(want) >= 8
        with get_warehouse() as wh:
            billed = wh.query("SELECT SUM(charged_usd) AS s FROM raw.cursor_usage_events "
                              "WHERE kind = 'Usage-based' AND is_chargeable")[0]["s"]
            allocated = wh.query("SELECT SUM(amount_usd) AS s FROM marts.monthly_cost_allocation "
                                 "WHERE tool = 'cursor' AND cost_kind = 'usage_billed'")[0]["s"]
            results = wh.query("SELECT suite, status FROM ops.dq_results WHERE run_id = @r", {"r": refresh.run_id})
        assert billed == allocated and billed > 0
        assert {r["suite"] for r in results} >= {"raw.cursor_daily_usage", "raw.cursor_usage_events",
                                                 "reconciliation", "completeness", "ref.people"}

        with triggered_by(ingest.run_id, monkeypatch):  # the same events again: nothing changes
            run_dag("refresh_marts")
        assert marts_content() == first

        with get_warehouse() as wh:  # plant a negative charge in the ingested day
            events = wh.query("SELECT * FROM raw.cursor_usage_events WHERE event_date = @d", {"d": day})
            events[0]["charged_usd"] = Decimal("-3.5")
            wh.replace_partitions("raw.cursor_usage_events", events, [day])
        before = len(slack.received)
        with triggered_by(ingest.run_id, monkeypatch), pytest.raises(DagRunFailed, match="gate"):
            run_dag("refresh_marts")
        assert marts_content() == first  # the month was not refreshed with the bad row
        with get_warehouse() as wh:
            failed = wh.query("SELECT table_name, level, check_name, sample_rows FROM ops.dq_results "
                              "WHERE status = 'failed' AND level = 'error'")
        assert [(r["table_name"], r["check_name"]) for r in failed] == [
            ("raw.cursor_usage_events", f"in_set:__negative_columns@{month.isoformat()[:7]}")]
        assert failed[0]["sample_rows"][0]["charged_usd"] == "-3.500000000"
        texts = [m.body.decode() for m in slack.received[before:]]
        digest = [t for t in texts if "GX suites of refresh_marts" in t]
        assert digest and "charged_usd=-3.5" in digest[0] and "raw.cursor_usage_events" in digest[0]
        assert any("Failed: refresh_marts.gate" in t for t in texts)
