"""The local stack: the vendor simulators for one synthetic organisation, and the Airflow connections
pointed at them (``AIRFLOW_CONN_CURSOR_ADMIN`` …), exactly as a deployment points them at the vendors.

Used by `make run`, the end-to-end tests and the benchmark. The product only ever sees connections.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from sandbox.clock import SimClock
from sandbox.org import Organisation
from sandbox.server import SimServer

CONN_ENV = {"cursor": "AIRFLOW_CONN_CURSOR_ADMIN", "anthropic": "AIRFLOW_CONN_ANTHROPIC_ADMIN",
            "sheets": "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT"}


class LocalStack:
    """Start simulators for `org` on loopback and export the connections; a context manager."""

    def __init__(
        self,
        org: Organisation,
        apps: Iterable[str] = ("cursor", "anthropic"),
        *,
        clock: SimClock | None = None,
        cursor_options: dict[str, Any] | None = None,
        anthropic_options: dict[str, Any] | None = None,
        sheets_options: dict[str, Any] | None = None,
    ) -> None:
        self.org = org
        self.clock = clock or SimClock()
        self.apps = list(apps)
        self.cursor_options = {"rate_limit_per_minute": 0, "events_rate_limit_per_minute": 0,
                               **(cursor_options or {})}
        self.anthropic_options = anthropic_options or {}
        self.sheets_options = sheets_options or {}
        self.servers: dict[str, SimServer] = {}
        self._saved_env: dict[str, str | None] = {}

    def start(self) -> LocalStack:
        for name in self.apps:
            if name == "cursor":
                from sandbox.vendors.cursor import build

                app = build(self.org, self.clock, **self.cursor_options)
                conn = {"conn_type": "cursor_admin", "host": "", "password": app.api_key}
            elif name == "anthropic":
                from sandbox.vendors.anthropic import build_anthropic

                app = build_anthropic(self.org, self.clock, **self.anthropic_options)
                conn = {"conn_type": "anthropic_admin", "host": "", "password": app.admin_key}
            elif name == "sheets":
                self._start_sheets()
                continue
            elif name == "alerts":
                from sandbox.alert_sink import HOOK_PATH, AlertSink

                server = SimServer(AlertSink()).start()
                self.servers[name] = server
                # The Slack provider's incoming-webhook connection, pointed at the loopback sink.
                self._export("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(
                    {"conn_type": "slackwebhook", "host": server.url + HOOK_PATH, "password": ""}))
                continue
            else:
                raise KeyError(f"no simulator {name!r}")
            server = SimServer(app).start()
            self.servers[name] = server
            conn["host"] = server.url
            self._export(CONN_ENV[name], json.dumps(conn))
        return self

    def _start_sheets(self) -> None:
        """The Sheets simulator: google_cloud_default gets a service-account key whose token and Sheets
        endpoints are the simulator, and AI_USAGE_SHEET the organisation's spreadsheet id."""
        from sandbox.vendors.sheets import build_sheets, connection_env, org_spreadsheet_id

        app = build_sheets(self.org, self.clock, **self.sheets_options)
        server = SimServer(app).start()
        self.servers["sheets"] = server
        self._export(CONN_ENV["sheets"], connection_env(app, server.url))
        self._export("AI_USAGE_SHEET", org_spreadsheet_id(self.org))

    def _export(self, var: str, value: str) -> None:
        self._saved_env.setdefault(var, os.environ.get(var))
        os.environ[var] = value

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()
        for var, old in self._saved_env.items():
            if old is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = old
        self._saved_env.clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def app(self, name: str) -> Any:
        return self.servers[name].app
