"""A loopback HTTP server that hosts one simulator `App`, with fault injection and a request log.

`SimServer(app)` binds 127.0.0.1 on a free port (``port=0``) and serves in a background thread
(stdlib ``ThreadingHTTPServer``, HTTP/1.1 keep-alive, so clients with a `requests.Session` behave as
against the real API). Use it as a context manager, or `start()` / `stop()`; `url` is the base URL to
put in an Airflow Connection's host.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox.admin import PREFIX, build_admin_app
from sandbox.app import App, Request
from sandbox.clock import SimClock
from sandbox.faults import FaultRule, FaultSet, Outcome, apply_response_faults
from sandbox.requestlog import LoggedRequest, RequestLog, redact_headers

log = logging.getLogger(__name__)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: SimServer) -> None:
        self.sim = sim
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SandboxSim/1.0"
    timeout = 60  # idle keep-alive connections are dropped after this many seconds
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate writes; without NODELAY, Nagle + delayed ACK add ~40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.sim._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sim._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s: " + format, self.server.sim.app.name, *args)

    def _handle(self) -> None:
        sim = self.server.sim
        started, at = time.monotonic(), datetime.now(UTC)
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        request = Request(
            method=self.command,
            path=unquote(split.path) or "/",
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            body=self.rfile.read(length) if length > 0 else b"",
            client=self.client_address[0],
        )
        seq = sim.log.next_seq()
        outcome, rule = sim.handle(request)
        # Logged before the answer is written, so a client that got its answer always finds it in the log.
        sim.record(seq, request, outcome, rule, at, time.monotonic() - started)
        self._write(outcome)

    def _write(self, outcome: Outcome) -> None:
        resp = outcome.response
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.media_type())
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(outcome.body)))
            if outcome.cut_at is not None:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(outcome.body if outcome.cut_at is None else outcome.body[: outcome.cut_at])
            self.wfile.flush()
            if outcome.cut_at is not None:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError as exc:  # client gave up (timeout) or the connection was cut on purpose
            log.debug("%s: write failed: %s", self.server.sim.app.name, exc)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class SimServer:
    """Serves `app` on loopback; `faults`, `log` and `clock` are what tests steer and inspect."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.faults = FaultSet()
        self.log = RequestLog()
        self._address = (host, port)
        self._admin = build_admin_app(self)
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SimServer:
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer(self._address, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sim-{self.app.name}",
            daemon=True,
        )
        self._thread.start()
        log.info("simulator %s listening on %s", self.app.name, self.url)
        return self

    def stop(self) -> None:
        """Stop serving, cut open keep-alive connections and wake delayed responses."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        log.info("simulator %s stopped", self.app.name)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._conn_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # ------------------------------------------------------------------ properties

    @property
    def name(self) -> str:
        return self.app.name

    @property
    def host(self) -> str:
        return self._address[0]

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def clock(self) -> SimClock:
        return self.app.clock

    # ------------------------------------------------------------------ faults and log

    def arm(self, **rule: Any) -> FaultRule:
        """Shortcut for `faults.add(FaultRule(**rule))`."""
        return self.faults.add(FaultRule(**rule))

    def requests(
        self,
        path: str | None = None,
        method: str | None = None,
        status: int | None = None,
        fault: bool | None = None,
    ) -> list[LoggedRequest]:
        """Logged requests, optionally filtered (path is a glob)."""
        return self.log.filter(path=path, method=method, status=status, fault=fault)

    # ------------------------------------------------------------------ request handling

    def handle(self, request: Request) -> tuple[Outcome, FaultRule | None]:
        """Admin routes, else: match a fault, delay, answer with the fault or the app, corrupt the answer."""
        if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
            resp = self._admin.dispatch(request)
            return Outcome(resp, resp.render()), None
        rule = self.faults.match(request.method, request.path, request.query)
        if rule is not None and rule.delay_s:
            self._stopping.wait(rule.delay_s)
        if rule is not None and rule.status is not None:
            resp = rule.error_response(self.app.error_body(rule.status, rule.default_message()))
            return Outcome(resp, resp.render(), detail=rule.describe()), rule
        outcome = apply_response_faults(self.app.dispatch(request), rule)
        if rule is not None and outcome.detail is None:
            outcome.detail = rule.describe()
        return outcome, rule

    def record(
        self,
        seq: int,
        request: Request,
        outcome: Outcome,
        rule: FaultRule | None,
        at: datetime,
        duration_s: float,
    ) -> None:
        if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
            return
        self.log.append(
            LoggedRequest(
                seq=seq,
                at=at,
                sim_at=self.clock.now(),
                app=self.app.name,
                method=request.method,
                path=request.path,
                query=request.query,
                headers=redact_headers(request.headers),
                body=request.body,
                status=outcome.response.status,
                fault=rule.id if rule else None,
                fault_detail=outcome.detail,
                duration_s=duration_s,
            )
        )
