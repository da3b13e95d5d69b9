"""What a vendor hook yields: one API response with the request that produced it.

Hooks return data; tasks decide where it goes. The pipeline archives `text` verbatim with `request`
(never the credentials) and hands `payload` to a pure parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass(frozen=True)
class ApiPage:
    endpoint: str                      # logical endpoint name, e.g. "daily_usage", "claude_code", "cost_report"
    n: int                             # 1-based page number within this extraction of the endpoint
    request: dict[str, Any]            # {"method", "path", "params", "json"}: no auth headers, ever
    status: int
    text: str                          # the response body exactly as received
    payload: Any                       # the body parsed as JSON with parse_float=Decimal (exact money)
    day: date | None = None            # the UTC day the page is about, when it is about one day
    headers: dict[str, str] = field(default_factory=dict)  # response headers worth keeping (no cookies)
