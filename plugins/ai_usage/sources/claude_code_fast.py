"""Claude Code report pages with a typed fast path: a clean page goes straight to columns.

Records of the documented shape (vendor-apis.md §1.2: integer counters and integer cents, the actor union,
a ``tool_actions`` map, a ``model_breakdown`` list) are decoded into Structs and built into `Columns`, with
the nested tool actions and per-model breakdown as `RecordLists`; any other page is parsed record by record
by `anthropic.parse_claude_code`, which decides what is quarantined (see `ai_usage.sources.fast`).
"""

from __future__ import annotations

import functools
import itertools
from decimal import Decimal
from typing import Annotated

import msgspec

from ai_usage.columns import Columns, RecordLists
from ai_usage.sources import fast
from ai_usage.sources.anthropic import CLAUDE_CODE, UNKNOWN_TERMINAL, parse_claude_code
from ai_usage.sources.common import BadValue, usd_from_cents

Cents = Annotated[int, msgspec.Meta(ge=0)]


class _Actor(msgspec.Struct, gc=False):
    type: str
    email_address: str | None = None
    api_key_name: str | None = None


class _Lines(msgspec.Struct, gc=False):
    added: fast.Count | None = None
    removed: fast.Count | None = None


class _Core(msgspec.Struct, gc=False):
    num_sessions: fast.Count | None = None
    lines_of_code: _Lines | None = None
    commits_by_claude_code: fast.Count | None = None
    pull_requests_by_claude_code: fast.Count | None = None


class _Counts(msgspec.Struct, gc=False):
    accepted: fast.Count | None = None
    rejected: fast.Count | None = None


class _Tokens(msgspec.Struct, gc=False):
    input: fast.Count | None = None
    output: fast.Count | None = None
    cache_read: fast.Count | None = None
    cache_creation: fast.Count | None = None


class _Cost(msgspec.Struct, gc=False):
    currency: str | None = None
    amount: Cents | None = None


class _Model(msgspec.Struct, gc=False):
    model: str
    tokens: _Tokens | None = None
    estimated_cost: _Cost | None = None


class _Record(msgspec.Struct, gc=False):
    """One record of the Claude Code report in its documented shape; unknown keys are ignored."""

    date: str
    actor: _Actor
    customer_type: str
    terminal_type: str | None = None
    subscription_type: str | None = None
    organization_id: str | None = None
    core_metrics: _Core | None = None
    tool_actions: dict[str, _Counts | None] | None = None
    model_breakdown: list[_Model] | None = None


_DECODER = msgspec.json.Decoder(list[_Record])
_WIDTH = len(_Record.__struct_fields__)
_ACTOR_TYPES = frozenset({"user_actor", "api_actor"})
_NO_CORE = _Core()
_NO_LINES = _Lines()
_NO_COUNTS = _Counts()
_NO_TOKENS = _Tokens()
_NO_COST = _Cost()


def parse_claude_code_page(page: fast.JsonPage, *, ref_prefix: str = CLAUDE_CODE) -> fast.PageResult:
    """One API page of the report (one UTC `page.day`) -> one `Columns` batch, or the careful parser's
    rows and `Rejected`."""
    try:
        yield claude_code_columns(page)
    except fast.Fallback:
        yield from parse_claude_code(page.payload, page=page.n, day=page.day, ref_prefix=ref_prefix)


def claude_code_columns(page: fast.JsonPage) -> Columns:
    """The page's rows as columns, exactly as `parse_claude_code` would build them; `Fallback` otherwise.

    Column-wise: each field is read off every record (or nested entry) in one comprehension, and the
    careful coercions run once per distinct value.
    """
    records = fast.decode_records(page, "data", _DECODER)
    n = len(records)
    dates, actors, customers, terminals, subscriptions, orgs, cores, actions, breakdowns = fast.transpose(
        records, _WIDTH)
    actor_types = [a.type for a in actors]
    if not set(actor_types) <= _ACTOR_TYPES:
        raise fast.Fallback("an actor type other than user_actor / api_actor")
    email_of = fast.email_memo()
    fast.required_texts([a.api_key_name for a in actors if a.type == "api_actor"])
    actor_ids = [email_of(a.email_address) if a.type == "user_actor" else a.api_key_name for a in actors]
    usage_dates = fast.day_memo().column(dates)
    if n and page.day is not None and set(usage_dates) != {page.day}:
        raise fast.Fallback("a record of another day")
    terminals = [t if t is not None and t.strip() else UNKNOWN_TERMINAL for t in terminals]
    customers = fast.required_texts(customers)
    fast.unique(zip(usage_dates, actor_types, actor_ids, terminals, customers, strict=True), n)
    cores = [c or _NO_CORE for c in cores]
    lines = [c.lines_of_code or _NO_LINES for c in cores]

    tool_items = [sorted(a.items()) if a else () for a in actions]
    tools = list(itertools.chain.from_iterable(tool_items))
    counts = [c or _NO_COUNTS for _, c in tools]

    entries = [b or () for b in breakdowns]
    flat = list(itertools.chain.from_iterable(entries))
    model_offsets = [0, *itertools.accumulate(map(len, entries))]
    tokens = [m.tokens or _NO_TOKENS for m in flat]
    costs = [m.estimated_cost or _NO_COST for m in flat]
    amounts = [c.amount for c in costs]
    currencies = fast.texts([c.currency for c in costs])
    is_usd = {c: c is not None and c.strip().upper() == "USD" for c in set(currencies)}
    usd_cents = [a if a is not None and is_usd[c] else None for a, c in zip(amounts, currencies, strict=True)]

    string, int64 = fast.STRING, fast.INT64
    return Columns({
        "usage_date": usage_dates,  # Python dates: the pipeline counts rows per day on them
        "actor_type": fast.array(actor_types, string),
        "actor_id": fast.array(actor_ids, string),
        "terminal_type": fast.array(terminals, string),
        "customer_type": fast.array(customers, string),
        "subscription_type": fast.array(fast.texts(subscriptions), string),
        "organization_id": fast.array(fast.texts(orgs), string),
        "num_sessions": fast.array([c.num_sessions for c in cores], int64),
        "lines_added": fast.array([x.added for x in lines], int64),
        "lines_removed": fast.array([x.removed for x in lines], int64),
        "commits_by_claude_code": fast.array([c.commits_by_claude_code for c in cores], int64),
        "pull_requests_by_claude_code": fast.array([c.pull_requests_by_claude_code for c in cores], int64),
        "tool_actions": RecordLists([0, *itertools.accumulate(map(len, tool_items))], {
            "tool": fast.array([t for t, _ in tools], string),
            "accepted": fast.array([c.accepted for c in counts], int64),
            "rejected": fast.array([c.rejected for c in counts], int64),
        }),
        # Money stays Decimal objects: the warehouse checks each against the column's precision and scale.
        "model_breakdown": RecordLists(model_offsets, {
            "model": fast.array(fast.required_texts([m.model for m in flat]), string),
            "input_tokens": fast.array([t.input for t in tokens], int64),
            "output_tokens": fast.array([t.output for t in tokens], int64),
            "cache_read_tokens": fast.array([t.cache_read for t in tokens], int64),
            "cache_creation_tokens": fast.array([t.cache_creation for t in tokens], int64),
            "estimated_cost_usd": [None if c is None else _usd(c) for c in usd_cents],
            "estimated_cost_currency": fast.array(currencies, string),
            "estimated_cost_amount_raw": fast.array([None if a is None else str(a) for a in amounts], string),
        }),
        "estimated_cost_usd": _row_sums(usd_cents, model_offsets),
    })


def _row_sums(cents: list[int | None], offsets: list[int]) -> list[Decimal | None]:
    """Each row's exact sum of its USD estimates (None when it has none): integer cents, converted once."""
    if None not in cents:
        totals: list[int] = [0, *itertools.accumulate(cents)]  # type: ignore[list-item]  # no None here
        return [_usd(totals[b] - totals[a]) if b > a else None for a, b in itertools.pairwise(offsets)]
    out: list[Decimal | None] = []
    for a, b in itertools.pairwise(offsets):
        present = [c for c in cents[a:b] if c is not None]
        out.append(_usd(sum(present)) if present else None)
    return out


# Integer cents below this have at most 27 digits: Decimal's 28-digit context shifts them exactly.
_EXACT_CENTS = 10**27


@functools.lru_cache(maxsize=1 << 16)
def _usd(cents: int) -> Decimal:
    """USD from integer cents, as `usd_from_cents` gives it (that function decides the rare huge values)."""
    if cents < _EXACT_CENTS:
        return Decimal(cents).scaleb(-2)
    try:
        return usd_from_cents(cents, "estimated_cost.amount")
    except BadValue as exc:
        raise fast.Fallback(str(exc)) from None
