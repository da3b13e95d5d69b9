"""Unit tests of the cost-report platform rules (ai_usage.sources.platform): evaluation order, matching,
settings and their configuration errors."""

from __future__ import annotations

import re

import pytest

from ai_usage.exceptions import ConfigurationError
from ai_usage.sources.anthropic import parse_cost_report
from ai_usage.sources.common import split
from ai_usage.sources.platform import (
    API,
    CLAUDE_CODE,
    PlatformRules,
    parse_patterns_setting,
    parse_workspaces_setting,
)

CC_ID = "wrkspc_01ClaudeCode"
PRODUCT_ID = "wrkspc_01Product"
TOOLING_ID = "wrkspc_01Tooling"


def _row(workspace_id: str | None, description: str | None = "Claude Sonnet 4 Usage - Input Tokens") -> dict:
    return {"workspace_id": workspace_id, "description": description}


def _everything() -> PlatformRules:
    """A rule set where every rule could match the same row, to test which one wins."""
    return PlatformRules(
        claude_code_workspace_ids={CC_ID},
        claude_code_workspace_names={"Claude Code"},
        developer_tooling_workspaces={TOOLING_ID, "Research Sandbox", "Default Workspace"},
        description_patterns=[(r"(?i)web search", "search"), (r"Sonnet", "sonnet_api"), (r".*", "catch_all")],
    )


def test_evaluation_order_first_match_wins() -> None:
    rules = _everything()
    # 1. workspace id beats the name, the sheet and the patterns
    assert rules.classify(_row(CC_ID), "Research Sandbox") == (CLAUDE_CODE, f"workspace:{CC_ID}")
    # 2. workspace name (case-insensitive) beats the sheet and the patterns
    assert rules.classify(_row(TOOLING_ID), "claude CODE") == (CLAUDE_CODE, "workspace_name:claude CODE")
    # 3. the sheet's developer-tooling workspace (by id) beats the patterns
    assert rules.classify(_row(TOOLING_ID), "Tooling") == (CLAUDE_CODE, "sheet:is_developer_tooling")
    # ... or by name, case-insensitively
    assert rules.classify(_row(PRODUCT_ID), "research sandbox") == (CLAUDE_CODE, "sheet:is_developer_tooling")
    # 4. description patterns in configured order
    assert rules.classify(_row(PRODUCT_ID, "Web Search Usage"), "Product") == ("search", "description:(?i)web search")
    assert rules.classify(_row(PRODUCT_ID), "Product") == ("sonnet_api", "description:Sonnet")
    assert rules.classify(_row(PRODUCT_ID, "Code Execution Usage"), "Product") == ("catch_all", "description:.*")
    # 5. default
    assert rules.classify(_row(PRODUCT_ID, None), "Product") == (API, "default")


def test_default_workspace_is_api_unless_a_rule_says_otherwise() -> None:
    plain = PlatformRules(claude_code_workspace_names={"Claude Code"})
    assert plain.classify(_row(None), "Default Workspace") == (API, "default")
    assert plain.classify(_row(None), None) == (API, "default")
    marked = PlatformRules(developer_tooling_workspaces={"default workspace"})
    assert marked.classify(_row(None), "Default Workspace") == (CLAUDE_CODE, "sheet:is_developer_tooling")


def test_names_do_not_match_ids_and_partial_names_do_not_match() -> None:
    rules = PlatformRules(claude_code_workspace_ids={CC_ID}, claude_code_workspace_names={"Claude Code"})
    assert rules.classify(_row("wrkspc_other"), "Claude Code Experiments") == (API, "default")
    assert rules.classify(_row("wrkspc_other"), CC_ID) == (API, "default")
    assert rules.classify(_row("wrkspc_other"), "  Claude Code  ") == (CLAUDE_CODE, "workspace_name:  Claude Code  ")


def test_platform_values_and_default_are_configurable() -> None:
    rules = PlatformRules(default_platform="product", developer_tooling_platform="dev_api",
                          developer_tooling_workspaces={TOOLING_ID})
    assert rules.classify(_row(PRODUCT_ID), "Product") == ("product", "default")
    assert rules.classify(_row(TOOLING_ID), None) == ("dev_api", "sheet:is_developer_tooling")


def test_constructor_normalises_inputs() -> None:
    rules = PlatformRules(claude_code_workspace_ids=[" wrkspc_a ", ""], claude_code_workspace_names=("X",),
                          description_patterns=[(re.compile("abc"), "p")])
    assert rules.claude_code_workspace_ids == frozenset({"wrkspc_a"})
    assert rules.claude_code_workspace_names == frozenset({"X"})
    assert rules.description_patterns[0][0].pattern == "abc"
    assert PlatformRules().classify(_row(CC_ID), "Claude Code") == (API, "default")   # no implicit workspace


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"description_patterns": [("(unclosed", "api")]}, "not a valid regular expression"),
        ({"description_patterns": [("", "api")]}, "non-empty regular expression"),
        ({"description_patterns": [("x", "Not A Platform")]}, "lowercase identifier"),
        ({"default_platform": ""}, "default_platform"),
        ({"developer_tooling_platform": "Claude Code"}, "developer_tooling_platform"),
    ],
)
def test_constructor_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PlatformRules(**kwargs)


# --------------------------------------------------------------------------- settings


def test_from_env_defaults() -> None:
    rules = PlatformRules.from_env(environ={})
    assert rules.claude_code_workspace_names == frozenset({"Claude Code"})
    assert rules.claude_code_workspace_ids == frozenset()
    assert rules.description_patterns == ()
    assert rules.classify(_row("wrkspc_x"), "Claude Code") == (CLAUDE_CODE, "workspace_name:Claude Code")
    assert rules.classify(_row("wrkspc_x"), "Backend") == (API, "default")
    assert PlatformRules.from_env(environ={"AI_USAGE_CLAUDE_CODE_WORKSPACES": "  "}) == rules


def test_from_env_reads_settings_and_sheet_workspaces() -> None:
    env = {
        "AI_USAGE_CLAUDE_CODE_WORKSPACES": f"{CC_ID}, Dev Tools ,,Claude Code",
        "AI_USAGE_PLATFORM_PATTERNS": '[["(?i)^code execution", "api"], ["Batch", "batch_jobs"]]',
    }
    rules = PlatformRules.from_env(developer_tooling_workspaces=[TOOLING_ID], environ=env)
    assert rules.claude_code_workspace_ids == frozenset({CC_ID})
    assert rules.claude_code_workspace_names == frozenset({"Dev Tools", "Claude Code"})
    assert rules.developer_tooling_workspaces == frozenset({TOOLING_ID})
    assert [(p.pattern, plat) for p, plat in rules.description_patterns] == [
        ("(?i)^code execution", "api"), ("Batch", "batch_jobs")]
    assert rules.classify(_row(PRODUCT_ID, "Claude Batch Usage"), "P") == ("batch_jobs", "description:Batch")
    assert rules.classify(_row(TOOLING_ID), "T") == (CLAUDE_CODE, "sheet:is_developer_tooling")


def test_from_env_uses_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_USAGE_CLAUDE_CODE_WORKSPACES", "wrkspc_fromenv")
    monkeypatch.delenv("AI_USAGE_PLATFORM_PATTERNS", raising=False)
    rules = PlatformRules.from_env()
    assert rules.claude_code_workspace_ids == frozenset({"wrkspc_fromenv"})
    assert rules.claude_code_workspace_names == frozenset()


def test_workspaces_setting_dash_disables() -> None:
    assert parse_workspaces_setting("-") == (set(), set())
    assert parse_workspaces_setting(None) == (set(), {"Claude Code"})
    assert parse_workspaces_setting("wrkspc_A,B") == ({"wrkspc_A"}, {"B"})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "AI_USAGE_PLATFORM_PATTERNS is not valid JSON"),
        ('{"x": "api"}', "AI_USAGE_PLATFORM_PATTERNS must be a JSON list"),
        ('[["x"]]', r"AI_USAGE_PLATFORM_PATTERNS item 0: \['x'\] is not a \[regex, platform\] pair"),
        ('[["ok", "api"], "x"]', "AI_USAGE_PLATFORM_PATTERNS item 1"),
        ('[["(bad", "api"]]', "AI_USAGE_PLATFORM_PATTERNS item 0: pattern '\\(bad' is not a valid regular expression"),
        ('[["x", "API!"]]', "AI_USAGE_PLATFORM_PATTERNS item 0: platform 'API!'"),
        ('[[1, "api"]]', "AI_USAGE_PLATFORM_PATTERNS item 0: pattern 1"),
    ],
)
def test_patterns_setting_errors_name_the_setting(raw: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_patterns_setting(raw)
    with pytest.raises(ConfigurationError, match="AI_USAGE_PLATFORM_PATTERNS"):
        PlatformRules.from_env(environ={"AI_USAGE_PLATFORM_PATTERNS": raw})


def test_patterns_setting_blank_is_none() -> None:
    assert parse_patterns_setting("") == [] and parse_patterns_setting(None) == []
    assert parse_patterns_setting("[]") == []


# --------------------------------------------------------------------------- through the cost-report parser


def test_cost_report_rows_carry_platform_and_rule() -> None:
    payload = {"data": [{"starting_at": "2025-08-01T00:00:00Z", "ending_at": "2025-08-02T00:00:00Z", "results": [
        {"amount": "100", "currency": "USD", "workspace_id": CC_ID, "description": "Claude Opus 4 Usage"},
        {"amount": "200", "currency": "USD", "workspace_id": PRODUCT_ID, "description": "Claude Opus 4 Usage"},
        {"amount": "300", "currency": "USD", "workspace_id": TOOLING_ID, "description": "Claude Opus 4 Usage"},
        {"amount": "400", "currency": "USD", "workspace_id": None, "description": "Web Search Usage"},
    ]}]}
    rules = PlatformRules.from_env(developer_tooling_workspaces=["Tooling"], environ={
        "AI_USAGE_PLATFORM_PATTERNS": '[["(?i)web search", "search"]]'})
    names = {None: "Default Workspace", CC_ID: "Claude Code", PRODUCT_ID: "Product", TOOLING_ID: "Tooling"}
    rows, rejected = split(parse_cost_report(payload, rules=rules, workspace_names=names))
    assert rejected == []
    assert [(r["workspace_name"], r["platform"], r["platform_rule"]) for r in rows] == [
        ("Claude Code", "claude_code", "workspace_name:Claude Code"),
        ("Product", "api", "default"),
        ("Tooling", "claude_code", "sheet:is_developer_tooling"),
        ("Default Workspace", "search", "description:(?i)web search"),
    ]
