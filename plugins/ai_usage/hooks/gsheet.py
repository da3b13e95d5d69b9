"""The Google spreadsheet backend of the Sheet: gspread over the Sheets API v4 values endpoints.

https://developers.google.com/sheets/api/reference/rest/v4/spreadsheets.values — a tab is read with
``values.get`` (``valueRenderOption=FORMATTED_VALUE``: the text a person sees) and discovered API keys
are written with ``values.append`` (``valueInputOption=RAW``, so a name starting with ``=`` is never
turned into a formula).

Credentials are those of the Airflow connection ``google_cloud_default`` (`GoogleSheetsHook`, the Google
provider's `GoogleBaseHook`: key file, key JSON or application-default credentials), with the Sheets
scope added. Share the spreadsheet with the service account's e-mail (Editor: the DAG appends rows).

The connection's optional extra ``sheets_endpoint`` replaces ``https://sheets.googleapis.com``: for a
private endpoint (Private Service Connect) and for testing against a local simulator. gspread itself has
no such option, so `SheetsHTTPClient` rewrites the base of each URL it sends; it also retries transient
failures (connection errors, timeouts, 429 honouring ``Retry-After``, 5xx) with exponential backoff and
counts the calls for ops.ingestion_runs.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import gspread
import requests
import tenacity
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient

from ai_usage import __version__, settings
from ai_usage.exceptions import ConfigurationError, VendorAPIError
from ai_usage.hooks.pages import ApiPage
from ai_usage.hooks.sheet import TAB_NAMES, match_tab, normalize_grid, tab_endpoint
from ai_usage.sources.sheet import align_row

log = logging.getLogger(__name__)

SHEETS_SCOPE = "https://www.googleapis.com/auth/spreadsheets"
DEFAULT_ENDPOINT = "https://sheets.googleapis.com"
ENDPOINT_EXTRA = "sheets_endpoint"
READ_PARAMS = {"valueRenderOption": "FORMATTED_VALUE", "majorDimension": "ROWS"}
_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class _Transient(Exception):
    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.status, self.retry_after = reason, status, retry_after


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class SheetsHTTPClient(HTTPClient):
    """gspread's HTTP client with a configurable endpoint, transient-failure retries and call counters."""

    endpoint: str = DEFAULT_ENDPOINT
    max_attempts: int = 5
    backoff_initial: float = 1.0
    max_wait: float = 60.0
    retry_wait_scale: float = 1.0

    def __init__(self, auth: Any, session: requests.Session | None = None) -> None:
        super().__init__(auth, session)
        self.session.headers["User-Agent"] = f"ai-usage/{__version__} gspread/{gspread.__version__}"
        self.api_calls = 0
        self.retries = 0
        self.last_response: requests.Response | None = None
        self.sleep: Callable[[float], None] = time.sleep

    def url(self, url: str) -> str:
        if self.endpoint != DEFAULT_ENDPOINT and url.startswith(DEFAULT_ENDPOINT):
            return self.endpoint.rstrip("/") + url[len(DEFAULT_ENDPOINT):]
        return url

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None)
        wait = hint if hint is not None else (
            self.backoff_initial * 2 ** (state.attempt_number - 1) + random.uniform(0, self.backoff_initial))
        return min(wait, self.max_wait) * self.retry_wait_scale

    def _attempt(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.api_calls += 1
        try:
            response = self.session.request(method=method, url=url, timeout=self.timeout, **kwargs)
        except _TRANSIENT as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise _Transient(f"HTTP {response.status_code}: {response.text[:200]}", response.status_code,
                             _retry_after(response.headers.get("Retry-After")))
        if not response.ok:
            raise APIError(response)
        self.last_response = response
        return response

    def request(  # type: ignore[override]
        self, method: str, endpoint: str, params: Any = None, data: Any = None, json: Any = None,
        files: Any = None, headers: Any = None,
    ) -> requests.Response:
        url = self.url(endpoint)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            log.warning("Sheets %s %s attempt %s/%s failed (%s); retrying in %.2f s", method.upper(),
                        urlsplit(url).path, state.attempt_number, self.max_attempts,
                        getattr(exc, "reason", exc), state.upcoming_sleep)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts), wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Transient), sleep=self.sleep,
            before_sleep=before_sleep, reraise=True,
        )
        try:
            return retrying(self._attempt, method, url, params=params, data=data, json=json, files=files,
                            headers=headers)
        except _Transient as exc:
            raise VendorAPIError(f"Google Sheets {method.upper()} {urlsplit(url).path} failed after "
                                 f"{self.max_attempts} attempt(s); last error: {exc.reason}",
                                 status=exc.status, conn_id=settings.GOOGLE_CONN_ID) from exc


def build_client(credentials: Any, *, endpoint: str = DEFAULT_ENDPOINT,
                 timeout: tuple[float, float] = (10.0, 60.0)) -> gspread.Client:
    """A gspread client on `credentials` (google-auth) that talks to `endpoint`."""
    client = gspread.Client(auth=credentials, http_client=SheetsHTTPClient)
    http = client.http_client
    assert isinstance(http, SheetsHTTPClient)
    http.endpoint = endpoint.rstrip("/")
    client.set_timeout(timeout)
    return client


def _google_base_hook() -> type:
    from airflow.providers.google.common.hooks.base_google import GoogleBaseHook

    return GoogleBaseHook


class GoogleSheetsHook:
    """Credentials and endpoint of the Sheet from connection ``google_cloud_default`` (Google provider)."""

    def __init__(self, gcp_conn_id: str = settings.GOOGLE_CONN_ID) -> None:
        self.gcp_conn_id = gcp_conn_id

    def _base(self) -> Any:
        from airflow.exceptions import AirflowNotFoundException

        base_cls = _google_base_hook()

        class _Hook(base_cls):  # type: ignore[misc, valid-type]
            @property
            def scopes(self) -> Sequence[str]:
                return list(dict.fromkeys([*super().scopes, SHEETS_SCOPE]))

        try:
            return _Hook(gcp_conn_id=self.gcp_conn_id)
        except AirflowNotFoundException:
            raise ConfigurationError(
                f"Airflow connection {self.gcp_conn_id!r} is not defined; the Sheet (AI_USAGE_SHEET is a "
                "spreadsheet id) is read with its service-account credentials. Create it (type 'Google Cloud') "
                "or set AI_USAGE_SHEET=file:///<folder of CSV files>.") from None

    def get_client(self) -> gspread.Client:
        hook = self._base()
        endpoint = hook._get_field(ENDPOINT_EXTRA, None) or DEFAULT_ENDPOINT
        if endpoint != DEFAULT_ENDPOINT:
            log.info("Sheets API endpoint from connection %s extra %s: %s", self.gcp_conn_id, ENDPOINT_EXTRA,
                     endpoint)
        return build_client(hook.get_credentials(), endpoint=endpoint)


def a1(title: str, cells: str = "") -> str:
    """A1 range of a whole tab (or of `cells` in it), the title quoted: ``'api_key_owners'!A1``."""
    quoted = "'" + title.replace("'", "''") + "'"
    return f"{quoted}!{cells}" if cells else quoted


class GoogleSheetSource:
    """Tabs of one Google spreadsheet (AI_USAGE_SHEET = its id)."""

    kind = "gsheet"

    def __init__(self, spreadsheet_id: str, client: gspread.Client | None = None,
                 conn_id: str = settings.GOOGLE_CONN_ID) -> None:
        self.spreadsheet_id = spreadsheet_id
        self.conn_id = conn_id
        self._client = client
        self._spreadsheet: gspread.Spreadsheet | None = None

    @property
    def client(self) -> gspread.Client:
        if self._client is None:
            self._client = GoogleSheetsHook(self.conn_id).get_client()
        return self._client

    @property
    def http(self) -> SheetsHTTPClient:
        http = self.client.http_client
        assert isinstance(http, SheetsHTTPClient)
        return http

    @property
    def api_calls(self) -> int:
        return self.http.api_calls if self._client is not None else 0

    @property
    def retries(self) -> int:
        return self.http.retries if self._client is not None else 0

    def describe(self) -> str:
        return f"Google spreadsheet {self.spreadsheet_id}"

    def _fail(self, exc: APIError, what: str) -> VendorAPIError:
        status = exc.response.status_code
        hint = ""
        if status in (401, 403):
            hint = (f". Share the spreadsheet with the service account of connection {self.conn_id!r} "
                    "(Editor: the DAG appends discovered API keys) and check the Sheets API is enabled")
        elif status == 404:
            hint = ". Check AI_USAGE_SHEET: no spreadsheet with this id is visible to the service account"
        return VendorAPIError(f"Google Sheets: {what} of spreadsheet {self.spreadsheet_id} failed with HTTP "
                              f"{status}: {exc.error.get('message', exc.response.text[:200])}{hint}",
                              status=status, conn_id=self.conn_id)

    def _title(self, tab: str) -> str:
        try:
            if self._spreadsheet is None:
                self._spreadsheet = self.client.open_by_key(self.spreadsheet_id)
            meta = self._spreadsheet.fetch_sheet_metadata()
        except APIError as exc:
            raise self._fail(exc, "reading the tab list") from exc
        except (gspread.exceptions.SpreadsheetNotFound, PermissionError) as exc:
            cause = exc.__cause__  # gspread turns a 404 / 403 of open_by_key into these
            if isinstance(cause, APIError):
                raise self._fail(cause, "opening") from exc
            raise ConfigurationError(f"AI_USAGE_SHEET: spreadsheet {self.spreadsheet_id} cannot be opened") from exc
        titles = [s["properties"]["title"] for s in meta.get("sheets", [])]
        title = match_tab(titles, tab)
        if title is None:
            raise ConfigurationError(
                f"tab {tab}: spreadsheet {self.spreadsheet_id} has no such tab (tabs: {', '.join(titles)}); "
                f"the template needs {', '.join(TAB_NAMES)}")
        return title

    def read_tab(self, tab: str) -> ApiPage:
        title = self._title(tab)
        assert self._spreadsheet is not None
        try:
            data = self._spreadsheet.values_get(a1(title), params=dict(READ_PARAMS))
        except APIError as exc:
            raise self._fail(exc, f"reading tab {title!r}") from exc
        response = self.http.last_response
        assert response is not None
        return ApiPage(
            endpoint=tab_endpoint(tab), n=1,
            request={"method": "GET", "path": urlsplit(response.url).path, "params": dict(READ_PARAMS),
                     "tab": tab},
            status=response.status_code, text=response.text,
            payload=normalize_grid(data.get("values", [])),
            headers={k: v for k, v in response.headers.items() if k.lower() in ("content-type", "date")},
        )

    def append_rows(self, tab: str, rows: Sequence[Mapping[str, str | None]]) -> int:
        """Append `rows` under the tab's own header (values.append, INSERT_ROWS, RAW); returns rows written."""
        if not rows:
            return 0
        title = self._title(tab)
        assert self._spreadsheet is not None
        try:
            header_values = self._spreadsheet.values_get(a1(title, "1:1"), params=dict(READ_PARAMS))
            header = (header_values.get("values") or [[]])[0]
            body = {"majorDimension": "ROWS", "values": normalize_grid(align_row(tab, header, r) for r in rows)}
            result = self._spreadsheet.values_append(
                a1(title, "A1"), params={"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"}, body=body)
        except APIError as exc:
            raise self._fail(exc, f"appending to tab {title!r}") from exc
        written = int(result.get("updates", {}).get("updatedRows", 0))
        log.info("appended %d row(s) to tab %s (%s)", written, title, result.get("updates", {}).get("updatedRange"))
        return written
