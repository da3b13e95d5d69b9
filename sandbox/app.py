"""Requests, responses and the route table a vendor simulator is made of.

A vendor app is an `App` with handlers registered per method and path pattern (``/v1/x/{id}/members``);
a handler takes a `Request` and returns a `Response` (or a dict / list, sent as JSON 200). Vendor
apps pass their own `error_body` so framework errors (404, 405, 400, injected 429/5xx) carry the
vendor's error shape.
"""

from __future__ import annotations

import http
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sandbox.clock import SimClock

if TYPE_CHECKING:
    from sandbox.ratelimit import RateLimiter

log = logging.getLogger(__name__)

_UNSET: Any = object()


def reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def default_error_body(status: int, message: str) -> dict[str, Any]:
    """Generic error shape for apps that do not bring their own."""
    slug = reason(status).lower().replace(" ", "_").replace("-", "_")
    return {"error": {"type": slug, "message": message}}


@dataclass
class Response:
    """What a handler returns. `records` / `required` tell the malform fault what it may corrupt.

    `records` is a dotted path to the list of records inside the JSON (``"data"``,
    ``"teamMemberSpend"``, ``"data.*.results"`` where ``*`` walks a list); `required` names fields
    every record must carry (dotted for nested fields, e.g. ``"actor.email_address"``).
    """

    status: int = 200
    json: Any = _UNSET
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    records: str | None = None
    required: tuple[str, ...] = ()

    @property
    def is_json(self) -> bool:
        return self.json is not _UNSET

    def render(self) -> bytes:
        if self.is_json:
            return json.dumps(self.json, separators=(",", ":")).encode("utf-8")
        return self.body or b""

    def media_type(self) -> str:
        if self.content_type:
            return self.content_type
        return "application/json" if self.is_json else "application/octet-stream"


def json_response(
    payload: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    records: str | None = None,
    required: tuple[str, ...] = (),
) -> Response:
    return Response(
        status=status, json=payload, headers=dict(headers or {}), records=records, required=required
    )


def json_error(
    status: int, message: str | None = None, *, headers: dict[str, str] | None = None, body: Any = None
) -> Response:
    """A JSON error response: `body` if given, else the generic ``{"error": {"type", "message"}}``."""
    payload = body if body is not None else default_error_body(status, message or reason(status))
    return Response(status=status, json=payload, headers=dict(headers or {}))


class HTTPAbort(Exception):
    """Raise from a handler to answer with an error; the app renders it with its vendor error shape."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        response: Response | None = None,
    ) -> None:
        super().__init__(message or reason(status))
        self.status = status
        self.message = message or reason(status)
        self.headers = dict(headers or {})
        self.response = response


@dataclass
class Request:
    """An incoming request: header names lower-cased, query as a multi-dict (name -> list of values)."""

    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    path_params: dict[str, str] = field(default_factory=dict)
    client: str = ""

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        """Every value of a repeated query parameter (e.g. ``group_by[]``)."""
        return list(self.query.get(name, []))

    @cached_property
    def json(self) -> Any:
        """The JSON body (None when empty); an invalid body aborts with 400."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HTTPAbort(400, f"Request body is not valid JSON: {exc}") from exc


Handler = Callable[[Request], "Response | dict[str, Any] | list[Any]"]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    regex: re.Pattern[str]
    handler: Handler


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``/v1/x/{id}/members`` -> a regex with a named group per ``{param}`` (one path segment each)."""
    parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", pattern)
    out = []
    for part in parts:
        if part.startswith("{") and part.endswith("}"):
            out.append(f"(?P<{part[1:-1]}>[^/]+)")
        else:
            out.append(re.escape(part))
    return re.compile("^" + "".join(out) + "$")


class App:
    """A named set of routes plus the vendor's error shape, clock and rate limiters."""

    def __init__(
        self, name: str, *, clock: SimClock | None = None, error_body: Callable[[int, str], Any] | None = None
    ) -> None:
        self.name = name
        self.clock = clock or SimClock()
        self.error_body = error_body or default_error_body
        self.routes: list[Route] = []
        self.rate_limiters: dict[str, RateLimiter] = {}

    def add_route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append(Route(method.upper(), pattern, compile_pattern(pattern), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.add_route(method, pattern, handler)
            return handler

        return decorate

    def get(self, pattern: str) -> Callable[[Handler], Handler]:
        return self.route("GET", pattern)

    def post(self, pattern: str) -> Callable[[Handler], Handler]:
        return self.route("POST", pattern)

    def delete(self, pattern: str) -> Callable[[Handler], Handler]:
        return self.route("DELETE", pattern)

    def rate_limiter(self, name: str, per_minute: int, **options: Any) -> RateLimiter:
        """Create and register a rate limiter on this app's clock (admin endpoint can switch it)."""
        from sandbox.ratelimit import RateLimiter

        limiter = RateLimiter(per_minute, clock=self.clock, name=name, **options)
        self.rate_limiters[name] = limiter
        return limiter

    def error(
        self, status: int, message: str | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        """An error response in this vendor's shape."""
        return Response(
            status=status,
            json=self.error_body(status, message or reason(status)),
            headers=dict(headers or {}),
        )

    def dispatch(self, request: Request) -> Response:
        """Route the request; 404 / 405 / handler errors become responses in the vendor's error shape."""
        allowed = []
        for r in self.routes:
            m = r.regex.match(request.path)
            if not m:
                continue
            if r.method != request.method:
                allowed.append(r.method)
                continue
            request.path_params = m.groupdict()
            try:
                result = r.handler(request)
            except HTTPAbort as abort:
                return abort.response or self.error(abort.status, abort.message, abort.headers)
            except Exception:
                log.exception("handler %s %s of app %s failed", request.method, r.pattern, self.name)
                return self.error(500, "An unexpected error occurred")
            if isinstance(result, Response):
                return result
            return json_response(result)
        if allowed:
            return self.error(
                405, f"Method {request.method} not allowed", {"Allow": ", ".join(sorted(set(allowed)))}
            )
        return self.error(404, f"No route for {request.method} {request.path}")
