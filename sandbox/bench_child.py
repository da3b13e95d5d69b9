"""The measured process of `make bench`: one fresh interpreter per measurement, started by `sandbox.bench`.

Modes (``python -m sandbox.bench_child <mode> --out result.json``):

- ``parse``: time ``import airflow``, then importing Airflow's DagBag, then parsing every file of dags/.
- ``startup``: ``import airflow`` + DagBag parse and nothing else (the fixed Airflow start-up).
- ``airflow``: start-up + ``dag.test()`` of the benchmarked DAGs with *every* task marked success, so no
  product code runs: Airflow's own cost of running the DAGs (scheduling loop, in-process task runner).
- ``taskrunner``: Airflow's own cost of running the first task in a process (its in-process task runner
  and execution API start on first use): ``dag.test()`` of `NOOP_DAG_ID`, two tasks that do nothing, from
  a dags folder holding only that file (`NOOP_DAG`, written by the parent).
- ``run``: start-up + the real DAG runs through ``dag.test()`` with the backfill conf; tasks outside the
  benchmark's scope are marked success (Airflow's documented ``mark_success_pattern``), their upstream
  tasks run. Afterwards the warehouse is read back (rows per table, ``ops.ingestion_runs``).
- ``pipeline``: the same in-scope streams (`ai_usage.streams`, the DAG tasks' own definitions) run one after
  the other by `ai_usage.pipeline.ingest` in this plain process, without Airflow's scheduler loop, task
  runner or in-process execution API: the product's own cost of the backfill. Read back the same way.

Everything the product needs (Airflow home, warehouse, archive, connections to the simulators, the
``AI_USAGE_*`` settings) arrives through the environment the parent prepared; this module only measures.
Peak memory is taken by the parent (``wait4``'s ``ru_maxrss``); a sampler thread here records the RSS
while each task ran, to show where memory goes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

T0 = time.monotonic()  # as early as possible: everything after interpreter start-up is attributed

# What the benchmark measures, per DAG: the tasks of its scope. Their upstream tasks (the workspace listing
# the cost report names workspaces from) run too; every other task is marked success unrun.
SCOPE: dict[str, tuple[str, ...]] = {
    "ingest_cursor": ("daily_usage", "members", "spend", "usage_events"),
    "ingest_claude": ("claude_code", "cost_report"),
}
# `usage_events` stays in the run set on purpose: the product's own switch AI_USAGE_CURSOR_USAGE_EVENTS=off
# (set by the parent for the in-scope benchmark) makes the task skip, which is what a deployment does.
SAMPLE_EVERY_S = 0.05
NOOP_DAG_ID = "bench_noop"
NOOP_DAG = f'''"""Two tasks that do nothing: Airflow's cost of running tasks, without the product (make bench)."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="{NOOP_DAG_ID}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def bench_noop():
    @task
    def first() -> int:
        return 1

    @task
    def second(value: int) -> int:
        return value + 1

    second(first())


bench_noop()
'''


def rss_kib() -> int:
    """Current resident set size of this process (KiB), from /proc (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Samples this process's RSS every `SAMPLE_EVERY_S` in a daemon thread: (UTC time, KiB)."""

    def __init__(self) -> None:
        self.samples: list[tuple[datetime, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((datetime.now(UTC), rss_kib()))
            self._stop.wait(SAMPLE_EVERY_S)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)

    def peak_between(self, start: datetime | None, end: datetime | None) -> int | None:
        if start is None or end is None:
            return None
        inside = [kib for at, kib in self.samples if start <= at <= end]
        return max(inside) if inside else None


@contextmanager
def timed(out: dict[str, Any], key: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        out[key] = round(time.monotonic() - started, 3)


def parse_dags(out: dict[str, Any]) -> Any:
    """Import Airflow and parse dags/ (timed separately); return the DagBag."""
    from sandbox.airflow_env import configure

    configure()  # the parent set every variable; this only fills what it left out
    with timed(out, "import_airflow_s"):
        import airflow  # noqa: F401
    with timed(out, "import_dagbag_s"):
        from airflow.dag_processing.dagbag import DagBag
    with timed(out, "parse_s"):
        bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    out["parse_per_file_s"] = {
        Path(s.file).name: round(s.duration.total_seconds(), 3) for s in getattr(bag, "dagbag_stats", [])
    }
    out["import_errors"] = {str(k): str(v)[:500] for k, v in bag.import_errors.items()}
    out["dag_ids"] = sorted(bag.dag_ids)
    return bag


def run_set(dag: Any, scope: Iterable[str] | None) -> set[str]:
    """The tasks to really run: the scope and everything upstream of it (None = every task)."""
    if scope is None:
        return set(dag.task_dict)
    wanted: set[str] = set()
    for task_id in scope:
        if task_id in dag.task_dict:
            task = dag.task_dict[task_id]
            wanted.add(task_id)
            wanted.update(t.task_id for t in task.get_flat_relatives(upstream=True))
    return wanted


def run_dag(dag: Any, conf: dict[str, Any], run: set[str]) -> dict[str, Any]:
    """`dag.test()` with retries off and every task outside `run` marked success; the run's figures."""
    marked = sorted(set(dag.task_dict) - run)
    pattern = "^(" + "|".join(re.escape(t) for t in marked) + ")$" if marked else None
    for task in dag.tasks:
        task.retries = 0  # a benchmark should stop at the first error, not sit out the retry back-off
    started = time.monotonic()
    dag_run = dag.test(run_conf=conf, mark_success_pattern=pattern)
    seconds = round(time.monotonic() - started, 3)
    tasks = []
    for ti in dag_run.get_task_instances():
        tasks.append({
            "task_id": ti.task_id,
            "state": str(ti.state),
            "marked": ti.task_id in marked,
            "duration_s": round(float(ti.duration), 3) if ti.duration is not None else None,
            "start": ti.start_date.isoformat() if ti.start_date else None,
            "end": ti.end_date.isoformat() if ti.end_date else None,
        })
    return {"dag_id": dag.dag_id, "state": str(dag_run.state), "seconds": seconds, "marked": marked,
            "tasks": sorted(tasks, key=lambda t: t["start"] or "")}


def run_pipeline(conf: dict[str, Any]) -> list[dict[str, Any]]:
    """The in-scope streams through `pipeline.ingest`, in the DAGs' order, each timed; their per-stream figures.

    Windows come from the conf exactly as the DAG tasks compute them (`pipeline.current_window`); each
    stream gets a fresh warehouse handle and archive, as each task does.
    """
    from ai_usage import bootstrap, pipeline, settings, streams
    from ai_usage.archive import RawArchive
    from ai_usage.warehouse import get_warehouse

    def window(source: str) -> pipeline.Window:
        return pipeline.plan_window(None, conf, settings.lookback_days(source))

    bootstrap.ensure_tables()
    plan: list[tuple[str, str, Any]] = [
        ("ingest_cursor", "daily_usage", lambda wh: streams.cursor_daily_usage(window("cursor"))),
        ("ingest_cursor", "members", lambda wh: streams.cursor_members()),
        ("ingest_cursor", "spend", lambda wh: streams.cursor_spend()),
        ("ingest_claude", "workspaces", lambda wh: streams.anthropic_listing("workspaces")),
        ("ingest_claude", "claude_code", lambda wh: streams.claude_code(window("claude_code"))),
        ("ingest_claude", "cost_report", lambda wh: streams.anthropic_cost_report(window("anthropic_costs"), wh)),
    ]
    out = []
    for dag_id, task_id, make in plan:
        run = pipeline.RunInfo(run_id=f"bench_pipeline__{conf['start']}_{conf['end']}", dag_id=dag_id,
                               task_id=task_id, try_number=1)
        started, at = time.monotonic(), datetime.now(UTC)
        with get_warehouse() as wh:
            stream = make(wh)
            wh.ensure_tables([stream.table, *pipeline.OPS_TABLES])
            result = pipeline.ingest(stream, run=run, warehouse=wh, archive=RawArchive())
        out.append({"task_id": task_id, "dag_id": dag_id, "state": "success", "marked": False,
                    "duration_s": round(time.monotonic() - started, 3), "rows": result.rows_loaded,
                    "start": at.isoformat(), "end": datetime.now(UTC).isoformat()})
    return out


def warehouse_figures(path: Path) -> dict[str, Any]:
    """Rows per table and `ops.ingestion_runs`, read straight from the DuckDB file (read-only)."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN ('raw', 'ref', 'ops') "
            "ORDER BY 1, 2").fetchall()
        counts = {f"{s}.{t}": con.execute(f'SELECT count(*) FROM "{s}"."{t}"').fetchone()[0] for s, t in tables}
        cursor = con.execute(
            "SELECT dag_id, task_id, endpoint, target_table, status, rows_loaded, rows_quarantined, api_calls, "
            "retries, duration_s FROM ops.ingestion_runs ORDER BY started_at")
        names = [d[0] for d in cursor.description]
        runs = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    for r in runs:
        r["duration_s"] = float(r["duration_s"]) if r["duration_s"] is not None else None
    return {"table_rows": {k: v for k, v in counts.items() if v}, "ingestion_runs": runs}


def marts_refresh_hook(bag: Any, conf: dict[str, Any]) -> dict[str, Any] | None:
    """The marts refresh is measured separately by `sandbox.bench` (tests/_marts_bench.py: the refresh after a
    one-day ingest on 3 months vs 3 years of history), not inside the ingest processes."""
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.bench_child", description=__doc__)
    parser.add_argument("mode", choices=("parse", "startup", "airflow", "taskrunner", "run", "pipeline"))
    parser.add_argument("--out", type=Path, required=True, help="result JSON file")
    parser.add_argument("--conf", default="{}", help="the DAG runs' conf, JSON ({\"start\", \"end\"})")
    parser.add_argument("--dags", default=",".join(SCOPE))
    parser.add_argument("--scope", choices=("in", "full"), default="in",
                        help="in: only the benchmark's tasks (and their upstream); full: every task")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats of the DAG runs here")
    args = parser.parse_args(argv)

    out: dict[str, Any] = {"mode": args.mode, "pid": os.getpid()}
    sampler = RssSampler().start() if args.mode in ("run", "pipeline") else None
    try:
        if args.mode == "pipeline":
            out["dags"] = [{"dag_id": "(pipeline)", "tasks": run_pipeline(json.loads(args.conf))}]
        else:
            bag = parse_dags(out)
            out["startup_s"] = round(time.monotonic() - T0, 3)
            if args.mode == "taskrunner":
                out["rss_before_kib"] = rss_kib()
                out["dags"] = [run_dag(bag.get_dag(NOOP_DAG_ID), {}, {"first", "second"})]
                out["rss_after_kib"] = rss_kib()
            if args.mode in ("airflow", "run"):
                if out["import_errors"]:
                    raise RuntimeError(f"DAG import errors: {out['import_errors']}")
                conf = json.loads(args.conf)
                profiler = None
                if args.profile is not None:
                    import cProfile

                    profiler = cProfile.Profile()
                    profiler.enable()
                out["dags"] = []
                for dag_id in [d.strip() for d in args.dags.split(",") if d.strip()]:
                    dag = bag.get_dag(dag_id)
                    if dag is None:
                        raise RuntimeError(f"no DAG {dag_id!r} in {os.environ['AIRFLOW__CORE__DAGS_FOLDER']}")
                    if args.mode == "airflow":
                        run: set[str] = set()
                    else:
                        run = run_set(dag, SCOPE.get(dag_id) if args.scope == "in" else None)
                    result = run_dag(dag, conf, run)
                    out["dags"].append(result)
                    if result["state"] != "success":
                        raise RuntimeError(f"{dag_id} finished {result['state']}: {result['tasks']}")
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(str(args.profile))
                out["dags_s"] = round(sum(d["seconds"] for d in out["dags"]), 3)
                out["hook_marts_refresh"] = marts_refresh_hook(bag, conf) if args.mode == "run" else None
        out["vm_hwm_kib_after_dags"] = _vm_hwm()
        if sampler is not None:
            sampler.stop()
            for dag in out.get("dags", []):
                for t in dag["tasks"]:
                    start = datetime.fromisoformat(t["start"]) if t["start"] else None
                    end = datetime.fromisoformat(t["end"]) if t["end"] else None
                    t["peak_rss_kib"] = sampler.peak_between(start, end)
            warehouse = os.environ.get("AI_USAGE_WAREHOUSE", "")
            if warehouse.startswith("duckdb:///"):
                from ai_usage import settings

                with timed(out, "readback_s"):  # not part of the backfill: the parent subtracts it
                    out.update(warehouse_figures(Path(settings.parse_warehouse(warehouse).path)))
        out["ok"] = True
        return 0
    except Exception as exc:  # reported to the parent, which prints it with the log's path
        out["ok"] = False
        out["error"] = f"{type(exc).__name__}: {exc}"[:4000]
        return 1
    finally:
        out["child_s"] = round(time.monotonic() - T0, 3)
        args.out.write_text(json.dumps(out, indent=1, default=str), encoding="utf-8")


def _vm_hwm() -> int | None:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


if __name__ == "__main__":
    sys.exit(main())
