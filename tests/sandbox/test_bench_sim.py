"""`SimProcess.warm_up` of `make bench`: afterwards the simulators answer the range from their caches.

The simulators run in this process (one `SimServer` per vendor), so the test can check their caches and
forbid any further generation; the answers are compared byte for byte with cold simulators of an equal
organisation. Speed is measured by `make bench`, never asserted here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import Organisation, SimClock, SimServer
from sandbox.app import Request
from sandbox.bench_sim import CLAUDE_CODE, COST_REPORT, SimProcess, day_windows, midnight_ms
from sandbox.vendors.anthropic import AnthropicApp, build_anthropic
from sandbox.vendors.cursor import CursorApp, build
from sandbox.vendors.cursor_model import completeness, day_ms

END = date(2026, 3, 31)
NOW = datetime(2026, 4, 1, 15, 0, tzinfo=UTC)  # Cursor: Mar 30-31 provisional (2 days late), the rest final
DAYS = 70  # more days than either simulator keeps by default (40 and 16)
START = END - timedelta(days=DAYS - 1)
DAILY = "/teams/daily-usage-data"


def new_org() -> Organisation:
    return Organisation.generate(seed=5, people=40, days=90, end=END)


def apps(org: Organisation) -> tuple[CursorApp, AnthropicApp]:
    clock = SimClock(NOW)
    return build(org, clock, rate_limit_per_minute=0), build_anthropic(org, clock)


def product_requests(cursor: CursorApp, anthropic: AnthropicApp) -> Iterator[bytes]:
    """The measured run's requests, in its shapes (paged by user, a day per Claude Code call)."""
    auth = {"authorization": "Basic " + base64.b64encode(f"{cursor.api_key}:".encode()).decode()}
    for first, last in day_windows(START, END, 30):
        page = 1
        while True:
            body = {"startDate": midnight_ms(first), "endDate": midnight_ms(last), "page": page,
                    "pageSize": 15}
            resp = cursor.dispatch(Request("POST", DAILY, headers=auth, body=json.dumps(body).encode()))
            assert resp.status == 200
            yield resp.render()
            if not resp.json["pagination"]["hasNextPage"]:
                break
            page += 1
    headers = {"x-api-key": anthropic.admin_key, "anthropic-version": "2023-06-01"}
    day = START
    while day <= END:
        resp = anthropic.dispatch(Request("GET", CLAUDE_CODE, {"starting_at": [day.isoformat()]}, headers))
        assert resp.status == 200
        yield resp.render()
        day += timedelta(days=1)
    for first, last in day_windows(START, END, 31):
        query: dict[str, list[str]] = {
            "starting_at": [f"{first}T00:00:00Z"], "ending_at": [f"{last + timedelta(days=1)}T00:00:00Z"],
            "limit": ["31"], "group_by[]": ["workspace_id", "description"]}
        resp = anthropic.dispatch(Request("GET", COST_REPORT, query, headers))
        assert resp.status == 200
        yield resp.render()


def test_warm_up_fills_every_day_of_the_range_and_changes_no_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cursor, anthropic = apps(new_org())
    with SimServer(cursor) as cursor_srv, SimServer(anthropic) as anthropic_srv:
        sim = SimProcess(tmp_path, seed=5, people=40, days=90, env={})
        sim.urls = {"cursor": cursor_srv.url, "anthropic": anthropic_srv.url}
        seconds = sim.warm_up(START, END)
    assert set(seconds) == {"spend_s", "daily_usage_s", "claude_code_s", "cost_report_s", "total_s"}
    assert cursor.config.cache_days >= DAYS and anthropic.options.cache_days >= DAYS

    def generated(*args: Any) -> None:
        raise AssertionError("generated after the warm-up")

    monkeypatch.setattr(cursor.model, "_build_day", generated)
    monkeypatch.setattr(anthropic.days, "_generate", generated)
    now_ms = day_ms(NOW.date()) + 15 * 3_600_000
    for offset in range(DAYS):
        day = START + timedelta(days=offset)
        block = cursor.model.day(day)  # cached, or `generated` raises
        if completeness(day, now_ms, cursor.config.lateness_days) >= 1.0:  # a final day: every row's text
            assert sum(len(rows) for rows in block.fragments.values()) == len(block.members), day
        book = anthropic.days.book(day)
        assert all(None not in texts for texts in book.texts.values()) and (book.texts or not book.records)

    warmed = list(product_requests(cursor, anthropic))
    monkeypatch.undo()
    assert warmed == list(product_requests(*apps(new_org())))  # the same bytes as cold simulators
