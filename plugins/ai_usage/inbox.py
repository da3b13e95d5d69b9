"""The manual CSV inbox: vendor exports dropped into a folder load into the same tables as the API.

When a vendor API is down (or a key is revoked) an operator exports the data from the vendor's web UI
and drops the CSV into ``AI_USAGE_INBOX`` (``file://`` or ``gs://``, settings.inbox()); the ingest DAGs'
``csv_inbox`` tasks load it with the same pipeline loop as the API (archive, parse, quarantine, load):

    <inbox>/cursor/daily_usage/*.csv        → raw.cursor_daily_usage   (sources.cursor_csv)
    <inbox>/anthropic/cost_report/*.csv     → raw.anthropic_costs      (sources.anthropic_csv)
    <inbox>/anthropic/claude_code/*.csv     → raw.claude_code_usage    (sources.anthropic_csv)
    <kind folder>/processed/<YYYY-MM-DD>/   loaded files, under the UTC day of the load
    <kind folder>/rejected/                 refused files, each with <file>.reason.txt

A file covers the days of its valid rows: loading it replaces exactly those days' partitions, so an
outage day is filled by a CSV and a later API run over that day replaces it again. All pending files of
a kind load as one stream (one page per file, in file-name order, archived verbatim), so the ops records
of a run are written once; when two files hold the same day, the later file in name order owns it.
Rows that fail validation go to ops.quarantine as ``file <name> row <n>: <reason>``. A file that cannot
be read as its format (encoding, CSV syntax, a required column missing, no valid row) is moved to
rejected/ with the reason, and the task fails naming the file, after the other files have loaded.
Loading is idempotent: a task retry before the files moved re-replaces the same partitions, and a
re-dropped identical file yields the same rows again, never duplicates.

Storage (listing, claiming, moving on file:// and gs://) is `ai_usage.inbox_store`. Copy big files under
a temporary name (``.x.csv`` or ``x.csv.part``) and rename them when complete: those names are skipped.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ai_usage import pipeline, settings
from ai_usage.exceptions import ConfigurationError, ContractError
from ai_usage.hooks.pages import ApiPage
from ai_usage.inbox_store import REASON_SUFFIX, Inbox, InboxFile
from ai_usage.sources.common import ParseResult, PayloadError, Rejected
from ai_usage.sources.csv_table import MAX_BYTES, CsvFormatError, CsvTable, decode, read_csv

log = logging.getLogger(__name__)

__all__ = ["KINDS", "REASON_SUFFIX", "Inbox", "InboxFile", "InboxKind", "kind_spec", "load_pending", "run_task"]


# --------------------------------------------------------------------------- what goes where


@dataclass(frozen=True)
class InboxKind:
    folder: str          # under the inbox root; also the kind's name, e.g. "cursor/daily_usage"
    source: str          # ops.* and archive `source`: distinct from the API's, whose ops rows it must not replace
    endpoint: str
    table: str
    date_column: str     # the table's partition field
    lookback: str        # settings.lookback_days key: how long a loaded day stays provisional


KINDS: dict[str, InboxKind] = {k.folder: k for k in (
    InboxKind("cursor/daily_usage", "cursor_csv", "daily_usage", "raw.cursor_daily_usage", "usage_date", "cursor"),
    InboxKind("anthropic/cost_report", "anthropic_csv", "cost_report", "raw.anthropic_costs", "cost_date",
              "anthropic_costs"),
    InboxKind("anthropic/claude_code", "anthropic_csv", "claude_code", "raw.claude_code_usage", "usage_date",
              "claude_code"),
)}


def kind_spec(kind: str) -> InboxKind:
    try:
        return KINDS[kind]
    except KeyError:
        raise ConfigurationError(f"unknown inbox kind {kind!r}; known: {sorted(KINDS)}") from None


# --------------------------------------------------------------------------- loading


@dataclass
class _Loaded:
    file: InboxFile
    sha256: str
    page: ApiPage
    items: list[dict[str, Any] | Rejected]
    days: set[date]
    kept: list[dict[str, Any] | Rejected] = field(default_factory=list)
    superseded: int = 0

    @property
    def loaded(self) -> int:
        return sum(1 for i in self.kept if not isinstance(i, Rejected))

    @property
    def quarantined(self) -> int:
        return sum(1 for i in self.kept if isinstance(i, Rejected))


def _parser(spec: InboxKind, warehouse: Any, today: date) -> Callable[[CsvTable], ParseResult]:
    """The pure parser of `spec`, with what it needs from the warehouse (cost rows: the platform rules)."""
    from ai_usage.sources import anthropic_csv, cursor_csv

    if spec.folder == "cursor/daily_usage":
        return lambda table: cursor_csv.parse_daily_usage_csv(table, today=today)
    if spec.folder == "anthropic/claude_code":
        return lambda table: anthropic_csv.parse_claude_code_csv(table, today=today)
    from ai_usage.sources.platform import PlatformRules

    # As the API's cost_report task: the Sheet's developer-tooling marks and the latest workspace names.
    warehouse.ensure_tables(["ref.api_key_owners", "raw.anthropic_workspaces"])
    tooling = [r["workspace"] for r in warehouse.run_sql_file("ref/select_developer_tooling_workspaces.sql")]
    names = {r["workspace_id"]: r["name"] for r in warehouse.run_sql_file("raw/select_latest_workspace_names.sql")}
    rules = PlatformRules.from_env(developer_tooling_workspaces=tooling)
    return lambda table: anthropic_csv.parse_cost_csv(table, today=today, rules=rules, workspace_names=names)


def _read(spec: InboxKind, f: InboxFile, data: bytes, n: int,
          parse: Callable[[CsvTable], ParseResult]) -> _Loaded:
    """Parse one claimed file; CsvFormatError when it cannot be loaded at all."""
    text = decode(data, f.name)
    table = read_csv(text, f.name)
    items = list(parse(table))
    if not table.records:
        raise CsvFormatError(f"file {f.name}: no data rows (a file covers the days of its rows)")
    rows = [i for i in items if not isinstance(i, Rejected)]
    if not rows:
        bad = [i for i in items if isinstance(i, Rejected)]
        sample = "; ".join(f"{r.ref}: {r.reason}" for r in bad[:3])
        raise CsvFormatError(f"file {f.name}: none of its {len(bad)} rows is valid, e.g. {sample}")
    days = {r[spec.date_column] for r in rows}
    sha256 = hashlib.sha256(data).hexdigest()
    page = ApiPage(
        endpoint=spec.endpoint, n=n, status=200, text=text, payload=table, day=min(days),
        request={"method": "FILE", "url": f.uri, "file": f.name, "sha256": sha256, "size_bytes": len(data)},
    )
    return _Loaded(file=f, sha256=sha256, page=page, items=items, days=days)


def _assign_days(spec: InboxKind, loaded: list[_Loaded]) -> list[date]:
    """Each day belongs to the last file (in name order) that has it; earlier files' rows of it are dropped."""
    owner: dict[date, int] = {}
    for i, item in enumerate(loaded):
        for day in item.days:
            owner[day] = i
    for i, item in enumerate(loaded):
        for row in item.items:
            if isinstance(row, Rejected) or owner[row[spec.date_column]] == i:
                item.kept.append(row)
            else:
                item.superseded += 1
        if item.superseded:
            log.warning("%s: %d row(s) not loaded: their days are also in a later file (%s)", item.file.name,
                        item.superseded, ", ".join(sorted({loaded[owner[d]].file.name for d in item.days
                                                           if owner[d] != i})))
    return sorted(owner)


def _current_context() -> Mapping[str, Any]:
    from airflow.sdk import get_current_context

    return get_current_context()


def load_pending(
    kind: str, *, run: pipeline.RunInfo | None = None, now: datetime | None = None,
    location: settings.Location | None = None, warehouse: Any = None, archive: Any = None,
    context: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Load every pending CSV file of `kind` (a key of KINDS, e.g. ``"cursor/daily_usage"``); per-file results.

    Without `run`, the run identity comes from `context`, by default the running Airflow task's; with a
    context, the table's outlet asset event also says which days were replaced (as `pipeline.run_stream`
    does), so refresh_marts rebuilds them. `now` (UTC) decides which days are complete and the processed/
    folder; `location`, `warehouse`, `archive` default to the settings. Returns [] at once, touching no
    warehouse, when nothing is pending. Raises ContractError naming each rejected file and why, after
    the valid files are loaded and every file is moved.
    """
    spec = kind_spec(kind)
    box = Inbox(location)
    files = box.pending(spec.folder)
    if not files:
        log.info("inbox empty: no file in %s", box.uri(spec.folder))
        return []
    if run is None:
        context = context if context is not None else _current_context()
        run = pipeline.RunInfo.from_context(context)
    now = now or datetime.now(UTC)
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)  # naive means UTC, never local
    log.info("inbox %s: %d file(s) pending: %s", kind, len(files), ", ".join(f.name for f in files))

    own_warehouse = warehouse is None
    if own_warehouse:
        from ai_usage.warehouse import get_warehouse

        warehouse = get_warehouse()
    loaded: list[_Loaded] = []
    rejected: list[tuple[InboxFile, str]] = []
    skipped: list[InboxFile] = []
    try:
        warehouse.ensure_tables([spec.table, *pipeline.OPS_TABLES])
        parse = _parser(spec, warehouse, now.date())
        for n, f in enumerate(files, start=1):
            try:
                if not f.name.casefold().endswith(".csv"):
                    raise CsvFormatError(f"file {f.name}: not a .csv file; export or save the data as CSV (UTF-8)")
                if f.size > MAX_BYTES:
                    raise CsvFormatError(f"file {f.name}: {f.size} bytes is more than the {MAX_BYTES} accepted; "
                                         "split the export into several files")
                data = box.read(f)
                if data is None:
                    log.warning("%s disappeared or changed since it was listed: left for the next run", f.uri)
                    skipped.append(f)
                    continue
                loaded.append(_read(spec, f, data, n, parse))
            except PayloadError as exc:
                rejected.append((f, str(exc)))
        if loaded:
            stream, result = _ingest(spec, loaded, run, now, warehouse, archive)
            if context is not None:
                pipeline._announce_touched(context, stream, result)
    finally:
        if own_warehouse:
            warehouse.close()
    results = [_file_away_loaded(box, item, now) for item in loaded]
    results += [_file_away_rejected(box, f, reason, run, now) for f, reason in rejected]
    results += [_result(f, "skipped", reason="changed or removed since it was listed; read again next run")
                for f in skipped]
    if rejected:
        raise ContractError(
            f"inbox {kind}: {len(rejected)} file(s) rejected and moved to {box.uri(spec.folder + '/rejected')}: "
            + " | ".join(reason for _, reason in rejected)
        )
    return results


def _ingest(spec: InboxKind, loaded: list[_Loaded], run: pipeline.RunInfo, now: datetime, warehouse: Any,
            archive: Any) -> tuple[pipeline.Stream, pipeline.IngestResult]:
    days = _assign_days(spec, loaded)
    kept = {item.page.n: item.kept for item in loaded}
    if archive is None:
        from ai_usage.archive import RawArchive

        archive = RawArchive()
    stream = pipeline.Stream(
        source=spec.source, endpoint=spec.endpoint, table=spec.table,
        pages=lambda: (item.page for item in loaded),
        parse=lambda page: kept[page.n],
        dates=days, archive_day=days[0], lateness_days=settings.lookback_days(spec.lookback),
    )
    return stream, pipeline.ingest(stream, run=run, warehouse=warehouse, archive=archive, now=now)


def _file_away_loaded(box: Inbox, item: _Loaded, now: datetime) -> dict[str, Any]:
    moved = box.move_processed(item.file, now.date(), item.sha256)
    if moved is None:
        log.warning("%s changed while it was loaded: left in the inbox for the next run", item.file.uri)
    return _result(item.file, "loaded", sha256=item.sha256, days=sorted(d.isoformat() for d in item.days),
                   rows_loaded=item.loaded, rows_quarantined=item.quarantined, rows_superseded=item.superseded,
                   moved_to=moved)


def _file_away_rejected(box: Inbox, f: InboxFile, reason: str, run: pipeline.RunInfo,
                        now: datetime) -> dict[str, Any]:
    note = (f"file: {f.name}\nrejected_at: {now.isoformat()}\nrun_id: {run.run_id}\nreason: {reason}\n"
            "fix the file (runbook/manual-csv-fallback.md) and drop it into the inbox folder again\n")
    moved = box.move_rejected(f, note)
    log.error("rejected %s: %s", f.uri, reason)
    return _result(f, "rejected", moved_to=moved, reason=reason)


def _result(f: InboxFile, status: str, **figures: Any) -> dict[str, Any]:
    """One file's entry in the task result (`status`: loaded | rejected | skipped)."""
    return {"file": f.name, "uri": f.uri, "status": status, "sha256": None, "days": [], "rows_loaded": 0,
            "rows_quarantined": 0, "rows_superseded": 0, "moved_to": None, "reason": None, **figures}


def run_task(*kinds: str, **kwargs: Any) -> dict[str, list[dict[str, Any]]]:
    """The body of a DAG's ``csv_inbox`` task: `load_pending` for each kind (same keyword arguments).

    Every kind is loaded even when an earlier one rejects a file; then the rejections fail the task
    without retries (AirflowFailException): a retry would find the inbox empty and succeed, hiding them.
    Any other error propagates at once and the task's retries apply (unmoved files are read again).
    An empty inbox skips the task, so it emits no asset event and triggers no marts refresh for nothing.
    """
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    results: dict[str, list[dict[str, Any]]] = {}
    failures: list[str] = []
    for kind in kinds:
        try:
            results[kind] = load_pending(kind, **kwargs)
        except ContractError as exc:
            failures.append(str(exc))
            continue
        log.info("inbox %s: %s", kind, summary(results[kind]))
    if failures:
        raise AirflowFailException(" || ".join(failures))
    if not any(results.values()):
        raise AirflowSkipException(f"inbox empty ({', '.join(kinds)}): nothing to load")
    return results


def summary(results: Iterable[dict[str, Any]]) -> str:
    """One log line for a task's results."""
    results = list(results)
    if not results:
        return "inbox empty"
    return "; ".join(f"{r['file']}: {r['status']}, {r['rows_loaded']} rows, {r['rows_quarantined']} quarantined"
                     for r in results)
