"""The unmapped-key workflow: API keys the Anthropic data shows but the Sheet does not map get a row to fill.

Seen keys come from include/sql/ref/select_api_keys_seen.sql: every key of the latest
``raw.anthropic_api_keys`` snapshot, and every Claude Code API actor of the last `WINDOW_DAYS` days whose
name that listing does not know (the report names an API actor by its key's name *of that day*, so the
old name of a renamed key shows up this way too). Archived or expired keys with no use in the window
are left alone.

A seen key is *present* in the ``api_key_owners`` tab when a row has its id, or — for a key whose id is
unknown (an actor seen only by name), or a row that gives no id — its name. The tab is re-read right
before writing, so rows people added since the load count, and a key is never appended twice across runs
(appended rows are in the tab the next time). New keys are appended with the owner columns empty and
``notes = "discovered <day> in <where>"``.

The digest lists the keys appended now and the keys whose row still names no team and no owner, with
their use over the window: the vendor's *estimated* Claude Code cost of the key's API actor (from
``raw.claude_code_usage``; the cost report has no per-key dimension, vendor-apis.md G-A7) and its tokens in
``raw.anthropic_messages_usage``. Estimates only; the billed amounts stay in ``raw.anthropic_costs``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from ai_usage.sources.sheet import API_KEY_OWNERS, data_rows
from ai_usage.sources.sheet_cells import clean

log = logging.getLogger(__name__)

TAB = "api_key_owners"
WINDOW_DAYS = 30
SEEN_SQL = "ref/select_api_keys_seen.sql"
SOURCE_TABLES = ("raw.anthropic_api_keys", "raw.claude_code_usage", "raw.anthropic_messages_usage",
                 "raw.anthropic_workspaces", "ref.api_key_owners")
_RETIRED = ("archived", "expired")


@dataclass(frozen=True)
class TabKeys:
    """What the owners tab holds, read from its cells (rejected rows count too: they are in the tab)."""

    ids: frozenset[str]
    names_without_id: frozenset[str]
    names: frozenset[str]
    waiting_ids: frozenset[str]        # rows with neither team nor owner: nobody has claimed the key yet
    waiting_names: frozenset[str]

    @classmethod
    def read(cls, values: Sequence[Sequence[Any]]) -> TabKeys:
        ids: set[str] = set()
        names_without_id: set[str] = set()
        names: set[str] = set()
        waiting_ids: set[str] = set()
        waiting_names: set[str] = set()
        for row in data_rows(API_KEY_OWNERS, values):
            key_id, name = clean(row.cells.get("api_key_id")), clean(row.cells.get("api_key_name"))
            waiting = not clean(row.cells.get("team")) and not clean(row.cells.get("owner_email"))
            if key_id:
                ids.add(key_id)
                if waiting:
                    waiting_ids.add(key_id)
            if name:
                names.add(name)
                if not key_id:
                    names_without_id.add(name)
                if waiting:
                    waiting_names.add(name)
        return cls(frozenset(ids), frozenset(names_without_id), frozenset(names), frozenset(waiting_ids),
                   frozenset(waiting_names))

    def has(self, key: Mapping[str, Any]) -> bool:
        key_id, name = key.get("api_key_id"), key.get("api_key_name")
        if key_id:
            return key_id in self.ids or (bool(name) and name in self.names_without_id)
        return bool(name) and name in self.names

    def waiting(self, key: Mapping[str, Any]) -> bool:
        """Whether the row that makes `key` present names neither a team nor an owner."""
        key_id, name = key.get("api_key_id"), key.get("api_key_name")
        if key_id and key_id in self.ids:
            return key_id in self.waiting_ids
        return bool(name) and name in self.waiting_names


@dataclass
class WriteBack:
    appended: list[dict[str, Any]] = field(default_factory=list)
    waiting: list[dict[str, Any]] = field(default_factory=list)
    seen: int = 0
    window: tuple[date, date] | None = None

    def digest_rows(self) -> list[dict[str, Any]]:
        rows = [{**k, "state": "new: appended to the tab"} for k in self.appended]
        rows += [{**k, "state": "waiting for an owner"} for k in self.waiting]
        rows.sort(key=lambda r: (-r["estimated_spend_usd"], -r["tokens"], r["api_key_name"] or ""))
        return [{"api_key_id": r["api_key_id"], "api_key_name": r["api_key_name"], "workspace": r["workspace"],
                 "seen_in": r["seen_in"], "estimated_spend_30d_usd": r["estimated_spend_usd"],
                 "tokens_30d": r["tokens"], "state": r["state"]} for r in rows]

    def to_dict(self) -> dict[str, Any]:
        return {"seen": self.seen, "appended": len(self.appended), "waiting": len(self.waiting),
                "appended_keys": [k["api_key_id"] or k["api_key_name"] for k in self.appended],
                "window": [d.isoformat() for d in self.window] if self.window else None}


def seen_keys(warehouse: Any, today: date, window_days: int = WINDOW_DAYS) -> list[dict[str, Any]]:
    """Keys in the Anthropic data, with their use over the `window_days` days before `today`."""
    warehouse.ensure_tables(list(SOURCE_TABLES))
    since, until = today - timedelta(days=window_days), today - timedelta(days=1)
    rows = warehouse.run_sql_file(SEEN_SQL, {"since_date": since, "until_date": until})
    for row in rows:
        row["estimated_spend_usd"] = Decimal(row["estimated_spend_usd"] or 0)
        row["tokens"] = int(row["tokens"] or 0)
    return [r for r in rows if not (r["status"] in _RETIRED and not r["estimated_spend_usd"] and not r["tokens"])]


def discovered_row(key: Mapping[str, Any], today: date) -> dict[str, str | None]:
    """The row appended for a new key: what is known about it, owner columns empty."""
    return {"api_key_id": key.get("api_key_id"), "api_key_name": key.get("api_key_name"),
            "workspace": key.get("workspace"), "owner_email": None, "team": None, "cost_center": None,
            "notes": f"discovered {today.isoformat()} in the {key['seen_in']}"}


def is_shipped_sample(source: Any) -> bool:
    """Whether `source` is a CSV folder inside the package's own include/ folder (the shipped sample)."""
    from ai_usage.paths import include_dir

    folder = getattr(source, "folder", None)
    if folder is None:
        return False
    return Path(folder).resolve().is_relative_to(include_dir().resolve())


def write_back(source: Any, warehouse: Any, *, today: date, window_days: int = WINDOW_DAYS) -> WriteBack:
    """Append the keys the tab lacks (once, ever) and collect the digest; see the module docstring."""
    seen = seen_keys(warehouse, today, window_days)
    result = WriteBack(seen=len(seen), window=(today - timedelta(days=window_days), today - timedelta(days=1)))
    tab = TabKeys.read(source.read_tab(TAB).payload)
    new: list[dict[str, Any]] = []
    planned: set[tuple[str | None, str | None]] = set()
    for key in seen:
        if tab.has(key):
            if tab.waiting(key):
                result.waiting.append(key)
            continue
        ident = (key["api_key_id"], None if key["api_key_id"] else key["api_key_name"])
        if ident not in planned:
            planned.add(ident)
            new.append(key)
    if new and is_shipped_sample(source):
        # The sample under include/ is part of the package (version-controlled): never edit it in place.
        log.warning("not appending %d unmapped API key(s) to the shipped sample sheet %s; point AI_USAGE_SHEET "
                    "at your own spreadsheet or CSV folder to record owners", len(new), source.describe())
        result.waiting.extend(new)
        return result
    if new:
        source.append_rows(TAB, [discovered_row(k, today) for k in new])
        log.warning("appended %d unmapped API key(s) to the %s tab: %s", len(new), TAB,
                    ", ".join(k["api_key_name"] or k["api_key_id"] for k in new))
    result.appended = new
    return result
