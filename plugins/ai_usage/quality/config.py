"""Settings of the data-quality checks: defined in `ai_usage.settings` (one place for every setting),
re-exported here for the quality modules.

| setting | meaning | default |
|---|---|---|
| ``AI_USAGE_ESTIMATE_TOLERANCE`` | Claude Code estimates vs the billed Claude Code cost of a month: largest relative gap that passes | 0.05 |
| ``AI_USAGE_CURSOR_SPEND_TOLERANCE`` | Cursor spend snapshot vs summed Usage-based charges: relative slack for the snapshot day's charges not yet ingested | 0.05 |
| ``AI_USAGE_CLAUDE_AI_SPEND_BAND`` | claude.ai spend above the allotment may reach this multiple of the month's seat fees before it is flagged | 1.0 |
"""

from __future__ import annotations

from ai_usage.settings import QUALITY_DEFAULTS as DEFAULTS
from ai_usage.settings import claude_ai_spend_band, cursor_spend_tolerance, estimate_tolerance

__all__ = ["DEFAULTS", "claude_ai_spend_band", "cursor_spend_tolerance", "estimate_tolerance"]
