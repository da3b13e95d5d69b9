"""The organisation's Cursor team: members, their ids, and the FINAL daily counters of each (member, day).

Everything is derived from the synthetic organisation (`sandbox.org`), lazily and deterministically:

- **Members** are the holders of a Cursor seat (`org.seats`, tool ``cursor``). A member is *listed* from the
  seat's first day and *removed* (``isRemoved``) from the day after its last day. The two earliest seat
  holders who never leave are ``owner``, everyone else ``member``. A few names are null and a few
  e-mails are shown with capitals (the contracts lowercase them).
- **Ids**: a numeric id (daily ``userId``; members/spend ids in the mid-2026 ``number`` style) and an
  encoded ``user_…`` string (members/spend ids in the newest ``string`` style).
- **Daily counters** of a member on a day come from the member's Cursor `Activity` of that day (intensity
  and seed): one keyed blake2b digest gives the sixteen words the counters are drawn from, so a day of
  2,000 people costs a few milliseconds. A member without Cursor activity that day has an all-zero row.
  Each counter is drawn independently per day (no carry-over of an allowance between days), which keeps
  any day computable on its own.

The mapping from counters to usage events (`cursor_events`), which the daily counters and the events obey
on every final day::

    composerRequests + chatRequests + agentRequests + cmdkUsages = events whose kind is not "Free"
    subscriptionIncludedReqs = events of kind "Included in Business"
    usageBasedReqs           = events of kind "Usage-based"
    bugbotUsages             = events of kind "Free" (Bugbot runs, headless, never charged)
    apiKeyReqs               = 0 (nobody in the organisation brings their own model API key)
    the other request events are "Errored, Not Charged" / "Aborted, Not Charged"
    mostUsedModel            = the model of more than half of the non-"Free" events (null without any)
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from sandbox.activity import Activity
from sandbox.model import Person
from sandbox.rng import digest, stable_int, stable_rng, stable_token

if TYPE_CHECKING:
    from sandbox.org import Organisation

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_EPOCH_ORD = date(1970, 1, 1).toordinal()

# Vendor field names of the daily row, in the order the API sends them (vendor-apis.md §2.3).
DAILY_INT_FIELDS: tuple[str, ...] = (
    "totalLinesAdded",
    "totalLinesDeleted",
    "acceptedLinesAdded",
    "acceptedLinesDeleted",
    "totalApplies",
    "totalAccepts",
    "totalRejects",
    "totalTabsShown",
    "totalTabsAccepted",
    "composerRequests",
    "chatRequests",
    "agentRequests",
    "cmdkUsages",
    "subscriptionIncludedReqs",
    "apiKeyReqs",
    "usageBasedReqs",
    "bugbotUsages",
)
DAILY_STR_FIELDS: tuple[str, ...] = (
    "mostUsedModel",
    "applyMostUsedExtension",
    "tabMostUsedExtension",
    "clientVersion",
)
IDX = {name: i for i, name in enumerate(DAILY_INT_FIELDS + DAILY_STR_FIELDS)}
N_INT = len(DAILY_INT_FIELDS)

# A day's counters: the 17 ints of DAILY_INT_FIELDS, then the 4 nullable strings of DAILY_STR_FIELDS.
Counters = tuple[Any, ...]  # 17 ints then 4 str | None; a plain tuple: ~250k are built per benchmark year


@dataclass(frozen=True)
class ModelInfo:
    """A model as the events show it: USD prices per million tokens (input, output, cache write, cache read)."""

    name: str
    prices: tuple[Decimal, Decimal, Decimal, Decimal]
    third_party: bool  # third-party models carry the Cursor Token Rate (`cursorTokenFee`)
    discount_percent: int | None = None  # negotiated discount, shown as tokenUsage.discountPercentOff


def _p(*values: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    a, b, c, d = (Decimal(v) for v in values)
    return a, b, c, d


MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("claude-4.5-sonnet", _p("3", "15", "3.75", "0.3"), True, 10),
    ModelInfo("gpt-5", _p("1.25", "10", "1.25", "0.125"), True),
    ModelInfo("default", _p("1.25", "6", "1.25", "0.25"), False),  # "Auto": Cursor routes, no token fee
    ModelInfo("claude-4-sonnet-thinking", _p("3", "15", "3.75", "0.3"), True, 10),
    ModelInfo("composer-1", _p("1.25", "10", "1.25", "0.125"), False),
    ModelInfo("gemini-2.5-pro", _p("1.25", "10", "1.25", "0.31"), True),
    ModelInfo("grok-code-fast-1", _p("0.2", "1.5", "0.2", "0.02"), False),
)
MODEL_BY_NAME = {m.name: m for m in MODELS}
# Extensions as real data shows them: not always with a leading dot ("go"), and "Untitled-1" for Tab.
APPLY_EXTENSIONS = (".tsx", ".ts", ".py", "go", ".go", ".java", ".rs", ".sql", ".md")
TAB_EXTENSIONS = (".ts", ".tsx", ".py", ".go", "Untitled-1", ".json", ".yaml", ".kt")
RELEASE_EPOCH = date(2025, 1, 6)  # client release k ships on RELEASE_EPOCH + 14 k days
TEAM_DEFAULT_LIMIT_DOLLARS = 300

_WORDS = struct.Struct("<16I")
_INV32 = 1.0 / 4294967296.0


def day_ms(day: date) -> int:
    """Epoch milliseconds of a UTC day's midnight (no time zone involved)."""
    return (day.toordinal() - _EPOCH_ORD) * DAY_MS


def ms_day(ms: int) -> date:
    """The UTC day an epoch-milliseconds instant falls on."""
    return date.fromordinal(_EPOCH_ORD + ms // DAY_MS)


def instant_ms(when: datetime) -> int:
    """Epoch milliseconds of an aware instant (floored to the millisecond)."""
    delta = when.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


@dataclass(frozen=True)
class CursorMember:
    """One Cursor team member (a Cursor seat holder) with the stable traits its numbers are drawn from."""

    person: Person
    number: int  # numeric user id: daily `userId`; members `id` / spend `userId` in the "number" style
    encoded_id: str  # "user_…": members `id` / spend `userId` in the newest "string" style
    shown_email: str  # as the API shows it (a few with capitals); `email` is the lowercased join key
    row_head: str  # pre-rendered text of a daily row: '{"userId":N,'
    row_email: str  # and '"email":"…","isActive":'
    name: str | None
    role: str
    seat_from: date
    seat_to: date | None  # last day with the seat (inclusive); None = still a member
    on_demand: float  # share of a day's requests billed usage-based (0 for most members)
    models: tuple[int, int]  # primary and secondary model (indexes into MODELS)
    apply_ext: tuple[str, str]
    tab_ext: str
    version_lag: int  # releases behind the newest client
    start_hour: int  # UTC hour the member's working day starts
    hard_limit_override_dollars: int
    monthly_limit_dollars: int | None
    from_ord: int = 0  # seat_from / seat_to as ordinals (date.max when open), for the per-day filter
    to_ord: int = 0

    @property
    def email(self) -> str:
        return self.person.email

    def on(self, day: date) -> bool:
        """Holds the seat on `day` (has a daily row that day)."""
        return self.seat_from <= day and (self.seat_to is None or day <= self.seat_to)

    def overlaps(self, lo: date, hi: date) -> bool:
        return self.seat_from <= hi and (self.seat_to is None or self.seat_to >= lo)

    def listed_on(self, day: date) -> bool:
        """Appears in GET /teams/members on `day` (removed members stay listed)."""
        return self.seat_from <= day

    def removed_on(self, day: date) -> bool:
        return self.seat_to is not None and self.seat_to < day

    @property
    def effective_limit_dollars(self) -> int:
        if self.hard_limit_override_dollars > 0:
            return self.hard_limit_override_dollars
        if self.monthly_limit_dollars is not None:
            return self.monthly_limit_dollars
        return TEAM_DEFAULT_LIMIT_DOLLARS


@dataclass
class DayBlock:
    """One UTC day of the team: the members holding a seat and the final counters of the active ones."""

    day: date
    day_str: str
    date_ms: int
    members: tuple[CursorMember, ...]  # sorted by number
    counters: dict[int, Counters]  # member number -> final counters (active members only)
    activity: dict[int, Activity]  # member number -> the Cursor activity the counters come from
    ord: int = 0  # day.toordinal()
    json_part: str = ""  # the daily-row text that depends on the day only: "day":"…","date":…,
    fragments: dict[str, dict[int, str]] = field(default_factory=dict)  # row end -> number -> final row text


K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A small thread-safe least-recently-used cache (values are computed outside the lock)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get_or(self, key: K, compute: Callable[[], V]) -> V:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = compute()  # deterministic, so two threads computing the same key agree
        with self._lock:
            self._data[key] = value
            self._trim()
        return value

    def resize(self, size: int) -> None:
        """Keep up to `size` entries from now on; growing keeps every entry (a harness warms up after)."""
        with self._lock:
            self._size = size
            self._trim()

    def _trim(self) -> None:
        while len(self._data) > self._size:
            self._data.popitem(last=False)


def _shown_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return ".".join(part.capitalize() for part in local.split(".")) + "@" + domain


def _make_members(org: Organisation) -> tuple[CursorMember, ...]:
    seat_of: dict[str, tuple[date, date | None]] = {}
    for s in org.seats:
        if s.tool != "cursor":
            continue
        if s.email in seat_of:  # never expected; merge defensively into one membership
            a, b = seat_of[s.email]
            seat_of[s.email] = (
                min(a, s.valid_from),
                None if b is None or s.valid_to is None else max(b, s.valid_to),
            )
        else:
            seat_of[s.email] = (s.valid_from, s.valid_to)
    offset = stable_int(org.seed, "cursor-number", bits=12)
    by_email = {p.email: p for p in org.people}
    stayers = [e for e in seat_of if seat_of[e][1] is None]  # owners are not among the leavers
    earliest = sorted(stayers, key=lambda e: (seat_of[e][0], by_email[e].index))[:2]
    members = []
    for email, (since, until) in seat_of.items():
        p = by_email[email]
        rng = stable_rng(org.seed, "cursor-member", p.index)
        shown = _shown_email(email) if rng.random() < 0.06 else email
        name = None if rng.random() < 0.04 else p.name
        primary = rng.choices(range(len(MODELS)), weights=(30, 22, 18, 10, 9, 6, 5))[0]
        secondary = rng.choice([i for i in range(len(MODELS)) if i != primary])
        on_demand = 0.0 if rng.random() < 0.55 else rng.uniform(0.05, 0.6)
        override = rng.choice((100, 250)) if rng.random() < 0.1 else 0
        monthly = rng.choice((200, 500)) if rng.random() < 0.3 else None
        number = 100_000 + 7_919 * p.index + offset
        members.append(
            CursorMember(
                person=p,
                number=number,
                encoded_id="user_" + stable_token(org.seed, "cursor-user", p.index, length=26),
                shown_email=shown,
                row_head=f'{{"userId":{number},',
                row_email=f'"email":{json.dumps(shown)},"isActive":',
                name=name,
                role="owner" if email in earliest else "member",
                seat_from=since,
                seat_to=until,
                on_demand=on_demand,
                models=(primary, secondary),
                apply_ext=(rng.choice(APPLY_EXTENSIONS), rng.choice(APPLY_EXTENSIONS)),
                tab_ext=rng.choice(TAB_EXTENSIONS),
                version_lag=rng.choice((0, 0, 0, 1, 1, 2, 3)),
                start_hour=rng.randint(5, 13),
                hard_limit_override_dollars=override,
                monthly_limit_dollars=monthly,
                from_ord=since.toordinal(),
                to_ord=(until or date.max).toordinal(),
            )
        )
    return tuple(sorted(members, key=lambda m: m.number))


@functools.lru_cache(maxsize=4096)
def client_version(day_ord: int, lag: int) -> str:
    """The client a member runs on a day: release k ships every 14 days; members lag 0-3 releases."""
    k = max(0, (day_ord - RELEASE_EPOCH.toordinal()) // 14 - lag)
    return f"{1 + k // 40}.{(k // 4) % 10}.{k % 4}"


# A draw is a 32-bit word of the digest times a constant: word * (k / 2**32) ~ uniform(0, k).
_A0, _A1, _A2, _A3 = 16.8 * _INV32, 12.8 * _INV32, 9.0 * _INV32, 12.0 * _INV32
_A4, _A5, _A6, _A7 = _INV32, 0.06 * _INV32, 2.0 * _INV32, 126.0 * _INV32
_A8, _A9, _A10, _A11 = 0.5 * _INV32, 12.8 * _INV32, 0.35 * _INV32, 20.0 * _INV32
_A12, _A13, _A14 = 0.45 * _INV32, 60.0 * _INV32, 25.0 * _INV32


def final_counters(m: CursorMember, act: Activity, hkey: bytes) -> Counters:
    """The final daily counters of an active member-day, drawn from one keyed digest of the activity seed.

    Hot path of the daily-usage endpoint (~250k calls per year of a 2,000-person team): straight-line
    arithmetic on the digest's sixteen 32-bit words.
    """
    w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, b = _WORDS.unpack(
        hashlib.blake2b(act.seed.to_bytes(8, "little"), key=hkey).digest()
    )
    x = act.intensity
    agent = int(x * (5.6 + _A0 * w0))
    chat = int(x * (1.6 + _A1 * w1))
    composer = int(x * (0.5 + _A2 * w2))
    cmdk = int(x * _A3 * w3)
    bugbot = int(max(0.0, _A4 * w4 - 0.85) * 20)
    reqs = agent + chat + composer + cmdk
    errored = int(reqs * _A5 * w5)
    usage_based = min(reqs - errored, int((reqs - errored) * m.on_demand * _A6 * w6))
    tabs_shown = int(x * (27.0 + _A7 * w7)) + 1  # >= 1: an active day always shows something
    tabs_accepted = int(tabs_shown * (0.2 + _A8 * w8))
    applies = int(x * (1.6 + _A9 * w9))
    accepts = int(applies * (0.6 + _A10 * w10))
    accepted_added = int(accepts * (4.0 + _A11 * w11))
    accepted_deleted = int(accepted_added * _A12 * w12)
    return (  # the last word's four bytes pick the strings
        accepted_added + 2 * tabs_accepted + int(x * _A13 * w13),
        accepted_deleted + int(x * _A14 * w14),
        accepted_added,
        accepted_deleted,
        applies,
        accepts,
        applies - accepts,
        tabs_shown,
        tabs_accepted,
        composer,
        chat,
        agent,
        cmdk,
        reqs - errored - usage_based,
        0,
        usage_based,
        bugbot,
        MODELS[m.models[1] if (b & 0xFF) < 51 else m.models[0]].name if reqs else None,
        (m.apply_ext[1] if ((b >> 8) & 0xFF) < 64 else m.apply_ext[0]) if applies else None,
        "Untitled-1" if ((b >> 16) & 0xFF) < 10 else m.tab_ext,
        None if (b >> 24) < 8 else client_version(act.day.toordinal(), m.version_lag),
    )


def completeness(day: date, now_ms: int, lateness_days: int) -> float:
    """Share of a day's final counts the API shows at `now`: 1.0 once `lateness_days` days have passed.

    Cursor re-aggregates recent days hourly, so a day is provisional until `lateness_days` after it
    ended; in between the share grows with the whole hours since the day began.
    """
    hours = (now_ms - day_ms(day) - DAY_MS) // HOUR_MS  # whole hours since the day ended (< 0 during it)
    if hours >= 24 * lateness_days:
        return 1.0
    return float(max(0.0, (hours + 24) / (24 * (lateness_days + 1))) ** 0.5)


def scale_counters(c: Counters, share: float) -> Counters:
    """Provisional counters: each final count scaled down; strings nulled when their count went to 0."""
    ints = [int(v * share) for v in c[:N_INT]]
    reqs = ints[IDX["composerRequests"]] + ints[IDX["chatRequests"]] + ints[IDX["agentRequests"]]
    reqs += ints[IDX["cmdkUsages"]]
    active = any(ints)
    return (
        *ints,
        c[IDX["mostUsedModel"]] if reqs else None,
        c[IDX["applyMostUsedExtension"]] if ints[IDX["totalApplies"]] else None,
        c[IDX["tabMostUsedExtension"]] if ints[IDX["totalTabsShown"]] else None,
        c[IDX["clientVersion"]] if active else None,
    )


def is_active(c: Counters | None) -> bool:
    return c is not None and any(c[:N_INT])


class CursorModel:
    """The Cursor team of one organisation, with a bounded per-day cache of final counters."""

    DAY_CACHE = 40  # > the 31 days of one maximal daily-usage window, so paging a window reuses its days

    def __init__(self, org: Organisation) -> None:
        self.org = org
        self.seed = org.seed
        self.team_id = 10_000 + stable_int(org.seed, "cursor-team", bits=16)
        self.members = _make_members(org)
        self.by_email = {m.email: m for m in self.members}
        self.by_number = {m.number: m for m in self.members}
        self._hkey = digest(org.seed, "cursor-daily", size=32)
        self._days: LRU[date, DayBlock] = LRU(self.DAY_CACHE)
        # Caches of `cursor_events` (kept here so they live and die with the model).
        self.event_days: LRU[date, tuple[Any, ...]] = LRU(45)
        self.day_totals: LRU[date, dict[int, Any]] = LRU(400)

    def members_between(self, lo: date, hi: date) -> list[CursorMember]:
        """Members holding a seat on at least one day of [lo, hi], by number."""
        return [m for m in self.members if m.overlaps(lo, hi)]

    def cache_days(self, days: int) -> None:
        """Keep up to `days` day blocks (with their final rows' rendered text) in memory from now on.

        A harness that reads a whole range twice (the benchmark warms its range up, then measures) raises
        this above the range's length, so every final day is then served from stored text, as a vendor
        serves stored data. Below a window's 31 days, paging a window would rebuild its days.
        """
        self._days.resize(days)

    def has_data(self, day: date) -> bool:
        """Whether the simulated vendor has history for `day` (the organisation's range)."""
        return self.org.start <= day <= self.org.end

    def day(self, day: date) -> DayBlock:
        """Members and final counters of one day (cached)."""
        return self._days.get_or(day, lambda: self._build_day(day))

    def _build_day(self, day: date) -> DayBlock:
        o = day.toordinal()
        members = tuple(m for m in self.members if m.from_ord <= o <= m.to_ord)
        counters: dict[int, Counters] = {}
        activity: dict[int, Activity] = {}
        by_email = self.by_email
        for act in self.org.activity(day):
            if act.tool != "cursor":
                continue
            m = by_email.get(act.person.email)
            if m is not None and m.from_ord <= o <= m.to_ord:  # activity implies the seat; checked anyway
                counters[m.number] = final_counters(m, act, self._hkey)
                activity[m.number] = act
        day_str, ms = day.isoformat(), day_ms(day)
        part = f'"day":"{day_str}","date":{ms},'
        return DayBlock(day, day_str, ms, members, counters, activity, o, part)

    def days(self, lo: date, hi: date) -> Iterable[DayBlock]:
        d = lo.toordinal()
        while d <= hi.toordinal():
            yield self.day(date.fromordinal(d))
            d += 1


_MODELS: WeakKeyDictionary[Organisation, CursorModel] = WeakKeyDictionary()
_MODELS_LOCK = threading.Lock()


def cursor_model(org: Organisation) -> CursorModel:
    """The (shared, cached) Cursor model of an organisation: simulator and ground truth use the same one."""
    with _MODELS_LOCK:
        model = _MODELS.get(org)
        if model is None:
            model = _MODELS[org] = CursorModel(org)
        return model
