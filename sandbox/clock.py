"""A settable UTC clock, so simulators decide lateness ("only data older than 1 hour") deterministically."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta


def parse_instant(value: str | datetime) -> datetime:
    """An ISO-8601 instant (``Z`` accepted) or datetime -> aware UTC datetime; naive values are taken as UTC."""
    when = (
        value if isinstance(value, datetime) else datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    )
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


class SimClock:
    """Real UTC time by default; `set()` fixes it to an instant, `advance()` moves it, `reset()` frees it."""

    def __init__(self, fixed: datetime | str | None = None) -> None:
        self._lock = threading.Lock()
        self._fixed: datetime | None = parse_instant(fixed) if fixed is not None else None
        self._offset = timedelta(0)

    def now(self) -> datetime:
        with self._lock:
            if self._fixed is not None:
                return self._fixed
            return datetime.now(UTC) + self._offset

    def today(self) -> date:
        """The current UTC day (never the machine's local day)."""
        return self.now().date()

    def timestamp(self) -> float:
        return self.now().timestamp()

    @property
    def is_fixed(self) -> bool:
        return self._fixed is not None

    def set(self, when: datetime | str) -> None:
        with self._lock:
            self._fixed = parse_instant(when)
            self._offset = timedelta(0)

    def advance(self, delta: float | timedelta) -> None:
        """Move the clock forward (seconds or timedelta); a real clock keeps running from the new point."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        with self._lock:
            if self._fixed is not None:
                self._fixed += step
            else:
                self._offset += step

    def reset(self) -> None:
        with self._lock:
            self._fixed, self._offset = None, timedelta(0)

    def to_dict(self) -> dict[str, object]:
        return {"now": self.now().isoformat().replace("+00:00", "Z"), "fixed": self.is_fixed}
