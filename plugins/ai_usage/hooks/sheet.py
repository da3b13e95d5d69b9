"""The Sheet people maintain, read tab by tab and appended to: a Google spreadsheet or a folder of CSV files.

``AI_USAGE_SHEET`` chooses the backend (settings.sheet()): a spreadsheet id or URL → `GoogleSheetSource`
(gspread, `ai_usage.hooks.gsheet`), ``file:///<folder>`` → `CsvFolderSource`, one ``<tab>.csv`` per tab
(the manual-upload fallback: File → Download → CSV of each tab). Both return a tab as an `ApiPage` whose
`payload` is the grid of cell texts exactly as the Sheets values API returns it (header = row 1, cells as
displayed, trailing empty cells and trailing empty rows left out, a blank row inside kept as ``[]`` so
row numbers stay the sheet's), and whose `text` is the CSV file or the API's JSON verbatim for the
archive. The same content therefore parses identically from either backend.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from ai_usage import settings
from ai_usage.exceptions import ConfigurationError
from ai_usage.hooks.pages import ApiPage
from ai_usage.sources.sheet import TABS, align_row
from ai_usage.sources.sheet_cells import normalize_header

log = logging.getLogger(__name__)

TAB_NAMES = tuple(TABS)          # people, api_key_owners, seat_prices, claude_ai_usage
_BOM = b"\xef\xbb\xbf"


def tab_endpoint(tab: str) -> str:
    """The stream endpoint of a tab (archive folder, ops records): ``"tab people"``."""
    return f"tab {tab}"


def normalize_grid(rows: Iterable[Sequence[Any]]) -> list[list[str]]:
    """Rows as the Sheets values API returns them: strings, no trailing empty cells, no trailing empty rows."""
    grid: list[list[str]] = []
    for row in rows:
        cells = ["" if c is None else str(c) for c in row]
        while cells and cells[-1] == "":
            cells.pop()
        grid.append(cells)
    while grid and not grid[-1]:
        grid.pop()
    return grid


class SheetSource(Protocol):
    """What the sheets DAG needs from a backend; `api_calls` / `retries` feed ops.ingestion_runs."""

    kind: str

    @property
    def api_calls(self) -> int: ...

    @property
    def retries(self) -> int: ...

    def describe(self) -> str: ...

    def read_tab(self, tab: str) -> ApiPage: ...

    def append_rows(self, tab: str, rows: Sequence[Mapping[str, str | None]]) -> int: ...


def open_sheet(config: settings.SheetConfig | None = None) -> SheetSource:
    """The configured sheet (``AI_USAGE_SHEET``). Call at task run time."""
    config = config or settings.sheet()
    if isinstance(config, settings.CsvFolderSheet):
        return CsvFolderSource(config.folder)
    from ai_usage.hooks.gsheet import GoogleSheetSource

    return GoogleSheetSource(config.spreadsheet_id)


def match_tab(names: Iterable[str], tab: str) -> str | None:
    """The name (file stem or sheet title) meaning `tab`: exact, else equal once normalized (``People``)."""
    names = list(names)
    if tab in names:
        return tab
    return next((n for n in names if normalize_header(n) == tab), None)


class CsvFolderSource:
    """One CSV file per tab in a folder: ``people.csv``, ``api_key_owners.csv``, …

    UTF-8 (with or without the BOM Excel writes; Windows-1252 is read with a warning), comma-separated
    (a header line with semicolons or tabs and no comma switches the delimiter, as some locales export).
    Appends keep the file's encoding, delimiter and line endings and replace the file atomically.
    """

    kind = "file"

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.api_calls = 0
        self.retries = 0

    def describe(self) -> str:
        return f"CSV folder {self.folder}"

    def path(self, tab: str) -> Path:
        if not self.folder.is_dir():
            raise ConfigurationError(
                f"AI_USAGE_SHEET points at {self.folder}, which is not a folder; expected one CSV per tab "
                f"({', '.join(f'{t}.csv' for t in TAB_NAMES)})")
        stems = {p.stem: p for p in self.folder.glob("*.csv")}
        name = match_tab(stems, tab)
        if name is None:
            raise ConfigurationError(
                f"tab {tab}: no {tab}.csv in {self.folder} (found: {', '.join(sorted(stems)) or 'no CSV files'})")
        return stems[name]

    @staticmethod
    def _decode(raw: bytes, path: Path) -> tuple[str, str]:
        try:
            return raw.decode("utf-8-sig"), "utf-8-sig" if raw.startswith(_BOM) else "utf-8"
        except UnicodeDecodeError:
            log.warning("%s is not UTF-8; reading it as Windows-1252 (export CSV as UTF-8 to avoid this)", path)
            return raw.decode("cp1252"), "cp1252"

    @staticmethod
    def _delimiter(text: str) -> str:
        first = text.split("\n", 1)[0]
        if "," not in first:
            for candidate in (";", "\t"):
                if candidate in first:
                    return candidate
        return ","

    def read_tab(self, tab: str) -> ApiPage:
        path = self.path(tab)
        raw = path.read_bytes()
        text, _ = self._decode(raw, path)
        self.api_calls += 1
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=self._delimiter(text)))
        return ApiPage(
            endpoint=tab_endpoint(tab), n=1, request={"method": "READ", "path": str(path), "tab": tab},
            status=200, text=text, payload=normalize_grid(rows),
        )

    def append_rows(self, tab: str, rows: Sequence[Mapping[str, str | None]]) -> int:
        """Append `rows` (canonical column → text) under the file's own header; returns rows written."""
        if not rows:
            return 0
        path = self.path(tab)
        raw = path.read_bytes()
        text, encoding = self._decode(raw, path)
        delimiter = self._delimiter(text)
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
        newline = "\r\n" if "\r\n" in text.split("\n", 1)[0] + "\n" else "\n"
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
        for row in rows:
            writer.writerow(align_row(tab, header, row))
        if text and not text.endswith(("\n", "\r")):
            text += newline
        data = (text + out.getvalue()).encode(encoding)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, path.stat().st_mode & 0o7777)
            os.replace(tmp, path)  # readers see the old file or the new one, never half of it
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.api_calls += 1
        log.info("appended %d row(s) to %s", len(rows), path)
        return len(rows)
