"""The vendor simulators of `make bench`, in their own process, so the measured process holds only the product.

`SimProcess` runs ``python -m sandbox serve`` for one synthetic organisation, waits for its port file,
switches every rate limit off through the control endpoints (``/_sandbox/<app>/config``), and hands out
what a deployment would put in its Airflow connections (base URL and key). After a measured run,
`request_stats()` sums the simulators' request logs: how many calls each vendor answered, with which
statuses, and how long the simulator itself spent answering (its share of the measured wall time).
`warm_up(start, end)` serves a scenario's data once before it is measured, so the simulators answer the
measured run from their caches, as a vendor answers from stored data.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sandbox.airflow_env import ROOT

APPS = ("cursor", "anthropic", "sandbox")
START_TIMEOUT_S = 600.0
ANTHROPIC_VERSION = "2023-06-01"
CLAUDE_CODE = "/v1/organizations/usage_report/claude_code"
COST_REPORT = "/v1/organizations/cost_report"
CURSOR_WINDOW_DAYS = 30  # the daily-usage API's longest range
COST_WINDOW_DAYS = 31  # the cost report's largest page of daily buckets
WHOLE_TEAM = 1_000_000  # a daily-usage page size above any team: one page per window


def day_windows(start: date, end: date, days: int) -> list[tuple[date, date]]:
    """[start, end] as consecutive inclusive windows of at most `days` days."""
    windows = []
    while start <= end:
        last = min(end, start + timedelta(days=days - 1))
        windows.append((start, last))
        start = last + timedelta(days=1)
    return windows


def midnight_ms(day: date) -> int:
    """Epoch milliseconds of a UTC day's midnight (the daily-usage API's bounds)."""
    return (day.toordinal() - date(1970, 1, 1).toordinal()) * 86_400_000


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

    def warm_up(self, start: date, end: date) -> dict[str, float]:
        """Serve once, before the measurement, the data a backfill of [start, end] asks for; seconds per part.

        The simulators generate synthetic data on request (the Cursor spend from a month of usage events,
        seconds for 2,000 people; each day's daily-usage rows and Claude Code records), while a vendor
        answers from stored data. First their day caches are made large enough for the whole range
        (resizing keeps what is cached), then every part is asked for once: the spend, every Cursor
        daily-usage day (whole team on one page per 30-day window: the simulator keeps each final day's
        rows as text, per day and member, whatever the paging), every Claude Code day (its records' text
        is kept likewise) and the cost report. The measured run then finds each answer in the simulators'
        caches; what they still spend answering (paging, provisional days, HTTP) is reported as theirs.
        """
        days = (end - start).days + 1
        for app in ("cursor", "anthropic"):
            config = f"{self.urls[app]}/_sandbox/{app}/config"
            http_json(config, {"cache_days": max(int(http_json(config)["cache_days"]), days)})
        cursor_key = http_json(f"{self.urls['cursor']}/_sandbox/cursor/config")["api_key"]
        admin_key = http_json(f"{self.urls['anthropic']}/_sandbox/anthropic/config")["admin_key"]
        token = base64.b64encode(f"{cursor_key}:".encode()).decode("ascii")
        cursor_auth = {"Authorization": f"Basic {token}"}
        anthropic_auth = {"x-api-key": admin_key, "anthropic-version": ANTHROPIC_VERSION}
        seconds: dict[str, float] = {}
        started = time.monotonic()
        self._call("cursor", "/teams/spend", cursor_auth, decode=False, body={"page": 1, "pageSize": 1})
        seconds["spend_s"] = time.monotonic() - started
        mark = time.monotonic()
        for first, last in day_windows(start, end, CURSOR_WINDOW_DAYS):
            self._call("cursor", "/teams/daily-usage-data", cursor_auth, decode=False,
                       body={"startDate": midnight_ms(first), "endDate": midnight_ms(last),
                             "page": 1, "pageSize": WHOLE_TEAM})
        seconds["daily_usage_s"] = time.monotonic() - mark
        mark = time.monotonic()
        day = start
        while day <= end:
            query: dict[str, Any] = {"starting_at": day.isoformat(), "limit": 1000}
            while (page := self._call("anthropic", CLAUDE_CODE, anthropic_auth, query=query))["has_more"]:
                query["page"] = page["next_page"]
            day += timedelta(days=1)
        seconds["claude_code_s"] = time.monotonic() - mark
        mark = time.monotonic()
        for first, last in day_windows(start, end, COST_WINDOW_DAYS):
            query = {"starting_at": f"{first.isoformat()}T00:00:00Z",
                     "ending_at": f"{(last + timedelta(days=1)).isoformat()}T00:00:00Z",
                     "limit": COST_WINDOW_DAYS, "group_by[]": ["workspace_id", "description"]}
            while (page := self._call("anthropic", COST_REPORT, anthropic_auth, query=query))["has_more"]:
                query["page"] = page["next_page"]
        seconds["cost_report_s"] = time.monotonic() - mark
        seconds["total_s"] = time.monotonic() - started
        return seconds

    def _call(self, app: str, path: str, headers: dict[str, str], *, body: Any = None,
              query: dict[str, Any] | None = None, decode: bool = True) -> Any:
        """One vendor request (POST `body` as JSON, else GET with `query`); its decoded answer (or None:
        a window of daily usage is ~25 MB of JSON the warm-up does not need to read)."""
        url = f"{self.urls[app]}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                         headers={"Content-Type": "application/json", **headers})
        with urllib.request.urlopen(request, timeout=600) as response:
            answer = response.read()
        return json.loads(answer) if decode else None

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
