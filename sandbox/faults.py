"""Fault injection: rules that make a simulator misbehave the way real vendor APIs do.

A `FaultRule` matches requests by method and path glob (and optionally query values); the first rule
that applies to a request wins. It can answer with an error status instead of the handler (429 with or
without ``Retry-After``, 5xx), delay the answer (client timeouts), corrupt the handler's JSON
(`malform`: ``truncate`` = invalid JSON, ``incomplete`` = connection cut mid-body, ``wrong_type`` /
``missing_field`` = one record broken, see `Response.records`, ``lone_surrogate`` = complete JSON with a
``\\ud800`` escape that has no pair), and add unknown keys to every JSON
object (`extra_fields`, proving parsers ignore them). `times` limits a rule to the next N matching
requests (None = until cleared); `after` lets the first N matching requests through untouched.
"""

from __future__ import annotations

import copy
import fnmatch
import itertools
import threading
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from sandbox.app import Response, reason

MALFORM_MODES = ("truncate", "incomplete", "wrong_type", "missing_field", "lone_surrogate")
_RULE_KEYS = {
    "id",
    "method",
    "path",
    "query",
    "status",
    "retry_after",
    "message",
    "body",
    "headers",
    "times",
    "after",
    "delay_s",
    "malform",
    "field",
    "record",
    "extra_fields",
}
_ids = itertools.count(1)


@dataclass
class FaultRule:
    path: str = "*"
    method: str = "*"
    query: dict[str, str] | None = None
    status: int | None = None
    retry_after: int | float | str | None = None
    message: str | None = None
    body: Any = None
    headers: dict[str, str] | None = None
    times: int | None = None
    after: int = 0
    delay_s: float = 0.0
    malform: str | None = None
    field: str | None = None
    record: int = 0
    extra_fields: dict[str, Any] | None = None
    id: str = dc_field(default_factory=lambda: f"fault-{next(_ids)}")
    seen: int = 0
    applied: int = 0

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        if self.malform is not None and self.malform not in MALFORM_MODES:
            raise ValueError(f"malform must be one of {MALFORM_MODES}, got {self.malform!r}")
        if self.status is not None and not 100 <= int(self.status) <= 599:
            raise ValueError(f"status must be an HTTP status, got {self.status!r}")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 or None")
        if self.delay_s < 0 or self.after < 0:
            raise ValueError("delay_s and after must be >= 0")
        if self.status is None and not (self.delay_s or self.malform or self.extra_fields):
            raise ValueError("a fault rule needs at least one of status, delay_s, malform, extra_fields")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        unknown = set(data) - _RULE_KEYS
        if unknown:
            raise ValueError(f"unknown fault rule keys: {sorted(unknown)}")
        return cls(**data)

    @property
    def remaining(self) -> int | None:
        return None if self.times is None else max(0, self.times - self.applied)

    @property
    def active(self) -> bool:
        return self.times is None or self.applied < self.times

    def matches(self, method: str, path: str, query: dict[str, list[str]]) -> bool:
        if self.method not in ("*", method.upper()):
            return False
        if not fnmatch.fnmatchcase(path, self.path):
            return False
        return all(value in query.get(name, []) for name, value in (self.query or {}).items())

    def describe(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(f"status={self.status}")
            if self.retry_after is not None:
                parts.append(f"retry_after={self.retry_after}")
        if self.delay_s:
            parts.append(f"delay_s={self.delay_s}")
        if self.malform:
            parts.append(f"malform={self.malform}")
        if self.extra_fields:
            parts.append("extra_fields")
        return f"{self.id}({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "retry_after": self.retry_after,
            "message": self.message,
            "body": self.body,
            "headers": self.headers,
            "times": self.times,
            "after": self.after,
            "delay_s": self.delay_s,
            "malform": self.malform,
            "field": self.field,
            "record": self.record,
            "extra_fields": self.extra_fields,
            "seen": self.seen,
            "applied": self.applied,
            "remaining": self.remaining,
            "active": self.active,
        }

    def error_response(self, error_body: Any) -> Response:
        """The injected error: the rule's body, else the app's error shape (passed in); Retry-After if set."""
        headers = dict(self.headers or {})
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        assert self.status is not None
        body = self.body if self.body is not None else error_body
        return Response(status=self.status, json=body, headers=headers)

    def default_message(self) -> str:
        if self.message:
            return self.message
        if self.status == 429:
            return "Rate limit exceeded. Please try again later."
        return f"Injected fault: {reason(self.status or 500)}"


class FaultSet:
    """Thread-safe ordered collection of fault rules of one server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule | None = None, **options: Any) -> FaultRule:
        """Arm a rule: pass a `FaultRule` or its fields (`add(path="/v1/*", status=429, times=2)`)."""
        rule = rule if rule is not None else FaultRule(**options)
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> int:
        with self._lock:
            n = len(self._rules)
            self._rules = []
            return n

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def match(self, method: str, path: str, query: dict[str, list[str]]) -> FaultRule | None:
        """The first rule that applies to this request, its counters updated atomically."""
        with self._lock:
            for rule in self._rules:
                if not rule.active or not rule.matches(method, path, query):
                    continue
                rule.seen += 1
                if rule.seen <= rule.after:
                    continue
                rule.applied += 1
                return rule
        return None


# --------------------------------------------------------------------------- response corruption


def add_extra_fields(payload: Any, extra: dict[str, Any]) -> Any:
    """A copy of `payload` with `extra` keys added to every JSON object (existing keys left alone)."""
    if isinstance(payload, dict):
        out = {k: add_extra_fields(v, extra) for k, v in payload.items()}
        for k, v in extra.items():
            out.setdefault(k, copy.deepcopy(v))
        return out
    if isinstance(payload, list):
        return [add_extra_fields(v, extra) for v in payload]
    return payload


def find_records(payload: Any, path: str | None) -> list[dict[str, Any]]:
    """Objects at a dotted path; ``*`` walks every element of a list (``data.*.results``)."""
    nodes: list[Any] = [payload]
    for part in path.split(".") if path else []:
        nxt: list[Any] = []
        for node in nodes:
            if part == "*" and isinstance(node, list):
                nxt.extend(node)
            elif isinstance(node, dict) and part in node:
                nxt.append(node[part])
        nodes = nxt
    records: list[dict[str, Any]] = []
    for node in nodes:
        if isinstance(node, list):
            records.extend(x for x in node if isinstance(x, dict))
        elif isinstance(node, dict):
            records.append(node)
    return records


def wrong_type(value: Any) -> Any:
    """A value of a different JSON type than `value`."""
    if isinstance(value, bool):
        return "not-a-boolean"
    if isinstance(value, int | float):
        return "not-a-number"
    if isinstance(value, str):
        return 12345
    if isinstance(value, list):
        return "not-a-list"
    if isinstance(value, dict):
        return "not-an-object"
    return {"unexpected": "object"}


def corrupt_record(payload: Any, response: Response, rule: FaultRule) -> str | None:
    """Break one record of `payload` in place; returns a description, or None when nothing to break."""
    records = find_records(payload, response.records)
    if not records:
        return None
    index = min(rule.record, len(records) - 1)
    record = records[index]
    field_path = rule.field or (response.required[0] if response.required else next(iter(record), None))
    if field_path is None:
        return None
    *parents, leaf = field_path.split(".")
    target: Any = record
    for p in parents:
        target = target.get(p) if isinstance(target, dict) else None
    if not isinstance(target, dict):
        return None
    if rule.malform == "missing_field":
        target.pop(leaf, None)
        return f"record {index}: removed {field_path}"
    target[leaf] = wrong_type(target.get(leaf))
    return f"record {index}: {field_path} -> {type(target[leaf]).__name__}"


@dataclass
class Outcome:
    """What goes on the wire after faults: body bytes, and where to cut the connection, if anywhere."""

    response: Response
    body: bytes
    cut_at: int | None = None
    detail: str | None = None


def apply_response_faults(response: Response, rule: FaultRule | None) -> Outcome:
    """Apply a rule's extra_fields / malform to the handler's response.

    A non-JSON body (CSV, say) can only be cut: record-level modes truncate it, extra_fields do nothing.
    """
    if rule is None or (rule.extra_fields is None and rule.malform is None):
        return Outcome(response, response.render())
    if not response.is_json:
        raw = response.render()
        if rule.malform is None:
            return Outcome(response, raw)
        if rule.malform == "incomplete":
            return Outcome(response, raw, max(1, len(raw) // 2), "connection cut mid-body")
        return Outcome(response, raw[: max(1, len(raw) // 2)], None, "body truncated")
    payload = copy.deepcopy(response.json)
    detail = None
    if rule.extra_fields:
        payload = add_extra_fields(payload, rule.extra_fields)
        detail = f"extra_fields {sorted(rule.extra_fields)}"
    mode = rule.malform
    if mode in ("wrong_type", "missing_field"):
        detail = corrupt_record(payload, response, rule)
        if detail is None:
            mode, detail = "truncate", "no record to corrupt: body truncated"
    corrupted = Response(
        response.status,
        json=payload,
        headers=response.headers,
        content_type=response.content_type,
        records=response.records,
        required=response.required,
    )
    if mode == "lone_surrogate":
        marker = "lone-surrogate-marker"
        if isinstance(corrupted.json, dict):
            corrupted.json["note"] = marker
        elif isinstance(corrupted.json, list):
            corrupted.json.append(marker)
        body = corrupted.render().replace(marker.encode(), b"\\ud800 has no pair", 1)
        return Outcome(corrupted, body, None, "a lone UTF-16 surrogate escape")
    body = corrupted.render()
    if mode == "truncate":
        return Outcome(corrupted, body[: max(1, len(body) // 2)], None, detail or "body truncated")
    if mode == "incomplete":
        return Outcome(corrupted, body, max(1, len(body) // 2), "connection cut mid-body")
    return Outcome(corrupted, body, None, detail)
