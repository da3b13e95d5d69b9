"""Generation of teams and people (with joins, leaves and mid-range team changes) for the organisation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from sandbox.model import Assignment, Person, Team
from sandbox.names import FIRST_NAMES, LAST_NAMES, TEAM_NAMES
from sandbox.rng import stable_rng, stable_token

EMAIL_DOMAIN = "example.com"


def make_teams(seed: int) -> tuple[tuple[Team, ...], tuple[float, ...]]:
    """6–10 teams; fewer cost centres than teams, so some cost centres hold several teams."""
    rng = stable_rng(seed, "teams")
    n = rng.randint(6, min(10, len(TEAM_NAMES)))
    names = rng.sample(TEAM_NAMES, n)
    n_cc = n - rng.randint(2, 3)
    centres = [f"CC-{1100 + 100 * i}" for i in range(n_cc)]
    teams = []
    for i, name in enumerate(names):
        cc = centres[i] if i < n_cc else rng.choice(centres)
        teams.append(Team(name=name, cost_center=cc))
    weights = tuple(rng.uniform(0.5, 2.0) for _ in teams)
    return tuple(teams), weights


def _pick(rng_seed: int, label: str, pool: Sequence[int], k: int) -> list[int]:
    rng = stable_rng(rng_seed, "pick", label)
    k = max(0, min(k, len(pool)))
    return sorted(rng.sample(list(pool), k))


def _day_between(rng_day: float, lo: date, hi: date) -> date:
    span = (hi - lo).days
    return lo + timedelta(days=min(span, int(rng_day * (span + 1))))


def make_people(
    seed: int, n: int, start: date, end: date, teams: tuple[Team, ...], weights: tuple[float, ...]
) -> tuple[Person, ...]:
    """`n` people; about 8% join and 6% leave inside the range, 5% change team (at least one each if n >= 5)."""
    days = (end - start).days + 1
    indices = list(range(n))
    big_enough = n >= 5 and days >= 14
    joiners = _pick(seed, "joiners", indices, max(1, round(n * 0.08))) if big_enough else []
    joiners_set = set(joiners)
    rest = [i for i in indices if i not in joiners_set]
    leavers = _pick(seed, "leavers", rest, max(1, round(n * 0.06))) if big_enough else []
    leavers_set = set(leavers)
    rest = [i for i in rest if i not in leavers_set]
    movers_set = set(_pick(seed, "movers", rest, max(1, round(n * 0.05))) if big_enough else [])

    used: set[str] = set()
    people = []
    for i in range(n):
        rng = stable_rng(seed, "person", i)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = _unique_email(first, last, used)
        team_index = rng.choices(range(len(teams)), weights=weights)[0]
        join = start - timedelta(days=rng.randint(30, 1500))
        leave: date | None = None
        if i in joiners_set:
            join = _day_between(rng.random(), start + timedelta(days=1), end - timedelta(days=7))
        if i in leavers_set:
            leave = _day_between(rng.random(), start + timedelta(days=days // 4), end - timedelta(days=1))
        team = teams[team_index]
        if i in movers_set:
            change = _day_between(
                rng.random(), start + timedelta(days=days // 4), start + timedelta(days=(3 * days) // 4)
            )
            other = rng.choice([t for t in teams if t.name != team.name])
            history: tuple[Assignment, ...] = (
                Assignment(team.name, team.cost_center, join, change - timedelta(days=1)),
                Assignment(other.name, other.cost_center, change, leave),
            )
        else:
            history = (Assignment(team.name, team.cost_center, join, leave),)
        people.append(
            Person(
                index=i,
                email=email,
                name=f"{first} {last}",
                join_date=join,
                leave_date=leave,
                history=history,
                uid=stable_token(seed, "person-uid", i, length=16),
            )
        )
    return tuple(people)


def _unique_email(first: str, last: str, used: set[str]) -> str:
    base = f"{first}.{last}".lower()
    local, k = base, 1
    while f"{local}@{EMAIL_DOMAIN}" in used:
        k += 1
        local = f"{base}{k}"
    email = f"{local}@{EMAIL_DOMAIN}"
    used.add(email)
    return email
