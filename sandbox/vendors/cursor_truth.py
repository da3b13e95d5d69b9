"""Ground truth of the Cursor source: the FINAL rows the warehouse must hold, in the shape of the contracts.

Computed from the organisation's Cursor model (`cursor_model`, `cursor_events`), never from the HTTP API
or its JSON, with the columns of ``include/schemas/raw/cursor_*.json`` minus the lineage columns
``_ingested_at`` / ``_run_id``. Conventions of the contracts: e-mails lowercased, days as `date`,
instants as aware UTC `datetime`, money as `Decimal` USD = cents / 100 exactly (rounded half-even to 9
decimals only when it has more), the vendor's number text kept in the ``*_raw`` columns.

- `expected_daily_usage`: the paginated variant, which the pipeline calls: one row per day and member
  holding a seat that day, including all-zero ``is_active = False`` rows, for the days of the
  organisation's history inside [start, end]. Values are final (what the API serves once a day is
  past the lateness window; `last_final_day` tells which days are), or with ``as_of=`` exactly what
  the API serves at that instant, provisional days included.
- `expected_members`: the listing as taken on `snapshot_date` (removed members included).
- `expected_spend`: the spend listing as of an instant (cycle start to that instant).
- `expected_usage_events`: every event in [start, end], with the contract's `event_key`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from sandbox.vendors.cursor_events import Event, cycle_start, spend_members, spend_totals, window_events
from sandbox.vendors.cursor_model import (
    DAILY_INT_FIELDS,
    DAILY_STR_FIELDS,
    N_INT,
    completeness,
    cursor_model,
    day_ms,
    instant_ms,
    is_active,
    scale_counters,
)
from sandbox.vendors.cursor_render import num_text

if TYPE_CHECKING:
    from sandbox.org import Organisation

Row = dict[str, Any]
_NANO = Decimal("0.000000001")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def snake(name: str) -> str:
    """Vendor camelCase -> contract snake_case (``totalLinesAdded`` -> ``total_lines_added``)."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


DAILY_COLUMNS: tuple[str, ...] = tuple(snake(f) for f in DAILY_INT_FIELDS + DAILY_STR_FIELDS)


def usd(cents: Decimal) -> Decimal:
    """USD from cents exactly; more than 9 decimal places are rounded half-even to 9 (NUMERIC(38, 9))."""
    value = cents.scaleb(-2)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -9:
        value = value.quantize(_NANO, ROUND_HALF_EVEN)
    return value


def ms_instant(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


# --------------------------------------------------------------------------- daily usage


def last_final_day(as_of: datetime, lateness_days: int = 2) -> date:
    """The newest UTC day whose daily usage is final at `as_of` (ended at least `lateness_days` ago)."""
    return (_as_instant(as_of) - timedelta(days=lateness_days)).date() - timedelta(days=1)


def expected_daily_usage(
    org: Organisation,
    start: date,
    end: date,
    *,
    as_of: datetime | None = None,
    lateness_days: int = 2,
) -> list[Row]:
    """raw.cursor_daily_usage rows for the UTC days [start, end], sorted by (usage_date, email).

    Final values by default. With `as_of`, the rows exactly as the simulator serves them at that instant
    (days after it absent, days inside the lateness window provisional), i.e. what a run at `as_of` lands.
    """
    model = cursor_model(org)
    lo, hi = max(start, org.start), min(end, org.end)
    now_ms = None
    if as_of is not None:
        now_ms = instant_ms(_as_instant(as_of))
        hi = min(hi, _as_instant(as_of).date())
    rows: list[Row] = []
    d = lo
    while d <= hi:
        block = model.day(d)
        share = 1.0 if now_ms is None else completeness(d, now_ms, lateness_days)
        for m in block.members:
            c = block.counters.get(m.number)
            if c is not None and share < 1.0:
                c = scale_counters(c, share)
            row: Row = {
                "usage_date": d,
                "email": m.email,
                "user_id": str(m.number),
                "is_active": is_active(c),
            }
            if c is None:
                row.update(dict.fromkeys(DAILY_COLUMNS[:N_INT], 0))
                row.update(dict.fromkeys(DAILY_COLUMNS[N_INT:]))
            else:
                row.update(zip(DAILY_COLUMNS, c, strict=True))
            rows.append(row)
        d += timedelta(days=1)
    rows.sort(key=lambda r: (r["usage_date"], r["email"]))
    return rows


# --------------------------------------------------------------------------- members


def expected_members(org: Organisation, snapshot_date: date, *, member_id_style: str = "string") -> list[Row]:
    """raw.cursor_members rows of the listing taken on `snapshot_date` (newest `teamMembers` shape)."""
    model = cursor_model(org)
    rows = [
        {
            "snapshot_date": snapshot_date,
            "member_id": m.encoded_id if member_id_style == "string" else str(m.number),
            "email": m.email,
            "name": m.name,
            "role": m.role,
            "is_removed": m.removed_on(snapshot_date),
        }
        for m in model.members
        if m.listed_on(snapshot_date)
    ]
    rows.sort(key=lambda r: r["email"])
    return rows


# --------------------------------------------------------------------------- spend


def _as_instant(as_of: datetime | date) -> datetime:
    """A date means the end of that UTC day (its last millisecond)."""
    if isinstance(as_of, datetime):
        return as_of.astimezone(UTC) if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    return datetime.combine(as_of, time(23, 59, 59, 999_000), tzinfo=UTC)


def expected_spend(org: Organisation, as_of: datetime | date, *, user_id_style: str = "string") -> list[Row]:
    """raw.cursor_spend rows of a snapshot taken at `as_of` (snapshot_date = its UTC day)."""
    model = cursor_model(org)
    now = _as_instant(as_of)
    today = now.date()
    start = cycle_start(today)
    totals = spend_totals(model, now)
    zero = Decimal(0)
    rows = []
    for m in spend_members(model, today):
        overall, on_demand, n_usage = totals.get(m.number, (zero, zero, 0))
        rows.append(
            {
                "snapshot_date": today,
                "email": m.email,
                "user_id": m.encoded_id if user_id_style == "string" else str(m.number),
                "name": m.name,
                "role": m.role,
                "spend_usd": usd(on_demand),
                "spend_cents_raw": num_text(on_demand),
                "overall_spend_usd": usd(overall),
                "overall_spend_cents_raw": num_text(overall),
                "fast_premium_requests": n_usage,
                "hard_limit_override_usd": Decimal(m.hard_limit_override_dollars),
                "monthly_limit_usd": None
                if m.monthly_limit_dollars is None
                else Decimal(m.monthly_limit_dollars),
                "effective_per_user_limit_usd": Decimal(m.effective_limit_dollars),
                "subscription_cycle_start_date": start,
                "subscription_cycle_start_at": ms_instant(day_ms(start)),
            }
        )
    rows.sort(key=lambda r: r["email"])
    return rows


# --------------------------------------------------------------------------- usage events


def event_key(timestamp: str, who: str, model: str | None, conversation_id: str | None, ordinal: int) -> str:
    """The contract's de-duplication key: SHA-256 hex of 'timestamp|who|model|conversationId|ordinal'.

    `who` is the lowercased ``userEmail``, or the ``serviceAccountId`` when there is no e-mail.
    """
    text = "|".join((timestamp, who, model or "", conversation_id or "", str(ordinal)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _bounds(start: datetime | date, end: datetime | date) -> tuple[int, int]:
    lo = day_ms(start) if not isinstance(start, datetime) else instant_ms(start)
    hi = day_ms(end) + 86_400_000 - 1 if not isinstance(end, datetime) else instant_ms(end)
    return lo, hi


def _event_row(e: Event, ordinal: int) -> Row:
    who = e.member.email if e.member is not None else e.service_account.id if e.service_account else ""
    tokens = e.tokens
    total = e.total_cents
    return {
        "event_date": ms_instant(e.ts).date(),
        "event_at": ms_instant(e.ts),
        "event_key": event_key(str(e.ts), who, e.model, e.conversation_id, ordinal),
        "email": e.member.email if e.member is not None else None,
        "service_account_id": e.service_account.id if e.service_account else None,
        "service_account_name": e.service_account.name if e.service_account else None,
        "cloud_agent_id": e.cloud_agent_id,
        "automation_id": e.automation_id,
        "conversation_id": e.conversation_id,
        "model": e.model,
        "kind": e.kind,
        "max_mode": e.max_mode,
        "requests_costs": Decimal(num_text(e.requests_costs)),
        "is_token_based_call": e.token_based,
        "is_chargeable": e.chargeable,
        "is_headless": e.headless,
        "is_free_bugbot": None,
        "input_tokens": tokens[0] if tokens else None,
        "output_tokens": tokens[1] if tokens else None,
        "cache_write_tokens": tokens[2] if tokens else None,
        "cache_read_tokens": tokens[3] if tokens else None,
        "token_cost_usd": usd(total) if total is not None else None,
        "token_cost_cents_raw": num_text(total) if total is not None else None,
        "discount_percent_off": Decimal(e.discount_percent) if e.discount_percent is not None else None,
        "charged_usd": usd(e.charged_cents),
        "charged_cents_raw": num_text(e.charged_cents),
        "cursor_token_fee_usd": usd(e.token_fee_cents) if e.token_fee_cents is not None else None,
        "cursor_token_fee_cents_raw": num_text(e.token_fee_cents) if e.token_fee_cents is not None else None,
    }


def iter_expected_usage_events(
    org: Organisation, start: datetime | date, end: datetime | date, *, service_accounts: bool = True
) -> Iterator[Row]:
    """raw.cursor_usage_events rows, newest first (the API's order), lazily."""
    lo, hi = _bounds(start, end)
    seen: dict[tuple[int, str, str, str | None], int] = {}
    # API order is newest first, and within a millisecond the generation order: twins get 0, 1, ...
    for e in window_events(cursor_model(org), lo, hi, hi, service_accounts=service_accounts):
        key = (
            e.ts,
            e.member.email if e.member else e.service_account.id if e.service_account else "",
            e.model,
            e.conversation_id,
        )
        ordinal = seen.get(key, 0)
        seen[key] = ordinal + 1
        yield _event_row(e, ordinal)
        if len(seen) > 10_000:  # keys only repeat within a millisecond: keep the recent ones
            newest = e.ts
            seen = {k: v for k, v in seen.items() if k[0] == newest}


def expected_usage_events(
    org: Organisation, start: datetime | date, end: datetime | date, *, service_accounts: bool = True
) -> list[Row]:
    """raw.cursor_usage_events rows with start <= event_at <= end (dates = whole UTC days), by event_key."""
    rows = list(iter_expected_usage_events(org, start, end, service_accounts=service_accounts))
    rows.sort(key=lambda r: (r["event_date"], r["event_key"]))
    return rows
