"""The Cursor Admin API simulator over real HTTP on 127.0.0.1, and its ground truth in table-contract shape."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox import Organisation, SimClock, SimServer
from sandbox.app import Request
from sandbox.vendors.cursor import CursorApp, build, default_api_key
from sandbox.vendors.cursor_events import day_events
from sandbox.vendors.cursor_model import DAILY_INT_FIELDS, DAILY_STR_FIELDS, CursorModel, cursor_model, day_ms
from sandbox.vendors.cursor_truth import (
    event_key,
    expected_daily_usage,
    expected_members,
    expected_spend,
    expected_usage_events,
    last_final_day,
)

T = 30  # seconds: bound on every client call
END = date(2026, 3, 31)
# The simulators' clock: with the 2-day lateness, Mar 29-31 are provisional, Mar 28 and before final.
NOW = datetime(2026, 3, 31, 15, 0, tzinfo=UTC)
DAY = 86_400_000
MEMBERS, DAILY, SPEND, EVENTS = (
    "/teams/members",
    "/teams/daily-usage-data",
    "/teams/spend",
    "/teams/filtered-usage-events",
)
RATE_BODY = {"error": "Too Many Requests", "message": "Rate limit exceeded. Please try again later."}


@pytest.fixture(scope="module")
def org() -> Organisation:
    return Organisation.generate(seed=11, people=30, days=45, end=END)


@contextmanager
def serve(org: Organisation, **options: Any) -> Iterator[tuple[SimServer, requests.Session]]:
    app = build(
        org, SimClock(NOW), **{"rate_limit_per_minute": 0, "events_rate_limit_per_minute": 0, **options}
    )
    with SimServer(app) as srv, requests.Session() as http:
        http.auth = (app.api_key, "")
        yield srv, http


@pytest.fixture()
def sim(org: Organisation) -> Iterator[tuple[SimServer, requests.Session]]:
    with serve(org) as pair:
        yield pair


def post(srv: SimServer, http: requests.Session, path: str, body: dict[str, Any]) -> requests.Response:
    return http.post(srv.url + path, json=body, timeout=T)


def dec(r: requests.Response) -> Any:
    """The JSON body with numbers as Decimal (what a careful client does with cents)."""
    return json.loads(r.text, parse_float=Decimal)


def snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def window(first: date, last: date) -> dict[str, int]:
    return {"startDate": day_ms(first), "endDate": day_ms(last)}


def daily_pages(
    srv: SimServer, http: requests.Session, body: dict[str, Any], size: int
) -> list[dict[str, Any]]:
    pages, page = [], 1
    while True:
        r = post(srv, http, DAILY, {**body, "page": page, "pageSize": size})
        assert r.status_code == 200, r.text
        pages.append(r.json())
        if not r.json()["pagination"]["hasNextPage"]:
            return pages
        page += 1


def daily_row(r: dict[str, Any]) -> dict[str, Any]:
    """An API daily row in raw.cursor_daily_usage shape (the unit conversion, done here in plain Python)."""
    assert r["date"] == day_ms(date.fromisoformat(r["day"]))
    out = {
        "usage_date": date.fromisoformat(r["day"]),
        "email": r["email"].strip().lower(),
        "user_id": str(r["userId"]),
        "is_active": r["isActive"],
    }
    out.update({snake(f): r[f] for f in DAILY_INT_FIELDS + DAILY_STR_FIELDS})
    return out


def by_key(rows: list[dict[str, Any]], *key: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    out = {tuple(r[k] for k in key): r for r in rows}
    assert len(out) == len(rows), "duplicate keys"
    return out


def all_events(srv: SimServer, http: requests.Session, body: dict[str, Any]) -> list[dict[str, Any]]:
    events, page = [], 1
    while True:
        r = post(srv, http, EVENTS, {**body, "page": page, "pageSize": 1000})
        assert r.status_code == 200, r.text
        doc = dec(r)
        events += doc["usageEvents"]
        if not doc["pagination"]["hasNextPage"]:
            assert len(events) == doc["totalUsageEventsCount"]
            return events
        page += 1


# --------------------------------------------------------------------------- auth and errors


def test_basic_auth_with_the_key_as_username(
    org: Organisation, sim: tuple[SimServer, requests.Session]
) -> None:
    srv, http = sim
    app = srv.app
    assert isinstance(app, CursorApp)
    assert re.fullmatch(r"key_[0-9a-f]{64}", app.api_key) and app.api_key == default_api_key(org.seed)
    assert default_api_key(org.seed + 1) != app.api_key
    assert http.get(srv.url + MEMBERS, timeout=T).status_code == 200
    unauthorized = {"error": "Unauthorized", "message": "Invalid API key"}
    for auth in (("key_" + "0" * 64, ""), None):
        r = requests.get(srv.url + MEMBERS, auth=auth, timeout=T)
        assert r.status_code == 401 and r.json() == unauthorized
    bearer = {"Authorization": f"Bearer {app.api_key}"}
    assert requests.get(srv.url + MEMBERS, headers=bearer, timeout=T).status_code == 401
    junk = {"Authorization": "Basic !!not-base64!!"}
    assert requests.post(srv.url + DAILY, headers=junk, json={}, timeout=T).status_code == 401
    token = base64.b64encode(f"{app.api_key}:".encode()).decode()
    r = requests.post(srv.url + SPEND, headers={"Authorization": f"Basic {token}"}, json={}, timeout=T)
    assert r.status_code == 200


def test_daily_range_over_30_days_is_the_apis_400(sim: tuple[SimServer, requests.Session]) -> None:
    srv, http = sim
    start = day_ms(date(2026, 3, 1))
    r = post(srv, http, DAILY, {"startDate": start, "endDate": start + 30 * DAY + 1})
    assert r.status_code == 400
    assert r.json() == {"error": "Bad Request", "message": "Date range cannot exceed 30 days"}
    # exactly 30 days: accepted, and 31 days of rows
    r = post(srv, http, DAILY, {"startDate": start, "endDate": start + 30 * DAY})
    assert r.status_code == 200
    days = {row["day"] for row in r.json()["data"]}
    assert min(days) == "2026-03-01" and max(days) == "2026-03-31" and len(days) == 31
    assert post(srv, http, DAILY, {"startDate": start, "endDate": start - 1}).status_code == 400
    assert post(srv, http, DAILY, {"endDate": start}).json()["error"] == "Bad Request"
    assert (
        post(srv, http, DAILY, {"startDate": start, "endDate": start, "page": 0, "pageSize": 5}).status_code
        == 400
    )


# --------------------------------------------------------------------------- members


def _member_rows(doc: list[dict[str, Any]], snapshot: date) -> list[dict[str, Any]]:
    rows = [
        {
            "snapshot_date": snapshot,
            "member_id": str(m["id"]),
            "email": m["email"].strip().lower(),
            "name": m["name"],
            "role": m["role"],
            "is_removed": m["isRemoved"],
        }
        for m in doc
    ]
    return sorted(rows, key=lambda r: r["email"])


def test_members_newest_shape_lists_removed_members_and_equals_truth(
    org: Organisation, sim: tuple[SimServer, requests.Session]
) -> None:
    srv, http = sim
    members = http.get(srv.url + MEMBERS, timeout=T).json()["teamMembers"]
    assert all(isinstance(m["id"], str) and m["id"].startswith("user_") for m in members)
    assert any(m["isRemoved"] for m in members) and any(not m["isRemoved"] for m in members)
    assert {m["role"] for m in members} == {"owner", "member"}
    assert all("teamId" in m and "createdAt" in m for m in members)  # undocumented keys parsers must ignore
    assert any(m["email"] != m["email"].lower() for m in members)  # some e-mails carry capitals
    assert _member_rows(members, NOW.date()) == expected_members(org, NOW.date())
    removed_now = {m["email"].lower() for m in members if m["isRemoved"]}
    at_start = {r["email"]: r["is_removed"] for r in expected_members(org, org.start)}
    assert all(at_start[e] is False for e in removed_now)  # they left inside the history


def test_members_id_style_and_first_release_shape_switch_at_runtime(
    org: Organisation, sim: tuple[SimServer, requests.Session]
) -> None:
    srv, http = sim
    r = http.post(srv.url + "/_sandbox/cursor/config", json={"member_id_style": "number"}, timeout=T)
    assert r.status_code == 200 and r.json()["member_id_style"] == "number"
    members = http.get(srv.url + MEMBERS, timeout=T).json()["teamMembers"]
    assert all(isinstance(m["id"], int) for m in members)
    assert _member_rows(members, NOW.date()) == expected_members(org, NOW.date(), member_id_style="number")
    spend = post(srv, http, SPEND, {}).json()["teamMemberSpend"]
    assert all(isinstance(s["userId"], int) for s in spend)
    http.post(srv.url + "/_sandbox/cursor/config", json={"members_shape": "array"}, timeout=T)
    listed = http.get(srv.url + MEMBERS, timeout=T).json()
    current = [r for r in expected_members(org, NOW.date()) if not r["is_removed"]]
    assert isinstance(listed, list) and all(set(m) == {"name", "email", "role"} for m in listed)
    assert sorted(m["email"].lower() for m in listed) == [r["email"] for r in current]
    bad = http.post(srv.url + "/_sandbox/cursor/config", json={"members_shape": "csv"}, timeout=T)
    assert bad.status_code == 400
    assert http.post(srv.url + "/_sandbox/cursor/config", json={"nope": 1}, timeout=T).status_code == 400


# --------------------------------------------------------------------------- daily usage


def test_end_date_includes_the_day_at_its_midnight(sim: tuple[SimServer, requests.Session]) -> None:
    srv, http = sim
    first, last = date(2026, 3, 20), date(2026, 3, 25)

    def days(body: dict[str, int]) -> set[str]:
        pages = daily_pages(srv, http, body, 1000)
        return {row["day"] for p in pages for row in p["data"]}

    assert days(window(first, last)) == {(first + timedelta(days=i)).isoformat() for i in range(6)}
    assert max(days({"startDate": day_ms(first), "endDate": day_ms(last) - 1})) == "2026-03-24"
    assert min(days({"startDate": day_ms(first) + 1, "endDate": day_ms(last)})) == "2026-03-21"


def test_unpaginated_daily_usage_has_active_rows_only(
    org: Organisation, sim: tuple[SimServer, requests.Session]
) -> None:
    srv, http = sim
    first, last = date(2026, 3, 1), date(2026, 3, 28)
    r = post(srv, http, DAILY, window(first, last))
    doc = r.json()
    assert "pagination" not in doc and doc["period"] == window(first, last)
    assert doc["data"] and all(row["isActive"] for row in doc["data"])
    active = [t for t in expected_daily_usage(org, first, last) if t["is_active"]]
    assert by_key([daily_row(x) for x in doc["data"]], "usage_date", "email") == by_key(
        active, "usage_date", "email"
    )


def test_paginated_daily_usage_pages_every_member_once_with_zero_rows(
    org: Organisation, sim: tuple[SimServer, requests.Session]
) -> None:
    srv, http = sim
    first, last = date(2026, 3, 1), date(2026, 3, 28)
    pages = daily_pages(srv, http, window(first, last), 7)
    truth = expected_daily_usage(org, first, last)
    members = {t["email"] for t in truth}
    users_per_page = [{row["email"].lower() for row in p["data"]} for p in pages]
    assert sum(len(u) for u in users_per_page) == len(members) == pages[0]["pagination"]["totalUsers"]
    assert set().union(*users_per_page) == members  # every member on exactly one page
    assert all(len(u) <= 7 for u in users_per_page) and len(pages) == pages[0]["pagination"]["totalPages"] > 1
    assert [p["pagination"]["hasPreviousPage"] for p in pages] == [False] + [True] * (len(pages) - 1)
    rows = [daily_row(x) for p in pages for x in p["data"]]
    zero = [x for x in rows if not x["is_active"]]
    assert zero and all(x[snake(f)] == 0 for x in zero for f in DAILY_INT_FIELDS)
    assert all(x["most_used_model"] is None for x in zero)
    assert by_key(rows, "usage_date", "email") == by_key(truth, "usage_date", "email")
    assert any(x["apply_most_used_extension"] == "go" for x in rows)  # a real-data oddity: no leading dot


def test_recent_days_are_revised_between_reads_and_converge_to_truth(org: Organisation) -> None:
    with serve(org) as (srv, http):
        provisional, final = date(2026, 3, 30), date(2026, 3, 27)

        def read(day: date) -> dict[str, dict[str, Any]]:
            pages = daily_pages(srv, http, window(day, day), 1000)
            return {row["email"].lower(): row for p in pages for row in p["data"]}

        def truth(day: date) -> dict[str, dict[str, Any]]:
            return {t["email"]: t for t in expected_daily_usage(org, day, day)}

        first_prov, first_final = read(provisional), read(final)
        srv.clock.advance(timedelta(hours=5))
        second_prov, second_final = read(provisional), read(final)
        assert second_final == first_final
        assert {e: daily_row(r) for e, r in first_final.items()} == truth(final)
        assert second_prov != first_prov
        tabs = [sum(rows[e]["totalTabsShown"] for e in rows) for rows in (first_prov, second_prov)]
        expected = truth(provisional)
        assert tabs[0] < tabs[1] < sum(t["total_tabs_shown"] for t in expected.values())
        for email, row in second_prov.items():  # lower than final, never higher
            assert all(row[f] <= expected[email][snake(f)] for f in DAILY_INT_FIELDS)
        served_at = srv.clock.now()
        as_served = expected_daily_usage(org, provisional, provisional, as_of=served_at)
        assert {e: daily_row(r) for e, r in second_prov.items()} == {t["email"]: t for t in as_served}
        assert last_final_day(served_at) == date(2026, 3, 28)
        srv.clock.set(datetime(2026, 4, 1, 0, 0, tzinfo=UTC))  # Mar 30 ended 24 h ago: still provisional
        assert {e: daily_row(r) for e, r in read(provisional).items()} != expected
        srv.clock.set(datetime(2026, 4, 2, 0, 0, tzinfo=UTC))  # two days after its end: final
        assert {e: daily_row(r) for e, r in read(provisional).items()} == expected


# --------------------------------------------------------------------------- spend and events


def test_spend_covers_the_current_cycle_in_pages_and_equals_truth(
    org: Organisation, sim: tuple[SimServer, requests.Session]
) -> None:
    srv, http = sim
    docs = [dec(post(srv, http, SPEND, {"page": 1, "pageSize": 5}))]
    total_pages = docs[0]["totalPages"]
    docs += [dec(post(srv, http, SPEND, {"page": p, "pageSize": 5})) for p in range(2, total_pages + 1)]
    assert total_pages == -(-docs[0]["totalMembers"] // 5) > 1 and "currentPage" not in docs[0]
    assert {d["subscriptionCycleStart"] for d in docs} == {day_ms(date(2026, 3, 1))}
    rows = []
    for d in docs:
        for s in d["teamMemberSpend"]:
            rows.append(
                {
                    "snapshot_date": NOW.date(),
                    "email": s["email"].lower(),
                    "user_id": str(s["userId"]),
                    "name": s["name"],
                    "role": s["role"],
                    "spend_usd": Decimal(s["spendCents"]) / 100,
                    "spend_cents_raw": str(s["spendCents"]),
                    "overall_spend_usd": Decimal(s["overallSpendCents"]) / 100,
                    "overall_spend_cents_raw": str(s["overallSpendCents"]),
                    "fast_premium_requests": s["fastPremiumRequests"],
                    "hard_limit_override_usd": Decimal(s["hardLimitOverrideDollars"]),
                    "monthly_limit_usd": None
                    if s["monthlyLimitDollars"] is None
                    else Decimal(s["monthlyLimitDollars"]),
                    "effective_per_user_limit_usd": Decimal(s["effectivePerUserLimitDollars"]),
                    "subscription_cycle_start_date": date(2026, 3, 1),
                    "subscription_cycle_start_at": datetime(2026, 3, 1, tzinfo=UTC),
                }
            )
    truth = expected_spend(org, NOW)
    assert by_key(rows, "email") == by_key(truth, "email")
    assert any(t["spend_usd"] > 0 for t in truth) and any(
        t["spend_usd"] == 0 < t["overall_spend_usd"] for t in truth
    )
    assert any("." in t["overall_spend_cents_raw"] for t in truth)  # fractional cents
    assert post(srv, http, SPEND, {"page": total_pages + 1, "pageSize": 5}).json()["teamMemberSpend"] == []
    by_amount = dec(post(srv, http, SPEND, {"sortBy": "amount", "sortDirection": "asc", "pageSize": 1000}))
    amounts = [s["overallSpendCents"] for s in by_amount["teamMemberSpend"]]
    assert amounts == sorted(amounts) and amounts[0] < amounts[-1]
    someone = truth[3]["email"]
    found = post(srv, http, SPEND, {"searchTerm": someone.split("@")[0].upper()}).json()["teamMemberSpend"]
    assert [s["email"].lower() for s in found] == [someone]
    assert post(srv, http, SPEND, {"sortBy": "size"}).status_code == 400


def test_charged_cents_of_the_cycle_add_up_to_the_spend_snapshot(
    sim: tuple[SimServer, requests.Session],
) -> None:
    srv, http = sim
    spend = dec(post(srv, http, SPEND, {"pageSize": 1000}))
    events = all_events(
        srv, http, {"startDate": spend["subscriptionCycleStart"], "endDate": day_ms(NOW.date()) + DAY}
    )
    assert max(int(e["timestamp"]) for e in events) <= NOW.timestamp() * 1000  # nothing from the future
    overall: dict[str, Decimal] = defaultdict(Decimal)
    on_demand: dict[str, Decimal] = defaultdict(Decimal)
    n_usage: Counter[str] = Counter()
    for e in events:
        if "userEmail" not in e:
            assert e["serviceAccountId"].startswith("sa_") and e["isHeadless"]
            continue
        if e["isChargeable"]:
            overall[e["userEmail"].lower()] += e["chargedCents"]
        else:
            assert e["chargedCents"] == 0
        if e["kind"] == "Usage-based":
            on_demand[e["userEmail"].lower()] += e["chargedCents"]
            n_usage[e["userEmail"].lower()] += 1
    members = spend["teamMemberSpend"]
    assert sum(1 for s in members if s["overallSpendCents"] > 0) > 10
    for s in members:
        email = s["email"].lower()
        assert s["overallSpendCents"] == overall.get(email, 0), email
        assert s["spendCents"] == on_demand.get(email, 0), email
        assert s["fastPremiumRequests"] == n_usage[email]


def test_events_bounds_are_inclusive_and_token_fields_follow_the_call_type(
    sim: tuple[SimServer, requests.Session],
) -> None:
    srv, http = sim
    day = date(2026, 3, 24)
    r = post(srv, http, EVENTS, {"startDate": day_ms(day), "endDate": day_ms(day) + DAY - 1, "pageSize": 50})
    doc = r.json()
    assert set(doc["pagination"]) == {"numPages", "currentPage", "pageSize", "hasNextPage", "hasPreviousPage"}
    assert doc["pagination"]["numPages"] == -(-doc["totalUsageEventsCount"] // 50) > 1
    stamps = [int(e["timestamp"]) for e in doc["usageEvents"]]
    assert all(isinstance(e["timestamp"], str) for e in doc["usageEvents"]) and stamps == sorted(
        stamps, reverse=True
    )
    t = stamps[3]
    exact = post(srv, http, EVENTS, {"startDate": t, "endDate": t}).json()
    assert exact["totalUsageEventsCount"] >= 1 and {e["timestamp"] for e in exact["usageEvents"]} == {str(t)}
    before = post(srv, http, EVENTS, {"startDate": t - 1, "endDate": t - 1}).json()
    assert all(e["timestamp"] != str(t) for e in before["usageEvents"])
    events = all_events(srv, http, {"startDate": day_ms(day), "endDate": day_ms(day) + DAY - 1})
    for e in events:
        assert ("tokenUsage" in e) == e["isTokenBasedCall"]
        if "cursorTokenFee" in e:
            assert e["isTokenBasedCall"] and e["model"] not in ("default", "composer-1", "grok-code-fast-1")
    assert {e["kind"] for e in events} >= {"Usage-based", "Included in Business", "Errored, Not Charged"}
    assert any("discountPercentOff" in e.get("tokenUsage", {}) for e in events)
    assert any(not e["isTokenBasedCall"] for e in events) and any("cursorTokenFee" not in e for e in events)
    assert post(srv, http, EVENTS, {"pageSize": 1001}).status_code == 400
    assert post(srv, http, EVENTS, {"hostingType": "MOON"}).status_code == 400
    one = events[0]["userEmail"] if "userEmail" in events[0] else events[1]["userEmail"]
    mine = all_events(
        srv, http, {"startDate": day_ms(day), "endDate": day_ms(day) + DAY - 1, "email": one.upper()}
    )
    assert mine and {e["userEmail"] for e in mine} == {one}


def test_float_noise_amounts_reach_the_wire_verbatim(
    org: Organisation, sim: tuple[SimServer, requests.Session]
) -> None:
    srv, http = sim
    truth = expected_usage_events(org, date(2026, 3, 1), date(2026, 3, 28))
    noisy = [
        t for t in truth if t["token_cost_cents_raw"] and len(t["token_cost_cents_raw"].split(".")[1]) > 9
    ]
    assert noisy, "the model should emit some float-noise totalCents such as 40.16699999999999"
    t = noisy[0]
    ms = int(t["event_at"].timestamp() * 1000)
    r = post(srv, http, EVENTS, {"startDate": ms, "endDate": ms})
    assert f'"totalCents":{t["token_cost_cents_raw"]}' in r.text
    assert t["token_cost_usd"] == (Decimal(t["token_cost_cents_raw"]) / 100).quantize(Decimal("1e-9"))


def test_daily_counters_agree_with_the_events_of_final_days(
    org: Organisation, sim: tuple[SimServer, requests.Session]
) -> None:
    srv, http = sim
    first, last = date(2026, 3, 21), date(2026, 3, 27)
    rows = {
        (x["email"].lower(), x["day"]): x
        for p in daily_pages(srv, http, window(first, last), 1000)
        for x in p["data"]
    }
    events = all_events(srv, http, {"startDate": day_ms(first), "endDate": day_ms(last) + DAY - 1})
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if "userEmail" in e:
            day = datetime.fromtimestamp(int(e["timestamp"]) / 1000, UTC).date().isoformat()
            grouped[(e["userEmail"].lower(), day)].append(e)
    assert len(grouped) > 50
    for key, row in rows.items():
        evs = grouped.get(key, [])
        kinds = Counter(e["kind"] for e in evs)
        requests_ = row["composerRequests"] + row["chatRequests"] + row["agentRequests"] + row["cmdkUsages"]
        assert len(evs) - kinds["Free"] == requests_, key
        assert kinds["Included in Business"] == row["subscriptionIncludedReqs"], key
        assert kinds["Usage-based"] == row["usageBasedReqs"], key
        assert kinds["Free"] == row["bugbotUsages"] and row["apiKeyReqs"] == 0, key
        models = Counter(e["model"] for e in evs if e["kind"] != "Free")
        if requests_:
            top, n = models.most_common(1)[0]
            assert top == row["mostUsedModel"] and 2 * n > requests_, key
        else:
            assert row["mostUsedModel"] is None
    assert set(grouped) <= set(rows)


def _event_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """API events -> raw.cursor_usage_events rows, event_key numbered in API order (plain Python)."""
    seen: Counter[tuple[str, str, str, str]] = Counter()
    out = []
    for e in events:
        who = e["userEmail"].strip().lower() if e.get("userEmail") else e["serviceAccountId"]
        key = (e["timestamp"], who, e["model"], e.get("conversationId") or "")
        ordinal = seen[key]
        seen[key] += 1
        at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(e["timestamp"]))
        tok = e.get("tokenUsage")

        def usd(v: Any) -> Decimal | None:
            return None if v is None else (Decimal(v) / 100).quantize(Decimal("1e-9"))

        out.append(
            {
                "event_date": at.date(),
                "event_at": at,
                "event_key": event_key(e["timestamp"], who, e["model"], e.get("conversationId"), ordinal),
                "email": e["userEmail"].lower() if e.get("userEmail") else None,
                "service_account_id": e.get("serviceAccountId"),
                "service_account_name": e.get("serviceAccountName"),
                "cloud_agent_id": e.get("cloudAgentId"),
                "automation_id": e.get("automationId"),
                "conversation_id": e.get("conversationId"),
                "model": e["model"],
                "kind": e["kind"],
                "max_mode": e["maxMode"],
                "requests_costs": Decimal(e["requestsCosts"]),
                "is_token_based_call": e["isTokenBasedCall"],
                "is_chargeable": e["isChargeable"],
                "is_headless": e["isHeadless"],
                "is_free_bugbot": e.get("isFreeBugbot"),
                "input_tokens": tok["inputTokens"] if tok else None,
                "output_tokens": tok["outputTokens"] if tok else None,
                "cache_write_tokens": tok["cacheWriteTokens"] if tok else None,
                "cache_read_tokens": tok["cacheReadTokens"] if tok else None,
                "token_cost_usd": usd(tok["totalCents"]) if tok else None,
                "token_cost_cents_raw": str(tok["totalCents"]) if tok else None,
                "discount_percent_off": Decimal(tok["discountPercentOff"])
                if tok and "discountPercentOff" in tok
                else None,
                "charged_usd": usd(e["chargedCents"]),
                "charged_cents_raw": str(e["chargedCents"]),
                "cursor_token_fee_usd": usd(e.get("cursorTokenFee")),
                "cursor_token_fee_cents_raw": str(e["cursorTokenFee"]) if "cursorTokenFee" in e else None,
            }
        )
    return out


def test_events_equal_truth_with_event_keys_across_same_millisecond_twins(
    org: Organisation, sim: tuple[SimServer, requests.Session]
) -> None:
    srv, http = sim
    model = cursor_model(org)
    twin_days = [
        d
        for d in (date(2026, 3, 1) + timedelta(days=i) for i in range(28))
        if any(
            v > 1
            for v in Counter((e.ts, e.who, e.model, e.conversation_id) for e in day_events(model, d)).values()
        )
    ]
    assert twin_days, "the model should contain same-millisecond twins"
    day = twin_days[0]
    events = all_events(srv, http, {"startDate": day_ms(day), "endDate": day_ms(day) + DAY - 1})
    rows = _event_rows(events)
    truth = expected_usage_events(org, day, day)
    assert len({r["event_key"] for r in truth}) == len(truth) == len(rows)
    assert any(t["service_account_id"] for t in truth) or day.weekday() >= 5
    assert by_key(rows, "event_key") == by_key(truth, "event_key")


# --------------------------------------------------------------------------- rate limits, unknown fields, faults


def test_rate_limit_20_per_minute_with_and_without_retry_after(org: Organisation) -> None:
    app = build(org, SimClock(NOW))  # the defaults: 20/min, 60/min for events, no Retry-After
    with SimServer(app) as srv, requests.Session() as http:
        http.auth = (app.api_key, "")
        codes = [http.get(srv.url + MEMBERS, timeout=T).status_code for _ in range(20)]
        assert codes == [200] * 20
        r = post(srv, http, DAILY, window(date(2026, 3, 1), date(2026, 3, 2)))  # the same per-team budget
        assert r.status_code == 429 and r.json() == RATE_BODY and "Retry-After" not in r.headers
        assert post(srv, http, EVENTS, {"pageSize": 1}).status_code == 200  # events have their own 60/min
        srv.clock.advance(61)
        assert http.get(srv.url + MEMBERS, timeout=T).status_code == 200
        for _ in range(19):
            http.get(srv.url + MEMBERS, timeout=T)
        app.configure(retry_after=True)
        r = http.get(srv.url + MEMBERS, timeout=T)
        assert r.status_code == 429 and r.json() == RATE_BODY and 1 <= int(r.headers["Retry-After"]) <= 60
        http.post(srv.url + "/_sandbox/cursor/config", json={"retry_after": 7}, timeout=T)
        r = http.get(srv.url + MEMBERS, timeout=T)
        assert r.status_code == 429 and r.headers["Retry-After"] == "7"
        http.post(srv.url + "/_sandbox/cursor/config", json={"rate_limit_per_minute": 0}, timeout=T)
        assert http.get(srv.url + MEMBERS, timeout=T).status_code == 200


def test_unknown_fields_by_default_and_through_the_fault(
    org: Organisation, sim: tuple[SimServer, requests.Session]
) -> None:
    srv, http = sim
    body = {**window(date(2026, 3, 20), date(2026, 3, 31)), "page": 1, "pageSize": 10}
    plain = post(srv, http, DAILY, body).json()
    assert all("teamId" in row for row in plain["data"])
    assert all(
        "teamId" in e and "owningUser" in e
        for e in post(srv, http, EVENTS, {"email": _someone(srv)}).json()["usageEvents"]
    )
    assert all("teamId" in s for s in post(srv, http, SPEND, {}).json()["teamMemberSpend"])
    srv.arm(path=DAILY, extra_fields={"betaFlag": {"x": 1}}, times=1)
    extra = post(srv, http, DAILY, body).json()
    assert extra["pagination"]["betaFlag"] == {"x": 1} and all(
        r["betaFlag"] == {"x": 1} for r in extra["data"]
    )
    strip = [{k: v for k, v in r.items() if k != "betaFlag"} for r in extra["data"]]
    assert strip == plain["data"]  # the lazily built payload equals the pre-rendered body
    srv.arm(path=DAILY, malform="missing_field", times=1)
    broken = post(srv, http, DAILY, body).json()
    assert "email" not in broken["data"][0] and "email" in broken["data"][1]
    http.post(srv.url + "/_sandbox/cursor/config", json={"extra_fields": False}, timeout=T)
    assert all("teamId" not in row for row in post(srv, http, DAILY, body).json()["data"])


def _someone(srv: SimServer) -> str:
    app = srv.app
    assert isinstance(app, CursorApp)
    return next(iter(app.model.day(date(2026, 3, 24)).activity.values())).person.email


CONTRACTS = Path(__file__).resolve().parents[2] / "include" / "schemas" / "raw"


def test_ground_truth_rows_have_the_contract_columns_and_numeric_scale(org: Organisation) -> None:
    truths = {
        "cursor_daily_usage": expected_daily_usage(org, date(2026, 3, 1), date(2026, 3, 3)),
        "cursor_members": expected_members(org, END),
        "cursor_spend": expected_spend(org, NOW),
        "cursor_usage_events": expected_usage_events(org, date(2026, 3, 2), date(2026, 3, 2)),
    }
    types = {
        "DATE": date,
        "TIMESTAMP": datetime,
        "STRING": str,
        "INT64": int,
        "BOOL": bool,
        "NUMERIC": Decimal,
    }
    for table, rows in truths.items():
        contract = json.loads((CONTRACTS / f"{table}.json").read_text())
        fields = [f for f in contract["schema"]["fields"] if not f["name"].startswith("_")]
        assert rows and all(list(r) == [f["name"] for f in fields] for r in rows), table
        for f in fields:
            values = [r[f["name"]] for r in rows]
            if f["mode"] == "REQUIRED":
                assert None not in values, (table, f["name"])
            for v in values:
                assert v is None or type(v) is types[f["type"]], (table, f["name"], v)
                if isinstance(v, Decimal):
                    assert -9 <= int(v.as_tuple().exponent) and v == v.quantize(Decimal("1e-9")), (table, v)
                if isinstance(v, datetime):
                    assert v.utcoffset() == timedelta(0)
        keys = contract["x-primaryKey"]
        assert len({tuple(r[k] for k in keys) for r in rows}) == len(rows), table


def test_prerendered_daily_body_equals_its_payload(org: Organisation) -> None:
    app = build(org, SimClock(NOW), rate_limit_per_minute=0)
    auth = "Basic " + base64.b64encode(f"{app.api_key}:".encode()).decode()
    body = json.dumps({**window(date(2026, 3, 20), date(2026, 3, 31)), "page": 1, "pageSize": 1000}).encode()
    resp = app.dispatch(Request("POST", DAILY, headers={"authorization": auth}, body=body))
    parsed = json.loads(resp.render())
    assert parsed == resp.json
    active = [r["isActive"] for r in parsed["data"]]
    assert any(active) and not all(active)  # final, provisional and zero rows all compared


def test_a_year_through_the_paginated_endpoint_serves_every_expected_row() -> None:
    """Server side only (no HTTP): 400 people x 365 days through the paginated endpoint in 29-day windows.

    Speed is measured by `make bench`, never asserted here.
    """
    end = date(2026, 6, 30)
    org = Organisation.generate(seed=3, people=400, days=365, end=end)
    app = build(org, SimClock(datetime(2026, 7, 5, tzinfo=UTC)), rate_limit_per_minute=0)
    auth = "Basic " + base64.b64encode(f"{app.api_key}:".encode()).decode()
    rows, day = 0, org.start
    while day <= end:
        last = min(end, day + timedelta(days=28))
        body = json.dumps({**window(day, last), "page": 1, "pageSize": 1000}).encode()
        resp = app.dispatch(Request("POST", DAILY, headers={"authorization": auth}, body=body))
        rows += resp.render().count(b'"userId"')
        day = last + timedelta(days=1)
    assert rows == len(expected_daily_usage(org, org.start, end))


def test_cache_days_is_a_runtime_option_that_keeps_the_cached_days(org: Organisation) -> None:
    """A harness raises `cache_days` before warming a range up; resizing must not drop what is cached."""
    with serve(org) as (srv, http):
        app = srv.app
        assert isinstance(app, CursorApp)
        try:
            day = END - timedelta(days=10)
            block = app.model.day(day)
            changed = http.post(srv.url + "/_sandbox/cursor/config", json={"cache_days": 400}, timeout=T)
            assert changed.status_code == 200 and changed.json()["cache_days"] == 400
            assert app.model.day(day) is block
            bad = http.post(srv.url + "/_sandbox/cursor/config", json={"cache_days": 0}, timeout=T)
            assert bad.status_code == 400
        finally:
            app.configure(cache_days=CursorModel.DAY_CACHE)  # the model is shared by the module's tests
