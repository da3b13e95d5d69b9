"""Cursor Admin API payloads → rows of raw.cursor_members, cursor_daily_usage, cursor_spend, cursor_usage_events.

https://cursor.com/docs/account/teams/admin-api. Every documented version of each response is accepted
(vendor-apis.md §2.2–2.5, §2.7): bare-array and wrapped member lists, numeric and encoded-string ids,
`day` and/or `date` on daily rows, integer and fractional cents, `kind` or `kindLabel` on events.
Unknown keys are ignored. Each parser is a generator over one API page that yields contract rows or
`Rejected` records; a page of the wrong shape raises `PayloadError` (a ValueError).

Money: every `*Cents` field is USD cents (a JSON number, fractional since 2026) → USD exactly via
Decimal, with the verbatim number text kept in the contract's `*_raw` column; `*Dollars` fields are
already USD. Days are UTC days, computed without the machine's time zone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, MutableMapping
from datetime import UTC, date, datetime
from typing import Any

from ai_usage.sources.common import (
    BadValue,
    KeySeen,
    ParseResult,
    PayloadError,
    Rejected,
    as_record,
    epoch_ms_to_utc,
    item_ref,
    norm_email,
    number_text,
    obj,
    parse_day,
    payload_list,
    require_date,
    to_bool,
    to_count,
    to_id,
    to_numeric,
    to_str,
    usd_from_cents,
    usd_from_dollars,
)

MEMBERS = "/teams/members"
DAILY_USAGE = "/teams/daily-usage-data"
SPEND = "/teams/spend"
USAGE_EVENTS = "/teams/filtered-usage-events"

# Cursor launched in 2023; an epoch value before this is almost certainly seconds sent as milliseconds.
_EARLIEST = datetime(2015, 1, 1, tzinfo=UTC)

# Contract column -> vendor field of /teams/daily-usage-data (all non-negative counts, NULL when absent).
DAILY_COUNTERS: dict[str, str] = {
    "total_lines_added": "totalLinesAdded",
    "total_lines_deleted": "totalLinesDeleted",
    "accepted_lines_added": "acceptedLinesAdded",
    "accepted_lines_deleted": "acceptedLinesDeleted",
    "total_applies": "totalApplies",
    "total_accepts": "totalAccepts",
    "total_rejects": "totalRejects",
    "total_tabs_shown": "totalTabsShown",
    "total_tabs_accepted": "totalTabsAccepted",
    "composer_requests": "composerRequests",
    "chat_requests": "chatRequests",
    "agent_requests": "agentRequests",
    "cmdk_usages": "cmdkUsages",
    "subscription_included_reqs": "subscriptionIncludedReqs",
    "api_key_reqs": "apiKeyReqs",
    "usage_based_reqs": "usageBasedReqs",
    "bugbot_usages": "bugbotUsages",
}
DAILY_STRINGS: dict[str, str] = {
    "most_used_model": "mostUsedModel",
    "apply_most_used_extension": "applyMostUsedExtension",
    "tab_most_used_extension": "tabMostUsedExtension",
    "client_version": "clientVersion",
}

# Enum kinds of the cookie-authenticated dashboard API (not the Admin API) → the Admin API's labels, so a
# payload captured from the dashboard is stored with the same `kind` values. Unknown values stay verbatim.
DASHBOARD_KINDS: dict[str, str] = {
    "USAGE_EVENT_KIND_USAGE_BASED": "Usage-based",
    "USAGE_EVENT_KIND_INCLUDED_IN_BUSINESS": "Included in Business",
    "USAGE_EVENT_KIND_INCLUDED_IN_PRO": "Included in Pro",
    "USAGE_EVENT_KIND_ERRORED_NOT_CHARGED": "Errored, Not Charged",
    "USAGE_EVENT_KIND_ABORTED_NOT_CHARGED": "Aborted, Not Charged",
    "USAGE_EVENT_KIND_FREE": "Free",
}


def _utc_ms(value: Any, field: str) -> datetime:
    stamp = epoch_ms_to_utc(value, field)
    if stamp < _EARLIEST:
        raise BadValue(f"{field}: {value!r} is before {_EARLIEST.date()}: seconds sent instead of milliseconds?")
    return stamp


# --------------------------------------------------------------------------- /teams/members


def parse_members(payload: Any, *, snapshot_date: date, page: int = 1, ref_prefix: str = MEMBERS) -> ParseResult:
    """Members listing → raw.cursor_members rows (one per e-mail) for `snapshot_date`.

    Accepts the first release's bare array and the ``{"teamMembers": [...]}`` object; `id` as a number
    (mid 2026) or an encoded string (newest) → text. `is_removed` is NULL when the API predates the field
    (the contract's rule: absent is unknown, not "still a member").
    """
    snapshot_date = require_date(snapshot_date, "snapshot_date")
    items = payload if isinstance(payload, list) else payload_list(payload, "teamMembers", MEMBERS)
    seen = KeySeen(("email",))
    for i, item in enumerate(items):
        ref = item_ref(ref_prefix, page, i)
        try:
            rec = as_record(item)
            row = {
                "snapshot_date": snapshot_date,
                "member_id": to_id(rec.get("id"), "id"),
                "email": norm_email(rec.get("email"), "email"),
                "name": to_str(rec.get("name"), "name"),
                "role": to_str(rec.get("role"), "role"),
                "is_removed": to_bool(rec.get("isRemoved"), "isRemoved"),
            }
        except BadValue as exc:
            yield Rejected(str(exc), item, ref)
            continue
        duplicate = seen.duplicate_of(row, ref)
        yield Rejected(duplicate, item, ref) if duplicate else row


# --------------------------------------------------------------------------- /teams/daily-usage-data


def usage_date(day: Any, stamp: Any) -> date:
    """The UTC day of a daily record from its `day` text and/or its `date` epoch ms (they must agree)."""
    from_day = parse_day(day, "day") if day is not None else None
    from_date = _utc_ms(stamp, "date").date() if stamp is not None else None
    if from_day is None and from_date is None:
        raise BadValue("day/date: missing (neither `day` nor `date` is present)")
    if from_day is not None and from_date is not None and from_day != from_date:
        raise BadValue(f"day/date disagree: day={day!r} but date={stamp!r} is {from_date.isoformat()} UTC")
    return from_day or from_date  # type: ignore[return-value]


def parse_daily_usage(payload: Any, *, page: int = 1, ref_prefix: str = DAILY_USAGE) -> ParseResult:
    """One page of daily usage → raw.cursor_daily_usage rows (one per UTC day and e-mail).

    `usage_date` is `day` (YYYY-MM-DD) or, for versions without it, the UTC day of `date` (epoch ms); when
    both are present they must agree. A row without an e-mail is rejected: the table is keyed by it.
    Counters are non-negative whole numbers (digit strings accepted, anything else rejected) and stay
    NULL when the API version has no such field. `is_active` stays NULL when omitted: without
    pagination the API lists users active somewhere in the range, which does not make them active on
    every day it returns for them.
    """
    seen = KeySeen(("usage_date", "email"))
    for i, item in enumerate(payload_list(payload, "data", DAILY_USAGE)):
        ref = item_ref(ref_prefix, page, i)
        try:
            rec = as_record(item)
            row: dict[str, Any] = {
                "usage_date": usage_date(rec.get("day"), rec.get("date")),
                "email": norm_email(rec.get("email"), "email"),
                "user_id": to_id(rec.get("userId"), "userId"),
                "is_active": to_bool(rec.get("isActive"), "isActive"),
            }
            for column, vendor in DAILY_COUNTERS.items():
                row[column] = to_count(rec.get(vendor), vendor)
            for column, vendor in DAILY_STRINGS.items():
                row[column] = to_str(rec.get(vendor), vendor)
        except BadValue as exc:
            yield Rejected(str(exc), item, ref)
            continue
        duplicate = seen.duplicate_of(row, ref)
        yield Rejected(duplicate, item, ref) if duplicate else row


# --------------------------------------------------------------------------- /teams/spend


def parse_spend(payload: Any, *, snapshot_date: date, page: int = 1, ref_prefix: str = SPEND) -> ParseResult:
    """One page of the current cycle's spend → raw.cursor_spend rows for `snapshot_date`.

    What is stored: `spend_usd` is always `spendCents` / 100 as the API means it in that version (2026:
    on-demand spend only; 2025: the member's total); `overall_spend_usd` is `overallSpendCents` / 100 and
    NULL when the API predates it, in which case spend_usd is the total. Consumers take
    ``COALESCE(overall_spend_usd, spend_usd)`` as the total. A malformed `subscriptionCycleStart` fails
    the page (it belongs to every row), an absent one leaves the cycle columns NULL.
    """
    snapshot_date = require_date(snapshot_date, "snapshot_date")
    items = payload_list(payload, "teamMemberSpend", SPEND)
    cycle_raw = payload.get("subscriptionCycleStart")
    try:
        cycle_at = _utc_ms(cycle_raw, "subscriptionCycleStart") if cycle_raw is not None else None
    except BadValue as exc:
        raise PayloadError(f"{SPEND}: {exc}") from None
    seen = KeySeen(("email",))
    for i, item in enumerate(items):
        ref = item_ref(ref_prefix, page, i)
        try:
            rec = as_record(item)
            if rec.get("spendCents") is None:
                raise BadValue("spendCents: missing")
            overall = rec.get("overallSpendCents")
            row = {
                "snapshot_date": snapshot_date,
                "email": norm_email(rec.get("email"), "email"),
                "user_id": to_id(rec.get("userId"), "userId"),
                "name": to_str(rec.get("name"), "name"),
                "role": to_str(rec.get("role"), "role"),
                "spend_usd": usd_from_cents(rec["spendCents"], "spendCents"),
                "spend_cents_raw": number_text(rec["spendCents"]),
                "overall_spend_usd": usd_from_cents(overall, "overallSpendCents") if overall is not None else None,
                "overall_spend_cents_raw": number_text(overall),
                "fast_premium_requests": to_count(rec.get("fastPremiumRequests"), "fastPremiumRequests"),
                "hard_limit_override_usd": _dollars(rec, "hardLimitOverrideDollars"),
                "monthly_limit_usd": _dollars(rec, "monthlyLimitDollars"),
                "effective_per_user_limit_usd": _dollars(rec, "effectivePerUserLimitDollars"),
                "subscription_cycle_start_date": cycle_at.date() if cycle_at else None,
                "subscription_cycle_start_at": cycle_at,
            }
        except BadValue as exc:
            yield Rejected(str(exc), item, ref)
            continue
        duplicate = seen.duplicate_of(row, ref)
        yield Rejected(duplicate, item, ref) if duplicate else row


def _dollars(rec: Mapping[str, Any], field: str) -> Any:
    value = rec.get(field)
    return None if value is None else usd_from_dollars(value, field)


# --------------------------------------------------------------------------- /teams/filtered-usage-events


def event_key(timestamp: str, who: str, model: str | None, conversation_id: str | None, ordinal: int) -> str:
    """The contract's de-duplication key: SHA-256 hex of timestamp|who|model|conversationId|ordinal."""
    text = "|".join([timestamp, who, model or "", conversation_id or "", str(ordinal)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _kind(rec: Mapping[str, Any]) -> str | None:
    kind = to_str(rec.get("kind"), "kind")
    if kind is None:
        kind = to_str(rec.get("kindLabel"), "kindLabel")
    return DASHBOARD_KINDS.get(kind, kind) if kind is not None else None


def parse_usage_events(
    payload: Any,
    *,
    page: int = 1,
    ref_prefix: str = USAGE_EVENTS,
    ordinals: MutableMapping[tuple[str, str, str, str], int] | None = None,
) -> ParseResult:
    """One page of usage events → raw.cursor_usage_events rows.

    `event_key` follows the contract: SHA-256 of the verbatim `timestamp`, the lowercased `userEmail`
    (else `serviceAccountId`), `model`, `conversationId` and an ordinal numbering otherwise identical
    events in API order. Ordinals are counted in `ordinals`: pass one dict for all pages of one request
    window so a same-millisecond pair split across a page boundary still gets 0 and 1 (left out, they
    are counted within this page only). Windows are whole UTC days with inclusive ms bounds that never
    overlap, so identical events always share a window; re-reading a window yields the same keys as long
    as the API returns its events in the same order, which its stable sort guarantees for distinct
    events, and for identical ones any order gives the same set of rows.
    """
    counts: MutableMapping[tuple[str, str, str, str], int] = {} if ordinals is None else ordinals
    for i, item in enumerate(payload_list(payload, "usageEvents", USAGE_EVENTS)):
        ref = item_ref(ref_prefix, page, i)
        try:
            rec = as_record(item)
            row = _event_row(rec)
        except BadValue as exc:
            yield Rejected(str(exc), item, ref)
            continue
        ident = (row.pop("_ts"), row.pop("_who"), row["model"] or "", row["conversation_id"] or "")
        ordinal = counts.get(ident, 0)
        counts[ident] = ordinal + 1
        row["event_key"] = event_key(ident[0], ident[1], row["model"], row["conversation_id"], ordinal)
        yield row


def _event_row(rec: Mapping[str, Any]) -> dict[str, Any]:
    raw_ts = rec.get("timestamp")
    if raw_ts is None:
        raise BadValue("timestamp: missing")
    if isinstance(raw_ts, bool) or not isinstance(raw_ts, str | int):
        raise BadValue(f"timestamp: expected a string of epoch milliseconds, got {raw_ts!r}")
    event_at = _utc_ms(raw_ts, "timestamp")
    email = norm_email(rec.get("userEmail"), "userEmail", required=False)
    service_account = to_str(rec.get("serviceAccountId"), "serviceAccountId")
    who = email or service_account
    if who is None:
        raise BadValue("userEmail: missing, and no serviceAccountId either (the event belongs to no one)")
    tokens = obj(rec.get("tokenUsage"), "tokenUsage") or {}
    total_cents = tokens.get("totalCents")
    charged = rec.get("chargedCents")
    fee = rec.get("cursorTokenFee")
    return {
        "_ts": str(raw_ts),
        "_who": who,
        "event_date": event_at.date(),
        "event_at": event_at,
        "email": email,
        "service_account_id": service_account,
        "service_account_name": to_str(rec.get("serviceAccountName"), "serviceAccountName"),
        "cloud_agent_id": to_str(rec.get("cloudAgentId"), "cloudAgentId"),
        "automation_id": to_str(rec.get("automationId"), "automationId"),
        "conversation_id": to_str(rec.get("conversationId"), "conversationId"),
        "model": to_str(rec.get("model"), "model"),
        "kind": _kind(rec),
        "max_mode": to_bool(rec.get("maxMode"), "maxMode"),
        "requests_costs": to_numeric(rec.get("requestsCosts"), "requestsCosts"),
        "is_token_based_call": to_bool(rec.get("isTokenBasedCall"), "isTokenBasedCall"),
        "is_chargeable": to_bool(rec.get("isChargeable"), "isChargeable"),
        "is_headless": to_bool(rec.get("isHeadless"), "isHeadless"),
        "is_free_bugbot": to_bool(rec.get("isFreeBugbot"), "isFreeBugbot"),
        "input_tokens": to_count(tokens.get("inputTokens"), "tokenUsage.inputTokens"),
        "output_tokens": to_count(tokens.get("outputTokens"), "tokenUsage.outputTokens"),
        "cache_write_tokens": to_count(tokens.get("cacheWriteTokens"), "tokenUsage.cacheWriteTokens"),
        "cache_read_tokens": to_count(tokens.get("cacheReadTokens"), "tokenUsage.cacheReadTokens"),
        "token_cost_usd": None if total_cents is None else usd_from_cents(total_cents, "tokenUsage.totalCents"),
        "token_cost_cents_raw": number_text(total_cents),
        "discount_percent_off": to_numeric(tokens.get("discountPercentOff"), "tokenUsage.discountPercentOff"),
        "charged_usd": None if charged is None else usd_from_cents(charged, "chargedCents"),
        "charged_cents_raw": number_text(charged),
        "cursor_token_fee_usd": None if fee is None else usd_from_cents(fee, "cursorTokenFee"),
        "cursor_token_fee_cents_raw": number_text(fee),
    }

