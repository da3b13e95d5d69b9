"""Metabase REST API hook (Connection ``metabase_default``: host, login, password).

Authentication (https://www.metabase.com/docs/latest/api#section/Authentication): with a login, the hook
opens a session with ``POST /api/session`` {username, password} and sends the returned id as the
``X-Metabase-Session`` header (https://www.metabase.com/docs/v0.50/api/session); with an empty login the
password is taken as an API key and sent as ``X-API-Key`` (Metabase 49+,
https://www.metabase.com/docs/latest/people-and-groups/api-keys). Retries of transient failures (5xx,
429, connection errors) come from the shared vendor hook; any other 4xx fails at once with Metabase's
message.

The connection's extra configures the warehouse connection Metabase is given (secrets stay in Airflow):

- ``bigquery_service_account_json``: key of the service account Metabase queries BigQuery with
  (grant it BigQuery Data Viewer on the ``<prefix>_marts`` dataset only, and Job User on the project);
- ``bigquery_project``: project Metabase queries (default: the warehouse's project);
- ``duckdb_file``: path of the marts-only DuckDB file as the Metabase server sees it
  (default: the export path below, for a Metabase on the same host);
- ``duckdb_export``: where provisioning writes that file (default ``.ai_usage/metabase/ai_usage_marts.duckdb``);
- ``subscription_emails``: extra recipients of the subscriptions besides the group's members.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import requests
from airflow.exceptions import AirflowNotFoundException
from requests.auth import AuthBase

from ai_usage.exceptions import ConfigurationError
from ai_usage.hooks.base import VendorHttpHook
from ai_usage.settings import METABASE_CONN_ID

log = logging.getLogger(__name__)


class MetabaseAuth(AuthBase):
    """Adds ``X-Metabase-Session`` (session id) or ``X-API-Key`` to every request."""

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.session_id: str | None = None

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.api_key:
            request.headers["X-API-Key"] = self.api_key
        elif self.session_id:
            request.headers["X-Metabase-Session"] = self.session_id
        return request

    def __repr__(self) -> str:
        return "MetabaseAuth(***)"


class MetabaseHook(VendorHttpHook):
    """JSON calls to a Metabase server's REST API; `get`, `post` and `put` return the parsed body."""

    conn_name_attr = "metabase_conn_id"
    default_conn_name = METABASE_CONN_ID
    conn_type = "metabase"
    hook_name = "Metabase"
    default_host = "http://localhost:3000"
    vendor = "Metabase API"
    key_label = "password (or API key, with an empty login)"
    test_path = "/api/user/current"
    test_params: ClassVar[dict[str, Any]] = {}
    max_attempts = 4
    backoff_initial = 1.0
    timeout = (10.0, 60.0)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form (declared as data in ai_usage.provider, where Airflow also reads it)."""
        from ai_usage.provider import ui_field_behaviour

        return ui_field_behaviour(cls.conn_type)

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(conn_id, **kwargs)
        self._metabase_auth: MetabaseAuth | None = None
        self._extra: dict[str, Any] | None = None
        self._signing_in = False

    def _auth(self, key: str) -> AuthBase:
        connection = self.get_connection(self.conn_id)
        login = (connection.login or "").strip()
        self._extra = dict(connection.extra_dejson or {})
        self._metabase_auth = MetabaseAuth(api_key=None if login else key)
        return self._metabase_auth

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        session = super().get_conn(headers, extra_options)
        auth = self._metabase_auth
        if auth is not None and auth.api_key is None and auth.session_id is None and not self._signing_in:
            login = (self.get_connection(self.conn_id).login or "").strip()
            self._signing_in = True
            try:
                # https://www.metabase.com/docs/v0.50/api/session#post-apisession
                _, _, payload = self.request(
                    "POST", "/api/session", json_body={"username": login, "password": self._key})
            finally:
                self._signing_in = False
            auth.session_id = str(payload["id"])
            log.info("opened a Metabase session at %s as %s", self.base_url, login)
        return session

    def extra(self) -> dict[str, Any]:
        """The connection's extra (warehouse settings for Metabase, see the module docstring)."""
        if self._extra is None:
            try:
                connection = self.get_connection(self.conn_id)
            except AirflowNotFoundException:
                raise ConfigurationError(
                    f"Airflow connection {self.conn_id!r} is not defined. {self._config_hint()}") from None
            self._extra = dict(connection.extra_dejson or {})
        return dict(self._extra)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)[2]

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json_body=body)[2]

    def put(self, path: str, body: Any, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("PUT", path, params=params, json_body=body)[2]

    def _config_hint(self) -> str:
        example = '{"conn_type": "metabase", "host": "https://metabase.example.com", "login": "<admin e-mail>", ' \
                  '"password": "<password>"}'
        return (f"Create it in the Airflow UI (Admin -> Connections: host = Metabase URL, login and password of a "
                f"Metabase admin, or an API key as password with an empty login) or set "
                f"AIRFLOW_CONN_{self.conn_id.upper()}='{example}'.")

    def _describe_test(self, payload: Any) -> str:
        if isinstance(payload, dict):
            return f"Signed in as {payload.get('email') or payload.get('common_name') or 'an API key'}."
        return ""
