"""Unit tests of ai_usage.sources.anthropic on every documented payload variant of the Anthropic Admin API
(samples of vendor-apis.md §1.2–1.5 as literals) and on hostile input."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ai_usage.sources.anthropic import (
    parse_api_keys,
    parse_claude_code,
    parse_cost_report,
    parse_messages_usage,
    parse_users,
    parse_workspaces,
    workspace_name_map,
)
from ai_usage.sources.common import PayloadError, Rejected, split
from ai_usage.sources.platform import PlatformRules
from tests.test_sources_common import assert_fits_contract

ROOT = Path(__file__).resolve().parents[1]
SNAP = date(2026, 7, 1)
DAY = date(2025, 9, 8)
RULES = PlatformRules(claude_code_workspace_names={"Claude Code"})

# --------------------------------------------------------------------------- fixtures (vendor-apis.md)

CLAUDE_CODE_DOC = {
    "data": [{
        "date": "2025-09-08T00:00:00Z",
        "actor": {"type": "user_actor", "email_address": "dev@company.com"},
        "organization_id": "dc9f6c26-b22c-4831-8d01-0446bada88f1",
        "customer_type": "api",
        "subscription_type": "enterprise",
        "terminal_type": "vscode",
        "core_metrics": {"num_sessions": 5, "lines_of_code": {"added": 1543, "removed": 892},
                         "commits_by_claude_code": 12, "pull_requests_by_claude_code": 2},
        "tool_actions": {
            "edit_tool": {"accepted": 45, "rejected": 5},
            "multi_edit_tool": {"accepted": 12, "rejected": 2},
            "write_tool": {"accepted": 8, "rejected": 1},
            "notebook_edit_tool": {"accepted": 3, "rejected": 0},
        },
        "model_breakdown": [{
            "model": "claude-sonnet-4-20250514",
            "tokens": {"input": 100000, "output": 35000, "cache_read": 10000, "cache_creation": 5000},
            "estimated_cost": {"currency": "USD", "amount": 1025},
        }],
    }],
    "has_more": False,
    "next_page": None,
}
# The reference's values (amount 186 on sonnet-4, 42 on 3-5-haiku, iTerm.app), an api_actor, a plain
# YYYY-MM-DD date, a partial tool_actions map (G-A5) and no next_page key (Faros fixture).
CLAUDE_CODE_VARIANTS = {
    "data": [
        {"date": "2025-09-08", "actor": {"type": "api_actor", "api_key_name": "my-key"},
         "organization_id": "dc9f6c26-b22c-4831-8d01-0446bada88f1", "customer_type": "api",
         "subscription_type": None, "terminal_type": "iTerm.app",
         "core_metrics": {"num_sessions": 1, "lines_of_code": {"added": 10, "removed": 0},
                          "commits_by_claude_code": 0, "pull_requests_by_claude_code": 0},
         "tool_actions": {"write_tool": {"accepted": 1, "rejected": 0}, "edit_tool": {"accepted": 2, "rejected": 1}},
         "model_breakdown": [
             {"model": "claude-sonnet-4-20250514", "tokens": {"input": 1, "output": 2, "cache_read": 0,
                                                              "cache_creation": 0},
              "estimated_cost": {"currency": "USD", "amount": 186}},
             {"model": "claude-3-5-haiku-20241022", "tokens": {"input": 3, "output": 4, "cache_read": 0,
                                                               "cache_creation": 0},
              "estimated_cost": {"currency": "USD", "amount": Decimal("42.5")}},
         ]},
        {"date": "2025-09-08T00:00:00Z", "actor": {"type": "user_actor", "email_address": " Sub@Company.com "},
         "customer_type": "subscription", "subscription_type": "team",
         "core_metrics": {"num_sessions": 2}},
    ],
    "has_more": False,
}
CLAUDE_CODE_EMPTY = {"data": [], "has_more": False, "next_page": None}   # G-A3

COST_DOC = {
    "data": [{
        "starting_at": "2025-08-01T00:00:00Z",
        "ending_at": "2025-08-02T00:00:00Z",
        "results": [{
            "amount": "123.78912", "currency": "USD", "workspace_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ",
            "description": "Claude Sonnet 4 Usage - Input Tokens", "cost_type": "tokens",
            "context_window": "0-200k", "model": "claude-sonnet-4-20250514", "service_tier": "standard",
            "token_type": "uncached_input_tokens", "inference_geo": "global", "speed": "standard",
        }],
    }],
    "has_more": True,
    "next_page": "2019-12-27T18:11:19.117Z",
}
# 2026-01 reference (9 fields, no inference_geo/speed), default workspace, non-token costs, new cost_type.
COST_VARIANTS = {
    "data": [
        {"starting_at": "2025-08-02T00:00:00Z", "ending_at": "2025-08-03T00:00:00Z", "results": [
            {"amount": "0.0000001", "currency": "USD", "workspace_id": None, "description": "Code Execution Usage",
             "cost_type": "code_execution", "context_window": None, "model": None, "service_tier": None,
             "token_type": None},
            {"amount": "123456789012.3456789", "currency": "USD", "workspace_id": None,
             "description": "Web Search Usage", "cost_type": "web_search", "context_window": None, "model": None,
             "service_tier": None, "token_type": None},
            {"amount": "250", "currency": "USD", "workspace_id": "wrkspc_cc", "description": "Claude Code Sessions",
             "cost_type": "session_usage", "context_window": None, "model": None, "service_tier": None,
             "token_type": None, "inference_geo": "not_available"},
        ]},
        {"starting_at": "2025-08-03T00:00:00Z", "ending_at": "2025-08-04T00:00:00Z", "results": [
            {"amount": "17", "currency": "USD", "workspace_id": None, "description": None, "cost_type": None,
             "context_window": None, "model": None, "service_tier": None, "token_type": None},
        ]},
    ],
    "has_more": False,
}

MESSAGES_DOC = {
    "data": [{
        "starting_at": "2025-08-01T00:00:00Z", "ending_at": "2025-08-02T00:00:00Z",
        "results": [{
            "uncached_input_tokens": 1500,
            "cache_creation": {"ephemeral_1h_input_tokens": 1000, "ephemeral_5m_input_tokens": 500},
            "cache_read_input_tokens": 200, "output_tokens": 500,
            "server_tool_use": {"web_search_requests": 10},
            "api_key_id": "apikey_01Rj2N8SVvo6BePZj99NhmiT", "workspace_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ",
            "model": "claude-opus-4-6", "service_tier": "standard", "context_window": "0-200k",
            "inference_geo": "global", "account_id": "user_01WCz1FkmYMm4gnmykNKUu3Q",
            "service_account_id": "svac_01Hk3R9TWxq7CfQak00OiVw4", "speed": "standard",
        }],
    }],
    "has_more": False, "next_page": None,
}

API_KEYS_DOC = {
    "data": [
        {"id": "apikey_01Rj2N8SVvo6BePZj99NhmiT", "type": "api_key", "name": "Developer Key",
         "created_at": "2024-10-30T23:58:27.427722Z",
         "created_by": {"id": "user_01WCz1FkmYMm4gnmykNKUu3Q", "type": "user"},
         "expires_at": None, "partial_key_hint": "sk-ant-api03-R2D...igAA", "status": "active",
         "workspace_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", "scope": "future-field"},
        {"id": "apikey_02", "type": "api_key", "name": "CI", "created_at": "2025-01-01T00:00:00Z",
         "created_by": {"id": "user_02", "type": "user"}, "expires_at": "2026-01-01T00:00:00+01:00",
         "partial_key_hint": "sk-ant-api03-abc...xyz", "status": "expired", "workspace_id": None},
    ],
    "first_id": "apikey_01Rj2N8SVvo6BePZj99NhmiT", "last_id": "apikey_02", "has_more": False,
}
USERS_DOC = {
    "data": [{"id": "user_01WCz1FkmYMm4gnmykNKUu3Q", "type": "user", "email": "User@EmailDomain.com",
              "name": "Jane Doe", "role": "claude_code_user", "added_at": "2024-10-30T23:58:27.427722Z"}],
    "first_id": "user_01WCz1FkmYMm4gnmykNKUu3Q", "last_id": "user_01WCz1FkmYMm4gnmykNKUu3Q", "has_more": False,
}
WORKSPACES_DOC = {
    "data": [
        {"id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", "type": "workspace", "name": "Workspace Name",
         "created_at": "2024-10-30T23:58:27.427722Z", "archived_at": None, "display_color": "#6C5BB9",
         "tags": {"env": "prod"},
         "data_residency": {"allowed_inference_geos": "unrestricted", "default_inference_geo": "global",
                            "workspace_geo": "us"}},
        {"id": "wrkspc_cc", "type": "workspace", "name": "Claude Code", "created_at": "2025-01-01T00:00:00Z",
         "archived_at": "2025-06-01T12:00:00Z", "display_color": "#000000"},   # 2025 shape: no tags/residency
    ],
    "first_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", "last_id": "wrkspc_cc", "has_more": False,
}


def _one(results: Any) -> dict[str, Any]:
    rows, rejected = split(results)
    assert rejected == [] and len(rows) == 1, (rows, rejected)
    return rows[0]


# --------------------------------------------------------------------------- Claude Code report


def test_claude_code_doc_sample() -> None:
    row = _one(parse_claude_code(CLAUDE_CODE_DOC, day=DAY))
    assert row == {
        "usage_date": DAY, "actor_type": "user_actor", "actor_id": "dev@company.com", "terminal_type": "vscode",
        "customer_type": "api", "subscription_type": "enterprise",
        "organization_id": "dc9f6c26-b22c-4831-8d01-0446bada88f1",
        "num_sessions": 5, "lines_added": 1543, "lines_removed": 892, "commits_by_claude_code": 12,
        "pull_requests_by_claude_code": 2,
        "tool_actions": [
            {"tool": "edit_tool", "accepted": 45, "rejected": 5},
            {"tool": "multi_edit_tool", "accepted": 12, "rejected": 2},
            {"tool": "notebook_edit_tool", "accepted": 3, "rejected": 0},
            {"tool": "write_tool", "accepted": 8, "rejected": 1},
        ],
        "model_breakdown": [{
            "model": "claude-sonnet-4-20250514", "input_tokens": 100000, "output_tokens": 35000,
            "cache_read_tokens": 10000, "cache_creation_tokens": 5000, "estimated_cost_usd": Decimal("10.25"),
            "estimated_cost_currency": "USD", "estimated_cost_amount_raw": "1025",
        }],
        "estimated_cost_usd": Decimal("10.25"),
    }
    assert_fits_contract("raw.claude_code_usage", [row])


def test_claude_code_variants_api_actor_plain_date_partial_tools_missing_terminal() -> None:
    rows, rejected = split(parse_claude_code(CLAUDE_CODE_VARIANTS, day=DAY))
    assert rejected == []
    api, sub = rows
    assert (api["usage_date"], api["actor_type"], api["actor_id"], api["terminal_type"]) == (
        DAY, "api_actor", "my-key", "iTerm.app")
    assert [t["tool"] for t in api["tool_actions"]] == ["edit_tool", "write_tool"]   # sorted, absent tools absent
    assert [m["model"] for m in api["model_breakdown"]] == ["claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"]
    assert [m["estimated_cost_usd"] for m in api["model_breakdown"]] == [Decimal("1.86"), Decimal("0.425")]
    assert api["estimated_cost_usd"] == Decimal("2.285")
    assert api["subscription_type"] is None
    assert (sub["actor_id"], sub["terminal_type"], sub["customer_type"], sub["subscription_type"]) == (
        "sub@company.com", "unknown", "subscription", "team")
    assert sub["tool_actions"] == [] and sub["model_breakdown"] == [] and sub["estimated_cost_usd"] is None
    assert sub["lines_added"] is None and sub["num_sessions"] == 2
    assert_fits_contract("raw.claude_code_usage", rows)


def test_claude_code_empty_report() -> None:
    assert list(parse_claude_code(CLAUDE_CODE_EMPTY, day=DAY)) == []


def test_claude_code_estimate_units_and_currencies() -> None:
    payload = copy.deepcopy(CLAUDE_CODE_DOC)
    payload["data"][0]["model_breakdown"] = [
        {"model": "a", "estimated_cost": {"currency": "USD", "amount": 0.5}},               # float cents
        {"model": "b", "estimated_cost": {"currency": "USD", "amount": Decimal("123456789012.3456789")}},
        {"model": "c", "estimated_cost": {"currency": "EUR", "amount": 999}},              # kept, not converted
        {"model": "d"},                                                                    # no estimate at all
    ]
    row = _one(parse_claude_code(payload))
    got = [(m["estimated_cost_usd"], m["estimated_cost_currency"], m["estimated_cost_amount_raw"])
           for m in row["model_breakdown"]]
    assert got == [(Decimal("0.005"), "USD", "0.5"),
                   (Decimal("1234567890.123456789"), "USD", "123456789012.3456789"),
                   (None, "EUR", "999"), (None, None, None)]
    assert row["estimated_cost_usd"] == Decimal("1234567890.128456789")   # USD entries only, exact
    assert_fits_contract("raw.claude_code_usage", [row])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"actor": {"type": "service_actor", "id": "x"}}, "unknown actor type 'service_actor'"),
        ({"actor": None}, "actor: missing"),
        ({"actor": "dev@company.com"}, "actor: expected an object"),
        ({"actor": {"type": "user_actor"}}, "actor.email_address: missing"),
        ({"actor": {"type": "user_actor", "email_address": "nope"}}, "not an e-mail address"),
        ({"actor": {"type": "api_actor"}}, "actor.api_key_name: missing"),
        ({"date": "2025-09-07"}, "not the requested day 2025-09-08"),
        ({"date": "08/09/2025"}, "date: '08/09/2025' is not a date"),
        ({"date": None}, "date: missing"),
        ({"customer_type": None}, "customer_type: missing"),
        ({"core_metrics": [1]}, "core_metrics: expected an object"),
        ({"core_metrics": {"num_sessions": "five"}}, "core_metrics.num_sessions: 'five' is not a number"),
        ({"core_metrics": {"lines_of_code": {"added": -3}}}, "core_metrics.lines_of_code.added: -3 is negative"),
        ({"tool_actions": [{"edit_tool": 1}]}, "tool_actions: expected an object"),
        ({"tool_actions": {"edit_tool": 5}}, "tool_actions.edit_tool: expected an object"),
        ({"tool_actions": {"edit_tool": {"accepted": "x"}}}, "tool_actions.edit_tool.accepted"),
        ({"model_breakdown": {"model": "m"}}, "model_breakdown: expected a list"),
        ({"model_breakdown": [{"tokens": {}}]}, "model_breakdown[0].model: missing"),
        ({"model_breakdown": [None]}, "model_breakdown[0]: null entry"),
        ({"model_breakdown": [{"model": "m", "estimated_cost": {"currency": "USD", "amount": "lots"}}]},
         "model_breakdown[0].estimated_cost.amount: 'lots' is not a number"),
        ({"model_breakdown": [{"model": "m", "estimated_cost": {"currency": "USD", "amount": -1}}]},
         "is negative"),
        ({"model_breakdown": [{"model": "m", "tokens": {"input": 1.5}}]}, "model_breakdown[0].tokens.input"),
    ],
)
def test_claude_code_untrustworthy_records_are_rejected(change: dict[str, Any], reason: str) -> None:
    payload = copy.deepcopy(CLAUDE_CODE_DOC)
    payload["data"][0].update(change)
    rows, rejected = split(parse_claude_code(payload, page=2, day=DAY))
    assert rows == [] and len(rejected) == 1
    assert reason in rejected[0].reason
    assert rejected[0].ref == "/v1/organizations/usage_report/claude_code 2025-09-08 page 2 item 0"
    assert rejected[0].record == payload["data"][0]


def test_claude_code_unknown_fields_ignored_and_duplicate_keys_rejected() -> None:
    payload = copy.deepcopy(CLAUDE_CODE_DOC)
    payload["data"][0]["brand_new"] = {"x": 1}
    payload["data"][0]["core_metrics"]["new_metric"] = 3
    payload["data"][0]["tool_actions"]["future_tool"] = {"accepted": 1, "rejected": 1, "ignored": 5}
    payload["data"].append(copy.deepcopy(payload["data"][0]))
    payload["data"].append("junk")
    rows, rejected = split(parse_claude_code(payload))
    assert len(rows) == 1
    assert {"tool": "future_tool", "accepted": 1, "rejected": 1} in rows[0]["tool_actions"]
    assert [r.ref for r in rejected] == ["/v1/organizations/usage_report/claude_code page 1 item 1",
                                         "/v1/organizations/usage_report/claude_code page 1 item 2"]
    assert rejected[0].reason.startswith("duplicate key")
    assert_fits_contract("raw.claude_code_usage", rows)


@pytest.mark.parametrize("payload", [None, [], {"records": []}, {"data": None}])
def test_claude_code_wrong_payload_shape_raises(payload: Any) -> None:
    with pytest.raises(PayloadError):
        list(parse_claude_code(payload))


# --------------------------------------------------------------------------- cost report


def test_cost_report_doc_sample_2026_03_shape() -> None:
    names = {"wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ": "Product Backend"}
    row = _one(parse_cost_report(COST_DOC, rules=RULES, workspace_names=names))
    assert row == {
        "cost_date": date(2025, 8, 1), "workspace_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ",
        "description": "Claude Sonnet 4 Usage - Input Tokens", "cost_type": "tokens", "context_window": "0-200k",
        "model": "claude-sonnet-4-20250514", "service_tier": "standard", "token_type": "uncached_input_tokens",
        "inference_geo": "global", "speed": "standard", "currency": "USD",
        "amount_usd": Decimal("1.2378912"), "amount_cents_raw": "123.78912",
        "platform": "api", "platform_rule": "default", "workspace_name": "Product Backend",
    }
    assert_fits_contract("raw.anthropic_costs", [row])


def test_cost_report_variants_nulls_new_cost_types_huge_and_tiny_amounts() -> None:
    names = workspace_name_map(list(parse_workspaces(WORKSPACES_DOC, snapshot_date=SNAP)))
    rows, rejected = split(parse_cost_report(COST_VARIANTS, rules=RULES, workspace_names=names))
    assert rejected == []
    code, search, session, ungrouped = rows
    assert (code["cost_date"], code["amount_usd"], code["amount_cents_raw"]) == (
        date(2025, 8, 2), Decimal("0.000000001"), "0.0000001")
    assert code["workspace_id"] is None and code["workspace_name"] == "Default Workspace"
    assert code["inference_geo"] is None and code["speed"] is None and code["model"] is None
    assert (code["platform"], code["platform_rule"]) == ("api", "default")
    assert search["amount_usd"] == Decimal("1234567890.123456789")
    assert search["amount_cents_raw"] == "123456789012.3456789"
    assert (session["cost_type"], session["inference_geo"], session["workspace_name"]) == (
        "session_usage", "not_available", "Claude Code")
    assert (session["platform"], session["platform_rule"]) == ("claude_code", "workspace_name:Claude Code")
    assert session["amount_usd"] == Decimal("2.5")
    assert (ungrouped["cost_date"], ungrouped["description"], ungrouped["amount_usd"]) == (
        date(2025, 8, 3), None, Decimal("0.17"))
    assert_fits_contract("raw.anthropic_costs", rows)
    # exact bill total: the sum of the converted rows is the sum of the strings / 100
    assert sum(r["amount_usd"] for r in rows) == Decimal("1234567892.793456790")


def test_cost_report_without_workspace_listing() -> None:
    rows, _ = split(parse_cost_report(COST_VARIANTS, rules=RULES))
    assert [r["workspace_name"] for r in rows] == ["Default Workspace", "Default Workspace", None,
                                                   "Default Workspace"]
    assert rows[2]["platform"] == "api"   # the Claude Code workspace cannot be recognised by name without a listing
    by_id = PlatformRules(claude_code_workspace_ids={"wrkspc_cc"})
    rows, _ = split(parse_cost_report(COST_VARIANTS, rules=by_id))
    assert (rows[2]["platform"], rows[2]["platform_rule"]) == ("claude_code", "workspace:wrkspc_cc")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"currency": "EUR"}, "currency: 'EUR' is not USD"),
        ({"currency": None}, "currency: missing"),
        ({"amount": None}, "amount: missing"),
        ({"amount": "12,50"}, "amount: '12,50' is not a number"),
        ({"amount": "-3.5"}, "amount: '-3.5' is negative"),
        ({"amount": "1e40"}, "integer digits"),
        ({"model": {"id": "m"}}, "model: expected a string, got dict"),
    ],
)
def test_cost_report_untrustworthy_results_are_rejected(change: dict[str, Any], reason: str) -> None:
    payload = copy.deepcopy(COST_DOC)
    payload["data"][0]["results"][0].update(change)
    [rejected] = split(parse_cost_report(payload, page=3, rules=RULES))[1]
    assert reason in rejected.reason
    assert rejected.ref == "/v1/organizations/cost_report page 3 bucket 0 (2025-08-01) result 0"
    assert rejected.record == payload["data"][0]["results"][0]


@pytest.mark.parametrize(
    ("bucket", "reason"),
    [
        ({"starting_at": "2025-08-01T00:00:00Z", "ending_at": "2025-08-01T01:00:00Z"}, "is not one day"),
        ({"starting_at": "2025-08-01T00:00:00Z", "ending_at": "2025-08-03T00:00:00Z"}, "is not one day"),
        ({"starting_at": "2025-08-01T06:00:00Z", "ending_at": "2025-08-02T06:00:00Z"}, "is not a UTC midnight"),
        ({"starting_at": "2025-08-01T00:00:00Z"}, "both required"),
        ({"starting_at": "August 1st", "ending_at": "2025-08-02T00:00:00Z"}, "starting_at"),
        ({"starting_at": "2025-08-01T00:00:00Z", "ending_at": "2025-08-02T00:00:00Z", "results": None},
         "results: expected a list"),
    ],
)
def test_cost_report_buckets_that_are_not_one_utc_day_are_rejected(bucket: dict[str, Any], reason: str) -> None:
    full = {"results": [COST_DOC["data"][0]["results"][0]], **bucket}
    payload = {"data": [full, COST_DOC["data"][0]]}
    rows, rejected = split(parse_cost_report(payload, rules=RULES))
    assert len(rows) == 1 and rows[0]["cost_date"] == date(2025, 8, 1)
    assert len(rejected) == 1 and reason in rejected[0].reason
    assert rejected[0].ref == "/v1/organizations/cost_report page 1 bucket 0"
    assert rejected[0].record == full


def test_cost_report_non_utc_offset_bucket_is_its_utc_day() -> None:
    payload = copy.deepcopy(COST_DOC)
    payload["data"][0]["starting_at"] = "2025-08-01T02:00:00+02:00"
    payload["data"][0]["ending_at"] = "2025-08-02T02:00:00+02:00"
    assert _one(parse_cost_report(payload, rules=RULES))["cost_date"] == date(2025, 8, 1)


def test_cost_report_duplicate_grouping_keys_are_rejected() -> None:
    payload = copy.deepcopy(COST_DOC)
    payload["data"][0]["results"].append(dict(payload["data"][0]["results"][0], amount="1"))
    rows, rejected = split(parse_cost_report(payload, rules=RULES))
    assert len(rows) == 1 and rows[0]["amount_cents_raw"] == "123.78912"
    assert "first seen at /v1/organizations/cost_report page 1 bucket 0 (2025-08-01) result 0" in rejected[0].reason


@pytest.mark.parametrize("payload", [None, "x", {"buckets": []}, {"data": {}}])
def test_cost_report_wrong_payload_shape_raises(payload: Any) -> None:
    with pytest.raises(PayloadError, match="cost_report"):
        list(parse_cost_report(payload, rules=RULES))


# --------------------------------------------------------------------------- messages usage report


def test_messages_usage_doc_sample() -> None:
    row = _one(parse_messages_usage(MESSAGES_DOC))
    assert row == {
        "usage_date": date(2025, 8, 1), "api_key_id": "apikey_01Rj2N8SVvo6BePZj99NhmiT",
        "workspace_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", "model": "claude-opus-4-6", "service_tier": "standard",
        "context_window": "0-200k", "inference_geo": "global", "account_id": "user_01WCz1FkmYMm4gnmykNKUu3Q",
        "service_account_id": "svac_01Hk3R9TWxq7CfQak00OiVw4", "speed": "standard",
        "uncached_input_tokens": 1500, "cache_creation_1h_input_tokens": 1000, "cache_creation_5m_input_tokens": 500,
        "cache_read_input_tokens": 200, "output_tokens": 500, "web_search_requests": 10,
    }
    assert_fits_contract("raw.anthropic_messages_usage", [row])


def test_messages_usage_2025_shape_and_hostile_results() -> None:
    bucket = copy.deepcopy(MESSAGES_DOC["data"][0])
    old = {"uncached_input_tokens": 5, "output_tokens": 6, "api_key_id": None, "workspace_id": None, "model": None,
           "service_tier": None, "context_window": None}   # no cache_creation / server_tool_use / newer dims
    bucket["results"] = [old, {"uncached_input_tokens": -1}, {"cache_creation": 7}, {"output_tokens": "many"}]
    rows, rejected = split(parse_messages_usage({"data": [bucket]}, page=5))
    assert len(rows) == 1
    assert rows[0]["cache_creation_1h_input_tokens"] is None and rows[0]["web_search_requests"] is None
    assert rows[0]["account_id"] is None and rows[0]["uncached_input_tokens"] == 5
    assert [(r.ref, r.reason) for r in rejected] == [
        ("/v1/organizations/usage_report/messages page 5 bucket 0 (2025-08-01) result 1",
         "uncached_input_tokens: -1 is negative"),
        ("/v1/organizations/usage_report/messages page 5 bucket 0 (2025-08-01) result 2",
         "cache_creation: expected an object, got int"),
        ("/v1/organizations/usage_report/messages page 5 bucket 0 (2025-08-01) result 3",
         "output_tokens: 'many' is not a number"),
    ]
    assert_fits_contract("raw.anthropic_messages_usage", rows)


def test_messages_usage_hourly_buckets_are_rejected() -> None:
    payload = copy.deepcopy(MESSAGES_DOC)
    payload["data"][0]["ending_at"] = "2025-08-01T01:00:00Z"
    [rejected] = split(parse_messages_usage(payload))[1]
    assert "is not one day" in rejected.reason


# --------------------------------------------------------------------------- listings


def test_api_keys_listing() -> None:
    rows, rejected = split(parse_api_keys(API_KEYS_DOC, snapshot_date=SNAP))
    assert rejected == []
    assert rows[0] == {
        "snapshot_date": SNAP, "api_key_id": "apikey_01Rj2N8SVvo6BePZj99NhmiT", "name": "Developer Key",
        "status": "active", "workspace_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ",
        "created_at": datetime(2024, 10, 30, 23, 58, 27, 427722, tzinfo=UTC),
        "created_by_id": "user_01WCz1FkmYMm4gnmykNKUu3Q", "created_by_type": "user", "expires_at": None,
        "partial_key_hint": "sk-ant-api03-R2D...igAA",
    }
    assert rows[1]["expires_at"] == datetime(2025, 12, 31, 23, tzinfo=UTC)
    assert rows[1]["workspace_id"] is None
    assert_fits_contract("raw.anthropic_api_keys", rows)


def test_users_listing() -> None:
    row = _one(parse_users(USERS_DOC, snapshot_date=SNAP))
    assert row == {"snapshot_date": SNAP, "user_id": "user_01WCz1FkmYMm4gnmykNKUu3Q",
                   "email": "user@emaildomain.com", "name": "Jane Doe", "role": "claude_code_user",
                   "added_at": datetime(2024, 10, 30, 23, 58, 27, 427722, tzinfo=UTC)}
    assert_fits_contract("raw.anthropic_users", [row])


def test_workspaces_listing_tags_and_residency_are_json() -> None:
    payload = copy.deepcopy(WORKSPACES_DOC)
    payload["data"][0]["data_residency"]["allowed_inference_geos"] = ["us", "eu"]
    payload["data"][0]["tags"]["weight"] = Decimal("1.5")
    rows, rejected = split(parse_workspaces(payload, snapshot_date=SNAP))
    assert rejected == []
    assert rows[0]["tags"] == {"env": "prod", "weight": 1.5}
    assert rows[0]["data_residency"] == {"allowed_inference_geos": ["us", "eu"], "default_inference_geo": "global",
                                         "workspace_geo": "us"}
    assert json.loads(json.dumps(rows[0]["tags"])) == rows[0]["tags"]
    assert rows[1]["tags"] is None and rows[1]["data_residency"] is None
    assert rows[1]["archived_at"] == datetime(2025, 6, 1, 12, tzinfo=UTC)
    assert_fits_contract("raw.anthropic_workspaces", rows)
    assert workspace_name_map(rows) == {None: "Default Workspace", "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ": "Workspace Name",
                                        "wrkspc_cc": "Claude Code"}


@pytest.mark.parametrize(
    ("parser", "item", "reason"),
    [
        (parse_api_keys, {"name": "no id"}, "id: missing"),
        (parse_api_keys, {"id": "k", "created_by": "someone"}, "created_by: expected an object"),
        (parse_api_keys, {"id": "k", "created_at": "a while ago"}, "created_at"),
        (parse_users, {"id": "u", "email": "broken"}, "not an e-mail address"),
        (parse_users, {"email": "a@b.co"}, "id: missing"),
        (parse_workspaces, {"id": "w", "tags": ["env:prod"]}, "tags: expected an object"),
        (parse_workspaces, {"id": "w", "data_residency": "us"}, "data_residency: expected an object"),
    ],
)
def test_listings_reject_untrustworthy_items(parser: Any, item: dict[str, Any], reason: str) -> None:
    rows, rejected = split(parser({"data": [item, "junk"], "has_more": False}, snapshot_date=SNAP, page=2))
    assert rows == []
    assert reason in rejected[0].reason
    assert rejected[0].ref.endswith("page 2 item 0") and rejected[1].ref.endswith("page 2 item 1")


def test_listings_users_without_email_keep_null() -> None:
    row = _one(parse_users({"data": [{"id": "user_x", "name": "Bot"}]}, snapshot_date=SNAP))
    assert row["email"] is None
    assert_fits_contract("raw.anthropic_users", [row])


@pytest.mark.parametrize("parser", [parse_api_keys, parse_users, parse_workspaces])
def test_listings_wrong_payload_shape_raises(parser: Any) -> None:
    with pytest.raises(PayloadError):
        list(parser([{"id": "x"}], snapshot_date=SNAP))
    with pytest.raises(TypeError):
        list(parser({"data": []}, snapshot_date="2026-07-01"))


def test_rejected_is_what_the_quarantine_stores() -> None:
    payload = {"data": [{"date": "2025-09-08", "actor": {"type": "robot"}, "customer_type": "api"}]}
    [item] = parse_claude_code(payload, day=DAY)
    assert isinstance(item, Rejected)
    assert json.loads(json.dumps(item.record)) == payload["data"][0]   # JSON-able, verbatim


# --------------------------------------------------------------------------- time-zone invariance

_TZ_SCRIPT = """
import json, time
from tests.test_sources_anthropic import tz_probe
print(json.dumps({"local_offset": time.localtime(1754006400).tm_gmtoff, "rows": tz_probe()}))
"""


def tz_probe() -> list[str]:
    """Rows of every parser, as text (run in a subprocess per TZ)."""
    late_day = copy.deepcopy(CLAUDE_CODE_DOC)
    late_day["data"][0]["date"] = "2025-09-08T23:59:59Z"
    out = []
    for results in (parse_claude_code(CLAUDE_CODE_DOC, day=DAY), parse_claude_code(CLAUDE_CODE_VARIANTS),
                    parse_claude_code(late_day, day=DAY),
                    parse_cost_report(COST_VARIANTS, rules=RULES), parse_cost_report(COST_DOC, rules=RULES),
                    parse_messages_usage(MESSAGES_DOC), parse_api_keys(API_KEYS_DOC, snapshot_date=SNAP),
                    parse_users(USERS_DOC, snapshot_date=SNAP), parse_workspaces(WORKSPACES_DOC, snapshot_date=SNAP)):
        out.extend(repr(sorted(r.items())) if isinstance(r, dict) else repr(r) for r in results)
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
    text = "\n".join(results["America/Los_Angeles"]["rows"])
    assert "('cost_date', datetime.date(2025, 8, 1))" in text and "('usage_date', datetime.date(2025, 9, 8))" in text
    assert results["UTC"]["rows"] == tz_probe()
