"""The vendor simulators of `make bench`, in their own process, so the measured process holds only the product.

`SimProcess` runs ``python -m sandbox serve`` for one synthetic organisation, waits for its port file,
switches every rate limit off through the control endpoints (``/_sandbox/<app>/config``), and hands out
what a deployment would put in its Airflow connections (base URL and key). After a measured run,
`request_stats()` sums the simulators' request logs: how many calls each vendor answered, with which
statuses, and how long the simulator itself spent answering (its share of the measured wall time).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from sandbox.airflow_env import ROOT

APPS = ("cursor", "anthropic", "sandbox")
START_TIMEOUT_S = 600.0


def http_json(url: str, body: Any = None, timeout: float = 120.0) -> Any:
    """GET (or POST `body` as JSON) and decode the JSON answer."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


class SimProcess:
    """``python -m sandbox serve`` for `people` × `days`, rate limits off; a context manager."""

    def __init__(self, workdir: Path, *, seed: int, people: int, days: int, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.seed, self.people, self.days = seed, people, days
        self.env = env
        self.port_file = workdir / "sim-ports.json"
        self.log_path = workdir / "sim.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.urls: dict[str, str] = {}
        self.start_s = 0.0

    def start(self) -> SimProcess:
        self.port_file.unlink(missing_ok=True)
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sandbox", "serve", "--seed", str(self.seed), "--people", str(self.people),
                 "--days", str(self.days), "--apps", ",".join(APPS), "--port-file", str(self.port_file)],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        while not self.port_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the simulator process exited with {self.proc.returncode}; see {self.log_path}")
            if time.monotonic() - started > START_TIMEOUT_S:
                self.stop()
                raise RuntimeError(f"the simulators did not start within {START_TIMEOUT_S:.0f} s; see {self.log_path}")
            time.sleep(0.1)
        self.urls = json.loads(self.port_file.read_text(encoding="utf-8"))
        self.start_s = time.monotonic() - started
        # Rate limits off: the benchmark measures the product, not the vendors' per-minute budgets.
        http_json(f"{self.urls['cursor']}/_sandbox/cursor/config",
                  {"rate_limit_per_minute": 0, "events_rate_limit_per_minute": 0})
        http_json(f"{self.urls['anthropic']}/_sandbox/anthropic/config", {"rate_limited": False})
        return self

    def warm_up(self) -> float:
        """Answer one spend request before the measurement; return its seconds.

        The Cursor simulator derives the billing cycle's spend from every usage event of the month, which it
        generates on first use (~10 s for 2,000 people); the vendor answers from stored totals. Warming it up
        keeps that one-off cost of the simulator out of the product's figures. Other endpoints generate
        their days on request, as a vendor's latency would be; their time is reported as the simulator's.
        """
        started = time.monotonic()
        key = http_json(f"{self.urls['cursor']}/_sandbox/cursor/config")["api_key"]
        token = base64.b64encode(f"{key}:".encode()).decode("ascii")
        request = urllib.request.Request(
            f"{self.urls['cursor']}/teams/spend", data=json.dumps({"page": 1, "pageSize": 1}).encode(),
            method="POST", headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, timeout=600) as response:
            response.read()
        return time.monotonic() - started

    def org(self) -> dict[str, Any]:
        """The organisation's metadata (seed, people, first and last day of its history)."""
        return dict(http_json(f"{self.urls['sandbox']}/org"))

    def connections(self) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` values pointing the product at the simulators, keys from their config endpoints."""
        cursor_key = http_json(f"{self.urls['cursor']}/_sandbox/cursor/config")["api_key"]
        admin_key = http_json(f"{self.urls['anthropic']}/_sandbox/anthropic/config")["admin_key"]
        return {
            "AIRFLOW_CONN_CURSOR_ADMIN": json.dumps(
                {"conn_type": "cursor_admin", "host": self.urls["cursor"], "password": cursor_key}),
            "AIRFLOW_CONN_ANTHROPIC_ADMIN": json.dumps(
                {"conn_type": "anthropic_admin", "host": self.urls["anthropic"], "password": admin_key}),
        }

    def clear_requests(self) -> None:
        for app in ("cursor", "anthropic"):
            urllib.request.urlopen(urllib.request.Request(f"{self.urls[app]}/_sandbox/requests", method="DELETE"),
                                   timeout=60).read()

    def request_stats(self) -> dict[str, dict[str, Any]]:
        """Per vendor app: requests answered, by status, and the simulator's own seconds answering them."""
        stats: dict[str, dict[str, Any]] = {}
        for app in ("cursor", "anthropic"):
            logged = http_json(f"{self.urls[app]}/_sandbox/requests")["requests"]
            statuses: dict[str, int] = {}
            paths: dict[str, dict[str, float]] = {}
            for r in logged:
                statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
                path = paths.setdefault(r["path"], {"requests": 0, "server_s": 0.0})
                path["requests"] += 1
                path["server_s"] = round(path["server_s"] + float(r.get("duration_s") or 0), 3)
            stats[app] = {"requests": len(logged), "statuses": statuses, "paths": paths,
                          "server_s": round(sum(p["server_s"] for p in paths.values()), 3)}
        return stats

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a benchmark subprocess: this one's, plus the repository on the import path."""
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "plugins")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env
