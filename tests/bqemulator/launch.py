"""Start bqemulator on loopback without DuckDB's spatial extension (runs inside the emulator's own venv).

Two shims, both outside the product:
- bqemulator refuses to start unless it can INSTALL/LOAD DuckDB's ``spatial`` extension, a download
  from extensions.duckdb.org. ai-usage uses no GEOGRAPHY, so the loader becomes a no-op; the ``avro``
  extension is switched off with the emulator's own setting.
- its upload route rejects the media part's ``Content-Type: */*``, which is what the official
  google-cloud-bigquery client sends for every ``load_table_from_file`` (and BigQuery accepts), so
  ``*/*`` is added to its whitelist.
"""

from __future__ import annotations

import os
import sys

from bqemulator.api.routes import upload
from bqemulator.storage import engine


def _no_spatial(self: object) -> None:
    """GEOGRAPHY is unused by ai-usage; skip the extension download."""


engine.DuckDBEngine._load_spatial = _no_spatial  # type: ignore[method-assign]
upload._PERMITTED_MEDIA_CONTENT_TYPES = (*upload._PERMITTED_MEDIA_CONTENT_TYPES, "*/*")
os.environ.setdefault("BQEMU_ENABLE_FORMAT_EXTENSIONS", "false")

from bqemulator.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["start", *sys.argv[1:]]))
