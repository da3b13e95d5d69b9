"""A running Airflow for `make bench`: the backfill as an operator starts it, on a deployment already up.

`dag.test()` is a developer's tool: the process that calls it imports Airflow, parses the DAGs and, on its
first task, builds Airflow's whole task-execution API in-process (FastAPI with Cadwyn's per-version
routers, ~7 s here) before any product code runs. A deployment pays none of that per run: its API server,
scheduler and DAG processor are long-lived, and a backfill is a DAG run triggered with a conf. This module
starts such a deployment on loopback, as ``airflow standalone`` would (``airflow api-server``,
``airflow scheduler`` with the LocalExecutor, ``airflow dag-processor``; SQLite metadata DB, simple auth
manager), waits until it has parsed the DAGs, and measures DAG runs through its REST API:

1. The DAGs are paused at creation (``DAGS_ARE_PAUSED_AT_CREATION``), so a triggered run waits queued.
2. Each DAG is triggered with the backfill conf (``POST /api/v2/dags/{dag_id}/dagRuns``); the tasks outside
   the benchmark's scope are marked success before anything runs
   (``PATCH …/taskInstances/{task_id}``, what an operator does with "Mark as success" in the UI).
3. The clock starts, the DAGs are unpaused, and the runs are polled until they finish: the wall time is
   what the operator waits, scheduler latency, task process start-up and the execution API included.
4. Memory: the deployment's task processes are sampled every 50 ms (from /proc); a task runs in its own
   process (titled ``airflow worker -- <task instance id>``), whose high-water mark (``VmHWM``) is read on
   each sample. A task's peak is its process's; the report also gives the sum over the task processes
   alive at the same moment.

Nothing here is imported by the product or the tests' Airflow runs; only `sandbox.bench` uses it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.airflow_env import ROOT
from sandbox.bench_child import NOOP_DAG, NOOP_DAG_ID

USER, PASSWORD = "admin", "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor")
START_TIMEOUT_S = 300.0
SAMPLE_EVERY_S = 0.05
RETITLE_EVERY = 20  # samples between re-reading every process's title (a worker's child: every sample)
# The API server shares the CPUs with the tasks: poll lightly. The wall time does not depend on the poll: it
# ends at the last run's end_date as the scheduler recorded it.
POLL_EVERY_S = 1.0
RETRY_CHECK_EVERY = 3  # polls between looks at the task instances (a failed try stops the benchmark)
TERMINAL = {"success", "failed"}
TASK_TITLE = "airflow worker -- "  # a task process: "airflow worker -- <task instance id>"
WORKER_TITLE = "airflow worker -- LocalExecutor"  # an executor worker: "… LocalExecutor: <idle>"
WARM_UP_BUNDLE = "bench-warm-up"


def is_task_process(title: str) -> bool:
    return title.startswith(TASK_TITLE) and not title.startswith(WORKER_TITLE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deployment_env(base: dict[str, str], workdir: Path, port: int, warm_up_dags: Path) -> dict[str, str]:
    """`base` plus what makes the three components one deployment on loopback (LocalExecutor, SQLite).

    Two DAG bundles: the repository's dags folder and `warm_up_dags` (a no-op DAG run once before measuring,
    so the executor's workers and the API's first requests are not in the figures: a deployment that has
    been up for a day has run tasks before). Schedules are off (``use_job_schedule``): unpausing a daily DAG
    would otherwise also create its latest scheduled run, which the benchmark did not ask for.
    """
    passwords = workdir / "simple_auth_passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}), encoding="utf-8")
    bundles = [
        {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": base["AIRFLOW__CORE__DAGS_FOLDER"]}},
        {"name": WARM_UP_BUNDLE, "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(warm_up_dags)}},
    ]
    airflow_bin = str(Path(sys.executable).parent)
    return {
        **base,
        "PATH": f"{airflow_bin}{os.pathsep}{base.get('PATH', '')}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }


@dataclass
class ProcessPeak:
    """One process of the deployment as sampled: its title, peak RSS (KiB), CPU seconds (user + system, as
    of the last sample) and when it was seen."""

    pid: int
    title: str
    peak_kib: int = 0
    first: float = 0.0
    last: float = 0.0
    cpu_s: float = 0.0


@dataclass
class MemorySampler:
    """Samples the task processes of the deployment (descendants of `roots`) every `SAMPLE_EVERY_S`.

    Cheap on purpose, since it shares the CPUs with what it measures (psutil's recursive child listing of
    ~40 processes every 50 ms took a quarter of a core): one listing of /proc per sample, a new process's
    parent read once, titles re-read only where they can still change (a worker's child becomes a task
    process when it retitles itself; other processes every `RETITLE_EVERY` samples), and memory read only
    for task processes. A task's peak is its process's high-water mark (VmHWM), exact up to the last sample.
    """

    roots: list[int]
    processes: dict[int, ProcessPeak] = field(default_factory=dict)
    peak_tasks_sum_kib: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-deployed-rss", daemon=True)
        self._parents: dict[int, int] = {}
        self._titles: dict[int, str] = {}

    def start(self) -> MemorySampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def reset(self) -> None:
        self.processes.clear()
        self.peak_tasks_sum_kib = 0

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set():
            tick += 1
            self.sample(retitle_all=tick % RETITLE_EVERY == 0)
            self._stop.wait(SAMPLE_EVERY_S)

    def sample(self, *, retitle_all: bool = False) -> None:
        now = time.monotonic()
        alive = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        for pid in alive:
            if pid not in self._parents:
                parent = _parent(pid)
                if parent is not None:
                    self._parents[pid] = parent
        living = set(alive)
        for gone in [pid for pid in self._parents if pid not in living]:
            self._parents.pop(gone, None)
            self._titles.pop(gone, None)
        tree = set(self.roots)
        grown = True
        while grown:
            grown = False
            for pid, parent in self._parents.items():
                if parent in tree and pid not in tree:
                    tree.add(pid)
                    grown = True
        tasks = 0
        for pid in tree:
            title = self._titles.get(pid)
            parent_title = self._titles.get(self._parents.get(pid, -1), "")
            if title is None or retitle_all or (not is_task_process(title) and parent_title.startswith(WORKER_TITLE)):
                title = self._titles[pid] = _title(pid)
            if not is_task_process(title):
                continue
            try:
                rss, hwm = _rss_and_hwm(pid)
                cpu = _cpu_seconds(pid)
            except OSError:
                continue
            seen = self.processes.get(pid)
            if seen is None or seen.title != title:
                seen = self.processes[pid] = ProcessPeak(pid, title, 0, now, now)
            seen.peak_kib = max(seen.peak_kib, hwm)
            seen.cpu_s = max(seen.cpu_s, cpu)
            seen.last = now
            tasks += rss
        self.peak_tasks_sum_kib = max(self.peak_tasks_sum_kib, tasks)

    def task_peaks(self) -> dict[str, int]:
        """Peak RSS (KiB) per task instance id (the task processes' titles)."""
        return {p.title[len(TASK_TITLE):].strip(): p.peak_kib for p in self.processes.values()
                if is_task_process(p.title)}

    def task_cpu(self) -> dict[str, float]:
        """CPU seconds per task instance id, up to each task process's last sample (its whole life from the
        fork: Airflow's task runner, the DAG file's parse, the product's imports and work)."""
        return {p.title[len(TASK_TITLE):].strip(): round(p.cpu_s, 2) for p in self.processes.values()
                if is_task_process(p.title)}


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            text = stat.read()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2:].split()[1])  # after "pid (comm) state": the parent's pid


def _title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def upstream_closure(downstream: dict[str, list[str]], scope: tuple[str, ...] | None) -> set[str]:
    """`scope`'s tasks present in the DAG and all their upstream tasks, from each task's downstream ids."""
    if scope is None:
        return set(downstream)
    upstream: dict[str, set[str]] = {t: set() for t in downstream}
    for task_id, children in downstream.items():
        for child in children:
            upstream.setdefault(child, set()).add(task_id)
    wanted: set[str] = set()
    todo = [t for t in scope if t in downstream]
    while todo:
        task_id = todo.pop()
        if task_id not in wanted:
            wanted.add(task_id)
            todo.extend(upstream.get(task_id, ()))
    return wanted


def machine_cpu() -> float:
    """Seconds of CPU the whole machine has been busy (every core; /proc/stat, less idle and iowait)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - fields[3] - fields[4]) / ticks


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (its own, not its children's) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
        text = stat.read()
    fields = text[text.rindex(")") + 2:].split()  # from the state: utime and stime are the 12th and 13th
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _rss_and_hwm(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


class Deployment:
    """api-server + scheduler (LocalExecutor) + dag-processor on loopback, sharing one Airflow home."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.warm_up_dags = workdir / "warm-up-dags"
        self.warm_up_dags.mkdir(parents=True, exist_ok=True)
        (self.warm_up_dags / f"{NOOP_DAG_ID}.py").write_text(NOOP_DAG, encoding="utf-8")
        self.env = deployment_env(env, workdir, self.port, self.warm_up_dags)
        self.base = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.sampler: MemorySampler | None = None
        self._token = ""
        self.start_s = 0.0

    # --- life cycle -----------------------------------------------------------------------------------------
    def start(self, dag_ids: list[str]) -> Deployment:
        started = time.monotonic()
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for component in COMPONENTS:
            with open(logs / f"airflow-{component}.log", "ab") as log:
                self.procs[component] = subprocess.Popen(
                    [sys.executable, "-m", "airflow", component], cwd=ROOT, env=self.env,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait(lambda: self._health_ok(), "the API server to answer")
            self._token = self._login()
            for dag_id in [*dag_ids, NOOP_DAG_ID]:
                self._wait(lambda d=dag_id: self._dag_known(d), f"the DAG processor to parse {dag_id}")
            self.sampler = MemorySampler([p.pid for p in self.procs.values()]).start()
            warm = self.run({NOOP_DAG_ID: {"first", "second"}}, {})
            if not warm["ok"]:
                raise RuntimeError(f"the warm-up DAG run failed: {warm['dags']}")
        except BaseException:
            self.stop()
            raise
        self.start_s = time.monotonic() - started
        return self

    def stop(self) -> dict[str, int]:
        """Stop every component (SIGTERM, then SIGKILL); each one's `ru_maxrss` (KiB, its tree's largest)."""
        if self.sampler is not None:
            self.sampler.stop()
        peaks: dict[str, int] = {}
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for component, proc in self.procs.items():
            deadline = time.monotonic() + 30
            while proc.returncode is None:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    peaks[component] = usage.ru_maxrss
                elif time.monotonic() > deadline:
                    os.killpg(proc.pid, signal.SIGKILL)
                    deadline = time.monotonic() + 30
                else:
                    time.sleep(0.05)
        return peaks

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait(self, ready: Any, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            for component, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"airflow {component} exited with {proc.returncode} while waiting for {what}; "
                                       f"see {self.workdir / 'logs' / f'airflow-{component}.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {START_TIMEOUT_S:.0f} s waiting for {what}; "
                                   f"see {self.workdir / 'logs'}")
            time.sleep(0.2)

    def _health_ok(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/api/v2/monitor/health", timeout=5) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def _dag_known(self, dag_id: str) -> bool:
        try:
            self.api("GET", f"/api/v2/dags/{dag_id}")
            return True
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return False
            raise

    def _login(self) -> str:
        request = urllib.request.Request(
            f"{self.base}/auth/token", data=json.dumps({"username": USER, "password": PASSWORD}).encode(),
            method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.loads(response.read())["access_token"])

    # --- REST API -------------------------------------------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {self._token}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            raise urllib.error.HTTPError(exc.url, exc.code, f"{method} {path}: {detail}", exc.headers, None) from None
        return json.loads(payload) if payload else None

    def task_ids(self, dag_id: str) -> list[str]:
        return [t["task_id"] for t in self.api("GET", f"/api/v2/dags/{dag_id}/tasks")["tasks"]]

    def run_set(self, dag_id: str, scope: tuple[str, ...] | None) -> set[str]:
        """The tasks to really run: `scope` and everything upstream of it (None: every task)."""
        tasks = self.api("GET", f"/api/v2/dags/{dag_id}/tasks")["tasks"]
        return upstream_closure({t["task_id"]: t.get("downstream_task_ids") or [] for t in tasks}, scope)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    # --- a measured backfill --------------------------------------------------------------------------------
    def run(self, plan: dict[str, set[str]], conf: dict[str, Any], *, timeout_s: float = 1800.0) -> dict[str, Any]:
        """Trigger every DAG of `plan` (DAG id -> task ids to really run) with `conf`, the others marked success;
        unpause them together and wait for every run to finish. Wall time from the unpause to the last
        run's end as polled; per DAG run and task: state, start, end, duration, peak RSS."""
        runs: dict[str, str] = {}
        marked: dict[str, list[str]] = {}
        for dag_id, wanted in plan.items():
            self.set_paused(dag_id, True)
            run = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
            runs[dag_id] = run["dag_run_id"]
            marked[dag_id] = sorted(set(self.task_ids(dag_id)) - wanted)
            for task_id in marked[dag_id]:
                self.api("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{runs[dag_id]}/taskInstances/{task_id}",
                         {"new_state": "success"})
        assert self.sampler is not None
        self.sampler.reset()
        busy_before, cpu_before = machine_cpu(), self.cpu_seconds()
        started, released = time.monotonic(), datetime.now(UTC)
        for dag_id in plan:
            self.set_paused(dag_id, False)
        states: dict[str, str] = {}
        polls = 0
        while True:
            polls += 1
            for dag_id, run_id in runs.items():
                if states.get(dag_id) not in TERMINAL:
                    states[dag_id] = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
                    if states[dag_id] not in TERMINAL and polls % RETRY_CHECK_EVERY == 0:
                        self._fail_on_retry(dag_id, run_id)
            if all(s in TERMINAL for s in states.values()):
                break
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"the DAG runs did not finish within {timeout_s:.0f} s: {states}")
            time.sleep(POLL_EVERY_S)
        polled = time.monotonic() - started
        busy = machine_cpu() - busy_before
        cpu = {k: round(v - cpu_before.get(k, 0.0), 3) for k, v in self.cpu_seconds().items()}
        time.sleep(3 * SAMPLE_EVERY_S)  # a last sample after the task processes' exit
        peaks = self.sampler.task_peaks()
        task_cpu = self.sampler.task_cpu()
        dags = []
        for dag_id, run_id in runs.items():
            run = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            tis = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]
            tasks = [{
                "task_id": ti["task_id"], "state": ti["state"], "marked": ti["task_id"] in marked[dag_id],
                "duration_s": round(float(ti["duration"]), 3) if ti.get("duration") is not None else None,
                "start": ti.get("start_date"), "end": ti.get("end_date"),
                "peak_rss_kib": peaks.get(ti["id"]), "cpu_s": task_cpu.get(ti["id"]),
            } for ti in tis]
            dags.append({"dag_id": dag_id, "run_id": run_id, "state": run["state"], "marked": marked[dag_id],
                         "start": run.get("start_date"), "end": run.get("end_date"),
                         "seconds": _seconds(run.get("start_date"), run.get("end_date")),
                         "tasks": sorted(tasks, key=lambda t: t["start"] or "")})
        task_peaks = [t["peak_rss_kib"] for d in dags for t in d["tasks"] if t["peak_rss_kib"]]
        wall = max((_seconds(released.isoformat(), d["end"]) or polled) for d in dags)
        return {"ok": all(d["state"] == "success" for d in dags), "wall_s": round(wall, 3),
                "polled_s": round(polled, 3), "dags": dags,
                "peak_task_kib": max(task_peaks, default=0), "machine_busy_cpu_s": round(busy, 3),
                "component_cpu_s": cpu,
                "peak_tasks_sum_kib": self.sampler.peak_tasks_sum_kib}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) of each component's process alone, without its children."""
        import psutil

        out = {}
        for component, proc in self.procs.items():
            try:
                times = psutil.Process(proc.pid).cpu_times()
                out[component] = times.user + times.system
            except psutil.Error:
                continue
        return out

    def _fail_on_retry(self, dag_id: str, run_id: str) -> None:
        """A benchmark stops at the first failed try instead of sitting out the retry back-off."""
        tis = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]
        broken = [ti["task_id"] for ti in tis if ti["state"] in ("up_for_retry", "failed", "upstream_failed")]
        if broken:
            raise RuntimeError(f"{dag_id} {run_id}: task(s) {broken} failed; task logs under "
                               f"{Path(self.env['AIRFLOW_HOME']) / 'logs'}")


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)
