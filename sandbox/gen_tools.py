"""Generation of tool seats, Claude Code access, the seat price card and per-person activity profiles."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sandbox.model import TOOLS, ClaudeCodeAccess, Person, PriceCardEntry, Seat, within
from sandbox.rng import stable_rng

# The price card (USD per seat per month). claude.ai Team drops from 30 to 25 in the middle of the range,
# so the price card has an effective-dated change for the cost marts to honour.
CURSOR_PLAN, CURSOR_PRICE = "teams", Decimal("40.00")
CLAUDE_AI_TEAM_PRICES = (Decimal("30.00"), Decimal("25.00"))
CLAUDE_AI_PREMIUM_PRICE = Decimal("150.00")


@dataclass(frozen=True)
class ToolProfile:
    """How often and how hard one person uses one tool; drives the lazy activity model."""

    tool: str
    slot: int  # index into TOOLS: which words of the per-(person, day) digest drive this tool
    propensity: float  # probability of being active on a weekday
    scale: float  # mean intensity of an active day
    valid_from: date
    valid_to: date | None
    via: str | None = None
    keys: tuple[tuple[str, date, date | None], ...] = ()  # (api_key_id, from, to) when via == "api_key"


def _seat_start(rng_days: int, person: Person, start: date, end: date) -> date:
    if person.join_date >= start:
        return min(end, person.join_date + timedelta(days=rng_days % 4))
    return max(person.join_date, start - timedelta(days=20 + rng_days))


def make_seats_and_access(
    seed: int, people: tuple[Person, ...], start: date, end: date
) -> tuple[list[Seat], list[ClaudeCodeAccess]]:
    """Seats (cursor / claude_ai) and Claude Code access; `api_key_ids` are filled in once keys exist."""
    seats: list[Seat] = []
    access: list[ClaudeCodeAccess] = []
    for p in people:
        rng = stable_rng(seed, "tools", p.index)
        since = _seat_start(rng.randint(0, 400), p, start, end)
        if rng.random() < 0.72:
            seats.append(Seat(p.email, "cursor", CURSOR_PLAN, since, p.leave_date, idle=False))
        via = None
        if rng.random() < 0.45:
            via = rng.choices(("api_key", "console", "subscription"), weights=(0.4, 0.3, 0.3))[0]
            access.append(ClaudeCodeAccess(p.email, via, since, p.leave_date))
        if via == "subscription":
            seats.append(Seat(p.email, "claude_ai", "premium", since, p.leave_date, idle=False))
        elif rng.random() < 0.4:
            plan = "premium" if rng.random() < 0.1 else "team"
            seats.append(Seat(p.email, "claude_ai", plan, since, p.leave_date, idle=False))
    _ensure_every_mode(people, seats, access, start, end)
    subscription_users = {a.email for a in access if a.via == "subscription"}
    seats = _mark_idle(seed, seats, "cursor", 0.06, set())
    seats = _mark_idle(seed, seats, "claude_ai", 0.10, subscription_users)
    return seats, access


def _ensure_every_mode(
    people: tuple[Person, ...], seats: list[Seat], access: list[ClaudeCodeAccess], start: date, end: date
) -> None:
    """Small organisations still get at least one user of every tool and Claude Code mode (needs 3+ people)."""
    access.sort(key=lambda a: a.email)
    if len(people) < 3:
        return
    have = {a.via for a in access}
    taken = {a.email for a in access}
    for via in ("api_key", "console", "subscription"):
        if via in have:
            continue
        candidates = [p for p in people if p.email not in taken and p.leave_date is None]
        if not candidates:
            return
        p = candidates[0]
        since = max(p.join_date, start - timedelta(days=30)) if p.join_date < start else p.join_date
        access.append(ClaudeCodeAccess(p.email, via, since, p.leave_date))
        taken.add(p.email)
        if via == "subscription":
            seats[:] = [s for s in seats if not (s.email == p.email and s.tool == "claude_ai")]
            seats.append(Seat(p.email, "claude_ai", "premium", since, p.leave_date, idle=False))
    subscribers = {a.email for a in access if a.via == "subscription"}
    for tool, plan in (("cursor", CURSOR_PLAN), ("claude_ai", "team")):
        holders = [s for s in seats if s.tool == tool and s.email not in subscribers]
        if len(holders) < 2:
            free = [p for p in people if not any(s.email == p.email and s.tool == tool for s in seats)]
            for p in free[: 2 - len(holders)]:
                since = p.join_date if p.join_date >= start else max(p.join_date, start - timedelta(days=30))
                seats.append(Seat(p.email, tool, plan, min(since, end), p.leave_date, idle=False))
    access.sort(key=lambda a: a.email)


def _mark_idle(seed: int, seats: list[Seat], tool: str, share: float, exclude: set[str]) -> list[Seat]:
    """Mark about `share` of a tool's seat holders (at least one) as never using their seat."""
    pool = sorted({s.email for s in seats if s.tool == tool and s.email not in exclude})
    if len(pool) < 2:
        return seats
    rng = stable_rng(seed, "idle", tool)
    idle = set(rng.sample(pool, max(1, round(len(pool) * share))))
    return [
        Seat(s.email, s.tool, s.plan, s.valid_from, s.valid_to, idle=True)
        if s.tool == tool and s.email in idle
        else s
        for s in seats
    ]


def make_profiles(
    seed: int,
    people: tuple[Person, ...],
    seats: Iterable[Seat],
    access: Iterable[ClaudeCodeAccess],
    key_schedules: Mapping[str, tuple[tuple[str, date, date | None], ...]],
) -> dict[int, tuple[ToolProfile, ...]]:
    """Per person, the tools they actually use (idle seats have no profile, so they are never active)."""
    by_email = {p.email: p for p in people}
    profiles: dict[int, list[ToolProfile]] = {p.index: [] for p in people}
    for s in seats:
        if s.idle:
            continue
        p = by_email[s.email]
        slot = TOOLS.index(s.tool)
        rng = stable_rng(seed, "profile", p.index, s.tool)
        lo, hi = (0.55, 0.95) if s.tool == "cursor" else (0.25, 0.75)
        profiles[p.index].append(
            ToolProfile(
                s.tool, slot, rng.uniform(lo, hi), rng.lognormvariate(0.0, 0.4), s.valid_from, s.valid_to
            )
        )
    for a in access:
        p = by_email[a.email]
        rng = stable_rng(seed, "profile", p.index, "claude_code")
        keys = key_schedules.get(a.email, ()) if a.via == "api_key" else ()
        profiles[p.index].append(
            ToolProfile(
                "claude_code",
                TOOLS.index("claude_code"),
                rng.uniform(0.4, 0.9),
                rng.lognormvariate(0.0, 0.5),
                a.valid_from,
                a.valid_to,
                via=a.via,
                keys=keys,
            )
        )
    return {i: tuple(sorted(ps, key=lambda t: t.slot)) for i, ps in profiles.items()}


def make_price_card(seats: list[Seat], start: date, end: date) -> tuple[PriceCardEntry, ...]:
    """One row per (tool, plan, price period); `seats` = peak concurrent holders in the period's overlap."""
    card_from = date(start.year - 1, 1, 1)
    mid = start + timedelta(days=(end - start).days // 2)
    change = date(mid.year, mid.month, 1)
    periods: list[tuple[str, str, Decimal, date, date | None]] = [
        ("cursor", CURSOR_PLAN, CURSOR_PRICE, card_from, None),
        ("claude_ai", "premium", CLAUDE_AI_PREMIUM_PRICE, card_from, None),
    ]
    if start < change <= end:
        old, new = CLAUDE_AI_TEAM_PRICES
        periods.insert(1, ("claude_ai", "team", old, card_from, change - timedelta(days=1)))
        periods.insert(2, ("claude_ai", "team", new, change, None))
    else:
        periods.insert(1, ("claude_ai", "team", CLAUDE_AI_TEAM_PRICES[1], card_from, None))
    return tuple(
        PriceCardEntry(
            tool, plan, price, _peak_holders(seats, tool, plan, max(vf, start), min(vt or end, end)), vf, vt
        )
        for tool, plan, price, vf, vt in periods
    )


def _peak_holders(seats: list[Seat], tool: str, plan: str, lo: date, hi: date) -> int:
    """Peak number of seats of (tool, plan) held on any day of [lo, hi], by a sweep over start/end events."""
    if hi < lo:
        return 0
    delta: dict[date, int] = {}
    for s in seats:
        if s.tool != tool or s.plan != plan:
            continue
        a = max(s.valid_from, lo)
        b = min(s.valid_to or hi, hi)
        if a > b:
            continue
        delta[a] = delta.get(a, 0) + 1
        after = b + timedelta(days=1)
        delta[after] = delta.get(after, 0) - 1
    running = peak = 0
    for day in sorted(delta):
        running += delta[day]
        peak = max(peak, running)
    return peak


def held_on(seat: Seat, day: date) -> bool:
    return within(day, seat.valid_from, seat.valid_to)
