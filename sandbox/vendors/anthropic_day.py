"""What the Anthropic organisation used and was billed on one UTC day, generated lazily and cached.

A `DayBook` holds, for one day, the Claude Code report's records (one per actor x terminal; a few actors
use two terminals), the token usage per (workspace, key, account, model, tier, context, geo), and the
billed cost lines of the cost report. All three come from one pass over the organisation's activity:

- Claude Code through a personal or unowned API key -> an ``api_actor`` record named by the key's name
  *of that day*, billed to the key's workspace (the Claude Code workspace, or the Default Workspace);
- Claude Code through a Console login -> a ``user_actor`` record (customer_type ``api``), billed to the
  Claude Code workspace, usage with ``api_key_id`` null and the user's ``account_id``;
- Claude Code through a claude.ai seat -> a ``subscription`` record, never billed through the API;
- product-workload keys -> usage and cost in their product workspaces only (`anthropic_billing`).

Money is integer units of 1e-7 cents (see `anthropic_catalog`). The Claude Code report's
``estimated_cost`` is the exact list-price cost scaled by a per-day bias of 0.5-2.5 % (either sign) and
a per-actor jitter of at most 0.5 %, rounded to whole cents: a day's estimates stay within
`ESTIMATE_TOLERANCE` of the billed cost of the same usage, and never equal it.

Speed matters (a year of 2,000 people is one benchmark): one keyed blake2b digest per actor-day gives
all the draws, the hot path builds plain tuples, and only the last `cache_days` books stay in memory
(with the rendered text of their Claude Code records once a final day was served, `cc_texts`).
"""

from __future__ import annotations

import hashlib
import struct
import threading
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sandbox.rng import digest, stable_int
from sandbox.vendors.anthropic_billing import Extras, add_workload, cost_lines
from sandbox.vendors.anthropic_catalog import (
    CONTEXT_STD,
    HAIKU_35,
    HAIKU_45,
    MODELS,
    OPUS_41,
    SONNET_4,
    SONNET_45,
    TERMINALS,
    TOOLS,
    unit_prices,
)
from sandbox.vendors.anthropic_types import (
    ESTIMATE_TOLERANCE,
    LRU,
    CCRecord,
    CostLine,
    DayBook,
    ModelUse,
    UsageKey,
    iter_days,
)

if TYPE_CHECKING:
    from sandbox.org import Organisation

__all__ = ["ESTIMATE_TOLERANCE", "AnthropicDays", "CCRecord", "CostLine", "DayBook", "ModelUse", "iter_days"]

SUBSCRIPTION_TYPE = "team"  # the organisation's claude.ai seats are Team-plan seats
# Who an actor is and where its usage is billed: (actor_type, actor_id, customer_type, subscription_type,
# billed, workspace_id, api_key_id, account_id).
Actor = tuple[str, str, str, str | None, bool, str | None, str | None, str | None]

_W16 = struct.Struct("<16I")
_INV32 = 1.0 / 4294967296.0
_INV16 = 1.0 / 65536.0
_DAY_START_S, _DAY_SPAN_S = 8 * 3600, 16 * 3600 - 1  # activity ends between 08:00 and 23:59:59 UTC


_STD_PRICES = {m: unit_prices(m, "standard", CONTEXT_STD) for m in MODELS}
_GEO = {m: MODELS[m].inference_geo for m in MODELS}
_CUT_EDIT, _CUT_MULTI, _CUT_WRITE, _CUT_NOTEBOOK = (int(share * 256) for _, share in TOOLS)  # TOOLS order
_new = tuple.__new__  # builds NamedTuples without their Python-level __new__ (hot path)
_SCALE = 10**13  # units (1e-7 cents) x parts per million -> cents
_HALF = _SCALE // 2


@dataclass(frozen=True)
class _Traits:
    terminal: str
    second_terminal: str
    opus: bool  # leans on Opus for part of the work
    switch_ord: int  # first day on Sonnet 4.5 / Haiku 4.5


class AnthropicDays:
    """Generates (and caches) the `DayBook` of any day of `org`; identical output for identical input."""

    def __init__(self, org: Organisation, *, subscription_users: bool = False, cache_days: int = 16) -> None:
        self.org = org
        self.subscription_users = subscription_users
        self._hasher = hashlib.blake2b(digest_size=64, key=digest(org.seed, "anthropic-sim", size=32))
        self._ws_name = {w.id: w.name for w in org.workspaces}
        cc_workspace = next((w.id for w in org.workspaces if w.kind == "claude_code"), None)
        user_ids = {u.email: u.id for u in org.users}
        # People who reach Claude Code by logging in: (first day, last day, actor), per access mode.
        self._logins: dict[str, list[tuple[int, int, Actor]]] = {"console": [], "subscription": []}
        for a in org.claude_code_access:
            if a.via not in self._logins:
                continue
            actor: Actor = (
                ("user_actor", a.email, "api", None, True, cc_workspace, None, user_ids.get(a.email))
                if a.via == "console"
                else ("user_actor", a.email, "subscription", SUBSCRIPTION_TYPE, False, None, None, None)
            )
            hi = a.valid_to.toordinal() if a.valid_to else date.max.toordinal()
            self._logins[a.via].append((a.valid_from.toordinal(), hi, actor))
        self._traits: dict[str, _Traits] = {}
        self._books = LRU(cache_days)
        self._costs = LRU(4000)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ public

    def book(self, day: date) -> DayBook:
        """Everything of `day` (cached for the last `cache_days` days asked for)."""
        book = self._books.get(day)
        if book is None:
            book = self._generate(day)
            self._books.put(day, book)
            self._costs.put(day, book.costs)
        assert isinstance(book, DayBook)
        return book

    def cache_days(self, days: int) -> None:
        """Keep the last `days` day books from now on; the books already generated stay (up to `days`)."""
        self._books.resize(days)

    def costs(self, day: date) -> tuple[CostLine, ...]:
        """The day's final cost lines (kept much longer than full books: they are small)."""
        costs = self._costs.get(day)
        if costs is None:
            costs = self.book(day).costs
        assert isinstance(costs, tuple)
        return costs

    def day_bias_ppm(self, day: date) -> int:
        """The day's systematic estimate bias in parts per million: +-(5,000..25,000)."""
        x = stable_int(self.org.seed, "anthropic-estimate-bias", day.toordinal(), bits=32)
        magnitude = 5_000 + (x >> 1) % 20_001
        return magnitude if x & 1 else -magnitude

    # ------------------------------------------------------------------ generation

    def _generate(self, day: date) -> DayBook:
        o = day.toordinal()
        factor = 1_000_000 + self.day_bias_ppm(day)
        records: list[CCRecord] = []
        usage: dict[UsageKey, list[int]] = {}
        extras: Extras = {}
        for ka in self.org.key_activity(day):
            key = ka.api_key
            if ka.tool == "api":
                ws = key.workspace_id
                add_workload(
                    self._words(ka.seed), ka.intensity, key.id, ws, self._ws_name.get(ws, ""), usage, extras
                )
                continue
            traits = self._trait(ka.person.email if ka.person else "key:" + key.id)
            actor: Actor = ("api_actor", key.name_on(day), "api", None, True, key.workspace_id, key.id, None)
            self._cc_records(ka.seed, ka.intensity, o, factor, traits, actor, records, usage)
        for via in ("console", "subscription") if self.subscription_users else ("console",):
            for lo, hi, actor in self._logins[via]:
                if lo <= o <= hi:
                    email = actor[1]
                    for act in self.org.activity_of(email, day):
                        if act.tool == "claude_code":
                            traits = self._trait(email)
                            self._cc_records(
                                act.seed, act.intensity, o, factor, traits, actor, records, usage
                            )
        records.sort(key=CCRecord.sort_key)
        frozen = {k: tuple(v) for k, v in usage.items()}
        return DayBook(day, tuple(records), frozen, cost_lines(frozen, extras))

    def _trait(self, who: str) -> _Traits:
        t = self._traits.get(who)
        if t is None:
            x = stable_int(self.org.seed, "anthropic-traits", who, bits=64)
            n = len(TERMINALS)
            first = x % n
            second = (first + 1 + (x // n) % (n - 1)) % n
            span = max(1, self.org.days)
            switch = self.org.start.toordinal() + span * (30 + (x >> 20) % 41) // 100
            t = _Traits(TERMINALS[first], TERMINALS[second], (x >> 40) % 5 == 0, switch)
            with self._lock:
                self._traits[who] = t
        return t

    def _words(self, seed: int) -> tuple[int, ...]:
        h = self._hasher.copy()
        h.update(seed.to_bytes(8, "little"))
        return _W16.unpack(h.digest())

    def _cc_records(
        self,
        seed: int,
        i: float,
        o: int,
        factor: int,
        traits: _Traits,
        ctx: Actor,
        out: list[CCRecord],
        usage: dict[UsageKey, list[int]],
    ) -> None:
        """Append one or two records (two terminals) of one actor's Claude Code day; add billed usage."""
        w = self._words(seed)
        sessions = 1 + int(i * 3.0 * w[1] * _INV32)
        added = int(i * 350.0 * (0.2 + 1.6 * w[2] * _INV32))
        removed = int(added * (0.05 + 0.6 * w[3] * _INV32))
        commits = int(i * 4.0 * w[4] * _INV32)
        prs = int(commits * 0.6 * w[5] * _INV32)
        bits = w[6]
        tools = []
        if (bits & 0xFF) < _CUT_EDIT:
            a = int(i * 30.0 * (w[7] & 0xFFFF) * _INV16)
            tools.append(("edit_tool", a, int(a * 0.25 * (w[7] >> 16) * _INV16)))
        if ((bits >> 8) & 0xFF) < _CUT_MULTI:
            a = int(i * 10.0 * (w[8] & 0xFFFF) * _INV16)
            tools.append(("multi_edit_tool", a, int(a * 0.25 * (w[8] >> 16) * _INV16)))
        if ((bits >> 16) & 0xFF) < _CUT_WRITE:
            a = int(i * 10.0 * (w[9] & 0xFFFF) * _INV16)
            tools.append(("write_tool", a, int(a * 0.25 * (w[9] >> 16) * _INV16)))
        if (bits >> 24) < _CUT_NOTEBOOK:
            a = int(i * 10.0 * (w[10] & 0xFFFF) * _INV16)
            tools.append(("notebook_edit_tool", a, int(a * 0.25 * (w[10] >> 16) * _INV16)))
        t = i if i > 0.25 else 0.25  # even a short day reads the system prompt and tools: a token floor
        w11, w12, w13 = w[11], w[12], w[13]
        t_in = t * (0.5 + (w11 & 0xFFFF) * _INV16)
        t_out = t * (0.5 + (w11 >> 16) * _INV16)
        t_read = t * (0.5 + (w12 & 0xFFFF) * _INV16)
        t_write = t * (0.5 + (w12 >> 16) * _INV16)
        h1 = ((w13 >> 8) & 0xFF) / 512.0 if (w13 & 0xFF) < 40 else 0.0  # share of cache writes kept 1h
        newer = o >= traits.switch_ord
        main = SONNET_45 if newer else SONNET_4
        if traits.opus:
            opus = 0.3 + 0.4 * ((w13 >> 24) / 256.0)
            plan = ((main, 1.0 - opus), (OPUS_41, opus))
        else:
            plan = ((main, 1.0),)
        uses: list[tuple[str, int, int, int, int, int]] = []  # model, input, output, read, 5m, 1h
        for model, share in plan:
            write = int(300_000 * t_write * share)
            one_h = int(write * h1)
            uses.append(
                (
                    model,
                    int(150_000 * t_in * share),
                    int(60_000 * t_out * share),
                    int(5_000_000 * t_read * share),
                    write - one_h,
                    one_h,
                )
            )
        if ((w13 >> 16) & 0xFF) < 180:  # background Haiku calls (titles, summaries)
            uses.append((HAIKU_45 if newer else HAIKU_35, int(30_000 * t_in), int(4_000 * t_out), 0, 0, 0))
        factor += ((w[15] & 0xFFFF) * 10_001 >> 16) - 5_000  # +-0.5 % per-actor jitter on the day's bias
        end1 = _DAY_START_S + int(w[14] * _INV32 * _DAY_SPAN_S)
        extra = ((w[15] >> 16) & 0xFF) < 13
        if ctx[4]:  # billed: the actor's usage of the day, before any split into terminals
            ws, key_id, account = ctx[5], ctx[6], ctx[7]
            for model, tin, tout, tread, t5, t1 in uses:
                uk = (ws, key_id, account, model, "standard", CONTEXT_STD, _GEO[model])
                vec = usage.get(uk)
                if vec is None:
                    usage[uk] = [tin, t1, t5, tread, tout, 0]
                else:
                    vec[0] += tin
                    vec[1] += t1
                    vec[2] += t5
                    vec[3] += tread
                    vec[4] += tout
        counts = (sessions, added, removed, commits, prs)
        if (w[0] & 0xFF) >= 26:
            out.append(_record(ctx, traits.terminal, end1, counts, tools, uses, factor, extra))
            return
        # This actor used two terminals today: two records splitting the day's work exactly.
        s = 0.25 + 0.5 * ((w[0] >> 8) & 0xFF) / 256.0
        end2 = _DAY_START_S + ((w[0] >> 16) * _DAY_SPAN_S >> 16)
        c2 = tuple(int(c * s) for c in counts)
        t2 = [(name, int(a * s), int(r * s)) for name, a, r in tools]
        u2 = [(m, int(a * s), int(b * s), int(c * s), int(d * s), int(e * s)) for m, a, b, c, d, e in uses]
        c1 = tuple(c - d for c, d in zip(counts, c2, strict=True))
        t1 = [(x[0], x[1] - y[1], x[2] - y[2]) for x, y in zip(tools, t2, strict=True)]
        u1 = [
            (x[0], x[1] - y[1], x[2] - y[2], x[3] - y[3], x[4] - y[4], x[5] - y[5])
            for x, y in zip(uses, u2, strict=True)
        ]
        out.append(_record(ctx, traits.terminal, end1, c1, t1, u1, factor, extra))
        out.append(_record(ctx, traits.second_terminal, end2, c2, t2, u2, factor, False))


def _record(
    ctx: Actor,
    terminal: str,
    end_s: int,
    counts: tuple[int, ...],
    tools: list[tuple[str, int, int]],
    uses: list[tuple[str, int, int, int, int, int]],
    factor: int,
    extra: bool,
) -> CCRecord:
    """One record: model entries priced exactly, the estimate rounded half up to whole cents."""
    models = []
    for model, tin, tout, tread, t5, t1 in uses:
        if tin or tout or tread or t5 or t1:
            p = _STD_PRICES[model]
            units = tin * p[0] + t1 * p[1] + t5 * p[2] + tread * p[3] + tout * p[4]
            models.append(
                _new(ModelUse, (model, tin, tout, tread, t5, t1, units, (units * factor + _HALF) // _SCALE))
            )
    actor_type, actor_id, customer, sub_type, billed, ws, key_id, account = ctx
    return _new(  # type: ignore[no-any-return]
        CCRecord,
        (
            actor_type,
            actor_id,
            terminal,
            customer,
            sub_type,
            counts[0] or 1,
            counts[1],
            counts[2],
            counts[3],
            counts[4],
            tuple(tools),
            tuple(models),
            end_s,
            billed,
            ws,
            key_id,
            account,
            extra,
        ),
    )
