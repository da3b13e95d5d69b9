"""The raw archive: every vendor response stored verbatim, with its request, before anything parses it.

Layout (DESIGN.md §3): ``<root>/<source>/<endpoint>/<YYYY-MM-DD>/<run_id>-<n>.json.gz`` under
``AI_USAGE_ARCHIVE`` (``file://`` or ``gs://``). Each object is a gzip JSON document::

    {"archived_at", "run_id", "source", "endpoint", "day", "n",
     "request":  {"method", "url", "params", "json", "headers", ...}   # redacted
     "response": {"status", "headers", "body"}}                        # body: the vendor's exact text

The response body is kept as the text the vendor sent (never re-serialised, so ``1025.0`` stays
``1025.0``); a body that is not UTF-8 is kept as base64 with ``"body_encoding": "base64"``. Nothing
secret is archived: credentials are redacted from the request by name and by shape (ai_usage.redaction).
Writes are idempotent (the same name is replaced) and atomic on ``file://`` (temp file + rename).
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import msgspec
from isal import igzip

from ai_usage import settings
from ai_usage.redaction import REDACTED, is_secret_name, redact_mapping, redact_url, redact_value

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

SUFFIX = ".json.gz"
_UNSAFE = re.compile(r"[^A-Za-z0-9._\-]")
_MAX_RUN_ID = 150
# Response headers that are session state rather than facts about the response.
_DROP_RESPONSE_HEADERS = frozenset({"set-cookie", "set-cookie2"})


def utc_day(day: date | datetime | str) -> date:
    """The UTC calendar day of `day`: aware datetimes are converted to UTC, naive ones are taken as UTC."""
    if isinstance(day, datetime):
        if day.tzinfo is not None and day.utcoffset() is not None:
            return day.astimezone(UTC).date()
        return day.date()
    if isinstance(day, date):
        return day
    if isinstance(day, str):
        return utc_day(datetime.fromisoformat(day)) if len(day) > 10 else date.fromisoformat(day)
    raise TypeError(f"day must be a date, datetime or YYYY-MM-DD string, not {type(day).__name__}")


def safe_segment(value: str, what: str = "name") -> str:
    """A path segment safe on every filesystem and in GCS object names (`[A-Za-z0-9._-]`, no leading dot)."""
    text = _UNSAFE.sub("_", str(value)).lstrip(".")
    if not text:
        raise ValueError(f"{what} {value!r} is empty once made path-safe")
    return text


def safe_run_id(run_id: str) -> str:
    """Airflow run ids carry ':' and '+' (``scheduled__2026-01-02T00:00:00+00:00``): map them to '_'.

    Very long ids are cut and suffixed with a hash so two different ids never share a name.
    """
    text = safe_segment(run_id, "run_id")
    if len(text) > _MAX_RUN_ID:
        digest = hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:12]
        text = f"{text[:_MAX_RUN_ID - 13]}_{digest}"
    return text


def object_key(source: str, endpoint: str, day: date | datetime | str, run_id: str, n: int) -> str:
    """``<source>/<endpoint>/<YYYY-MM-DD>/<run_id>-<n>.json.gz``, relative to the archive root."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative page number, not {n!r}")
    return "/".join((
        safe_segment(source, "source"),
        safe_segment(endpoint, "endpoint"),
        utc_day(day).isoformat(),
        f"{safe_run_id(run_id)}-{n}{SUFFIX}",
    ))


def _sort_key(name: str) -> tuple[str, int, str]:
    """Order archive names by run, then page number as a number (page 10 after page 9)."""
    base = name.rsplit("/", 1)[-1].removesuffix(SUFFIX)
    stem, _, page = base.rpartition("-")
    return (stem, int(page), name) if page.isdigit() else (base, -1, name)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def redact_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request as archived: URL, params, headers and bodies with every credential replaced by ***."""
    out: dict[str, Any] = {}
    for key, value in request.items():
        if key in ("url", "path") and isinstance(value, str):
            out[key] = redact_url(value)
        elif key in ("headers", "params") and isinstance(value, Mapping):
            out[key] = redact_mapping(value)
        elif key == "params" and isinstance(value, list | tuple):
            # requests also takes params as pairs, e.g. repeated `group_by[]` values.
            out[key] = [[k, REDACTED if is_secret_name(str(k)) else redact_value(v)] for k, v in value]
        elif is_secret_name(str(key)):
            out[key] = REDACTED
        else:
            out[key] = redact_value(value)
    return out


def _response_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    kept = {k: v for k, v in (headers or {}).items() if str(k).lower() not in _DROP_RESPONSE_HEADERS}
    return redact_mapping(kept)


def _body_fields(body: bytes | str) -> dict[str, Any]:
    if isinstance(body, str):
        return {"body": body}
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode("ascii"), "body_encoding": "base64"}


def response_body_bytes(document: Mapping[str, Any]) -> bytes:
    """The exact bytes the vendor returned, from an archived document (for replay)."""
    response = document["response"]
    if response.get("body_encoding") == "base64":
        return base64.b64decode(response["body"])
    return str(response["body"]).encode("utf-8")


def build_document(
    source: str, endpoint: str, day: date | datetime | str, run_id: str, n: int,
    request: Mapping[str, Any], response_body: bytes | str, *, status: int,
    response_headers: Mapping[str, Any] | None = None, archived_at: datetime | None = None,
) -> dict[str, Any]:
    """The archived document (see module docstring); `archived_at` defaults to now, in UTC."""
    stamp = archived_at or datetime.now(UTC)
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    return {
        "archived_at": stamp.isoformat().replace("+00:00", "Z"),
        "run_id": run_id,
        "source": source,
        "endpoint": endpoint,
        "day": utc_day(day).isoformat(),
        "n": n,
        "request": redact_request(request),
        "response": {"status": int(status), "headers": _response_headers(response_headers),
                     **_body_fields(response_body)},
    }


# ISA-L's deflate (`isal.igzip`, standard gzip output: gzip, zcat and Python's gzip read it). Measured on
# vendor pages: level 1 ~1.1 GB/s and 1/13.6 of the JSON (a year of Cursor daily usage, 350 MB, in
# 0.3 s); zlib's level 3 ~200-280 MB/s and 1/17 (1.3-1.7 s of a task's CPU for the same year).
GZIP_LEVEL = 1
_ENCODER = msgspec.json.Encoder(enc_hook=_json_default, decimal_format="string")


def encode_document(document: Mapping[str, Any]) -> bytes:
    """gzip JSON with a fixed gzip header (mtime 0), so equal documents give equal bytes.

    msgspec encodes (and escapes) a multi-megabyte body 3x faster than the json module; the document
    holds only JSON-native values by construction (`build_document`), so both would write the same JSON.
    """
    return igzip.compress(_ENCODER.encode(document), compresslevel=GZIP_LEVEL, mtime=0)


def decode_document(data: bytes) -> dict[str, Any]:
    """An archived document (any gzip: earlier archives were written by zlib)."""
    return json.loads(igzip.decompress(data).decode("utf-8"))


class _FileStore:
    """``file://`` backend: atomic writes (temp file in the same folder + os.replace)."""

    def __init__(self, root: Path):
        self.root = root

    def uri(self, key: str) -> str:
        return (self.root / key).as_uri()

    def write(self, key: str, data: bytes) -> None:
        final = self.root / key
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, uri: str) -> bytes:
        parts = urlsplit(uri)
        path = Path(url2pathname(parts.path)) if parts.scheme == "file" else Path(uri)
        return path.read_bytes()

    def list(self, folder: str) -> builtins.list[str]:
        base = self.root / folder
        if not base.is_dir():
            return []
        return [f"{folder}/{p.name}" for p in base.iterdir()
                if p.is_file() and p.name.endswith(SUFFIX) and not p.name.startswith(".")]


class _GcsStore:
    """``gs://`` backend through the Google provider's GCSHook (connection `google_cloud_default`)."""

    def __init__(self, bucket: str, prefix: str, gcp_conn_id: str):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.gcp_conn_id = gcp_conn_id
        self._hook: Any = None

    @property
    def hook(self) -> Any:
        if self._hook is None:
            # Imported here: the Google provider is heavy and only the gs:// backend needs it.
            from airflow.providers.google.cloud.hooks.gcs import GCSHook

            self._hook = GCSHook(gcp_conn_id=self.gcp_conn_id)
        return self._hook

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket}/{self._name(key)}"

    def write(self, key: str, data: bytes) -> None:
        """One-request upload: the object is replaced whole, readers see the old or the new one.

        The hook supplies the authenticated client; the upload goes through the client itself because
        GCSHook.upload (provider 22.8) repeats a *successful* upload `num_max_attempts` times, and the
        client's own retry is only on when asked for. Re-sending the same bytes is idempotent, so retry.
        """
        from google.cloud.storage.retry import DEFAULT_RETRY

        blob = self.hook.get_conn().bucket(self.bucket).blob(self._name(key))
        blob.upload_from_string(data, content_type="application/gzip", timeout=120, retry=DEFAULT_RETRY)

    def read(self, uri: str) -> bytes:
        parts = urlsplit(uri)
        if parts.scheme != "gs" or not parts.netloc:
            raise ValueError(f"not a gs:// URI: {uri!r}")
        # One hook attempt: the client already retries transient download errors; a 404 should not wait.
        return self.hook.download(parts.netloc, unquote(parts.path.lstrip("/")), num_max_attempts=1)

    def list(self, folder: str) -> builtins.list[str]:
        prefix = self._name(folder) + "/"
        names = self.hook.list(self.bucket, prefix=prefix) or []
        strip = len(self.prefix) + 1 if self.prefix else 0
        return [n[strip:] for n in names
                if n.endswith(SUFFIX) and "/" not in n[len(prefix):] and not n[len(prefix):].startswith(".")]


class RawArchive:
    """Write, read and list archived vendor responses on the configured backend (``AI_USAGE_ARCHIVE``)."""

    def __init__(self, location: settings.Location | None = None, *,
                 gcp_conn_id: str = settings.GOOGLE_CONN_ID):
        self.location = location if location is not None else settings.archive()
        if isinstance(self.location, settings.GcsLocation):
            self._store: _FileStore | _GcsStore = _GcsStore(self.location.bucket, self.location.prefix,
                                                            gcp_conn_id)
        else:
            self._store = _FileStore(self.location.path)

    def uri_for(self, source: str, endpoint: str, day: date | datetime | str, run_id: str, n: int) -> str:
        return self._store.uri(object_key(source, endpoint, day, run_id, n))

    def put(
        self, source: str, endpoint: str, day: date | datetime | str, run_id: str, n: int,
        request: Mapping[str, Any], response_body: bytes | str, *, status: int,
        response_headers: Mapping[str, Any] | None = None, archived_at: datetime | None = None,
    ) -> str:
        """Archive one response (page `n` of a run) for UTC `day`; return the URI written.

        `request`: ``method``, ``url`` (or ``path``), ``params``, ``json``, ``headers``… as sent.
        """
        key = object_key(source, endpoint, day, run_id, n)
        document = build_document(source, endpoint, day, run_id, n, request, response_body, status=status,
                                  response_headers=response_headers, archived_at=archived_at)
        self._store.write(key, encode_document(document))
        uri = self._store.uri(key)
        # DEBUG: a year of the Claude Code report is 365 pages; the pipeline logs where pages go and its progress.
        log.debug("Archived %s %s page %s (HTTP %s) to %s", source, endpoint, n, status, uri)
        return uri

    def put_response(self, source: str, endpoint: str, day: date | datetime | str, run_id: str, n: int,
                     response: requests.Response) -> str:
        """Archive a `requests` response together with the request that produced it."""
        sent = response.request
        request: dict[str, Any] = {"method": sent.method, "url": sent.url, "headers": dict(sent.headers)}
        body = sent.body
        if body:
            text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else str(body)
            try:
                request["json"] = json.loads(text)
            except ValueError:
                request["data"] = text
        return self.put(source, endpoint, day, run_id, n, request, response.content,
                        status=response.status_code, response_headers=dict(response.headers))

    def read(self, uri: str) -> dict[str, Any]:
        """The archived document at `uri` (as returned by `put` or `list`)."""
        return decode_document(self._store.read(uri))

    def list(self, source: str, endpoint: str, day: date | datetime | str) -> builtins.list[str]:
        """URIs archived for one source, endpoint and UTC day, ordered by run id then page number."""
        folder = "/".join((safe_segment(source, "source"), safe_segment(endpoint, "endpoint"),
                           utc_day(day).isoformat()))
        return [self._store.uri(key) for key in sorted(self._store.list(folder), key=_sort_key)]
