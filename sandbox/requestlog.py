"""The request log of a simulator: every request, its answer and the fault applied, secrets redacted."""

from __future__ import annotations

import fnmatch
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

REDACTED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "cookie", "x-goog-api-key"}
)


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    """Secret headers become ``[redacted]``; an Authorization scheme (Basic, Bearer) stays visible."""
    out = {}
    for name, value in headers.items():
        if name.lower() in REDACTED_HEADERS:
            scheme = value.split(" ", 1)[0] if name.lower().endswith("authorization") and " " in value else ""
            out[name] = f"{scheme} [redacted]".strip()
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class LoggedRequest:
    seq: int
    at: datetime  # real UTC time the request arrived
    sim_at: datetime  # the simulator clock's time
    app: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int
    fault: str | None  # id of the fault rule applied, if any
    fault_detail: str | None
    duration_s: float

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body.strip() else None
        except ValueError:
            return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "sim_at": self.sim_at.isoformat(),
            "app": self.app,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body.decode("utf-8", "replace"),
            "status": self.status,
            "fault": self.fault,
            "fault_detail": self.fault_detail,
            "duration_s": round(self.duration_s, 6),
        }


class RequestLog:
    """Thread-safe, append-only (until cleared) list of `LoggedRequest`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []
        self._seq = 0

    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def append(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return sorted(self._entries, key=lambda e: e.seq)

    def filter(
        self,
        path: str | None = None,
        method: str | None = None,
        status: int | None = None,
        fault: bool | None = None,
    ) -> list[LoggedRequest]:
        """Entries whose path matches the glob `path`, with `method` / `status`; `fault` True = faulted only."""
        return [
            e
            for e in self.entries()
            if (path is None or fnmatch.fnmatchcase(e.path, path))
            and (method is None or e.method == method.upper())
            and (status is None or e.status == status)
            and (fault is None or (e.fault is not None) == fault)
        ]

    def clear(self) -> int:
        with self._lock:
            n = len(self._entries)
            self._entries = []
            return n

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.entries())
