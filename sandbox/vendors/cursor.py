"""Simulator of the Cursor Admin API (https://cursor.com/docs/account/teams/admin-api), see vendor-apis.md §2.

Endpoints (HTTP Basic, the API key as username, empty password; anything else -> 401
``{"error":"Unauthorized","message":"Invalid API key"}``):

- ``GET /teams/members``: every member who ever held a Cursor seat up to today, removed ones with
  ``isRemoved: true`` (newest shape; ``members_shape="array"`` gives the first release's bare array of
  current members, ``member_id_style="number"`` the mid-2026 numeric ids).
- ``POST /teams/daily-usage-data`` ``{startDate, endDate[, page, pageSize]}`` (epoch ms). Rows are the
  days d with ``startDate <= midnight(d) <= endDate``: an ``endDate`` at UTC midnight of the last wanted
  day includes that day (the vendor does not document it). ``endDate - startDate`` over
  `daily_max_range_days` days -> 400 ``Date range cannot exceed 30 days``. Without both ``page`` and
  ``pageSize``: active rows only (``isActive`` true), no ``pagination``. With both: a row for every day
  each member held a seat, all-zero ``isActive: false`` rows included, paged by USER (ordered by
  ``userId``; a page holds every day of its users). Only days of the organisation's history up to
  today are served. Days less than `lateness_days` old are provisional (see `completeness`): lower
  than final and revised every hour until final; older days never change.
- ``POST /teams/spend``: the current billing cycle only, which is modelled as the calendar month
  (``subscriptionCycleStart`` = the 1st, 00:00 UTC, of the clock's month). ``overallSpendCents`` = the
  member's chargeable events' ``chargedCents`` from the cycle start to now, ``spendCents`` = those of
  "Usage-based" events, ``fastPremiumRequests`` = their count. Members: listed today and holding the
  seat on a day of the cycle. ``page``/``pageSize`` (default 100), ``searchTerm``, ``sortBy``
  (``date`` = seat start, ``amount``, ``user``), ``sortDirection`` (default ``desc``).
- ``POST /teams/filtered-usage-events``: ``startDate <= timestamp <= endDate``, both inclusive (default:
  the last 30 days), newest first; ``page`` / ``pageSize`` (default 100, at most 1000); filters
  ``email``, ``userId``, ``serviceAccountId``. Only events that happened by the clock's now.

Rate limits per team, on the app clock: `rate_limit_per_minute` (20) shared by members, daily usage and
spend, `events_rate_limit_per_minute` (60) for events; 0/None switches one off. A 429 carries
``Retry-After`` only when `retry_after` is set (True = seconds until a slot frees, an int = that value);
Cursor does not document the header, so it is absent by default. Unless `extra_fields` is False,
records carry undocumented keys parsers must ignore: ``teamId`` everywhere, ``createdAt`` on members,
``owningUser`` on events. Numbers come from `cursor_model` / `cursor_events` (the
mappings between counters, events and spend are documented there).

Options: the module-level `DEFAULT_CONFIG`, keyword arguments of `build` (``build(org, clock,
rate_limit_per_minute=0)``), and at runtime ``GET|POST /_sandbox/cursor/config`` with a partial config.
``cache_days`` (40) bounds the days whose counters and final rows' text stay in memory; a harness that
reads a long range twice raises it first (changing it keeps what is cached).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sandbox.app import App, HTTPAbort, Request, Response, Route, compile_pattern, json_response, reason
from sandbox.clock import SimClock
from sandbox.registry import register_app
from sandbox.rng import digest
from sandbox.vendors.cursor_daily import daily_usage
from sandbox.vendors.cursor_events import (
    cycle_start,
    spend_members,
    spend_totals,
    window_events,
)
from sandbox.vendors.cursor_model import (
    DAY_MS,
    CursorMember,
    CursorModel,
    cursor_model,
    day_ms,
    instant_ms,
)
from sandbox.vendors.cursor_render import event_json, member_json, spend_json

if TYPE_CHECKING:
    from sandbox.org import Organisation

RATE_LIMIT_MESSAGE = "Rate limit exceeded. Please try again later."
EVENTS_MAX_PAGE_SIZE = 1000


def default_api_key(seed: int) -> str:
    """The organisation's admin key: ``key_`` + 64 hex characters derived from the seed (2025 key format)."""
    return "key_" + digest(seed, "cursor-admin-key", size=32).hex()


@dataclass(frozen=True)
class CursorConfig:
    """Switches of the simulator; see the module docstring."""

    api_key: str | None = None  # None = default_api_key(org.seed)
    rate_limit_per_minute: int | None = 20
    events_rate_limit_per_minute: int | None = 60
    retry_after: bool | int | None = None
    member_id_style: str = "string"  # "string" (newest, user_…) | "number" (mid-2026)
    members_shape: str = "teamMembers"  # "teamMembers" | "array" (first release)
    daily_max_range_days: int = 30
    lateness_days: int = 2
    extra_fields: bool = True
    service_accounts: bool = True
    spend_page_size: int = 100
    cache_days: int = CursorModel.DAY_CACHE  # days kept in memory, with their final rows' rendered text

    def validated(self) -> CursorConfig:
        if self.member_id_style not in ("string", "number"):
            raise ValueError("member_id_style must be 'string' or 'number'")
        if self.members_shape not in ("teamMembers", "array"):
            raise ValueError("members_shape must be 'teamMembers' or 'array'")
        for name in ("daily_max_range_days", "spend_page_size", "cache_days"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.lateness_days < 0:
            raise ValueError("lateness_days must be >= 0")
        if (
            self.retry_after is not None
            and not isinstance(self.retry_after, bool)
            and int(self.retry_after) < 0
        ):
            raise ValueError("retry_after must be null, true/false or a number of seconds")
        for name in ("rate_limit_per_minute", "events_rate_limit_per_minute"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or int(value) < 0):
                raise ValueError(f"{name} must be a non-negative integer or null")
        return self


DEFAULT_CONFIG = CursorConfig()


def cursor_error(status: int, message: str) -> dict[str, Any]:
    """Cursor's error shape: ``{"error": "<reason phrase>", "message": "..."}``."""
    return {"error": reason(status), "message": message}


class CursorApp(App):
    """The Cursor Admin API app; `api_key`, `config` and `model` are what tests and the demo use."""

    def __init__(self, org: Organisation, clock: SimClock, config: CursorConfig) -> None:
        super().__init__("cursor", clock=clock, error_body=cursor_error)
        self.org = org
        self.model: CursorModel = cursor_model(org)
        self.team_limiter = self.rate_limiter("team", per_minute=20, retry_after=False)
        self.events_limiter = self.rate_limiter("events", per_minute=60, retry_after=False)
        self.admin_routes: list[Route] = []  # served under /_sandbox/ by the server's control app
        self.config = DEFAULT_CONFIG
        self.configure(**asdict(config))

    @property
    def api_key(self) -> str:
        return self.config.api_key or default_api_key(self.org.seed)

    def configure(self, **changes: Any) -> CursorConfig:
        """Apply a partial config (unknown keys -> ValueError) and switch the rate limiters to match."""
        unknown = set(changes) - {f.name for f in fields(CursorConfig)}
        if unknown:
            raise ValueError(f"unknown Cursor simulator options: {sorted(unknown)}")
        config = replace(self.config, **changes).validated()
        for limiter, per_minute in (
            (self.team_limiter, config.rate_limit_per_minute),
            (self.events_limiter, config.events_rate_limit_per_minute),
        ):
            limiter.configure(
                enabled=bool(per_minute),
                per_minute=int(per_minute or limiter.per_minute),
                retry_after=config.retry_after not in (None, False),
            )
        self.model.cache_days(config.cache_days)  # resized in place: warmed-up days stay
        self.config = config
        return config

    def admin_route(self, method: str, pattern: str, handler: Any) -> None:
        self.admin_routes.append(Route(method, pattern, compile_pattern(pattern), handler))

    # ------------------------------------------------------------------ request plumbing

    def authorize(self, request: Request) -> None:
        """HTTP Basic with the key as username (the password is ignored, Cursor's is empty)."""
        auth = request.header("authorization") or ""
        scheme, _, token = auth.partition(" ")
        user = None
        if scheme.lower() == "basic":
            try:
                user = base64.b64decode(token.strip(), validate=True).decode("utf-8").split(":", 1)[0]
            except (binascii.Error, UnicodeDecodeError):
                user = None
        if user != self.api_key:
            raise HTTPAbort(401, "Invalid API key")

    def limit(self, request: Request, events: bool = False) -> None:
        limiter = self.events_limiter if events else self.team_limiter
        too_many = limiter.check("team", lambda: self.error(429, RATE_LIMIT_MESSAGE))
        if too_many is None:
            return
        fixed = self.config.retry_after
        if "Retry-After" in too_many.headers and not isinstance(fixed, bool) and fixed is not None:
            too_many.headers["Retry-After"] = str(fixed)
        raise HTTPAbort(429, RATE_LIMIT_MESSAGE, response=too_many)

    def extra(self) -> bool:
        return self.config.extra_fields


def _body(request: Request) -> dict[str, Any]:
    body = request.json
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise HTTPAbort(400, "Request body must be a JSON object")
    return body


def _ms(body: dict[str, Any], name: str, default: int | None = None) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HTTPAbort(400, f"{name} must be a number (epoch milliseconds)")
    return int(value)


def _positive(body: dict[str, Any], name: str, default: int | None) -> int | None:
    value = body.get(name, default)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value != int(value)
        or value < 1
    ):
        raise HTTPAbort(400, f"{name} must be a positive integer")
    return int(value)


# --------------------------------------------------------------------------- handlers


def _members(app: CursorApp, request: Request) -> Response:
    app.authorize(request)
    app.limit(request)
    cfg, today = app.config, app.clock.today()
    listed = sorted(
        (m for m in app.model.members if m.listed_on(today)), key=lambda m: (m.seat_from, m.number)
    )
    if cfg.members_shape == "array":  # first release: current members only, no id, no isRemoved
        rows = [
            member_json(m, False, cfg.member_id_style, "array", False, app.model.team_id)
            for m in listed
            if not m.removed_on(today)
        ]
        return json_response(rows, required=("email",))
    rows = [
        member_json(
            m, m.removed_on(today), cfg.member_id_style, "teamMembers", app.extra(), app.model.team_id
        )
        for m in listed
    ]
    return json_response({"teamMembers": rows}, records="teamMembers", required=("email",))


def _daily(app: CursorApp, request: Request) -> Response:
    app.authorize(request)
    app.limit(request)
    body = _body(request)
    start_ms, end_ms = _ms(body, "startDate"), _ms(body, "endDate")
    if end_ms < start_ms:
        raise HTTPAbort(400, "endDate must not be before startDate")
    max_days = app.config.daily_max_range_days
    if end_ms - start_ms > max_days * DAY_MS:
        raise HTTPAbort(400, f"Date range cannot exceed {max_days} days")
    page, page_size = _positive(body, "page", None), _positive(body, "pageSize", None)
    return daily_usage(
        app.model,
        start_ms=start_ms,
        end_ms=end_ms,
        page=page,
        page_size=page_size,
        now_ms=instant_ms(app.clock.now()),
        lateness_days=app.config.lateness_days,
        team_id=app.model.team_id if app.extra() else None,
        period={"startDate": body["startDate"], "endDate": body["endDate"]},
    )


_SPEND_SORTS = {"date", "amount", "user"}


def _spend(app: CursorApp, request: Request) -> Response:
    app.authorize(request)
    app.limit(request)
    body = _body(request)
    page = _positive(body, "page", 1) or 1
    page_size = _positive(body, "pageSize", app.config.spend_page_size) or app.config.spend_page_size
    sort_by, direction = body.get("sortBy", "date"), body.get("sortDirection", "desc")
    if sort_by not in _SPEND_SORTS or direction not in ("asc", "desc"):
        raise HTTPAbort(400, "sortBy must be amount|date|user and sortDirection asc|desc")
    now = app.clock.now()
    today = now.date()
    members = spend_members(app.model, today)
    term = body.get("searchTerm")
    if isinstance(term, str) and term.strip():
        t = term.strip().lower()
        members = [m for m in members if t in m.email or (m.name is not None and t in m.name.lower())]
    totals = spend_totals(app.model, now)
    dzero = (Decimal(0), Decimal(0), 0)
    keys: dict[str, Callable[[CursorMember], Any]] = {
        "date": lambda m: (m.seat_from, m.number),
        "amount": lambda m: (totals.get(m.number, dzero)[0], m.number),
        "user": lambda m: ((m.name or m.email).lower(), m.number),
    }
    members.sort(key=keys[sort_by], reverse=direction == "desc")
    total_pages = max(1, math.ceil(len(members) / page_size))
    chosen = members[(page - 1) * page_size : page * page_size]
    payload = {
        "teamMemberSpend": [
            spend_json(
                m, totals.get(m.number, dzero), app.config.member_id_style, app.extra(), app.model.team_id
            )
            for m in chosen
        ],
        "subscriptionCycleStart": day_ms(cycle_start(today)),
        "totalMembers": len(members),
        "totalPages": total_pages,
    }
    return json_response(payload, records="teamMemberSpend", required=("email", "spendCents"))


def _events(app: CursorApp, request: Request) -> Response:
    app.authorize(request)
    app.limit(request, events=True)
    body = _body(request)
    now_ms = instant_ms(app.clock.now())
    start_ms = _ms(body, "startDate", now_ms - 30 * DAY_MS)
    end_ms = _ms(body, "endDate", now_ms)
    page = _positive(body, "page", 1) or 1
    page_size = _positive(body, "pageSize", 100) or 100
    if page_size > EVENTS_MAX_PAGE_SIZE:
        raise HTTPAbort(400, f"pageSize cannot exceed {EVENTS_MAX_PAGE_SIZE}")
    hosting = body.get("hostingType")
    if hosting is not None and hosting not in (
        "CLOUD",
        "SELF_HOSTED",
        "SELF_HOSTED_POOL",
        "SELF_HOSTED_MACHINE",
    ):
        raise HTTPAbort(400, f"Invalid hostingType: {hosting}")
    email = body.get("email")
    user_id = body.get("userId")
    sa_id = body.get("serviceAccountId")
    events = [
        e
        for e in window_events(
            app.model, start_ms, end_ms, now_ms, service_accounts=app.config.service_accounts
        )
        if (email is None or (e.member is not None and e.member.email == str(email).strip().lower()))
        and (
            user_id is None
            or (e.member is not None and str(user_id) in (str(e.member.number), e.member.encoded_id))
        )
        and (sa_id is None or (e.service_account is not None and e.service_account.id == sa_id))
    ]
    total = len(events)
    num_pages = math.ceil(total / page_size)
    chosen = events[(page - 1) * page_size : page * page_size]
    payload = {
        "totalUsageEventsCount": total,
        "pagination": {
            "numPages": num_pages,
            "currentPage": page,
            "pageSize": page_size,
            "hasNextPage": page < num_pages,
            "hasPreviousPage": page > 1,
        },
        "usageEvents": [event_json(e, app.extra(), app.model.team_id) for e in chosen],
        "period": {"startDate": start_ms, "endDate": end_ms},
    }
    return json_response(payload, records="usageEvents", required=("timestamp", "chargedCents"))


def _config_routes(app: CursorApp) -> None:
    def show(request: Request) -> dict[str, Any]:
        return {**asdict(app.config), "api_key": app.api_key}

    def change(request: Request) -> dict[str, Any]:
        body = request.json
        if not isinstance(body, dict):
            raise HTTPAbort(400, "expected a JSON object of Cursor simulator options")
        try:
            app.configure(**body)
        except (TypeError, ValueError) as exc:
            raise HTTPAbort(400, f"invalid Cursor simulator option: {exc}") from exc
        return show(request)

    app.admin_route("GET", "/_sandbox/cursor/config", show)
    app.admin_route("POST", "/_sandbox/cursor/config", change)


@register_app("cursor")
def build(
    org: Organisation, clock: SimClock, config: CursorConfig | None = None, **options: Any
) -> CursorApp:
    """The Cursor Admin API simulator over `org`; `options` override fields of `config` / `DEFAULT_CONFIG`."""
    app = CursorApp(org, clock, replace(config or DEFAULT_CONFIG, **options).validated())
    app.add_route("GET", "/teams/members", lambda r: _members(app, r))
    app.add_route("POST", "/teams/daily-usage-data", lambda r: _daily(app, r))
    app.add_route("POST", "/teams/spend", lambda r: _spend(app, r))
    app.add_route("POST", "/teams/filtered-usage-events", lambda r: _events(app, r))
    _config_routes(app)
    return app
