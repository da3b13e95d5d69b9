"""AnthropicAdminHook over real HTTP on 127.0.0.1 against a small Anthropic-like app (vendor-apis.md §1).

The app follows the documented shapes: ``x-api-key`` admin keys, ``anthropic-version``, the error envelope,
the Claude Code report (one day per call, ``page`` <- ``next_page``), daily cost / usage buckets in
``[starting_at, ending_at)`` with at most 31 per page, and listings paged with ``after_id`` / ``last_id``.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ai_usage.exceptions import VendorAPIError
from ai_usage.hooks.anthropic import AnthropicAdminHook
from sandbox import App, Request, Response, SimServer

KEY = "sk-ant-admin01-" + "Zx9" * 20
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
ACTORS = [{"type": "user_actor", "email_address": f"dev{i}@example.com"} for i in range(4)] + [
    {"type": "api_actor", "api_key_name": "ci-key"}]
COST_TEXT = '{"amount": "123.78912", "currency": "USD", "workspace_id": "wrkspc_1", "description": "x"}'


def token(value: str) -> str:
    return "page_" + base64.b64encode(value.encode()).decode()


def untoken(value: str) -> str:
    return base64.b64decode(value[5:]).decode()


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def anthropic_app(*, last_page: str = "null") -> tuple[App, list[dict[str, str]]]:
    """The app and the raw headers it received; `last_page`: "null" | "omit" | "broken" (has_more, no cursor)."""
    app = App("anthropic", error_body=lambda status, msg: {
        "type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": msg},
        "request_id": "req_011CTest"})
    seen: list[dict[str, str]] = []

    def denied(request: Request) -> Response | None:
        seen.append(dict(request.headers))
        if request.header("x-api-key") != KEY:
            return app.error(401, "invalid x-api-key")
        if not request.header("anthropic-version"):
            return app.error(400, "anthropic-version header is required")
        return None

    def ending(body: dict[str, Any], has_more: bool, offset: int, context: str) -> dict[str, Any]:
        body["has_more"] = has_more or last_page == "broken"
        if has_more:
            body["next_page"] = token(f"{context}|{offset}")
        elif last_page != "omit":
            body["next_page"] = None
        return body

    @app.get("/v1/organizations/usage_report/claude_code")
    def claude_code(request: Request) -> Any:
        if (d := denied(request)) is not None:
            return d
        day = request.arg("starting_at", "")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            return app.error(400, "starting_at must be YYYY-MM-DD")
        limit, offset = int(request.arg("limit", "20")), 0
        if request.arg("page"):
            cursor_day, _, cursor_offset = untoken(request.arg("page", "")).partition("|")
            if cursor_day != day:
                return app.error(400, "page cursor belongs to another starting_at")
            offset = int(cursor_offset)
        rows = [f'{{"date": "{day}T00:00:00Z", "actor": {json.dumps(a)}, "model_breakdown": [{{"model": "m", '
                f'"estimated_cost": {{"currency": "USD", "amount": {1025 + i}.5}}}}]}}'
                for i, a in enumerate(ACTORS)][offset: offset + limit]
        more = offset + limit < len(ACTORS)
        tail = json.dumps(ending({}, more, offset + limit, day))[1:-1]
        text = f'{{"data": [{", ".join(rows)}], {tail}}}'
        return Response(body=text.encode(), content_type="application/json")

    def buckets(request: Request, results: Any) -> Any:
        if (d := denied(request)) is not None:
            return d
        start, end = instant(request.arg("starting_at", "")), instant(request.arg("ending_at", ""))
        limit = int(request.arg("limit", "7"))
        if not 1 <= limit <= 31 or request.arg("bucket_width") != "1d":
            return app.error(400, "limit must be 1..31 for bucket_width 1d")
        days = [start + timedelta(days=i) for i in range((end - start).days)]  # buckets in [start, end)
        offset = int(untoken(request.arg("page", "")).split("|")[1]) if request.arg("page") else 0
        chunk = days[offset: offset + limit]
        body = {"data": [{"starting_at": b.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "ending_at": (b + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "results": results(request.args("group_by[]"))} for b in chunk]}
        more = offset + limit < len(days)
        return Response(body=json.dumps(ending(body, more, offset + limit, "b")).replace(
            '"AMOUNT"', COST_TEXT).encode(), content_type="application/json")

    @app.get("/v1/organizations/cost_report")
    def cost_report(request: Request) -> Any:
        return buckets(request, lambda groups: ["AMOUNT"] * max(1, len(groups)))

    @app.get("/v1/organizations/usage_report/messages")
    def messages(request: Request) -> Any:
        return buckets(request, lambda groups: [{"uncached_input_tokens": 1500, "output_tokens": 500,
                                                 **{g: f"{g}-1" for g in groups}}])

    @app.get("/v1/organizations/{kind}")
    def listing(request: Request) -> Any:
        if (d := denied(request)) is not None:
            return d
        kind = request.path_params["kind"]
        ids = [f"{kind}_{i:03d}" for i in range(5)]
        after = request.arg("after_id")
        rest = ids[ids.index(after) + 1:] if after else ids
        chunk = rest[: int(request.arg("limit", "20"))]
        return {"data": [{"id": i, "type": kind.rstrip("s")} for i in chunk], "first_id": chunk[0],
                "last_id": chunk[-1], "has_more": len(rest) > len(chunk)}

    return app, seen


def connect(monkeypatch: pytest.MonkeyPatch, srv: SimServer, key: str = KEY, **extra: Any) -> None:
    conn: dict[str, Any] = {"conn_type": "anthropic_admin", "host": srv.url, "password": key}
    if extra:
        conn["extra"] = extra
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_ADMIN", json.dumps(conn))


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SimServer, list[dict[str, str]]]]:
    app, seen = anthropic_app()
    with SimServer(app) as srv:
        connect(monkeypatch, srv)
        yield srv, seen


def hook(**options: Any) -> AnthropicAdminHook:
    options.setdefault("retry_wait_scale", 0.001)
    return AnthropicAdminHook(**options)


def query(srv: SimServer, path: str) -> list[dict[str, list[str]]]:
    return [r.query for r in srv.requests(path=path)]


# --------------------------------------------------------------------------- headers and auth


def test_headers_key_version_and_optional_beta(api: tuple[SimServer, list[dict[str, str]]],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    srv, seen = api
    list(hook().list_pages("users"))
    assert seen[-1]["x-api-key"] == KEY and seen[-1]["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in seen[-1] and "authorization" not in seen[-1]
    assert seen[-1]["user-agent"].startswith("ai-usage/")
    connect(monkeypatch, srv, anthropic_version="2024-01-01", anthropic_beta=["fast-mode-2026-02-01", "x-1"])
    list(hook().list_pages("users"))
    assert seen[-1]["anthropic-version"] == "2024-01-01"
    assert seen[-1]["anthropic-beta"] == "fast-mode-2026-02-01,x-1"


def test_a_non_admin_key_fails_at_once_and_never_shows_up(
    api: tuple[SimServer, list[dict[str, str]]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    srv, _ = api
    caplog.set_level(logging.DEBUG)
    ordinary = "sk-ant-api03-" + "Qq7" * 20
    connect(monkeypatch, srv, key=ordinary)
    h = hook()
    with pytest.raises(VendorAPIError) as err:
        list(h.claude_code_pages(date(2026, 5, 1)))
    message = str(err.value)
    assert err.value.status == 401 and len(srv.requests()) == 1 and (h.api_calls, h.retries) == (1, 0)
    assert "authentication_error: invalid x-api-key" in message and "request_id req_011CTest" in message
    assert "Admin API key of Airflow connection 'anthropic_admin'" in message and "rotate" in message
    assert ordinary not in message and ordinary not in caplog.text
    assert any("does not look like an Admin API key" in r.getMessage() for r in caplog.records)


def test_403_fails_at_once_with_the_permission_message(api: tuple[SimServer, list[dict[str, str]]]) -> None:
    srv, _ = api
    srv.arm(path="/v1/organizations/cost_report", status=403, message="not an admin")
    with pytest.raises(VendorAPIError, match=r"HTTP 403: permission_error: not an admin.*rotate") as err:
        list(hook().cost_report_pages(date(2026, 1, 1), date(2026, 1, 2)))
    assert err.value.status == 403 and len(srv.requests()) == 1


# --------------------------------------------------------------------------- Claude Code report


def test_claude_code_pages_follow_next_page_resending_starting_at(api: tuple[SimServer, list[dict[str, str]]]) -> None:
    srv, _ = api
    day = date(2025, 9, 8)
    pages = list(hook().claude_code_pages(day, limit=2))
    q = query(srv, "/v1/organizations/usage_report/claude_code")
    assert len(pages) == len(q) == 3
    assert q[0] == {"starting_at": ["2025-09-08"], "limit": ["2"]}
    assert q[1] == {"starting_at": ["2025-09-08"], "limit": ["2"], "page": [token("2025-09-08|2")]}
    assert q[2]["page"] == [token("2025-09-08|4")]
    actors = [r["actor"] for p in pages for r in p.payload["data"]]
    assert actors == ACTORS
    assert [p.day for p in pages] == [day] * 3 and [p.n for p in pages] == [1, 2, 3]
    assert pages[-1].payload["next_page"] is None and not pages[-1].payload["has_more"]
    amounts = [b["estimated_cost"]["amount"] for p in pages for r in p.payload["data"] for b in r["model_breakdown"]]
    assert amounts == [Decimal("1025.5"), Decimal("1026.5"), Decimal("1027.5"), Decimal("1028.5"), Decimal("1029.5")]


@pytest.mark.parametrize("last_page", ["omit", "broken"])
def test_claude_code_missing_next_page_ends_and_has_more_without_cursor_fails(
    monkeypatch: pytest.MonkeyPatch, last_page: str
) -> None:
    app, _ = anthropic_app(last_page=last_page)
    with SimServer(app) as srv:
        connect(monkeypatch, srv)
        pages = hook().claude_code_pages(date(2025, 9, 8), limit=2)
        if last_page == "omit":
            assert [len(p.payload["data"]) for p in pages] == [2, 2, 1]
        else:
            with pytest.raises(VendorAPIError, match="has_more is true but next_page is empty"):
                list(pages)
        assert len(srv.requests()) == 3


# --------------------------------------------------------------------------- cost and usage reports


def test_cost_report_splits_62_days_into_2_windows_with_exclusive_ending_at(
    api: tuple[SimServer, list[dict[str, str]]],
) -> None:
    srv, _ = api
    start, end = date(2026, 1, 1), date(2026, 3, 3)  # 62 days
    pages = list(hook().cost_report_pages(start, end))
    q = query(srv, "/v1/organizations/cost_report")
    assert len(pages) == len(q) == 2
    assert (q[0]["starting_at"], q[0]["ending_at"]) == (["2026-01-01T00:00:00Z"], ["2026-02-01T00:00:00Z"])
    assert (q[1]["starting_at"], q[1]["ending_at"]) == (["2026-02-01T00:00:00Z"], ["2026-03-04T00:00:00Z"])
    assert all(x["group_by[]"] == ["workspace_id", "description"] and x["bucket_width"] == ["1d"]
               and x["limit"] == ["31"] for x in q)
    days = [b["starting_at"][:10] for p in pages for b in p.payload["data"]]
    assert days == [(start + timedelta(days=i)).isoformat() for i in range(62)]
    assert [p.request["window"] for p in pages] == [["2026-01-01", "2026-01-31"], ["2026-02-01", "2026-03-03"]]
    first = pages[0].payload["data"][0]["results"]
    assert [r["amount"] for r in first] == ["123.78912", "123.78912"]  # decimal strings stay strings
    assert '"amount": "123.78912"' in pages[0].text
    assert all(p.endpoint == "cost_report" and p.day is None for p in pages)


def test_cost_report_follows_next_page_inside_each_window(api: tuple[SimServer, list[dict[str, str]]]) -> None:
    srv, _ = api
    start = date(2026, 1, 1)
    pages = list(hook().cost_report_pages(start, date(2026, 3, 3), group_by=(), limit=10))
    q = query(srv, "/v1/organizations/cost_report")
    assert len(pages) == 8 and [p.n for p in pages] == list(range(1, 9))  # 31 + 31 buckets, 10 per page
    assert [x.get("page") for x in q[:4]] == [None, [token("b|10")], [token("b|20")], [token("b|30")]]
    assert all("group_by[]" not in x and x["starting_at"] == q[0]["starting_at"] for x in q[:4])
    days = [b["starting_at"][:10] for p in pages for b in p.payload["data"]]
    assert days == [(start + timedelta(days=i)).isoformat() for i in range(62)]


def test_messages_usage_pages_group_by_key_workspace_model(api: tuple[SimServer, list[dict[str, str]]]) -> None:
    srv, _ = api
    pages = list(hook().messages_usage_pages(date(2026, 4, 1), date(2026, 4, 5)))
    (q,) = query(srv, "/v1/organizations/usage_report/messages")
    assert q["group_by[]"] == ["api_key_id", "workspace_id", "model"] and q["bucket_width"] == ["1d"]
    assert q["ending_at"] == ["2026-04-06T00:00:00Z"]
    assert len(pages[0].payload["data"]) == 5 and pages[0].endpoint == "messages_usage"
    assert pages[0].payload["data"][0]["results"][0]["model"] == "model-1"


def test_529_overloaded_is_retried(api: tuple[SimServer, list[dict[str, str]]]) -> None:
    srv, _ = api
    srv.arm(path="/v1/organizations/usage_report/messages", status=529, times=2)
    h = hook()
    pages = list(h.messages_usage_pages(date(2026, 4, 1), date(2026, 4, 1)))
    assert len(pages) == 1 and (h.api_calls, h.retries) == (3, 2)


# --------------------------------------------------------------------------- listings


def test_list_pages_follow_after_id_and_pass_filters(api: tuple[SimServer, list[dict[str, str]]]) -> None:
    srv, _ = api
    pages = list(hook().list_pages("api_keys", limit=2, status="active", workspace_id=None, include_archived=True))
    q = query(srv, "/v1/organizations/api_keys")
    assert [x.get("after_id") for x in q] == [None, ["api_keys_001"], ["api_keys_003"]]
    assert all(x["status"] == ["active"] and x["include_archived"] == ["true"] and "workspace_id" not in x
               for x in q)
    ids = [item["id"] for p in pages for item in p.payload["data"]]
    assert ids == [f"api_keys_{i:03d}" for i in range(5)] and [p.endpoint for p in pages] == ["api_keys"] * 3
    with pytest.raises(ValueError, match="kind must be one of"):
        list(hook().list_pages("invoices"))  # type: ignore[arg-type]


def test_list_pages_page_cap(api: tuple[SimServer, list[dict[str, str]]]) -> None:
    srv, _ = api
    with pytest.raises(VendorAPIError, match="more than 2 pages"):
        list(hook(max_pages=2).list_pages("users", limit=1))
    assert len(srv.requests()) == 2


# --------------------------------------------------------------------------- UI


def test_test_connection_true_and_false(api: tuple[SimServer, list[dict[str, str]]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    srv, _ = api
    ok, message = AnthropicAdminHook().test_connection()
    assert ok and srv.url in message
    assert query(srv, "/v1/organizations/users") == [{"limit": ["1"]}]
    connect(monkeypatch, srv, key="sk-ant-admin01-revoked")
    ok, message = AnthropicAdminHook().test_connection()
    assert not ok and "HTTP 401" in message and "sk-ant-admin01-revoked" not in message
