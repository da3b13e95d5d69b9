"""Warehouse layer: one interface (`Warehouse`), two backends chosen by ``AI_USAGE_WAREHOUSE``."""

from __future__ import annotations

from ai_usage import settings
from ai_usage.warehouse.base import TableChange, TableInventory, Warehouse


def get_warehouse(config: settings.WarehouseConfig | None = None, **kwargs: object) -> Warehouse:
    """The configured warehouse backend. Call at task run time, never at DAG-parse time."""
    config = config or settings.warehouse()
    if isinstance(config, settings.DuckDBConfig):
        from ai_usage.warehouse.duckdb_backend import DuckDBBackend

        return DuckDBBackend(config, **kwargs)  # type: ignore[arg-type]
    from ai_usage.warehouse.bigquery_backend import BigQueryBackend

    return BigQueryBackend(config, **kwargs)  # type: ignore[arg-type]


__all__ = ["TableChange", "TableInventory", "Warehouse", "get_warehouse"]
