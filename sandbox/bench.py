"""`make bench`: performance figures of the ingest DAGs (printed, never asserted; runbook/benchmarks.md).

What runs:

1. DAG parse time: fresh interpreters time ``import airflow``, then parsing every file of dags/.
2. Airflow's fixed cost, without product code: a process that only imports Airflow and parses dags/,
   one that also runs the benchmarked DAGs with ``dag.test()`` and every task marked success, and one
   that runs a DAG of two no-op tasks (the task runner's start on a process's first task).
3. Per scenario (default 30 and 365 days × 2,000 people): the vendor simulators start in their own
   process (rate limits off), then one fresh process runs ``ingest_cursor`` and ``ingest_claude``
   through Airflow with a backfill conf into a new DuckDB file. Measured from here: wall time (process
   start to exit, minus reading the figures back) and peak RSS (``wait4``'s ``ru_maxrss``); from the
   warehouse: rows per table and API calls (``ops.ingestion_runs``); from the simulators' request logs:
   the time they spent answering. Before the measurement the simulators are warmed up, unmeasured, for
   exactly the scenario's range (`SimProcess.warm_up`): a vendor answers from stored data, the
   simulators generate it on first request.
4. Per scenario, the backfill as an operator runs it (`sandbox.bench_deployed`): a running Airflow
   (api-server, scheduler with the LocalExecutor, dag-processor), up and warmed before the clock starts,
   gets both DAG runs triggered with the conf; the wall time runs from their release to the last run's
   end, and each task's peak memory is its own process's. Three such backfills per scenario
   (``--deployed-runs``), each into a new warehouse: the median is reported, with every run's time. This is the figure the targets judge; the
   ``dag.test()`` process (3.) also pays Airflow's start-up and in-process API, which no backfill on a
   deployment does, and is shown for comparison with the plain process of the same streams.

The report starts with the machine: CPUs, Python, load, and a speed calibration (a fixed pure-Python
workload in fresh interpreters, best of 3) to compare figures from machines of different speed.

Scope (the standards' figure): Cursor daily usage, members and spend; the Claude Code report and the cost
report. Usage events are switched off with the product's own setting ``AI_USAGE_CURSOR_USAGE_EVENTS=off``;
the other tasks (messages usage, key and user listings, CSV inbox) are marked success unrun with
``dag.test(mark_success_pattern=...)`` (on the running Airflow: "mark success" through its REST API
before the runs are released). ``--scope full`` runs every task instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox import bench_report as report
from sandbox.airflow_env import ROOT
from sandbox.bench_child import NOOP_DAG, SCOPE, warehouse_figures
from sandbox.bench_deployed import Deployment
from sandbox.bench_sim import SimProcess, child_env

RESULTS = ROOT / ".ai_usage" / "bench"
CALIBRATION_RUNS = 3
# A fixed pure-Python CPU workload (integer arithmetic, dict updates, string building, a sort): its time in
# a fresh interpreter says how fast this machine runs Python, so figures taken on machines of different
# speed can be compared. Never change it: figures of different workloads do not compare. The check value
# proves the same work was done.
CALIBRATION = """
import time

def work(n):
    acc, table, parts = 0, {}, []
    for i in range(n):
        acc = (acc * 1103515245 + 12345) & 0x7FFFFFFF
        key = acc % 4099
        table[key] = table.get(key, 0) + 1
        if i & 15 == 0:
            parts.append(str(acc))
    return acc ^ len(",".join(parts)) ^ sum(sorted(table.values())[:10])

started = time.perf_counter()
check = work(2_000_000)
print(time.perf_counter() - started, check)
"""
CALIBRATION_CHECK = 1661307474


def airflow_env(workdir: Path) -> dict[str, str]:
    """A private Airflow home for the benchmark's processes (never the developer's .ai_usage/airflow)."""
    return {
        "AI_USAGE_HOME": str(ROOT),
        "AIRFLOW_HOME": str(workdir / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "GX_ANALYTICS_ENABLED": "False",
        "AI_USAGE_ALERT_EMAILS": "",
    }


def prepare_airflow_home(workdir: Path, env: dict[str, str]) -> None:
    """A new, migrated metadata DB (~5 s). Never a copy of the developer's: it may hold other DAG versions
    and assets, which would change what the measured runs do."""
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], cwd=ROOT, env=env,
                          capture_output=True, timeout=900, check=False)
    if done.returncode != 0:
        (workdir / "airflow-db-migrate.log").write_bytes(done.stdout + done.stderr)
        raise SystemExit(f"airflow db migrate failed; see {workdir / 'airflow-db-migrate.log'}")


def measure(workdir: Path, name: str, mode: str, env: dict[str, str], *extra: str,
            timeout_s: float = 1800.0) -> dict[str, Any]:
    """Run one `sandbox.bench_child` process; its wall time, peak RSS (from wait4) and its own result."""
    out, log_path = workdir / f"{name}.json", workdir / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "sandbox.bench_child", mode, "--out", str(out), *extra],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    watchdog = threading.Timer(timeout_s, proc.kill)
    watchdog.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage: ru_maxrss is its peak RSS (KiB)
    finally:
        watchdog.cancel()
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    child = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {"ok": False, "error": "no result file"}
    if proc.returncode != 0 or not child.get("ok"):
        child["ok"] = False
        child.setdefault("error", f"exit code {proc.returncode}")
    return {"wall_s": round(wall - float(child.get("readback_s") or 0.0), 3), "peak_kib": usage.ru_maxrss,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3), "load": os.getloadavg()[0],
            "child": child, "log": str(log_path)}


def calibrate(runs: int = CALIBRATION_RUNS) -> dict[str, Any]:
    """Machine speed: seconds of the fixed `CALIBRATION` workload, best of `runs` fresh interpreters.

    Best rather than median: other work on the machine only ever slows a run down. ``-I`` keeps the
    environment (PYTHONPATH, user site) out of the interpreter.
    """
    seconds = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-I", "-c", CALIBRATION], capture_output=True, text=True,
                              timeout=600, check=True)
        took, check = done.stdout.split()
        if int(check) != CALIBRATION_CHECK:
            raise SystemExit(f"the calibration workload computed {check}, not {CALIBRATION_CHECK}")
        seconds.append(round(float(took), 3))
    return {"calibration_s": min(seconds), "calibration_runs_s": seconds}


def fail(step: str, measured: dict[str, Any]) -> None:
    raise SystemExit(f"{step} failed: {measured['child'].get('error')}\n  log: {measured['log']}")


def profile_summary(prof: Path, dest: Path, lines: int = 40) -> str:
    """Write the top of a cProfile dump (by own time and by cumulative time) next to the results."""
    import io

    buffer = io.StringIO()
    stats = pstats.Stats(str(prof), stream=buffer)
    stats.strip_dirs().sort_stats("tottime").print_stats(lines)
    stats.sort_stats("cumulative").print_stats(lines)
    dest.write_text(buffer.getvalue(), encoding="utf-8")
    shutil.copyfile(prof, dest.with_suffix(".prof"))
    return str(dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--days", default="30,365", help="comma-separated backfill lengths (scenarios)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scope", choices=("in", "full"), default="in",
                        help="in: the standards' scope (default); full: every task of the DAGs, events included")
    parser.add_argument("--parse-runs", type=int, default=3, help="fresh interpreters timing the DAG parse")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the DAG runs (slows them down; summaries in .ai_usage/bench/)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (warehouses, archives, logs)")
    parser.add_argument("--no-deployed", dest="deployed", action="store_false",
                        help="skip the backfill on a running Airflow (api-server, scheduler, dag-processor)")
    parser.add_argument("--deployed-runs", type=int, default=3,
                        help="backfills per scenario on the running Airflow; the median is reported (default 3)")
    parser.add_argument("--no-marts", action="store_true",
                        help="skip the marts-refresh benchmark (3 months vs 3 years of history)")
    args = parser.parse_args(argv)
    scenarios = sorted({int(d) for d in args.days.split(",") if d.strip()})
    history = max(365, *scenarios)  # one organisation for every scenario: the last 30 days are the same days

    RESULTS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ai-usage-bench-"))
    base_env = child_env(airflow_env(workdir))
    for var in [v for v in base_env if v.startswith("AIRFLOW_CONN_")]:
        base_env.pop(var)
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "people": args.people, "seed": args.seed,
        "scope": args.scope, "days": scenarios, "workdir": str(workdir),
        "scope_note": ("Cursor daily usage, members, spend; Claude Code report; cost report "
                       "(events off via AI_USAGE_CURSOR_USAGE_EVENTS=off, other tasks marked success)")
        if args.scope == "in" else "every task of ingest_cursor and ingest_claude, usage events included",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg())},
    }
    print(f"ai-usage benchmark: {args.people} people, backfills of {scenarios} days, scope {args.scope}; "
          f"work folder {workdir}", flush=True)
    finished = False
    try:
        results["machine"].update(calibrate())
        print(f"== machine speed: fixed pure-Python workload {results['machine']['calibration_s']:.2f} s "
              f"(best of {CALIBRATION_RUNS} fresh interpreters; lower is faster)", flush=True)
        print("== preparing a private Airflow metadata DB (not measured)", flush=True)
        prepare_airflow_home(workdir, base_env)
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        any_conf = json.dumps({"start": (yesterday - timedelta(days=history - 1)).isoformat(),
                               "end": yesterday.isoformat()})
        # The first dag.test() on a new metadata DB also serialises every DAG into it: done once here, so
        # every measured process finds the same DB state.
        warm = measure(workdir, "warm-up", "airflow", base_env, "--conf", any_conf)
        if not warm["child"]["ok"]:
            fail("Airflow warm-up", warm)

        print(f"== DAG parse: {args.parse_runs} fresh interpreters", flush=True)
        results["parse_runs"] = []
        for i in range(args.parse_runs):
            m = measure(workdir, f"parse-{i}", "parse", base_env)
            if not m["child"]["ok"]:
                fail("DAG parse", m)
            results["parse_runs"].append(m["child"])
        results["parse_summary"] = report.parse_summary(results["parse_runs"])

        print("== Airflow baselines: start-up; DAG runs with every task marked success; no-op tasks", flush=True)
        startup = measure(workdir, "baseline-startup", "startup", base_env)
        if not startup["child"]["ok"]:
            fail("start-up baseline", startup)
        airflow = measure(workdir, "baseline-airflow", "airflow", base_env, "--conf", any_conf)
        if not airflow["child"]["ok"]:
            fail("Airflow baseline", airflow)
        results["startup"], results["airflow"] = startup, airflow
        results["taskrunner"] = measure_task_runner(workdir)

        results["scenarios"] = []
        for days in scenarios:
            results["scenarios"].append(run_scenario(workdir, base_env, args, days, history))
        if not args.no_marts:
            print("== marts refresh after a one-day ingest: 3 months vs 3 years of history", flush=True)
            from tests._marts_bench import run as marts_bench  # shares the marts tests' ground-truth loader

            marts = marts_bench(say=lambda line: print("   " + line, flush=True))
            results["marts_refresh"] = {k: marts[k] for k in ("short_s", "long_s", "ratio")}
        finished = True
    finally:
        results["machine"]["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        (RESULTS / "last.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
        if finished and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not finished:
            print(f"work folder kept for inspection (logs, warehouse): {workdir}", file=sys.stderr)

    results["airflow_fixed"] = report.airflow_fixed(results["airflow"], results.get("taskrunner"))
    results["figures"] = [report.scenario_figures(s, results["startup"], results["airflow_fixed"])
                          for s in results["scenarios"]]
    results["targets"] = report.targets(results["figures"], results["parse_summary"], results.get("marts_refresh"))
    (RESULTS / "last.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    print()
    print(report.render(results))
    print(f"\nfigures as JSON: {RESULTS / 'last.json'}" + (f"; work folder kept: {workdir}" if args.keep else ""))
    return 0


def measure_task_runner(workdir: Path) -> dict[str, Any]:
    """Airflow's cost of running the first task in a process, from a dags folder holding only a no-op DAG."""
    noop = workdir / "noop"
    (noop / "dags").mkdir(parents=True, exist_ok=True)
    (noop / "dags" / "bench_noop.py").write_text(NOOP_DAG, encoding="utf-8")
    env = child_env(airflow_env(noop))
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(noop / "dags")
    for var in [v for v in env if v.startswith("AIRFLOW_CONN_")]:
        env.pop(var)
    prepare_airflow_home(noop, env)
    for name in ("taskrunner-warm-up", "taskrunner"):  # the first run also serialises the DAG into the new DB
        measured = measure(workdir, name, "taskrunner", env)
        if not measured["child"]["ok"]:
            fail("task-runner baseline", measured)
    return measured


def measure_deployed(workdir: Path, env: dict[str, str], conf: dict[str, str], days: int, scope: str,
                     sim: SimProcess, runs: int) -> dict[str, Any]:
    """The backfill as DAG runs on a running Airflow (`sandbox.bench_deployed`), `runs` times, each into a new
    warehouse and archive. The figures are the run of median wall time's; the peak is the highest of all."""
    home = workdir / f"deployed-{days}d"
    state = home / "state"
    deployed_env = {**env, "AIRFLOW_HOME": str(home / "airflow"),
                    "AI_USAGE_WAREHOUSE": f"duckdb:///{state / 'warehouse.duckdb'}",
                    "AI_USAGE_ARCHIVE": f"file:///{state / 'archive'}",
                    "AI_USAGE_INBOX": f"file:///{state / 'inbox'}"}
    prepare_airflow_home(home, deployed_env)
    dag_ids = list(SCOPE)
    deployment = Deployment(home, deployed_env)
    measured: list[dict[str, Any]] = []
    try:
        deployment.start(dag_ids)
        print(f"   a running Airflow (api-server, scheduler, dag-processor) up in {deployment.start_s:.1f} s "
              "(unmeasured, warm-up DAG run included)", flush=True)
        plan = {d: deployment.run_set(d, SCOPE[d] if scope == "in" else None) for d in dag_ids}
        for i in range(runs):
            if i:  # nothing of the previous run left: the next one loads into a new warehouse and archive
                shutil.rmtree(state, ignore_errors=True)
            sim.clear_requests()
            result = deployment.run(plan, conf)
            if not result["ok"]:
                raise SystemExit(f"{days}-day backfill on a running Airflow failed: {result['dags']}\n  logs: {home}")
            result["sim"] = sim.request_stats()
            result["child"] = warehouse_figures(state / "warehouse.duckdb")
            measured.append(result)
            print(f"   on a running Airflow, run {i + 1} of {runs}: {result['wall_s']:.1f} s, largest task process "
                  f"{result['peak_task_kib'] / 1024:.0f} MiB", flush=True)
    finally:
        component_peaks = deployment.stop()
    chosen = dict(sorted(measured, key=lambda r: r["wall_s"])[len(measured) // 2])
    chosen.update({"runs_s": [r["wall_s"] for r in measured], "start_s": round(deployment.start_s, 1),
                   "peak_task_kib": max(r["peak_task_kib"] for r in measured),
                   "component_peak_kib": component_peaks})
    return chosen


def run_scenario(workdir: Path, base_env: dict[str, str], args: argparse.Namespace, days: int,
                 history: int) -> dict[str, Any]:
    """Fresh simulators and a fresh measured process for one backfill of `days` days."""
    sim_dir = workdir / f"sim-{days}"
    sim_dir.mkdir(parents=True, exist_ok=True)
    print(f"== {days}-day backfill: starting the simulators ({args.people} people, {history} days of history)",
          flush=True)
    with SimProcess(sim_dir, seed=args.seed, people=args.people, days=history, env=base_env) as sim:
        org = sim.org()
        end = date.fromisoformat(org["end"])
        conf = {"start": (end - timedelta(days=days - 1)).isoformat(), "end": end.isoformat()}
        state = workdir / f"state-{days}"
        env = dict(base_env)
        env.update(sim.connections())
        env.update({
            # Four slashes: an absolute path (settings.py's SQLAlchemy-style rule).
            "AI_USAGE_WAREHOUSE": f"duckdb:///{state / 'warehouse.duckdb'}",
            "AI_USAGE_ARCHIVE": f"file:///{state / 'archive'}",
            "AI_USAGE_INBOX": f"file:///{state / 'inbox'}",
            # As `make run` configures the synthetic organisation (runbook: platform rules).
            "AI_USAGE_CLAUDE_CODE_WORKSPACES": "Claude Code,Default Workspace",
        })
        env["AI_USAGE_CURSOR_USAGE_EVENTS"] = "off" if args.scope == "in" else "on"
        extra = ["--conf", json.dumps(conf), "--scope", args.scope]
        prof = workdir / f"profile-{days}d.prof"
        if args.profile:
            extra += ["--profile", str(prof)]
        warm = sim.warm_up(date.fromisoformat(conf["start"]), end)
        print(f"   simulators up in {sim.start_s:.1f} s, warmed up for the range in {warm['total_s']:.1f} s "
              f"(unmeasured: spend {warm['spend_s']:.1f} s, daily usage {warm['daily_usage_s']:.1f} s, "
              f"Claude Code {warm['claude_code_s']:.1f} s, cost report {warm['cost_report_s']:.1f} s); "
              f"measuring {conf['start']} → {conf['end']}", flush=True)
        sim.clear_requests()  # the warm-up's requests are not the measured run's
        measured = measure(workdir, f"run-{days}d", "run", env, *extra)
        stats = sim.request_stats()
        if not measured["child"]["ok"]:
            fail(f"{days}-day backfill", measured)
        print(f"   through Airflow (dag.test): {measured['wall_s']:.1f} s, peak {measured['peak_kib'] / 1024:.0f} MiB",
              flush=True)
        plain = None
        if args.scope == "in":
            # The same streams in a plain process, into a new warehouse: the product without Airflow's machinery.
            plain_state = workdir / f"state-{days}-pipeline"
            plain_env = {**env, "AI_USAGE_WAREHOUSE": f"duckdb:///{plain_state / 'warehouse.duckdb'}",
                         "AI_USAGE_ARCHIVE": f"file:///{plain_state / 'archive'}",
                         "AI_USAGE_INBOX": f"file:///{plain_state / 'inbox'}"}
            sim.clear_requests()
            plain = measure(workdir, f"pipeline-{days}d", "pipeline", plain_env, "--conf", json.dumps(conf))
            plain["sim"] = sim.request_stats()
            if not plain["child"]["ok"]:
                fail(f"{days}-day backfill without Airflow", plain)
            print(f"   the same streams without Airflow: {plain['wall_s']:.1f} s, "
                  f"peak {plain['peak_kib'] / 1024:.0f} MiB", flush=True)
        deployed = None
        if args.deployed:
            deployed = measure_deployed(workdir, env, conf, days, args.scope, sim, args.deployed_runs)
    scenario = {"days": days, "conf": conf, "sim": stats, "sim_start_s": round(sim.start_s, 1),
                "sim_warm_up_s": round(warm["total_s"], 1),
                "sim_warm_up": {k: round(v, 2) for k, v in warm.items()}, "pipeline": plain, "deployed": deployed,
                **measured}
    if args.profile and prof.exists():
        scenario["profile"] = profile_summary(prof, RESULTS / f"profile-{days}d.txt")
        print(f"   profile: {scenario['profile']}", flush=True)
    return scenario


if __name__ == "__main__":
    sys.exit(main())
