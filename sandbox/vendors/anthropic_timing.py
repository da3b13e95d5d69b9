"""When the simulated Anthropic data becomes visible, and how recent cost figures are revised.

- Claude Code report: a record appears once its activity ended more than `delay_s` (1 h) ago
  ("the API only returns data more than 1 hour old", vendor-apis.md §1.2, G-A4).
- Cost report: a day's cost accrues linearly over the day and shows `delay_s` (5 min) late; for
  `revision_days` (3) after the day ended, every row is still *revised upward* (it starts 1-6 % low and
  converges linearly), then it is final and never changes again (§1.3: "cost data is revised").
- Usage report: tokens of a bucket accrue linearly over the bucket and show `delay_s` late; no revisions.

All amounts stay integers (units of 1e-7 cents, token counts), so repeated reads are reproducible.
"""

from __future__ import annotations

import zlib
from datetime import UTC, date, datetime, time, timedelta

DAY_S = 86_400


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def stamp(when: datetime) -> str:
    """RFC 3339 UTC with a trailing Z and no fractional part, as the reports print bucket bounds."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def visible_until_s(day: date, cutoff: datetime, delay_s: int) -> float:
    """Seconds after `day`'s midnight up to which activity is older than `delay_s` at `cutoff`."""
    return (cutoff - day_start(day)).total_seconds() - delay_s


def accrued(amount: int, start: datetime, width_s: int, now: datetime, delay_s: int) -> int:
    """The part of `amount` (spread evenly over [start, start + width)) that is visible at `now`."""
    elapsed = int((now - start).total_seconds()) - delay_s
    if elapsed <= 0:
        return 0
    if elapsed >= width_s:
        return amount
    return amount * elapsed // width_s


def revision_cut_ppm(day: date, row_key: str, now: datetime, revision_days: int) -> int:
    """How far (ppm) a cost row of `day` still is below its final value at `now` (0 once final)."""
    if revision_days <= 0:
        return 0
    window = revision_days * DAY_S
    age = int((now - day_start(day + timedelta(days=1))).total_seconds())
    if age >= window:
        return 0
    k_ppm = 10_000 + zlib.crc32(f"{day.toordinal()}|{row_key}".encode()) % 50_001  # 1-6 % at first
    return k_ppm * (window - max(age, 0)) // window


def served_cost_units(
    units: int, day: date, row_key: str, now: datetime, *, delay_s: int, revision_days: int
) -> int:
    """A cost row's amount as the API reports it at `now`: accrued so far, then revised upward to final."""
    value = accrued(units, day_start(day), DAY_S, now, delay_s)
    cut = revision_cut_ppm(day, row_key, now, revision_days)
    return value if cut == 0 else value * (1_000_000 - cut) // 1_000_000


def cost_final(day: date, now: datetime, *, revision_days: int, delay_s: int = 300) -> bool:
    """True when `day`'s cost figures no longer change."""
    final_at = day_start(day + timedelta(days=1 + max(revision_days, 0)))
    return now >= max(final_at, day_start(day + timedelta(days=1)) + timedelta(seconds=delay_s))


def claude_code_final(day: date, now: datetime, *, delay_s: int = 3600) -> bool:
    """True when every Claude Code record of `day` is older than `delay_s` at `now`."""
    return now >= day_start(day + timedelta(days=1)) + timedelta(seconds=delay_s)
