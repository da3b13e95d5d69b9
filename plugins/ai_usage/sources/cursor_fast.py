"""Daily usage pages with a typed fast path: a clean page goes straight to columns.

Records of the usual shape (vendor-apis.md §2.3: ``day`` text and/or ``date`` epoch ms, integer counters,
string or integer ``userId``) are decoded into `_Daily` Structs and checked column-wide; any other page
is parsed record by record by `cursor.parse_daily_usage`, which decides what is quarantined (see
`ai_usage.sources.fast`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ai_usage.columns import Columns
from ai_usage.sources import fast
from ai_usage.sources.common import to_id
from ai_usage.sources.cursor import DAILY_COUNTERS, DAILY_STRINGS, DAILY_USAGE, parse_daily_usage, usage_date


class _Daily(msgspec.Struct, rename="camel", gc=False):
    """One record of /teams/daily-usage-data in its usual shape; unknown keys are ignored."""

    email: str | None = None
    user_id: int | str | None = None
    day: str | None = None
    date: int | None = None
    is_active: bool | None = None
    total_lines_added: fast.Count | None = None
    total_lines_deleted: fast.Count | None = None
    accepted_lines_added: fast.Count | None = None
    accepted_lines_deleted: fast.Count | None = None
    total_applies: fast.Count | None = None
    total_accepts: fast.Count | None = None
    total_rejects: fast.Count | None = None
    total_tabs_shown: fast.Count | None = None
    total_tabs_accepted: fast.Count | None = None
    composer_requests: fast.Count | None = None
    chat_requests: fast.Count | None = None
    agent_requests: fast.Count | None = None
    cmdk_usages: fast.Count | None = None
    subscription_included_reqs: fast.Count | None = None
    api_key_reqs: fast.Count | None = None
    usage_based_reqs: fast.Count | None = None
    bugbot_usages: fast.Count | None = None
    most_used_model: str | None = None
    apply_most_used_extension: str | None = None
    tab_most_used_extension: str | None = None
    client_version: str | None = None


_DECODER = msgspec.json.Decoder(list[_Daily])
_WIDTH = len(_Daily.__struct_fields__)
_FIRST_COUNTER = _Daily.__struct_fields__.index("total_lines_added")
_FIRST_TEXT = _Daily.__struct_fields__.index("most_used_model")
# The Struct's counters and texts are read positionally: they must follow the careful parser's mappings.
if [f.encode_name for f in msgspec.structs.fields(_Daily)[_FIRST_COUNTER:]] != [
    *DAILY_COUNTERS.values(), *DAILY_STRINGS.values()
]:
    raise RuntimeError("_Daily's counter and text fields are out of step with DAILY_COUNTERS / DAILY_STRINGS")


def parse_daily_usage_page(page: fast.JsonPage, *, ref_prefix: str = DAILY_USAGE) -> fast.PageResult:
    """One API page of daily usage -> one `Columns` batch, or the careful parser's rows and `Rejected`."""
    try:
        yield daily_usage_columns(page)
    except fast.Fallback:
        yield from parse_daily_usage(page.payload, page=page.n, ref_prefix=ref_prefix)


def daily_usage_columns(page: fast.JsonPage) -> Columns:
    """The page's rows as columns, exactly as `parse_daily_usage` would build them; `Fallback` otherwise."""
    records = fast.decode_records(page, "data", _DECODER)
    fields = fast.transpose(records, _WIDTH)
    email, uid, day, stamp, active = fields[:_FIRST_COUNTER]
    emails = fast.email_memo().column(email)
    days = fast.Memo(lambda pair: usage_date(*pair)).column(list(zip(day, stamp, strict=True)))
    fast.unique(zip(days, emails, strict=True), len(records))
    data: dict[str, Any] = {
        "usage_date": days,  # Python dates: the pipeline counts rows per day on them
        "email": fast.array(emails, fast.STRING),
        "user_id": fast.array(fast.Memo(lambda v: to_id(v, "userId")).column(uid), fast.STRING),
        "is_active": fast.array(active, fast.BOOL),
    }
    for column, values in zip(DAILY_COUNTERS, fields[_FIRST_COUNTER:_FIRST_TEXT], strict=True):
        data[column] = fast.array(values, fast.INT64)
    for column, values in zip(DAILY_STRINGS, fields[_FIRST_TEXT:], strict=True):
        data[column] = fast.array(fast.texts(values), fast.STRING)
    return Columns(data)
