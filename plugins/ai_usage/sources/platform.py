"""Platform rules: which part of the Anthropic bill is developer tooling (DESIGN.md §4, platform filtering).

An organisation's Anthropic cost report also pays for product workloads that are not developer tooling.
Each cost row gets a `platform` ('claude_code' for developer tooling through Claude Code, 'api' for
everything else, or a value a description pattern names) and the `platform_rule` that decided it, so every
classification can be audited. Only developer-tool platforms flow into the allocation marts; the whole
bill stays in `raw.anthropic_costs` for reconciliation with the invoice.

Rules are evaluated in this order; the first match wins:

1. ``workspace:<id>``           the row's workspace id is a configured Claude Code workspace id;
2. ``workspace_name:<name>``    the row's workspace name is a configured Claude Code workspace name
                                (case-insensitive; Claude Code's Console login creates a workspace named
                                "Claude Code", the default);
3. ``sheet:is_developer_tooling`` the workspace (id, or name case-insensitively, 'Default Workspace' for
                                the default one) is marked is_developer_tooling in the Sheet's
                                api_key_owners tab → `developer_tooling_platform` ('claude_code');
4. ``description:<regex>``      the first configured pattern that `re.search`es the row's description
                                (add ``(?i)`` for case-insensitive matching) → its platform;
5. ``default``                  `default_platform` ('api'). The default workspace (id NULL) is 'api' too
                                unless a rule above says otherwise.

Settings (read at task run time, never at import):

- ``AI_USAGE_CLAUDE_CODE_WORKSPACES``: comma-separated workspace ids (``wrkspc_…``) or names; default
  ``Claude Code``. Set it to ``-`` to configure no Claude Code workspace at all.
- ``AI_USAGE_PLATFORM_PATTERNS``: a JSON list of ``[regex, platform]`` pairs, e.g.
  ``[["(?i)^code execution", "api"]]``; default none.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ai_usage.exceptions import ConfigurationError

CLAUDE_CODE = "claude_code"
API = "api"
DEFAULT_WORKSPACE_NAME = "Default Workspace"
DEFAULT_CLAUDE_CODE_WORKSPACES = "Claude Code"
WORKSPACES_SETTING = "AI_USAGE_CLAUDE_CODE_WORKSPACES"
PATTERNS_SETTING = "AI_USAGE_PLATFORM_PATTERNS"

_PLATFORM = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_WORKSPACE_ID = re.compile(r"^wrkspc_[A-Za-z0-9]+$")


def _check_platform(platform: Any, where: str) -> str:
    if not isinstance(platform, str) or not _PLATFORM.match(platform):
        raise ConfigurationError(
            f"{where}: platform {platform!r} must be a lowercase identifier such as 'claude_code' or 'api'."
        )
    return platform


def _compile(pattern: str | re.Pattern[str], where: str) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        return pattern
    if not isinstance(pattern, str) or not pattern:
        raise ConfigurationError(f"{where}: pattern {pattern!r} must be a non-empty regular expression string.")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigurationError(f"{where}: pattern {pattern!r} is not a valid regular expression: {exc}") from None


@dataclass(frozen=True)
class PlatformRules:
    """The configured classification of cost-report rows; see the module docstring for the order.

    Any iterables may be passed; they are normalised to frozensets (trimmed, blanks dropped) and the
    patterns compiled, so a bad regex fails here, at configuration time. Constructed directly, no
    workspace is a Claude Code workspace; `from_env` applies the documented default ('Claude Code').
    """

    claude_code_workspace_ids: frozenset[str] = frozenset()
    claude_code_workspace_names: frozenset[str] = frozenset()
    developer_tooling_workspaces: frozenset[str] = frozenset()   # ids or names, from the Sheet
    description_patterns: tuple[tuple[re.Pattern[str], str], ...] = ()
    default_platform: str = API
    developer_tooling_platform: str = CLAUDE_CODE
    _names_lower: frozenset[str] = field(init=False, repr=False, compare=False, default=frozenset())
    _tooling_lower: frozenset[str] = field(init=False, repr=False, compare=False, default=frozenset())

    def __post_init__(self) -> None:
        def clean(values: Iterable[str]) -> frozenset[str]:
            return frozenset(v.strip() for v in values if isinstance(v, str) and v.strip())

        set_ = object.__setattr__   # frozen dataclass: normalise once, here
        set_(self, "claude_code_workspace_ids", clean(self.claude_code_workspace_ids))
        set_(self, "claude_code_workspace_names", clean(self.claude_code_workspace_names))
        set_(self, "developer_tooling_workspaces", clean(self.developer_tooling_workspaces))
        set_(self, "description_patterns", tuple(
            (_compile(p, f"description pattern #{i}"), _check_platform(plat, f"description pattern #{i}"))
            for i, (p, plat) in enumerate(self.description_patterns)
        ))
        _check_platform(self.default_platform, "default_platform")
        _check_platform(self.developer_tooling_platform, "developer_tooling_platform")
        set_(self, "_names_lower", frozenset(n.casefold() for n in self.claude_code_workspace_names))
        set_(self, "_tooling_lower", frozenset(t.casefold() for t in self.developer_tooling_workspaces))

    def classify(self, row: Mapping[str, Any], workspace_name: str | None) -> tuple[str, str]:
        """(platform, rule) of one cost row (uses its `workspace_id` and `description`)."""
        workspace_id = row.get("workspace_id")
        if workspace_id is not None and workspace_id in self.claude_code_workspace_ids:
            return CLAUDE_CODE, f"workspace:{workspace_id}"
        if workspace_name is not None and workspace_name.strip().casefold() in self._names_lower:
            return CLAUDE_CODE, f"workspace_name:{workspace_name}"
        if (workspace_id is not None and workspace_id in self.developer_tooling_workspaces) or (
            workspace_name is not None and workspace_name.strip().casefold() in self._tooling_lower
        ):
            return self.developer_tooling_platform, "sheet:is_developer_tooling"
        description = row.get("description")
        if description is not None:
            for pattern, platform in self.description_patterns:
                if pattern.search(description):
                    return platform, f"description:{pattern.pattern}"
        return self.default_platform, "default"

    @classmethod
    def from_env(
        cls,
        developer_tooling_workspaces: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> PlatformRules:
        """Rules from the settings (module docstring) plus the Sheet's developer-tooling workspaces."""
        env = os.environ if environ is None else environ
        ids, names = parse_workspaces_setting(env.get(WORKSPACES_SETTING))
        return cls(
            claude_code_workspace_ids=frozenset(ids),
            claude_code_workspace_names=frozenset(names),
            developer_tooling_workspaces=frozenset(developer_tooling_workspaces),
            description_patterns=tuple(parse_patterns_setting(env.get(PATTERNS_SETTING))),
        )


def parse_workspaces_setting(raw: str | None) -> tuple[set[str], set[str]]:
    """``AI_USAGE_CLAUDE_CODE_WORKSPACES`` → (ids, names); unset/blank → the 'Claude Code' name; '-' → none."""
    if raw is None or not raw.strip():
        raw = DEFAULT_CLAUDE_CODE_WORKSPACES
    if raw.strip() == "-":
        return set(), set()
    ids: set[str] = set()
    names: set[str] = set()
    for part in raw.split(","):
        entry = part.strip()
        if not entry:
            continue
        (ids if _WORKSPACE_ID.match(entry) else names).add(entry)
    return ids, names


def parse_patterns_setting(raw: str | None) -> list[tuple[re.Pattern[str], str]]:
    """``AI_USAGE_PLATFORM_PATTERNS`` (JSON list of [regex, platform]) → compiled pairs; errors name the setting."""
    if raw is None or not raw.strip():
        return []
    forms = 'a JSON list of [regex, platform] pairs, e.g. [["(?i)^code execution", "api"]]'
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{PATTERNS_SETTING} is not valid JSON ({exc}); expected {forms}.") from None
    if not isinstance(doc, list):
        raise ConfigurationError(f"{PATTERNS_SETTING} must be {forms}; got a JSON {type(doc).__name__}.")
    pairs: list[tuple[re.Pattern[str], str]] = []
    for i, item in enumerate(doc):
        where = f"{PATTERNS_SETTING} item {i}"
        if not (isinstance(item, list) and len(item) == 2):
            raise ConfigurationError(f"{where}: {item!r} is not a [regex, platform] pair; expected {forms}.")
        pairs.append((_compile(item[0], where), _check_platform(item[1], where)))
    return pairs
