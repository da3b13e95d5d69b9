"""Unit tests of the Anthropic Console CSV parsers (cost, Claude Code usage) on the shipped samples
(include/inbox_samples) and on hostile input: exact money in both units, platform rules, actors."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ai_usage.sources.anthropic_csv import parse_claude_code_csv, parse_cost_csv
from ai_usage.sources.common import Rejected, split
from ai_usage.sources.csv_table import CsvFormatError, decode, read_csv
from ai_usage.sources.platform import PlatformRules
from tests.test_sources_common import assert_fits_contract

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "include" / "inbox_samples" / "anthropic"
TODAY = date(2026, 11, 6)
CC_WS, PRODUCT_WS = "wrkspc_01ClaudeCode0000000001", "wrkspc_01ProductBackend00000002"
NAMES = {CC_WS: "Claude Code", PRODUCT_WS: "Product Backend"}
RULES = PlatformRules(claude_code_workspace_names={"Claude Code"})


def costs(text: str, *, rules: PlatformRules = RULES, names: dict | None = NAMES,
          name: str = "c.csv") -> tuple[list[dict], list[Rejected]]:
    return split(parse_cost_csv(read_csv(text, name), today=TODAY, rules=rules, workspace_names=names))


def claude_code(text: str, name: str = "cc.csv") -> tuple[list[dict], list[Rejected]]:
    return split(parse_claude_code_csv(read_csv(text, name), today=TODAY))


def sample(kind: str, suffix: str) -> tuple[str, str]:
    path = next(p for p in (SAMPLES / kind).glob("*.csv") if p.stem.endswith(suffix))
    return decode(path.read_bytes(), path.name), path.name


def reasons(rejected: list[Rejected], name: str) -> dict[str, str]:
    return {r.ref.removeprefix(f"file {name} "): r.reason for r in rejected}


# --------------------------------------------------------------------------- cost: the valid sample


def test_cost_sample_loads_exact_dollars_with_platforms() -> None:
    text, name = sample("cost_report", "costs")
    rows, rejected = costs(text, name=name)
    assert rejected == []
    assert_fits_contract("raw.anthropic_costs", rows)
    got = [(r["cost_date"], r["workspace_id"], r["description"], r["amount_usd"], r["amount_cents_raw"],
            r["platform"], r["platform_rule"], r["workspace_name"]) for r in rows]
    assert got == [
        (date(2026, 11, 2), CC_WS, "Claude Sonnet 4 Usage - Input Tokens", Decimal("12.3456789"), "1234.56789",
         "claude_code", "workspace_name:Claude Code", "Claude Code"),
        (date(2026, 11, 2), CC_WS, "Claude Sonnet 4 Usage - Output Tokens", Decimal("48.10"), "4810",
         "claude_code", "workspace_name:Claude Code", "Claude Code"),
        (date(2026, 11, 2), PRODUCT_WS, "Claude Haiku 3.5 Usage - Input Tokens", Decimal("0.000000125"),
         "0.0000125", "api", "default", "Product Backend"),
        (date(2026, 11, 2), None, "Web Search Usage", Decimal("1.00"), "100", "api", "default", "Default Workspace"),
        (date(2026, 11, 3), CC_WS, "Claude Sonnet 4 Usage - Input Tokens", Decimal("9.99"), "999",
         "claude_code", "workspace_name:Claude Code", "Claude Code"),
        (date(2026, 11, 3), PRODUCT_WS, "Code Execution Usage", Decimal("0.05"), "5", "api", "default",
         "Product Backend"),
    ]
    first = rows[0]
    assert (first["cost_type"], first["context_window"], first["model"], first["service_tier"], first["token_type"],
            first["currency"], first["inference_geo"], first["speed"]) == (
        "tokens", "0-200k", "claude-sonnet-4-20250514", "standard", "uncached_input_tokens", "USD", None, None)
    assert sum((r["amount_usd"] for r in rows), Decimal(0)) == Decimal("71.485679025")


@pytest.mark.parametrize(
    ("dollars", "cents", "usd"),
    [
        ("12.3456789", "1234.56789", "12.3456789"),
        ("1.2378912", "123.78912", "1.2378912"),   # the API's own example (vendor-apis.md §1.3)
        ("0.01", "1", "0.01"),
        ("1234567890.123456789", "123456789012.3456789", "1234567890.123456789"),
        ("0", "0", "0"),
        ("0.0000000015", "0.00000015", "0.000000002"),   # beyond NUMERIC's 9 decimals: half-even, as the API path
    ],
)
def test_dollars_and_cents_columns_give_the_same_exact_usd(dollars: str, cents: str, usd: str) -> None:
    head = "date,workspace_id,description,{}\n2026-11-01,{},Claude Sonnet 4 Usage - Input Tokens,{}\n"
    by_dollars, r1 = costs(head.format("amount_usd", CC_WS, dollars))
    by_cents, r2 = costs(head.format("Amount Cents", CC_WS, cents))
    assert r1 == r2 == []
    assert by_dollars[0]["amount_usd"] == by_cents[0]["amount_usd"] == Decimal(usd)
    assert isinstance(by_dollars[0]["amount_usd"], Decimal)
    assert by_cents[0]["amount_cents_raw"] == cents          # verbatim
    assert Decimal(by_dollars[0]["amount_cents_raw"]) == Decimal(cents)   # the dollars shifted, exactly
    assert "E" not in by_dollars[0]["amount_cents_raw"]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("date,workspace,description,amount", r"column 'amount' is refused: a bare 'amount' does not say its unit"),
        ("date,workspace,description,amount_usd,amount_cents", r"columns \['amount_usd', 'amount_cents'\] give the same value in different units"),
        ("date,description,amount_usd", r"no required column 'workspace_id' \(workspace_id\) or 'workspace' \(workspace / workspace_name\)"),
        ("date,workspace,amount_usd", r"no required column 'description'"),
        ("date,workspace,description,model", r"no required column 'amount_usd' .* or 'amount_cents'"),
    ],
)
def test_cost_header_problems_fail_the_file(header: str, message: str) -> None:
    with pytest.raises(CsvFormatError, match=r"file c\.csv: .*" + message):
        costs(f"{header}\n2026-11-01,Claude Code,x,1\n")


def test_workspace_by_name_id_or_default_and_never_guessed() -> None:
    text = (
        "date,workspace_id,workspace,description,amount_usd\n"
        f"2026-11-01,,claude code,a,1\n"                 # name, any case → id from the listing
        f"2026-11-01,{PRODUCT_WS},Old Name,b,1\n"         # id wins; the listing names it
        f"2026-11-01,wrkspc_01Gone,Archived WS,c,1\n"     # id the listing no longer knows: the file's name
        "2026-11-01,,,d,1\n"                              # blank: the default workspace
        "2026-11-01,,DEFAULT WORKSPACE,e,1\n"
        "2026-11-01,,Marketing,f,1\n"                     # unknown name: rejected, not guessed
        "2026-11-01,,Twin,g,1\n"                          # a name two workspaces share
    )
    names = {**NAMES, "wrkspc_01TwinA": "Twin", "wrkspc_01TwinB": "twin"}
    rows, rejected = costs(text, names=names)
    assert [(r["description"], r["workspace_id"], r["workspace_name"]) for r in rows] == [
        ("a", CC_WS, "Claude Code"), ("b", PRODUCT_WS, "Product Backend"), ("c", "wrkspc_01Gone", "Archived WS"),
        ("d", None, "Default Workspace"), ("e", None, "Default Workspace"),
    ]
    assert reasons(rejected, "c.csv") == {
        "row 7": "workspace: 'Marketing' is not in the latest workspaces listing (raw.anthropic_workspaces); "
                 "give its workspace_id instead",
        "row 8": "workspace: 'Twin' names 2 workspaces; give the workspace_id instead",
    }


def test_cost_rows_go_through_the_same_platform_rules_as_the_api() -> None:
    rules = PlatformRules(claude_code_workspace_ids={CC_WS}, developer_tooling_workspaces={"Product Backend"},
                          description_patterns=(("(?i)^web search", "search"),))
    text = ("date,workspace_id,description,amount_cents\n"
            f"2026-11-01,{CC_WS},x,1\n2026-11-01,{PRODUCT_WS},y,1\n2026-11-01,,Web Search Usage,1\n2026-11-01,,z,1\n")
    rows, _ = costs(text, rules=rules)
    assert [(r["platform"], r["platform_rule"]) for r in rows] == [
        ("claude_code", f"workspace:{CC_WS}"), ("claude_code", "sheet:is_developer_tooling"),
        ("search", "description:(?i)^web search"), ("api", "default")]


def test_cost_hostile_sample_quarantines_with_file_and_row() -> None:
    text, name = sample("cost_report", "hostile")
    rows, rejected = costs(text, name=name)
    assert [(r["description"], r["workspace_name"], r["amount_usd"], r["platform"]) for r in rows] == [
        ("Claude Sonnet 4 Usage - Input Tokens", "Claude Code", Decimal("3.50"), "claude_code"),
        ("Code Execution Usage", "Default Workspace", Decimal("0.75"), "api"),
    ]
    got = reasons(rejected, name)
    assert got.pop("row 7").startswith("duplicate key (cost_date, workspace_id, description")
    assert got == {
        "row 3": "currency: 'EUR' is not USD (only USD is stored; never converted)",
        "row 4": "amount_usd: '-1.00' is negative",
        "row 5": "amount_usd: '1,234.50' is not a number",
        "row 6": "workspace: 'Marketing Experiments' is not in the latest workspaces listing "
                 "(raw.anthropic_workspaces); give its workspace_id instead",
        "row 8": "amount: missing (blank cell)",
        "row 9": "date: '04.11.2026' is not a date (expected YYYY-MM-DD, the UTC day)",
        "row 10": "amount_usd: '$2.00' is not a number",
    }


# --------------------------------------------------------------------------- Claude Code usage


def test_claude_code_sample_loads_actors_tools_and_estimates() -> None:
    text, name = sample("claude_code", "usage")
    rows, rejected = claude_code(text, name)
    assert rejected == []
    assert_fits_contract("raw.claude_code_usage", rows)
    ada = rows[0]
    assert ada == {
        "usage_date": date(2026, 11, 2), "actor_type": "user_actor", "actor_id": "ada.lovelace@example.com",
        "terminal_type": "vscode", "customer_type": "subscription", "subscription_type": "enterprise",
        "organization_id": None, "num_sessions": 5, "lines_added": 1543, "lines_removed": 892,
        "commits_by_claude_code": 12, "pull_requests_by_claude_code": 2,
        "tool_actions": [{"tool": "edit_tool", "accepted": 45, "rejected": 5},
                         {"tool": "multi_edit_tool", "accepted": 12, "rejected": 2},
                         {"tool": "write_tool", "accepted": 8, "rejected": 1}],
        "model_breakdown": [], "estimated_cost_usd": Decimal("10.25"),
    }
    grace, bot, ada_3 = rows[1:]
    assert (grace["actor_id"], grace["terminal_type"], [t["tool"] for t in grace["tool_actions"]]) == (
        "grace.hopper@example.com", "iTerm.app", ["edit_tool", "write_tool"])  # blank tool cells: no entry
    assert (bot["actor_type"], bot["actor_id"], bot["terminal_type"], bot["customer_type"], bot["subscription_type"],
            bot["estimated_cost_usd"]) == ("api_actor", "ci-review-bot", "unknown", "api", None, Decimal("4.2"))
    assert ada_3["estimated_cost_usd"] == Decimal("3.333333333")


def test_claude_code_estimate_in_cents_or_dollars() -> None:
    head = "date,email,customer_type,{}\n2026-11-01,a@example.com,api,{}\n"
    assert claude_code(head.format("estimated_cost_cents", "1025"))[0][0]["estimated_cost_usd"] == Decimal("10.25")
    assert claude_code(head.format("Estimated Cost USD", "10.25"))[0][0]["estimated_cost_usd"] == Decimal("10.25")
    assert claude_code(head.format("estimated_cost_cents", "250.5"))[0][0]["estimated_cost_usd"] == Decimal("2.505")
    assert claude_code(head.format("sessions", "1"))[0][0]["estimated_cost_usd"] is None
    with pytest.raises(CsvFormatError, match="refused: a bare 'estimated_cost'"):
        claude_code(head.format("Estimated Cost", "10.25"))
    with pytest.raises(CsvFormatError, match="give the same value in different units"):
        claude_code("date,email,customer_type,estimated_cost_usd,estimated_cost_cents\n")
    with pytest.raises(CsvFormatError, match=r"no required column 'email' .* or 'api_key_name'"):
        claude_code("date,customer_type,sessions\n2026-11-01,api,1\n")
    with pytest.raises(CsvFormatError, match=r"columns 'edit_tool_accepted' and 'Edit Tool Accepted' are the same"):
        claude_code("date,email,customer_type,edit_tool_accepted,Edit Tool Accepted\n")


def test_claude_code_hostile_sample() -> None:
    text, name = sample("claude_code", "hostile")
    rows, rejected = claude_code(text, name)
    assert [(r["actor_type"], r["actor_id"], r["estimated_cost_usd"]) for r in rows] == [
        ("user_actor", "ada.lovelace@example.com", Decimal("10.25")), ("api_actor", "ci-bot", Decimal("2.505"))]
    assert rows[1]["tool_actions"] == []
    got = reasons(rejected, name)
    assert got.pop("row 8").startswith("duplicate key (usage_date, actor_type, actor_id, terminal_type, customer_type)")
    assert got == {
        "row 3": "actor: both an e-mail and an API key name; give one actor per row",
        "row 4": "actor: missing (neither an e-mail nor an API key name)",
        "row 5": "email: 'alan@turing' is not an e-mail address",
        "row 6": "customer_type: missing",
        "row 7": "num_sessions: '-1' is negative",
        "row 9": "edit_tool_accepted: 'lots' is not a number",
        "row 10": "estimated_cost_cents: '-10' is negative",
        "row 11": "date: '2026/11/04' is not a date (expected YYYY-MM-DD, the UTC day)",
    }
