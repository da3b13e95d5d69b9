"""Unit tests of ai_usage.sources.cursor on every documented payload variant of the Cursor Admin API
(samples of vendor-apis.md §2.2–2.5 as literals) and on hostile input."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ai_usage.sources.common import PayloadError, Rejected, split
from ai_usage.sources.cursor import (
    DAILY_COUNTERS,
    event_key,
    parse_daily_usage,
    parse_members,
    parse_spend,
    parse_usage_events,
)
from tests.test_sources_common import assert_fits_contract

ROOT = Path(__file__).resolve().parents[1]
SNAP = date(2026, 7, 1)

# --------------------------------------------------------------------------- fixtures (vendor-apis.md)

MEMBERS_NEWEST = {"teamMembers": [
    {"id": "user_PDSPmvukpYgZEDXsoNirw3CFhy", "name": "Alex", "email": "developer@company.com", "role": "member",
     "isRemoved": False},
    {"id": "user_kljUvI0ASZORvSEXf9hV0ydcso", "name": "Sam", "email": "admin@company.com", "role": "owner",
     "isRemoved": False},
]}
MEMBERS_MID_2026 = {"teamMembers": [
    {"id": 12345, "name": "Alex", "email": "developer@company.com", "role": "member", "isRemoved": False},
    {"id": 12346, "name": None, "email": "Gone@Company.com", "role": "member", "isRemoved": True},
]}
MEMBERS_2025 = {"teamMembers": [{"name": "Alex", "email": "developer@company.com", "role": "member"}]}
MEMBERS_FIRST_RELEASE = [
    {"name": "Alex", "email": "developer@company.com", "role": "member"},
    {"name": "Sam", "email": "admin@company.com", "role": "free-owner"},
]

DAILY_NEWEST = {
    "data": [{
        "userId": 12345, "day": "2024-03-18", "date": 1710720000000, "email": "developer@company.com",
        "isActive": True,
        "totalLinesAdded": 1543, "totalLinesDeleted": 892, "acceptedLinesAdded": 1102, "acceptedLinesDeleted": 645,
        "totalApplies": 87, "totalAccepts": 73, "totalRejects": 14, "totalTabsShown": 342, "totalTabsAccepted": 289,
        "composerRequests": 45, "chatRequests": 128, "agentRequests": 12, "cmdkUsages": 67,
        "subscriptionIncludedReqs": 180, "apiKeyReqs": 0, "usageBasedReqs": 5, "bugbotUsages": 3,
        "mostUsedModel": "gpt-5", "applyMostUsedExtension": ".tsx", "tabMostUsedExtension": ".ts",
        "clientVersion": "0.25.1",
    }],
    "period": {"startDate": 1710720000000, "endDate": 1710892800000},
    "pagination": {"page": 1, "pageSize": 1000, "totalUsers": 150, "totalPages": 1,
                   "hasNextPage": False, "hasPreviousPage": False},
}
# 2025 shape: no userId, no day, no pagination, no isActive, no bugbotUsages; real-data oddities (§2.3).
DAILY_2025 = {
    "data": [{
        "date": 1710806400000, "email": "Developer@Company.com",
        "totalLinesAdded": 10, "totalLinesDeleted": 2, "acceptedLinesAdded": 5, "acceptedLinesDeleted": 1,
        "totalApplies": 3, "totalAccepts": 2, "totalRejects": 1, "totalTabsShown": 30, "totalTabsAccepted": 20,
        "composerRequests": 1, "chatRequests": 2, "agentRequests": 0, "cmdkUsages": 4,
        "subscriptionIncludedReqs": 7, "apiKeyReqs": 0, "usageBasedReqs": 0,
        "mostUsedModel": "default", "applyMostUsedExtension": "go", "tabMostUsedExtension": "Untitled-1",
    }],
    "period": {"startDate": 1710720000000, "endDate": 1710892800000},
}

SPEND_NEWEST = {
    "teamMemberSpend": [{
        "userId": "user_PDSPmvukpYgZEDXsoNirw3CFhy", "name": "Alex", "email": "developer@company.com",
        "role": "member", "spendCents": Decimal("2450.125487"), "overallSpendCents": Decimal("2450.125487"),
        "fastPremiumRequests": 1250, "hardLimitOverrideDollars": 100, "monthlyLimitDollars": 200,
        "effectivePerUserLimitDollars": 100,
    }],
    "subscriptionCycleStart": 1708992000000, "totalMembers": 15, "totalPages": 1,
}
SPEND_2025 = {
    "teamMemberSpend": [
        {"spendCents": 2450, "fastPremiumRequests": 1250, "name": "Alex", "email": "developer@company.com",
         "role": "member", "hardLimitOverrideDollars": 0},
        {"spendCents": 1875, "fastPremiumRequests": 980, "name": "Sam", "email": "admin@company.com",
         "role": "owner", "hardLimitOverrideDollars": 100},
    ],
    "subscriptionCycleStart": 1708992000000, "totalMembers": 2, "totalPages": 1,
}

EVENTS_NEWEST = {
    "totalUsageEventsCount": 113,
    "pagination": {"numPages": 5, "currentPage": 1, "pageSize": 25, "hasNextPage": True, "hasPreviousPage": False},
    "usageEvents": [
        {"timestamp": "1750979225854", "userEmail": "developer@company.com", "serviceAccountId": "sa_abc123",
         "serviceAccountName": "Nightly CI Agent", "cloudAgentId": "bc-1",
         "automationId": "3f1c2b6a-1d2e-4f5a-9b8c-7d6e5f4a3b2c",
         "conversationId": "8f2e4a1b-6c3d-4e5f-9a7b-2d1c8e6f4a3b", "model": "claude-4.5-sonnet",
         "kind": "Usage-based", "maxMode": True, "requestsCosts": 5, "isTokenBasedCall": True,
         "isChargeable": True, "isHeadless": False,
         "tokenUsage": {"inputTokens": 126, "outputTokens": 450, "cacheWriteTokens": 6112, "cacheReadTokens": 11964,
                        "totalCents": Decimal("20.18232"), "discountPercentOff": 10},
         "chargedCents": Decimal("21.36232"), "cursorTokenFee": Decimal("1.18")},
        {"timestamp": "1750978339901", "userEmail": "admin@company.com", "model": "claude-4-sonnet-thinking",
         "kind": "Included in Business", "maxMode": True, "requestsCosts": Decimal("1.4"), "isTokenBasedCall": False,
         "isChargeable": False, "isHeadless": False, "chargedCents": 8},
    ],
    "period": {"startDate": 1748411762359, "endDate": 1751003762359},
}
# First 2025 release: no chargedCents / isChargeable; isFreeBugbot; Faros' kindLabel spelling (G-C2).
EVENTS_2025 = {
    "usageEvents": [
        {"timestamp": "1750979225854", "model": "claude-4-sonnet", "kindLabel": "Included in Pro", "maxMode": False,
         "requestsCosts": 1, "isTokenBasedCall": True, "isFreeBugbot": False, "userEmail": "Dev@Company.com",
         "tokenUsage": {"inputTokens": 1, "outputTokens": 2, "cacheWriteTokens": 0, "cacheReadTokens": 0,
                        "totalCents": 40.16699999999999}},
    ],
    "pagination": {"numPages": 1, "currentPage": 1, "pageSize": 10, "hasNextPage": False, "hasPreviousPage": False},
}


def _one(results: Any) -> dict[str, Any]:
    rows, rejected = split(results)
    assert rejected == [] and len(rows) == 1, (rows, rejected)
    return rows[0]


def _rejected(results: Any) -> list[Rejected]:
    rows, rejected = split(results)
    assert rows == []
    return rejected


# --------------------------------------------------------------------------- members


def test_members_newest_shape() -> None:
    rows, rejected = split(parse_members(MEMBERS_NEWEST, snapshot_date=SNAP))
    assert rejected == []
    assert rows == [
        {"snapshot_date": SNAP, "member_id": "user_PDSPmvukpYgZEDXsoNirw3CFhy", "email": "developer@company.com",
         "name": "Alex", "role": "member", "is_removed": False},
        {"snapshot_date": SNAP, "member_id": "user_kljUvI0ASZORvSEXf9hV0ydcso", "email": "admin@company.com",
         "name": "Sam", "role": "owner", "is_removed": False},
    ]
    assert_fits_contract("raw.cursor_members", rows)


def test_members_numeric_ids_removed_members_and_null_names() -> None:
    rows, _ = split(parse_members(MEMBERS_MID_2026, snapshot_date=SNAP))
    assert [(r["member_id"], r["email"], r["name"], r["is_removed"]) for r in rows] == [
        ("12345", "developer@company.com", "Alex", False), ("12346", "gone@company.com", None, True)]
    assert_fits_contract("raw.cursor_members", rows)


@pytest.mark.parametrize("payload", [MEMBERS_2025, MEMBERS_FIRST_RELEASE])
def test_members_older_shapes_have_no_id_and_unknown_removal(payload: Any) -> None:
    rows, rejected = split(parse_members(payload, snapshot_date=SNAP))
    assert rejected == [] and rows
    assert all(r["member_id"] is None and r["is_removed"] is None for r in rows)
    assert rows[0]["email"] == "developer@company.com"
    assert_fits_contract("raw.cursor_members", rows)


def test_members_hostile_records_are_rejected_with_refs() -> None:
    payload = {"teamMembers": [
        {"id": 1, "email": "ok@company.com", "role": "member", "futureField": {"x": 1}},
        {"id": 2, "name": "No Mail", "role": "member"},
        {"id": 3, "email": "not-an-address", "role": "member"},
        "a string",
        {"id": True, "email": "bool@company.com"},
        {"id": 4, "email": "OK@company.com ", "role": "owner"},
        {"id": 5, "email": "x@company.com", "isRemoved": "maybe"},
    ]}
    rows, rejected = split(parse_members(payload, snapshot_date=SNAP, page=1))
    assert [r["email"] for r in rows] == ["ok@company.com"]
    assert [(r.ref, r.reason.split(":")[0]) for r in rejected] == [
        ("/teams/members page 1 item 1", "email"),
        ("/teams/members page 1 item 2", "email"),
        ("/teams/members page 1 item 3", "expected an object, got str"),
        ("/teams/members page 1 item 4", "id"),
        ("/teams/members page 1 item 5", "duplicate key (email) = ('ok@company.com',)"),
        ("/teams/members page 1 item 6", "isRemoved"),
    ]
    assert rejected[0].record == {"id": 2, "name": "No Mail", "role": "member"}
    assert "first seen at /teams/members page 1 item 0" in rejected[4].reason


@pytest.mark.parametrize("payload", [None, "oops", {"members": []}, {"teamMembers": None}, 42])
def test_members_wrong_payload_shape_raises(payload: Any) -> None:
    with pytest.raises(ValueError, match="/teams/members"):
        list(parse_members(payload, snapshot_date=SNAP))


def test_snapshot_date_must_be_a_date() -> None:
    with pytest.raises(TypeError, match="snapshot_date"):
        list(parse_members(MEMBERS_NEWEST, snapshot_date=datetime(2026, 7, 1, tzinfo=UTC)))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- daily usage


def test_daily_usage_newest_shape_maps_every_counter() -> None:
    row = _one(parse_daily_usage(DAILY_NEWEST))
    assert row["usage_date"] == date(2024, 3, 18)
    assert row["email"] == "developer@company.com"
    assert row["user_id"] == "12345"
    assert row["is_active"] is True
    source = DAILY_NEWEST["data"][0]
    assert {c: row[c] for c in DAILY_COUNTERS} == {c: source[v] for c, v in DAILY_COUNTERS.items()}
    assert (row["most_used_model"], row["apply_most_used_extension"], row["tab_most_used_extension"],
            row["client_version"]) == ("gpt-5", ".tsx", ".ts", "0.25.1")
    assert_fits_contract("raw.cursor_daily_usage", [row])


def test_daily_usage_2025_shape_uses_date_in_utc_and_keeps_absent_counters_null() -> None:
    row = _one(parse_daily_usage(DAILY_2025))
    assert row["usage_date"] == date(2024, 3, 19)           # 1710806400000 = 2024-03-19T00:00:00Z
    assert row["email"] == "developer@company.com"
    assert row["user_id"] is None
    assert row["is_active"] is None                          # omitted: unknown, not assumed
    assert row["bugbot_usages"] is None                      # absent counter: NULL, not 0
    assert row["api_key_reqs"] == 0                          # a real zero stays 0
    assert (row["apply_most_used_extension"], row["tab_most_used_extension"]) == ("go", "Untitled-1")
    assert_fits_contract("raw.cursor_daily_usage", [row])


def test_daily_usage_day_only_and_placeholder_rows() -> None:
    payload = {"data": [{"userId": 7, "day": "2024-03-18", "email": "idle@company.com", "isActive": False,
                         "totalLinesAdded": 0, "mostUsedModel": None, "clientVersion": None}]}
    row = _one(parse_daily_usage(payload))
    assert (row["usage_date"], row["is_active"], row["total_lines_added"], row["most_used_model"]) == (
        date(2024, 3, 18), False, 0, None)


def test_daily_usage_counters_digit_strings_accepted() -> None:
    payload = copy.deepcopy(DAILY_NEWEST)
    payload["data"][0]["chatRequests"] = "128"
    assert _one(parse_daily_usage(payload))["chat_requests"] == 128


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"day": "2024-03-19"}, "day/date disagree"),
        ({"day": None, "date": None}, "day/date: missing"),
        ({"day": "18/03/2024"}, "day: '18/03/2024' is not a date"),
        ({"day": None, "date": 1710720000}, "seconds sent instead of milliseconds"),
        ({"day": None, "date": "soon"}, "date: 'soon' is not a number"),
        ({"email": None}, "email: missing"),
        ({"email": "nobody"}, "is not an e-mail address"),
        ({"chatRequests": "lots"}, "chatRequests: 'lots' is not a number"),
        ({"totalTabsShown": -1}, "totalTabsShown: -1 is negative"),
        ({"totalApplies": 2.5}, "totalApplies: 2.5 is not a whole number"),
        ({"agentRequests": True}, "agentRequests"),
        ({"mostUsedModel": {"name": "gpt-5"}}, "mostUsedModel: expected a string, got dict"),
        ({"isActive": "yes"}, "isActive: expected true/false"),
        ({"userId": [1]}, "userId"),
    ],
)
def test_daily_usage_untrustworthy_rows_are_rejected(change: dict[str, Any], reason: str) -> None:
    payload = copy.deepcopy(DAILY_NEWEST)
    payload["data"][0].update(change)
    [rejected] = _rejected(parse_daily_usage(payload, page=4))
    assert reason in rejected.reason
    assert rejected.ref == "/teams/daily-usage-data page 4 item 0"
    assert rejected.record == payload["data"][0]


def test_daily_usage_unknown_fields_are_ignored_and_duplicates_rejected() -> None:
    payload = copy.deepcopy(DAILY_NEWEST)
    payload["data"][0]["brandNewCounter"] = 99
    payload["surprise"] = {"x": 1}
    payload["data"].append(copy.deepcopy(payload["data"][0]))
    rows, rejected = split(parse_daily_usage(payload))
    assert len(rows) == 1 and "brandNewCounter" not in rows[0]
    assert len(rejected) == 1 and rejected[0].reason.startswith("duplicate key (usage_date, email)")


@pytest.mark.parametrize("payload", [[], None, {"data": "x"}, {"rows": []}])
def test_daily_usage_wrong_payload_shape_raises(payload: Any) -> None:
    with pytest.raises(PayloadError, match="/teams/daily-usage-data"):
        list(parse_daily_usage(payload))


# --------------------------------------------------------------------------- spend


def test_spend_newest_shape_converts_fractional_cents_exactly() -> None:
    row = _one(parse_spend(SPEND_NEWEST, snapshot_date=SNAP))
    assert row == {
        "snapshot_date": SNAP, "email": "developer@company.com", "user_id": "user_PDSPmvukpYgZEDXsoNirw3CFhy",
        "name": "Alex", "role": "member",
        "spend_usd": Decimal("24.50125487"), "spend_cents_raw": "2450.125487",
        "overall_spend_usd": Decimal("24.50125487"), "overall_spend_cents_raw": "2450.125487",
        "fast_premium_requests": 1250,
        "hard_limit_override_usd": Decimal("100"), "monthly_limit_usd": Decimal("200"),
        "effective_per_user_limit_usd": Decimal("100"),
        "subscription_cycle_start_date": date(2024, 2, 27),
        "subscription_cycle_start_at": datetime(2024, 2, 27, tzinfo=UTC),
    }
    assert_fits_contract("raw.cursor_spend", [row])


def test_spend_2025_shape_integer_cents_total_in_spend_usd() -> None:
    rows, rejected = split(parse_spend(SPEND_2025, snapshot_date=SNAP))
    assert rejected == []
    assert [(r["email"], r["spend_usd"], r["spend_cents_raw"], r["overall_spend_usd"], r["monthly_limit_usd"],
             r["hard_limit_override_usd"], r["user_id"]) for r in rows] == [
        ("developer@company.com", Decimal("24.50"), "2450", None, None, Decimal("0"), None),
        ("admin@company.com", Decimal("18.75"), "1875", None, None, Decimal("100"), None),
    ]
    assert_fits_contract("raw.cursor_spend", rows)


def test_spend_numeric_user_id_float_cents_and_on_demand_vs_overall() -> None:
    payload = {"teamMemberSpend": [{"userId": 12345, "email": "a@company.com", "spendCents": 0.5,
                                    "overallSpendCents": "123456789012.3456789", "monthlyLimitDollars": None,
                                    "hardLimitOverrideDollars": Decimal("12.345")}]}
    row = _one(parse_spend(payload, snapshot_date=SNAP))
    assert row["user_id"] == "12345"
    assert row["spend_usd"] == Decimal("0.005") and row["spend_cents_raw"] == "0.5"
    assert row["overall_spend_usd"] == Decimal("1234567890.123456789")
    assert row["overall_spend_cents_raw"] == "123456789012.3456789"
    assert row["hard_limit_override_usd"] == Decimal("12.345")
    assert row["subscription_cycle_start_date"] is None and row["subscription_cycle_start_at"] is None
    assert_fits_contract("raw.cursor_spend", [row])


def test_spend_rounds_beyond_nine_usd_decimals_and_keeps_raw() -> None:
    payload = {"teamMemberSpend": [{"email": "a@company.com", "spendCents": Decimal("40.16699999999999")}]}
    row = _one(parse_spend(payload, snapshot_date=SNAP))
    assert row["spend_usd"] == Decimal("0.401670000")
    assert row["spend_cents_raw"] == "40.16699999999999"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"spendCents": None}, "spendCents: missing"),
        ({"spendCents": "a lot"}, "spendCents: 'a lot' is not a number"),
        ({"spendCents": -5}, "spendCents: -5 is negative"),
        ({"overallSpendCents": [1]}, "overallSpendCents"),
        ({"monthlyLimitDollars": "unlimited"}, "monthlyLimitDollars"),
        ({"fastPremiumRequests": -1}, "fastPremiumRequests: -1 is negative"),
        ({"email": "  "}, "email: missing"),
    ],
)
def test_spend_untrustworthy_rows_are_rejected(change: dict[str, Any], reason: str) -> None:
    payload = copy.deepcopy(SPEND_NEWEST)
    payload["teamMemberSpend"][0].update(change)
    [rejected] = _rejected(parse_spend(payload, snapshot_date=SNAP, page=3))
    assert reason in rejected.reason
    assert rejected.ref == "/teams/spend page 3 item 0"


def test_spend_bad_cycle_start_fails_the_page() -> None:
    payload = copy.deepcopy(SPEND_NEWEST)
    payload["subscriptionCycleStart"] = "last month"
    with pytest.raises(PayloadError, match="subscriptionCycleStart"):
        list(parse_spend(payload, snapshot_date=SNAP))
    with pytest.raises(PayloadError, match="teamMemberSpend"):
        list(parse_spend({"data": []}, snapshot_date=SNAP))


# --------------------------------------------------------------------------- usage events


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_usage_events_newest_shape() -> None:
    rows, rejected = split(parse_usage_events(EVENTS_NEWEST))
    assert rejected == []
    token, request = rows
    assert token["event_at"] == datetime(2025, 6, 26, 23, 7, 5, 854000, tzinfo=UTC)
    assert token["event_date"] == date(2025, 6, 26)
    assert token["event_key"] == _sha(
        "1750979225854|developer@company.com|claude-4.5-sonnet|8f2e4a1b-6c3d-4e5f-9a7b-2d1c8e6f4a3b|0")
    assert (token["email"], token["service_account_id"], token["service_account_name"]) == (
        "developer@company.com", "sa_abc123", "Nightly CI Agent")
    assert (token["input_tokens"], token["output_tokens"], token["cache_write_tokens"],
            token["cache_read_tokens"]) == (126, 450, 6112, 11964)
    assert token["token_cost_usd"] == Decimal("0.2018232") and token["token_cost_cents_raw"] == "20.18232"
    assert token["charged_usd"] == Decimal("0.2136232") and token["charged_cents_raw"] == "21.36232"
    assert token["cursor_token_fee_usd"] == Decimal("0.0118") and token["cursor_token_fee_cents_raw"] == "1.18"
    assert token["discount_percent_off"] == Decimal(10)
    assert token["requests_costs"] == Decimal(5)
    assert (token["kind"], token["max_mode"], token["is_chargeable"], token["is_headless"]) == (
        "Usage-based", True, True, False)
    assert token["is_free_bugbot"] is None
    # request-based event: no token fields at all (G-C9)
    assert request["input_tokens"] is None and request["token_cost_usd"] is None
    assert request["token_cost_cents_raw"] is None and request["cursor_token_fee_usd"] is None
    assert request["charged_usd"] == Decimal("0.08") and request["charged_cents_raw"] == "8"
    assert request["requests_costs"] == Decimal("1.4")
    assert request["event_key"] == _sha("1750978339901|admin@company.com|claude-4-sonnet-thinking||0")
    assert_fits_contract("raw.cursor_usage_events", rows)


def test_usage_events_2025_shape_kind_label_and_float_cents() -> None:
    row = _one(parse_usage_events(EVENTS_2025))
    assert row["kind"] == "Included in Pro"
    assert row["is_free_bugbot"] is False
    assert row["is_chargeable"] is None and row["charged_usd"] is None and row["charged_cents_raw"] is None
    assert row["email"] == "dev@company.com"
    assert row["token_cost_cents_raw"] == "40.16699999999999"
    assert row["token_cost_usd"] == Decimal("0.401670000")     # USD beyond 9 decimals: half-even (contract)
    assert_fits_contract("raw.cursor_usage_events", [row])


@pytest.mark.parametrize(
    ("kind", "label"),
    [("USAGE_EVENT_KIND_USAGE_BASED", "Usage-based"),
     ("USAGE_EVENT_KIND_INCLUDED_IN_BUSINESS", "Included in Business"),
     ("USAGE_EVENT_KIND_ERRORED_NOT_CHARGED", "Errored, Not Charged"),
     ("USAGE_EVENT_KIND_SOMETHING_NEW", "USAGE_EVENT_KIND_SOMETHING_NEW"),
     ("Free", "Free")],
)
def test_usage_events_dashboard_enum_kinds_map_to_labels(kind: str, label: str) -> None:
    payload = {"usageEvents": [{"timestamp": "1750979225854", "userEmail": "a@company.com", "kind": kind}]}
    assert _one(parse_usage_events(payload))["kind"] == label


def test_usage_events_service_account_without_email() -> None:
    payload = {"usageEvents": [{"timestamp": 1750979225854, "serviceAccountId": "sa_abc123", "model": "grok",
                                "chargedCents": 0}]}
    row = _one(parse_usage_events(payload))
    assert row["email"] is None and row["service_account_id"] == "sa_abc123"
    assert row["event_key"] == _sha("1750979225854|sa_abc123|grok||0")
    assert row["charged_usd"] == Decimal("0")


def test_usage_events_same_millisecond_duplicates_get_ordinals() -> None:
    event = {"timestamp": "1750979225854", "userEmail": "a@company.com", "model": "m", "chargedCents": 1}
    other = dict(event, model="other")
    payload = {"usageEvents": [event, dict(event, chargedCents=2), other, dict(event, userEmail="A@company.com")]}
    keys = [r["event_key"] for r in parse_usage_events(payload)]
    assert keys == [_sha("1750979225854|a@company.com|m||0"), _sha("1750979225854|a@company.com|m||1"),
                    _sha("1750979225854|a@company.com|other||0"), _sha("1750979225854|a@company.com|m||2")]
    assert keys == [r["event_key"] for r in parse_usage_events(copy.deepcopy(payload))]  # stable re-read
    assert event_key("1750979225854", "a@company.com", "m", None, 1) == keys[1]


def test_usage_events_ordinals_continue_across_pages_of_one_window() -> None:
    event = {"timestamp": "1750979225854", "userEmail": "a@company.com", "model": "m"}
    ordinals: dict[Any, int] = {}
    first = [r["event_key"] for r in parse_usage_events({"usageEvents": [event]}, page=1, ordinals=ordinals)]
    second = [r["event_key"] for r in parse_usage_events({"usageEvents": [event]}, page=2, ordinals=ordinals)]
    assert first != second
    assert second == [_sha("1750979225854|a@company.com|m||1")]
    # without a shared counter each page counts alone (documented)
    alone = [r["event_key"] for r in parse_usage_events({"usageEvents": [event]}, page=2)]
    assert alone == first


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"timestamp": None}, "timestamp: missing"),
        ({"timestamp": "yesterday"}, "timestamp: 'yesterday' is not a number"),
        ({"timestamp": 1750979225.854}, "timestamp: expected a string of epoch milliseconds"),
        ({"timestamp": "1750979225"}, "seconds sent instead of milliseconds"),
        ({"userEmail": None, "serviceAccountId": None}, "belongs to no one"),
        ({"userEmail": "broken"}, "userEmail"),
        ({"tokenUsage": [1, 2]}, "tokenUsage: expected an object, got list"),
        ({"tokenUsage": {"inputTokens": "many"}}, "tokenUsage.inputTokens: 'many' is not a number"),
        ({"tokenUsage": {"totalCents": "-1"}}, "tokenUsage.totalCents: '-1' is negative"),
        ({"chargedCents": "free"}, "chargedCents: 'free' is not a number"),
        ({"cursorTokenFee": -0.1}, "cursorTokenFee: -0.1 is negative"),
        ({"requestsCosts": "x"}, "requestsCosts"),
        ({"maxMode": 1}, "maxMode"),
        ({"kind": ["Usage-based"]}, "kind: expected a string, got list"),
    ],
)
def test_usage_events_untrustworthy_events_are_rejected(change: dict[str, Any], reason: str) -> None:
    payload = copy.deepcopy(EVENTS_NEWEST)
    payload["usageEvents"][0].update(change)
    rows, rejected = split(parse_usage_events(payload, page=2))
    assert len(rows) == 1 and len(rejected) == 1
    assert reason in rejected[0].reason
    assert rejected[0].ref == "/teams/filtered-usage-events page 2 item 0"


@pytest.mark.parametrize("payload", [None, [], {"events": []}, {"usageEvents": {"a": 1}}])
def test_usage_events_wrong_payload_shape_raises(payload: Any) -> None:
    with pytest.raises(PayloadError, match="/teams/filtered-usage-events"):
        list(parse_usage_events(payload))


def test_ref_prefix_can_be_changed() -> None:
    [rejected] = _rejected(parse_members([{"email": None}], snapshot_date=SNAP, page=2, ref_prefix="members.json"))
    assert rejected.ref == "members.json page 2 item 0"


# --------------------------------------------------------------------------- time-zone invariance

_TZ_SCRIPT = """
import json, sys, time
from tests.test_sources_cursor import tz_probe
print(json.dumps({"local_offset": time.localtime(1750979225).tm_gmtoff, "rows": tz_probe()}))
"""


def tz_probe() -> list[str]:
    """Rows of every parser for instants near UTC midnight, as text (run in a subprocess per TZ)."""
    late = {"usageEvents": [{"timestamp": "1710719999999", "userEmail": "a@company.com"},   # 23:59:59.999Z
                            {"timestamp": "1710720000000", "userEmail": "a@company.com"}]}  # 00:00Z next day
    daily = {"data": [{"date": 1710720000000, "email": "a@company.com"}]}
    spend = {"teamMemberSpend": [{"email": "a@company.com", "spendCents": 1}],
             "subscriptionCycleStart": 1708991999999}
    out = []
    for results in (parse_usage_events(late), parse_daily_usage(daily), parse_daily_usage(DAILY_NEWEST),
                    parse_spend(spend, snapshot_date=SNAP), parse_usage_events(EVENTS_NEWEST)):
        out.extend(repr(sorted(r.items())) for r in results)
    return out


def test_parsing_does_not_depend_on_the_machine_time_zone() -> None:
    results = {}
    for tz in ("UTC", "America/Los_Angeles", "Pacific/Kiritimati"):
        env = dict(os.environ, TZ=tz, PYTHONPATH=f"{ROOT / 'plugins'}{os.pathsep}{ROOT}")
        done = subprocess.run([sys.executable, "-c", _TZ_SCRIPT], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        results[tz] = json.loads(done.stdout.strip().splitlines()[-1])
    assert {r["local_offset"] for r in results.values()} == {0, -7 * 3600, 14 * 3600}
    assert results["UTC"]["rows"] == results["America/Los_Angeles"]["rows"] == results["Pacific/Kiritimati"]["rows"]
    text = "\n".join(results["Pacific/Kiritimati"]["rows"])
    assert "datetime.date(2024, 3, 17)" in text and "datetime.date(2024, 2, 26)" in text
    assert results["UTC"]["rows"] == tz_probe()
