"""The lazy activity model: (person, tool, day) -> active? and how intensely, in O(1) per (person, day).

One keyed blake2b digest per (person, day) yields eight 32-bit words: two per tool (active draw,
intensity draw) and two for a per-record seed that vendor simulators expand into their own counters
(`Activity.rng()`). Nothing is precomputed per day, so any day of any size of organisation can be
streamed; a day of 2,000 people costs a few milliseconds.

Intensity ~ 1.0 is a typical active day of a typical user; simulators scale it into sessions, lines,
tokens or cents. Activity is much lower on Saturdays and Sundays (UTC) and ramps up mildly over the
range (adoption). Idle seat holders have no profile and are never active.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from sandbox.gen_tools import ToolProfile
from sandbox.model import ApiKey, Person
from sandbox.rng import digest

WEEKEND_FACTOR = 0.12  # probability multiplier for people on Saturday/Sunday
WEEKEND_INTENSITY = 0.6
_WORDS = struct.Struct("<8I")
_TWO32 = float(1 << 32)
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_NEVER = date.max.toordinal()


class Activity(NamedTuple):
    """One person active with one tool on one UTC day."""

    person: Person
    tool: str
    intensity: float
    day: date
    seed: int  # stable per (person, tool, day): expand with `rng()` into vendor counters
    via: str | None = None  # Claude Code only: "api_key" | "console" | "subscription"
    api_key_id: str | None = None  # Claude Code via API key: the key used that day

    def rng(self) -> random.Random:
        return random.Random(self.seed)


class KeyActivity(NamedTuple):
    """One Anthropic API key used on one UTC day (personal Claude Code keys, unowned keys, workloads)."""

    api_key: ApiKey
    tool: str  # "claude_code" | "api" (product workloads: not developer tooling)
    intensity: float
    day: date
    seed: int
    person: Person | None = None

    def rng(self) -> random.Random:
        return random.Random(self.seed)


@dataclass(frozen=True)
class KeyProfile:
    """Usage profile of a key that is not a person's own Claude Code key."""

    api_key: ApiKey
    tool: str
    propensity: float
    scale: float
    weekend_factor: float


_ProfileRow = tuple[int, str, float, float, int, int, str | None, tuple[tuple[str, int, int], ...]]


def _ord(day: date | None) -> int:
    return _NEVER if day is None else day.toordinal()


def _intensity(scale: float, word: int) -> float:
    # 0.3 floor + an exponential tail: mean ~= scale, occasional heavy days.
    return scale * (0.3 + 0.7 * -math.log1p(-(word / _TWO32) * 0.999))


class ActivityModel:
    """Streams activity per day; see the module docstring for the model."""

    def __init__(
        self,
        seed: int,
        start: date,
        end: date,
        people: tuple[Person, ...],
        profiles: Mapping[int, tuple[ToolProfile, ...]],
        key_profiles: tuple[KeyProfile, ...],
        keys_by_id: Mapping[str, ApiKey],
    ) -> None:
        self._hkey = digest(seed, "activity", size=32)
        self._start, self._end = start.toordinal(), end.toordinal()
        self._keys_by_id = keys_by_id
        self._key_profiles = key_profiles
        self._rows: list[tuple[Person, bytes, int, int, tuple[_ProfileRow, ...]]] = []
        self._row_of: dict[str, int] = {}
        self._key_users: list[int] = []  # rows of people who use Claude Code through their own API key
        for p in people:
            tools = tuple(
                (
                    t.slot,
                    t.tool,
                    t.propensity * _TWO32,
                    t.scale,
                    _ord(t.valid_from),
                    _ord(t.valid_to),
                    t.via,
                    tuple((k, _ord(a), _ord(b)) for k, a, b in t.keys),
                )
                for t in profiles.get(p.index, ())
            )
            if not tools:
                continue
            self._row_of[p.email] = len(self._rows)
            if any(t[6] == "api_key" for t in tools):
                self._key_users.append(len(self._rows))
            self._rows.append(
                (p, b"P" + p.index.to_bytes(4, "little"), _ord(p.join_date), _ord(p.leave_date), tools)
            )

    def _words(self, who: bytes, day_ord: int) -> tuple[int, ...]:
        h = hashlib.blake2b(who + day_ord.to_bytes(4, "little"), digest_size=32, key=self._hkey).digest()
        return _WORDS.unpack(h)

    def _factors(self, day: date) -> tuple[float, float]:
        """(probability multiplier, intensity multiplier) of a day: weekend dip and a mild adoption ramp."""
        span = max(1, self._end - self._start)
        ramp = 0.8 + 0.2 * (day.toordinal() - self._start) / span
        weekend = day.weekday() >= 5
        return ramp * (WEEKEND_FACTOR if weekend else 1.0), WEEKEND_INTENSITY if weekend else 1.0

    def _row_activity(
        self,
        row: tuple[Person, bytes, int, int, tuple[_ProfileRow, ...]],
        day: date,
        o: int,
        prob: float,
        inten: float,
    ) -> Iterator[Activity]:
        person, who, join, leave, tools = row
        if o < join or o > leave:
            return
        w = self._words(who, o)
        base_seed = (w[6] << 32) | w[7]
        for slot, tool, threshold, scale, vf, vt, via, keys in tools:
            if o < vf or o > vt or w[2 * slot] >= threshold * prob:
                continue
            key_id = None
            if via == "api_key":
                key_id = next((k for k, a, b in keys if a <= o <= b), None)
                if key_id is None:
                    continue  # no usable key that day
            seed = (base_seed ^ ((slot + 1) * _GOLDEN)) & _MASK64
            yield Activity(person, tool, _intensity(scale, w[2 * slot + 1]) * inten, day, seed, via, key_id)

    def for_day(self, day: date) -> Iterator[Activity]:
        """Every (person, tool) active on `day`, lazily; nothing outside the organisation's range."""
        o = day.toordinal()
        if o < self._start or o > self._end:
            return
        prob, inten = self._factors(day)
        for row in self._rows:
            yield from self._row_activity(row, day, o, prob, inten)

    def for_person(self, email: str, day: date) -> list[Activity]:
        """The activity of one person on one day (O(1))."""
        o = day.toordinal()
        i = self._row_of.get(email)
        if i is None or o < self._start or o > self._end:
            return []
        prob, inten = self._factors(day)
        return list(self._row_activity(self._rows[i], day, o, prob, inten))

    def keys_for_day(self, day: date) -> Iterator[KeyActivity]:
        """Every API key used on `day`: personal Claude Code keys, unowned keys and product workloads."""
        o = day.toordinal()
        if o < self._start or o > self._end:
            return
        prob, inten = self._factors(day)
        for i in self._key_users:
            for act in self._row_activity(self._rows[i], day, o, prob, inten):
                if act.api_key_id is not None:
                    key = self._keys_by_id[act.api_key_id]
                    yield KeyActivity(key, "claude_code", act.intensity, day, act.seed, act.person)
        weekend = day.weekday() >= 5
        for kp in self._key_profiles:
            if not kp.api_key.usable_on(day):
                continue
            w = self._words(b"K" + kp.api_key.id.encode("ascii"), o)
            p = kp.propensity * (kp.weekend_factor if weekend else 1.0)
            if w[0] >= p * _TWO32:
                continue
            yield KeyActivity(kp.api_key, kp.tool, _intensity(kp.scale, w[1]), day, (w[6] << 32) | w[7], None)
