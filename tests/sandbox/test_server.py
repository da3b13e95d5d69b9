"""The simulator server framework, over real HTTP on 127.0.0.1: routes, errors, faults, log, rate limits, clock."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests

from sandbox.app import App, HTTPAbort, Request, Response, json_response
from sandbox.clock import SimClock
from sandbox.faults import FaultRule, add_extra_fields, find_records
from sandbox.ratelimit import RateLimiter
from sandbox.registry import build_apps, load_apps, register_app
from sandbox.server import SimServer

FROZEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T = 10  # seconds: bound on every client call


def cursor_like_error(status: int, message: str) -> dict[str, Any]:
    reasons = {429: "Too Many Requests", 404: "Not Found", 500: "Internal Server Error"}
    return {"error": reasons.get(status, "Error"), "message": message}


def basic_key(request: Request) -> str:
    auth = request.header("authorization") or ""
    if not auth.startswith("Basic "):
        raise HTTPAbort(401, "Invalid API key")
    return base64.b64decode(auth[6:]).decode().split(":", 1)[0]


def example_app(clock: SimClock) -> App:
    """A tiny vendor-like app: a listing with path params, a rate-limited POST, failing handlers."""
    app = App("example", clock=clock, error_body=cursor_like_error)
    limiter = app.rate_limiter("team", per_minute=3)

    @app.get("/v1/organizations/workspaces/{workspace_id}/members")
    def members(request: Request) -> Response:
        ws = request.path_params["workspace_id"]
        data = [
            {
                "type": "workspace_member",
                "user_id": f"user_{i}",
                "workspace_id": ws,
                "workspace_role": "workspace_developer",
                "meta": {"seats": i},
            }
            for i in range(3)
        ]
        return json_response(
            {"data": data, "has_more": False, "first_id": "user_0", "last_id": "user_2"},
            records="data",
            required=("user_id", "workspace_id"),
        )

    @app.post("/teams/daily-usage-data")
    def daily(request: Request) -> Response | dict[str, Any]:
        key = basic_key(request)
        limited = limiter.check(key, lambda: app.error(429, "Rate limit exceeded. Please try again later."))
        if limited is not None:
            return limited
        body = request.json or {}
        return {
            "data": [],
            "period": {"startDate": body.get("startDate"), "endDate": body.get("endDate")},
            "query": request.query,
        }

    @app.get("/boom")
    def boom(request: Request) -> dict[str, Any]:
        raise RuntimeError("handler bug")

    @app.get("/forbidden")
    def forbidden(request: Request) -> dict[str, Any]:
        raise HTTPAbort(403, "Enterprise access required")

    @app.get("/raw")
    def raw(request: Request) -> Response:
        return Response(body=b"a,b\n1,2\n", content_type="text/csv")

    return app


@pytest.fixture()
def clock() -> SimClock:
    return SimClock(FROZEN)


@pytest.fixture()
def server(clock: SimClock) -> Iterator[SimServer]:
    with SimServer(example_app(clock)) as srv:
        yield srv


@pytest.fixture()
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


MEMBERS = "/v1/organizations/workspaces/wrkspc_1/members"


# --------------------------------------------------------------------------- routes and errors


def test_routes_path_params_query_and_json_body(server: SimServer, http: requests.Session) -> None:
    assert server.url.startswith("http://127.0.0.1:") and server.port > 0
    r = http.get(server.url + MEMBERS, timeout=T)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert [m["workspace_id"] for m in r.json()["data"]] == ["wrkspc_1"] * 3
    r = http.post(
        server.url + "/teams/daily-usage-data?group_by[]=a&group_by[]=b",
        auth=("key_1", ""),
        json={"startDate": 1, "endDate": 2},
        timeout=T,
    )
    assert r.status_code == 200
    assert r.json()["period"] == {"startDate": 1, "endDate": 2}
    assert r.json()["query"] == {"group_by[]": ["a", "b"]}
    r = http.get(server.url + "/raw", timeout=T)
    assert r.text == "a,b\n1,2\n" and r.headers["Content-Type"] == "text/csv"


def test_json_errors_use_the_vendor_shape(server: SimServer, http: requests.Session) -> None:
    r = http.get(server.url + "/nope", timeout=T)
    assert r.status_code == 404 and r.json() == {"error": "Not Found", "message": "No route for GET /nope"}
    r = http.delete(server.url + MEMBERS, timeout=T)
    assert r.status_code == 405 and r.headers["Allow"] == "GET"
    r = http.get(server.url + "/boom", timeout=T)
    assert r.status_code == 500 and r.json()["error"] == "Internal Server Error"
    r = http.get(server.url + "/forbidden", timeout=T)
    assert r.status_code == 403 and r.json()["message"] == "Enterprise access required"
    r = http.post(
        server.url + "/teams/daily-usage-data",
        auth=("k", ""),
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=T,
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    r = http.post(server.url + "/teams/daily-usage-data", json={}, timeout=T)
    assert r.status_code == 401


# --------------------------------------------------------------------------- faults


def test_429_with_retry_after_applies_times_then_clears(server: SimServer, http: requests.Session) -> None:
    rule = server.arm(path="/v1/*", status=429, retry_after=7, times=2)
    got = [http.get(server.url + MEMBERS, timeout=T) for _ in range(3)]
    assert [r.status_code for r in got] == [429, 429, 200]
    assert [r.headers.get("Retry-After") for r in got] == ["7", "7", None]
    assert got[0].json() == {
        "error": "Too Many Requests",
        "message": "Rate limit exceeded. Please try again later.",
    }
    assert rule.applied == 2 and not rule.active and rule.remaining == 0
    assert [e.fault for e in server.requests(path=MEMBERS)] == [rule.id, rule.id, None]


def test_429_without_retry_after(server: SimServer, http: requests.Session) -> None:
    server.arm(
        method="GET",
        path=MEMBERS,
        status=429,
        times=1,
        body={
            "type": "error",
            "error": {"type": "rate_limit_error", "message": "slow down"},
            "request_id": "req_1",
        },
    )
    r = http.get(server.url + MEMBERS, timeout=T)
    assert r.status_code == 429 and "Retry-After" not in r.headers
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert http.get(server.url + MEMBERS, timeout=T).status_code == 200


def test_5xx_faults(server: SimServer, http: requests.Session) -> None:
    server.arm(path=MEMBERS, status=503, times=1)
    server.arm(path=MEMBERS, status=529, times=1)
    codes = [http.get(server.url + MEMBERS, timeout=T).status_code for _ in range(3)]
    assert codes == [503, 529, 200]


def test_delay_triggers_client_timeout(server: SimServer, http: requests.Session) -> None:
    server.arm(path=MEMBERS, delay_s=1.0, times=1)
    # Had the client waited for the delayed answer, it would have got it instead of a ReadTimeout.
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(server.url + MEMBERS, timeout=0.3)
    r = requests.get(server.url + MEMBERS, timeout=T)
    assert r.status_code == 200
    deadline = time.monotonic() + T
    while not server.requests(fault=True) and time.monotonic() < deadline:
        time.sleep(0.05)
    delayed = server.requests(fault=True)
    assert len(delayed) == 1 and delayed[0].duration_s >= 1.0


def test_extra_fields_are_added_to_every_object(server: SimServer, http: requests.Session) -> None:
    server.arm(path=MEMBERS, extra_fields={"x_new_field": {"nested": True}}, times=1)
    body = http.get(server.url + MEMBERS, timeout=T).json()

    def objects(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            yield node
            for v in node.values():
                yield from objects(v)
        elif isinstance(node, list):
            for v in node:
                yield from objects(v)

    found = [o for o in objects(body) if "user_id" in o or "has_more" in o or "seats" in o]
    assert len(found) == 7  # envelope + 3 members + 3 nested meta objects
    assert all(o["x_new_field"] == {"nested": True} for o in found)
    assert body["data"][1]["user_id"] == "user_1"
    assert "x_new_field" not in http.get(server.url + MEMBERS, timeout=T).json()


def test_malformed_truncated_body(server: SimServer, http: requests.Session) -> None:
    server.arm(path=MEMBERS, malform="truncate", times=1)
    r = http.get(server.url + MEMBERS, timeout=T)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(r.content)
    with pytest.raises(ValueError):
        r.json()
    assert http.get(server.url + MEMBERS, timeout=T).json()["has_more"] is False
    server.arm(path="/raw", malform="wrong_type", times=1)  # a CSV body can only be cut
    assert http.get(server.url + "/raw", timeout=T).content == b"a,b\n"


def test_malformed_record_wrong_type_and_missing_field(server: SimServer, http: requests.Session) -> None:
    server.arm(path=MEMBERS, malform="wrong_type", field="user_id", record=1, times=1)
    data = http.get(server.url + MEMBERS, timeout=T).json()["data"]
    assert [type(m["user_id"]) for m in data] == [str, int, str]
    server.arm(path=MEMBERS, malform="missing_field", times=1)  # default: first required field
    data = http.get(server.url + MEMBERS, timeout=T).json()["data"]
    assert "user_id" not in data[0] and data[1]["user_id"] == "user_1"
    server.arm(path=MEMBERS, malform="wrong_type", field="meta.seats", record=2, times=1)
    data = http.get(server.url + MEMBERS, timeout=T).json()["data"]
    assert data[2]["meta"]["seats"] == "not-a-number" and data[1]["meta"]["seats"] == 1
    details = [e.fault_detail for e in server.requests(fault=True)]
    assert details == ["record 1: user_id -> int", "record 0: removed user_id", "record 2: meta.seats -> str"]


def test_malformed_incomplete_body_cuts_the_connection(server: SimServer, http: requests.Session) -> None:
    server.arm(path=MEMBERS, malform="incomplete", times=1)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        http.get(server.url + MEMBERS, timeout=T)
    assert http.get(server.url + MEMBERS, timeout=T).status_code == 200


def test_rule_matching_by_method_query_and_after(server: SimServer, http: requests.Session) -> None:
    server.arm(method="POST", path="/teams/*", status=500, query={"page": "2"})
    server.arm(path=MEMBERS, status=502, after=1, times=1)
    post = server.url + "/teams/daily-usage-data"
    assert http.post(post + "?page=1", auth=("a", ""), json={}, timeout=T).status_code == 200
    assert http.post(post + "?page=2", auth=("a", ""), json={}, timeout=T).status_code == 500
    assert [http.get(server.url + MEMBERS, timeout=T).status_code for _ in range(3)] == [200, 502, 200]


def test_invalid_rules_are_refused() -> None:
    with pytest.raises(ValueError):
        FaultRule(path="/x")  # does nothing
    with pytest.raises(ValueError):
        FaultRule(malform="scramble")
    with pytest.raises(ValueError):
        FaultRule.from_dict({"status": 500, "colour": "red"})


def test_admin_endpoint_arms_lists_and_clears_faults(server: SimServer, http: requests.Session) -> None:
    admin = server.url + "/_sandbox/faults"
    r = http.post(
        admin,
        json={"method": "GET", "path": "/v1/*", "status": 429, "retry_after": "2", "times": 1},
        timeout=T,
    )
    assert r.status_code == 201
    rule_id = r.json()["faults"][0]["id"]
    listed = http.get(admin, timeout=T).json()["faults"]
    assert [f["id"] for f in listed] == [rule_id] and listed[0]["remaining"] == 1
    r = http.get(server.url + MEMBERS, timeout=T)
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert http.get(server.url + MEMBERS, timeout=T).status_code == 200
    assert http.get(admin, timeout=T).json()["faults"][0]["applied"] == 1
    r = http.post(
        admin, json={"faults": [{"path": "/v1/*", "status": 500}, {"path": "/x", "delay_s": 1}]}, timeout=T
    )
    assert len(r.json()["faults"]) == 2
    assert http.get(server.url + MEMBERS, timeout=T).status_code == 500
    assert http.delete(f"{admin}/{r.json()['faults'][0]['id']}", timeout=T).json()["removed"]
    assert http.get(server.url + MEMBERS, timeout=T).status_code == 200
    assert http.delete(admin + "/fault-unknown", timeout=T).status_code == 404
    assert http.delete(admin, timeout=T).json() == {"cleared": 2}  # 3 armed, 1 removed
    assert http.post(admin, json={"path": "/x", "status": 429, "bogus": 1}, timeout=T).status_code == 400
    assert http.post(admin, json={"path": "/x"}, timeout=T).status_code == 400
    assert http.get(server.url + "/_sandbox/health", timeout=T).json() == {"status": "ok", "app": "example"}
    assert all(not e.path.startswith("/_sandbox") for e in server.log)


# --------------------------------------------------------------------------- request log


def test_request_log_records_and_redacts(server: SimServer, http: requests.Session) -> None:
    http.get(
        server.url + MEMBERS + "?limit=2&limit=3",
        headers={"x-api-key": "sk-ant-admin01-SECRET", "anthropic-version": "2023-06-01"},
        timeout=T,
    )
    http.post(
        server.url + "/teams/daily-usage-data", auth=("key_SECRET", ""), json={"startDate": 5}, timeout=T
    )
    first, second = server.requests()
    assert (first.method, first.path, first.status, first.query) == (
        "GET",
        MEMBERS,
        200,
        {"limit": ["2", "3"]},
    )
    assert first.headers["x-api-key"] == "[redacted]" and first.headers["anthropic-version"] == "2023-06-01"
    assert second.headers["authorization"] == "Basic [redacted]"
    assert second.json == {"startDate": 5} and second.seq > first.seq
    assert first.sim_at == FROZEN and first.at.tzinfo is not None
    assert "SECRET" not in repr(server.requests())
    assert [e.path for e in server.requests(path="/teams/*", method="post")] == ["/teams/daily-usage-data"]
    remote = http.get(server.url + "/_sandbox/requests", params={"path": "/v1/*"}, timeout=T).json()[
        "requests"
    ]
    assert [e["path"] for e in remote] == [MEMBERS] and remote[0]["headers"]["x-api-key"] == "[redacted]"
    assert "SECRET" not in str(http.get(server.url + "/_sandbox/requests", timeout=T).json())
    assert http.delete(server.url + "/_sandbox/requests", timeout=T).json() == {"cleared": 2}
    assert len(server.log) == 0


def test_concurrent_requests_are_all_logged(server: SimServer) -> None:
    def hit() -> None:
        with requests.Session() as s:
            for _ in range(5):
                assert s.get(server.url + MEMBERS, timeout=T).status_code == 200

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(T)
    entries = server.requests(path=MEMBERS)
    assert len(entries) == 40 and len({e.seq for e in entries}) == 40


# --------------------------------------------------------------------------- rate limiter and clock


def test_rate_limiter_over_http(server: SimServer, clock: SimClock, http: requests.Session) -> None:
    url = server.url + "/teams/daily-usage-data"
    codes = [http.post(url, auth=("team_a", ""), json={}, timeout=T) for _ in range(4)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert codes[3].headers["Retry-After"] == "60"
    assert codes[3].json() == {
        "error": "Too Many Requests",
        "message": "Rate limit exceeded. Please try again later.",
    }
    assert http.post(url, auth=("team_b", ""), json={}, timeout=T).status_code == 200  # per key
    clock.advance(61)
    assert http.post(url, auth=("team_a", ""), json={}, timeout=T).status_code == 200
    admin = server.url + "/_sandbox/rate-limits"
    assert http.post(admin, json={"enabled": False}, timeout=T).json()["team"]["enabled"] is False
    assert all(http.post(url, auth=("team_a", ""), json={}, timeout=T).status_code == 200 for _ in range(5))
    http.post(admin, json={"name": "team", "enabled": True, "retry_after": False, "reset": True}, timeout=T)
    got = [http.post(url, auth=("team_a", ""), json={}, timeout=T) for _ in range(4)]
    assert got[3].status_code == 429 and "Retry-After" not in got[3].headers
    assert http.post(admin, json={"name": "nope"}, timeout=T).status_code == 404
    assert http.get(admin, timeout=T).json()["team"]["denied"] == 1


def test_rate_limiter_window_rolls() -> None:
    clock = SimClock(FROZEN)
    lim = RateLimiter(2, clock=clock)
    assert lim.acquire("k") is None
    clock.advance(30)
    assert lim.acquire("k") is None
    assert lim.acquire("k") == pytest.approx(30.0)
    clock.advance(30)  # the first hit is now exactly a minute old
    assert lim.acquire("k") is None
    assert lim.acquire("k") == pytest.approx(30.0)
    too_many = Response(status=429, json={"error": "x"})
    limited = lim.check("k", too_many)
    assert limited is not None and limited.headers["Retry-After"] == "30" and too_many.headers == {}
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_sim_clock() -> None:
    clock = SimClock("2026-03-01T23:30:00-08:00")
    assert clock.now() == datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
    assert clock.today() == date(2026, 3, 2)
    clock.advance(timedelta(hours=1))
    assert clock.now().hour == 8 and clock.is_fixed
    clock.reset()
    assert not clock.is_fixed and abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)
    clock.advance(3600)
    assert timedelta(minutes=59) < clock.now() - datetime.now(UTC) < timedelta(minutes=61)
    assert SimClock("2026-01-01T00:00:00").now().tzinfo == UTC


def test_clock_admin_endpoint(server: SimServer, http: requests.Session) -> None:
    url = server.url + "/_sandbox/clock"
    assert http.get(url, timeout=T).json() == {"now": "2026-03-01T12:00:00Z", "fixed": True}
    assert http.post(url, json={"advance_s": 3600}, timeout=T).json()["now"] == "2026-03-01T13:00:00Z"
    assert (
        http.post(url, json={"now": "2026-04-01T00:00:00Z"}, timeout=T).json()["now"]
        == "2026-04-01T00:00:00Z"
    )
    assert server.clock.today() == date(2026, 4, 1)
    assert http.post(url, json={"now": "yesterday"}, timeout=T).status_code == 400
    assert http.post(url, json={"real": True}, timeout=T).json()["fixed"] is False


# --------------------------------------------------------------------------- lifecycle and registry


def test_stop_refuses_new_connections_and_wakes_delayed_requests(clock: SimClock) -> None:
    srv = SimServer(example_app(clock)).start()
    url = srv.url + MEMBERS
    srv.arm(path=MEMBERS, delay_s=30)
    errors: list[BaseException] = []

    def slow() -> None:
        try:
            requests.get(url, timeout=T)
        except requests.RequestException as exc:
            errors.append(exc)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    started = time.monotonic()
    srv.stop()
    t.join(T)
    assert time.monotonic() - started < 5 and not t.is_alive()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, timeout=2)
    srv.stop()  # idempotent


def test_registry_builds_registered_apps() -> None:
    factories = load_apps()
    assert "sandbox" in factories

    @register_app("zz-test-only")
    def factory(org: Any, clock: SimClock) -> App:
        return App("zz-test-only", clock=clock)

    with pytest.raises(ValueError):
        register_app("zz-test-only")(lambda org, clock: App("other"))
    from sandbox import Organisation

    org = Organisation.generate(people=10, days=14, end=date(2026, 3, 31))
    apps = build_apps(org, SimClock(FROZEN), ["sandbox", "zz-test-only"])
    assert set(apps) == {"sandbox", "zz-test-only"} and apps["sandbox"].clock is apps["zz-test-only"].clock
    with pytest.raises(KeyError):
        build_apps(org, SimClock(FROZEN), ["no-such-app"])
    with SimServer(apps["sandbox"]) as srv:
        meta = requests.get(srv.url + "/org", timeout=T).json()
        assert meta["end"] == "2026-03-31" and meta["people"] == 10
        tab = requests.get(srv.url + "/sheet/seat_prices", timeout=T).json()
        assert tab["rows"] == org.sheet_tabs()["seat_prices"]
        assert requests.get(srv.url + "/sheet/nope", timeout=T).status_code == 404


def test_payload_helpers() -> None:
    payload = {"data": [{"results": [{"a": 1}, {"a": 2}]}, {"results": [{"a": 3}]}]}
    assert [r["a"] for r in find_records(payload, "data.*.results")] == [1, 2, 3]
    assert add_extra_fields([{"a": {"b": 1}}], {"z": 0}) == [{"a": {"b": 1, "z": 0}, "z": 0}]
