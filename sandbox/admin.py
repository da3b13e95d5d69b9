"""The control endpoints every simulator serves under ``/_sandbox/`` (not subject to faults, not logged).

So that a separate process (an Airflow task, an end-to-end test) can steer a running simulator:

- ``GET  /_sandbox/health`` -> ``{"status": "ok", "app": name}``
- ``GET|POST|DELETE /_sandbox/faults`` (``DELETE /_sandbox/faults/{id}``): list, arm (one rule object,
  a list, or ``{"faults": [...]}``; fields of `sandbox.faults.FaultRule`), clear
- ``GET|DELETE /_sandbox/requests`` (``?path=<glob>&method=``): the request log, redacted
- ``GET|POST /_sandbox/clock``: ``{"now": "2026-03-01T12:00:00Z"}`` | ``{"advance_s": 3600}`` | ``{"real": true}``
- ``GET|POST /_sandbox/rate-limits``: ``{"name": optional, "enabled": bool, "per_minute": n, "retry_after": bool,
  "reset": bool}`` applied to the named limiter or to all of the app's limiters
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.app import App, HTTPAbort, Request, Response, json_response
from sandbox.faults import FaultRule

if TYPE_CHECKING:
    from sandbox.server import SimServer

PREFIX = "/_sandbox"


def _body_object(request: Request) -> Any:
    body = request.json
    if body is None:
        raise HTTPAbort(400, "a JSON body is required")
    return body


def build_admin_app(server: SimServer) -> App:
    admin = App(f"{server.app.name}-admin", clock=server.app.clock)

    @admin.get(f"{PREFIX}/health")
    def health(request: Request) -> dict[str, Any]:
        return {"status": "ok", "app": server.app.name}

    @admin.get(f"{PREFIX}/faults")
    def list_faults(request: Request) -> dict[str, Any]:
        return {"faults": [r.to_dict() for r in server.faults.rules()]}

    @admin.post(f"{PREFIX}/faults")
    def arm_faults(request: Request) -> Response:
        body = _body_object(request)
        specs = body.get("faults") if isinstance(body, dict) and "faults" in body else body
        specs = specs if isinstance(specs, list) else [specs]
        try:
            rules = [FaultRule.from_dict(dict(spec)) for spec in specs]
        except (TypeError, ValueError) as exc:
            raise HTTPAbort(400, f"invalid fault rule: {exc}") from exc
        for rule in rules:
            server.faults.add(rule)
        return json_response({"faults": [r.to_dict() for r in rules]}, status=201)

    @admin.delete(f"{PREFIX}/faults")
    def clear_faults(request: Request) -> dict[str, Any]:
        return {"cleared": server.faults.clear()}

    @admin.delete(f"{PREFIX}/faults/{{rule_id}}")
    def remove_fault(request: Request) -> dict[str, Any]:
        if not server.faults.remove(request.path_params["rule_id"]):
            raise HTTPAbort(404, f"no fault rule {request.path_params['rule_id']}")
        return {"removed": request.path_params["rule_id"]}

    @admin.get(f"{PREFIX}/requests")
    def list_requests(request: Request) -> dict[str, Any]:
        entries = server.requests(path=request.arg("path"), method=request.arg("method"))
        return {"requests": [e.to_dict() for e in entries]}

    @admin.delete(f"{PREFIX}/requests")
    def clear_requests(request: Request) -> dict[str, Any]:
        return {"cleared": server.log.clear()}

    @admin.get(f"{PREFIX}/clock")
    def get_clock(request: Request) -> dict[str, Any]:
        return server.clock.to_dict()

    @admin.post(f"{PREFIX}/clock")
    def set_clock(request: Request) -> dict[str, Any]:
        body = _body_object(request)
        try:
            if body.get("real"):
                server.clock.reset()
            if "now" in body:
                server.clock.set(str(body["now"]))
            if "advance_s" in body:
                server.clock.advance(float(body["advance_s"]))
        except (TypeError, ValueError, AttributeError) as exc:
            raise HTTPAbort(400, f"invalid clock setting: {exc}") from exc
        return server.clock.to_dict()

    @admin.get(f"{PREFIX}/rate-limits")
    def get_limits(request: Request) -> dict[str, Any]:
        return {name: lim.to_dict() for name, lim in server.app.rate_limiters.items()}

    @admin.post(f"{PREFIX}/rate-limits")
    def set_limits(request: Request) -> dict[str, Any]:
        body = _body_object(request)
        if not isinstance(body, dict):
            raise HTTPAbort(400, "expected a JSON object")
        name = body.get("name")
        limiters = server.app.rate_limiters
        if name is not None and name not in limiters:
            raise HTTPAbort(404, f"no rate limiter {name!r}; have {sorted(limiters)}")
        targets = [limiters[name]] if name is not None else list(limiters.values())
        try:
            for lim in targets:
                lim.configure(
                    enabled=body.get("enabled"),
                    per_minute=body.get("per_minute"),
                    retry_after=body.get("retry_after"),
                    window_s=body.get("window_s"),
                )
                if body.get("reset"):
                    lim.reset()
        except (TypeError, ValueError) as exc:
            raise HTTPAbort(400, f"invalid rate-limit setting: {exc}") from exc
        return {lim.name: lim.to_dict() for lim in targets}

    # App-specific control routes (e.g. the Cursor simulator's /_sandbox/cursor/config).
    admin.routes.extend(getattr(server.app, "admin_routes", ()))
    return admin
