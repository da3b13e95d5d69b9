"""DuckDB backend: the embedded default warehouse, one file with the schemas raw, ref, marts and ops.

Tables are created from the contracts (types mapped so that nothing is narrower than in BigQuery:
NUMERIC -> DECIMAL(38, 9), TIMESTAMP -> TIMESTAMPTZ, REPEATED RECORD -> STRUCT(...)[]). Writes check
each page of rows as it arrives (`ai_usage.warehouse.arrow`), stage it, then replace in one transaction
(BEGIN; DELETE; INSERT; COMMIT), so a failure anywhere -- a bad row, a vendor error raised by the rows
iterator, a database error -- leaves the previous table. Queries are BigQuery SQL translated by
`ai_usage.warehouse.transpile`, with ``@name`` parameters.

Connections: DuckDB lets one process write a file at a time, and parallel Airflow tasks (LocalExecutor,
several ingest DAGs at once) are separate processes. So the backend opens the file only around each
operation (a query, a write's short transaction — rows are staged *before* the file is opened, so a
long extraction never holds it) and closes it again. Processes take turns through a companion lock file
(`ai_usage.warehouse.turns`): a waiting task gets the file the moment the previous one closes it, up to
`lock_timeout_s`, then fails with a WarehouseError naming the lock. A task about to extract defers its
DDL to its first write (``ensure_tables(..., defer=True)``), and `session()` keeps the file open over a
burst of writes. Within one process, a read-only and a read-write backend on the same file cannot be
open together (DuckDB refuses a second configuration of an open database). The session time zone is
UTC, so no date depends on the machine's time zone.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ai_usage import settings
from ai_usage.exceptions import ContractError, WarehouseError
from ai_usage.warehouse import arrow, turns
from ai_usage.warehouse.base import Rows, TableChange, TableInventory, Warehouse
from ai_usage.warehouse.contracts import Column, TableContract

if TYPE_CHECKING:
    from ai_usage.warehouse.transpile import Translation

log = logging.getLogger(__name__)

_SCALAR_TYPES = {
    "STRING": "VARCHAR", "INT64": "BIGINT", "FLOAT64": "DOUBLE", "BOOL": "BOOLEAN", "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMPTZ", "DATETIME": "TIMESTAMP", "TIME": "TIME", "JSON": "JSON", "BYTES": "BLOB",
}
# DuckDB's buffer pool per process (it spills to disk beyond it); override per backend if needed.
DEFAULT_MEMORY_LIMIT = "192MB"
# The buffer pool while a staged write is inserted (DuckDB spills beyond it; see _lean_bulk_insert).
BULK_INSERT_MEMORY_LIMIT = "32MB"
DEFAULT_LOCK_TIMEOUT_S = 600.0


def _released(method: Any) -> Any:
    """Run a public operation with the file open, and close it when the outermost operation ends."""

    @functools.wraps(method)
    def wrapper(self: DuckDBBackend, *args: Any, **kwargs: Any) -> Any:
        with self._operation():
            return method(self, *args, **kwargs)

    return wrapper
_PAGE_VIEW = "__ai_usage_page"
_KEYS_VIEW = "__ai_usage_keys"


def _ident(name: str) -> str:
    """A quoted DuckDB identifier: double quotes, a double quote inside doubled (SQL standard)."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    """A DuckDB string literal: single quotes, a single quote inside doubled; backslashes are plain text."""
    return "'" + text.replace("'", "''") + "'"


def table_ref(contract: TableContract) -> str:
    """``"raw"."cursor_spend"``: the DuckDB name of a contracted table."""
    return f"{_ident(contract.dataset)}.{_ident(contract.name)}"


def duckdb_type(col: Column) -> str:
    """DuckDB type of a contract column, never narrower than BigQuery's (money is not rounded)."""
    if col.type == "RECORD":
        base = "STRUCT(" + ", ".join(f"{_ident(f.name)} {duckdb_type(f)}" for f in col.fields) + ")"
    elif col.type in ("NUMERIC", "BIGNUMERIC"):
        # Scale at least 9 (BigQuery NUMERIC's); 38 digits in all, DuckDB's maximum.
        scale = max(arrow.DEFAULT_SCALE, min(col.scale or 0, arrow.MAX_PRECISION))
        base = f"DECIMAL({arrow.MAX_PRECISION},{scale})"
    else:
        base = _SCALAR_TYPES[col.type]
    return base + "[]" if col.repeated else base


def _column_ddl(col: Column) -> str:
    return f"{_ident(col.name)} {duckdb_type(col)}" + (" NOT NULL" if col.required else "")


class DuckDBBackend(Warehouse):
    """The `Warehouse` on one DuckDB file (``AI_USAGE_WAREHOUSE=duckdb:///…``)."""

    kind = "duckdb"

    def __init__(
        self,
        config: settings.DuckDBConfig,
        read_only: bool = False,
        *,
        memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    ):
        self.config = config
        self.path = Path(config.path)
        self.read_only = read_only
        self.memory_limit = memory_limit
        self._con: duckdb.DuckDBPyConnection | None = None
        self._types: dict[str, str] = {}
        self.lock_timeout_s = lock_timeout_s
        self._depth = 0  # nesting of public operations: the file is released when the outermost ends
        self._release_turn: Any = None
        self._deferred: list[str] = []  # tables to ensure at the next opening for writing

    # -- connection ------------------------------------------------------------------------------------
    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The backend's connection, opened on first use (UTC session time zone)."""
        if self._con is None:
            if self.read_only and not self.path.is_file():
                raise WarehouseError(f"no DuckDB warehouse at {self.path}: create it first (ensure_tables)")
            if not self.read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = self._connect()
            try:
                self._con.execute("SET TimeZone = 'UTC'")
                # DuckDB 2.0.1 statistics propagation is wrong after a LEFT JOIN whose right side a pushed-down
                # filter empties: aggregates of left-side columns are taken as always NULL, so e.g.
                # COALESCE(SUM(x), 0) > 0 is folded to FALSE and rows silently vanish (money SQL must never).
                self._con.execute("SET disabled_optimizers = 'statistics_propagation'")
                if self.memory_limit:
                    # DuckDB's default is 80 % of the machine's RAM; a task shares the worker with others.
                    self._con.execute(f"SET memory_limit = {_literal(self.memory_limit)}")
                log.debug("opened DuckDB %s (read_only=%s)", self.path, self.read_only)
                if self._deferred and not self.read_only:
                    deferred, self._deferred = self._deferred, []
                    self._apply_ddl(deferred)
            except BaseException:
                self.close()
                raise
        return self._con

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Open the file after this process's turn (`turns`), then retrying while DuckDB still refuses it
        (a process outside this package holds it); up to `lock_timeout_s` in all."""
        deadline = time.monotonic() + self.lock_timeout_s
        try:
            self._release_turn = turns.take(
                self.path, shared=self.read_only, timeout_s=self.lock_timeout_s,
                on_wait=lambda: log.info("DuckDB warehouse %s is in use by another task; waiting for it", self.path))
        except turns.TurnTimeout as exc:
            raise WarehouseError(f"cannot open DuckDB warehouse {self.path}: {exc}. DuckDB allows one writing "
                                 f"process per file.") from None
        wait = 0.05
        try:
            while True:
                try:
                    return duckdb.connect(str(self.path), read_only=self.read_only)
                except duckdb.Error as exc:
                    locked = "lock" in str(exc).lower()
                    if not locked or time.monotonic() >= deadline:
                        raise WarehouseError(
                            f"cannot open DuckDB warehouse {self.path} "
                            f"({'read-only' if self.read_only else 'read-write'}): {exc}. DuckDB allows one "
                            f"writing process per file{f'; waited {self.lock_timeout_s:.0f} s for it' if locked else ''}."
                        ) from exc
                    log.info("DuckDB warehouse %s is locked by another process; waiting", self.path)
                    time.sleep(wait)
                    wait = min(wait * 2, 0.5)
        except BaseException:
            self._give_back_turn()
            raise

    def _give_back_turn(self) -> None:
        release, self._release_turn = self._release_turn, None
        if release is not None:
            release()

    @contextlib.contextmanager
    def _operation(self) -> Iterator[None]:
        """One public operation: the file is closed when the outermost operation ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.close()

    def close(self) -> None:
        if self._con is not None:
            try:
                self._con.close()
            finally:
                self._con = None
                self._give_back_turn()

    def session(self) -> contextlib.AbstractContextManager[None]:
        return self._operation()

    def _writable(self) -> duckdb.DuckDBPyConnection:
        if self.read_only:
            raise WarehouseError(f"the DuckDB warehouse {self.path} was opened read-only")
        return self.connection

    def _existing_tables(self) -> dict[tuple[str, str], list[tuple[str, str, bool]]]:
        rows = self.connection.execute(
            "SELECT schema_name, table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
            "WHERE database_name = current_database() ORDER BY schema_name, table_name, column_index"
        ).fetchall()
        out: dict[tuple[str, str], list[tuple[str, str, bool]]] = {}
        for schema, table, column, data_type, nullable in rows:
            out.setdefault((schema, table), []).append((column, data_type, bool(nullable)))
        return out

    # -- DDL -------------------------------------------------------------------------------------------
    def ensure_tables(self, tables: Iterable[str] | None = None, *, defer: bool = False) -> list[TableChange]:
        """Create missing schemas and tables; add new NULLABLE columns; refuse any other drift.

        Every table is checked before anything changes, then all changes run in one transaction. With
        `defer`, that happens when the file is next opened for writing (at once if it is open now).
        """
        if defer and not self.read_only:
            names = sorted(self.contracts()) if tables is None else list(tables)
            for name in names:
                self.contract(name)  # an unknown table fails now, not at the write
            if self._con is None:
                self._deferred.extend(n for n in names if n not in self._deferred)
                return []
            tables = names
        return self._ensure_now(tables)

    @_released
    def _ensure_now(self, tables: Iterable[str] | None) -> list[TableChange]:
        return self._apply_ddl(tables)

    def _apply_ddl(self, tables: Iterable[str] | None) -> list[TableChange]:
        con = self._writable()
        names = sorted(self.contracts()) if tables is None else list(tables)
        selected = [self.contract(name) for name in names]
        existing = self._existing_tables()
        plans = [self._plan(c, existing.get((c.dataset, c.name))) for c in selected]
        con.execute("BEGIN TRANSACTION")
        try:
            for dataset in sorted({c.dataset for c in selected}):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(dataset)}")
            for _change, statements in plans:
                for statement in statements:
                    con.execute(statement)
            con.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        changes = [change for change, _ in plans]
        for change in changes:
            if change.action != "unchanged":
                log.info("%s: %s %s", change.table, change.action, ", ".join(change.columns_added))
        return changes

    def _plan(
        self, contract: TableContract, current: list[tuple[str, str, bool]] | None
    ) -> tuple[TableChange, list[str]]:
        name, ref = contract.qualified_name, table_ref(contract)
        if current is None:
            statements = [f"CREATE TABLE {ref} (" + ", ".join(_column_ddl(c) for c in contract.columns) + ")",
                          f"COMMENT ON TABLE {ref} IS {_literal(contract.description)}"]
            statements += [self._comment(ref, c) for c in contract.columns if c.description]
            return TableChange(name, "created"), statements
        have = {column: (data_type, nullable) for column, data_type, nullable in current}
        extra = sorted(set(have) - set(contract.column_names))
        if extra:
            raise ContractError(
                f"{name}: the DuckDB table has column(s) {extra} that the contract no longer has; "
                "restore them in the contract, or drop them from the table deliberately"
            )
        statements = []
        added: list[str] = []
        rows: int | None = None
        for col in contract.columns:
            expected = self._canonical_type(duckdb_type(col))
            if col.name not in have:
                if col.required:
                    rows = rows if rows is not None else self._count(ref)
                    if rows:
                        raise ContractError(
                            f"{name}: new column {col.name!r} is REQUIRED but the table already has {rows} rows; "
                            "add it as NULLABLE (and backfill it) instead"
                        )
                statements.append(f"ALTER TABLE {ref} ADD COLUMN {_ident(col.name)} {duckdb_type(col)}")
                if col.required:
                    statements.append(f"ALTER TABLE {ref} ALTER COLUMN {_ident(col.name)} SET NOT NULL")
                if col.description:
                    statements.append(self._comment(ref, col))
                added.append(col.name)
                continue
            data_type, nullable = have[col.name]
            if data_type != expected:
                raise ContractError(
                    f"{name}.{col.name}: the table has type {data_type} but the contract says {col.type} "
                    f"({expected}); a type change needs a deliberate migration"
                )
            if nullable == col.required:
                raise ContractError(
                    f"{name}.{col.name}: the table's column is {'NULLABLE' if nullable else 'REQUIRED'} but the "
                    f"contract says {col.mode}; a mode change needs a deliberate migration"
                )
        if added:
            return TableChange(name, "columns_added", tuple(added)), statements
        return TableChange(name, "unchanged"), []

    @staticmethod
    def _comment(ref: str, col: Column) -> str:
        return f"COMMENT ON COLUMN {ref}.{_ident(col.name)} IS {_literal(col.description)}"

    def _canonical_type(self, type_sql: str) -> str:
        """DuckDB's own spelling of a type, as `duckdb_columns()` reports it."""
        if type_sql not in self._types:
            row = self.connection.execute(f"SELECT typeof(CAST(NULL AS {type_sql}))").fetchone()
            assert row is not None
            self._types[type_sql] = str(row[0])
        return self._types[type_sql]

    def _count(self, ref: str) -> int:
        row = self.connection.execute(f"SELECT count(*) FROM {ref}").fetchone()
        return int(row[0]) if row else 0

    # -- writes ----------------------------------------------------------------------------------------
    @_released
    def replace_partitions(self, table: str, rows: Rows, dates: Iterable[date] | None) -> int:
        contract = self.contract(table)
        if dates is None:
            return self._write(contract, rows, delete=(f"DELETE FROM {table_ref(contract)}", None))
        days = _as_dates(contract, dates)
        field = contract.partition_field
        if field is None:
            raise ContractError(f"{table} is not partitioned: replace it whole with dates=None")
        col = contract.column(field)
        target = _ident(field) if col.type == "DATE" else f"CAST({_ident(field)} AS DATE)"
        keys = pa.table({"v": pa.array(sorted(days), type=pa.date32())})
        delete = f"DELETE FROM {table_ref(contract)} WHERE {target} IN (SELECT v FROM {_KEYS_VIEW})"
        return self._write(contract, rows, delete=(delete, keys), dates=days)

    @_released
    def replace_where(self, table: str, rows: Rows, key: Mapping[str, Sequence[Any]]) -> int:
        contract = self.contract(table)
        if not key:
            raise ContractError(f"replace_where({table!r}) needs at least one key column")
        columns: dict[str, pa.Array] = {}
        for name, values in key.items():
            col = contract.column(name)
            if col.repeated or col.type in ("RECORD", "JSON"):
                raise ContractError(f"{table}.{name}: a {col.mode} {col.type} column cannot be a replace key")
            if isinstance(values, str | bytes) or not isinstance(values, Sequence | set | frozenset):
                raise ContractError(f"replace_where({table!r}): key {name!r} needs a list of values, got {values!r}")
            try:
                columns[name] = pa.array(list(values), type=arrow.arrow_type(col))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise ContractError(f"replace_where({table!r}): key {name!r} values do not fit {col.type}: {exc}") \
                    from None
        conditions = " AND ".join(
            f"{_ident(name)} IN (SELECT {_ident(name)} FROM {_KEYS_VIEW} WHERE {_ident(name)} IS NOT NULL)"
            for name in columns
        )
        # One keys table per column would need several views; a wide table padded with NULLs does it in one.
        width = max(len(a) for a in columns.values())
        keys = pa.table({n: pa.concat_arrays([a, pa.nulls(width - len(a), type=a.type)]) for n, a in columns.items()})
        delete = f"DELETE FROM {table_ref(contract)} WHERE {conditions}"
        return self._write(contract, rows, delete=(delete, keys), key=columns)

    @_released
    def append_rows(self, table: str, rows: Rows) -> int:
        return self._write(self.contract(table), rows, delete=None)

    def _write(
        self,
        contract: TableContract,
        rows: Rows,
        *,
        delete: tuple[str, pa.Table | None] | None,
        dates: set[date] | None = None,
        key: Mapping[str, pa.Array] | None = None,
    ) -> int:
        """Check and stage every page, then BEGIN; delete; insert; COMMIT. Any exception: ROLLBACK, re-raise.

        Pages are validated as they arrive and staged (as Arrow, in memory for a small write, else as Parquet
        files next to the warehouse) before the transaction starts: DuckDB keeps the Arrow buffers of
        uncommitted appends alive until COMMIT, so inserting page by page inside the transaction would
        hold the whole write in memory (measured: ~190 MiB for 730k rows of 27 columns). The table is
        only touched once all rows are known to be good, in one short transaction.
        """
        ref = table_ref(contract)
        with _Stage(self.path.parent) as stage:
            for page in arrow.iter_pages(rows):
                data = arrow.page_to_table(contract, page, first_row=stage.rows + 1)
                if dates is not None:
                    arrow.check_partitions(contract, data, dates, first_row=stage.rows + 1)
                if key:
                    _check_key(contract, data, key, first_row=stage.rows + 1)
                stage.add(data)
            stage.finish()
            con = self._writable()  # opened only now: staging (the extraction) never holds the file
            with self._lean_bulk_insert(bool(stage.files)):
                con.execute("BEGIN TRANSACTION")
                try:
                    if delete is not None:
                        statement, keys = delete
                        self._run_with_view(statement, _KEYS_VIEW, keys)
                    if stage.memory is not None:
                        self._run_with_view(f"INSERT INTO {ref} BY NAME SELECT * FROM {_PAGE_VIEW}", _PAGE_VIEW,
                                            stage.memory)
                    elif stage.files:
                        self._execute(f"INSERT INTO {ref} BY NAME SELECT * FROM read_parquet($files)",
                                      {"files": [str(f) for f in stage.files]})
                    con.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
        log.info("%s: wrote %s rows", contract.qualified_name, stage.rows)
        return stage.rows

    @contextlib.contextmanager
    def _lean_bulk_insert(self, bulk: bool) -> Iterator[None]:
        """Around a transaction that inserts staged files: a small buffer pool, no insertion order to keep,
        and a checkpoint before the settings are restored.

        Measured on a year of Cursor usage (490k rows from Parquet): 192 MB and ordered 1.0 s and +66 MiB
        of RSS; 32 MB and unordered 0.8 s and +42 MiB. Rows of a table have no order to keep anyway.
        The checkpoint writes the insert from the write-ahead log into the file under the same small
        pool; left to the file's close, it ran with the full pool and added up to 50 MiB to the task's
        peak (peaks of 6 runs: 299-311 MiB with it, 311-351 without). Settings change outside the
        transaction (an aborted one refuses them); a failed transaction skips the checkpoint.
        """
        if not bulk:
            yield
            return
        con = self.connection
        con.execute(f"SET memory_limit = {_literal(BULK_INSERT_MEMORY_LIMIT)}")
        con.execute("SET preserve_insertion_order = false")
        try:
            yield
            con.execute("CHECKPOINT")
        finally:
            con.execute("RESET preserve_insertion_order")
            if self.memory_limit:
                con.execute(f"SET memory_limit = {_literal(self.memory_limit)}")
            else:
                con.execute("RESET memory_limit")

    def _execute(self, statement: str, params: Mapping[str, Any] | None = None) -> None:
        try:
            self.connection.execute(statement, params)
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB refused {statement.split(' WHERE')[0]!r}: {exc}") from exc

    def _run_with_view(self, statement: str, view: str, data: pa.Table | None) -> None:
        """Run `statement` with the Arrow table `data` visible under the name `view`."""
        con = self.connection
        if data is not None:
            con.register(view, data)
        try:
            self._execute(statement)
        finally:
            if data is not None:
                con.unregister(view)

    def _rollback(self) -> None:
        try:
            self.connection.execute("ROLLBACK")
        except duckdb.Error as exc:  # the original exception matters more; keep it
            log.warning("ROLLBACK failed on %s: %s", self.path, exc)

    # -- reads and SQL ---------------------------------------------------------------------------------
    @_released
    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        # Imported here: sqlglot costs every ingest task's process ~0.35 s and only queries need it.
        from ai_usage.warehouse import transpile

        translation = transpile.translate(sql)
        args = _bind(translation, params)
        try:
            cursor = self.connection.execute(translation.sql, args)
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB failed to run the query: {exc}\n-- as run on DuckDB:\n{translation.sql}") \
                from exc
        if not translation.returns_rows:
            result = cursor.fetchall()
            log.info("statement affected %s rows", result[0][0] if result and result[0] else "no")
            return []
        names = [d[0] for d in cursor.description or ()]
        types = [str(d[1]) for d in cursor.description or ()]
        converters = {i: _CONVERTERS[t] for i, t in enumerate(types) if t in _CONVERTERS}
        out = []
        for row in cursor.fetchall():
            values = list(row)
            for i, convert in converters.items():
                if values[i] is not None:
                    values[i] = convert(values[i])
            out.append(dict(zip(names, values, strict=True)))
        return out

    @_released
    def run_sql_file(self, path: str | Path, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        log.info("running SQL file %s on DuckDB", path)
        from ai_usage.warehouse.sql import load_sql_file

        return self.query(load_sql_file(path), params)

    @_released
    def inventory(self) -> list[TableInventory]:
        existing = self._existing_tables()
        out = []
        for name, contract in sorted(self.contracts().items()):
            if (contract.dataset, contract.name) not in existing:
                continue
            ref = table_ref(contract)
            field = contract.partition_field
            if field is None:
                out.append(TableInventory(name, self._count(ref), None, None, None, None))
                continue
            day = _ident(field) if contract.column(field).type == "DATE" else f"CAST({_ident(field)} AS DATE)"
            row = self.connection.execute(
                f"SELECT count(*), min({day}), max({day}), count(DISTINCT {day}) FROM {ref}"
            ).fetchone()
            assert row is not None
            out.append(TableInventory(name, int(row[0]), field, row[1], row[2], int(row[3])))
        return out


# --------------------------------------------------------------------------- helpers


class _Stage:
    """Checked pages waiting for the transaction, as Arrow (compact, unlike the rows they came from).

    Small pages are gathered into Parquet files of about `arrow.PAGE_ROWS` rows; a write that never
    reaches that size stays in memory and is inserted from there.
    """

    def __init__(self, parent: Path):
        self.parent = parent
        self.rows = 0
        self.memory: pa.Table | None = None
        self.files: list[Path] = []
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def add(self, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        self.rows += data.num_rows
        self._pending.append(data)
        self._pending_rows += data.num_rows
        if self._pending_rows >= arrow.PAGE_ROWS:
            self._spill()

    def finish(self) -> None:
        """After the last page: what is still pending goes to memory (no file yet) or to a last file."""
        if not self._pending:
            return
        if self.files:
            self._spill()
        else:
            self.memory = pa.concat_tables(self._pending)
            self._pending, self._pending_rows = [], 0

    def _spill(self) -> None:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix=".ai_usage_staging_", dir=self.parent)
        path = Path(self._dir.name) / f"page_{len(self.files):06d}.parquet"
        pq.write_table(pa.concat_tables(self._pending), path)
        self.files.append(path)
        self._pending, self._pending_rows = [], 0

    def __enter__(self) -> _Stage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.memory = None
        self._pending = []
        if self._dir is not None:
            self._dir.cleanup()


def _as_dates(contract: TableContract, dates: Iterable[date]) -> set[date]:
    days = set()
    for d in dates:
        if not isinstance(d, date) or isinstance(d, datetime):
            raise ContractError(f"{contract.qualified_name}: partition dates must be datetime.date, got {d!r}")
        days.add(d)
    return days


def _check_key(contract: TableContract, data: pa.Table, key: Mapping[str, pa.Array], *, first_row: int) -> None:
    """replace_where: every inserted row must carry one of the key values it replaces (idempotence)."""
    for name, values in key.items():
        inside = pc.fill_null(pc.is_in(data.column(name), value_set=values), False)
        if not pc.all(inside).as_py():
            bad = pc.indices_nonzero(pc.invert(inside))[0].as_py()
            raise ContractError(
                f"{contract.qualified_name} row {first_row + bad}: {name}={data.column(name)[bad].as_py()!r} is not "
                f"among the key values being replaced"
            )


def _bind(translation: Translation, params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Named parameters the statement uses; a missing one is an error, unused extras are ignored."""
    params = params or {}
    missing = [p for p in translation.parameters if p not in params]
    if missing:
        raise WarehouseError(f"the SQL needs parameter(s) {['@' + m for m in missing]}; pass them in params")
    return {p: params[p] for p in translation.parameters} or None


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "JSON": json.loads,
    "TIMESTAMP WITH TIME ZONE": lambda v: v.astimezone(UTC),
}
