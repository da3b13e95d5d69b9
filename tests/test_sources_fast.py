"""The parsers' typed fast paths (ai_usage.sources.cursor_fast, claude_code_fast) against their careful paths.

The contract of a fast path: on any page, the page parser yields exactly what the careful record-by-record
parser yields for the same page (the same rows with the same Python types and values, the same rejects),
whether the fast path took the page or fell back. Checked here on documented records, on real simulator
pages, and on thousands of pages where one field of one record is replaced by a hostile value.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest
import requests

from ai_usage.columns import Columns
from ai_usage.hooks.pages import ApiPage
from ai_usage.jsonbody import scan_object
from ai_usage.sources import fast
from ai_usage.sources.anthropic import parse_claude_code
from ai_usage.sources.claude_code_fast import claude_code_columns, parse_claude_code_page
from ai_usage.sources.common import Rejected
from ai_usage.sources.cursor import parse_daily_usage
from ai_usage.sources.cursor_fast import daily_usage_columns, parse_daily_usage_page
from sandbox import Organisation, SimClock, SimServer
from sandbox.vendors import anthropic as anthropic_sim
from sandbox.vendors import cursor as cursor_sim

DAY = date(2025, 9, 8)
DAY_MS = 1757289600000  # 2025-09-08T00:00:00Z

DAILY_RECORD: dict[str, Any] = {
    "userId": 12345, "day": "2025-09-08", "date": DAY_MS, "email": "Developer@Company.com", "isActive": True,
    "totalLinesAdded": 1543, "totalLinesDeleted": 892, "acceptedLinesAdded": 1102, "acceptedLinesDeleted": 645,
    "totalApplies": 87, "totalAccepts": 73, "totalRejects": 14, "totalTabsShown": 342, "totalTabsAccepted": 289,
    "composerRequests": 45, "chatRequests": 128, "agentRequests": 12, "cmdkUsages": 67,
    "subscriptionIncludedReqs": 180, "apiKeyReqs": 0, "usageBasedReqs": 5, "bugbotUsages": 3,
    "mostUsedModel": "gpt-5", "applyMostUsedExtension": ".tsx", "tabMostUsedExtension": ".ts",
    "clientVersion": "0.25.1", "teamId": 7,
}
CLAUDE_RECORD: dict[str, Any] = {
    "date": "2025-09-08T00:00:00Z",
    "actor": {"type": "user_actor", "email_address": "Dev@Company.com"},
    "organization_id": "dc9f6c26-b22c-4831-8d01-0446bada88f1",
    "customer_type": "api",
    "subscription_type": "enterprise",
    "terminal_type": "vscode",
    "core_metrics": {"num_sessions": 5, "lines_of_code": {"added": 1543, "removed": 892},
                     "commits_by_claude_code": 12, "pull_requests_by_claude_code": 2},
    "tool_actions": {"write_tool": {"accepted": 8, "rejected": 1}, "edit_tool": {"accepted": 45, "rejected": 5}},
    "model_breakdown": [
        {"model": "claude-sonnet-4-20250514",
         "tokens": {"input": 100000, "output": 35000, "cache_read": 10000, "cache_creation": 5000},
         "estimated_cost": {"currency": "USD", "amount": 1025}},
        {"model": "claude-3-5-haiku-20241022",
         "tokens": {"input": 3, "output": 4, "cache_read": 0, "cache_creation": 0},
         "estimated_cost": {"currency": "USD", "amount": 42}},
    ],
    "claude_code_version": "2.1.0",
}
API_RECORD: dict[str, Any] = {
    "date": "2025-09-08", "actor": {"type": "api_actor", "api_key_name": "ci-key"},
    "customer_type": "api", "terminal_type": "tmux", "subscription_type": None,
    "core_metrics": {"num_sessions": 1}, "tool_actions": {}, "model_breakdown": [],
}

# Values that replace one field at a time: every JSON type, and the edge values of each check.
HOSTILE: list[Any] = [
    None, "", "   ", "x", "12", 12, 0, -1, 1.5, Decimal("2.0"), Decimal("0.1"), True, False, [], {}, [1], {"a": 1},
    2**63 - 1, 2**63, 2**64, 10**30, -(2**63), "Other@Company.com", "not-an-email", " dev@company.com ",
    "2025-09-08", "2025-09-09", "2025-09-08T00:00:00Z", "2025-09-08T01:00:00+02:00", "2025-09-08T00:00:00",
    "2025/09/08", DAY_MS, DAY_MS + 86_400_000, DAY_MS + 1, 1000, "1757289600000", "USD", "usd", " USD ", "EUR",
    "user_actor", "api_actor", "unknown_actor",
]
_MISSING = object()


def page_of(doc: Any, *, day: date | None = None, n: int = 1) -> ApiPage:
    """An API page as the hook yields it: the body's text and its undecoded top-level members."""
    text = msgspec.json.encode(doc).decode("utf-8")
    return ApiPage(endpoint="test", n=n, request={}, status=200, text=text, members=scan_object(text), day=day)


def strict(value: Any) -> Any:
    """A value with its exact type spelled out, so True != 1, date != datetime, '0.10' != '0.1' compare unequal."""
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    if isinstance(value, Rejected):
        return ("Rejected", value.reason, value.ref, strict(value.record))
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    return (type(value).__name__, value)


def expanded(items: list[Any]) -> list[Any]:
    """Parser output with `Columns` batches expanded to their rows."""
    out: list[Any] = []
    for item in items:
        out.extend(item.rows() if isinstance(item, Columns) else [item])
    return out


def assert_same(page: ApiPage, page_parser: Callable[[ApiPage], Iterator[Any]],
                careful: Callable[[ApiPage], Iterator[Any]]) -> bool:
    """The page parser's output equals the careful parser's; returns whether the fast path took the page."""
    try:
        expected = list(careful(page))
    except Exception as exc:  # a payload error must be raised by both, with the same message
        with pytest.raises(type(exc)) as raised:
            list(page_parser(page))
        assert str(raised.value) == str(exc)
        return False
    got = list(page_parser(page))
    took = len(got) == 1 and isinstance(got[0], Columns)
    assert strict(expanded(got)) == strict(expected)
    return took


def careful_daily(page: ApiPage) -> Iterator[Any]:
    return parse_daily_usage(page.payload, page=page.n)


def careful_claude(page: ApiPage) -> Iterator[Any]:
    return parse_claude_code(page.payload, page=page.n, day=page.day)


def mutations(record: dict[str, Any], prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, value) for every leaf and every object of `record`: each hostile value, and the key missing."""
    for key, value in record.items():
        path = (*prefix, key)
        for hostile in [*HOSTILE, _MISSING]:
            yield path, hostile
        if isinstance(value, dict):
            yield from mutations(value, path)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    yield from mutations(item, (*path, i))


def mutated(record: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(record)
    target = out
    for step in path[:-1]:
        target = target[step]
    if value is _MISSING:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return out


# --------------------------------------------------------------------------- Cursor daily usage


def daily_doc(*records: dict[str, Any]) -> dict[str, Any]:
    return {"data": list(records), "pagination": {"page": 1, "pageSize": 2, "hasNextPage": False}}


def other_user(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "userId": 777, "email": "second@company.com", "mostUsedModel": None, "isActive": False}


def test_daily_usage_fast_path_takes_a_clean_page_and_builds_the_careful_rows() -> None:
    page = page_of(daily_doc(DAILY_RECORD, other_user(DAILY_RECORD)))
    batch = daily_usage_columns(page)
    assert batch.n == 2
    assert batch.data["usage_date"] == [DAY, DAY]
    assert batch.data["email"].to_pylist() == ["developer@company.com", "second@company.com"]
    assert batch.data["user_id"].to_pylist() == ["12345", "777"]
    assert str(batch.data["total_lines_added"].type) == "int64"
    assert assert_same(page, parse_daily_usage_page, careful_daily)


@pytest.mark.parametrize("doc", [
    daily_doc(),  # an empty page
    daily_doc({k: v for k, v in DAILY_RECORD.items() if k not in ("day", "userId", "isActive", "bugbotUsages")}),
    daily_doc({k: v for k, v in DAILY_RECORD.items() if k != "date"}),
    daily_doc(DAILY_RECORD, DAILY_RECORD),  # the same user and day twice: the careful path rejects the second
    daily_doc(DAILY_RECORD, {**DAILY_RECORD, "email": "developer@COMPANY.com "}),  # the same after normalising
    {"data": "not a list"}, {"rows": []}, [DAILY_RECORD],
])
def test_daily_usage_documented_shapes_and_bad_payloads(doc: Any) -> None:
    assert_same(page_of(doc), parse_daily_usage_page, careful_daily)


def test_daily_usage_every_field_replaced_by_hostile_values() -> None:
    took = fell_back = 0
    second = other_user(DAILY_RECORD)
    for path, value in mutations(DAILY_RECORD):
        if assert_same(page_of(daily_doc(second, mutated(DAILY_RECORD, path, value))), parse_daily_usage_page,
                       careful_daily):
            took += 1
        else:
            fell_back += 1
    # Both paths are exercised: harmless values (another valid e-mail, null counters) stay on the fast path.
    assert took > 100 and fell_back > 500, (took, fell_back)


# --------------------------------------------------------------------------- Claude Code report


def claude_doc(*records: dict[str, Any]) -> dict[str, Any]:
    return {"data": list(records), "has_more": False, "next_page": None}


def test_claude_code_fast_path_takes_a_clean_page_and_builds_the_careful_rows() -> None:
    page = page_of(claude_doc(CLAUDE_RECORD, API_RECORD), day=DAY)
    batch = claude_code_columns(page)
    assert batch.n == 2
    assert batch.data["actor_id"].to_pylist() == ["dev@company.com", "ci-key"]
    assert batch.data["estimated_cost_usd"] == [Decimal("10.67"), None]  # 1025 + 42 cents; none for the key
    tools = batch.data["tool_actions"]
    assert tools.offsets == [0, 2, 2] and tools.fields["tool"].to_pylist() == ["edit_tool", "write_tool"]  # by name
    assert batch.data["model_breakdown"].fields["estimated_cost_amount_raw"].to_pylist() == ["1025", "42"]
    assert assert_same(page, parse_claude_code_page, careful_claude)


@pytest.mark.parametrize("doc", [
    claude_doc(),
    claude_doc(CLAUDE_RECORD, CLAUDE_RECORD),  # duplicate key: the careful path rejects the second
    claude_doc({**CLAUDE_RECORD, "date": "2025-09-09"}),  # another day than the page's
    claude_doc({**CLAUDE_RECORD, "model_breakdown": [{**CLAUDE_RECORD["model_breakdown"][0],
                                                      "estimated_cost": {"currency": "USD", "amount": 42.5}}]}),
    claude_doc({**CLAUDE_RECORD, "tool_actions": {"edit_tool": None}, "core_metrics": None}),
    # Estimates only in another currency, or none at all: the row's USD estimate is NULL, not 0.
    claude_doc({**CLAUDE_RECORD, "model_breakdown": [{"model": "m", "estimated_cost": {"currency": "EUR",
                                                                                       "amount": 5}}]}),
    claude_doc({**CLAUDE_RECORD, "model_breakdown": [{"model": "m"}, {"model": "n", "tokens": None}]}),
    {"data": {}}, {"has_more": False}, [],
])
def test_claude_code_documented_shapes_and_bad_payloads(doc: Any) -> None:
    assert_same(page_of(doc, day=DAY), parse_claude_code_page, careful_claude)


def test_claude_code_every_field_replaced_by_hostile_values() -> None:
    took = fell_back = 0
    for path, value in mutations(CLAUDE_RECORD):
        if assert_same(page_of(claude_doc(API_RECORD, mutated(CLAUDE_RECORD, path, value)), day=DAY),
                       parse_claude_code_page, careful_claude):
            took += 1
        else:
            fell_back += 1
    assert took > 100 and fell_back > 1000, (took, fell_back)


def test_claude_code_huge_amounts_and_sums_convert_exactly() -> None:
    big = 10**26 + 7  # cents, 27 digits: the sum with the second entry needs 28
    record = {**CLAUDE_RECORD, "model_breakdown": [
        {"model": "a", "estimated_cost": {"currency": "USD", "amount": big}},
        {"model": "b", "estimated_cost": {"currency": "USD", "amount": 9 * 10**26}},
        {"model": "c", "estimated_cost": {"currency": "EUR", "amount": 5}},
    ]}
    page = page_of(claude_doc(record), day=DAY)
    assert assert_same(page, parse_claude_code_page, careful_claude)
    batch = claude_code_columns(page)
    assert batch.data["estimated_cost_usd"] == [Decimal(big + 9 * 10**26) / 100]
    assert batch.data["model_breakdown"].fields["estimated_cost_usd"] == [Decimal(big) / 100, Decimal(9 * 10**24),
                                                                          None]


# --------------------------------------------------------------------------- real simulator pages


def _sim_org() -> Organisation:
    return Organisation.generate(seed=5, people=40, days=20, end=date(2026, 3, 31))


def test_real_simulator_pages_take_the_fast_path_and_match_the_careful_parser() -> None:
    org = _sim_org()
    clock = SimClock(datetime(2026, 4, 2, 12, tzinfo=UTC))
    cursor_app = cursor_sim.build(org, clock, rate_limit_per_minute=0)
    anthropic_app = anthropic_sim.build(org, clock)
    with SimServer(cursor_app) as cur, SimServer(anthropic_app) as ant, requests.Session() as http:
        start_ms = (org.start - date(1970, 1, 1)).days * 86_400_000
        body = {"startDate": start_ms, "endDate": start_ms + 19 * 86_400_000, "page": 1, "pageSize": 40}
        text = http.post(f"{cur.url}/teams/daily-usage-data", json=body, auth=(cursor_app.api_key, ""),
                         timeout=30).text
        page = ApiPage(endpoint="daily_usage", n=1, request={}, status=200, text=text, members=scan_object(text))
        assert assert_same(page, parse_daily_usage_page, careful_daily)
        assert daily_usage_columns(page).n > 100
        took = 0
        for offset in range(5):
            day = date.fromordinal(org.end.toordinal() - offset)
            text = http.get(f"{ant.url}/v1/organizations/usage_report/claude_code",
                            params={"starting_at": day.isoformat(), "limit": 1000},
                            headers={"x-api-key": anthropic_app.admin_key, "anthropic-version": "2023-06-01"},
                            timeout=30).text
            page = ApiPage(endpoint="claude_code", n=1, request={}, status=200, text=text,
                           members=scan_object(text), day=day)
            took += assert_same(page, parse_claude_code_page, careful_claude)
        assert took == 5


def test_fallback_is_per_page_and_a_payload_without_members_falls_back() -> None:
    page = ApiPage(endpoint="x", n=3, request={}, status=200, text="", payload=daily_doc(DAILY_RECORD))
    with pytest.raises(fast.Fallback):
        daily_usage_columns(page)
    rows = list(parse_daily_usage_page(page))
    assert [type(r) for r in rows] == [dict] and rows[0]["email"] == "developer@company.com"
