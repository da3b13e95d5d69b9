"""A loopback stub of the BigQuery REST API v2, for tests of the BigQuery backend over real HTTP.

It implements only what ``google.cloud.bigquery.Client`` calls for the backend
(https://cloud.google.com/bigquery/docs/reference/rest): datasets get/insert, tables
list/get/insert/patch/delete, jobs insert (plain, multipart upload and resumable upload as used by
``load_table_from_file``), jobs get, and jobs getQueryResults; plus an OAuth2 token endpoint
(``/token``) so a service-account key whose ``token_uri`` points here authenticates for real. It keeps datasets, tables and jobs in
memory, records every request, and answers jobs as DONE (after one ``jobs.get`` poll, as BigQuery does
for all but trivial jobs) or with the error a test asked for.

It does **not** execute SQL. A query job returns the rows a test registered for it (``add_query_result``)
or no rows. Load jobs are checked the way BigQuery checks them where that is cheap: the destination must
exist under CREATE_NEVER, every line must be a JSON object, unknown keys are rejected unless
``ignoreUnknownValues``, and ``outputRows`` counts the lines; the parsed rows are kept per table.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

JobMatcher = Callable[[dict[str, Any]], bool]


@dataclass
class Recorded:
    """One HTTP request the stub received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None                   # parsed JSON body (or the metadata part of an upload)
    upload: bytes | None = None        # the data part of a multipart / resumable upload

    @property
    def operation(self) -> str:
        """A short name: ``tables.insert``, ``jobs.insert``, ``jobs.upload``…"""
        return _operation(self.method, self.path, self.query)


@dataclass
class _QueryResult:
    match: JobMatcher
    schema: list[dict[str, Any]]
    rows: list[list[Any]]
    dml_affected: int | None = None


@dataclass
class _Upload:
    metadata: dict[str, Any]
    project: str
    data: bytearray = field(default_factory=bytearray)


def _operation(method: str, path: str, query: dict[str, str]) -> str:
    p = path.split("/bigquery/v2/", 1)[-1]
    if path.startswith("/upload/"):
        return "jobs.upload"
    if path == "/token":
        return "oauth2.token"
    rules = [
        ("GET", r"projects/[^/]+/datasets/[^/]+/tables/[^/]+", "tables.get"),
        ("PATCH", r"projects/[^/]+/datasets/[^/]+/tables/[^/]+", "tables.patch"),
        ("PUT", r"projects/[^/]+/datasets/[^/]+/tables/[^/]+", "tables.update"),
        ("DELETE", r"projects/[^/]+/datasets/[^/]+/tables/[^/]+", "tables.delete"),
        ("GET", r"projects/[^/]+/datasets/[^/]+/tables", "tables.list"),
        ("POST", r"projects/[^/]+/datasets/[^/]+/tables", "tables.insert"),
        ("GET", r"projects/[^/]+/datasets/[^/]+", "datasets.get"),
        ("POST", r"projects/[^/]+/datasets", "datasets.insert"),
        ("GET", r"projects/[^/]+/jobs/[^/]+", "jobs.get"),
        ("POST", r"projects/[^/]+/jobs", "jobs.insert"),
        ("GET", r"projects/[^/]+/queries/[^/]+", "jobs.getQueryResults"),
        ("POST", r"projects/[^/]+/queries", "jobs.query"),
    ]
    for m, pattern, name in rules:
        if m == method and re.fullmatch(pattern, p):
            return name
    return f"{method} {path}"


def _encode_cell(value: Any, field_: dict[str, Any]) -> Any:
    """A Python value as BigQuery's REST row format encodes it (strings, ``{"f": …}``, ``[{"v": …}]``)."""
    if value is None:
        return None
    if field_.get("mode") == "REPEATED":
        inner = {**field_, "mode": "NULLABLE"}
        return [{"v": _encode_cell(v, inner)} for v in value]
    if field_.get("type") in ("RECORD", "STRUCT"):
        return {"f": [{"v": _encode_cell(value.get(f["name"]), f)} for f in field_["fields"]]}
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):  # TIMESTAMP as int64 microseconds (the client asks useInt64Timestamp)
        return str(int(value.timestamp()) * 1_000_000 + value.microsecond)
    return str(value)


class BigQueryStub:
    """Start with ``with BigQueryStub() as stub:``; point a client at ``stub.url``."""

    def __init__(self, *, polls_before_done: int = 1) -> None:
        self.requests: list[Recorded] = []
        self.datasets: dict[tuple[str, str], dict[str, Any]] = {}
        self.tables: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.table_rows: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.polls_before_done = polls_before_done
        self.access_token = "stub-access-token"  # handed out by POST /token
        self.lose_rows = 0                          # a fault: load jobs drop this many of their rows
        self.page_size: int | None = None      # rows per getQueryResults page when the client sets none
        self._polls: dict[tuple[str, str], int] = {}
        self._job_errors: list[tuple[JobMatcher, dict[str, Any]]] = []
        self._http_errors: list[list[Any]] = []
        self._results: list[_QueryResult] = []
        self._uploads: dict[str, _Upload] = {}
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="bq-stub",
                                        daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> BigQueryStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- test controls -------------------------------------------------------------------------------------
    def fail_jobs(self, match: JobMatcher, *, reason: str = "invalidQuery", message: str = "stub failure") -> None:
        """Jobs whose configuration satisfies `match` finish DONE with this errorResult."""
        self._job_errors.append((match, {"reason": reason, "message": message}))

    def fail_requests(self, operation: str, status: int, *, times: int = 1, reason: str = "backendError") -> None:
        """The next `times` requests of `operation` (``tables.delete``…) answer HTTP `status`."""
        self._http_errors.append([operation, status, times, reason])

    def add_query_result(
        self, match: JobMatcher, schema: list[dict[str, Any]], rows: list[list[Any]] | None = None,
        *, dml_affected: int | None = None,
    ) -> None:
        """Query jobs whose configuration satisfies `match` return these rows (Python values)."""
        self._results.append(_QueryResult(match, schema, rows or [], dml_affected))

    def add_table(self, project: str, dataset: str, table: dict[str, Any]) -> None:
        """Seed an existing table (the REST resource, at least ``schema``)."""
        table_id = table["tableReference"]["tableId"]
        self.datasets.setdefault((project, dataset), self._dataset_resource(project, {
            "datasetReference": {"projectId": project, "datasetId": dataset}}))
        self.tables[(project, dataset, table_id)] = table

    # -- queries on the record -------------------------------------------------------------------------
    def ops(self, name: str) -> list[Recorded]:
        return [r for r in self.requests if r.operation == name]

    def job_configs(self) -> list[dict[str, Any]]:
        """The ``configuration`` of every job inserted, in order (uploads included)."""
        return [r.json["configuration"] for r in self.requests
                if r.operation in ("jobs.insert", "jobs.upload") and r.json and "configuration" in r.json]

    # -- HTTP ---------------------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                rec = Recorded(self.command, parts.path, query, {k.lower(): v for k, v in self.headers.items()}, body)
                try:
                    status, payload, headers = stub._dispatch(rec)
                except Exception as exc:  # a stub bug must surface as a clear HTTP 500, not a hang
                    status, payload, headers = 500, _error(500, f"stub error: {exc!r}", "internalError"), {}
                raw = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if payload is not None:
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler

    def _dispatch(self, rec: Recorded) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            if rec.path == "/token":
                self.requests.append(rec)
                return self._token(rec)
            if rec.path.startswith("/upload/"):
                self._parse_upload_body(rec)
            elif rec.body:
                try:
                    rec.json = json.loads(rec.body)
                except ValueError:
                    rec.json = None
            self.requests.append(rec)
            for rule in self._http_errors:
                if rule[0] == rec.operation and rule[2] > 0:
                    rule[2] -= 1
                    return rule[1], _error(rule[1], f"injected {rule[1]}", rule[3]), {}
            return self._route(rec)

    def _token(self, rec: Recorded) -> tuple[int, Any, dict[str, str]]:
        """OAuth2 token endpoint for a service-account key whose ``token_uri`` points here (JWT bearer grant)."""
        form = {k: v[-1] for k, v in parse_qs(rec.body.decode()).items()}
        rec.json = form
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not form.get("assertion"):
            return 400, {"error": "invalid_grant"}, {}
        return 200, {"access_token": self.access_token, "expires_in": 3600, "token_type": "Bearer"}, {}

    def _parse_upload_body(self, rec: Recorded) -> None:
        ctype = rec.headers.get("content-type", "")
        if rec.query.get("uploadType") == "multipart":
            m = re.search(r'boundary="?([^";]+)"?', ctype)
            if not m:
                return
            boundary = b"--" + m.group(1).encode()
            chunks = [c for c in rec.body.split(boundary) if c.strip() not in (b"", b"--")]
            parsed = []
            for chunk in chunks:
                head, _, content = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
                parsed.append(content[:-2] if content.endswith(b"\r\n") else content)
            rec.json = json.loads(parsed[0])
            rec.upload = parsed[1] if len(parsed) > 1 else b""
        elif rec.method == "POST":
            rec.json = json.loads(rec.body or b"{}")
        else:
            rec.upload = rec.body

    # -- routing -------------------------------------------------------------------------------------------
    def _route(self, rec: Recorded) -> tuple[int, Any, dict[str, str]]:
        op = rec.operation
        segs = rec.path.split("/bigquery/v2/", 1)[-1].split("/")
        project = segs[1] if len(segs) > 1 else ""
        if op == "datasets.get":
            ds = self.datasets.get((project, segs[3]))
            return (200, ds, {}) if ds else (404, _error(404, f"Not found: Dataset {project}:{segs[3]}"), {})
        if op == "datasets.insert":
            ref = rec.json["datasetReference"]
            key = (ref.get("projectId", project), ref["datasetId"])
            if key in self.datasets:
                return 409, _error(409, f"Already Exists: Dataset {key[0]}:{key[1]}", "duplicate"), {}
            self.datasets[key] = self._dataset_resource(project, rec.json)
            return 200, self.datasets[key], {}
        if op in ("tables.list", "tables.insert", "tables.get", "tables.patch", "tables.update", "tables.delete"):
            if (project, segs[3]) not in self.datasets:
                return 404, _error(404, f"Not found: Dataset {project}:{segs[3]}"), {}
            return self._tables(op, rec, project, segs[3], segs[5] if len(segs) > 5 else None)
        if op in ("jobs.insert", "jobs.upload"):
            return self._job_insert(rec, project)
        if op == "jobs.get":
            job = self.jobs.get((project, segs[3]))
            if job is None:
                return 404, _error(404, f"Not found: Job {project}:{segs[3]}"), {}
            key = (project, segs[3])
            self._polls[key] = self._polls.get(key, 0) + 1
            if self._polls[key] >= self.polls_before_done:
                job["status"] = job.pop("_final_status", job["status"])
            return 200, job, {}
        if op == "jobs.getQueryResults":
            return self._query_results(project, segs[3], rec.query)
        return 404, _error(404, f"stub: no route for {rec.method} {rec.path}"), {}

    @staticmethod
    def _dataset_resource(project: str, body: dict[str, Any]) -> dict[str, Any]:
        ref = body["datasetReference"]
        return {
            **body, "kind": "bigquery#dataset", "id": f"{project}:{ref['datasetId']}",
            "datasetReference": {"projectId": project, "datasetId": ref["datasetId"]},
            "location": body.get("location", "US"),
        }

    def _tables(self, op: str, rec: Recorded, project: str, dataset: str, table: str | None):
        if op == "tables.list":
            items = [
                {"kind": "bigquery#table", "id": f"{p}:{d}.{t}", "type": "TABLE",
                 "tableReference": res["tableReference"]}
                for (p, d, t), res in sorted(self.tables.items()) if (p, d) == (project, dataset)
            ]
            return 200, {"kind": "bigquery#tableList", "tables": items, "totalItems": len(items)}, {}
        if op == "tables.insert":
            ref = rec.json["tableReference"]
            key = (project, dataset, ref["tableId"])
            if key in self.tables:
                return 409, _error(409, f"Already Exists: Table {project}:{dataset}.{ref['tableId']}", "duplicate"), {}
            res = {**rec.json, "kind": "bigquery#table", "id": f"{project}:{dataset}.{ref['tableId']}",
                   "type": "TABLE", "etag": uuid.uuid4().hex, "creationTime": str(int(time.time() * 1000))}
            self.tables[key] = res
            return 200, res, {}
        key = (project, dataset, table or "")
        if key not in self.tables:
            return 404, _error(404, f"Not found: Table {project}:{dataset}.{table}"), {}
        if op == "tables.get":
            return 200, self.tables[key], {}
        if op in ("tables.patch", "tables.update"):
            self.tables[key] = {**self.tables[key], **rec.json, "etag": uuid.uuid4().hex}
            return 200, self.tables[key], {}
        del self.tables[key]
        self.table_rows.pop(key, None)
        return 204, None, {}

    # -- jobs ----------------------------------------------------------------------------------------------
    def _job_insert(self, rec: Recorded, project: str) -> tuple[int, Any, dict[str, str]]:
        if rec.query.get("uploadType") == "resumable":
            if rec.method == "POST":           # initiate: answer with the session URL
                upload_id = uuid.uuid4().hex
                self._uploads[upload_id] = _Upload(rec.json, project)
                location = f"{self.url}{rec.path}?uploadType=resumable&upload_id={upload_id}"
                return 200, None, {"Location": location}
            upload = self._uploads[rec.query["upload_id"]]
            upload.data.extend(rec.upload or b"")
            m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", rec.headers.get("content-range", ""))
            if m and m.group(3) == "*":        # more chunks to come
                return 308, None, {"Range": f"bytes=0-{len(upload.data) - 1}"}
            rec.json = upload.metadata
            rec.upload = bytes(upload.data)
            return self._start_job(upload.metadata, project, bytes(upload.data))
        return self._start_job(rec.json, project, rec.upload)

    def _start_job(self, body: dict[str, Any], project: str, data: bytes | None):
        ref = dict(body.get("jobReference") or {})
        ref.setdefault("projectId", project)
        ref.setdefault("jobId", uuid.uuid4().hex)
        ref.setdefault("location", "US")
        key = (ref["projectId"], ref["jobId"])
        if key in self.jobs:
            return 409, _error(409, f"Already Exists: Job {key[0]}:{key[1]}", "duplicate"), {}
        config = body["configuration"]
        now = str(int(time.time() * 1000))
        job: dict[str, Any] = {
            "kind": "bigquery#job", "id": f"{ref['projectId']}:{ref['location']}.{ref['jobId']}",
            "jobReference": ref, "configuration": config,
            "statistics": {"creationTime": now, "startTime": now, "endTime": now},
            "status": {"state": "DONE"},
        }
        error = next((e for m, e in self._job_errors if m(config)), None)
        if error is None and "load" in config:
            error = self._load(config["load"], data or b"", job)
        if error is None and "query" in config:
            result = next((r for r in self._results if r.match(config)), None)
            job["statistics"]["query"] = {"statementType": _statement_type(config["query"]["query"])}
            if result is not None and result.dml_affected is not None:
                job["statistics"]["query"]["numDmlAffectedRows"] = str(result.dml_affected)
        if error is not None:
            job["status"] = {"state": "DONE", "errorResult": error, "errors": [error]}
        if self.polls_before_done > 0:
            job["_final_status"], job["status"] = job["status"], {"state": "RUNNING"}
        self.jobs[key] = job
        public = {k: v for k, v in job.items() if not k.startswith("_")}
        return 200, public, {}

    def _load(self, load: dict[str, Any], data: bytes, job: dict[str, Any]) -> dict[str, Any] | None:
        dest = load["destinationTable"]
        key = (dest["projectId"], dest["datasetId"], dest["tableId"])
        if key not in self.tables:
            if load.get("createDisposition") == "CREATE_NEVER":
                return {"reason": "notFound", "message": f"Not found: Table {key[0]}:{key[1]}.{key[2]}"}
            if (key[0], key[1]) not in self.datasets:
                return {"reason": "notFound", "message": f"Not found: Dataset {key[0]}:{key[1]}"}
            self.tables[key] = {"tableReference": {"projectId": key[0], "datasetId": key[1], "tableId": key[2]},
                                "schema": load.get("schema", {})}
        schema = load.get("schema") or self.tables[key].get("schema") or {}
        names = {f["name"] for f in schema.get("fields", [])}
        rows = []
        for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                return {"reason": "invalid", "message": f"Error while reading data, line {n}: not JSON"}
            if not isinstance(row, dict):
                return {"reason": "invalid", "message": f"line {n}: not a JSON object"}
            unknown = set(row) - names
            if unknown and not load.get("ignoreUnknownValues"):
                return {"reason": "invalid", "message": f"line {n}: no such field: {sorted(unknown)[0]}"}
            rows.append(row)
        rows = rows[self.lose_rows:]
        if load.get("writeDisposition") == "WRITE_EMPTY" and self.table_rows.get(key):
            return {"reason": "duplicate", "message": "table is not empty"}
        if load.get("writeDisposition") == "WRITE_TRUNCATE":
            self.table_rows[key] = rows
        else:
            self.table_rows.setdefault(key, []).extend(rows)
        job["statistics"]["load"] = {"outputRows": str(len(rows)), "inputFiles": "1",
                                     "inputFileBytes": str(len(data))}
        return None

    def _query_results(self, project: str, job_id: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        job = self.jobs.get((project, job_id))
        if job is None:
            return 404, _error(404, f"Not found: Job {project}:{job_id}"), {}
        status = job.get("_final_status", job["status"])
        if "errorResult" in status:
            err = status["errorResult"]
            return 400, _error(400, err["message"], err["reason"]), {}
        base = {"kind": "bigquery#getQueryResultsResponse", "jobReference": job["jobReference"],
                "jobComplete": True}
        config = job["configuration"]
        result = next((r for r in self._results if r.match(config)), None)
        stype = job["statistics"].get("query", {}).get("statementType", "SELECT")
        if stype != "SELECT":
            affected = result.dml_affected if result and result.dml_affected is not None else 0
            return 200, {**base, "numDmlAffectedRows": str(affected)}, {}
        schema = result.schema if result else []
        rows = result.rows if result else []
        start = int(query.get("pageToken") or query.get("startIndex") or 0)
        size = int(query["maxResults"]) if "maxResults" in query else (self.page_size or len(rows))
        page = rows[start:start + size]
        out: dict[str, Any] = {**base, "schema": {"fields": schema}, "totalRows": str(len(rows))}
        if page:  # like BigQuery: no "rows" key for an empty page (maxResults=0 is the client's wait call)
            out["rows"] = [{"f": [{"v": _encode_cell(v, f)} for v, f in zip(row, schema, strict=True)]}
                           for row in page]
        if start + len(page) < len(rows) and page:
            out["pageToken"] = str(start + len(page))
        return 200, out, {}


def _statement_type(sql: str) -> str:
    """BigQuery's statementType, from the first keyword after any ``--`` comment lines."""
    code = " ".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    word = (code.split() or ["SELECT"])[0].upper().lstrip("(")
    return "SELECT" if word in ("WITH", "") else word


def _error(code: int, message: str, reason: str = "notFound") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "errors": [{"reason": reason, "message": message}],
                      "status": {404: "NOT_FOUND", 409: "ALREADY_EXISTS", 400: "INVALID_ARGUMENT"}.get(code, "")}}
