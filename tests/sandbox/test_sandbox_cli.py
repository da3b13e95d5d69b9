"""`python -m sandbox serve`: starts every registered app, answers health, exits cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def test_serve_starts_answers_health_and_exits_on_sigterm(tmp_path: Path) -> None:
    port_file = tmp_path / "ports.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "plugins"), str(REPO)]))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "serve",
            "--seed",
            "11",
            "--people",
            "25",
            "--days",
            "30",
            "--end",
            "2026-03-31",
            "--now",
            "2026-04-01T06:00:00Z",
            "--port-file",
            str(port_file),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert proc.poll() is None, proc.communicate(timeout=5)
            assert time.monotonic() < deadline, "serve did not write its port file in 30 s"
            time.sleep(0.1)
        urls = json.loads(port_file.read_text())
        assert "sandbox" in urls and all(u.startswith("http://127.0.0.1:") for u in urls.values())
        for url in urls.values():
            r = requests.get(url + "/_sandbox/health", timeout=5)
            assert r.status_code == 200 and r.json()["status"] == "ok"
        meta = requests.get(urls["sandbox"] + "/org", timeout=5).json()
        assert (meta["seed"], meta["people"], meta["start"], meta["end"]) == (
            11,
            25,
            "2026-03-02",
            "2026-03-31",
        )
        clock = requests.get(urls["sandbox"] + "/_sandbox/clock", timeout=5).json()
        assert clock == {"now": "2026-04-01T06:00:00Z", "fixed": True}
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert sorted(lines) == sorted(f"{name} {url}" for name, url in urls.items())
    try:
        requests.get(urls["sandbox"] + "/_sandbox/health", timeout=2)
        raise AssertionError("server still answering after SIGTERM")
    except requests.exceptions.ConnectionError:
        pass
