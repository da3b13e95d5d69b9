"""The Anthropic Admin API simulator over real HTTP on 127.0.0.1, and its ground truth.

Everything a client sees is asserted on the wire: the vendor's error shape, paging, lateness, revisions,
money units. The ground truth (`sandbox.vendors.anthropic_truth`) is compared with what the API serves
for final days after converting units here, in plain Python, the way a parser would.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from sandbox import Organisation, SimClock, SimServer
from sandbox.app import Request
from sandbox.registry import load_apps
from sandbox.vendors.anthropic import AnthropicApp, admin_key_for, build_anthropic
from sandbox.vendors.anthropic_render import cc_record_text
from sandbox.vendors.anthropic_truth import (
    ESTIMATE_TOLERANCE,
    billed_total_by_day,
    estimated_total_by_day,
    expected_api_keys,
    expected_claude_code,
    expected_costs,
    expected_messages_usage,
    expected_users,
    expected_workspaces,
)

END = date(2026, 3, 31)
NOW = datetime(2026, 4, 5, 12, 0, tzinfo=UTC)  # every day up to END is final (Claude Code and costs)
VERSION = "2023-06-01"
T = 30  # seconds: bound on every client call
CC = "/v1/organizations/usage_report/claude_code"
COST = "/v1/organizations/cost_report"
MSG = "/v1/organizations/usage_report/messages"
AMOUNT = re.compile(r"^\d+\.\d{5,}$")


def stamp(d: date) -> str:
    return f"{d.isoformat()}T00:00:00Z"


def midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


@pytest.fixture(scope="module")
def org() -> Organisation:
    return Organisation.generate(seed=7, people=200, days=60, end=END)


@pytest.fixture(scope="module")
def server(org: Organisation) -> Iterator[SimServer]:
    with SimServer(build_anthropic(org, SimClock(NOW))) as srv:
        yield srv


def sim_app(srv: SimServer) -> AnthropicApp:
    app = srv.app
    assert isinstance(app, AnthropicApp)
    return app


@pytest.fixture
def sim(server: SimServer) -> Iterator[SimServer]:
    """The shared server, with its clock, faults and rate limiter back to normal after each test."""
    server.clock.set(NOW)
    yield server
    server.clock.set(NOW)
    server.faults.clear()
    sim_app(server).limiter.configure(enabled=False, retry_after=True, per_minute=60)
    sim_app(server).limiter.reset()


class Client:
    def __init__(self, srv: SimServer, key: str | None = None) -> None:
        self.srv = srv
        self.session = requests.Session()
        self.session.headers.update(
            {"x-api-key": key or sim_app(srv).admin_key, "anthropic-version": VERSION}
        )

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> requests.Response:
        return self.session.get(self.srv.url + path, params=params, headers=headers, timeout=T)

    def ok(self, path: str, **params: Any) -> Any:
        r = self.get(path, **params)
        assert r.status_code == 200, r.text
        return r.json()

    def claude_code_day(self, day: date, limit: int = 1000) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = None
        while True:
            body = self.ok(CC, starting_at=day.isoformat(), limit=limit, **({"page": page} if page else {}))
            out.extend(body["data"])
            if not body["has_more"]:
                assert body["next_page"] is None
                return out
            page = body["next_page"]

    def buckets(self, path: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = None
        for _ in range(100):
            body = self.ok(path, **params, **({"page": page} if page else {}))
            out.extend(body["data"])
            if not body["has_more"]:
                assert body["next_page"] is None
                return out
            page = body["next_page"]
        raise AssertionError("paging did not end")

    def listing(self, path: str, limit: int = 20, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = None
        for _ in range(1000):
            body = self.ok(path, limit=limit, **params, **({"after_id": after} if after else {}))
            out.extend(body["data"])
            if body["data"]:
                id_field = "user_id" if body["data"][0].get("type") == "workspace_member" else "id"
                assert body["first_id"] == body["data"][0][id_field]
                assert body["last_id"] == body["data"][-1][id_field]
            if not body["has_more"]:
                return out
            after = body["last_id"]
        raise AssertionError("paging did not end")


@pytest.fixture
def client(sim: SimServer) -> Client:
    return Client(sim)


def assert_vendor_error(
    r: requests.Response, status: int, error_type: str, *, header: bool = True
) -> dict[str, Any]:
    """The vendor's error body; `header`: the simulator's own errors also carry a request-id header
    (faults injected by the sandbox framework only have the body)."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["request_id"].startswith("req_")
    if header:
        assert r.headers["request-id"] == body["request_id"]
    return body


def busiest_day(org: Organisation) -> date:
    counts = Counter(r["usage_date"] for r in expected_claude_code(org, org.start, org.end))
    return max(counts, key=lambda d: (counts[d], d))


# --------------------------------------------------------------------------- auth and errors


def test_registered_and_default_admin_key(org: Organisation) -> None:
    assert "anthropic" in load_apps()
    app = load_apps()["anthropic"](org, SimClock(NOW))
    assert isinstance(app, AnthropicApp)
    assert app.admin_key == admin_key_for(org.seed) and app.admin_key.startswith("sk-ant-admin01-")
    assert admin_key_for(org.seed + 1) != app.admin_key


@pytest.mark.parametrize(
    "key",
    [None, "sk-ant-api03-ordinary-key", "sk-ant-admin01-not-this-organisations-key"],
    ids=["missing", "ordinary-api-key", "wrong-admin-key"],
)
def test_non_admin_keys_get_401_authentication_error(sim: SimServer, key: str | None) -> None:
    headers = {"anthropic-version": VERSION} | ({"x-api-key": key} if key else {})
    r = requests.get(sim.url + CC, params={"starting_at": "2026-03-10"}, headers=headers, timeout=T)
    assert_vendor_error(r, 401, "authentication_error")


def test_missing_anthropic_version_is_400_and_request_ids_differ(sim: SimServer) -> None:
    app = sim_app(sim)
    ids = set()
    for _ in range(3):
        r = requests.get(
            sim.url + COST,
            params={"starting_at": stamp(END)},
            headers={"x-api-key": app.admin_key},
            timeout=T,
        )
        ids.add(assert_vendor_error(r, 400, "invalid_request_error")["request_id"])
    assert len(ids) == 3
    ok = requests.get(
        sim.url + "/v1/organizations/me",
        headers={"x-api-key": app.admin_key, "anthropic-version": VERSION},
        timeout=T,
    )
    assert ok.status_code == 200 and ok.headers["request-id"].startswith("req_")
    assert ok.json() == {
        "id": app.org.organization_id,
        "type": "organization",
        "name": app.org.organization_name,
    }


# --------------------------------------------------------------------------- Claude Code report


def test_claude_code_pages_with_opaque_cursors_default_limit_20(client: Client, org: Organisation) -> None:
    day = busiest_day(org)
    expected = [r for r in expected_claude_code(org, day, day)]
    assert len(expected) > 40
    seen: list[dict[str, Any]] = []
    pages, page = 0, None
    while True:
        body = client.ok(CC, starting_at=day.isoformat(), **({"page": page} if page else {}))
        pages += 1
        seen.extend(body["data"])
        if not body["has_more"]:
            assert body["next_page"] is None and len(body["data"]) <= 20
            break
        assert len(body["data"]) == 20
        page = body["next_page"]
        assert isinstance(page, str) and page.startswith("page_") and day.isoformat() not in page
    assert pages == -(-len(expected) // 20)
    keys = [
        (
            r["actor"]["type"],
            r["actor"].get("email_address") or r["actor"]["api_key_name"],
            r["terminal_type"],
            r["customer_type"],
        )
        for r in seen
    ]
    assert len(set(keys)) == len(keys) == len(expected)
    assert {r["date"] for r in seen} == {
        f"{day.isoformat()}T00:00:00Z"
    }  # one day per call, RFC 3339 midnight


def test_claude_code_limit_bounds(client: Client, org: Organisation) -> None:
    day = busiest_day(org)
    body = client.ok(CC, starting_at=day.isoformat(), limit=1000)
    assert body["has_more"] is False and body["next_page"] is None
    assert len(body["data"]) == len(expected_claude_code(org, day, day))
    for bad in (1001, 0, -5, "ten"):
        assert_vendor_error(
            client.get(CC, starting_at=day.isoformat(), limit=bad), 400, "invalid_request_error"
        )


@pytest.mark.parametrize("starting_at", ["2026-03-10T00:00:00Z", "2026-3-10", "2026-02-30", "", "yesterday"])
def test_claude_code_starting_at_is_one_valid_day(client: Client, starting_at: str) -> None:
    assert_vendor_error(client.get(CC, starting_at=starting_at), 400, "invalid_request_error")


def test_claude_code_cursor_of_another_day_is_rejected(client: Client, org: Organisation) -> None:
    day = busiest_day(org)
    page = client.ok(CC, starting_at=day.isoformat(), limit=5)["next_page"]
    other = day - timedelta(days=1)
    assert_vendor_error(
        client.get(CC, starting_at=other.isoformat(), page=page), 400, "invalid_request_error"
    )
    assert_vendor_error(
        client.get(CC, starting_at=day.isoformat(), page="page_bm90LWEtY3Vyc29y"),
        400,
        "invalid_request_error",
    )


def test_claude_code_serves_only_data_older_than_an_hour(
    client: Client, sim: SimServer, org: Organisation
) -> None:
    app = sim_app(sim)
    # A day on which, per the organisation model, some actors worked past 23:30 UTC.
    day = max(org.dates(), key=lambda d: sum(r.end_s > 84_600 for r in app.days.book(d).records))
    late = sum(r.end_s > 84_600 for r in app.days.book(day).records)
    assert late > 0
    final = expected_claude_code(org, day, day)

    sim.clock.set(midnight(day + timedelta(days=1)) + timedelta(minutes=30))
    early = client.claude_code_day(day)
    assert len(early) == len(final) - late
    assert client.ok(CC, starting_at=(day + timedelta(days=1)).isoformat())["data"] == []

    # A walk through the pages keeps the data boundary of its first page even as newer data arrives.
    first = client.ok(CC, starting_at=day.isoformat(), limit=5)
    sim.clock.set(midnight(day + timedelta(days=1)) + timedelta(hours=2))
    rest = []
    page = first["next_page"]
    while page:
        body = client.ok(CC, starting_at=day.isoformat(), limit=5, page=page)
        rest.extend(body["data"])
        page = body["next_page"]
    assert first["data"] + rest == early

    sim.clock.set(midnight(day + timedelta(days=1)) + timedelta(hours=1))  # exactly one hour after the day
    complete = client.claude_code_day(day)
    assert len(complete) == len(final)
    assert all(r in complete for r in early)


def test_claude_code_actors_customer_types_and_the_renamed_key(client: Client, org: Organisation) -> None:
    records = {d: client.claude_code_day(d) for d in org.dates()}
    flat = [r for rs in records.values() for r in rs]
    assert {r["actor"]["type"] for r in flat} == {"user_actor", "api_actor"}
    assert {r["customer_type"] for r in flat} == {"api"}  # G-A3: subscription users are left out by default
    assert {r["subscription_type"] for r in flat} == {None}
    assert all(r["organization_id"] == org.organization_id for r in flat)
    assert len({r["terminal_type"] for r in flat}) >= 5
    tool_sets = Counter(frozenset(r["tool_actions"]) for r in flat)
    assert len(tool_sets) > 3  # G-A5: keys of tool_actions are missing for some records
    assert set().union(*tool_sets) <= {"edit_tool", "multi_edit_tool", "write_tool", "notebook_edit_tool"}
    for r in flat:
        for m in r["model_breakdown"]:
            amount = m["estimated_cost"]["amount"]
            assert type(amount) is int and amount >= 0 and m["estimated_cost"]["currency"] == "USD"
    users = {p.email for p in org.people}
    assert {r["actor"]["email_address"] for r in flat if r["actor"]["type"] == "user_actor"} <= users

    renamed = next(k for k in org.api_keys if len(k.names) > 1)
    old, new = renamed.names[0].name, renamed.names[1].name
    switch = renamed.names[1].valid_from
    used = {
        (d, r["actor"]["api_key_name"])
        for d, rs in records.items()
        for r in rs
        if r["actor"]["type"] == "api_actor"
    }
    old_days = sorted(d for d, n in used if n == old)
    new_days = sorted(d for d, n in used if n == new)
    assert old_days and new_days
    assert old_days[-1] < switch <= new_days[0]  # the name valid on each day

    assert sum("claude_code_version" in r for r in flat) > 0  # undocumented fields on a few records
    assert sum("claude_code_version" in r for r in flat) < len(flat) / 5


def test_subscription_users_and_extra_fields_are_switches(org: Organisation, client: Client) -> None:
    day = busiest_day(org)
    app = build_anthropic(org, SimClock(NOW), omit_subscription_users=False, extra_fields=False)
    with SimServer(app) as srv:
        everyone = Client(srv).claude_code_day(day)
    default = client.claude_code_day(day)
    subs = [r for r in everyone if r["customer_type"] == "subscription"]
    assert subs and {r["subscription_type"] for r in subs} == {"team"}
    assert {r["actor"]["type"] for r in subs} == {"user_actor"}
    api = [r for r in everyone if r["customer_type"] == "api"]
    strip = [{k: v for k, v in r.items() if k != "claude_code_version"} for r in default]
    assert api == strip
    assert not any("claude_code_version" in r for r in everyone)


def test_malformed_and_extra_field_faults_still_apply(
    client: Client, sim: SimServer, org: Organisation
) -> None:
    day = busiest_day(org)
    sim.arm(path=CC, malform="missing_field", field="actor.type", times=1)
    broken = client.ok(CC, starting_at=day.isoformat())
    assert "type" not in broken["data"][0]["actor"] and "type" in broken["data"][1]["actor"]
    sim.arm(path=CC, extra_fields={"x_new": 1}, times=1)
    extra = client.ok(CC, starting_at=day.isoformat())
    assert extra["x_new"] == 1 and extra["data"][0]["core_metrics"]["x_new"] == 1
    assert "x_new" not in client.ok(CC, starting_at=day.isoformat())


def _without(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, name) for k, v in value.items() if k != name}
    if isinstance(value, list):
        return [_without(v, name) for v in value]
    return value


def test_fast_text_rendering_equals_the_json_objects(
    client: Client, sim: SimServer, org: Organisation
) -> None:
    """The Claude Code report is rendered straight to text; a fault forces the object path: same JSON."""
    for day in (busiest_day(org), org.start, END):
        fast = client.ok(CC, starting_at=day.isoformat(), limit=1000)
        sim.arm(path=CC, extra_fields={"zz_probe": 0}, times=1)
        slow = client.ok(CC, starting_at=day.isoformat(), limit=1000)
        assert slow["data"][0]["zz_probe"] == 0
        assert _without(slow, "zz_probe") == fast


def test_options_can_be_changed_by_another_process(org: Organisation) -> None:
    day = busiest_day(org)
    with SimServer(build_anthropic(org, SimClock(NOW))) as srv:
        config = requests.get(srv.url + "/_sandbox/anthropic/config", timeout=T).json()
        assert config["admin_key"] == admin_key_for(org.seed) and config["omit_subscription_users"] is True
        before = Client(srv).claude_code_day(day)
        changed = requests.post(
            srv.url + "/_sandbox/anthropic/config", json={"omit_subscription_users": False}, timeout=T
        )
        assert changed.status_code == 200 and changed.json()["omit_subscription_users"] is False
        after = Client(srv).claude_code_day(day)
        assert {r["customer_type"] for r in before} == {"api"}
        assert {r["customer_type"] for r in after} == {"api", "subscription"}
        bad = requests.post(srv.url + "/_sandbox/anthropic/config", json={"no_such_option": 1}, timeout=T)
        assert bad.status_code == 400


def test_a_final_day_is_served_from_its_stored_text_byte_for_byte(org: Organisation) -> None:
    """The records' text is kept per book once rendered: same bytes as rendering them, any paging."""
    app = build_anthropic(org, SimClock(NOW))
    headers = {"x-api-key": app.admin_key, "anthropic-version": VERSION}
    day = busiest_day(org)

    def serve(**params: Any) -> bytes:
        query = {k: [str(v)] for k, v in params.items()}
        resp = app.dispatch(Request("GET", CC, query, headers))
        assert resp.status == 200
        return resp.render()

    first_page = json.loads(serve(starting_at=day.isoformat(), limit=7))  # stores the first 7 texts only
    book = app.days.book(day)
    (texts,) = book.texts.values()
    assert texts[:7] == [json.dumps(r, separators=(",", ":")) for r in first_page["data"]]
    assert set(texts[7:]) == {None}
    date_q, org_q = json.dumps(stamp(day)), json.dumps(org.organization_id)
    rendered = ",".join(cc_record_text(r, date_q, org_q, True) for r in book.records)
    expected = f'{{"data":[{rendered}],"has_more":false,"next_page":null}}'.encode()
    assert serve(starting_at=day.isoformat(), limit=1000) == expected  # the rest is rendered and stored
    assert None not in texts
    assert serve(starting_at=day.isoformat(), limit=1000) == expected  # from stored text only
    paged = serve(starting_at=day.isoformat(), limit=7, page=first_page["next_page"])
    assert json.loads(paged)["data"] == json.loads(expected)["data"][7:14]


def test_raising_cache_days_keeps_the_generated_books(org: Organisation) -> None:
    """A harness raises ``cache_days`` before warming a range up; it must not discard the books."""
    app = build_anthropic(org, SimClock(NOW))
    day = busiest_day(org)
    book = app.days.book(day)
    app.configure(cache_days=400)
    assert app.days.book(day) is book
    app.configure(omit_subscription_users=False)  # other data: new books
    assert app.days.book(day) is not book


# --------------------------------------------------------------------------- cost report


def test_cost_report_ending_at_is_exclusive(client: Client) -> None:
    start = date(2026, 3, 10)
    body = client.ok(COST, starting_at=stamp(start), ending_at=stamp(start + timedelta(days=3)))
    assert [(b["starting_at"], b["ending_at"]) for b in body["data"]] == [
        (stamp(start + timedelta(days=i)), stamp(start + timedelta(days=i + 1))) for i in range(3)
    ]
    assert body["has_more"] is False and body["next_page"] is None
    ten = client.ok(COST, starting_at=stamp(start), ending_at=stamp(start + timedelta(days=10)))
    assert len(ten["data"]) == 7 and ten["has_more"] is True  # default limit: 7 buckets


def test_cost_report_62_days_with_limit_31_returns_each_day_once(client: Client) -> None:
    start = date(2026, 1, 30)
    pages = []
    page = None
    while True:
        body = client.ok(
            COST,
            starting_at=stamp(start),
            ending_at=stamp(start + timedelta(days=62)),
            limit=31,
            **({"page": page} if page else {}),
        )
        pages.append(body)
        if not body["has_more"]:
            break
        page = body["next_page"]
    starts = [b["starting_at"] for p in pages for b in p["data"]]
    assert len(pages) == 2 and [len(p["data"]) for p in pages] == [31, 31]
    assert starts == [stamp(start + timedelta(days=i)) for i in range(62)]


@pytest.mark.parametrize(
    "params",
    [
        {"starting_at": "2026-03-10T01:00:00Z"},
        {"starting_at": "2026-03-10T00:00:00Z", "ending_at": "2026-03-12T12:00:00Z"},
        {"starting_at": "2026-03-10T00:00:00Z", "ending_at": "2026-03-10T00:00:00Z"},
        {"starting_at": "2026-03-10T00:00:00Z", "ending_at": "2026-03-09T00:00:00Z"},
        {"starting_at": "2026-03-10"},
        {"starting_at": "10 March 2026"},
        {},
        {"starting_at": "2026-03-10T00:00:00Z", "bucket_width": "1h"},
        {"starting_at": "2026-03-10T00:00:00Z", "limit": 32},
        {"starting_at": "2026-03-10T00:00:00Z", "limit": 0},
        {"starting_at": "2026-03-10T00:00:00Z", "group_by[]": "model"},
        {"starting_at": "2026-03-10T00:00:00Z", "page": "page_e30="},
    ],
)
def test_cost_report_rejects_bad_requests(client: Client, params: dict[str, Any]) -> None:
    assert_vendor_error(client.get(COST, **params), 400, "invalid_request_error")


def test_cost_report_accepts_rfc3339_offsets_aligned_to_utc_midnight(client: Client) -> None:
    body = client.ok(COST, starting_at="2026-03-10T01:00:00+01:00", ending_at="2026-03-11T00:00:00.000Z")
    assert [b["starting_at"] for b in body["data"]] == ["2026-03-10T00:00:00Z"]


def test_cost_report_grouping_nulls_amounts_and_the_default_workspace(
    client: Client, org: Organisation
) -> None:
    day = date(2026, 3, 10)
    q = {"starting_at": stamp(day), "ending_at": stamp(day + timedelta(days=1))}
    dims = (
        "workspace_id",
        "description",
        "cost_type",
        "context_window",
        "model",
        "service_tier",
        "token_type",
        "inference_geo",
    )
    total = client.ok(COST, **q)["data"][0]["results"]
    assert len(total) == 1 and all(total[0][d] is None for d in dims) and "speed" not in total[0]
    both = client.ok(COST, **q, **{"group_by[]": ["workspace_id", "description"]})["data"][0]["results"]
    by_ws = client.ok(COST, **q, **{"group_by[]": "workspace_id"})["data"][0]["results"]
    by_desc = client.ok(COST, **q, **{"group_by[]": "description"})["data"][0]["results"]
    for rows in (total, both, by_ws, by_desc):
        assert all(AMOUNT.match(r["amount"]) and r["currency"] == "USD" for r in rows)
        assert sum(Decimal(r["amount"]) for r in rows) == Decimal(total[0]["amount"])  # exact
    assert all(r[d] is None for r in by_ws for d in dims[1:])
    assert all(r["workspace_id"] is None and r["description"] for r in by_desc)
    cc_ws = next(w.id for w in org.workspaces if w.kind == "claude_code")
    ws_ids = {r["workspace_id"] for r in both}
    assert None in ws_ids and cc_ws in ws_ids and len(ws_ids) == len(org.workspaces)
    tokens = [r for r in both if r["cost_type"] == "tokens"]
    assert tokens and all(
        r["model"] and r["token_type"] and r["service_tier"] and r["context_window"] for r in tokens
    )
    other = [r for r in both if r["cost_type"] != "tokens"]
    assert other and all(r["model"] is None and r["token_type"] is None for r in other)
    beta = client.get(
        COST, headers={"anthropic-beta": "fast-mode-2026-02-01"}, **q, **{"group_by[]": "description"}
    )
    assert {r["speed"] for r in beta.json()["data"][0]["results"]} == {"standard", None}


def test_cost_types_include_a_newer_value(client: Client, org: Organisation) -> None:
    buckets = client.buckets(
        COST,
        starting_at=stamp(org.start),
        ending_at=stamp(END + timedelta(days=1)),
        limit=31,
        **{"group_by[]": "description"},
    )
    types = {r["cost_type"] for b in buckets for r in b["results"]}
    assert types == {"tokens", "web_search", "code_execution", "session_usage"}


def test_recent_cost_is_revised_upward_and_old_cost_is_not(client: Client, sim: SimServer) -> None:
    t1 = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    recent, old, today = date(2026, 3, 19), date(2026, 3, 1), date(2026, 3, 20)

    def read(d: date) -> list[dict[str, Any]]:
        q = {
            "starting_at": stamp(d),
            "ending_at": stamp(d + timedelta(days=1)),
            "group_by[]": ["workspace_id", "description"],
        }
        return client.ok(COST, **q)["data"][0]["results"]

    def total(rows: list[dict[str, Any]]) -> Decimal:
        return sum((Decimal(r["amount"]) for r in rows), Decimal(0))

    sim.clock.set(t1)
    r1, o1, d1 = read(recent), read(old), read(today)
    sim.clock.set(t1 + timedelta(hours=6))
    d2 = read(today)
    sim.clock.set(t1 + timedelta(days=1))
    r2, o2 = read(recent), read(old)
    sim.clock.set(midnight(recent) + timedelta(days=4))
    r3 = read(recent)
    assert o1 == o2  # older than the revision window: final, byte for byte
    assert total(r2) > total(r1)  # revised upward between reads
    amounts1 = {(r["workspace_id"], r["description"]): Decimal(r["amount"]) for r in r1}
    assert all(Decimal(r["amount"]) >= amounts1[(r["workspace_id"], r["description"])] for r in r2)
    assert total(d2) > total(d1) > 0  # the running day accrues
    final = {
        (r["workspace_id"], r["description"]): r["amount_cents_raw"]
        for r in expected_costs(sim_app(sim).org, recent, recent)
    }
    assert {(r["workspace_id"], r["description"]): r["amount"] for r in r3} == final


# --------------------------------------------------------------------------- usage report


def test_messages_usage_grouped_by_key_workspace_model(client: Client, org: Organisation) -> None:
    day = date(2026, 3, 10)
    q = {"starting_at": stamp(day), "ending_at": stamp(day + timedelta(days=1))}
    rows = client.ok(MSG, **q, **{"group_by[]": ["api_key_id", "workspace_id", "model"]})["data"][0][
        "results"
    ]
    assert rows
    for r in rows:
        assert set(r["cache_creation"]) == {"ephemeral_1h_input_tokens", "ephemeral_5m_input_tokens"}
        assert set(r["server_tool_use"]) == {"web_search_requests"}
        assert r["service_tier"] is None and r["context_window"] is None and r["account_id"] is None
        assert "speed" not in r
    cc_ws = next(w.id for w in org.workspaces if w.kind == "claude_code")
    console = [r for r in rows if r["api_key_id"] is None]
    assert console and {r["workspace_id"] for r in console} == {cc_ws}  # Console logins: no key
    assert any(r["workspace_id"] is None for r in rows)  # the Default Workspace's key
    assert any(r["server_tool_use"]["web_search_requests"] > 0 for r in rows)

    # Money units, independently: the Claude Code workspace's Sonnet input tokens at $3 / MTok.
    by_model = client.ok(
        MSG,
        **q,
        **{
            "group_by[]": ["workspace_id", "model", "service_tier", "context_window"],
            "workspace_ids[]": cc_ws,
        },
    )["data"][0]["results"]
    costs = client.ok(COST, **q, **{"group_by[]": ["workspace_id", "description"]})["data"][0]["results"]
    sonnet = [r for r in by_model if r["model"].startswith("claude-sonnet-4")]
    assert sonnet
    for r in sonnet:
        line = next(
            c
            for c in costs
            if c["workspace_id"] == cc_ws
            and c["model"] == r["model"]
            and c["token_type"] == "uncached_input_tokens"
        )
        assert Decimal(line["amount"]) == r["uncached_input_tokens"] * Decimal("0.0003")  # cents per token


def test_messages_usage_hourly_buckets_add_up_and_limits_follow_width(client: Client) -> None:
    day = date(2026, 3, 10)
    daily = client.ok(
        MSG,
        starting_at=stamp(day),
        ending_at=stamp(day + timedelta(days=1)),
        **{"group_by[]": "workspace_id"},
    )["data"][0]["results"]
    hourly = client.buckets(
        MSG,
        starting_at=stamp(day),
        ending_at=stamp(day + timedelta(days=1)),
        bucket_width="1h",
        **{"group_by[]": "workspace_id"},
    )
    assert len(hourly) == 24 and hourly[1]["starting_at"] == f"{day.isoformat()}T01:00:00Z"
    sums: dict[Any, int] = defaultdict(int)
    for b in hourly:
        for r in b["results"]:
            sums[r["workspace_id"]] += r["uncached_input_tokens"]
    assert dict(sums) == {r["workspace_id"]: r["uncached_input_tokens"] for r in daily}
    week = client.ok(MSG, starting_at=stamp(day), ending_at=stamp(day + timedelta(days=10)))
    assert len(week["data"]) == 7 and week["has_more"] is True  # 1d default: 7 buckets
    for width, limit in (("1d", 32), ("1h", 169), ("1m", 1441)):
        r = client.get(MSG, starting_at=stamp(day), bucket_width=width, limit=limit)
        assert_vendor_error(r, 400, "invalid_request_error")
    assert client.get(MSG, starting_at=stamp(day), bucket_width="1h", limit=168).status_code == 200
    assert_vendor_error(
        client.get(MSG, starting_at=stamp(day), **{"group_by[]": "speed"}), 400, "invalid_request_error"
    )


# --------------------------------------------------------------------------- listings


def test_lists_page_with_after_id(client: Client, org: Organisation) -> None:
    today = NOW.date()
    keys = client.listing("/v1/organizations/api_keys", limit=3)
    assert sorted(k["id"] for k in keys) == sorted(r["api_key_id"] for r in expected_api_keys(org, today))
    assert len({k["id"] for k in keys}) == len(keys)
    first = client.ok("/v1/organizations/api_keys")
    assert len(first["data"]) == min(20, len(keys))  # default limit 20
    back = client.ok("/v1/organizations/api_keys", before_id=keys[5]["id"], limit=2)
    assert [k["id"] for k in back["data"]] == [keys[3]["id"], keys[4]["id"]] and back["has_more"] is True
    archived = client.ok("/v1/organizations/api_keys", status="archived")["data"]
    assert [k["id"] for k in archived] == [k.id for k in org.api_keys if k.status_on(today) == "archived"]
    assert_vendor_error(
        client.get("/v1/organizations/api_keys", status="revoked"), 400, "invalid_request_error"
    )
    assert_vendor_error(client.get("/v1/organizations/api_keys", limit=1001), 400, "invalid_request_error")
    assert_vendor_error(
        client.get("/v1/organizations/api_keys", after_id="apikey_nope"), 400, "invalid_request_error"
    )

    users = client.listing("/v1/organizations/users", limit=7)
    assert sorted(u["id"] for u in users) == sorted(r["user_id"] for r in expected_users(org, today))
    one = users[0]["email"].upper()
    assert [u["email"] for u in client.ok("/v1/organizations/users", email=one)["data"]] == [
        users[0]["email"]
    ]

    spaces = client.listing("/v1/organizations/workspaces", limit=1)
    assert None not in {w["id"] for w in spaces} and "Default Workspace" not in {w["name"] for w in spaces}
    assert len(spaces) == len([w for w in org.workspaces if w.id is not None])
    cc_ws = next(w for w in spaces if w["name"] == "Claude Code")
    members = client.listing(f"/v1/organizations/workspaces/{cc_ws['id']}/members", limit=4)
    assert members and {m["workspace_id"] for m in members} == {cc_ws["id"]}
    assert {m["user_id"] for m in members} <= {u["id"] for u in users}
    assert_vendor_error(
        client.get("/v1/organizations/workspaces/wrkspc_nope/members"), 404, "not_found_error"
    )


# --------------------------------------------------------------------------- rate limits


def test_rate_limit_429_with_and_without_retry_after(client: Client, sim: SimServer) -> None:
    admin = requests.post(
        sim.url + "/_sandbox/rate-limits", json={"enabled": True, "per_minute": 2, "reset": True}, timeout=T
    )
    assert admin.status_code == 200
    assert [client.get("/v1/organizations/me").status_code for _ in range(2)] == [200, 200]
    limited = client.get("/v1/organizations/me")
    assert_vendor_error(limited, 429, "rate_limit_error")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    sim_app(sim).limiter.configure(retry_after=False)
    bare = client.get("/v1/organizations/me")
    assert_vendor_error(bare, 429, "rate_limit_error")
    assert "retry-after" not in bare.headers
    sim.clock.advance(61)
    assert client.get("/v1/organizations/me").status_code == 200

    sim_app(sim).limiter.configure(enabled=False)
    sim.arm(path=COST, status=429, times=1)
    injected = client.get(COST, starting_at=stamp(END))
    assert_vendor_error(injected, 429, "rate_limit_error", header=False)
    assert "retry-after" not in injected.headers
    sim.arm(path=COST, status=429, retry_after=7, times=1)
    assert client.get(COST, starting_at=stamp(END)).headers["retry-after"] == "7"
    assert client.get(COST, starting_at=stamp(END)).status_code == 200


# --------------------------------------------------------------------------- money and ground truth


def test_estimates_within_tolerance_of_the_billed_claude_code_cost(client: Client, org: Organisation) -> None:
    dev_ws = {None} | {
        w["id"] for w in client.listing("/v1/organizations/workspaces") if w["name"] == "Claude Code"
    }
    estimated: dict[date, Decimal] = {}
    for d in org.dates():
        cents = sum(
            m["estimated_cost"]["amount"]
            for r in client.claude_code_day(d)
            if r["customer_type"] == "api"
            for m in r["model_breakdown"]
        )
        estimated[d] = Decimal(cents) / 100
    billed: dict[date, Decimal] = defaultdict(Decimal)
    for b in client.buckets(
        COST,
        starting_at=stamp(org.start),
        ending_at=stamp(END + timedelta(days=1)),
        limit=31,
        **{"group_by[]": "workspace_id"},
    ):
        for r in b["results"]:
            if r["workspace_id"] in dev_ws:
                billed[date.fromisoformat(b["starting_at"][:10])] += Decimal(r["amount"]) / 100
    checked = 0
    for d in org.dates():
        if not billed[d]:
            assert estimated[d] == 0
            continue
        checked += 1
        assert estimated[d] != billed[d]  # estimates are estimates
        assert abs(estimated[d] - billed[d]) <= ESTIMATE_TOLERANCE * billed[d], d
    assert checked >= 50
    # The same holds per workspace in the ground truth (Claude Code workspace; Default Workspace).
    for ws in dev_ws:
        b, e = (
            billed_total_by_day(org, org.start, END, workspace_id=ws),
            estimated_total_by_day(org, org.start, END, workspace_id=ws),
        )
        assert all(abs(e[d] - b[d]) <= ESTIMATE_TOLERANCE * b[d] for d in b)
        assert sum(b.values()) > 0


def cc_row(rec: dict[str, Any]) -> dict[str, Any]:
    """A Claude Code record as a raw.claude_code_usage row, converted the way a parser would."""
    actor, cm = rec["actor"], rec["core_metrics"]
    breakdown = [
        {
            "model": m["model"],
            "input_tokens": m["tokens"]["input"],
            "output_tokens": m["tokens"]["output"],
            "cache_read_tokens": m["tokens"]["cache_read"],
            "cache_creation_tokens": m["tokens"]["cache_creation"],
            "estimated_cost_usd": Decimal(m["estimated_cost"]["amount"]) / 100,
            "estimated_cost_currency": m["estimated_cost"]["currency"],
            "estimated_cost_amount_raw": str(m["estimated_cost"]["amount"]),
        }
        for m in rec["model_breakdown"]
    ]
    return {
        "usage_date": date.fromisoformat(rec["date"][:10]),
        "actor_type": actor["type"],
        "actor_id": actor["email_address"].strip().lower()
        if actor["type"] == "user_actor"
        else actor["api_key_name"],
        "terminal_type": rec.get("terminal_type") or "unknown",
        "customer_type": rec["customer_type"],
        "subscription_type": rec.get("subscription_type"),
        "organization_id": rec["organization_id"],
        "num_sessions": cm["num_sessions"],
        "lines_added": cm["lines_of_code"]["added"],
        "lines_removed": cm["lines_of_code"]["removed"],
        "commits_by_claude_code": cm["commits_by_claude_code"],
        "pull_requests_by_claude_code": cm["pull_requests_by_claude_code"],
        "tool_actions": [
            {"tool": k, "accepted": v["accepted"], "rejected": v["rejected"]}
            for k, v in sorted(rec["tool_actions"].items())
        ],
        "model_breakdown": breakdown,
        "estimated_cost_usd": sum((b["estimated_cost_usd"] for b in breakdown), Decimal(0)),
    }


def pk(row: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple("" if row[n] is None else str(row[n]) for n in names)


def test_ground_truth_equals_the_api_for_final_days(client: Client, org: Organisation) -> None:
    start, end = date(2026, 3, 1), END
    cc_pk = ("usage_date", "actor_type", "actor_id", "terminal_type", "customer_type")
    api_cc = sorted(
        (cc_row(r) for d in range(31) for r in client.claude_code_day(start + timedelta(days=d))),
        key=lambda r: pk(r, cc_pk),
    )
    truth_cc = sorted(expected_claude_code(org, start, end), key=lambda r: pk(r, cc_pk))
    assert api_cc == truth_cc and len(truth_cc) > 500

    spaces = client.listing("/v1/organizations/workspaces")
    names: dict[str | None, str] = {w["id"]: w["name"] for w in spaces} | {None: "Default Workspace"}
    dev_ws = {None} | {w["id"] for w in spaces if w["name"] == "Claude Code"}
    cost_rows = []
    for b in client.buckets(
        COST,
        starting_at=stamp(start),
        ending_at=stamp(end + timedelta(days=1)),
        limit=31,
        **{"group_by[]": ["workspace_id", "description"]},
    ):
        for r in b["results"]:
            cost_rows.append(
                {
                    "cost_date": date.fromisoformat(b["starting_at"][:10]),
                    **{
                        k: r.get(k)
                        for k in (
                            "workspace_id",
                            "description",
                            "cost_type",
                            "context_window",
                            "model",
                            "service_tier",
                            "token_type",
                            "inference_geo",
                            "speed",
                            "currency",
                        )
                    },
                    "amount_usd": Decimal(r["amount"]) / 100,
                    "amount_cents_raw": r["amount"],
                    "platform": "claude_code" if r["workspace_id"] in dev_ws else "api",
                    "platform_rule": None,
                    "workspace_name": names[r["workspace_id"]],
                }
            )
    cost_pk = ("cost_date", "workspace_id", "description")
    truth_costs = expected_costs(org, start, end)
    assert sorted(cost_rows, key=lambda r: pk(r, cost_pk)) == sorted(
        truth_costs, key=lambda r: pk(r, cost_pk)
    )
    assert {r["platform"] for r in truth_costs} == {"claude_code", "api"}
    assert all(r["amount_usd"].as_tuple().exponent >= -9 for r in truth_costs)  # fits NUMERIC(38, 9)

    msg_rows = []
    for b in client.buckets(
        MSG,
        starting_at=stamp(start),
        ending_at=stamp(end + timedelta(days=1)),
        limit=31,
        **{"group_by[]": ["api_key_id", "workspace_id", "model"]},
    ):
        for r in b["results"]:
            msg_rows.append(
                {
                    "usage_date": date.fromisoformat(b["starting_at"][:10]),
                    **{
                        k: r.get(k)
                        for k in (
                            "api_key_id",
                            "workspace_id",
                            "model",
                            "service_tier",
                            "context_window",
                            "inference_geo",
                            "account_id",
                            "service_account_id",
                            "speed",
                        )
                    },
                    "uncached_input_tokens": r["uncached_input_tokens"],
                    "cache_creation_1h_input_tokens": r["cache_creation"]["ephemeral_1h_input_tokens"],
                    "cache_creation_5m_input_tokens": r["cache_creation"]["ephemeral_5m_input_tokens"],
                    "cache_read_input_tokens": r["cache_read_input_tokens"],
                    "output_tokens": r["output_tokens"],
                    "web_search_requests": r["server_tool_use"]["web_search_requests"],
                }
            )
    msg_pk = ("usage_date", "api_key_id", "workspace_id", "model")
    assert sorted(msg_rows, key=lambda r: pk(r, msg_pk)) == sorted(
        expected_messages_usage(org, start, end), key=lambda r: pk(r, msg_pk)
    )


def ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_ground_truth_of_listings_equals_the_api(client: Client, org: Organisation, sim: SimServer) -> None:
    renamed = next(k for k in org.api_keys if len(k.names) > 1)
    for snapshot in (renamed.names[1].valid_from - timedelta(days=1), NOW.date()):
        sim.clock.set(midnight(snapshot) + timedelta(hours=9))
        keys = [
            {
                "snapshot_date": snapshot,
                "api_key_id": k["id"],
                "name": k["name"],
                "status": k["status"],
                "workspace_id": k["workspace_id"],
                "created_at": ts(k["created_at"]),
                "created_by_id": k["created_by"]["id"],
                "created_by_type": k["created_by"]["type"],
                "expires_at": ts(k["expires_at"]),
                "partial_key_hint": k["partial_key_hint"],
            }
            for k in client.listing("/v1/organizations/api_keys", limit=100)
        ]
        assert sorted(keys, key=lambda r: r["api_key_id"]) == expected_api_keys(org, snapshot)
        assert renamed.names[0 if snapshot < renamed.names[1].valid_from else 1].name in {
            k["name"] for k in keys
        }
        users = [
            {
                "snapshot_date": snapshot,
                "user_id": u["id"],
                "email": u["email"].strip().lower(),
                "name": u["name"],
                "role": u["role"],
                "added_at": ts(u["added_at"]),
            }
            for u in client.listing("/v1/organizations/users", limit=100)
        ]
        assert sorted(users, key=lambda r: r["user_id"]) == expected_users(org, snapshot)
        spaces = [
            {
                "snapshot_date": snapshot,
                "workspace_id": w["id"],
                "name": w["name"],
                "created_at": ts(w["created_at"]),
                "archived_at": ts(w["archived_at"]),
                "display_color": w["display_color"],
                "tags": w["tags"],
                "data_residency": w["data_residency"],
            }
            for w in client.listing("/v1/organizations/workspaces")
        ]
        assert sorted(spaces, key=lambda r: r["workspace_id"]) == expected_workspaces(org, snapshot)


# --------------------------------------------------------------------------- speed


def test_a_full_year_is_served_day_by_day_and_in_cost_pages() -> None:
    """A full-year Claude Code + cost extraction through `App.dispatch` + `Response.render` (no sockets).

    Speed is measured by `make bench`, never asserted here.
    """
    org = Organisation.generate(seed=7, people=300, days=365, end=END)
    app = build_anthropic(org, SimClock(NOW))
    headers = {"x-api-key": app.admin_key, "anthropic-version": VERSION}

    def serve(path: str, **params: Any) -> bytes:
        query = {k: v if isinstance(v, list) else [str(v)] for k, v in params.items()}
        resp = app.dispatch(Request("GET", path, query, headers))
        assert resp.status == 200
        return resp.render()

    records = 0
    for d in org.dates():
        body = serve(CC, starting_at=d.isoformat(), limit=1000)
        assert body.endswith(b'"has_more":false,"next_page":null}')
        records += body.count(b'"actor":')
    page: str | None = None
    buckets = 0
    while True:
        extra = {"page": page} if page else {}
        doc = json.loads(
            serve(
                COST,
                starting_at=stamp(org.start),
                ending_at=stamp(END + timedelta(days=1)),
                limit=31,
                **{"group_by[]": ["workspace_id", "description"]},
                **extra,
            )
        )
        buckets += len(doc["data"])
        page = doc["next_page"]
        if not page:
            break
    assert records > 10_000 and buckets == 365
