"""Every setting of the product, with its default, parsed and validated at task run time.

Settings are environment variables of the deployment (DESIGN.md §2). Secrets never live here: they are
Airflow Connections. Nothing in this module is evaluated at import time, so DAG files may import it
freely; the one setting a DAG file may read at parse time is the warehouse *kind* (see `warehouse_kind`).

Paths in ``duckdb:///…`` and ``file:///…`` follow SQLAlchemy's convention: three slashes and a relative
path (``duckdb:///.ai_usage/warehouse.duckdb``) are relative to the project home (``AI_USAGE_HOME``,
default: the repository root); four slashes (``file:////srv/archive``) are an absolute path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ai_usage.exceptions import ConfigurationError

# Connection ids are part of the contract (DESIGN.md §2).
CURSOR_CONN_ID = "cursor_admin"
ANTHROPIC_CONN_ID = "anthropic_admin"
GOOGLE_CONN_ID = "google_cloud_default"
SLACK_CONN_ID = "slack_alerts"
SMTP_CONN_ID = "smtp_default"
METABASE_CONN_ID = "metabase_default"

DEFAULT_WAREHOUSE = "duckdb:///.ai_usage/warehouse.duckdb"
DEFAULT_SHEET = "file:///include/sample_sheet"
DEFAULT_ARCHIVE = "file:///.ai_usage/archive"
DEFAULT_INBOX = "file:///.ai_usage/inbox"

# Per-source lookback (days re-read on every run for late or revised vendor data), vendor-apis.md.
DEFAULT_LOOKBACK_DAYS = {"cursor": 3, "claude_code": 4, "anthropic_costs": 3}


def project_home() -> Path:
    """The directory relative paths in settings are resolved against."""
    home = os.environ.get("AI_USAGE_HOME")
    if home:
        return Path(home).expanduser().resolve()
    # plugins/ai_usage/settings.py -> repository root
    return Path(__file__).resolve().parents[2]


def _path_from_url_rest(rest: str) -> Path:
    """``/relative/x`` -> home/relative/x; ``//abs/x`` -> /abs/x (SQLAlchemy's three/four-slash rule)."""
    if rest.startswith("//"):
        return Path(rest[1:])
    rel = rest[1:] if rest.startswith("/") else rest
    if not rel:
        return project_home()
    return project_home() / rel


# --------------------------------------------------------------------------- warehouse


@dataclass(frozen=True)
class DuckDBConfig:
    path: Path
    kind: str = "duckdb"


@dataclass(frozen=True)
class BigQueryConfig:
    project: str
    location: str | None
    dataset_prefix: str
    kind: str = "bigquery"

    def dataset(self, name: str) -> str:
        """Logical dataset (`raw`, `ref`, `marts`, `ops`) -> BigQuery dataset id."""
        return f"{self.dataset_prefix}_{name}" if self.dataset_prefix else name


WarehouseConfig = DuckDBConfig | BigQueryConfig

_WAREHOUSE_FORMS = (
    "duckdb:///<relative path> | duckdb:////<absolute path> | "
    "bigquery://<project>?location=<location>&dataset_prefix=<prefix>"
)
_BQ_PROJECT = re.compile(r"^[a-z][a-z0-9\-]{4,28}[a-z0-9]$|^[a-z0-9.:\-]+$")
_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,100}$")


def parse_warehouse(url: str) -> WarehouseConfig:
    """Parse an ``AI_USAGE_WAREHOUSE`` value; raise a ConfigurationError naming the accepted forms."""
    url = url.strip()
    if url.startswith("duckdb://"):
        rest = url[len("duckdb://"):]
        if not rest.startswith("/") or rest == "/":
            raise ConfigurationError(
                f"AI_USAGE_WAREHOUSE={url!r} has no file path. Accepted forms: {_WAREHOUSE_FORMS}"
            )
        return DuckDBConfig(path=_path_from_url_rest(rest))
    if url.startswith("bigquery://"):
        parts = urlsplit(url)
        project = parts.netloc
        if not project or not _BQ_PROJECT.match(project):
            raise ConfigurationError(
                f"AI_USAGE_WAREHOUSE={url!r} does not name a Google Cloud project. "
                f"Accepted forms: {_WAREHOUSE_FORMS}"
            )
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - {"location", "dataset_prefix"})
        if unknown:
            raise ConfigurationError(
                f"AI_USAGE_WAREHOUSE={url!r} has unknown option(s) {unknown}; "
                f"only location and dataset_prefix are accepted. Accepted forms: {_WAREHOUSE_FORMS}"
            )
        prefix = query.get("dataset_prefix", ["ai_usage"])[0]
        if not _PREFIX.match(prefix):
            raise ConfigurationError(
                f"AI_USAGE_WAREHOUSE dataset_prefix={prefix!r} is not a valid BigQuery dataset name prefix "
                "(letters, digits, underscores)."
            )
        location = query.get("location", [None])[0] or None
        return BigQueryConfig(project=project, location=location, dataset_prefix=prefix)
    raise ConfigurationError(
        f"AI_USAGE_WAREHOUSE={url!r} is not supported. Accepted forms: {_WAREHOUSE_FORMS}"
    )


def warehouse() -> WarehouseConfig:
    return parse_warehouse(os.environ.get("AI_USAGE_WAREHOUSE", DEFAULT_WAREHOUSE))


def warehouse_kind() -> str:
    """`duckdb` or `bigquery`: the only setting DAG files may read at parse time (it picks operator types).

    Cheap and side-effect free: it reads one environment variable and looks only at the scheme.
    """
    url = os.environ.get("AI_USAGE_WAREHOUSE", DEFAULT_WAREHOUSE).strip()
    if url.startswith("bigquery://"):
        return "bigquery"
    if url.startswith("duckdb://"):
        return "duckdb"
    raise ConfigurationError(f"AI_USAGE_WAREHOUSE={url!r} is not supported. Accepted forms: {_WAREHOUSE_FORMS}")


# --------------------------------------------------------------------------- sheet


@dataclass(frozen=True)
class GoogleSheet:
    spreadsheet_id: str
    kind: str = "gsheet"


@dataclass(frozen=True)
class CsvFolderSheet:
    folder: Path
    kind: str = "file"


SheetConfig = GoogleSheet | CsvFolderSheet
_SHEET_ID = re.compile(r"^[A-Za-z0-9_\-]{20,}$")
_SHEET_FORMS = "<spreadsheet id> | https://docs.google.com/spreadsheets/d/<id>/… | file:///<folder of CSV files>"


def parse_sheet(value: str) -> SheetConfig:
    value = value.strip()
    if value.startswith("file://"):
        rest = value[len("file://"):]
        if not rest.startswith("/"):
            raise ConfigurationError(f"AI_USAGE_SHEET={value!r}: accepted forms: {_SHEET_FORMS}")
        return CsvFolderSheet(folder=_path_from_url_rest(rest))
    m = re.match(r"^https://docs\.google\.com/spreadsheets/d/([A-Za-z0-9_\-]+)", value)
    if m:
        return GoogleSheet(spreadsheet_id=m.group(1))
    if _SHEET_ID.match(value):
        return GoogleSheet(spreadsheet_id=value)
    raise ConfigurationError(f"AI_USAGE_SHEET={value!r} is not supported. Accepted forms: {_SHEET_FORMS}")


def sheet() -> SheetConfig:
    return parse_sheet(os.environ.get("AI_USAGE_SHEET", DEFAULT_SHEET))


# --------------------------------------------------------------------------- archive and inbox


@dataclass(frozen=True)
class FileLocation:
    path: Path
    kind: str = "file"

    def uri(self) -> str:
        return self.path.as_uri()


@dataclass(frozen=True)
class GcsLocation:
    bucket: str
    prefix: str
    kind: str = "gs"

    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.prefix}".rstrip("/")


Location = FileLocation | GcsLocation
_LOCATION_FORMS = "file:///<relative dir> | file:////<absolute dir> | gs://<bucket>/<prefix>"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._\-]{1,220}[a-z0-9]$")


def parse_location(value: str, setting: str) -> Location:
    value = value.strip()
    if value.startswith("file://"):
        rest = value[len("file://"):]
        if not rest.startswith("/") or rest == "/":
            raise ConfigurationError(f"{setting}={value!r}: accepted forms: {_LOCATION_FORMS}")
        return FileLocation(path=_path_from_url_rest(rest))
    if value.startswith("gs://"):
        parts = urlsplit(value)
        if not _BUCKET.match(parts.netloc or ""):
            raise ConfigurationError(f"{setting}={value!r} has no valid bucket. Accepted forms: {_LOCATION_FORMS}")
        return GcsLocation(bucket=parts.netloc, prefix=parts.path.strip("/"))
    raise ConfigurationError(f"{setting}={value!r} is not supported. Accepted forms: {_LOCATION_FORMS}")


def archive() -> Location:
    """Where every vendor response is stored verbatim (``AI_USAGE_ARCHIVE``)."""
    return parse_location(os.environ.get("AI_USAGE_ARCHIVE", DEFAULT_ARCHIVE), "AI_USAGE_ARCHIVE")


def inbox() -> Location:
    """Folder of manual CSV exports loaded by the ingest DAGs (``AI_USAGE_INBOX``): the API-down fallback."""
    return parse_location(os.environ.get("AI_USAGE_INBOX", DEFAULT_INBOX), "AI_USAGE_INBOX")


# --------------------------------------------------------------------------- alerts and ingestion


_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")


def alert_emails() -> list[str]:
    """Recipients of e-mail alerts (``AI_USAGE_ALERT_EMAILS``, comma or semicolon separated); empty = off."""
    raw = os.environ.get("AI_USAGE_ALERT_EMAILS", "")
    emails = [e.strip() for e in re.split(r"[,;]", raw) if e.strip()]
    bad = [e for e in emails if not _EMAIL.match(e)]
    if bad:
        raise ConfigurationError(
            f"AI_USAGE_ALERT_EMAILS has invalid address(es) {bad}; expected a comma-separated list of e-mails."
        )
    return emails


def lookback_days(source: str) -> int:
    """Days re-read before each run's interval (``AI_USAGE_LOOKBACK_<SOURCE>``, e.g. AI_USAGE_LOOKBACK_CURSOR)."""
    if source not in DEFAULT_LOOKBACK_DAYS:
        raise ConfigurationError(f"unknown source {source!r}; known: {sorted(DEFAULT_LOOKBACK_DAYS)}")
    name = f"AI_USAGE_LOOKBACK_{source.upper()}"
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return DEFAULT_LOOKBACK_DAYS[source]
    try:
        days = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number of days (0-90).") from None
    if not 0 <= days <= 90:
        raise ConfigurationError(f"{name}={raw!r} must be between 0 and 90 days.")
    return days


_SWITCH = {"on": True, "true": True, "1": True, "yes": True, "off": False, "false": False, "0": False, "no": False}


def cursor_usage_events() -> bool:
    """Whether ingest_cursor loads per-request usage events (``AI_USAGE_CURSOR_USAGE_EVENTS``, default on).

    Events are the most voluminous Cursor data (millions of rows a year for a large team) and only feed
    the reconciliation of Cursor's spend snapshot; an organisation that does not need it can switch it off.
    """
    raw = os.environ.get("AI_USAGE_CURSOR_USAGE_EVENTS", "on").strip().lower()
    if raw not in _SWITCH:
        raise ConfigurationError(f"AI_USAGE_CURSOR_USAGE_EVENTS={raw!r}: expected on or off.")
    return _SWITCH[raw]


# --------------------------------------------------------------------------- data quality and marts

QUALITY_DEFAULTS = {
    "AI_USAGE_ESTIMATE_TOLERANCE": Decimal("0.05"),
    "AI_USAGE_CURSOR_SPEND_TOLERANCE": Decimal("0.05"),
    "AI_USAGE_CLAUDE_AI_SPEND_BAND": Decimal("1.0"),
}
DEFAULT_REF_REFRESH_MONTHS = 2


def _fraction(name: str, upper: Decimal) -> Decimal:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return QUALITY_DEFAULTS[name]
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigurationError(f"{name}={raw!r} is not a number (e.g. 0.05 for 5 %)") from None
    if not Decimal(0) <= value <= upper:
        raise ConfigurationError(f"{name}={raw!r} must be between 0 and {upper}")
    return value


def estimate_tolerance() -> Decimal:
    """Claude Code estimates vs the billed Claude Code cost of a month: largest relative gap that passes."""
    return _fraction("AI_USAGE_ESTIMATE_TOLERANCE", Decimal(1))


def cursor_spend_tolerance() -> Decimal:
    """Cursor spend snapshot vs summed usage-based charges: relative slack for not-yet-ingested charges."""
    return _fraction("AI_USAGE_CURSOR_SPEND_TOLERANCE", Decimal(1))


def claude_ai_spend_band() -> Decimal:
    """claude.ai spend above the allotment may reach this multiple of the month's seat fees before a flag."""
    return _fraction("AI_USAGE_CLAUDE_AI_SPEND_BAND", Decimal(100))


def ref_refresh_months() -> int:
    """Months a Sheet (reference table) change rebuilds (``AI_USAGE_REF_REFRESH_MONTHS``, 1-36, default 2)."""
    raw = os.environ.get("AI_USAGE_REF_REFRESH_MONTHS", "").strip()
    if not raw:
        return DEFAULT_REF_REFRESH_MONTHS
    if not raw.isdigit() or not 1 <= int(raw) <= 36:
        raise ConfigurationError(f"AI_USAGE_REF_REFRESH_MONTHS={raw!r} must be a whole number of months (1-36)")
    return int(raw)


def describe() -> dict[str, str]:
    """The effective configuration (no secrets), for logs and `make run`'s header."""
    return {
        "AI_USAGE_HOME": str(project_home()),
        "AI_USAGE_WAREHOUSE": os.environ.get("AI_USAGE_WAREHOUSE", DEFAULT_WAREHOUSE),
        "AI_USAGE_SHEET": os.environ.get("AI_USAGE_SHEET", DEFAULT_SHEET),
        "AI_USAGE_ARCHIVE": os.environ.get("AI_USAGE_ARCHIVE", DEFAULT_ARCHIVE),
        "AI_USAGE_INBOX": os.environ.get("AI_USAGE_INBOX", DEFAULT_INBOX),
        "AI_USAGE_ALERT_EMAILS": os.environ.get("AI_USAGE_ALERT_EMAILS", ""),
        "AI_USAGE_CURSOR_USAGE_EVENTS": os.environ.get("AI_USAGE_CURSOR_USAGE_EVENTS", "on"),
        "AI_USAGE_CLAUDE_CODE_WORKSPACES": os.environ.get("AI_USAGE_CLAUDE_CODE_WORKSPACES", "Claude Code"),
    }
