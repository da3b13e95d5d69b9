"""Claude Code report pages with a typed fast path: a clean page goes straight to columns.

Records of the documented shape (vendor-apis.md §1.2: integer counters and integer cents, the actor union,
a ``tool_actions`` map, a ``model_breakdown`` list) are decoded into Structs and built into `Columns`, with
the nested tool actions and per-model breakdown as `RecordLists`; any other page is parsed record by record
by `anthropic.parse_claude_code`, which decides what is quarantined (see `ai_usage.sources.fast`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from ai_usage.columns import Columns, RecordLists
from ai_usage.sources import fast
from ai_usage.sources.anthropic import CLAUDE_CODE, UNKNOWN_TERMINAL, parse_claude_code
from ai_usage.sources.common import BadValue, ParseResult, usd_from_cents

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
_NO_CORE = _Core()
_NO_LINES = _Lines()
_NO_COUNTS = _Counts()
_NO_TOKENS = _Tokens()
_NO_COST = _Cost()


def parse_claude_code_page(page: fast.JsonPage, *, ref_prefix: str = CLAUDE_CODE) -> ParseResult:
    """One API page of the report (one UTC `page.day`) -> one `Columns` batch, or the careful parser's
    rows and `Rejected`."""
    try:
        yield claude_code_columns(page)
    except fast.Fallback:
        yield from parse_claude_code(page.payload, page=page.n, day=page.day, ref_prefix=ref_prefix)


def _text(value: str | None) -> str | None:
    return value if value is not None and value.strip() else None


def _required(value: str | None) -> str:
    if value is None or not value.strip():
        raise fast.Fallback("a required text is blank or missing")
    return value


def claude_code_columns(page: fast.JsonPage) -> Columns:
    """The page's rows as columns, exactly as `parse_claude_code` would build them; `Fallback` otherwise."""
    records = fast.decode_records(page, "data", _DECODER)
    day_of, email_of = fast.day_memo(), fast.email_memo()
    want: date | None = page.day
    row_names = ("usage_date", "actor_type", "actor_id", "terminal_type", "customer_type", "subscription_type",
                 "organization_id", "num_sessions", "lines_added", "lines_removed", "commits_by_claude_code",
                 "pull_requests_by_claude_code", "estimated_cost_usd")
    tool_names = ("tool", "accepted", "rejected")
    model_names = ("model", "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
                   "estimated_cost_usd", "estimated_cost_currency", "estimated_cost_amount_raw")
    rows: tuple[list[Any], ...] = tuple([] for _ in row_names)
    tools: tuple[list[Any], ...] = tuple([] for _ in tool_names)
    models: tuple[list[Any], ...] = tuple([] for _ in model_names)
    # Bound appends: the loop runs once per record and per nested entry (~100k records a year).
    (r_date, r_type, r_actor, r_terminal, r_customer, r_subscription, r_org, r_sessions, r_added, r_removed,
     r_commits, r_prs, r_usd) = (col.append for col in rows)
    t_tool, t_accepted, t_rejected = (col.append for col in tools)
    m_model, m_input, m_output, m_read, m_creation, m_usd, m_currency, m_raw = (col.append for col in models)
    tool_offsets, model_offsets = [0], [0]
    keys: set[tuple[Any, ...]] = set()
    for r in records:
        actor = r.actor
        if actor.type == "user_actor":
            actor_id = email_of(actor.email_address)
        elif actor.type == "api_actor":
            actor_id = _required(actor.api_key_name)
        else:
            raise fast.Fallback(f"actor type {actor.type!r}")
        usage_date = day_of(r.date)
        if want is not None and usage_date != want:
            raise fast.Fallback("a record of another day")
        terminal = _text(r.terminal_type) or UNKNOWN_TERMINAL
        customer = _required(r.customer_type)
        key = (usage_date, actor.type, actor_id, terminal, customer)
        if key in keys:
            raise fast.Fallback("duplicate key")
        keys.add(key)
        core = r.core_metrics or _NO_CORE
        lines = core.lines_of_code or _NO_LINES
        r_date(usage_date)
        r_type(actor.type)
        r_actor(actor_id)
        r_terminal(terminal)
        r_customer(customer)
        r_subscription(_text(r.subscription_type))
        r_org(_text(r.organization_id))
        r_sessions(core.num_sessions)
        r_added(lines.added)
        r_removed(lines.removed)
        r_commits(core.commits_by_claude_code)
        r_prs(core.pull_requests_by_claude_code)
        actions = r.tool_actions
        if actions:
            for tool in sorted(actions):
                counts = actions[tool] or _NO_COUNTS
                t_tool(tool)
                t_accepted(counts.accepted)
                t_rejected(counts.rejected)
        tool_offsets.append(len(tools[0]))
        usd_cents: int | None = None
        for m in r.model_breakdown or ():
            tokens = m.tokens or _NO_TOKENS
            cost = m.estimated_cost or _NO_COST
            amount = cost.amount
            currency = _text(cost.currency)
            if amount is not None and currency is not None and currency.strip().upper() == "USD":
                m_usd(_usd(amount))
                usd_cents = amount + (usd_cents or 0)
            else:
                m_usd(None)
            m_model(_required(m.model))
            m_input(tokens.input)
            m_output(tokens.output)
            m_read(tokens.cache_read)
            m_creation(tokens.cache_creation)
            m_currency(currency)
            m_raw(None if amount is None else str(amount))
        model_offsets.append(len(models[0]))
        # The exact sum of the USD estimates: integer cents add up exactly, converted once.
        r_usd(None if usd_cents is None else _usd(usd_cents))
    return Columns({
        **dict(zip(row_names, rows, strict=True)),
        "tool_actions": RecordLists(tool_offsets, dict(zip(tool_names, tools, strict=True))),
        "model_breakdown": RecordLists(model_offsets, dict(zip(model_names, models, strict=True))),
    })


# Integer cents below this have at most 27 digits: Decimal's 28-digit context shifts them exactly.
_EXACT_CENTS = 10**27


def _usd(cents: int) -> Decimal:
    """USD from integer cents, as `usd_from_cents` gives it (that function decides the rare huge values)."""
    if cents < _EXACT_CENTS:
        return Decimal(cents).scaleb(-2)
    try:
        return usd_from_cents(cents, "estimated_cost.amount")
    except BadValue as exc:
        raise fast.Fallback(str(exc)) from None
