"""`sandbox.bench_deployed`: the running Airflow `make bench` measures a backfill on.

One test starts the real components (api-server, scheduler with the LocalExecutor, dag-processor) on a
private Airflow home with a small probe DAG and checks what the benchmark relies on: out-of-scope tasks are
marked success and never start, in-scope tasks run in processes of their own whose peak memory is found,
and the wall time ends at the runs' recorded end. Speed is measured by `make bench`, never asserted here.
"""

from __future__ import annotations

import pytest

from sandbox.bench import airflow_env, prepare_airflow_home
from sandbox.bench_deployed import Deployment, is_task_process, upstream_closure
from sandbox.bench_sim import child_env

PROBE_DAG = '''
from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="bench_probe", schedule="@daily", start_date=datetime(2025, 1, 1), catchup=False)
def bench_probe():
    @task
    def first() -> int:
        import time

        started = time.process_time()
        while time.process_time() - started < 1.0:  # a second of CPU the sampler must see in this task
            pass
        return 1

    @task
    def second(value: int) -> int:
        from airflow.sdk import get_current_context

        assert get_current_context()["dag_run"].conf == {"start": "2026-01-01"}, "the conf reaches the task"
        return value + 1

    @task
    def out_of_scope() -> None:
        raise RuntimeError("marked success: must never run")

    second(first())
    out_of_scope()


bench_probe()
'''


def test_upstream_closure_takes_the_scope_and_everything_upstream() -> None:
    downstream = {"plan": ["daily_usage", "usage_events"], "daily_usage": ["csv_inbox"], "usage_events": [],
                  "members": [], "csv_inbox": []}
    assert upstream_closure(downstream, ("daily_usage", "members")) == {"plan", "daily_usage", "members"}
    assert upstream_closure(downstream, ("csv_inbox",)) == {"plan", "daily_usage", "csv_inbox"}
    assert upstream_closure(downstream, ("not_a_task",)) == set()
    assert upstream_closure(downstream, None) == set(downstream)


def test_a_task_process_is_told_from_an_executor_worker_by_its_title() -> None:
    assert is_task_process("airflow worker -- 01a250d6-d832-762c-b971-cc95eb16420c")
    assert not is_task_process("airflow worker -- LocalExecutor: <idle>")
    assert not is_task_process("airflow scheduler")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("deployed")
    dags = work / "dags"
    dags.mkdir()
    (dags / "bench_probe.py").write_text(PROBE_DAG, encoding="utf-8")
    env = child_env(airflow_env(work))
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    for var in [v for v in env if v.startswith("AIRFLOW_CONN_")]:
        env.pop(var)
    prepare_airflow_home(work, env)
    running = Deployment(work, env)
    running.start(["bench_probe"])
    yield running
    running.stop()


def test_a_measured_run_marks_the_rest_success_and_measures_the_tasks_it_ran(deployment: Deployment) -> None:
    wanted = deployment.run_set("bench_probe", ("second",))
    assert wanted == {"first", "second"}

    result = deployment.run({"bench_probe": wanted}, {"start": "2026-01-01"}, timeout_s=300)

    assert result["ok"], result["dags"]
    (run,) = result["dags"]
    tasks = {t["task_id"]: t for t in run["tasks"]}
    assert run["marked"] == ["out_of_scope"]
    assert tasks["out_of_scope"]["state"] == "success" and tasks["out_of_scope"]["marked"]
    assert tasks["out_of_scope"]["duration_s"] in (0.0, None), "marked success: it never ran"
    assert tasks["out_of_scope"]["peak_rss_kib"] is None, "no process ran it"
    for task_id in ("first", "second"):
        assert tasks[task_id]["state"] == "success" and not tasks[task_id]["marked"]
        assert tasks[task_id]["peak_rss_kib"] and tasks[task_id]["peak_rss_kib"] > 50 * 1024  # Airflow is loaded
    # CPU per task: its own process's, so the second of work shows in first's figure and not in second's.
    assert tasks["out_of_scope"]["cpu_s"] is None
    assert tasks["first"]["cpu_s"] >= 1.0 and tasks["second"]["cpu_s"] > 0
    assert tasks["first"]["cpu_s"] - tasks["second"]["cpu_s"] >= 0.8
    assert result["peak_task_kib"] == max(tasks["first"]["peak_rss_kib"], tasks["second"]["peak_rss_kib"])
    # The wall ends at the last run's recorded end: no later than the poll that saw it finish.
    assert 0 < result["wall_s"] <= result["polled_s"] + 0.5
    assert run["seconds"] is not None and run["seconds"] <= result["wall_s"] + 0.5
    assert result["machine_busy_cpu_s"] > 0
    # Schedules are off in the benchmark's deployment: unpausing created no scheduled run of this @daily DAG.
    runs = deployment.api("GET", "/api/v2/dags/bench_probe/dagRuns")["dag_runs"]
    assert [r["run_type"] for r in runs] == ["manual"]


def test_stopping_reports_each_components_peak(deployment: Deployment) -> None:
    peaks = deployment.stop()
    assert set(peaks) == {"api-server", "scheduler", "dag-processor"}
    assert all(kib > 50 * 1024 for kib in peaks.values())
    assert all(proc.returncode is not None for proc in deployment.procs.values())
