"""Anthropic Admin API hook: Claude Code report, cost report, token usage report and organisation listings.

Reference: https://platform.claude.com/docs/en/api/admin (vendor-apis.md §1). Headers ``x-api-key`` (an
Admin key, ``sk-ant-admin…``) and ``anthropic-version``; two cursor styles: reports page with
``page`` <- ``next_page`` while ``has_more``, listings with ``after_id`` <- ``last_id`` while ``has_more``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, timedelta
from typing import Any, ClassVar, Literal

import requests
from requests.auth import AuthBase

from ai_usage.exceptions import VendorAPIError
from ai_usage.hooks.base import VendorHttpHook, as_day, day_windows
from ai_usage.hooks.pages import ApiPage
from ai_usage.settings import ANTHROPIC_CONN_ID

log = logging.getLogger(__name__)

ListKind = Literal["api_keys", "users", "workspaces"]
LIST_KINDS: tuple[str, ...] = ("api_keys", "users", "workspaces")
DEFAULT_VERSION = "2023-06-01"


class AnthropicKeyAuth(AuthBase):
    """Sends the Admin API key in the ``x-api-key`` header."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["x-api-key"] = self._key
        return request

    def __repr__(self) -> str:
        return "AnthropicKeyAuth(***)"


def _rfc3339_midnight(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _query_value(value: Any) -> Any:
    """Query values as the API expects them: booleans lower-case, sequences as repeated parameters."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set):
        return [_query_value(v) for v in value]
    return value


class AnthropicAdminHook(VendorHttpHook):
    """Read-only client of the Anthropic Admin API on the Airflow connection `anthropic_admin`.

    The connection's password is the Admin API key; its host, if set, replaces ``https://api.anthropic.com``.
    Extra (optional): ``{"anthropic_version": "2023-06-01", "anthropic_beta": "fast-mode-2026-02-01"}``.
    """

    conn_name_attr = "anthropic_conn_id"
    default_conn_name = ANTHROPIC_CONN_ID
    conn_type = "anthropic_admin"
    hook_name = "Anthropic Admin API"
    default_host = "https://api.anthropic.com"
    vendor = "Anthropic Admin API"
    key_label = "Admin API key"
    test_path = "/v1/organizations/users"
    test_params: ClassVar[dict[str, Any]] = {"limit": 1}
    # The cost and usage reports return at most 31 daily buckets per page.
    max_window_days: int = 31

    def __init__(
        self,
        anthropic_conn_id: str = ANTHROPIC_CONN_ID,
        *,
        max_window_days: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(anthropic_conn_id, **options)
        self.anthropic_conn_id = anthropic_conn_id
        if max_window_days is not None:
            if max_window_days < 1:
                raise ValueError("max_window_days must be >= 1")
            self.max_window_days = max_window_days

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form: password relabelled "Admin API key", host "Base URL", extra for headers."""
        from ai_usage.provider import ui_field_behaviour

        return ui_field_behaviour(cls.conn_type)

    def _auth(self, key: str) -> AuthBase:
        if not key.startswith("sk-ant-admin"):
            log.warning(
                "connection %r: the key does not look like an Admin API key (sk-ant-admin...); "
                "the Admin API rejects ordinary API keys", self.conn_id,
            )
        return AnthropicKeyAuth(key)

    def _vendor_headers(self, extra: Mapping[str, Any]) -> dict[str, str]:
        version = extra.get("anthropic_version") or extra.get("anthropic-version") or DEFAULT_VERSION
        headers = {"anthropic-version": str(version)}
        beta = extra.get("anthropic_beta") or extra.get("anthropic-beta")
        if beta:
            headers["anthropic-beta"] = beta if isinstance(beta, str) else ",".join(str(b) for b in beta)
        return headers

    def _describe_test(self, payload: Any) -> str:
        return "The Admin API key was accepted."

    # ------------------------------------------------------------------ cursors

    def _token_cursor(self, path: str) -> Callable[[Any, Mapping[str, Any]], dict[str, Any] | None]:
        """Reports: next request gets ``page`` = ``next_page`` while ``has_more`` (missing key = null)."""

        def next_args(payload: Any, args: Mapping[str, Any]) -> dict[str, Any] | None:
            if not isinstance(payload, dict) or not payload.get("has_more"):
                return None
            token = payload.get("next_page")
            if not token:
                raise VendorAPIError(
                    f"{self._where('GET', path)}: has_more is true but next_page is empty; the page sequence "
                    "cannot be completed", conn_id=self.conn_id,
                )
            return {"page": token}

        return next_args

    def _id_cursor(self, path: str) -> Callable[[Any, Mapping[str, Any]], dict[str, Any] | None]:
        """Listings: next request gets ``after_id`` = ``last_id`` while ``has_more``."""

        def next_args(payload: Any, args: Mapping[str, Any]) -> dict[str, Any] | None:
            if not isinstance(payload, dict) or not payload.get("has_more"):
                return None
            last_id = payload.get("last_id")
            if not last_id:
                raise VendorAPIError(
                    f"{self._where('GET', path)}: has_more is true but last_id is empty; the listing "
                    "cannot be completed", conn_id=self.conn_id,
                )
            return {"after_id": last_id}

        return next_args

    # ------------------------------------------------------------------ endpoints

    def claude_code_pages(self, day: date, *, limit: int = 1000) -> Iterator[ApiPage]:
        """GET /v1/organizations/usage_report/claude_code for one UTC day (the endpoint has no range).

        https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_claude_code

        Follow-up requests send ``starting_at`` again together with ``page`` (as the guide's examples do).
        """
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        day = as_day(day)
        path = "/v1/organizations/usage_report/claude_code"
        yield from self._paginate(
            "claude_code", "GET", path, params={"starting_at": day.isoformat(), "limit": limit},
            next_args=self._token_cursor(path), day=day,
        )

    def cost_report_pages(
        self,
        start: date,
        end: date,
        *,
        group_by: Iterable[str] = ("workspace_id", "description"),
        limit: int = 31,
    ) -> Iterator[ApiPage]:
        """GET /v1/organizations/cost_report: daily buckets for the UTC days [start, end].

        https://platform.claude.com/docs/en/api/admin/cost_report

        ``ending_at`` is exclusive (midnight after `end`); ranges are split into windows of at most
        `max_window_days` (31 buckets per page) and each window follows ``next_page``. Amounts are
        decimal strings of cents, kept exact by the parser.
        """
        yield from self._report_pages(
            "cost_report", "/v1/organizations/cost_report", start, end, group_by, limit
        )

    def messages_usage_pages(
        self,
        start: date,
        end: date,
        *,
        group_by: Iterable[str] = ("api_key_id", "workspace_id", "model"),
        limit: int = 31,
    ) -> Iterator[ApiPage]:
        """GET /v1/organizations/usage_report/messages: daily token buckets for the UTC days [start, end].

        https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages
        """
        yield from self._report_pages(
            "messages_usage", "/v1/organizations/usage_report/messages", start, end, group_by, limit
        )

    def _report_pages(
        self, endpoint: str, path: str, start: date, end: date, group_by: Iterable[str], limit: int
    ) -> Iterator[ApiPage]:
        if not 1 <= limit <= 31:
            raise ValueError("limit must be between 1 and 31 daily buckets")
        groups = list(group_by)
        n = 1
        for first, last in day_windows(start, end, self.max_window_days):
            params: dict[str, Any] = {
                "starting_at": _rfc3339_midnight(first),
                "ending_at": _rfc3339_midnight(last + timedelta(days=1)),  # exclusive
                "bucket_width": "1d",
                "limit": limit,
            }
            if groups:
                params["group_by[]"] = groups
            n = yield from self._paginate(
                endpoint, "GET", path, params=params, next_args=self._token_cursor(path),
                note={"window": [first.isoformat(), last.isoformat()]}, first_n=n,
            )

    def list_pages(self, kind: ListKind, *, limit: int = 1000, **filters: Any) -> Iterator[ApiPage]:
        """GET /v1/organizations/{api_keys|users|workspaces}, following ``after_id`` = ``last_id``.

        https://platform.claude.com/docs/en/api/admin

        `filters` are the endpoint's query filters (``status=``, ``workspace_id=``, ``email=``,
        ``include_archived=True``); None values are left out.
        """
        if kind not in LIST_KINDS:
            raise ValueError(f"kind must be one of {LIST_KINDS}, got {kind!r}")
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        path = f"/v1/organizations/{kind}"
        params = {"limit": limit, **{k: _query_value(v) for k, v in filters.items() if v is not None}}
        yield from self._paginate(kind, "GET", path, params=params, next_args=self._id_cursor(path))
