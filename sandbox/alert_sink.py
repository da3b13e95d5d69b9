"""A loopback stand-in for a Slack incoming webhook: `make run` points the `slack_alerts` connection at it
and prints the alerts the DAGs sent (quarantine and unmapped-key digests, failures), so the local run shows
the alert path end to end without a Slack workspace."""

from __future__ import annotations

import threading
from typing import Any

from sandbox.app import App, Request, Response, json_response

HOOK_PATH = "/services/T000LOCAL/B000LOCAL/sandbox"


class AlertSink(App):
    """Records every JSON payload posted to the webhook path."""

    def __init__(self) -> None:
        super().__init__("alerts")
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.add_route("POST", HOOK_PATH, self._receive)

    def _receive(self, request: Request) -> Response:
        with self._lock:
            self.received.append(request.json or {})
        return json_response({"ok": True})

    def texts(self) -> list[str]:
        """The plain-text fallback of every message, in arrival order."""
        with self._lock:
            return [str(m.get("text", "")) for m in self.received]
