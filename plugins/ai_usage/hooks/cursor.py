"""Cursor Admin API hook: members, daily usage, spend and usage events, as pages for the raw archive.

Reference: https://cursor.com/docs/account/teams/admin-api (vendor-apis.md §2). Basic auth with the key as
user name and an empty password; POST bodies are JSON; times are epoch milliseconds of UTC instants.
Most endpoints allow 20 requests/min per team: there is no client-side limiter, the shared retry honours
429 (Cursor documents no ``Retry-After``, so the exponential backoff is what usually applies).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from typing import Any

import requests
from requests.auth import AuthBase

from ai_usage.hooks.base import VendorHttpHook, as_day, day_windows, utc_midnight_ms
from ai_usage.hooks.pages import ApiPage
from ai_usage.settings import CURSOR_CONN_ID

_LAST_MS_OF_DAY = 86_400_000 - 1


# Rows (user-days) per daily-usage page: bounds a page's memory whatever the window (see daily_usage_pages).
ROWS_PER_PAGE = 7500


class CursorBasicAuth(AuthBase):
    """HTTP Basic with the API key as user name and an empty password (``curl -u KEY:``)."""

    def __init__(self, key: str) -> None:
        self._token = base64.b64encode(f"{key}:".encode()).decode("ascii")

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Basic {self._token}"
        return request

    def __repr__(self) -> str:
        return "CursorBasicAuth(***)"


def has_next_page(payload: Any, page: int) -> bool:
    """Whether a Cursor page has a successor: ``pagination.hasNextPage``, else page < totalPages/numPages.

    Daily usage and usage events carry a ``pagination`` object; spend has a top-level ``totalPages``;
    a response without either (daily usage in non-paginated mode, older versions) is a single page.
    """
    if not isinstance(payload, dict):
        return False
    pagination = payload.get("pagination")
    if isinstance(pagination, dict):
        if isinstance(pagination.get("hasNextPage"), bool):
            return bool(pagination["hasNextPage"])
        total = pagination.get("totalPages", pagination.get("numPages"))
    else:
        total = payload.get("totalPages")
    try:
        return page < int(total)  # type: ignore[arg-type]  # None or garbage: no further page
    except (TypeError, ValueError):
        return False


def _next_page(payload: Any, args: Mapping[str, Any]) -> dict[str, Any] | None:
    page = int(args.get("page", 1))
    return {"page": page + 1} if has_next_page(payload, page) else None


def _single(payload: Any, args: Mapping[str, Any]) -> None:
    return None


class CursorAdminHook(VendorHttpHook):
    """Read-only client of the Cursor Admin API on the Airflow connection `cursor_admin`.

    The connection's password is the admin API key (``key_…`` or ``crsr_…`` with scope ``admin:*``);
    its host, if set, replaces ``https://api.cursor.com`` (e.g. a local simulator).
    """

    conn_name_attr = "cursor_conn_id"
    default_conn_name = CURSOR_CONN_ID
    conn_type = "cursor_admin"
    hook_name = "Cursor Admin API"
    default_host = "https://api.cursor.com"
    vendor = "Cursor Admin API"
    key_label = "API key"
    test_path = "/teams/members"
    # The daily-usage endpoint rejects ranges over 30 days with 400 (it allowed 90 in its first release).
    max_window_days: int = 30

    def __init__(
        self, cursor_conn_id: str = CURSOR_CONN_ID, *, max_window_days: int | None = None, **options: Any
    ) -> None:
        super().__init__(cursor_conn_id, **options)
        self.cursor_conn_id = cursor_conn_id
        if max_window_days is not None:
            if max_window_days < 1:
                raise ValueError("max_window_days must be >= 1")
            self.max_window_days = max_window_days

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form: password relabelled "API key", host "Base URL", the rest hidden."""
        from ai_usage.provider import ui_field_behaviour

        return ui_field_behaviour(cls.conn_type)

    def _auth(self, key: str) -> AuthBase:
        return CursorBasicAuth(key)

    def _describe_test(self, payload: Any) -> str:
        members = payload.get("teamMembers") if isinstance(payload, dict) else payload
        return f"{len(members)} team member(s) listed." if isinstance(members, list) else ""

    def members(self) -> ApiPage:
        """GET /teams/members: every member, removed ones included (``isRemoved``); not paginated.

        https://cursor.com/docs/account/teams/admin-api
        """
        return list(self._paginate("members", "GET", "/teams/members", next_args=_single))[0]

    def daily_usage_pages(
        self, start: date, end: date, *, page_size: int = 1000, rows_per_page: int = ROWS_PER_PAGE
    ) -> Iterator[ApiPage]:
        """POST /teams/daily-usage-data for the UTC days [start, end], in windows of `max_window_days`.

        https://cursor.com/docs/account/teams/admin-api

        Paginated mode (``page`` + ``pageSize``) so every member comes back, idle ones included, not only
        active users. Each window is ``startDate`` = 00:00 UTC of its first day and ``endDate`` = 00:00 UTC
        of its *last* day. Whether the vendor treats ``endDate`` as inclusive is not documented: we assume
        it returns the day that starts at ``endDate`` (as a third-party connector does); windows never
        overlap, and rows are de-duplicated by (day, email) downstream in case a day comes back twice.
        ``ApiPage.request["window"]`` holds the window's [first, last] ISO days for the archive.

        The API pages by *user*, each page holding every day of the window for its users, so a page of a
        30-day window is 30 times larger than one of a 1-day window. Users per page are therefore capped
        at ``rows_per_page // days in the window`` (and at `page_size`): the memory of a page stays the
        same however long the backfill, at the price of more requests on long ranges (a year: ~80).
        """
        n = 1
        for first, last in day_windows(start, end, self.max_window_days):
            users = max(1, min(page_size, rows_per_page // ((last - first).days + 1)))
            body = {"startDate": utc_midnight_ms(first), "endDate": utc_midnight_ms(last),
                    "page": 1, "pageSize": users}
            n = yield from self._paginate(
                "daily_usage", "POST", "/teams/daily-usage-data", json_body=body, next_args=_next_page,
                note={"window": [first.isoformat(), last.isoformat()]}, first_n=n,
            )

    def spend_pages(self, page_size: int = 100) -> Iterator[ApiPage]:
        """POST /teams/spend, pages 1..totalPages: each member's spend in the current billing cycle.

        https://cursor.com/docs/account/teams/admin-api

        Only the current cycle exists (past cycles are not served), so the pipeline snapshots it daily.
        """
        yield from self._paginate(
            "spend", "POST", "/teams/spend", json_body={"page": 1, "pageSize": page_size},
            next_args=_next_page,
        )

    def usage_events_pages(self, start: date, end: date, *, page_size: int = 1000) -> Iterator[ApiPage]:
        """POST /teams/filtered-usage-events, one UTC day per window: [00:00:00.000, 23:59:59.999].

        https://cursor.com/docs/account/teams/admin-api

        Both bounds are inclusive per the docs, so day windows end at the day's last millisecond and
        never share an event. Pages while ``pagination.hasNextPage``; ``ApiPage.day`` is the window's day.
        """
        start, end = as_day(start), as_day(end)
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        n, day = 1, start
        while day <= end:
            first_ms = utc_midnight_ms(day)
            body = {"startDate": first_ms, "endDate": first_ms + _LAST_MS_OF_DAY,
                    "page": 1, "pageSize": page_size}
            n = yield from self._paginate(
                "usage_events", "POST", "/teams/filtered-usage-events", json_body=body,
                next_args=_next_page, day=day, first_n=n,
            )
            day += timedelta(days=1)
