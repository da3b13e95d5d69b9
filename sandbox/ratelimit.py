"""Rolling-window rate limiter that vendor apps call per key (API key, team, organisation).

Vendors limit per minute (Cursor: 20 requests/min per team on most admin endpoints; vendor-apis.md §2.1).
Time comes from the app's `SimClock`, so a test can fix the clock, exhaust the window, advance the
clock by a minute and see requests pass again, with no sleeping.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sandbox.app import Response
from sandbox.clock import SimClock


class RateLimiter:
    """At most `per_minute` requests per key in any rolling `window_s`; switchable off."""

    def __init__(
        self,
        per_minute: int,
        *,
        window_s: float = 60.0,
        clock: SimClock | None = None,
        retry_after: bool = True,
        enabled: bool = True,
        name: str = "",
    ) -> None:
        if per_minute < 1 or window_s <= 0:
            raise ValueError("per_minute must be >= 1 and window_s > 0")
        self.per_minute = per_minute
        self.window_s = window_s
        self.clock = clock or SimClock()
        self.retry_after = retry_after
        self.enabled = enabled
        self.name = name
        self.denied = 0
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}

    def acquire(self, key: str) -> float | None:
        """Count a request for `key`: None when allowed, else seconds until a slot frees (not counted)."""
        if not self.enabled:
            return None
        now = self.clock.timestamp()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.per_minute:
                self.denied += 1
                return max(0.0, hits[0] + self.window_s - now)
            hits.append(now)
            return None

    def check(self, key: str, too_many: Response | Callable[[], Response]) -> Response | None:
        """None when allowed; else the vendor's 429 (`too_many`), with ``Retry-After`` if configured."""
        wait = self.acquire(key)
        if wait is None:
            return None
        base = too_many() if callable(too_many) else too_many
        headers = dict(base.headers)
        if self.retry_after:
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return replace(base, status=429, headers=headers)

    def configure(
        self,
        *,
        enabled: bool | None = None,
        per_minute: int | None = None,
        retry_after: bool | None = None,
        window_s: float | None = None,
    ) -> None:
        if per_minute is not None and per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        with self._lock:
            if enabled is not None:
                self.enabled = enabled
            if per_minute is not None:
                self.per_minute = per_minute
            if retry_after is not None:
                self.retry_after = retry_after
            if window_s is not None:
                self.window_s = window_s

    def reset(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._hits.clear()
                self.denied = 0
            else:
                self._hits.pop(key, None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "per_minute": self.per_minute,
            "window_s": self.window_s,
            "retry_after": self.retry_after,
            "enabled": self.enabled,
            "denied": self.denied,
        }
