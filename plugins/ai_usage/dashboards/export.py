"""A marts-only copy of the DuckDB warehouse for Metabase's DuckDB driver.

Metabase's DuckDB driver embeds DuckDB 1.x, which cannot open files written by DuckDB 2.x; and Metabase
must not see the raw and ref schemas. So provisioning on DuckDB writes a separate file holding only the
``marts`` schema, in storage version v1.4.0 (``ATTACH ... (STORAGE_VERSION 'v1.4.0')``), replaced
atomically so Metabase never reads a half-written file. On BigQuery there is nothing to export: the
Metabase connection's dataset filter and service account do the same job.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import duckdb
from sqlglot import exp

from ai_usage import settings
from ai_usage.exceptions import ConfigurationError, WarehouseError
from ai_usage.warehouse.contracts import DATASETS, load_contracts

log = logging.getLogger(__name__)

STORAGE_VERSION = "v1.4.0"


def _literal(text: str) -> str:
    return exp.Literal.string(text).sql(dialect="duckdb")


def export_marts(dest: str | Path, config: settings.WarehouseConfig | None = None) -> dict[str, int]:
    """Copy every marts table of the DuckDB warehouse to `dest` (DuckDB 1.x readable); return rows per table."""
    config = config or settings.warehouse()
    if not isinstance(config, settings.DuckDBConfig):
        raise ConfigurationError("export_marts needs the DuckDB warehouse; on BigQuery Metabase reads the dataset")
    source = Path(config.path)
    if not source.is_file():
        raise WarehouseError(f"no DuckDB warehouse at {source}: run setup_warehouse first")
    dest = Path(dest)
    if dest.stem in DATASETS:
        raise ConfigurationError(
            f"{dest}: DuckDB names the catalog after the file; a file called {dest.stem}.duckdb makes "
            f"'{dest.stem}.<table>' ambiguous in Metabase's queries. Choose another name, e.g. ai_usage_marts.duckdb"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    marts = sorted(name.split(".", 1)[1] for name in load_contracts() if name.startswith("marts."))
    counts: dict[str, int] = {}
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {_literal(str(source))} AS warehouse (READ_ONLY)")
        con.execute(f"ATTACH {_literal(str(tmp))} AS export (STORAGE_VERSION '{STORAGE_VERSION}')")
        con.execute("CREATE SCHEMA export.marts")
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'warehouse' AND schema_name = 'marts'"
        ).fetchall()}
        for table in marts:
            if table not in present:
                log.warning("marts.%s does not exist in the warehouse yet; not exported", table)
                continue
            name = exp.to_identifier(table, quoted=True).sql(dialect="duckdb")
            con.execute(f"CREATE TABLE export.marts.{name} AS SELECT * FROM warehouse.marts.{name}")
            row = con.execute(f"SELECT count(*) FROM export.marts.{name}").fetchone()
            counts[table] = int(row[0]) if row else 0
        con.execute("DETACH export")
        con.execute("DETACH warehouse")
    except duckdb.Error as exc:
        tmp.unlink(missing_ok=True)
        raise WarehouseError(f"could not export the marts to {dest}: {exc}") from exc
    finally:
        con.close()
    os.replace(tmp, dest)
    log.info("exported %d marts tables (%d rows) to %s for Metabase", len(counts), sum(counts.values()), dest)
    return counts
