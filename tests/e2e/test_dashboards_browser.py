"""The local report in a real browser: Debian's headless Chromium, driven over the DevTools protocol.

Every page loads with no console error, no uncaught exception and no request leaving the machine; charts
render (SVG with a size and marks); and the numbers a card shows equal its query's result, computed here
independently through the warehouse layer.

Chromium: ``apt-get install -y chromium`` (Debian). ``python -m tests.e2e.test_dashboards_browser OUT_DIR``
renders the report from the test marts and writes a screenshot per page (runbook/img).
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from websockets.sync.client import connect

from ai_usage.dashboards.formatting import format_value, infer_format, raw_value
from ai_usage.dashboards.local import run_card
from ai_usage.dashboards.render import render_report
from ai_usage.dashboards.spec import load_specs
from ai_usage.settings import DuckDBConfig
from ai_usage.warehouse.duckdb_backend import DuckDBBackend
from tests import _dashboards_data as dd

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SPECS = load_specs()
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-port=0", "--remote-allow-origins=*"]


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("Chromium is not installed: apt-get update && apt-get install -y chromium")


class Browser:
    """One headless Chromium and one page, spoken to over the DevTools protocol (a websocket)."""

    def __init__(self, width: int = 1400, height: int = 1000) -> None:
        self.profile = tempfile.mkdtemp(prefix="ai-usage-chromium-")
        self.proc = subprocess.Popen(
            [chromium_binary(), *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("Chromium did not start (no DevToolsActivePort)")
            time.sleep(0.05)
        port, browser_path = port_file.read_text().split()[:2]
        self.stack = contextlib.ExitStack()
        self.ws = self.stack.enter_context(connect(f"ws://127.0.0.1:{port}{browser_path}", max_size=64 * 1024 * 1024))
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv(timeout=60))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while time.monotonic() < deadline:
            event = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if event.get("method") == method:
                return event
            self.events.append(event)
        raise TimeoutError(method)

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, failed loads and requests that would leave the machine."""
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                out.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                out.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
            elif method == "Network.loadingFailed":
                out.append(f"failed load: {params.get('errorText')}")
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if not url.startswith(("file://", "data:", "about:")):
                    out.append(f"network request: {url}")
        return out

    def screenshot(self, path: Path) -> None:
        height = self.evaluate("document.documentElement.scrollHeight")
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=1400, height=int(height),
                  deviceScaleFactor=1, mobile=False)
        shot = self.call("Page.captureScreenshot", session=True, format="png")
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        try:
            if getattr(self, "stack", None) is not None:
                self.stack.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


# Reads what each card shows, in the page itself.
READ_CARDS = """
Array.from(document.querySelectorAll('section[data-card]')).map(s => {
  const svg = s.querySelector('svg.chart');
  const box = svg ? svg.getBoundingClientRect() : null;
  return {
    key: s.dataset.card, visual: s.dataset.visual,
    data: JSON.parse(s.querySelector('script.card-data').textContent),
    number: (s.querySelector('.number') || {}).textContent || null,
    cells: Array.from(s.querySelectorAll('td')).map(td => [td.dataset.column, td.textContent]),
    marks: Array.from(s.querySelectorAll('[data-value]')).filter(e => e.tagName === 'rect' || e.tagName === 'circle')
             .map(e => [e.getAttribute('data-x'), e.getAttribute('data-series'), e.getAttribute('data-value')]),
    chart: box ? [box.width, box.height] : null,
    errors: s.querySelectorAll('.card-error').length,
    csv: s.querySelector('a.csv').getAttribute('href').length,
  };
})
"""


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBBackend]:
    path = dd.populated_warehouse(tmp_path_factory.mktemp("browser") / "w.duckdb")
    keep = duckdb.connect(str(path), read_only=True)
    try:
        yield DuckDBBackend(DuckDBConfig(path), read_only=True)
    finally:
        keep.close()


@pytest.fixture(scope="module")
def report(warehouse: DuckDBBackend, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return render_report(tmp_path_factory.mktemp("report"), warehouse=warehouse, specs=SPECS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()


def test_index_loads_and_links_every_dashboard(browser: Browser, report: list[Path]) -> None:
    browser.open(report[0].as_uri())
    assert browser.problems() == []
    links = browser.evaluate("Array.from(document.querySelectorAll('a.tile')).map(a => a.dataset.dashboard)")
    assert links == [d.key for d in SPECS.dashboards]


@pytest.mark.parametrize("dashboard", [d.key for d in SPECS.dashboards])
def test_page_loads_clean_renders_charts_and_shows_the_query_numbers(
    dashboard: str, browser: Browser, report: list[Path], warehouse: DuckDBBackend,
) -> None:
    page = next(p for p in report if p.name == f"{dashboard}.html")
    browser.open(page.as_uri())
    assert browser.problems() == []
    assert browser.evaluate("document.title") == SPECS.dashboard(dashboard).title
    shown = {c["key"]: c for c in browser.evaluate(READ_CARDS)}
    spec = SPECS.dashboard(dashboard)
    assert list(shown) == [c.key for c in spec.cards]
    for card in spec.cards:
        got = shown[card.key]
        result = run_card(warehouse, card, {})
        assert got["errors"] == 0 and result.rows and got["csv"] > 40
        assert got["data"]["rows"] == [[raw_value(r[c]) for c in result.columns] for r in result.rows]
        formats = {c: card.formats.get(c) or infer_format(c, result.rows[0].get(c)) for c in result.columns}
        if card.visual == "number":
            assert card.value is not None
            assert got["number"] == format_value(result.rows[0][card.value], formats[card.value]), card.key
        elif card.visual == "table":
            want = [[c, format_value(r[c], formats[c])] for r in result.rows for c in result.columns]
            assert got["cells"] == want, card.key
        else:
            width, height = got["chart"]
            assert width > 300 and height > 100, (card.key, got["chart"])
            want_marks = {
                (str(raw_value(r[card.x])), str(raw_value(r[card.series])) if card.series else col,
                 str(raw_value(r[col])))
                for r in result.rows for col in card.y if r[col] is not None
            }
            assert {tuple(m) for m in got["marks"] if m[1] is not None and m[2] != ""} == want_marks, card.key


def screenshots(out: Path) -> list[Path]:
    """Render the report from the test marts and screenshot every page into `out` (for the finance guide)."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = dd.populated_warehouse(Path(tmp) / "w.duckdb")
        pages = render_report(Path(tmp) / "report", warehouse=DuckDBBackend(DuckDBConfig(path)), specs=SPECS)
        browser = Browser()
        try:
            shots = []
            for page in pages:
                browser.open(page.as_uri())
                problems = browser.problems()
                if problems:
                    raise RuntimeError(f"{page.name}: {problems}")
                target = out / f"{page.stem}.png"
                browser.screenshot(target)
                shots.append(target)
            return shots
        finally:
            browser.close()


def test_the_checks_catch_console_errors_exceptions_and_network(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text('<!doctype html><link rel="icon" href="data:,"><script>console.error("boom");'
                    'new Image().src = "http://example.invalid/x.png"; undefinedFunction();</script>')
    browser.open(page.as_uri())
    browser.evaluate("1")
    problems = " | ".join(browser.problems())
    assert "boom" in problems and "undefinedFunction" in problems and "example.invalid" in problems


if __name__ == "__main__":
    for shot in screenshots(Path(sys.argv[1] if len(sys.argv) > 1 else "runbook/img")):
        print(shot)
