"""The shared vendor hook base over real HTTP on 127.0.0.1: retries, errors, counters, paging, connections.

A minimal concrete hook (`DemoHook`) runs against a small sandbox app, so these tests pin the base's
behaviour independently of either vendor; the vendor files test their endpoints the same way.
"""

from __future__ import annotations

import importlib
import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import pytest
from requests.auth import AuthBase

from ai_usage import __version__
from ai_usage.exceptions import ConfigurationError, VendorAPIError
from ai_usage.hooks.base import VendorHttpHook, day_windows, parse_retry_after, utc_midnight_ms
from sandbox import App, Request, Response, SimServer

KEY = "demo-secret-key-0123456789abcdef"
MONEY_BODY = b'{"spendCents": 2450.125487, "a": 0.1, "b": 0.2, "tiny": 40.16699999999999, "count": 3}'


class DemoAuth(AuthBase):
    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, request: Any) -> Any:
        request.headers["x-demo-key"] = self.key
        return request


class DemoHook(VendorHttpHook):
    conn_name_attr = "demo_conn_id"
    default_conn_name = "demo_admin"
    conn_type = "demo_admin"
    hook_name = "Demo API"
    default_host = "https://api.demo.invalid"
    vendor = "Demo API"
    test_path = "/ping"

    def _auth(self, key: str) -> AuthBase:
        return DemoAuth(key)


def demo_app() -> App:
    app = App("demo", error_body=lambda status, msg: {"type": "error", "error": {"type": "demo_error", "message": msg},
                                                      "request_id": "req_42"})

    def check(request: Request) -> Response | None:
        if request.header("x-demo-key") != KEY:
            # A careless vendor echoes the key it rejected: the hook must still never show it.
            return app.error(401, f"invalid key {request.header('x-demo-key')}")
        return None

    @app.get("/ping")
    def ping(request: Request) -> Any:
        return check(request) or {"ok": True}

    @app.get("/money")
    def money(request: Request) -> Any:
        return check(request) or Response(body=MONEY_BODY, content_type="application/json")

    @app.get("/items")
    def items(request: Request) -> Any:
        """Pages of 2 items out of 5; `mode=loop` repeats a cursor, `mode=endless` never stops."""
        if (denied := check(request)) is not None:
            return denied
        mode, cursor = request.arg("mode", "normal"), int(request.arg("cursor", "0"))
        if mode == "loop":
            return {"items": [cursor], "next": 1}
        if mode == "endless":
            return {"items": [cursor], "next": cursor + 1}
        chunk = list(range(5))[cursor:cursor + 2]
        return {"items": chunk, "next": cursor + 2 if cursor + 2 < 5 else None}

    for status, message in ((400, "starting_at is malformed"), (403, "Enterprise access required"),
                            (404, "Resource not found")):
        app.add_route("GET", f"/fail/{status}", lambda r, s=status, m=message: app.error(s, m))
    return app


@pytest.fixture
def srv() -> Iterator[SimServer]:
    with SimServer(demo_app()) as server:
        yield server


def set_conn(monkeypatch: pytest.MonkeyPatch, host: str | None, password: str | None = KEY, **more: Any) -> None:
    conn: dict[str, Any] = {"conn_type": "demo_admin", **more}
    if host is not None:
        conn["host"] = host
    if password is not None:
        conn["password"] = password
    monkeypatch.setenv("AIRFLOW_CONN_DEMO_ADMIN", json.dumps(conn))


@pytest.fixture
def conn(srv: SimServer, monkeypatch: pytest.MonkeyPatch) -> SimServer:
    set_conn(monkeypatch, srv.url)
    return srv


def fast_hook(**options: Any) -> DemoHook:
    options.setdefault("retry_wait_scale", 0.001)
    return DemoHook(**options)


def items_next(payload: Any, args: Any) -> dict[str, Any] | None:
    return None if payload["next"] is None else {"cursor": payload["next"]}


# --------------------------------------------------------------------------- connection and session


def test_init_touches_no_connection_and_counters_start_at_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_DEMO_ADMIN", raising=False)
    hook = DemoHook()  # no connection defined: constructing must still work
    assert (hook.api_calls, hook.retries, hook.conn_id) == (0, 0, "demo_admin")


def test_missing_connection_is_a_configuration_error_with_the_env_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_DEMO_ADMIN", raising=False)
    with pytest.raises(ConfigurationError) as err:
        DemoHook().request("GET", "/ping")
    assert "'demo_admin'" in str(err.value) and "AIRFLOW_CONN_DEMO_ADMIN=" in str(err.value)
    assert '"conn_type": "demo_admin"' in str(err.value)


def test_empty_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, "http://127.0.0.1:9", password="")
    with pytest.raises(ConfigurationError, match="'demo_admin' has no API key"):
        DemoHook().request("GET", "/ping")


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        ({"host": "http://127.0.0.1:8123/"}, "http://127.0.0.1:8123"),
        ({"host": "api.example.com"}, "https://api.example.com"),
        ({"host": "127.0.0.1", "schema": "http", "port": 8124}, "http://127.0.0.1:8124"),
        ({}, "https://api.demo.invalid"),
    ],
)
def test_base_url_from_host_schema_port_or_default(
    monkeypatch: pytest.MonkeyPatch, conn: dict[str, Any], expected: str
) -> None:
    set_conn(monkeypatch, conn.pop("host", None), **conn)
    hook = DemoHook()
    hook.get_conn()
    assert hook.base_url == expected
    assert hook.url_from_endpoint("/v1/x") == expected + "/v1/x"


def test_every_request_carries_auth_user_agent_and_the_conn_id_can_be_chosen(
    srv: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OTHER_DEMO", json.dumps({"conn_type": "demo_admin", "host": srv.url,
                                                               "password": KEY}))
    hook = DemoHook("other_demo")
    response, text, payload = hook.request("GET", "/ping")
    assert payload == {"ok": True} and response.status_code == 200 and json.loads(text) == payload
    (logged,) = srv.requests(path="/ping")
    assert logged.headers["user-agent"] == f"ai-usage/{__version__}"
    assert logged.headers["x-demo-key"] == KEY  # the test app's header is not one the log redacts
    assert hook.conn_id == "other_demo"


# --------------------------------------------------------------------------- JSON exactness


def test_json_floats_parse_to_exact_decimals_and_text_is_verbatim(conn: SimServer) -> None:
    _, text, payload = DemoHook().request("GET", "/money")
    assert text.encode() == MONEY_BODY
    assert payload["spendCents"] == Decimal("2450.125487")
    assert payload["a"] + payload["b"] == Decimal("0.3")  # 0.1 + 0.2 in binary floats is 0.30000000000000004
    assert payload["tiny"] == Decimal("40.16699999999999")
    assert isinstance(payload["count"], int)


# --------------------------------------------------------------------------- retries


def test_429_retry_after_is_honoured_on_the_real_retry_path(conn: SimServer) -> None:
    conn.arm(path="/ping", status=429, retry_after=1, times=1)
    hook = DemoHook(retry_wait_scale=0.4, backoff_initial=10.0)  # backoff alone would wait >= 4 s
    _, _, payload = hook.request("GET", "/ping")
    first, second = conn.requests(path="/ping")
    assert payload == {"ok": True} and (first.status, second.status) == (429, 200)
    assert 0.4 <= (second.at - first.at).total_seconds() < 3.0  # Retry-After 1 s x scale 0.4
    assert (hook.api_calls, hook.retries) == (2, 1)


def test_retry_after_values_seconds_http_date_and_cap(conn: SimServer) -> None:
    waits: list[float] = []
    conn.arm(path="/ping", status=429, retry_after=7, times=1)
    conn.arm(path="/ping", status=429, retry_after=format_datetime(datetime.now(UTC) + timedelta(seconds=30),
                                                                    usegmt=True), times=1)
    conn.arm(path="/ping", status=503, retry_after=100_000, times=1)
    hook = DemoHook(retry_wait_scale=0.5, max_wait=300, sleep=waits.append)
    hook.request("GET", "/ping")
    assert waits[0] == 3.5  # 7 s scaled by 0.5
    assert 27 * 0.5 <= waits[1] <= 30 * 0.5  # an HTTP date, one-second resolution
    assert waits[2] == 150.0  # capped at max_wait 300 s, scaled
    assert (hook.api_calls, hook.retries) == (4, 3)


def test_429_without_retry_after_backs_off_exponentially_with_jitter(conn: SimServer) -> None:
    waits: list[float] = []
    conn.arm(path="/ping", status=429, times=3)
    hook = DemoHook(backoff_initial=2.0, sleep=waits.append)
    assert hook.request("GET", "/ping")[2] == {"ok": True}
    assert len(waits) == 3
    for attempt, wait in enumerate(waits):
        base = 2.0 * 2**attempt
        assert base <= wait <= base + 2.0
    assert len(conn.requests(path="/ping", status=429)) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 529])
def test_5xx_is_retried_then_succeeds(conn: SimServer, status: int) -> None:
    conn.arm(path="/ping", status=status, times=2)
    hook = fast_hook()
    assert hook.request("GET", "/ping")[2] == {"ok": True}
    assert [e.status for e in conn.requests(path="/ping")] == [status, status, 200]
    assert (hook.api_calls, hook.retries) == (3, 2)


def test_retries_exhausted_raise_vendor_error_with_the_last_status(conn: SimServer) -> None:
    conn.arm(path="/ping", status=503, message="try later")
    hook = fast_hook(max_attempts=4)
    with pytest.raises(VendorAPIError) as err:
        hook.request("GET", "/ping")
    assert err.value.status == 503 and err.value.conn_id == "demo_admin"
    assert "after 4 attempt(s)" in str(err.value) and "try later" in str(err.value)
    assert len(conn.requests(path="/ping")) == 4
    assert (hook.api_calls, hook.retries) == (4, 3)


def test_read_timeout_is_retried(conn: SimServer) -> None:
    rule = conn.arm(path="/ping", delay_s=1.5, times=1)
    hook = fast_hook(timeout=(2.0, 0.3))
    assert hook.request("GET", "/ping")[2] == {"ok": True}
    # Two calls and one retry: the slow answer timed out and was retried, not waited for.
    assert rule.applied == 1 and (hook.api_calls, hook.retries) == (2, 1)


def test_connection_refused_is_retried_then_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    set_conn(monkeypatch, f"http://127.0.0.1:{port}")
    hook = fast_hook(max_attempts=3)
    with pytest.raises(VendorAPIError, match="after 3 attempt") as err:
        hook.request("GET", "/ping")
    assert err.value.status is None and "ConnectionError" in str(err.value)
    assert (hook.api_calls, hook.retries) == (3, 2)


@pytest.mark.parametrize("malform", ["incomplete", "truncate"])
def test_cut_or_garbled_bodies_are_retried(conn: SimServer, malform: str) -> None:
    conn.arm(path="/items", malform=malform, times=1)
    hook = fast_hook()
    assert hook.request("GET", "/items")[2]["items"] == [0, 1]
    assert (hook.api_calls, hook.retries) == (2, 1)


# --------------------------------------------------------------------------- non-retryable errors


def test_complete_json_with_a_lone_surrogate_fails_at_once_saying_so(conn: SimServer) -> None:
    conn.arm(path="/items", malform="lone_surrogate", times=1)
    hook = fast_hook()
    with pytest.raises(VendorAPIError) as err:
        hook.request("GET", "/items")
    message = str(err.value)
    assert (hook.api_calls, hook.retries) == (1, 0)  # the vendor would send the same again
    assert "'demo_admin'" in message and "GET /items" in message and "HTTP 200" in message
    assert "lone UTF-16 surrogate \\ud800 at character" in message and KEY not in message


@pytest.mark.parametrize(
    ("path", "status", "vendor_text"),
    [("/fail/400", 400, "starting_at is malformed"), ("/fail/403", 403, "Enterprise access required"),
     ("/fail/404", 404, "Resource not found"), ("/ping", 401, "invalid key")],
)
def test_other_4xx_fail_at_once_naming_conn_endpoint_status_never_the_key(
    srv: SimServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    path: str, status: int, vendor_text: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    bad_key = KEY + "-revoked"
    set_conn(monkeypatch, srv.url, password=bad_key if status == 401 else KEY)
    if status != 401:
        srv.arm(path=path, status=status, message=vendor_text + " " + KEY)  # an echo of the key, too
    hook = fast_hook()
    with pytest.raises(VendorAPIError) as err:
        hook.request("GET", path)
    message = str(err.value)
    assert len(srv.requests()) == 1 and (hook.api_calls, hook.retries) == (1, 0)
    assert err.value.status == status and err.value.conn_id == "demo_admin"
    assert "'demo_admin'" in message and f"GET {path}" in message and f"HTTP {status}" in message
    assert vendor_text in message and "request_id req_42" in message
    assert KEY not in message and bad_key not in message
    assert ("rotate" in message) == (status in (401, 403))
    assert KEY not in caplog.text
    assert "ai_usage.hooks.base" not in {r.name for r in caplog.records if r.levelno >= logging.WARNING}


def test_retry_logs_name_the_endpoint_and_never_the_key(conn: SimServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    conn.arm(path="/ping", status=429, message=f"slow down {KEY}", times=1)
    fast_hook().request("GET", "/ping")
    warnings = [r.getMessage() for r in caplog.records if r.name == "ai_usage.hooks.base"]
    assert len(warnings) == 1 and "GET /ping" in warnings[0] and "'demo_admin'" in warnings[0]
    assert "HTTP 429" in warnings[0]
    assert KEY not in caplog.text


# --------------------------------------------------------------------------- pagination


def test_paginate_follows_the_cursor_until_the_stop_condition(conn: SimServer) -> None:
    hook = DemoHook()
    pages = list(hook._paginate("items", "GET", "/items", params={"mode": "normal"}, next_args=items_next,
                                note={"window": ["2026-01-01", "2026-01-02"]}, first_n=7))
    assert [p.payload["items"] for p in pages] == [[0, 1], [2, 3], [4]]
    assert [p.n for p in pages] == [7, 8, 9]
    assert [p.request["params"].get("cursor") for p in pages] == [None, 2, 4]
    assert pages[0].request == {"method": "GET", "path": "/items", "params": {"mode": "normal"}, "json": None,
                                "window": ["2026-01-01", "2026-01-02"]}
    assert all(p.status == 200 and p.endpoint == "items" and p.day is None for p in pages)
    assert "application/json" in pages[0].headers["Content-Type"]
    assert hook.api_calls == 3 == len(conn.requests(path="/items"))


def test_paginate_page_cap_stops_an_endless_sequence(conn: SimServer) -> None:
    hook = DemoHook(max_pages=4)
    with pytest.raises(VendorAPIError, match="more than 4 pages"):
        list(hook._paginate("items", "GET", "/items", params={"mode": "endless"}, next_args=items_next))
    assert len(conn.requests(path="/items")) == 4


def test_paginate_detects_a_repeating_cursor(conn: SimServer) -> None:
    with pytest.raises(VendorAPIError, match="cursor repeated"):
        list(DemoHook()._paginate("items", "GET", "/items", params={"mode": "loop"}, next_args=items_next))
    assert len(conn.requests(path="/items")) == 2  # cursor 0, then cursor 1 twice: the repeat is not sent


# --------------------------------------------------------------------------- UI


def test_test_connection_true_and_false(conn: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = DemoHook().test_connection()
    assert ok and conn.url in message
    set_conn(monkeypatch, conn.url, password="wrong-" + KEY)
    ok, message = DemoHook().test_connection()
    assert not ok and "HTTP 401" in message and "'demo_admin'" in message and KEY not in message


def test_test_connection_reports_a_missing_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_DEMO_ADMIN", raising=False)
    ok, message = DemoHook().test_connection()
    assert not ok and "AIRFLOW_CONN_DEMO_ADMIN" in message


def test_provider_info_lists_both_connection_types_with_existing_hooks() -> None:
    from ai_usage.provider import get_provider_info

    info = get_provider_info()
    types = {entry["connection-type"]: entry for entry in info["connection-types"]}
    assert set(types) == {"cursor_admin", "anthropic_admin", "metabase"}
    for conn_type, entry in types.items():
        if conn_type == "metabase":
            continue  # checked below: its connection id is metabase_default and its form keeps the login
        module_name, class_name = entry["hook-class-name"].rsplit(".", 1)
        hook_class = getattr(importlib.import_module(module_name), class_name)
        assert issubclass(hook_class, VendorHttpHook)
        assert hook_class.conn_type == conn_type and hook_class.hook_name == entry["hook-name"]
        assert module_name in info["hooks"][0]["python-modules"]
        behaviour = hook_class.get_ui_field_behaviour()
        assert behaviour["hidden_fields"] == entry["ui-field-behaviour"]["hidden-fields"]
        assert behaviour["placeholders"]["host"] == hook_class.default_host
        assert behaviour["relabeling"]["password"] in ("API key", "Admin API key")
        assert {"schema", "port", "login"} <= set(behaviour["hidden_fields"])
        assert hook_class.default_conn_name == conn_type  # ids fixed by settings (DESIGN.md §2)


def test_the_installed_entry_point_exposes_our_provider_to_airflow() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("ai_usage.")]
    info = ep.load()()
    assert info["package-name"] == "ai-usage"
    assert [c["connection-type"] for c in info["connection-types"]] == ["cursor_admin", "anthropic_admin", "metabase"]


def test_the_metabase_connection_type_has_its_own_form() -> None:
    from ai_usage.dashboards.metabase_hook import MetabaseHook
    from ai_usage.provider import get_provider_info

    entry = next(e for e in get_provider_info()["connection-types"] if e["connection-type"] == "metabase")
    assert entry["hook-class-name"] == "ai_usage.dashboards.metabase_hook.MetabaseHook"
    assert MetabaseHook.default_conn_name == "metabase_default" and MetabaseHook.conn_type == "metabase"
    behaviour = MetabaseHook.get_ui_field_behaviour()
    assert "login" not in behaviour["hidden_fields"]  # login + password, or an API key with an empty login
    assert behaviour["relabeling"]["password"] == "Password or API key"


# --------------------------------------------------------------------------- helpers


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0 and parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Sun, 01 Mar 2026 12:00:20 GMT", now=now) == 20.0
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now=now) == 0.0  # in the past: retry now
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("") is None and parse_retry_after("soon") is None


def test_utc_midnight_ms_ignores_the_machine_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: a local-time bug would shift the day
    time.tzset()
    try:
        assert utc_midnight_ms(date(2024, 3, 18)) == 1710720000000  # the vendor docs' example
        assert utc_midnight_ms(datetime(2024, 3, 18, 23, 30, tzinfo=UTC)) == 1710720000000
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_day_windows_are_contiguous_and_bounded() -> None:
    windows = day_windows(date(2025, 1, 1), date(2025, 4, 5), 30)  # 95 days
    assert [(b - a).days + 1 for a, b in windows] == [30, 30, 30, 5]
    assert windows[0][0] == date(2025, 1, 1) and windows[-1][1] == date(2025, 4, 5)
    assert all(b2 == a1 - timedelta(days=1) for (_, b2), (a1, _) in zip(windows, windows[1:], strict=False))
    assert day_windows(date(2025, 1, 1), date(2025, 1, 1), 30) == [(date(2025, 1, 1), date(2025, 1, 1))]
    with pytest.raises(ValueError):
        day_windows(date(2025, 1, 2), date(2025, 1, 1), 30)
