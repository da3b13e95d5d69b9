"""The shared base of the vendor hooks: session, retries, error messages and one pagination primitive.

`VendorHttpHook` is an `HttpHook` (model: the dbt Cloud hook) whose subclasses only add what is vendor
specific: the auth class, extra headers, the connection form and the endpoint methods. Every request goes
through `request()`, which retries transient failures only (connection errors, timeouts, cut bodies,
429 honouring ``Retry-After``, 5xx including Anthropic's 529) with tenacity, and fails at once with a
`VendorAPIError` on any other 4xx. Messages name the connection, the endpoint, the status and the vendor's
own error text; they never contain the key. A body is syntax-checked whole but only its top level is
decoded here (paging); parsers decode the records once, with fractional cents as exact Decimals
(`ai_usage.jsonbody`), and `ApiPage.text` keeps the body exactly as received for the raw archive.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Generator, Mapping
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import msgspec
import requests
import tenacity
import urllib3
from airflow.exceptions import AirflowNotFoundException
from airflow.providers.http.hooks.http import HttpHook
from requests.auth import AuthBase

from ai_usage import __version__
from ai_usage.exceptions import ConfigurationError, VendorAPIError
from ai_usage.hooks.pages import ApiPage
from ai_usage.jsonbody import InvalidTextError, JsonBodyError, decode_json, scan_object, top_level
from ai_usage.redaction import REDACTED, redact_text

log = logging.getLogger(__name__)

USER_AGENT = f"ai-usage/{__version__}"
_EPOCH = date(1970, 1, 1)
_DAY_MS = 86_400_000
# Response headers that are session state, not facts about the response (never kept on an ApiPage).
_DROP_HEADERS = frozenset({"set-cookie", "set-cookie2", "cookie"})
# Transport failures worth another try: nothing (or only part of an answer) came back.
_TRANSIENT_EXCEPTIONS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.HTTPError,  # reading the body: cut (IncompleteRead), read timeout, bad gzip
    OSError,
)

NextArgs = Callable[[Any, Mapping[str, Any]], "dict[str, Any] | None"]


class TransientError(Exception):
    """An attempt failed in a way another attempt may fix; `retry_after` is the vendor's hint in seconds."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent or bad."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP date is always GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def as_day(value: date) -> date:
    """A plain date: an aware datetime is converted to its UTC day, a naive one taken as UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return value.astimezone(UTC).date()
        return value.date()
    return value


def utc_midnight_ms(day: date) -> int:
    """Epoch milliseconds of 00:00:00.000 UTC on `day`, computed without the machine's time zone."""
    return (as_day(day) - _EPOCH).days * _DAY_MS


def day_windows(start: date, end: date, max_days: int) -> list[tuple[date, date]]:
    """Split the inclusive day range [start, end] into contiguous inclusive windows of at most `max_days`."""
    start, end = as_day(start), as_day(end)
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if max_days < 1:
        raise ValueError("max_days must be >= 1")
    windows = []
    first = start
    while first <= end:
        last = min(end, first + timedelta(days=max_days - 1))
        windows.append((first, last))
        first = last + timedelta(days=1)
    return windows


def vendor_message(payload: Any, text: str) -> str:
    """The vendor's own error text from a JSON error body (Anthropic or Cursor shape), else the body."""
    parts: list[str] = []
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            parts += [str(error[k]) for k in ("type", "message") if error.get(k)]
        elif error:
            parts.append(str(error))
        if payload.get("message"):
            parts.append(str(payload["message"]))
    message = ": ".join(parts) if parts else " ".join(text.split())[:300]
    if isinstance(payload, dict) and payload.get("request_id"):
        message += f" (request_id {payload['request_id']})"
    return message or "(empty body)"


def _read_body(response: requests.Response) -> bytes:
    """The whole body of a streamed response in one read (3x less CPU than `Response.content`'s 10 KB
    chunks on multi-megabyte pages); the connection goes back to the session's pool for the next request."""
    content = response.raw.read(decode_content=True)
    # As `Response.content` would have left it, so `.content`, `.text` and `.json()` still work for callers.
    response._content = content
    response._content_consumed = True
    response.close()
    return content


class VendorHttpHook(HttpHook):
    """Base of the vendor admin-API hooks; subclasses set the class attributes and `_auth`.

    Tuning (class attributes, or constructor arguments of the same name): `max_attempts` per request,
    `backoff_initial` seconds of the first exponential wait (doubled per retry, plus jitter),
    `max_wait` caps every wait including ``Retry-After``, `retry_wait_scale` multiplies every wait (tests
    set it small so the real retry path runs fast), `timeout` = (connect, read) seconds, `max_pages` per
    cursor sequence. Counters `api_calls` (HTTP requests sent, retries included) and `retries` feed
    ``ops.ingestion_runs``.
    """

    conn_name_attr = "http_conn_id"
    default_conn_name = ""
    conn_type = ""
    hook_name = ""
    default_host = ""
    vendor = "vendor"
    key_label = "API key"
    test_path = "/"
    test_params: ClassVar[dict[str, Any]] = {}

    max_attempts: int = 6
    # 2 s doubling: five waits of ~2+4+8+16+32 s outlast a per-minute rate-limit window (Cursor: 20/min).
    backoff_initial: float = 2.0
    max_wait: float = 300.0
    retry_wait_scale: float = 1.0
    timeout: tuple[float, float] = (10.0, 120.0)
    max_pages: int = 1000

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        max_attempts: int | None = None,
        backoff_initial: float | None = None,
        max_wait: float | None = None,
        retry_wait_scale: float | None = None,
        timeout: tuple[float, float] | None = None,
        max_pages: int | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        # Cheap on purpose: no Connection lookup and no network until the first request.
        super().__init__(method="GET", http_conn_id=conn_id or self.default_conn_name)
        self.conn_id = self.http_conn_id
        for name, value in (
            ("max_attempts", max_attempts),
            ("backoff_initial", backoff_initial),
            ("max_wait", max_wait),
            ("retry_wait_scale", retry_wait_scale),
            ("timeout", timeout),
            ("max_pages", max_pages),
        ):
            if value is not None:
                setattr(self, name, value)
        if self.max_attempts < 1 or self.max_pages < 1:
            raise ValueError("max_attempts and max_pages must be >= 1")
        self._sleep = sleep or time.sleep
        self._session: requests.Session | None = None
        self._key: str = ""
        self.api_calls = 0
        self.retries = 0

    # ------------------------------------------------------------------ connection and session

    def _auth(self, key: str) -> AuthBase:
        raise NotImplementedError

    def _vendor_headers(self, extra: Mapping[str, Any]) -> dict[str, str]:
        """Headers the vendor wants on every request, from the connection's extra."""
        return {}

    def _config_hint(self) -> str:
        example = json.dumps({"conn_type": self.conn_type, "host": self.default_host, "password": "<key>"})
        return (
            f"Create it in the Airflow UI (Admin -> Connections, type {self.hook_name!r}, "
            f"{self.key_label} in the password field) or set AIRFLOW_CONN_{self.conn_id.upper()}='{example}'."
        )

    def _set_base_url(self, connection: Any) -> None:
        """Base URL from the connection host (scheme and port honoured), else the vendor's default host."""
        host = (connection.host or self.default_host).strip().rstrip("/")
        if "://" in host:
            base = host
        else:
            base = f"{connection.schema or 'https'}://{host}"
        if connection.port:
            base = f"{base}:{connection.port}"
        self.base_url = base
        self._base_url_initialized = True

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """The hook's one `requests.Session` (keep-alive), built on first use from the connection."""
        if self._session is None:
            try:
                connection = self.get_connection(self.conn_id)
            except AirflowNotFoundException:
                raise ConfigurationError(
                    f"Airflow connection {self.conn_id!r} is not defined. {self._config_hint()}"
                ) from None
            key = (connection.password or "").strip()
            if not key:
                raise ConfigurationError(
                    f"Airflow connection {self.conn_id!r} has no {self.key_label} (password field is empty). "
                    f"{self._config_hint()}"
                )
            self._set_base_url(connection)
            self._key = key
            session = requests.Session()
            session.auth = self._auth(key)
            session.headers["User-Agent"] = USER_AGENT
            session.headers["Accept"] = "application/json"
            session.headers.update(self._vendor_headers(connection.extra_dejson or {}))
            self._session = self._configure_session_from_mount_adapters(session)
        if headers:
            self._session.headers.update(headers)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # ------------------------------------------------------------------ the one request method

    def _scrub(self, text: str) -> str:
        if self._key:
            text = text.replace(self._key, REDACTED)
        return redact_text(text)

    def _where(self, method: str, path: str) -> str:
        return f"{self.vendor} {method} {path} (connection {self.conn_id!r})"

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None)
        if hint is not None:
            wait = min(float(hint), self.max_wait)
        else:
            wait = self.backoff_initial * 2 ** (state.attempt_number - 1)
            wait = min(self.max_wait, wait + random.uniform(0, self.backoff_initial))
        return wait * self.retry_wait_scale

    def _before_sleep(self, method: str, path: str, attempts: int, state: tenacity.RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s attempt %s/%s failed (%s); retrying in %.2f s",
            self._where(method, path), state.attempt_number, attempts,
            getattr(exc, "reason", exc), state.upcoming_sleep,
        )

    def _attempt(
        self, session: requests.Session, method: str, path: str, params: Any, body: Any
    ) -> tuple[requests.Response, str, dict[str, msgspec.Raw] | None, Any]:
        self.api_calls += 1
        try:
            response = session.request(
                method, self.url_from_endpoint(path), params=params, json=body, timeout=self.timeout,
                stream=True,
            )
            content = _read_body(response)
        except _TRANSIENT_EXCEPTIONS as exc:
            raise TransientError(self._scrub(f"{type(exc).__name__}: {exc}")) from exc
        status = response.status_code
        if status == 429 or status >= 500 or not 200 <= status < 300:
            text = content.decode("utf-8", "replace")
            try:
                payload = decode_json(text)
            except JsonBodyError:
                payload = None
            if status == 429 or status >= 500:
                raise TransientError(
                    f"HTTP {status}: {self._scrub(vendor_message(payload, text))}",
                    status=status, retry_after=parse_retry_after(response.headers.get("Retry-After")),
                )
            where = self._where(method, path)
            message = f"{where} failed with HTTP {status}: {vendor_message(payload, text)}"
            if status in (401, 403):
                message += (
                    f". Check the {self.key_label} of Airflow connection {self.conn_id!r}: it may be wrong, "
                    "revoked or lack admin rights; rotate it in the vendor console and update the connection."
                )
            raise VendorAPIError(self._scrub(message), status=status, conn_id=self.conn_id)
        try:
            text = content.decode("utf-8")
            # A syntax check of the whole body that decodes only its top level: records are decoded once,
            # later, by the parser (see ai_usage.jsonbody).
            members = scan_object(text)
            envelope = top_level(members) if members is not None else decode_json(text)
        except InvalidTextError as exc:
            # Complete, but with text no column can store: the vendor would send the same again.
            raise VendorAPIError(self._scrub(
                f"{self._where(method, path)} answered HTTP {status} with JSON that cannot be loaded: {exc}. "
                "Report it to the vendor; the previous data of the run's partitions is unchanged."
            ), status=status, conn_id=self.conn_id) from None
        except (UnicodeDecodeError, JsonBodyError):
            # A cut or garbled body from a proxy or an overloaded server: worth another try.
            text = content.decode("utf-8", "replace")
            raise TransientError(f"HTTP {status} with a body that is not JSON: {self._scrub(text[:200])!r}",
                                 status=status) from None
        return response, text, members, envelope

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        max_attempts: int | None = None,
    ) -> tuple[requests.Response, str, Any]:
        """Send one API request with retries of transient failures: (response, body text, parsed JSON).

        Raises `VendorAPIError` on a non-retryable status or when attempts run out.
        """
        response, text, members, envelope = self._send(method, path, params, json_body, max_attempts)
        return response, text, envelope if members is None else decode_json(text)

    def _send(
        self, method: str, path: str, params: Mapping[str, Any] | None, json_body: Any, max_attempts: int | None
    ) -> tuple[requests.Response, str, dict[str, msgspec.Raw] | None, Any]:
        """`request` without decoding the records: (response, text, members, envelope).

        `members` are the top-level members of a JSON object body, undecoded (None for another JSON value);
        `envelope` is that object without its arrays, decoded (the paging fields), or the whole decoded body
        when it is not an object.
        """
        session = self.get_conn()
        attempts = max_attempts or self.max_attempts
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(TransientError),
            sleep=self._sleep,
            before_sleep=lambda state: self._before_sleep(method, path, attempts, state),
            reraise=True,
        )
        try:
            return retrying(self._attempt, session, method.upper(), path, params, json_body)
        except TransientError as exc:
            raise VendorAPIError(
                f"{self._where(method, path)} failed after {attempts} attempt(s); last error: {exc.reason}",
                status=exc.status, conn_id=self.conn_id,
            ) from exc

    # ------------------------------------------------------------------ pagination

    def _paginate(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
        next_args: NextArgs,
        day: date | None = None,
        note: Mapping[str, Any] | None = None,
        first_n: int = 1,
    ) -> Generator[ApiPage, None, int]:
        """Yield the pages of one cursor sequence; returns the next free page number.

        `next_args(envelope, current_args)` (the page's top level without its record lists) gives the arguments to merge into the next request (query
        params for GET, JSON body otherwise), or None when the sequence is complete. A sequence that
        repeats a request (a vendor cursor loop) or exceeds `max_pages` raises `VendorAPIError`.
        """
        is_get = method.upper() == "GET"
        args: dict[str, Any] = dict((params if is_get else json_body) or {})
        seen: set[str] = set()
        n = first_n
        for _ in range(self.max_pages):
            signature = json.dumps(args, sort_keys=True, default=str)
            if signature in seen:
                raise VendorAPIError(
                    f"{self._where(method, path)}: the vendor's cursor repeated a request ({signature}); "
                    "stopping to avoid an endless loop", conn_id=self.conn_id,
                )
            seen.add(signature)
            sent_params, sent_json = (dict(args), None) if is_get else (params, dict(args))
            response, text, members, envelope = self._send(method, path, sent_params, sent_json, None)
            request_record: dict[str, Any] = {
                "method": method.upper(), "path": path, "params": sent_params, "json": sent_json,
                **(note or {}),
            }
            # A body that is not an object was decoded whole already; an object's records wait for the parser.
            body: dict[str, Any] = {"payload": envelope} if members is None else {"members": members}
            yield ApiPage(
                endpoint=endpoint, n=n, request=request_record, status=response.status_code, text=text,
                day=day, **body,
                headers={k: v for k, v in response.headers.items() if k.lower() not in _DROP_HEADERS},
            )
            n += 1
            updates = next_args(envelope, args)
            if updates is None:
                return n
            args = {**args, **updates}
        raise VendorAPIError(
            f"{self._where(method, path)}: more than {self.max_pages} pages in one sequence; "
            "raise max_pages if this is real, else the vendor's cursor is looping", conn_id=self.conn_id,
        )

    # ------------------------------------------------------------------ UI

    def test_connection(self) -> tuple[bool, str]:
        """The UI's Test button: one cheap authenticated call (two attempts at most)."""
        try:
            _, _, payload = self.request(
                "GET", self.test_path, params=self.test_params or None, max_attempts=2
            )
        except Exception as exc:  # the UI shows the message; ours never contain the key
            return False, self._scrub(str(exc))
        return True, f"Connected to the {self.vendor} at {self.base_url}. {self._describe_test(payload)}"

    def _describe_test(self, payload: Any) -> str:
        return ""
