"""The deterministic synthetic organisation the simulators serve and the tests compare the warehouse to.

`Organisation.generate(seed, people, days, end)` always gives identical output for identical arguments,
whatever the machine's time zone or PYTHONHASHSEED (all randomness comes from `sandbox.rng`). The history
covers [end - days + 1, end], `end` defaulting to yesterday (UTC).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox.activity import Activity, ActivityModel, KeyActivity, KeyProfile
from sandbox.gen_anthropic import AnthropicParts, make_anthropic
from sandbox.gen_people import make_people, make_teams
from sandbox.gen_tools import make_price_card, make_profiles, make_seats_and_access
from sandbox.model import (
    AnthropicUser,
    ApiKey,
    ClaudeCodeAccess,
    Person,
    PriceCardEntry,
    Seat,
    Team,
    Workspace,
    WorkspaceMember,
    within,
)
from sandbox.rng import stable_rng

log = logging.getLogger(__name__)

ORGANIZATION_NAME = "Example Corp"


def yesterday_utc() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


class Organisation:
    """People, teams, seats, prices, Anthropic workspaces / keys / users, and a lazy activity model."""

    def __init__(
        self,
        *,
        seed: int,
        start: date,
        end: date,
        teams: tuple[Team, ...],
        people: tuple[Person, ...],
        seats: tuple[Seat, ...],
        price_card: tuple[PriceCardEntry, ...],
        anthropic: AnthropicParts,
        activity_model: ActivityModel,
    ) -> None:
        self.seed = seed
        self.start = start
        self.end = end
        self.teams = teams
        self.people = people
        self.seats = seats
        self.price_card = price_card
        self.organization_id = anthropic.organization_id
        self.organization_name = ORGANIZATION_NAME
        self.workspaces: tuple[Workspace, ...] = anthropic.workspaces
        self.users: tuple[AnthropicUser, ...] = anthropic.users
        self.workspace_members: tuple[WorkspaceMember, ...] = anthropic.members
        self.api_keys: tuple[ApiKey, ...] = anthropic.api_keys
        self.claude_code_access: tuple[ClaudeCodeAccess, ...] = anthropic.access
        self._activity = activity_model
        self._by_email = {p.email: p for p in people}
        self._keys_by_id = {k.id: k for k in self.api_keys}

    # ------------------------------------------------------------------ construction

    @classmethod
    def generate(
        cls, seed: int = 7, people: int = 60, days: int = 120, end: date | None = None
    ) -> Organisation:
        """Build the organisation for (seed, people, days, end); `end` defaults to yesterday UTC."""
        if people < 1 or days < 1:
            raise ValueError(f"people and days must be >= 1 (got people={people}, days={days})")
        end = end if end is not None else yesterday_utc()
        start = end - timedelta(days=days - 1)
        teams, weights = make_teams(seed)
        persons = make_people(seed, people, start, end, teams, weights)
        seats, access = make_seats_and_access(seed, persons, start, end)
        anthropic = make_anthropic(seed, persons, access, start, end)
        profiles = make_profiles(seed, persons, seats, anthropic.access, anthropic.key_schedules)
        keys_by_id = {k.id: k for k in anthropic.api_keys}
        model = ActivityModel(
            seed, start, end, persons, profiles, _key_profiles(seed, anthropic.api_keys), keys_by_id
        )
        log.debug("generated organisation seed=%s people=%s days=%s end=%s", seed, people, days, end)
        return cls(
            seed=seed,
            start=start,
            end=end,
            teams=teams,
            people=persons,
            seats=tuple(sorted(seats, key=lambda s: (s.tool, s.email, s.valid_from))),
            price_card=make_price_card(seats, start, end),
            anthropic=anthropic,
            activity_model=model,
        )

    # ------------------------------------------------------------------ lookups

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def dates(self) -> Iterator[date]:
        """Every day of the organisation's history, oldest first."""
        for i in range(self.days):
            yield self.start + timedelta(days=i)

    def person(self, email: str) -> Person:
        """The person with this e-mail (case-insensitive); KeyError if unknown."""
        return self._by_email[email.strip().lower()]

    def people_on(self, day: date) -> list[Person]:
        """People employed on `day` (joined on or before, not yet left)."""
        return [p for p in self.people if p.employed_on(day)]

    def team_of(self, email: str, day: date) -> tuple[str, str] | None:
        """(team, cost_center) of a person on `day`; None when not employed that day; KeyError if unknown."""
        a = self.person(email).assignment_on(day)
        return None if a is None else (a.team, a.cost_center)

    def seats_on(self, day: date, tool: str | None = None) -> list[Seat]:
        return [
            s
            for s in self.seats
            if (tool is None or s.tool == tool) and within(day, s.valid_from, s.valid_to)
        ]

    def api_key(self, key_id: str) -> ApiKey:
        return self._keys_by_id[key_id]

    def workspace(self, workspace_id: str | None) -> Workspace:
        return next(w for w in self.workspaces if w.id == workspace_id)

    def users_on(self, day: date) -> list[AnthropicUser]:
        return [u for u in self.users if u.member_on(day)]

    # ------------------------------------------------------------------ activity

    def activity(self, day: date) -> Iterator[Activity]:
        """Lazily, every (person, tool) active on `day` with its intensity; see `sandbox.activity`."""
        return self._activity.for_day(day)

    def activity_of(self, email: str, day: date) -> list[Activity]:
        """One person's activity on one day, O(1)."""
        return self._activity.for_person(email.strip().lower(), day)

    def key_activity(self, day: date) -> Iterator[KeyActivity]:
        """Lazily, every Anthropic API key used on `day` (Claude Code keys and product workloads)."""
        return self._activity.keys_for_day(day)

    # ------------------------------------------------------------------ exports

    def meta(self) -> dict[str, Any]:
        from sandbox.export import meta

        return meta(self)

    def ground_truth(self) -> dict[str, list[dict[str, Any]]]:
        """Typed rows (dates, Decimals) of every reference table the warehouse is compared against."""
        from sandbox.export import ground_truth

        return ground_truth(self)

    def sheet_tabs(self) -> dict[str, list[dict[str, str]]]:
        """The Google Sheet tabs (`people`, `api_key_owners`, `seat_prices`, `claude_ai_usage`), as cell text."""
        from sandbox.sheet import sheet_tabs

        return sheet_tabs(self)

    def export_ground_truth(self, folder: str | Path) -> list[Path]:
        from sandbox.export import export_ground_truth

        return export_ground_truth(self, Path(folder))

    def export_sheet_csv(self, folder: str | Path) -> list[Path]:
        from sandbox.sheet import export_sheet_csv

        return export_sheet_csv(self, Path(folder))

    def digest(self) -> str:
        """SHA-256 of the canonical ground-truth JSON: equal digests = identical organisations."""
        from sandbox.export import digest

        return digest(self)


def _key_profiles(seed: int, keys: tuple[ApiKey, ...]) -> tuple[KeyProfile, ...]:
    """Usage of keys that are not a person's own: unowned Claude Code keys and product workloads."""
    profiles = []
    for k in keys:
        rng = stable_rng(seed, "key-profile", k.id)
        if k.purpose == "workload":
            profiles.append(KeyProfile(k, "api", 0.97, rng.uniform(8.0, 25.0), 0.85))
        elif k.owner_email is None:
            profiles.append(KeyProfile(k, "claude_code", rng.uniform(0.5, 0.8), rng.uniform(1.0, 3.0), 0.3))
    return tuple(profiles)
