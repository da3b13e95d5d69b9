"""Anthropic Console exports as CSV files (the manual fallback) → rows of raw.anthropic_costs and
raw.claude_code_usage.

The Console's CSV columns are not documented (vendor-apis.md §3.1 calls even its usage CSV's column list
uncertain), so this module defines the formats *we* accept (runbook/manual-csv-fallback.md). Column
names are those of the Admin API (https://platform.claude.com/docs/en/api/admin, vendor-apis.md §1.2,
§1.3) in any case and spacing; unknown columns are ignored.

Money columns must say their unit in their name, because both units occur in Anthropic's own files:
``amount_usd`` / ``estimated_cost_usd`` are dollars, ``amount_cents`` / ``estimated_cost_cents`` are cents
(as the API sends them). Both are converted exactly with Decimal; a bare ``amount`` column is refused.

Cost rows go through the same `PlatformRules` as the API's cost report, so a CSV row lands on the same
platform as the API row it stands in for. Claude Code rows have no per-model breakdown in a CSV:
`model_breakdown` is empty and the row's `estimated_cost_usd` is the file's figure, not a sum of models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from ai_usage.sources.anthropic import COST_DIMENSIONS, UNKNOWN_TERMINAL
from ai_usage.sources.common import (
    BadValue,
    KeySeen,
    ParseResult,
    Rejected,
    norm_email,
    require_date,
    to_count,
    to_str,
    usd_from_cents,
    usd_from_dollars,
)
from ai_usage.sources.csv_table import (
    Binding,
    Column,
    CsvFormat,
    CsvFormatError,
    CsvRow,
    CsvTable,
    bind,
    records,
    unit_shift,
)
from ai_usage.sources.cursor_csv import DATE_ALIASES, complete_day
from ai_usage.sources.platform import DEFAULT_WORKSPACE_NAME, PlatformRules

_BARE_AMOUNT = ("a bare 'amount' does not say its unit; name the column amount_usd (dollars) or "
                "amount_cents (cents, as the API reports them)")
_BARE_ESTIMATE = ("a bare 'estimated_cost' does not say its unit; name the column estimated_cost_usd "
                  "(dollars) or estimated_cost_cents (cents)")

# --------------------------------------------------------------------------- cost report

COST_FORMAT = CsvFormat(
    title="Anthropic cost CSV",
    columns=(
        Column("cost_date", (*DATE_ALIASES, "usage_date", "usage_date_utc")),
        Column("workspace_id", ()),
        Column("workspace", ("workspace_name",)),
        *(Column(d, ()) for d in COST_DIMENSIONS if d != "workspace_id"),
        Column("currency", ()),
        Column("amount_usd", ("cost_usd", "amount_dollars")),
        Column("amount_cents", ("cost_cents",)),
    ),
    required=("cost_date", ("workspace_id", "workspace"), "description", ("amount_usd", "amount_cents")),
    exclusive=(("amount_usd", "amount_cents"),),
    refused={"amount": _BARE_AMOUNT, "cost": _BARE_AMOUNT},
)


def parse_cost_csv(table: CsvTable, *, today: date, rules: PlatformRules,
                   workspace_names: Mapping[str | None, str] | None = None) -> ParseResult:
    """A cost CSV → raw.anthropic_costs rows (one per day and grouping fields), or Rejected records.

    Workspace: ``workspace_id`` when given (named from `workspace_names`, the latest workspaces listing,
    else the file's ``workspace`` cell); else the ``workspace`` name, resolved to its id through the
    listing (case-insensitive) — 'Default Workspace' or a blank cell is the default workspace (id NULL,
    as in the API), and a name the listing does not know is rejected rather than guessed. `currency`
    blank means USD; any other currency is rejected. `amount_cents_raw` keeps the cents figure: the cell
    verbatim from ``amount_cents``, or the ``amount_usd`` cell shifted two places (exact).
    """
    today = require_date(today, "today")
    binding = bind(table, COST_FORMAT)
    names = dict(workspace_names or {})
    names.setdefault(None, DEFAULT_WORKSPACE_NAME)
    ids_by_name = _ids_by_name(names)
    seen = KeySeen(("cost_date", *COST_DIMENSIONS))
    for item in records(table, binding):
        if isinstance(item, Rejected):
            yield item
            continue
        try:
            row = _cost_row(item.values, today)
            row["workspace_id"], name = _workspace(item.values, names, ids_by_name)
        except BadValue as exc:
            yield Rejected(str(exc), item.raw, item.ref)
            continue
        row["platform"], row["platform_rule"] = rules.classify(row, name)
        row["workspace_name"] = name
        duplicate = seen.duplicate_of(row, item.ref)
        yield Rejected(duplicate, item.raw, item.ref) if duplicate else row


def _ids_by_name(names: Mapping[str | None, str]) -> dict[str, list[str | None]]:
    out: dict[str, list[str | None]] = {}
    for workspace_id, name in names.items():
        out.setdefault(name.strip().casefold(), []).append(workspace_id)
    return out


def _workspace(cells: Mapping[str, str | None], names: Mapping[str | None, str],
               ids_by_name: Mapping[str, list[str | None]]) -> tuple[str | None, str | None]:
    workspace_id, name = cells.get("workspace_id"), cells.get("workspace")
    if workspace_id is not None:
        return workspace_id, names.get(workspace_id, name)
    if name is None or name.casefold() == DEFAULT_WORKSPACE_NAME.casefold():
        return None, names[None]
    ids = ids_by_name.get(name.casefold(), [])
    if len(ids) == 1:
        return ids[0], names[ids[0]]
    if not ids:
        empty = " (the listing is empty: run ingest_claude's workspaces task once)" if len(names) == 1 else ""
        raise BadValue(f"workspace: {name!r} is not in the latest workspaces listing "
                       f"(raw.anthropic_workspaces){empty}; give its workspace_id instead")
    raise BadValue(f"workspace: {name!r} names {len(ids)} workspaces; give the workspace_id instead")


def _cost_row(cells: Mapping[str, str | None], today: date) -> dict[str, Any]:
    currency = cells.get("currency") or "USD"
    if currency.upper() != "USD":
        raise BadValue(f"currency: {currency!r} is not USD (only USD is stored; never converted)")
    row: dict[str, Any] = {"cost_date": complete_day(cells.get("cost_date"), "date", today)}
    for dim in COST_DIMENSIONS:
        if dim != "workspace_id":
            row[dim] = to_str(cells.get(dim), dim)
    row["currency"] = "USD"
    dollars, cents = cells.get("amount_usd"), cells.get("amount_cents")
    if dollars is not None:
        row["amount_usd"] = usd_from_dollars(dollars, "amount_usd")
        row["amount_cents_raw"] = unit_shift(dollars, "amount_usd", 2)
    elif cents is not None:
        row["amount_usd"] = usd_from_cents(cents, "amount_cents")
        row["amount_cents_raw"] = cents
    else:
        raise BadValue("amount: missing (blank cell)")
    return row


# --------------------------------------------------------------------------- Claude Code usage

CLAUDE_CODE_FORMAT = CsvFormat(
    title="Claude Code usage CSV",
    columns=(
        Column("usage_date", DATE_ALIASES),
        Column("email", ("user_email", "actor_email", "email_address")),
        Column("api_key_name", ("api_key", "key_name")),
        Column("terminal_type", ("terminal",)),
        Column("customer_type", ()),
        Column("subscription_type", ()),
        Column("organization_id", ()),
        Column("num_sessions", ("sessions",)),
        Column("lines_added", ("lines_of_code_added",)),
        Column("lines_removed", ("lines_of_code_removed",)),
        Column("commits_by_claude_code", ("commits",)),
        Column("pull_requests_by_claude_code", ("pull_requests", "prs")),
        Column("estimated_cost_usd", ()),
        Column("estimated_cost_cents", ()),
    ),
    required=("usage_date", ("email", "api_key_name"), "customer_type"),
    exclusive=(("estimated_cost_usd", "estimated_cost_cents"),),
    refused={"estimatedcost": _BARE_ESTIMATE, "cost": _BARE_ESTIMATE},
)
_TOOL_COLUMN = re.compile(r"^(?P<tool>[a-z0-9_]+?)_(?P<what>accepted|rejected)$")


def tool_columns(table: CsvTable, binding: Binding) -> dict[str, dict[str, int]]:
    """``edit_tool_accepted`` / ``Edit Tool Rejected`` header cells → {tool: {accepted|rejected: index}}."""
    tools: dict[str, dict[str, int]] = {}
    for i, cell in binding.unknown.items():
        m = _TOOL_COLUMN.match(re.sub(r"[\s\-.]+", "_", cell.strip().casefold()))
        if not m:
            continue
        slot = tools.setdefault(m.group("tool"), {})
        if m.group("what") in slot:
            raise CsvFormatError(f"file {table.name}: columns {table.header[slot[m.group('what')]]!r} and "
                                 f"{cell!r} are the same tool counter; keep one")
        slot[m.group("what")] = i
    return tools


def parse_claude_code_csv(table: CsvTable, *, today: date) -> ParseResult:
    """A Claude Code usage CSV → raw.claude_code_usage rows, or Rejected records.

    One row per day and actor: an ``email`` (a user_actor, lowercased) or an ``api_key_name`` (an
    api_actor, verbatim) — exactly one per row. A blank terminal type is 'unknown', as for the API.
    Tool actions come from ``<tool>_accepted`` / ``<tool>_rejected`` columns (a tool with both cells blank
    on a row has no entry); there is no per-model breakdown, so `model_breakdown` is empty.
    """
    today = require_date(today, "today")
    binding = bind(table, CLAUDE_CODE_FORMAT)
    tools = tool_columns(table, binding)
    seen = KeySeen(("usage_date", "actor_type", "actor_id", "terminal_type", "customer_type"))
    for item in records(table, binding):
        if isinstance(item, Rejected):
            yield item
            continue
        try:
            row = _claude_code_row(item.values, today)
            row["tool_actions"] = _tool_actions(item, tools)
        except BadValue as exc:
            yield Rejected(str(exc), item.raw, item.ref)
            continue
        duplicate = seen.duplicate_of(row, item.ref)
        yield Rejected(duplicate, item.raw, item.ref) if duplicate else row


def _actor(cells: Mapping[str, str | None]) -> tuple[str, str]:
    email, key_name = cells.get("email"), cells.get("api_key_name")
    if email is not None and key_name is not None:
        raise BadValue("actor: both an e-mail and an API key name; give one actor per row")
    if email is not None:
        return "user_actor", norm_email(email, "email")  # type: ignore[return-value]
    if key_name is not None:
        return "api_actor", key_name
    raise BadValue("actor: missing (neither an e-mail nor an API key name)")


def _claude_code_row(cells: Mapping[str, str | None], today: date) -> dict[str, Any]:
    actor_type, actor_id = _actor(cells)
    dollars, cents = cells.get("estimated_cost_usd"), cells.get("estimated_cost_cents")
    estimate = None
    if dollars is not None:
        estimate = usd_from_dollars(dollars, "estimated_cost_usd")
    elif cents is not None:
        estimate = usd_from_cents(cents, "estimated_cost_cents")
    return {
        "usage_date": complete_day(cells.get("usage_date"), "date", today),
        "actor_type": actor_type,
        "actor_id": actor_id,
        "terminal_type": cells.get("terminal_type") or UNKNOWN_TERMINAL,
        "customer_type": to_str(cells.get("customer_type"), "customer_type", required=True),
        "subscription_type": cells.get("subscription_type"),
        "organization_id": cells.get("organization_id"),
        "num_sessions": to_count(cells.get("num_sessions"), "num_sessions"),
        "lines_added": to_count(cells.get("lines_added"), "lines_added"),
        "lines_removed": to_count(cells.get("lines_removed"), "lines_removed"),
        "commits_by_claude_code": to_count(cells.get("commits_by_claude_code"), "commits_by_claude_code"),
        "pull_requests_by_claude_code": to_count(cells.get("pull_requests_by_claude_code"),
                                                 "pull_requests_by_claude_code"),
        "tool_actions": [],
        "model_breakdown": [],
        "estimated_cost_usd": estimate,
    }


def _tool_actions(item: CsvRow, tools: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    out = []
    for tool in sorted(tools):
        counts = {what: item.cell(i) for what, i in tools[tool].items()}
        if all(v is None for v in counts.values()):
            continue
        out.append({
            "tool": tool,
            "accepted": to_count(counts.get("accepted"), f"{tool}_accepted"),
            "rejected": to_count(counts.get("rejected"), f"{tool}_rejected"),
        })
    return out
