"""Locations of the package's shipped resources (table contracts, SQL, expectations, dashboards)."""

from __future__ import annotations

import os
from pathlib import Path


def include_dir() -> Path:
    """The `include/` folder: AI_USAGE_INCLUDE, else the repository's own (Astro layout)."""
    override = os.environ.get("AI_USAGE_INCLUDE")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "include"


def schemas_dir() -> Path:
    return include_dir() / "schemas"


def sql_dir() -> Path:
    return include_dir() / "sql"
