"""Value types of the Anthropic simulator's day books (see `anthropic_day`), and small helpers.

Money is integer units of 1e-7 US cents (`anthropic_catalog`); estimates are whole cents.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import NamedTuple

# Sum of a day's Claude Code estimates vs the billed cost of the same usage: within +-5 %.
ESTIMATE_TOLERANCE = Decimal("0.05")


class ModelUse(NamedTuple):
    """One model_breakdown entry: tokens by kind, the exact list-price cost and the vendor's estimate."""

    model: str
    input: int  # uncached input tokens
    output: int
    cache_read: int
    cache_5m: int
    cache_1h: int
    billed_units: int
    estimate_cents: int


class CCRecord(NamedTuple):
    """One Claude Code report record (actor x terminal x customer type) with its billing context."""

    actor_type: str  # "user_actor" | "api_actor"
    actor_id: str  # e-mail or API key name of the day
    terminal_type: str
    customer_type: str  # "api" | "subscription"
    subscription_type: str | None
    num_sessions: int
    lines_added: int
    lines_removed: int
    commits: int
    pull_requests: int
    tool_actions: tuple[tuple[str, int, int], ...]
    models: tuple[ModelUse, ...]
    end_s: int  # seconds after midnight UTC when this activity ended (lateness)
    billed: bool  # billed through the API (customer_type "api")
    workspace_id: str | None  # workspace billed (None = Default Workspace, or not billed)
    api_key_id: str | None
    account_id: str | None
    extra: bool  # carries an undocumented field in the API response

    def sort_key(self) -> tuple[str, str, str, str]:
        """The report's row key and order: (actor type, actor id, terminal type, customer type)."""
        return (self.actor_type, self.actor_id, self.terminal_type, self.customer_type)

    @property
    def estimate_cents(self) -> int:
        return sum(m.estimate_cents for m in self.models)

    @property
    def billed_units(self) -> int:
        return sum(m.billed_units for m in self.models)


# (workspace_id, api_key_id, account_id, model, service_tier, context_window, inference_geo)
UsageKey = tuple[str | None, str | None, str | None, str, str, str, str]


class CostLine(NamedTuple):
    """One cost-report row grouped by workspace_id and description: the day's final billed units."""

    workspace_id: str | None
    description: str
    cost_type: str
    context_window: str | None
    model: str | None
    service_tier: str | None
    token_type: str | None
    inference_geo: str | None
    units: int


@dataclass(frozen=True)
class DayBook:
    """Everything of one UTC day: Claude Code records, token usage lines and final cost lines."""

    day: date
    records: tuple[CCRecord, ...]  # sorted by CCRecord.sort_key
    usage: dict[UsageKey, tuple[int, ...]]  # vectors: 5 token kinds (TOKEN_TYPES order) + web searches
    costs: tuple[CostLine, ...]  # sorted by (workspace_id or "", description)
    # The records' JSON text once rendered, per rendering context (date, organisation id, extra fields):
    # a final day's records never change, so serving it again only joins stored text.
    texts: dict[tuple[str, str, bool], list[str | None]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )


class LRU:
    """A small thread-safe LRU map."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._lock = threading.Lock()
        self._data: OrderedDict[object, object] = OrderedDict()

    def get(self, key: object) -> object | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: object, value: object) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            self._trim()

    def resize(self, size: int) -> None:
        """Keep up to `size` entries from now on (growing keeps every entry)."""
        with self._lock:
            self.size = max(1, size)
            self._trim()

    def _trim(self) -> None:
        while len(self._data) > self.size:
            self._data.popitem(last=False)


def iter_days(start: date, end: date) -> Iterator[date]:
    """Every day of the inclusive range [start, end]."""
    for o in range(start.toordinal(), end.toordinal() + 1):
        yield date.fromordinal(o)
