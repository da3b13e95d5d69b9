"""The one extract → archive → parse → quarantine → load loop that every ingest DAG uses.

A DAG task describes one *stream* — which pages to fetch (a hook method), how to parse a page (a pure
function of `ai_usage.sources`), which table and which date partitions it replaces — and calls `ingest()`.
The loop then, page by page, so memory stays flat however long the range:

1. archives the response verbatim with its request (`RawArchive`), before anything parses it;
2. parses it into rows (dicts, or `Columns` batches from a parser's typed fast path) and `Rejected`
   records; the next pages are fetched and archived in a background thread meanwhile;
3. streams the rows into `Warehouse.replace_partitions` — one atomic replacement of every partition of the
   window, so a failure anywhere (HTTP, parsing, loading) leaves the old partitions exactly as they were;
4. after the load commits, writes the rejected records to `ops.quarantine`, one row per day fetched to
   `ops.source_coverage` (final, or provisional inside the vendor's lateness window), and the run's
   figures to `ops.ingestion_runs`. Each of those writes replaces what a previous try of the same task
   wrote, so re-running anything changes nothing.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from ai_usage.columns import Columns
from ai_usage.exceptions import ConfigurationError
from ai_usage.hooks.pages import ApiPage
from ai_usage.prefetch import prefetched
from ai_usage.sources.common import Rejected

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 10.0


class Counters(Protocol):
    """What the pipeline reads off a hook: HTTP requests made and transient retries."""

    @property
    def api_calls(self) -> int: ...

    @property
    def retries(self) -> int: ...


# --------------------------------------------------------------------------- run window


@dataclass(frozen=True)
class Window:
    """The UTC days one run extracts: its interval plus the lookback, or a backfill range from the conf."""

    start: date
    end: date                 # inclusive
    backfill: bool = False

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "backfill": self.backfill}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Window:
        return cls(date.fromisoformat(d["start"]), date.fromisoformat(d["end"]), bool(d.get("backfill")))


MAX_BACKFILL_DAYS = 3 * 366


def _conf_day(conf: Mapping[str, Any], key: str) -> date:
    value = conf.get(key)
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigurationError(
            f'run conf "{key}": {value!r} is not a date; expected {{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}}'
        ) from None


def plan_window(
    data_interval_end: datetime | None,
    conf: Mapping[str, Any] | None,
    lookback_days: int,
    *,
    today: date | None = None,
) -> Window:
    """Which UTC days a run covers.

    A scheduled run covers the last complete UTC day before its data interval ends, plus `lookback_days`
    before it (late and revised vendor data). A run whose conf has ``start``/``end`` (inclusive ISO days)
    is a backfill of exactly that range; days after yesterday (UTC) are refused, as no vendor has them.
    """
    today = today or datetime.now(UTC).date()
    conf = conf or {}
    if "start" in conf or "end" in conf:
        if not ("start" in conf and "end" in conf):
            raise ConfigurationError('a backfill needs both "start" and "end" in the run conf')
        start, end = _conf_day(conf, "start"), _conf_day(conf, "end")
        if start > end:
            raise ConfigurationError(f"backfill start {start} is after end {end}")
        if end >= today:
            raise ConfigurationError(
                f"backfill end {end} is not a complete UTC day yet (the latest complete day is {today - timedelta(days=1)})"
            )
        if (end - start).days + 1 > MAX_BACKFILL_DAYS:
            raise ConfigurationError(
                f"backfill of {(end - start).days + 1} days exceeds {MAX_BACKFILL_DAYS}; split it into several runs"
            )
        return Window(start, end, backfill=True)
    if data_interval_end is None:
        data_interval_end = datetime.now(UTC)
    end = data_interval_end.astimezone(UTC).date() - timedelta(days=1)
    end = min(end, today - timedelta(days=1))
    return Window(end - timedelta(days=lookback_days), end)


# --------------------------------------------------------------------------- the loop


@dataclass(frozen=True)
class RunInfo:
    """Who is loading: the Airflow identifiers written next to every row and ops record."""

    run_id: str
    dag_id: str
    task_id: str
    try_number: int | None = None

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> RunInfo:
        ti = context.get("ti") or context.get("task_instance")
        dag_run = context.get("dag_run")
        return cls(
            run_id=str(getattr(dag_run, "run_id", None) or context.get("run_id")),
            dag_id=str(getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "")),
            task_id=str(getattr(ti, "task_id", "")),
            try_number=getattr(ti, "try_number", None),
        )


@dataclass
class Stream:
    """One endpoint into one table for one run."""

    source: str                                    # 'cursor' | 'anthropic' | 'sheet'
    endpoint: str                                  # logical endpoint, e.g. 'daily_usage' (archive folder)
    table: str                                     # e.g. 'raw.cursor_daily_usage'
    pages: Callable[[], Iterable[ApiPage]]         # called once, lazily: fetching starts inside the load
    parse: Callable[[ApiPage], Iterable[dict[str, Any] | Columns | Rejected]]
    dates: Sequence[date] | None                   # partitions replaced; None = the whole table
    archive_day: date                              # archive folder day for pages not about one day
    counters: Counters | None = None               # the hook, for api_calls / retries
    lateness_days: int | None = None               # days before today still provisional; None = no coverage rows
    interval: Window | None = None                 # for ops.ingestion_runs
    coverage_source: str | None = None             # ops.source_coverage.source; default: the table's name


@dataclass
class IngestResult:
    table: str
    endpoint: str
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_outside_window: int = 0
    pages: int = 0
    api_calls: int = 0
    retries: int = 0
    duration_s: float = 0.0
    rows_per_day: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while pages are parsed and staged.

    Parsing allocates millions of small acyclic objects (rows, tuples, dates) that reference counting
    frees; each allocation burst would otherwise trigger collections that walk the whole heap of an
    Airflow worker (measured: a third of the parsing time). Collection resumes as before afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def quarantine_row(rejected: Rejected, *, stream: Stream, run: RunInfo, now: datetime) -> dict[str, Any]:
    return {
        "quarantined_date": now.date(),
        "quarantined_at": now,
        "run_id": run.run_id,
        "source": stream.source,
        "target_table": stream.table,
        "record_ref": f"{stream.endpoint} {rejected.ref}".strip(),
        "reason": rejected.reason,
        "payload": json.dumps(rejected.record, default=_json_default, sort_keys=True),
    }


def ingest(stream: Stream, *, run: RunInfo, warehouse: Any, archive: Any, now: datetime | None = None) -> IngestResult:
    """Run one stream end to end (see the module docstring); return its figures. Raises on any failure."""
    started = now or datetime.now(UTC)
    t0 = time.monotonic()
    result = IngestResult(table=stream.table, endpoint=stream.endpoint)
    calls0 = (stream.counters.api_calls, stream.counters.retries) if stream.counters else (0, 0)
    contract = warehouse.contract(stream.table)
    pfield = contract.partition_field
    allowed = set(stream.dates) if stream.dates is not None else None
    quarantined: list[dict[str, Any]] = []
    per_day: dict[date, int] = {}
    lineage = {"_ingested_at": started, "_run_id": run.run_id}

    def archived(page: ApiPage) -> None:
        archive.put(
            stream.source, stream.endpoint, page.day or stream.archive_day, run.run_id, page.n,
            page.request, page.text, status=page.status, response_headers=page.headers,
        )

    def accept(batch: Columns) -> Columns:
        """A parser's column batch: rows outside the window dropped, days counted, lineage added."""
        if pfield is not None:
            days: Sequence[Any] = batch.data.get(pfield) or [None] * batch.n  # type: ignore[assignment]  # a date column
            counts = Counter(days)
            if allowed is not None and not counts.keys() <= allowed:
                keep = [i for i, day in enumerate(days) if day in allowed]
                result.rows_outside_window += batch.n - len(keep)
                batch = batch.take(keep)
                counts = Counter(batch.data.get(pfield) or [None] * batch.n)  # type: ignore[arg-type]
            for day, n in counts.items():
                per_day[day] = per_day.get(day, 0) + n
        return batch.with_constants(lineage)

    def row_pages() -> Iterator[list[dict[str, Any]] | Columns]:
        last_report = time.monotonic()
        log.info("%s → %s: archiving every response under %s", stream.endpoint, stream.table,
                 archive.uri_for(stream.source, stream.endpoint, stream.archive_day, run.run_id, 1).rsplit("/", 2)[0])
        # The next pages are fetched and archived in a background thread while this one is parsed and
        # staged; a page is archived before it is parsed, and errors surface in order.
        for page in prefetched(stream.pages(), archived):
            result.pages += 1
            out: list[dict[str, Any]] = []
            for item in stream.parse(page):
                if isinstance(item, Rejected):
                    quarantined.append(quarantine_row(item, stream=stream, run=run, now=started))
                    continue
                if isinstance(item, Columns):
                    batch = accept(item)
                    result.rows_loaded += batch.n
                    if batch.n:
                        yield batch
                    continue
                if pfield is not None:
                    day: Any = item.get(pfield)  # a date (the warehouse refuses a row without one)
                    if allowed is not None and day not in allowed:
                        # Belongs to a partition this run does not own; the run covering that day loads it.
                        result.rows_outside_window += 1
                        continue
                    per_day[day] = per_day.get(day, 0) + 1
                item.update(lineage)
                out.append(item)
            result.rows_loaded += len(out)
            if out:
                yield out
            if time.monotonic() - last_report >= PROGRESS_EVERY_S:
                last_report = time.monotonic()
                log.info(
                    "%s: %d pages, %d rows, %d quarantined, %.0f s so far (latest page: %s %s)",
                    stream.endpoint, result.pages, result.rows_loaded, len(quarantined),
                    time.monotonic() - t0, page.request.get("window") or page.day or "", f"#{page.n}",
                )

    status, error = "failed", None
    # One opening of the warehouse for the load and its bookkeeping rows (DuckDB: the file is opened only
    # once the rows are staged, and is free for other tasks again right after).
    with warehouse.session():
        try:
            with gc_paused():
                warehouse.replace_partitions(stream.table, row_pages(), stream.dates)
            status = "success"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            raise
        finally:
            result.duration_s = round(time.monotonic() - t0, 3)
            if stream.counters:
                result.api_calls = stream.counters.api_calls - calls0[0]
                result.retries = stream.counters.retries - calls0[1]
            result.rows_quarantined = len(quarantined)
            result.rows_per_day = {d.isoformat(): n for d, n in sorted(per_day.items())}
            try:
                if status == "success":
                    _record_quarantine(warehouse, stream, run, quarantined)
                    _record_coverage(warehouse, stream, run, per_day, started)
                _record_run(warehouse, stream, run, result, started, status, error)
            except Exception:
                if status == "success":
                    raise
                log.exception("could not record the failed run in ops.ingestion_runs")
    log.info(
        "%s → %s: %d rows over %d days, %d quarantined, %d outside the window, %d pages, %d API calls "
        "(%d retries) in %.1f s",
        stream.endpoint, stream.table, result.rows_loaded, len(per_day), result.rows_quarantined,
        result.rows_outside_window, result.pages, result.api_calls, result.retries, result.duration_s,
    )
    return result


def _record_quarantine(warehouse: Any, stream: Stream, run: RunInfo, rows: list[dict[str, Any]]) -> None:
    if stream.dates is None:
        # A whole-table replacement (a Sheet tab): its rejects are the current state of the source, so they
        # replace every earlier run's rejects for the table; re-running the same input changes nothing.
        key: dict[str, list[Any]] = {"source": [stream.source], "target_table": [stream.table]}
    else:
        # Partitioned loads: replacing this run's rejects for this table makes a task retry idempotent.
        key = {"run_id": [run.run_id], "source": [stream.source], "target_table": [stream.table]}
    warehouse.replace_where("ops.quarantine", rows, key)
    if rows:
        log.warning("%d record(s) of %s quarantined in ops.quarantine; first: %s — %s",
                    len(rows), stream.table, rows[0]["record_ref"], rows[0]["reason"])


def coverage_status(day: date, today: date, lateness_days: int) -> str:
    """`provisional` while the vendor may still revise the day, `final` afterwards."""
    return "provisional" if (today - day).days <= lateness_days else "final"


def _record_coverage(
    warehouse: Any, stream: Stream, run: RunInfo, per_day: Mapping[date, int], now: datetime
) -> None:
    if stream.lateness_days is None or not stream.dates:
        return
    source = stream.coverage_source or stream.table.split(".", 1)[1]
    today = now.date()
    rows = [
        {
            "coverage_date": day,
            "source": source,
            "status": coverage_status(day, today, stream.lateness_days),
            "row_count": per_day.get(day, 0),
            "checked_at": now,
            "run_id": run.run_id,
        }
        for day in stream.dates
    ]
    warehouse.replace_where("ops.source_coverage", rows, {"source": [source], "coverage_date": list(stream.dates)})


def _record_run(
    warehouse: Any, stream: Stream, run: RunInfo, result: IngestResult, started: datetime,
    status: str, error: str | None,
) -> None:
    row = {
        "run_date": started.date(),
        "run_id": run.run_id,
        "dag_id": run.dag_id,
        "task_id": run.task_id,
        "try_number": run.try_number,
        "source": stream.source,
        "endpoint": stream.endpoint,
        "target_table": stream.table,
        "interval_start": stream.interval.start if stream.interval else (min(stream.dates) if stream.dates else None),
        "interval_end": stream.interval.end if stream.interval else (max(stream.dates) if stream.dates else None),
        "started_at": started,
        "finished_at": datetime.now(UTC),
        "status": status,
        "rows_loaded": result.rows_loaded if status == "success" else 0,
        "rows_quarantined": result.rows_quarantined,
        "api_calls": result.api_calls,
        "retries": result.retries,
        "duration_s": result.duration_s,
        "error": error,
    }
    warehouse.replace_where(
        "ops.ingestion_runs", [row],
        {"run_id": [run.run_id], "dag_id": [run.dag_id], "task_id": [run.task_id], "endpoint": [stream.endpoint]},
    )


# --------------------------------------------------------------------------- inside an Airflow task

OPS_TABLES = ("ops.ingestion_runs", "ops.source_coverage", "ops.quarantine")


def window_for_current_run(lookback_days: int) -> Window:
    """The window of the running task's DAG run: its conf's backfill range, or its interval plus lookback."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    dag_run = context.get("dag_run")
    conf = dict(getattr(dag_run, "conf", None) or {})
    interval_end = context.get("data_interval_end") or getattr(dag_run, "run_after", None)
    window = plan_window(interval_end, conf, lookback_days)
    log.info("window: %s → %s (%d days%s)", window.start, window.end, len(window.days),
             ", backfill from the run conf" if window.backfill else f", lookback {lookback_days}")
    return window


def current_window(source: str) -> Window:
    """The window a task of the running DAG run loads for `source` (its lookback setting, e.g. "cursor").

    Each task computes it from the run itself (its conf or its interval), so the tasks of one run agree
    without a planning task upstream: in a deployment every task is a process of its own, and one more on
    the critical path costs seconds per run.
    """
    from ai_usage import settings

    return window_for_current_run(settings.lookback_days(source))


def snapshot_day(now: datetime | None = None) -> date:
    """The `snapshot_date` of a listing read now: the UTC day it was read (history is kept per day)."""
    return (now or datetime.now(UTC)).date()


def run_stream(stream: Stream) -> dict[str, Any]:
    """Run one stream from inside an Airflow task: warehouse, archive and run identity from the context."""
    from airflow.sdk import get_current_context

    from ai_usage.archive import RawArchive
    from ai_usage.warehouse import get_warehouse

    context = get_current_context()
    run = RunInfo.from_context(context)
    with get_warehouse() as warehouse:
        # Created or migrated with the first write: the extraction neither waits for nor holds the warehouse.
        warehouse.ensure_tables([stream.table, *OPS_TABLES], defer=True)
        result = ingest(stream, run=run, warehouse=warehouse, archive=RawArchive())
    _announce_touched(context, stream, result)
    return result.to_dict()


def touched_extra(stream: Stream, result: IngestResult) -> dict[str, Any]:
    """The `extra` of the table's asset event: which partitions this run replaced, for refresh_marts.

    ``{"table", "start", "end", "rows"}`` with ISO days (inclusive), or start/end None when the whole
    table was replaced (reference tables).
    """
    days = sorted(stream.dates) if stream.dates is not None else []
    return {
        "table": stream.table,
        "start": days[0].isoformat() if days else None,
        "end": days[-1].isoformat() if days else None,
        "rows": result.rows_loaded,
    }


def _announce_touched(context: Mapping[str, Any], stream: Stream, result: IngestResult) -> None:
    """Attach `touched_extra` to the outlet asset of the stream's table, when the task declares it."""
    task = context.get("task")
    events = context.get("outlet_events")
    if task is None or events is None:
        return
    for asset in getattr(task, "outlets", None) or ():
        if getattr(asset, "name", None) == stream.table:
            events[asset].extra = touched_extra(stream, result)
