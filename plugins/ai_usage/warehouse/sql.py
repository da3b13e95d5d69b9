"""SQL files and logical table names, shared by both backends.

SQL in ``include/sql`` is BigQuery Standard SQL that names tables logically (``raw.cursor_spend``,
``marts.exec_monthly``) and takes values only as ``@name`` query parameters. Before running, a backend
re-points the logical datasets at its own namespace with `qualify_datasets`, working on sqlglot's syntax
tree (never on the text), so a string literal that happens to contain ``raw.`` is left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import cast

import sqlglot
from sqlglot import exp

from ai_usage.exceptions import WarehouseError
from ai_usage.paths import sql_dir
from ai_usage.warehouse.contracts import DATASETS


def resolve_sql_path(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_absolute():
        p = sql_dir() / p
    if not p.is_file():
        raise WarehouseError(f"SQL file not found: {p}")
    return p


@lru_cache(maxsize=256)
def _read(path: str, mtime: float) -> str:
    return Path(path).read_text()


def load_sql_file(path: str | Path) -> str:
    """The text of one SQL file (relative to include/sql, or absolute); exactly one statement expected."""
    p = resolve_sql_path(path)
    return _read(str(p), p.stat().st_mtime)


def parse_bigquery(sql: str) -> exp.Expression:
    """Parse exactly one BigQuery statement; raise WarehouseError otherwise."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="bigquery") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise WarehouseError(f"SQL does not parse as BigQuery: {exc}") from exc
    if len(statements) != 1:
        raise WarehouseError(f"expected one SQL statement, found {len(statements)}")
    return cast(exp.Expression, statements[0])  # sqlglot types parse() as its base class, Expr


def qualify_datasets(
    tree: exp.Expression,
    dataset: Callable[[str], str],
    project: str | None = None,
) -> exp.Expression:
    """Rewrite ``raw.x`` / ``ref.x`` / ``marts.x`` / ``ops.x`` table references in place.

    `dataset` maps a logical dataset to the backend's name (DuckDB: identity; BigQuery:
    ``<prefix>_raw``); with `project`, BigQuery references become ``project.dataset.table``.
    References that already carry a catalog, or name another dataset (CTEs, UNNEST aliases), are untouched.
    """
    for table in tree.find_all(exp.Table):
        db = table.db
        if not db or table.catalog or db not in DATASETS:
            continue
        table.set("db", exp.to_identifier(dataset(db)))
        if project:
            table.set("catalog", exp.to_identifier(project))
    return tree


def referenced_tables(sql: str) -> set[str]:
    """Logical tables (``dataset.table``) a BigQuery statement reads or writes."""
    tree = parse_bigquery(sql)
    return {f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db in DATASETS}
