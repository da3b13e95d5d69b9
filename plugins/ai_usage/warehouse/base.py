"""The one warehouse interface. Backends: DuckDB (embedded default) and BigQuery (production).

Tables are named logically, ``<dataset>.<table>`` (``raw.cursor_spend``); each backend maps the dataset
to its own namespace (a DuckDB schema; a BigQuery dataset ``<prefix>_<dataset>``). SQL is BigQuery
Standard SQL everywhere, with ``@name`` query parameters.

Rows are dicts keyed by column name, with Python values of the contract's types: ``str``, ``int``,
``float``, ``bool``, ``decimal.Decimal`` for NUMERIC, ``datetime.date`` for DATE, timezone-aware
``datetime.datetime`` for TIMESTAMP, ``list`` of dicts for REPEATED RECORD, any JSON-able value for JSON.
Missing keys are NULL.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ai_usage.warehouse.contracts import TableContract, get_contract, load_contracts

Row = Mapping[str, Any]
# Either rows, or pages (lists) of rows: pages let an extractor stream a long range with flat memory.
Rows = Iterable[Row] | Iterable[Sequence[Row]]


@dataclass(frozen=True)
class TableChange:
    """What `ensure_tables` did to one table."""

    table: str
    action: str                    # "created" | "columns_added" | "unchanged"
    columns_added: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableInventory:
    table: str
    rows: int
    partition_field: str | None
    min_date: date | None
    max_date: date | None
    partitions: int | None


class Warehouse(abc.ABC):
    """Interface every backend implements. All writes are atomic and idempotent."""

    kind: str

    # -- contracts -------------------------------------------------------------------------------------
    def contract(self, table: str) -> TableContract:
        return get_contract(table)

    def contracts(self) -> dict[str, TableContract]:
        return load_contracts()

    # -- DDL -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def ensure_tables(self, tables: Iterable[str] | None = None, *, defer: bool = False) -> list[TableChange]:
        """Create the datasets/schemas and the tables of the contracts (all, or those named); idempotent.

        A contract that gained NULLABLE columns gets them added; any other drift raises ContractError.
        ``defer=True`` (for a task about to extract for a while): a backend that serialises writers
        (DuckDB) creates the tables when it next opens the warehouse for writing, i.e. with the task's
        first write, so the task neither waits for the warehouse nor holds it before it has rows to
        write; it then returns ``[]`` and logs the changes when it makes them. Other backends ensure now.
        """

    def session(self) -> contextlib.AbstractContextManager[None]:
        """Operations inside share one opening of the warehouse (DuckDB: the file, opened at the first
        operation and released when the block ends); no effect on other backends. For a short burst of
        writes, such as a load followed by its bookkeeping rows."""
        return contextlib.nullcontext()

    # -- writes ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def replace_partitions(self, table: str, rows: Rows, dates: Iterable[date] | None) -> int:
        """Atomically replace the given date partitions of `table` with `rows`; return rows written.

        `dates` are values of the contract's partition field; every row must fall in one of them
        (else ContractError and nothing changes). ``dates=None`` replaces the whole table (the contract
        may then be unpartitioned). A failure at any point, including inside the `rows` iterator,
        leaves the table exactly as it was. Running it twice with the same input yields the same table.
        """

    @abc.abstractmethod
    def replace_where(self, table: str, rows: Rows, key: Mapping[str, Sequence[Any]]) -> int:
        """Atomically delete rows whose `key` columns match any of the given values, then insert `rows`.

        ``key={"run_id": ["r1"]}`` deletes where run_id = 'r1'; several columns are ANDed. Used for ops
        tables and snapshots keyed by something other than the partition field.
        """

    @abc.abstractmethod
    def append_rows(self, table: str, rows: Rows) -> int:
        """Insert rows atomically (all or none); for append-only logs such as ops.quarantine."""

    # -- reads and SQL ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one BigQuery Standard SQL statement with ``@name`` parameters; return rows as dicts."""

    @abc.abstractmethod
    def run_sql_file(self, path: str | Path, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one SQL file of include/sql (path relative to include/sql, or absolute)."""

    @abc.abstractmethod
    def inventory(self) -> list[TableInventory]:
        """Row counts and date coverage of every contracted table (missing tables are skipped)."""

    def close(self) -> None:  # noqa: B027 - optional hook: backends holding connections override it
        """Release connections."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
