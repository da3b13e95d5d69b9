"""Cursor usage events of the organisation, generated lazily per (member, day) to match the daily counters.

Each active member-day expands into one event per request counted in its FINAL daily counters (the
mapping is in `cursor_model`'s docstring), at times inside the member's working hours (UTC). Money is
`Decimal` cents with at most six decimals, so every amount survives a JSON float exactly:

- token-based calls: ``tokenUsage.totalCents`` = token prices x tokens (x 1.2 in Max mode, less the
  negotiated ``discountPercentOff``); about 5 % of them show the float-noise figure the vendor emits
  (``40.16699999999999``) instead. Third-party models add ``cursorTokenFee`` ($0.25 per million tokens).
- request-based calls (Cmd+K, some chat) cost ``requestsCosts`` x 4 cents.
- ``chargedCents`` = model cost + token fee for chargeable kinds ("Usage-based", "Included in Business"),
  0 for the others ("Errored, Not Charged", "Aborted, Not Charged", "Free").

Spend of a member over any period = the sum of ``chargedCents`` of its chargeable events; the on-demand
part = the same sum over "Usage-based" events. One service account ("Nightly CI Agent", no e-mail) runs
on weekdays at 02:00 UTC; its events are billed but belong to no member, so they are in no member's spend
and in no daily row. About 1 % of consecutive same-conversation events share their millisecond.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import NamedTuple

from sandbox.rng import stable_rng, stable_token
from sandbox.vendors.cursor_model import (
    DAY_MS,
    HOUR_MS,
    IDX,
    MODEL_BY_NAME,
    MODELS,
    Counters,
    CursorMember,
    CursorModel,
    ModelInfo,
    day_ms,
    instant_ms,
    ms_day,
)

USAGE_BASED = "Usage-based"
INCLUDED = "Included in Business"
ERRORED = "Errored, Not Charged"
ABORTED = "Aborted, Not Charged"
FREE = "Free"
CHARGEABLE_KINDS = frozenset({USAGE_BASED, INCLUDED})
CENTS_PER_REQUEST = Decimal(4)
TOKEN_FEE_CENTS = Decimal("0.000025")  # Cursor Token Rate: $0.25 per million tokens, in cents per token
MAX_MODE_FACTOR = Decimal("1.2")
_MICRO = Decimal("0.000001")
_TENTH = Decimal("0.1")
_SALT = 0x5EED_C0C5_0F_E7E7
_ZERO = Decimal(0)
_REQUEST_UNITS = {"bugbot": _ZERO, "cmdk": Decimal("0.5")}


@dataclass(frozen=True)
class ServiceAccount:
    id: str
    name: str


class Event(NamedTuple):
    """One usage event as the model knows it (money in Decimal cents, exactly what the JSON shows)."""

    ts: int  # epoch ms
    who: int  # order key: member number, 0 for the service account
    seq: int  # position among the member-day's events (oldest first)
    member: CursorMember | None
    service_account: ServiceAccount | None
    model: str
    kind: str
    max_mode: bool
    requests_costs: Decimal
    token_based: bool
    chargeable: bool
    headless: bool
    tokens: tuple[int, int, int, int] | None  # input, output, cache write, cache read
    total_cents: Decimal | None  # tokenUsage.totalCents as shown (may carry float noise)
    discount_percent: int | None
    charged_cents: Decimal
    token_fee_cents: Decimal | None
    conversation_id: str | None
    cloud_agent_id: str | None
    automation_id: str | None

    @property
    def sort_key(self) -> tuple[int, int, int]:
        """API order: newest first; within a millisecond by member and generation order."""
        return (-self.ts, self.who, self.seq)


def service_account(seed: int) -> ServiceAccount:
    return ServiceAccount("sa_" + stable_token(seed, "cursor-sa", length=20), "Nightly CI Agent")


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def token_cost(info: ModelInfo, tokens: tuple[int, int, int, int], max_mode: bool) -> Decimal:
    """Model cost in cents, exact to the micro-cent: sum of tokens x USD-per-million prices."""
    cents = sum((Decimal(n) * p for n, p in zip(tokens, info.prices, strict=True)), _ZERO) / 10_000
    if max_mode:
        cents *= MAX_MODE_FACTOR
    if info.discount_percent:
        cents = cents * (100 - info.discount_percent) / 100
    return cents.quantize(_MICRO, ROUND_HALF_EVEN)


def _noisy(info: ModelInfo, tokens: tuple[int, int, int, int], max_mode: bool) -> Decimal | None:
    """The same cost computed in binary floats, as the vendor sometimes shows it (e.g. 40.16699999999999)."""
    f = sum(n * float(p) for n, p in zip(tokens, info.prices, strict=True)) / 10_000.0
    if max_mode:
        f *= 1.2
    if info.discount_percent:
        f = f * (100 - info.discount_percent) / 100.0
    text = repr(f)
    return None if "e" in text or f < 0.001 else Decimal(text)


def _charge(
    info: ModelInfo, tokens: tuple[int, int, int, int], max_mode: bool
) -> tuple[Decimal, Decimal | None]:
    fee = (sum(tokens) * TOKEN_FEE_CENTS).quantize(_MICRO) if info.third_party else None
    return token_cost(info, tokens, max_mode), fee


def member_day_events(m: CursorMember, c: Counters, seed: int, day: date) -> list[Event]:
    """The events behind one active member-day's final counters `c` (oldest first)."""
    rng = random.Random(seed ^ _SALT)
    n_agent, n_chat = c[IDX["agentRequests"]], c[IDX["chatRequests"]]
    n_comp, n_cmdk = c[IDX["composerRequests"]], c[IDX["cmdkUsages"]]
    n_ub, n_inc = c[IDX["usageBasedReqs"]], c[IDX["subscriptionIncludedReqs"]]
    n_bug = c[IDX["bugbotUsages"]]
    features = ["agent"] * n_agent + ["chat"] * n_chat + ["composer"] * n_comp + ["cmdk"] * n_cmdk
    n = len(features)
    kinds = [USAGE_BASED] * n_ub + [INCLUDED] * n_inc
    kinds += [ERRORED if rng.random() < 0.7 else ABORTED for _ in range(n - len(kinds))]
    rng.shuffle(features)
    rng.shuffle(kinds)
    models = [""] * n
    if n:
        top = str(c[IDX["mostUsedModel"]])
        others = [x.name for x in MODELS if x.name != top]
        order = list(range(n))
        rng.shuffle(order)
        for j, pos in enumerate(order):  # more than half use the day's most-used model
            models[pos] = top if j <= n // 2 else rng.choice(others)
    plan = list(zip(features, kinds, models, strict=True)) + [("bugbot", FREE, "default")] * n_bug
    rng.shuffle(plan)
    convs = [_uuid(rng) for _ in range(1 + n // 8)]
    base = day_ms(day) + m.start_hour * HOUR_MS
    stamps = sorted(base + int(rng.random() * 10 * HOUR_MS) for _ in plan)
    events: list[Event] = []
    for seq, ((feature, kind, model), ts) in enumerate(zip(plan, stamps, strict=True)):
        info = MODEL_BY_NAME[model]
        conv = rng.choice(convs) if feature in ("agent", "chat", "composer") else None
        max_mode = feature in ("agent", "composer") and rng.random() < 0.15
        cloud = "bc-" + _uuid(rng) if feature == "agent" and rng.random() < 0.08 else None
        token_based = feature not in ("cmdk", "bugbot") and rng.random() < 0.92
        chargeable = kind in CHARGEABLE_KINDS
        tokens: tuple[int, int, int, int] | None = None
        total: Decimal | None = None
        fee: Decimal | None = None
        if token_based:
            k = 2 if max_mode else 1
            tokens = (
                k * int(300 + rng.random() * 4000),
                k * int(100 + rng.random() * 2500),
                k * int(rng.random() * 15000) if rng.random() < 0.7 else 0,
                k * int(rng.random() * 120000),
            )
            clean, fee = _charge(info, tokens, max_mode)
            shown = _noisy(info, tokens, max_mode) if rng.random() < 0.05 else None
            total = shown if shown is not None else clean
            costs = (clean / 4).quantize(_TENTH)
            charged = clean + (fee or _ZERO) if chargeable else _ZERO
        else:  # request-priced: Bugbot is free, Cmd+K half a request, Max mode two
            costs = _REQUEST_UNITS.get(feature, Decimal(2 if max_mode else 1))
            charged = costs * CENTS_PER_REQUEST if chargeable else _ZERO
        if events and rng.random() < 0.01:
            prev = events[-1]
            if prev.model == model and prev.conversation_id == conv:
                ts = prev.ts  # a same-millisecond twin (stamps are sorted, so order still holds)
        events.append(
            Event(
                ts=ts,
                who=m.number,
                seq=seq,
                member=m,
                service_account=None,
                model=model,
                kind=kind,
                max_mode=max_mode,
                requests_costs=costs,
                token_based=token_based,
                chargeable=chargeable,
                headless=feature == "bugbot" or cloud is not None,
                tokens=tokens,
                total_cents=total,
                discount_percent=info.discount_percent if token_based else None,
                charged_cents=charged,
                token_fee_cents=fee,
                conversation_id=conv,
                cloud_agent_id=cloud,
                automation_id=None,
            )
        )
    return events


def _service_account_events(model: CursorModel, day: date) -> list[Event]:
    if day.weekday() >= 5:
        return []
    sa = service_account(model.seed)
    rng = stable_rng(model.seed, "cursor-sa-run", day.toordinal())
    info = MODEL_BY_NAME["claude-4.5-sonnet"]
    automation = _uuid(rng)
    ts = day_ms(day) + 2 * HOUR_MS + rng.randint(0, 1_800_000)
    events = []
    for seq in range(rng.randint(3, 8)):
        ts += rng.randint(20_000, 120_000)
        tokens = (
            int(500 + rng.random() * 6000),
            int(200 + rng.random() * 3000),
            0,
            int(rng.random() * 60000),
        )
        clean, fee = _charge(info, tokens, False)
        events.append(
            Event(
                ts=ts,
                who=0,
                seq=seq,
                member=None,
                service_account=sa,
                model=info.name,
                kind=USAGE_BASED,
                max_mode=False,
                requests_costs=(clean / 4).quantize(_TENTH),
                token_based=True,
                chargeable=True,
                headless=True,
                tokens=tokens,
                total_cents=clean,
                discount_percent=info.discount_percent,
                charged_cents=clean + (fee or _ZERO),
                token_fee_cents=fee,
                conversation_id=_uuid(rng),
                cloud_agent_id=None,
                automation_id=automation,
            )
        )
    return events


def day_events(model: CursorModel, day: date, *, service_accounts: bool = True) -> tuple[Event, ...]:
    """Every event of a UTC day in API order (newest first); empty outside the organisation's history."""

    def build() -> tuple[Event, ...]:
        if not model.has_data(day):
            return ()
        block = model.day(day)
        events: list[Event] = []
        for number, c in block.counters.items():
            events.extend(member_day_events(model.by_number[number], c, block.activity[number].seed, day))
        events.extend(_service_account_events(model, day))
        return tuple(sorted(events, key=lambda e: e.sort_key))

    events = model.event_days.get_or(day, build)
    return events if service_accounts else tuple(e for e in events if e.member is not None)


def window_events(
    model: CursorModel, start_ms: int, end_ms: int, now_ms: int, *, service_accounts: bool = True
) -> Iterator[Event]:
    """Events with start_ms <= timestamp <= end_ms (both inclusive) that exist by `now_ms`, in API order."""
    hi = min(ms_day(min(end_ms, now_ms)), model.org.end)
    lo = max(ms_day(max(start_ms, 0)), model.org.start)
    d = hi
    while d >= lo:
        for e in day_events(model, d, service_accounts=service_accounts):
            if start_ms <= e.ts <= end_ms and e.ts <= now_ms:
                yield e
        d -= timedelta(days=1)


# --------------------------------------------------------------------------- spend

Totals = tuple[Decimal, Decimal, int]  # overall cents, on-demand cents, usage-based events


def _sum(events: Iterator[Event] | tuple[Event, ...]) -> dict[int, Totals]:
    out: dict[int, Totals] = {}
    for e in events:
        if e.member is None or not e.chargeable:
            continue
        overall, on_demand, n = out.get(e.who, (_ZERO, _ZERO, 0))
        if e.kind == USAGE_BASED:
            on_demand, n = on_demand + e.charged_cents, n + 1
        out[e.who] = (overall + e.charged_cents, on_demand, n)
    return out


def _full_day_totals(model: CursorModel, day: date) -> dict[int, Totals]:
    return model.day_totals.get_or(day, lambda: _sum(day_events(model, day)))


def cycle_start(today: date) -> date:
    """The billing cycle modelled: calendar months, starting on the 1st at 00:00 UTC."""
    return today.replace(day=1)


def spend_members(model: CursorModel, today: date) -> list[CursorMember]:
    """Members in the spend listing: listed today and holding the seat on some day of the current cycle."""
    start = cycle_start(today)
    return [m for m in model.members if m.listed_on(today) and m.overlaps(start, today)]


def spend_totals(model: CursorModel, now: datetime) -> dict[int, Totals]:
    """Per member number, the cycle-to-date totals of chargeable events with timestamp <= now."""
    now_ms = instant_ms(now)
    today = ms_day(now_ms)
    out: dict[int, Totals] = {}
    d = max(cycle_start(today), model.org.start)
    while d <= min(today, model.org.end):
        if day_ms(d) + DAY_MS <= now_ms:
            part = _full_day_totals(model, d)
        else:  # the day in progress: only what happened by now
            part = _sum(e for e in day_events(model, d) if e.ts <= now_ms)
        for who, (a, b, n) in part.items():
            x, y, k = out.get(who, (_ZERO, _ZERO, 0))
            out[who] = (x + a, y + b, k + n)
        d += timedelta(days=1)
    return out
