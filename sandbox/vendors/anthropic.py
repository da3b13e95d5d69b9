"""Simulator of the Anthropic Admin API (Claude Console organisations), served on loopback.

Endpoints (newest documented shapes, vendor-apis.md §1; https://platform.claude.com/docs/en/api/admin):
``usage_report/claude_code``, ``cost_report``, ``usage_report/messages``, ``api_keys``, ``users``,
``workspaces`` (+ ``/{id}/members``), ``invites``, ``me``. Every request needs ``x-api-key`` with the
app's admin key (``sk-ant-admin…``; else 401 ``authentication_error``) and an ``anthropic-version`` header
(else 400 ``invalid_request_error``; the real API's behaviour there is undocumented). Errors use the
vendor shape ``{"type": "error", "error": {"type", "message"}, "request_id": "req_…"}`` and carry a
``request-id`` header.

Options (`AnthropicOptions`): the admin key (default derived from the organisation's seed, see
`admin_key_for`), subscription users left out of the Claude Code report (G-A3, default on), an
organisation-wide rate limit (off by default; 429 ``rate_limit_error`` with or without ``retry-after``),
lateness (Claude Code 1 h, cost and usage 5 min), the cost-revision window (3 days), undocumented
extra fields (on) and the day books kept in memory (``cache_days``, 16; changing it keeps the books
generated so far, so a harness raises it before warming a range up). Another process steers a running
simulator through ``GET|POST /_sandbox/anthropic/config`` (a partial `AnthropicOptions` object; the
answer includes the admin key) and ``/_sandbox/rate-limits``.

Data: see `anthropic_day` (what is used and billed), `anthropic_timing` (lateness, revisions) and
`anthropic_truth` (the final rows the warehouse must hold).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from sandbox.app import App, HTTPAbort, Request, Response, Route, compile_pattern
from sandbox.clock import SimClock
from sandbox.registry import register_app
from sandbox.rng import stable_token
from sandbox.vendors.anthropic_day import AnthropicDays
from sandbox.vendors.anthropic_lists import register_lists
from sandbox.vendors.anthropic_params import error_type
from sandbox.vendors.anthropic_reports import claude_code_report, cost_report, messages_report

if TYPE_CHECKING:
    from sandbox.org import Organisation

log = logging.getLogger(__name__)

ADMIN_KEY_PREFIX = "sk-ant-admin"


def admin_key_for(seed: int) -> str:
    """The default admin key of the organisation generated with `seed` (stable across processes)."""
    body = stable_token(seed, "anthropic-admin-key", "a", length=40) + stable_token(
        seed, "anthropic-admin-key", "b", length=40
    )
    return f"{ADMIN_KEY_PREFIX}01-{body[:78]}-{body[78:]}AA"


@dataclass(frozen=True)
class AnthropicOptions:
    """Switches of the simulator (defaults: the newest documented behaviour)."""

    admin_key: str | None = None  # None: admin_key_for(org.seed)
    omit_subscription_users: bool = True  # G-A3: the report leaves out claude.ai subscription users
    rate_limited: bool = False
    rate_limit_per_minute: int = 60
    retry_after: bool = True  # send retry-after on the limiter's 429s
    claude_code_delay_s: int = 3600  # only data older than this is served
    cost_delay_s: int = 300
    usage_delay_s: int = 300
    revision_days: int = 3  # cost figures of the last N days are still revised upward
    extra_fields: bool = True  # a few objects carry undocumented fields parsers must ignore
    require_version: bool = True
    cache_days: int = 16  # full day books (with their rendered records) kept in memory; cost lines far longer


class AnthropicApp(App):
    """The simulator app; `admin_key`, `org`, `days` and `options` are there for tests and harnesses."""

    def __init__(self, org: Organisation, clock: SimClock, options: AnthropicOptions) -> None:
        self._request_ids = itertools.count(1)
        self.org = org
        self.options = options
        self.admin_key = options.admin_key or admin_key_for(org.seed)
        self.days = AnthropicDays(
            org, subscription_users=not options.omit_subscription_users, cache_days=options.cache_days
        )
        super().__init__("anthropic", clock=clock, error_body=self._error_body)
        self.limiter = self.rate_limiter(
            "organization",
            per_minute=options.rate_limit_per_minute,
            retry_after=options.retry_after,
            enabled=options.rate_limited,
        )
        self.admin_routes: list[Route] = []  # served under /_sandbox/ by the server's control app
        for method in ("GET", "POST"):
            pattern = "/_sandbox/anthropic/config"
            self.admin_routes.append(Route(method, pattern, compile_pattern(pattern), self._config_route))

    def configure(self, **changes: Any) -> AnthropicOptions:
        """Apply a partial set of options (unknown names -> ValueError); the data and limiter follow."""
        unknown = set(changes) - {f.name for f in fields(AnthropicOptions)}
        if unknown:
            raise ValueError(f"unknown Anthropic simulator options: {sorted(unknown)}")
        old, self.options = self.options, replace(self.options, **changes)
        self.admin_key = self.options.admin_key or admin_key_for(self.org.seed)
        if old.omit_subscription_users != self.options.omit_subscription_users:  # other data: new books
            self.days = AnthropicDays(
                self.org,
                subscription_users=not self.options.omit_subscription_users,
                cache_days=self.options.cache_days,
            )
        elif old.cache_days != self.options.cache_days:  # resized in place: the books generated so far stay
            self.days.cache_days(self.options.cache_days)
        self.limiter.configure(
            enabled=self.options.rate_limited,
            per_minute=self.options.rate_limit_per_minute,
            retry_after=self.options.retry_after,
        )
        return self.options

    def _config_route(self, request: Request) -> dict[str, Any]:
        if request.method == "POST":
            body = request.json
            if not isinstance(body, dict):
                raise HTTPAbort(400, "expected a JSON object of options")
            try:
                self.configure(**body)
            except (TypeError, ValueError) as exc:
                raise HTTPAbort(400, f"invalid options: {exc}") from exc
        return {**asdict(self.options), "admin_key": self.admin_key}

    def request_id(self) -> str:
        n = next(self._request_ids)
        return "req_011C" + stable_token(self.org.seed, "anthropic-request", n, length=20)

    def _error_body(self, status: int, message: str) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": error_type(status), "message": message},
            "request_id": self.request_id(),
        }

    def error(
        self, status: int, message: str | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        resp = super().error(status, message, headers)
        if isinstance(resp.json, dict) and "request_id" in resp.json:
            resp.headers.setdefault("request-id", resp.json["request_id"])
        return resp

    def guarded_get(
        self, pattern: str
    ) -> Callable[[Callable[[Request], Response]], Callable[[Request], Response]]:
        """Register a GET route behind authentication, the version header and the rate limit."""

        def decorate(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
            def guarded(request: Request) -> Response:
                self.authenticate(request)
                limited = self.limiter.check(
                    self.admin_key,
                    lambda: self.error(429, "Number of requests has exceeded your per-minute rate limit"),
                )
                if limited is not None:
                    return limited
                resp = handler(request)
                resp.headers.setdefault("request-id", self.request_id())
                resp.headers.setdefault("anthropic-organization-id", self.org.organization_id)
                return resp

            self.add_route("GET", pattern, guarded)
            return handler

        return decorate

    def authenticate(self, request: Request) -> None:
        key = request.header("x-api-key")
        if not key or not key.startswith(ADMIN_KEY_PREFIX) or key != self.admin_key:
            raise HTTPAbort(401, "invalid x-api-key")
        if self.options.require_version and not request.header("anthropic-version"):
            raise HTTPAbort(400, "anthropic-version: header is required")


def build_anthropic(
    org: Organisation, clock: SimClock, options: AnthropicOptions | None = None, **overrides: Any
) -> AnthropicApp:
    """The Anthropic Admin API simulator for `org` on `clock`; keyword overrides patch `options`."""
    opts = replace(options or AnthropicOptions(), **overrides)
    app = AnthropicApp(org, clock, opts)

    @app.guarded_get("/v1/organizations/usage_report/claude_code")
    def claude_code(request: Request) -> Response:
        return claude_code_report(app, request)

    @app.guarded_get("/v1/organizations/cost_report")
    def costs(request: Request) -> Response:
        return cost_report(app, request)

    @app.guarded_get("/v1/organizations/usage_report/messages")
    def messages(request: Request) -> Response:
        return messages_report(app, request)

    register_lists(app, app.guarded_get)
    log.debug("anthropic simulator built for organisation %s", org.organization_id)
    return app


@register_app("anthropic")
def build(org: Organisation, clock: SimClock) -> App:
    """Registered factory: the simulator with default options."""
    return build_anthropic(org, clock)


__all__ = ["AnthropicApp", "AnthropicOptions", "admin_key_for", "build", "build_anthropic"]
