"""Table contracts (include/schemas): the set of tables, the house naming rules, vendor-field coverage,
and that the contract parser rejects hostile files.

Creating the tables on a warehouse is tested with the backends, not here.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ai_usage.exceptions import ContractError
from ai_usage.paths import schemas_dir
from ai_usage.warehouse.contracts import (
    DATASETS,
    Column,
    TableContract,
    get_contract,
    load_contract_file,
    load_contracts,
    parse_contract,
)

# The tables of DESIGN.md §4, by logical name. Adding a table is a deliberate change to this list.
EXPECTED_TABLES = {
    "raw.cursor_members",
    "raw.cursor_daily_usage",
    "raw.cursor_spend",
    "raw.cursor_usage_events",
    "raw.claude_code_usage",
    "raw.anthropic_costs",
    "raw.anthropic_messages_usage",
    "raw.anthropic_api_keys",
    "raw.anthropic_users",
    "raw.anthropic_workspaces",
    "raw.claude_ai_usage",
    "ref.people",
    "ref.api_key_owners",
    "ref.seat_prices",
    "ref.attribution",
    "marts.daily_tool_usage",
    "marts.monthly_cost_allocation",
    "marts.seat_utilization",
    "marts.exec_monthly",
    "marts.data_freshness",
    "marts.reconciliation_status",
    "marts.daily_usage_breakdown",
    "ops.ingestion_runs",
    "ops.source_coverage",
    "ops.dq_results",
    "ops.quarantine",
}

# DATE columns that are not named `*_date`: the month key and range bounds.
DATE_NAMES_WITHOUT_SUFFIX = {
    "month", "valid_from", "valid_to", "period_start", "period_end", "interval_start", "interval_end",
}
# Fractional quantities that are not money, hence NUMERIC without `_usd`.
NON_MONEY_NUMERIC = {"requests_costs", "discount_percent_off"}
# Words that mark a numeric column as money; such a column must end in `_usd`.
MONEY_WORDS = ("cost", "spend", "amount", "price", "fee", "charged", "cents", "dollars", "limit")
# Numeric columns that contain a money word but are not money.
NOT_MONEY_DESPITE_NAME = {"requests_costs", "cost_change_pct"}

# BigQuery's reserved keywords: a column with one of these names needs quoting in every query.
# https://cloud.google.com/bigquery/docs/reference/standard-sql/lexical#reserved_keywords
BIGQUERY_RESERVED = set("""
ALL AND ANY ARRAY AS ASC ASSERT_ROWS_MODIFIED AT BETWEEN BY CASE CAST COLLATE CONTAINS CREATE CROSS CUBE
CURRENT DEFAULT DEFINE DESC DISTINCT ELSE END ENUM ESCAPE EXCEPT EXCLUDE EXISTS EXTRACT FALSE FETCH
FOLLOWING FOR FROM FULL GROUP GROUPING GROUPS HASH HAVING IF IGNORE IN INNER INTERSECT INTERVAL INTO IS
JOIN LATERAL LEFT LIKE LIMIT LOOKUP MERGE NATURAL NEW NO NOT NULL NULLS OF ON OR ORDER OUTER OVER
PARTITION PRECEDING PROTO QUALIFY RANGE RECURSIVE RESPECT RIGHT ROLLUP ROWS SELECT SET SOME STRUCT
TABLESAMPLE THEN TO TREAT TRUE UNBOUNDED UNION UNNEST USING WHEN WHERE WINDOW WITH WITHIN
""".lower().split())

SNAKE = re.compile(r"^_?[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def _walk(columns: tuple[Column, ...], prefix: str = "") -> Iterator[tuple[str, Column]]:
    """Every column, nested RECORD fields included, with its dotted path."""
    for c in columns:
        path = f"{prefix}{c.name}"
        yield path, c
        yield from _walk(c.fields, f"{path}.")


def _all_columns() -> Iterator[tuple[str, Column]]:
    for qname, contract in sorted(load_contracts().items()):
        for path, c in _walk(contract.columns):
            yield f"{qname}.{path}", c


@pytest.fixture(scope="module")
def contracts() -> dict[str, TableContract]:
    return load_contracts()


# --------------------------------------------------------------------------- the set of tables


def test_every_design_table_has_exactly_one_contract(contracts: dict[str, TableContract]) -> None:
    assert set(contracts) == EXPECTED_TABLES
    assert len(EXPECTED_TABLES) == 26


def test_schema_folder_holds_only_contract_files() -> None:
    """A misnamed file or folder would be silently ignored by the loader; forbid it."""
    root = schemas_dir()
    strays = []
    for path in root.rglob("*"):
        if path.is_dir():
            if path.parent == root and path.name in DATASETS:
                continue
            strays.append(path)
        else:
            rel = path.relative_to(root)
            if not (len(rel.parts) == 2 and rel.parts[0] in DATASETS and rel.suffix == ".json"
                    and SNAKE.match(rel.stem)):
                strays.append(path)
    assert strays == []


@pytest.mark.parametrize("path", sorted(schemas_dir().glob("*/*.json")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_file_is_canonical_bigquery_schema(path: Path) -> None:
    """Each field of the file is exactly what the parsed Column writes back: canonical type names
    (INT64, not INTEGER), explicit modes, no key the loader would drop."""
    doc = json.loads(path.read_text())
    contract = load_contract_file(path)
    assert [c.to_bq() for c in contract.columns] == doc["schema"]["fields"]


def test_get_contract_names_the_missing_file() -> None:
    with pytest.raises(ContractError, match=r"include/schemas/raw/no_such_table\.json"):
        get_contract("raw.no_such_table")


# --------------------------------------------------------------------------- naming rules


def test_names_are_snake_case_and_not_reserved() -> None:
    duck_reserved = {
        r[0] for r in duckdb.sql(
            "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'"
        ).fetchall()
    }
    assert "select" in duck_reserved  # the catalogue query itself works
    bad = [
        path for path, c in _all_columns()
        if not SNAKE.match(c.name) or c.name in BIGQUERY_RESERVED or c.name in duck_reserved
    ]
    assert bad == []


def test_money_columns_are_numeric_38_9_and_end_in_usd() -> None:
    problems = []
    for path, c in _all_columns():
        if c.name.endswith("_usd"):
            if (c.type, c.precision, c.scale) != ("NUMERIC", 38, 9):
                problems.append(f"{path}: {c.type}({c.precision},{c.scale})")
            if "USD" not in c.description:
                problems.append(f"{path}: description does not state the unit USD")
        elif c.type in ("NUMERIC", "BIGNUMERIC") and c.name not in NON_MONEY_NUMERIC:
            problems.append(f"{path}: NUMERIC but not a *_usd money column nor a known non-money quantity")
        if c.type in ("NUMERIC", "BIGNUMERIC", "FLOAT64", "INT64") and not c.name.endswith("_usd"):
            if any(w in c.name for w in MONEY_WORDS) and c.name not in NOT_MONEY_DESPITE_NAME:
                problems.append(f"{path}: looks like money ({c.type}) but does not end in _usd")
        if c.name in NON_MONEY_NUMERIC and (c.type, c.precision, c.scale) != ("NUMERIC", 38, 9):
            problems.append(f"{path}: non-money quantity must be NUMERIC(38,9)")
    assert problems == []


def test_verbatim_money_columns_are_strings() -> None:
    raws = [(path, c) for path, c in _all_columns() if c.name.endswith("_raw")]
    assert len(raws) >= 9
    assert [path for path, c in raws if c.type != "STRING"] == []
    assert get_contract("raw.anthropic_costs").column("amount_cents_raw").type == "STRING"


def test_day_month_and_time_columns_are_named_by_type() -> None:
    problems = []
    for path, c in _all_columns():
        if c.type == "DATE" and not (c.name.endswith("_date") or c.name in DATE_NAMES_WITHOUT_SUFFIX):
            problems.append(f"{path}: DATE column must end in _date")
        if c.name.endswith("_date") and c.type != "DATE":
            problems.append(f"{path}: *_date column must be DATE, is {c.type}")
        if c.name in DATE_NAMES_WITHOUT_SUFFIX and c.type != "DATE":
            problems.append(f"{path}: must be DATE, is {c.type}")
        if c.type == "TIMESTAMP" and not c.name.endswith("_at"):
            problems.append(f"{path}: TIMESTAMP column must end in _at")
        if c.name.endswith("_at") and c.type != "TIMESTAMP":
            problems.append(f"{path}: *_at column must be TIMESTAMP, is {c.type}")
        if c.type in ("DATETIME", "TIME"):
            problems.append(f"{path}: {c.type} has no time zone; days and instants are UTC DATE / TIMESTAMP")
    assert problems == []


def test_identity_columns_are_strings() -> None:
    """E-mails, tools, teams, cost centres and every *_id (vendors switched ids between number and string)."""
    names = {"email", "owner_email", "tool", "team", "cost_center", "run_id", "_run_id"}
    bad = [
        f"{path}: {c.type}" for path, c in _all_columns()
        if (c.name in names or c.name.endswith("_id")) and c.type != "STRING"
    ]
    assert bad == []
    # the spelling is cost_center, never cost_centre
    assert [p for p, c in _all_columns() if "centre" in c.name] == []


def test_every_tool_column_is_required_and_documents_the_three_tools() -> None:
    tools = [
        (f"{name}.tool", c) for name, contract in load_contracts().items() for c in contract.columns if c.name == "tool"
    ]
    assert len(tools) == 7  # ref.seat_prices and six marts
    for path, c in tools:
        assert c.required, path
        for value in ("'cursor'", "'claude_code'", "'claude_ai'"):
            assert value in c.description, path


# --------------------------------------------------------------------------- lineage columns


@pytest.mark.parametrize("table", sorted(t for t in EXPECTED_TABLES if t.split(".")[0] in ("raw", "ref")))
def test_raw_and_ref_end_with_ingestion_lineage(table: str) -> None:
    last_two = get_contract(table).columns[-2:]
    assert [(c.name, c.type, c.mode) for c in last_two] == [
        ("_ingested_at", "TIMESTAMP", "REQUIRED"),
        ("_run_id", "STRING", "REQUIRED"),
    ]


@pytest.mark.parametrize("table", sorted(t for t in EXPECTED_TABLES if t.startswith("marts.")))
def test_marts_end_with_refresh_lineage(table: str) -> None:
    last_two = get_contract(table).columns[-2:]
    assert [(c.name, c.type, c.mode) for c in last_two] == [
        ("_refreshed_at", "TIMESTAMP", "REQUIRED"),
        ("_run_id", "STRING", "REQUIRED"),
    ]


@pytest.mark.parametrize("table", sorted(t for t in EXPECTED_TABLES if t.startswith("ops.")))
def test_ops_rows_name_their_run(table: str) -> None:
    c = get_contract(table).column("run_id")
    assert (c.type, c.mode) == ("STRING", "REQUIRED")


# --------------------------------------------------------------------------- partitioning, clustering, keys


def test_partitioning(contracts: dict[str, TableContract]) -> None:
    for name, contract in contracts.items():
        if contract.dataset == "ref":
            assert contract.partition_field is None, f"{name}: ref tables are small and replaced whole"
            continue
        assert contract.partition_field is not None, f"{name}: must be date-partitioned"
        col = contract.column(contract.partition_field)
        assert (col.type, col.mode) == ("DATE", "REQUIRED"), f"{name}: partition field must be a REQUIRED DATE"
        assert contract.raw["timePartitioning"] == {"type": "DAY", "field": contract.partition_field}, name


def test_clustering_fields_are_clusterable(contracts: dict[str, TableContract]) -> None:
    """BigQuery clusters on top-level scalar columns only (no FLOAT64, JSON, RECORD or REPEATED)."""
    for name, contract in contracts.items():
        assert len(contract.clustering) <= 4, name
        for field_name in contract.clustering:
            col = contract.column(field_name)
            assert col.type in ("STRING", "DATE", "INT64", "BOOL", "TIMESTAMP", "NUMERIC"), f"{name}.{field_name}"
            assert not col.repeated, f"{name}.{field_name}"


def test_primary_keys(contracts: dict[str, TableContract]) -> None:
    for name, contract in contracts.items():
        if name == "ops.quarantine":  # an append-only log
            continue
        assert contract.primary_key, f"{name}: needs x-primaryKey"
        assert len(set(contract.primary_key)) == len(contract.primary_key), name
        for key in contract.primary_key:
            col = contract.column(key)
            assert col.type in ("STRING", "DATE", "INT64", "BOOL"), f"{name}.{key}"
            assert not col.repeated, f"{name}.{key}"
        if contract.dataset in ("raw", "marts"):
            assert contract.partition_field in contract.primary_key, f"{name}: key must include the partition"


EXPECTED_KEYS = {
    "raw.cursor_members": ("snapshot_date", "email"),
    "raw.cursor_daily_usage": ("usage_date", "email"),
    "raw.cursor_spend": ("snapshot_date", "email"),
    "raw.cursor_usage_events": ("event_date", "event_key"),
    "raw.claude_code_usage": ("usage_date", "actor_type", "actor_id", "terminal_type", "customer_type"),
    "raw.anthropic_api_keys": ("snapshot_date", "api_key_id"),
    "ops.source_coverage": ("source", "coverage_date"),
}


@pytest.mark.parametrize("table", sorted(EXPECTED_KEYS))
def test_documented_keys(table: str) -> None:
    assert get_contract(table).primary_key == EXPECTED_KEYS[table]


def test_cost_report_key_is_the_day_and_every_grouping_field() -> None:
    assert get_contract("raw.anthropic_costs").primary_key == (
        "cost_date", "workspace_id", "description", "cost_type", "context_window", "model",
        "service_tier", "token_type", "inference_geo", "speed",
    )


def test_key_columns_are_required_where_vendors_always_send_them() -> None:
    for table in ("raw.cursor_daily_usage", "raw.cursor_spend", "raw.cursor_members", "raw.claude_code_usage",
                  "raw.cursor_usage_events", "raw.anthropic_api_keys"):
        contract = get_contract(table)
        assert [k for k in contract.primary_key if not contract.column(k).required] == [], table


# --------------------------------------------------------------------------- nested columns


def test_model_breakdown_is_repeated_record() -> None:
    c = get_contract("raw.claude_code_usage").column("model_breakdown")
    assert (c.type, c.mode) == ("RECORD", "REPEATED")
    sub = {f.name: f for f in c.fields}
    assert {n: f.type for n, f in sub.items()} == {
        "model": "STRING", "input_tokens": "INT64", "output_tokens": "INT64", "cache_read_tokens": "INT64",
        "cache_creation_tokens": "INT64", "estimated_cost_usd": "NUMERIC", "estimated_cost_currency": "STRING",
        "estimated_cost_amount_raw": "STRING",
    }
    assert (sub["estimated_cost_usd"].precision, sub["estimated_cost_usd"].scale) == (38, 9)


def test_tool_actions_is_a_repeated_record_so_unknown_tools_fit() -> None:
    c = get_contract("raw.claude_code_usage").column("tool_actions")
    assert (c.type, c.mode) == ("RECORD", "REPEATED")
    assert [(f.name, f.type) for f in c.fields] == [("tool", "STRING"), ("accepted", "INT64"), ("rejected", "INT64")]


def test_only_claude_code_usage_nests() -> None:
    nested = [path for path, c in _all_columns() if c.type == "RECORD" or c.repeated]
    assert sorted(nested) == ["raw.claude_code_usage.model_breakdown", "raw.claude_code_usage.tool_actions"]


# --------------------------------------------------------------------------- columns per table

# The minimum columns and types the design names for each table (every table may have more).
MINIMUM_COLUMNS: dict[str, dict[str, str]] = {
    "raw.cursor_members": {"snapshot_date": "DATE", "member_id": "STRING", "email": "STRING", "name": "STRING",
                           "role": "STRING", "is_removed": "BOOL"},
    "raw.cursor_spend": {"snapshot_date": "DATE", "email": "STRING", "user_id": "STRING", "name": "STRING",
                         "role": "STRING", "spend_usd": "NUMERIC", "overall_spend_usd": "NUMERIC",
                         "fast_premium_requests": "INT64", "hard_limit_override_usd": "NUMERIC",
                         "monthly_limit_usd": "NUMERIC", "effective_per_user_limit_usd": "NUMERIC",
                         "subscription_cycle_start_date": "DATE"},
    "raw.cursor_usage_events": {"event_date": "DATE", "event_at": "TIMESTAMP", "event_key": "STRING",
                                "email": "STRING", "service_account_id": "STRING",
                                "service_account_name": "STRING", "cloud_agent_id": "STRING",
                                "automation_id": "STRING", "conversation_id": "STRING", "model": "STRING",
                                "kind": "STRING", "max_mode": "BOOL", "requests_costs": "NUMERIC",
                                "is_token_based_call": "BOOL", "is_chargeable": "BOOL", "is_headless": "BOOL",
                                "input_tokens": "INT64", "output_tokens": "INT64", "cache_write_tokens": "INT64",
                                "cache_read_tokens": "INT64", "token_cost_usd": "NUMERIC",
                                "discount_percent_off": "NUMERIC", "charged_usd": "NUMERIC",
                                "cursor_token_fee_usd": "NUMERIC"},
    "raw.claude_code_usage": {"usage_date": "DATE", "actor_type": "STRING", "actor_id": "STRING",
                              "terminal_type": "STRING", "customer_type": "STRING", "subscription_type": "STRING",
                              "organization_id": "STRING", "num_sessions": "INT64", "lines_added": "INT64",
                              "lines_removed": "INT64", "commits_by_claude_code": "INT64",
                              "pull_requests_by_claude_code": "INT64", "tool_actions": "RECORD",
                              "model_breakdown": "RECORD", "estimated_cost_usd": "NUMERIC"},
    "raw.anthropic_costs": {"cost_date": "DATE", "amount_usd": "NUMERIC", "amount_cents_raw": "STRING",
                            "platform": "STRING", "platform_rule": "STRING", "workspace_name": "STRING",
                            "currency": "STRING"},
    "raw.anthropic_messages_usage": {"usage_date": "DATE", "api_key_id": "STRING", "workspace_id": "STRING",
                                     "model": "STRING", "service_tier": "STRING", "context_window": "STRING",
                                     "inference_geo": "STRING", "uncached_input_tokens": "INT64",
                                     "cache_creation_1h_input_tokens": "INT64",
                                     "cache_creation_5m_input_tokens": "INT64", "cache_read_input_tokens": "INT64",
                                     "output_tokens": "INT64", "web_search_requests": "INT64"},
    "raw.anthropic_api_keys": {"snapshot_date": "DATE", "api_key_id": "STRING", "name": "STRING",
                               "status": "STRING", "workspace_id": "STRING", "created_at": "TIMESTAMP",
                               "created_by_id": "STRING", "created_by_type": "STRING", "expires_at": "TIMESTAMP",
                               "partial_key_hint": "STRING"},
    "raw.anthropic_users": {"snapshot_date": "DATE", "user_id": "STRING", "email": "STRING", "name": "STRING",
                            "role": "STRING", "added_at": "TIMESTAMP"},
    "raw.anthropic_workspaces": {"snapshot_date": "DATE", "workspace_id": "STRING", "name": "STRING",
                                 "created_at": "TIMESTAMP", "archived_at": "TIMESTAMP", "display_color": "STRING",
                                 "tags": "JSON", "data_residency": "JSON"},
    "raw.claude_ai_usage": {"period_start": "DATE", "period_end": "DATE", "period_label": "STRING",
                            "email": "STRING", "account_uuid": "STRING", "product": "STRING", "model": "STRING",
                            "model_family": "STRING", "total_requests": "INT64", "total_prompt_tokens": "INT64",
                            "total_completion_tokens": "INT64", "net_spend_usd": "NUMERIC",
                            "gross_spend_usd": "NUMERIC", "exported_at": "TIMESTAMP", "source_row": "INT64"},
    "ref.people": {"email": "STRING", "name": "STRING", "team": "STRING", "cost_center": "STRING",
                   "valid_from": "DATE", "valid_to": "DATE"},
    "ref.api_key_owners": {"api_key_id": "STRING", "api_key_name": "STRING", "workspace": "STRING",
                           "owner_email": "STRING", "team": "STRING", "cost_center": "STRING",
                           "valid_from": "DATE", "valid_to": "DATE", "notes": "STRING",
                           "is_developer_tooling": "BOOL"},
    "ref.seat_prices": {"tool": "STRING", "plan": "STRING", "monthly_price_usd": "NUMERIC", "seats": "INT64",
                        "valid_from": "DATE", "valid_to": "DATE"},
    "marts.daily_tool_usage": {"usage_date": "DATE", "tool": "STRING", "email": "STRING", "team": "STRING",
                               "cost_center": "STRING", "is_active": "BOOL", "sessions": "INT64",
                               "requests": "INT64", "lines_added": "INT64", "lines_accepted": "INT64",
                               "accepts": "INT64", "rejects": "INT64", "tabs_shown": "INT64",
                               "tabs_accepted": "INT64", "input_tokens": "INT64", "output_tokens": "INT64",
                               "commits": "INT64", "pull_requests": "INT64", "estimated_cost_usd": "NUMERIC"},
    "marts.monthly_cost_allocation": {"month": "DATE", "tool": "STRING", "cost_kind": "STRING", "team": "STRING",
                                      "cost_center": "STRING", "email": "STRING", "api_key_id": "STRING",
                                      "allocation_basis": "STRING", "amount_usd": "NUMERIC"},
    "marts.seat_utilization": {"month": "DATE", "tool": "STRING", "seats_paid": "INT64", "seats_active": "INT64",
                               "seats_idle": "INT64", "seat_price_usd": "NUMERIC", "idle_cost_usd": "NUMERIC"},
    "marts.exec_monthly": {"month": "DATE", "total_cost_usd": "NUMERIC", "cursor_cost_usd": "NUMERIC",
                           "claude_code_cost_usd": "NUMERIC", "claude_ai_cost_usd": "NUMERIC",
                           "active_users": "INT64", "seats": "INT64", "adoption_rate": "FLOAT64",
                           "cost_per_active_user_usd": "NUMERIC", "cost_change_pct": "FLOAT64",
                           "projected_month_end_cost_usd": "NUMERIC", "is_partial_month": "BOOL"},
    "ops.ingestion_runs": {"run_date": "DATE", "run_id": "STRING", "dag_id": "STRING", "task_id": "STRING",
                           "source": "STRING", "endpoint": "STRING", "interval_start": "DATE",
                           "interval_end": "DATE", "started_at": "TIMESTAMP", "finished_at": "TIMESTAMP",
                           "status": "STRING", "rows_loaded": "INT64", "rows_quarantined": "INT64",
                           "api_calls": "INT64", "retries": "INT64", "duration_s": "FLOAT64", "error": "STRING"},
    "ops.source_coverage": {"coverage_date": "DATE", "source": "STRING", "status": "STRING",
                            "row_count": "INT64", "checked_at": "TIMESTAMP", "run_id": "STRING"},
    "ops.dq_results": {"check_date": "DATE", "run_id": "STRING", "checked_at": "TIMESTAMP", "suite": "STRING",
                       "table_name": "STRING", "check_name": "STRING", "level": "STRING", "status": "STRING",
                       "observed": "STRING", "expected": "STRING", "details": "JSON", "sample_rows": "JSON"},
    "ops.quarantine": {"quarantined_date": "DATE", "quarantined_at": "TIMESTAMP", "run_id": "STRING",
                       "source": "STRING", "target_table": "STRING", "record_ref": "STRING", "reason": "STRING",
                       "payload": "STRING"},
}


@pytest.mark.parametrize("table", sorted(MINIMUM_COLUMNS))
def test_minimum_columns(table: str) -> None:
    contract = get_contract(table)
    actual = {c.name: c.type for c in contract.columns}
    missing_or_wrong = {n: (t, actual.get(n)) for n, t in MINIMUM_COLUMNS[table].items() if actual.get(n) != t}
    assert missing_or_wrong == {}


def test_nullable_where_vendors_leave_gaps() -> None:
    """Rows without an e-mail exist in the claude.ai export; overall spend predates 2026; ranges are open."""
    assert not get_contract("raw.claude_ai_usage").column("email").required
    assert not get_contract("raw.cursor_spend").column("overall_spend_usd").required
    assert not get_contract("raw.cursor_usage_events").column("email").required
    assert not get_contract("marts.monthly_cost_allocation").column("email").required
    for table in ("ref.people", "ref.api_key_owners", "ref.seat_prices"):
        valid_to = get_contract(table).column("valid_to")
        assert not valid_to.required
        assert "INCLUSIVE" in valid_to.description


# Every documented vendor field (vendor-apis.md §1-§3) -> the column that holds it.
VENDOR_FIELDS: dict[str, dict[str, str]] = {
    "raw.cursor_members": {"id": "member_id", "email": "email", "name": "name", "role": "role",
                           "isRemoved": "is_removed"},
    "raw.cursor_daily_usage": {
        "day": "usage_date", "date": "usage_date", "userId": "user_id", "email": "email", "isActive": "is_active",
        "totalLinesAdded": "total_lines_added", "totalLinesDeleted": "total_lines_deleted",
        "acceptedLinesAdded": "accepted_lines_added", "acceptedLinesDeleted": "accepted_lines_deleted",
        "totalApplies": "total_applies", "totalAccepts": "total_accepts", "totalRejects": "total_rejects",
        "totalTabsShown": "total_tabs_shown", "totalTabsAccepted": "total_tabs_accepted",
        "composerRequests": "composer_requests", "chatRequests": "chat_requests",
        "agentRequests": "agent_requests", "cmdkUsages": "cmdk_usages",
        "subscriptionIncludedReqs": "subscription_included_reqs", "apiKeyReqs": "api_key_reqs",
        "usageBasedReqs": "usage_based_reqs", "bugbotUsages": "bugbot_usages",
        "mostUsedModel": "most_used_model", "applyMostUsedExtension": "apply_most_used_extension",
        "tabMostUsedExtension": "tab_most_used_extension", "clientVersion": "client_version",
    },
    "raw.cursor_spend": {
        "userId": "user_id", "name": "name", "email": "email", "role": "role", "spendCents": "spend_usd",
        "overallSpendCents": "overall_spend_usd", "fastPremiumRequests": "fast_premium_requests",
        "hardLimitOverrideDollars": "hard_limit_override_usd", "monthlyLimitDollars": "monthly_limit_usd",
        "effectivePerUserLimitDollars": "effective_per_user_limit_usd",
        "subscriptionCycleStart": "subscription_cycle_start_date",
    },
    "raw.cursor_usage_events": {
        "timestamp": "event_at", "userEmail": "email", "serviceAccountId": "service_account_id",
        "serviceAccountName": "service_account_name", "cloudAgentId": "cloud_agent_id",
        "automationId": "automation_id", "conversationId": "conversation_id", "model": "model", "kind": "kind",
        "maxMode": "max_mode", "requestsCosts": "requests_costs", "isTokenBasedCall": "is_token_based_call",
        "isChargeable": "is_chargeable", "isHeadless": "is_headless", "isFreeBugbot": "is_free_bugbot",
        "tokenUsage.inputTokens": "input_tokens", "tokenUsage.outputTokens": "output_tokens",
        "tokenUsage.cacheWriteTokens": "cache_write_tokens", "tokenUsage.cacheReadTokens": "cache_read_tokens",
        "tokenUsage.totalCents": "token_cost_usd", "tokenUsage.discountPercentOff": "discount_percent_off",
        "chargedCents": "charged_usd", "cursorTokenFee": "cursor_token_fee_usd",
    },
    "raw.claude_code_usage": {
        "date": "usage_date", "actor.type": "actor_type", "actor.email_address": "actor_id",
        "actor.api_key_name": "actor_id", "organization_id": "organization_id", "customer_type": "customer_type",
        "subscription_type": "subscription_type", "terminal_type": "terminal_type",
        "core_metrics.num_sessions": "num_sessions", "core_metrics.lines_of_code.added": "lines_added",
        "core_metrics.lines_of_code.removed": "lines_removed",
        "core_metrics.commits_by_claude_code": "commits_by_claude_code",
        "core_metrics.pull_requests_by_claude_code": "pull_requests_by_claude_code",
        "tool_actions.<key>": "tool_actions.tool", "tool_actions.accepted": "tool_actions.accepted",
        "tool_actions.rejected": "tool_actions.rejected", "model_breakdown.model": "model_breakdown.model",
        "model_breakdown.tokens.input": "model_breakdown.input_tokens",
        "model_breakdown.tokens.output": "model_breakdown.output_tokens",
        "model_breakdown.tokens.cache_read": "model_breakdown.cache_read_tokens",
        "model_breakdown.tokens.cache_creation": "model_breakdown.cache_creation_tokens",
        "model_breakdown.estimated_cost.amount": "model_breakdown.estimated_cost_usd",
        "model_breakdown.estimated_cost.currency": "model_breakdown.estimated_cost_currency",
    },
    "raw.anthropic_costs": {
        "starting_at": "cost_date", "amount": "amount_usd", "currency": "currency", "workspace_id": "workspace_id",
        "description": "description", "cost_type": "cost_type", "context_window": "context_window",
        "model": "model", "service_tier": "service_tier", "token_type": "token_type",
        "inference_geo": "inference_geo", "speed": "speed",
    },
    "raw.anthropic_messages_usage": {
        "starting_at": "usage_date", "uncached_input_tokens": "uncached_input_tokens",
        "cache_creation.ephemeral_1h_input_tokens": "cache_creation_1h_input_tokens",
        "cache_creation.ephemeral_5m_input_tokens": "cache_creation_5m_input_tokens",
        "cache_read_input_tokens": "cache_read_input_tokens", "output_tokens": "output_tokens",
        "server_tool_use.web_search_requests": "web_search_requests", "api_key_id": "api_key_id",
        "workspace_id": "workspace_id", "model": "model", "service_tier": "service_tier",
        "context_window": "context_window", "inference_geo": "inference_geo", "account_id": "account_id",
        "service_account_id": "service_account_id", "speed": "speed",
    },
    "raw.anthropic_api_keys": {
        "id": "api_key_id", "name": "name", "created_at": "created_at", "created_by.id": "created_by_id",
        "created_by.type": "created_by_type", "expires_at": "expires_at", "partial_key_hint": "partial_key_hint",
        "status": "status", "workspace_id": "workspace_id",
    },
    "raw.anthropic_users": {"id": "user_id", "email": "email", "name": "name", "role": "role",
                            "added_at": "added_at"},
    "raw.anthropic_workspaces": {
        "id": "workspace_id", "name": "name", "created_at": "created_at", "archived_at": "archived_at",
        "display_color": "display_color", "tags": "tags", "data_residency": "data_residency",
    },
    "raw.claude_ai_usage": {
        "user_email": "email", "account_uuid": "account_uuid", "product": "product", "model": "model",
        "model_family": "model_family", "total_requests": "total_requests",
        "total_prompt_tokens": "total_prompt_tokens", "total_completion_tokens": "total_completion_tokens",
        "total_net_spend_usd": "net_spend_usd", "total_gross_spend_usd": "gross_spend_usd",
    },
}


@pytest.mark.parametrize("table", sorted(VENDOR_FIELDS))
def test_every_vendor_field_has_a_column_that_names_it(table: str) -> None:
    """Each documented vendor field lands in a column whose description cites it (so the mapping is written down)."""
    columns = dict(_walk(get_contract(table).columns))
    problems = []
    for vendor_field, column in VENDOR_FIELDS[table].items():
        if column not in columns:
            problems.append(f"{vendor_field} -> {column}: no such column")
            continue
        leaf = vendor_field.split(".")[-1]
        if leaf != "<key>" and f"`{leaf}`" not in columns[column].description and leaf not in columns[column].description:
            problems.append(f"{vendor_field} -> {column}: the description does not name the vendor field")
    assert problems == []


def test_every_raw_column_is_mapped_or_lineage() -> None:
    """The reverse direction: a raw column that no vendor field feeds must be one of the known derived ones."""
    derived = {
        "snapshot_date", "event_date", "event_key", "platform", "platform_rule", "workspace_name",
        "period_start", "period_end", "period_label", "exported_at", "source_row", "_ingested_at", "_run_id", "subscription_cycle_start_at",
        "estimated_cost_usd", "model_breakdown", "model_breakdown.estimated_cost_amount_raw",
    }
    unexplained = []
    for table, mapping in VENDOR_FIELDS.items():
        fed = set(mapping.values()) | {"tool_actions"}
        for path, c in _walk(get_contract(table).columns):
            if path in fed or path in derived or c.name.endswith("_raw"):
                continue
            unexplained.append(f"{table}.{path}")
    assert unexplained == []


# --------------------------------------------------------------------------- BigQuery limits


def test_within_bigquery_limits(contracts: dict[str, TableContract]) -> None:
    """Column descriptions ≤ 1024 characters, table descriptions ≤ 16384, names ≤ 300 (BigQuery API limits)."""
    for name, contract in contracts.items():
        assert 40 <= len(contract.description) <= 16384, name
    for path, c in _all_columns():
        assert len(c.description) <= 1024, path
        assert len(c.name) <= 300, path


def test_labels_are_valid_bigquery_labels(contracts: dict[str, TableContract]) -> None:
    label = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
    for name, contract in contracts.items():
        labels = contract.raw.get("labels", {})
        assert labels.get("layer") == contract.dataset, name
        assert all(label.match(k) and label.match(v) for k, v in labels.items()), name


# --------------------------------------------------------------------------- hostile contracts

VALID_DOC: dict[str, Any] = {
    "description": "A small valid table.",
    "timePartitioning": {"type": "DAY", "field": "usage_date"},
    "clustering": {"fields": ["email"]},
    "schema": {"fields": [
        {"name": "usage_date", "type": "DATE", "mode": "REQUIRED", "description": "UTC day."},
        {"name": "email", "type": "STRING", "mode": "REQUIRED", "description": "Lowercased e-mail."},
        {"name": "amount_usd", "type": "NUMERIC", "precision": "38", "scale": "9", "description": "USD."},
        {"name": "parts", "type": "RECORD", "mode": "REPEATED", "description": "Nested.", "fields": [
            {"name": "model", "type": "STRING", "description": "Model."},
        ]},
    ]},
    "x-primaryKey": ["usage_date", "email"],
}


def test_the_hostile_base_document_is_valid() -> None:
    contract = parse_contract("raw", "sample", copy.deepcopy(VALID_DOC))
    assert contract.qualified_name == "raw.sample"
    assert contract.column("amount_usd").precision == 38


def _mutate(fn: Any) -> dict[str, Any]:
    doc = copy.deepcopy(VALID_DOC)
    fn(doc)
    return doc


def _fields(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["schema"]["fields"]


HOSTILE = {
    "unknown top-level key": (lambda d: d.update(requirePartitionFilter=True), "unknown top-level key"),
    "unknown field key": (lambda d: _fields(d)[1].update(policyTags={}), "unknown key"),
    "unknown nested field key": (lambda d: _fields(d)[3]["fields"][0].update(defaultValueExpression="'x'"),
                                 "unknown key"),
    "NUMERIC(40,12)": (lambda d: _fields(d)[2].update(precision="40", scale="12"), "outside BigQuery's bounds"),
    "NUMERIC(38,10)": (lambda d: _fields(d)[2].update(scale="10"), "outside BigQuery's bounds"),
    "missing column description": (lambda d: _fields(d)[1].pop("description"), "needs a description"),
    "empty nested description": (lambda d: _fields(d)[3]["fields"][0].update(description=""), "needs a description"),
    "missing table description": (lambda d: d.pop("description"), "needs a description"),
    "duplicate column": (lambda d: _fields(d).append(dict(_fields(d)[1])), "duplicate column"),
    "partition on a STRING": (lambda d: d["timePartitioning"].update(field="email"), "partition field"),
    "partition on a missing column": (lambda d: d["timePartitioning"].update(field="nope"), "partition field"),
    "five clustering fields": (lambda d: d["clustering"].update(fields=["email"] * 5), "clustering"),
    "clustering on a missing column": (lambda d: d["clustering"].update(fields=["team"]), "clustering"),
    "key on a missing column": (lambda d: d.update({"x-primaryKey": ["usage_date", "team"]}), "x-primaryKey"),
    "unknown type": (lambda d: _fields(d)[1].update(type="VARCHAR"), "unknown type"),
    "unknown mode": (lambda d: _fields(d)[1].update(mode="OPTIONAL"), "mode"),
    "RECORD without fields": (lambda d: _fields(d)[3].pop("fields"), "RECORD needs fields"),
    "camelCase name": (lambda d: _fields(d)[1].update(name="userEmail"), "snake_case"),
    "precision on a STRING": (lambda d: _fields(d)[1].update(precision="10"), "precision/scale"),
    "no columns": (lambda d: d["schema"].update(fields=[]), "schema.fields is empty"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_contract_is_rejected(case: str) -> None:
    mutation, message = HOSTILE[case]
    with pytest.raises(ContractError, match=re.escape(message)):
        parse_contract("raw", "sample", _mutate(mutation))


def test_unknown_dataset_is_rejected() -> None:
    with pytest.raises(ContractError, match="dataset must be one of"):
        parse_contract("staging", "sample", copy.deepcopy(VALID_DOC))


def test_invalid_json_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "raw" / "broken.json"
    path.parent.mkdir()
    path.write_text('{"description": "x", "schema": {"fields": [}')
    with pytest.raises(ContractError, match="invalid JSON"):
        load_contract_file(path)


def test_a_hostile_file_among_good_ones_fails_the_whole_load(tmp_path: Path) -> None:
    """load_contracts must not skip a broken contract silently."""
    for dataset in DATASETS:
        (tmp_path / dataset).mkdir()
    (tmp_path / "raw" / "good.json").write_text(json.dumps(VALID_DOC))
    assert set(load_contracts(tmp_path)) == {"raw.good"}
    other = tmp_path / "other"
    for dataset in DATASETS:
        (other / dataset).mkdir(parents=True)
    (other / "raw" / "good.json").write_text(json.dumps(VALID_DOC))
    (other / "ref" / "bad.json").write_text(json.dumps(_mutate(HOSTILE["NUMERIC(40,12)"][0])))
    with pytest.raises(ContractError, match=r"ref/bad\.json"):
        load_contracts(other)
