"""Local simulators of the vendor APIs and the deterministic synthetic organisation behind them.

Demo and tests only: the product (`ai_usage`) never imports this package. Run `python -m sandbox --help`;
see README.md here for how a vendor simulator plugs in.
"""

from __future__ import annotations

from sandbox.app import App, HTTPAbort, Request, Response, json_error, json_response
from sandbox.clock import SimClock
from sandbox.faults import FaultRule
from sandbox.org import Organisation
from sandbox.ratelimit import RateLimiter
from sandbox.registry import register_app
from sandbox.server import SimServer

__all__ = [
    "App",
    "FaultRule",
    "HTTPAbort",
    "Organisation",
    "RateLimiter",
    "Request",
    "Response",
    "SimClock",
    "SimServer",
    "json_error",
    "json_response",
    "register_app",
]
