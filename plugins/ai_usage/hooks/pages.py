"""What a vendor hook yields: one API response with the request that produced it.

Hooks return data; tasks decide where it goes. The pipeline archives `text` verbatim with `request`
(never the credentials) and hands the page to a pure parser, which reads `payload` (the whole body
decoded, built on first use) or, on a typed fast path, `members` (the body's top-level members, not
yet decoded).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec

from ai_usage.jsonbody import decode_json

_UNSET: Any = object()


class ApiPage:
    """One response. Pass `payload` when it is already known (a CSV grid, a test document); otherwise it is
    decoded from `text` as JSON, with exact `Decimal` numbers, the first time it is read."""

    __slots__ = ("endpoint", "n", "request", "status", "text", "day", "headers", "members", "_payload")

    def __init__(
        self,
        *,
        endpoint: str,                          # logical endpoint name, e.g. "daily_usage", "claude_code"
        n: int,                                 # 1-based page number within this extraction of the endpoint
        request: dict[str, Any],                # {"method", "path", "params", "json"}: no auth headers, ever
        status: int,
        text: str,                              # the response body exactly as received
        payload: Any = _UNSET,
        day: date | None = None,                # the UTC day the page is about, when it is about one day
        headers: dict[str, str] | None = None,  # response headers worth keeping (no cookies)
        members: dict[str, msgspec.Raw] | None = None,  # top-level members of a JSON object body, undecoded
    ) -> None:
        self.endpoint, self.n, self.request, self.status, self.text = endpoint, n, request, status, text
        self.day = day
        self.headers = headers if headers is not None else {}
        self.members = members
        self._payload = payload

    @property
    def payload(self) -> Any:
        """The body parsed as JSON with every non-integer number an exact `Decimal` (decoded once)."""
        if self._payload is _UNSET:
            self._payload = decode_json(self.text)
        return self._payload

    def __repr__(self) -> str:
        return f"ApiPage({self.endpoint!r}, n={self.n}, status={self.status}, day={self.day}, {len(self.text)} chars)"
