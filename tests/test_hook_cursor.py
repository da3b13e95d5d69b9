"""CursorAdminHook over real HTTP on 127.0.0.1 against a small Cursor-like app (vendor-apis.md §2).

The app follows the documented shapes: Basic auth with the key as user name, a 30-day cap on daily usage,
paginated mode returning every member, spend paged by ``totalPages``, usage events with inclusive
millisecond bounds and ``pagination.hasNextPage``.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ai_usage.exceptions import VendorAPIError
from ai_usage.hooks.base import utc_midnight_ms
from ai_usage.hooks.cursor import CursorAdminHook, has_next_page
from sandbox import App, Request, Response, SimServer, json_response
from sandbox.app import reason

KEY = "key_" + "0123456789abcdef" * 4
DAY_MS = 86_400_000
EMAILS = [f"dev{i}@example.com" for i in range(5)]
SPEND_CENTS = ["2450.125487", "0.1", "1875", "40.16699999999999", "0"]


def cursor_app(*, endless_spend: bool = False) -> tuple[App, list[str]]:
    """The app and the list of raw Authorization headers it received."""
    app = App("cursor", error_body=lambda status, msg: {"error": reason(status), "message": msg})
    auth_seen: list[str] = []

    def denied(request: Request) -> Response | None:
        header = request.header("authorization") or ""
        auth_seen.append(header)
        if not header.startswith("Basic "):
            return app.error(401, "Invalid API key")
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return None if (user, password) == (KEY, "") else app.error(401, "Invalid API key")

    @app.get("/teams/members")
    def members(request: Request) -> Any:
        return denied(request) or {"teamMembers": [
            {"id": f"user_{i}", "name": f"Dev {i}", "email": e, "role": "member", "isRemoved": i == 4}
            for i, e in enumerate(EMAILS)]}

    @app.post("/teams/daily-usage-data")
    def daily(request: Request) -> Any:
        if (d := denied(request)) is not None:
            return d
        body = request.json
        start, end = int(body["startDate"]), int(body["endDate"])
        if end - start > 30 * DAY_MS:
            return app.error(400, "Date range cannot exceed 30 days")
        days = range(start // DAY_MS, end // DAY_MS + 1)  # endDate taken as inclusive of its day
        paginated = "page" in body and "pageSize" in body
        page, size = int(body.get("page", 1)), int(body.get("pageSize", len(EMAILS)))
        users = EMAILS[(page - 1) * size: page * size] if paginated else EMAILS[:2]  # only active users otherwise
        rows = [{"userId": EMAILS.index(e), "email": e, "date": d * DAY_MS,
                 "day": (date(1970, 1, 1) + timedelta(days=d)).isoformat(), "isActive": True, "totalLinesAdded": 1}
                for d in days for e in users]
        payload: dict[str, Any] = {"data": rows, "period": {"startDate": start, "endDate": end}}
        if paginated:
            pages = -(-len(EMAILS) // size)
            payload["pagination"] = {"page": page, "pageSize": size, "totalUsers": len(EMAILS), "totalPages": pages,
                                     "hasNextPage": page < pages, "hasPreviousPage": page > 1}
        return json_response(payload, records="data")

    @app.post("/teams/spend")
    def spend(request: Request) -> Any:
        if (d := denied(request)) is not None:
            return d
        page, size = int(request.json.get("page", 1)), int(request.json.get("pageSize", 100))
        rows = ", ".join(
            f'{{"email": "{e}", "spendCents": {c}, "overallSpendCents": {c}}}'
            for e, c in zip(EMAILS[(page - 1) * size: page * size], SPEND_CENTS[(page - 1) * size: page * size],
                            strict=True))
        total_pages = 10**6 if endless_spend else -(-len(EMAILS) // size)
        text = (f'{{"teamMemberSpend": [{rows}], "subscriptionCycleStart": 1708992000000, '
                f'"totalMembers": {len(EMAILS)}, "totalPages": {total_pages}}}')
        return Response(body=text.encode(), content_type="application/json")

    @app.post("/teams/filtered-usage-events")
    def events(request: Request) -> Any:
        if (d := denied(request)) is not None:
            return d
        body = request.json
        start, end = int(body["startDate"]), int(body["endDate"])
        page, size = int(body.get("page", 1)), int(body.get("pageSize", 100))
        # Three events a day: at the first and the last millisecond of the day, and at noon.
        stamps = [d * DAY_MS + off for d in range(start // DAY_MS - 1, end // DAY_MS + 2)
                  for off in (0, DAY_MS // 2, DAY_MS - 1)]
        matching = [t for t in stamps if start <= t <= end]  # both bounds inclusive
        pages = max(1, -(-len(matching) // size))
        chunk = matching[(page - 1) * size: page * size]
        return {
            "totalUsageEventsCount": len(matching),
            "pagination": {"numPages": pages, "currentPage": page, "pageSize": size,
                           "hasNextPage": page < pages, "hasPreviousPage": page > 1},
            "usageEvents": [{"timestamp": str(t), "userEmail": EMAILS[0], "model": "claude-4-sonnet",
                             "kind": "Usage-based", "chargedCents": 21.36232} for t in chunk],
            "period": {"startDate": start, "endDate": end},
        }

    return app, auth_seen


@pytest.fixture
def cursor(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SimServer, list[str]]]:
    app, auth_seen = cursor_app()
    with SimServer(app) as srv:
        # `login` is set on purpose: it must be ignored, the key (password) is the Basic user name.
        monkeypatch.setenv("AIRFLOW_CONN_CURSOR_ADMIN", json.dumps(
            {"conn_type": "cursor_admin", "host": srv.url, "login": "someone@example.com", "password": KEY}))
        yield srv, auth_seen


def hook(**options: Any) -> CursorAdminHook:
    options.setdefault("retry_wait_scale", 0.001)
    return CursorAdminHook(**options)


def test_basic_auth_sends_the_key_as_user_name_with_an_empty_password(cursor: tuple[SimServer, list[str]]) -> None:
    srv, auth_seen = cursor
    page = hook().members()
    assert auth_seen == ["Basic " + base64.b64encode(f"{KEY}:".encode()).decode()]
    assert page.endpoint == "members" and page.n == 1 and page.day is None
    assert page.request == {"method": "GET", "path": "/teams/members", "params": {}, "json": None}
    assert [m["email"] for m in page.payload["teamMembers"]] == EMAILS
    assert "Authorization" not in json.dumps(page.request)


def test_daily_usage_splits_95_days_into_4_contiguous_windows_and_pages_each(
    cursor: tuple[SimServer, list[str]],
) -> None:
    srv, _ = cursor
    start, end = date(2025, 1, 1), date(2025, 4, 5)  # 95 days
    pages = list(hook().daily_usage_pages(start, end, page_size=2))
    bodies = [r.json for r in srv.requests(path="/teams/daily-usage-data")]
    windows = [(b["startDate"], b["endDate"]) for b in bodies if b["page"] == 1]
    assert len(windows) == 4 and len(pages) == len(bodies) == 12  # 5 members / 2 per page = 3 pages per window
    first_days = [date(2025, 1, 1), date(2025, 1, 31), date(2025, 3, 2), date(2025, 4, 1)]
    last_days = [date(2025, 1, 30), date(2025, 3, 1), date(2025, 3, 31), date(2025, 4, 5)]
    assert windows == [(utc_midnight_ms(a), utc_midnight_ms(b)) for a, b in zip(first_days, last_days, strict=True)]
    assert [b["page"] for b in bodies] == [1, 2, 3] * 4 and {b["pageSize"] for b in bodies} == {2}
    keys = [(row["day"], row["email"]) for p in pages for row in p.payload["data"]]
    all_days = {(start + timedelta(days=i)).isoformat() for i in range(95)}
    assert len(keys) == len(set(keys)) == 95 * 5 and {d for d, _ in keys} == all_days
    assert [p.n for p in pages] == list(range(1, 13)) and all(p.day is None for p in pages)
    assert pages[0].request["window"] == ["2025-01-01", "2025-01-30"]
    assert pages[-1].request["window"] == ["2025-04-01", "2025-04-05"]
    assert pages[4].request["json"] == {"startDate": utc_midnight_ms(date(2025, 1, 31)),
                                        "endDate": utc_midnight_ms(date(2025, 3, 1)), "page": 2, "pageSize": 2}


def test_a_window_longer_than_the_vendor_cap_fails_at_once_with_its_400(cursor: tuple[SimServer, list[str]]) -> None:
    srv, _ = cursor
    with pytest.raises(VendorAPIError, match="HTTP 400: Bad Request: Date range cannot exceed 30 days") as err:
        list(hook(max_window_days=32).daily_usage_pages(date(2025, 1, 1), date(2025, 2, 1)))
    assert err.value.status == 400 and len(srv.requests()) == 1
    assert "POST /teams/daily-usage-data" in str(err.value) and "'cursor_admin'" in str(err.value)


def test_spend_pages_follow_total_pages_and_keep_fractional_cents_exact(cursor: tuple[SimServer, list[str]]) -> None:
    srv, _ = cursor
    pages = list(hook().spend_pages(page_size=2))
    assert [p.request["json"] for p in pages] == [{"page": 1, "pageSize": 2}, {"page": 2, "pageSize": 2},
                                                   {"page": 3, "pageSize": 2}]
    spend = [row["spendCents"] for p in pages for row in p.payload["teamMemberSpend"]]
    assert spend == [Decimal(c) for c in SPEND_CENTS] and isinstance(spend[0], Decimal)
    assert '"spendCents": 2450.125487' in pages[0].text
    assert [p.endpoint for p in pages] == ["spend"] * 3 and len(srv.requests()) == 3


def test_spend_page_cap_stops_a_vendor_that_never_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = cursor_app(endless_spend=True)
    with SimServer(app) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_CURSOR_ADMIN", json.dumps(
            {"conn_type": "cursor_admin", "host": srv.url, "password": KEY}))
        with pytest.raises(VendorAPIError, match="more than 3 pages"):
            list(hook(max_pages=3).spend_pages(page_size=1))
        assert len(srv.requests()) == 3


def test_usage_events_use_inclusive_day_windows_and_page_within_each_day(
    cursor: tuple[SimServer, list[str]],
) -> None:
    srv, _ = cursor
    start = date(2026, 5, 7)
    pages = list(hook().usage_events_pages(start, date(2026, 5, 9), page_size=2))
    bodies = [r.json for r in srv.requests(path="/teams/filtered-usage-events")]
    assert len(pages) == len(bodies) == 6  # 3 events a day, 2 per page
    for i, day in enumerate(start + timedelta(days=k) for k in range(3)):
        for body in bodies[2 * i: 2 * i + 2]:
            assert (body["startDate"], body["endDate"]) == (utc_midnight_ms(day), utc_midnight_ms(day) + DAY_MS - 1)
        assert [p.day for p in pages[2 * i: 2 * i + 2]] == [day, day]
    assert [b["page"] for b in bodies] == [1, 2] * 3 and [p.n for p in pages] == list(range(1, 7))
    stamps = [int(e["timestamp"]) for p in pages for e in p.payload["usageEvents"]]
    assert len(stamps) == len(set(stamps)) == 9  # the midnight events are not shared by neighbouring days
    for p in pages:
        for e in p.payload["usageEvents"]:
            assert int(e["timestamp"]) // DAY_MS == utc_midnight_ms(p.day) // DAY_MS
            assert e["chargedCents"] == Decimal("21.36232")


def test_429_without_retry_after_is_retried(cursor: tuple[SimServer, list[str]]) -> None:
    srv, _ = cursor
    srv.arm(path="/teams/daily-usage-data", status=429, times=1)
    h = hook()
    pages = list(h.daily_usage_pages(date(2026, 1, 1), date(2026, 1, 2)))
    assert len(pages) == 1 and len(pages[0].payload["data"]) == 10
    first = srv.requests()[0]
    assert first.status == 429 and "retry_after" not in first.fault_detail
    assert (h.api_calls, h.retries) == (2, 1)


def test_a_bad_key_fails_at_once_naming_the_connection_never_the_key(
    cursor: tuple[SimServer, list[str]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    srv, _ = cursor
    caplog.set_level(logging.DEBUG)
    bad = "key_" + "f" * 64
    monkeypatch.setenv("AIRFLOW_CONN_CURSOR_ADMIN", json.dumps(
        {"conn_type": "cursor_admin", "host": srv.url, "password": bad}))
    h = hook()
    with pytest.raises(VendorAPIError) as err:
        list(h.spend_pages())
    message = str(err.value)
    assert err.value.status == 401 and len(srv.requests()) == 1 and h.api_calls == 1
    assert "Unauthorized: Invalid API key" in message and "'cursor_admin'" in message and "rotate" in message
    assert bad not in message and bad not in caplog.text
    assert base64.b64encode(f"{bad}:".encode()).decode() not in caplog.text


def test_test_connection_true_and_false(cursor: tuple[SimServer, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    srv, _ = cursor
    ok, message = CursorAdminHook().test_connection()
    assert ok and "5 team member(s)" in message and srv.url in message
    monkeypatch.setenv("AIRFLOW_CONN_CURSOR_ADMIN", json.dumps(
        {"conn_type": "cursor_admin", "host": srv.url, "password": "key_wrong"}))
    ok, message = CursorAdminHook().test_connection()
    assert not ok and "HTTP 401" in message and "key_wrong" not in message


def test_has_next_page_reads_every_documented_shape() -> None:
    assert has_next_page({"pagination": {"hasNextPage": True, "totalPages": 1}}, 1)  # the flag wins
    assert not has_next_page({"pagination": {"hasNextPage": False}}, 1)
    assert has_next_page({"pagination": {"numPages": 3, "currentPage": 2}}, 2)
    assert not has_next_page({"pagination": {"numPages": 3}}, 3)
    assert has_next_page({"teamMemberSpend": [], "totalPages": 2}, 1)
    assert not has_next_page({"teamMemberSpend": [], "totalPages": 2}, 2)
    assert not has_next_page({"data": []}, 1)  # non-paginated daily usage: one page
    assert not has_next_page([{"email": "a@b.c"}], 1)  # first-release bare-array members


def test_daily_usage_pages_hold_a_bounded_number_of_rows_whatever_the_window(
    cursor: tuple[SimServer, list[str]],
) -> None:
    """Users per page shrink as windows grow, so one page's memory does not depend on the backfill length."""
    srv, _ = cursor
    list(hook().daily_usage_pages(date(2025, 1, 1), date(2025, 1, 30)))   # one 30-day window
    list(hook().daily_usage_pages(date(2025, 3, 1), date(2025, 3, 4)))    # a 4-day daily run
    sizes = [r.json["pageSize"] for r in srv.requests(path="/teams/daily-usage-data")]
    assert sizes[0] == 7500 // 30 == 250
    assert sizes[-1] == 1000  # capped by page_size: 4 days x 1,000 users is well under the row bound
