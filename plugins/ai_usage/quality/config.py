"""Settings of the data-quality checks (environment variables of the deployment, read at task run time).

| setting | meaning | default |
|---|---|---|
| ``AI_USAGE_ESTIMATE_TOLERANCE`` | Claude Code estimates vs the billed Claude Code cost of a month: largest relative gap that passes | 0.05 |
| ``AI_USAGE_CURSOR_SPEND_TOLERANCE`` | Cursor spend snapshot vs summed Usage-based charges: relative slack for the snapshot day's charges not yet ingested | 0.05 |
| ``AI_USAGE_CLAUDE_AI_SPEND_BAND`` | claude.ai spend above the allotment may reach this multiple of the month's seat fees before it is flagged | 1.0 |
"""

from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation

from ai_usage.exceptions import ConfigurationError

DEFAULTS = {
    "AI_USAGE_ESTIMATE_TOLERANCE": Decimal("0.05"),
    "AI_USAGE_CURSOR_SPEND_TOLERANCE": Decimal("0.05"),
    "AI_USAGE_CLAUDE_AI_SPEND_BAND": Decimal("1.0"),
}


def _fraction(name: str, upper: Decimal) -> Decimal:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return DEFAULTS[name]
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigurationError(f"{name}={raw!r} is not a number (e.g. 0.05 for 5 %)") from None
    if not Decimal(0) <= value <= upper:
        raise ConfigurationError(f"{name}={raw!r} must be between 0 and {upper}")
    return value


def estimate_tolerance() -> Decimal:
    return _fraction("AI_USAGE_ESTIMATE_TOLERANCE", Decimal(1))


def cursor_spend_tolerance() -> Decimal:
    return _fraction("AI_USAGE_CURSOR_SPEND_TOLERANCE", Decimal(1))


def claude_ai_spend_band() -> Decimal:
    return _fraction("AI_USAGE_CLAUDE_AI_SPEND_BAND", Decimal(100))
