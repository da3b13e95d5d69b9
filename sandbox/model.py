"""The synthetic organisation's entities: plain frozen dataclasses, dates in UTC, money as Decimal.

Validity intervals are inclusive on both ends (`valid_to` is the last day, ``None`` = still valid).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

TOOLS: tuple[str, ...] = ("cursor", "claude_code", "claude_ai")

# How a person reaches Claude Code: own API key (api_actor in the Claude Code report), a Console login
# billed to the API (user_actor, customer_type "api"), or a claude.ai premium seat (customer_type "subscription").
CLAUDE_CODE_VIA: tuple[str, ...] = ("api_key", "console", "subscription")


def within(day: date, valid_from: date, valid_to: date | None) -> bool:
    """True when `day` lies in the inclusive interval [valid_from, valid_to] (open-ended when None)."""
    return valid_from <= day and (valid_to is None or day <= valid_to)


@dataclass(frozen=True)
class Team:
    name: str
    cost_center: str


@dataclass(frozen=True)
class Assignment:
    """One effective-dated row of a person's history: the team and cost centre they belonged to."""

    team: str
    cost_center: str
    valid_from: date
    valid_to: date | None


@dataclass(frozen=True)
class Person:
    index: int
    email: str
    name: str
    join_date: date
    leave_date: date | None  # last working day, inclusive
    history: tuple[Assignment, ...]
    uid: str  # stable opaque id vendor simulators may derive their own user ids from

    def employed_on(self, day: date) -> bool:
        return within(day, self.join_date, self.leave_date)

    def assignment_on(self, day: date) -> Assignment | None:
        for a in self.history:
            if within(day, a.valid_from, a.valid_to):
                return a
        return None

    @property
    def changed_team(self) -> bool:
        return len({a.team for a in self.history}) > 1


@dataclass(frozen=True)
class Seat:
    """A paid seat of a seat-priced tool (`cursor`, `claude_ai`) held by one person for a period."""

    email: str
    tool: str
    plan: str
    valid_from: date
    valid_to: date | None
    idle: bool  # the holder never uses it (idle-seat reports must find these)


@dataclass(frozen=True)
class PriceCardEntry:
    tool: str
    plan: str
    monthly_price_usd: Decimal
    seats: int
    valid_from: date
    valid_to: date | None


@dataclass(frozen=True)
class ClaudeCodeAccess:
    email: str
    via: str  # one of CLAUDE_CODE_VIA
    valid_from: date
    valid_to: date | None
    api_key_ids: tuple[str, ...] = ()  # keys used over time when via == "api_key" (oldest first)


@dataclass(frozen=True)
class Workspace:
    """An Anthropic workspace; the Default Workspace has ``id=None`` and is not listed by the API."""

    id: str | None
    name: str
    kind: str  # "claude_code" | "product" | "default"
    is_developer_tooling: bool
    created_date: date
    display_color: str


@dataclass(frozen=True)
class KeyName:
    name: str
    valid_from: date
    valid_to: date | None


@dataclass(frozen=True)
class ApiKey:
    id: str
    workspace_id: str | None
    purpose: str  # "claude_code" | "workload"
    owner_email: str | None
    created_date: date
    archived_date: date | None  # first day the key no longer works
    names: tuple[KeyName, ...]  # name history, oldest first
    created_by_user_id: str
    partial_key_hint: str

    @property
    def name(self) -> str:
        """The key's current name (the last one in its history)."""
        return self.names[-1].name

    def name_on(self, day: date) -> str:
        for n in self.names:
            if within(day, n.valid_from, n.valid_to):
                return n.name
        return self.names[0].name if day < self.names[0].valid_from else self.name

    def usable_on(self, day: date) -> bool:
        return self.created_date <= day and (self.archived_date is None or day < self.archived_date)

    def status_on(self, day: date) -> str:
        return "archived" if self.archived_date is not None and day >= self.archived_date else "active"


@dataclass(frozen=True)
class AnthropicUser:
    id: str
    email: str
    name: str
    role: str  # "admin" | "developer" | "claude_code_user" | "billing" | "user"
    added_date: date
    removed_date: date | None  # first day the user is no longer listed

    def member_on(self, day: date) -> bool:
        return self.added_date <= day and (self.removed_date is None or day < self.removed_date)


@dataclass(frozen=True)
class WorkspaceMember:
    workspace_id: str
    user_id: str
    workspace_role: str  # "workspace_user" | "workspace_developer" | "workspace_admin" | ...
