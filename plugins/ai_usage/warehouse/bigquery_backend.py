"""BigQuery backend of the warehouse interface (production), through the Google provider's client.

How writes stay atomic and idempotent. ``replace_partitions`` must replace *several* date partitions
all-or-nothing. A load job with WRITE_TRUNCATE into each ``table$YYYYMMDD`` decorator is atomic per
partition only: a failure on the third day of a week leaves two new days and five old ones, and a day
with no new rows would keep its old rows. So every replacement is:

1. validate each row against the contract and stream it into a spooled NDJSON file (bounded memory,
   then disk); a bad row raises ContractError before anything is sent, and so does an exception raised
   by the rows iterator itself;
2. create ``<dataset>._stg_<table>_<uuid>`` with the contract's schema and a one-day expiration (the
   safety net if the worker dies), then one load job (WRITE_TRUNCATE, explicit schema) into it;
3. one ``MERGE … ON FALSE`` that deletes the target rows in scope (``@dates`` partitions, the
   ``replace_where`` key, or the whole table) and inserts the staged rows: a single DML statement,
   committed or rolled back as a whole;
4. drop the staging table (``finally``, also when the load or the MERGE failed).
Replacing with zero rows is one DELETE of the scope. ``append_rows`` is one load job with WRITE_APPEND,
which is atomic by itself. Re-running any call with the same input yields the same table content.

What the BigQuery path is and is not verified against. Unit tests assert the exact job
configurations, table resources, MERGE/DELETE statements (parsed as BigQuery with sqlglot), query
parameter typing and row encoding. Over real HTTP, the real ``google-cloud-bigquery`` client runs every
method against a loopback stub of the BigQuery REST API (datasets, tables, jobs including the multipart
and resumable uploads of load jobs, query results, and an OAuth2 token endpoint); the tests assert what
reached the wire (destinations, dispositions, schemas, partitioning, clustering, labels, uploaded NDJSON,
the MERGE and its typed parameters), that staging tables are dropped when a load or the MERGE fails, that
nothing is sent for rows that break the contract, and, through ``BigQueryHook`` with a service-account
key whose token endpoint is the stub, that the provider's own credential path signs a JWT and sends the
bearer token it gets. The stub executes no SQL. The optional bqemulator suite
(``tests/bqemulator/run.sh``) runs the same calls on an emulator that executes BigQuery SQL on DuckDB:
partitions outside the scope survive, the scope is replaced, re-runs change nothing, decimals, timestamps
and nested records round-trip exactly. Not verified offline: BigQuery's own SQL engine and type checks
(the emulator is DuckDB underneath, and needed two shims: no spatial extension, and accepting the
``*/*`` upload content type the official client sends), partition pruning and bytes billed, IAM and
real credentials (ADC / workload identity on Composer), quotas and DML concurrency (two MERGEs on the
same partitions at once may fail with a serialization error and rely on task retries). The first
deployment to a real project should run ``ensure_tables`` and one backfill under observation.
"""

from __future__ import annotations

import concurrent.futures
import logging
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from google.api_core import exceptions as gexc
from google.cloud import bigquery
from sqlglot import exp

from ai_usage import settings
from ai_usage.exceptions import ConfigurationError, ContractError, WarehouseError
from ai_usage.warehouse import bigquery_jobs as jobs
from ai_usage.warehouse.base import Rows, TableChange, TableInventory, Warehouse
from ai_usage.warehouse.bigquery_rows import Spooled, spool_rows
from ai_usage.warehouse.bigquery_schema import (
    APP_LABEL,
    added_columns,
    staging_definition,
    table_definition,
)
from ai_usage.warehouse.contracts import TableContract
from ai_usage.warehouse.sql import load_sql_file, parse_bigquery, qualify_datasets

if TYPE_CHECKING:
    from google.api_core.retry import Retry

log = logging.getLogger(__name__)

STAGING_PREFIX = "_stg_"
STAGING_TTL = timedelta(days=1)
_API_ERRORS = (gexc.GoogleAPIError, concurrent.futures.TimeoutError, requests.RequestException)


class BigQueryBackend(Warehouse):
    """The warehouse on BigQuery: datasets ``<prefix>_raw|_ref|_marts|_ops`` in ``config.project``.

    `client` is injected by tests; otherwise it comes from ``BigQueryHook(gcp_conn_id)`` on first use
    (never at import or construction, so DAG parsing touches no credentials). `labels` (e.g.
    ``jobs.airflow_labels(dag_id, task_id)``) are added to every job. `timeout` bounds each HTTP request,
    `job_timeout` the wait for one job; `retry` overrides the client's retry of API calls.
    """

    kind = "bigquery"

    def __init__(
        self,
        config: settings.BigQueryConfig,
        *,
        gcp_conn_id: str = settings.GOOGLE_CONN_ID,
        client: bigquery.Client | None = None,
        labels: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        job_timeout: float = 6 * 3600.0,
        retry: Retry | None = None,
    ) -> None:
        self.config = config
        self.gcp_conn_id = gcp_conn_id
        self._client = client
        self._owns_client = client is None
        self.labels = jobs.job_labels(labels)
        self.timeout = timeout
        self.job_timeout = job_timeout
        self.retry = retry if retry is not None else bigquery.DEFAULT_RETRY

    # -- client and names ----------------------------------------------------------------------------------
    @property
    def client(self) -> bigquery.Client:
        if self._client is None:
            from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

            hook = BigQueryHook(gcp_conn_id=self.gcp_conn_id, location=self.config.location)
            self._client = hook.get_client(project_id=self.config.project, location=self.config.location)
        return self._client

    def close(self) -> None:
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    def dataset_id(self, dataset: str) -> str:
        return f"{self.config.project}.{self.config.dataset(dataset)}"

    def table_id(self, table: str | TableContract) -> str:
        """``raw.cursor_spend`` → ``<project>.<prefix>_raw.cursor_spend``."""
        contract = table if isinstance(table, TableContract) else self.contract(table)
        return f"{self.dataset_id(contract.dataset)}.{contract.name}"

    def _labels(self, **extra: object) -> dict[str, str]:
        return jobs.job_labels(self.labels, **extra)

    @contextmanager
    def _api(self, what: str) -> Iterator[None]:
        """Turn client/transport failures into WarehouseError naming the step."""
        try:
            yield
        except (ContractError, WarehouseError, ConfigurationError):
            raise
        except _API_ERRORS as exc:
            raise WarehouseError(f"BigQuery {what} failed: {exc}") from exc

    # -- DDL -----------------------------------------------------------------------------------------------
    def ensure_tables(self, tables: Iterable[str] | None = None, *, defer: bool = False) -> list[TableChange]:
        # `defer` is for single-writer backends: BigQuery has no lock to wait for, so it ensures now.
        contracts = ([self.contract(t) for t in tables] if tables is not None
                     else list(self.contracts().values()))
        for dataset in sorted({c.dataset for c in contracts}):
            self._ensure_dataset(dataset)
        return [self._ensure_table(c) for c in contracts]

    def _ensure_dataset(self, dataset: str) -> None:
        ds_id = self.dataset_id(dataset)
        with self._api(f"dataset {ds_id}"):
            try:
                live = self.client.get_dataset(ds_id, retry=self.retry, timeout=self.timeout)
            except gexc.NotFound:
                ds = bigquery.Dataset(ds_id)
                if self.config.location:  # else BigQuery's default (US); never send an explicit null
                    ds.location = self.config.location
                ds.description = f"ai-usage: {dataset} tables (see include/schemas/{dataset})."
                ds.labels = dict(APP_LABEL)
                live = self.client.create_dataset(ds, exists_ok=True, retry=self.retry, timeout=self.timeout)
                log.info("created dataset %s in %s", ds_id, live.location)
        want = self.config.location
        if want and live.location and live.location.lower() != want.lower():
            raise ConfigurationError(
                f"dataset {ds_id} is in {live.location}, but AI_USAGE_WAREHOUSE says location={want}; "
                "jobs must run where the data is: fix the setting or move the dataset"
            )

    def _ensure_table(self, contract: TableContract) -> TableChange:
        table_id = self.table_id(contract)
        name = contract.qualified_name
        with self._api(f"table {table_id}"):
            try:
                live = self.client.get_table(table_id, retry=self.retry, timeout=self.timeout)
            except gexc.NotFound:
                try:
                    self.client.create_table(table_definition(contract, table_id), retry=self.retry,
                                             timeout=self.timeout)
                    log.info("created table %s", table_id)
                    return TableChange(name, "created")
                except gexc.Conflict:  # created concurrently: compare it like any existing table
                    live = self.client.get_table(table_id, retry=self.retry, timeout=self.timeout)
            added = added_columns(contract, live)
            if not added:
                return TableChange(name, "unchanged")
            live.schema = [*live.schema, *added]
            self.client.update_table(live, ["schema"], retry=self.retry, timeout=self.timeout)
        cols = tuple(f.name for f in added)
        log.info("added column(s) %s to %s", ", ".join(cols), table_id)
        return TableChange(name, "columns_added", cols)

    # -- writes --------------------------------------------------------------------------------------------
    def replace_partitions(self, table: str, rows: Rows, dates: Iterable[date] | None) -> int:
        contract = self.contract(table)
        days = _partition_days(contract, dates) if dates is not None else None
        spooled = spool_rows(contract, rows, dates=days)
        try:
            return self._replace(contract, spooled, "replace_partitions", dates=days)
        finally:
            spooled.close()

    def replace_where(self, table: str, rows: Rows, key: Mapping[str, Sequence[Any]]) -> int:
        """Like the interface says; also every row must match `key`, or a re-run could not delete it."""
        contract = self.contract(table)
        for name, values in key.items():
            if isinstance(values, str | bytes) or not isinstance(values, Iterable):
                raise ContractError(f"replace_where({table!r}): key {name!r} needs a list of values, got {values!r}")
        key = {k: list(v) for k, v in key.items()}
        jobs.scope_parameters(contract, key=key)  # validates columns and value types before any work

        def in_key(row: Mapping[str, Any], where: str) -> None:
            for col, values in key.items():
                if row.get(col) not in values:
                    raise ContractError(f"{where}: {col}={row.get(col)!r} is outside the key being replaced "
                                        f"{values!r}; a re-run would not replace it")

        spooled = spool_rows(contract, rows, check=in_key)
        try:
            return self._replace(contract, spooled, "replace_where", key=key)
        finally:
            spooled.close()

    def append_rows(self, table: str, rows: Rows) -> int:
        contract = self.contract(table)
        spooled = spool_rows(contract, rows)
        try:
            if spooled.rows == 0:
                return 0
            labels = self._labels(table=contract.qualified_name, operation="append_rows", step="load")
            self._load(contract, spooled, self.table_id(contract), bigquery.WriteDisposition.WRITE_APPEND, labels)
            return spooled.rows
        finally:
            spooled.close()

    def _replace(
        self,
        contract: TableContract,
        spooled: Spooled,
        operation: str,
        *,
        dates: Collection[date] | None = None,
        key: Mapping[str, Sequence[Any]] | None = None,
    ) -> int:
        target = self.table_id(contract)
        by_dates = dates is not None
        params = jobs.scope_parameters(contract, dates=sorted(dates) if dates is not None else None, key=key)
        if (by_dates and not dates) or (key is not None and any(not v for v in key.values())):
            return 0  # the scope is empty (and spool_rows made sure no row falls in it): nothing to do
        if spooled.rows == 0:
            labels = self._labels(table=contract.qualified_name, operation=operation, step="delete")
            self._run_dml(jobs.delete_sql(contract, target, dates=by_dates, key=key), params, labels)
            return 0
        staging = f"{self.dataset_id(contract.dataset)}.{STAGING_PREFIX}{contract.name}_{uuid.uuid4().hex}"
        try:
            with self._api(f"create staging table {staging}"):
                expires = datetime.now(UTC) + STAGING_TTL
                self.client.create_table(staging_definition(contract, staging, expires), retry=self.retry,
                                         timeout=self.timeout)
            labels = self._labels(table=contract.qualified_name, operation=operation, step="stage")
            self._load(contract, spooled, staging, bigquery.WriteDisposition.WRITE_TRUNCATE, labels)
            labels = self._labels(table=contract.qualified_name, operation=operation, step="merge")
            self._run_dml(jobs.merge_sql(contract, target, staging, dates=by_dates, key=key), params, labels)
        finally:
            self._drop_staging(staging)
        return spooled.rows

    def _load(self, contract: TableContract, spooled: Spooled, destination: str, disposition: str,
              labels: Mapping[str, str]) -> None:
        config = jobs.load_job_config(contract, disposition, labels)
        with self._api(f"load into {destination}"):
            job = self.client.load_table_from_file(
                spooled.file, destination, rewind=True, size=spooled.size,
                job_id_prefix=f"ai_usage_load_{contract.dataset}_{contract.name}_",
                location=self.config.location, project=self.config.project,
                job_config=config, timeout=self.timeout,
            )
            log.info("load job %s: %d row(s) into %s (%s)", job.job_id, spooled.rows, destination, disposition)
            job.result(timeout=self.job_timeout, retry=self.retry)
        if job.output_rows is not None and job.output_rows != spooled.rows:
            raise WarehouseError(f"load job {job.job_id} wrote {job.output_rows} row(s) into {destination}, "
                                 f"expected {spooled.rows}")

    def _run_dml(self, sql: str, params: Sequence[jobs.Param], labels: Mapping[str, str]) -> None:
        with self._api("DML statement"):
            job = self.client.query(
                sql, job_config=jobs.dml_job_config(params, labels),
                job_id_prefix=f"ai_usage_{labels.get('step', 'dml')}_",
                location=self.config.location, project=self.config.project,
                retry=self.retry, timeout=self.timeout,
            )
            log.info("DML job %s (%s)", job.job_id, labels)
            job.result(timeout=self.job_timeout, retry=self.retry)
        stats = job.dml_stats
        if stats is not None:
            log.info("DML job %s: %s inserted, %s deleted", job.job_id, stats.inserted_row_count,
                     stats.deleted_row_count)

    def _drop_staging(self, staging: str) -> None:
        """Best effort: a failure here must not hide the real error; the table expires in a day anyway."""
        try:
            self.client.delete_table(staging, not_found_ok=True, retry=self.retry, timeout=self.timeout)
        except Exception:  # noqa: BLE001 - logged, and the expiration cleans up
            log.warning("could not drop staging table %s (it expires by itself within %s)", staging,
                        STAGING_TTL, exc_info=True)

    # -- reads and SQL -------------------------------------------------------------------------------------
    def _prepare(self, sql: str, params: Mapping[str, Any] | None, *, check: bool = True
                 ) -> tuple[str, dict[str, Any]]:
        """Qualify the logical datasets and keep the parameters the statement uses.

        A parameter the SQL needs but `params` lacks is an error before anything is sent; unused extras
        are dropped (the DuckDB backend binds the same way, so one call works on both).
        """
        tree = qualify_datasets(parse_bigquery(sql), self.config.dataset, self.config.project)
        used = {p.name for p in tree.find_all(exp.Parameter)}
        params = params or {}
        missing = sorted(used - set(params))
        if missing and check:
            raise WarehouseError(f"the SQL needs parameter(s) {['@' + m for m in missing]}; pass them in params")
        return tree.sql(dialect="bigquery"), {k: v for k, v in params.items() if k in used}

    def render_sql(self, sql: str) -> str:
        """The statement as it runs here: logical datasets → ``project.<prefix>_<dataset>``."""
        return self._prepare(sql, None, check=False)[0]

    def insert_job_configuration(self, sql: str, params: Mapping[str, Any] | None = None,
                                 **labels: object) -> dict[str, Any]:
        """The REST ``configuration`` of a query job, e.g. for a ``BigQueryInsertJobOperator``."""
        text, used = self._prepare(sql, params)
        config = jobs.query_job_config(used, self._labels(**labels)).to_api_repr()
        config["query"]["query"] = text
        return config

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self._query(sql, params, self._labels(operation="query"))

    def run_sql_file(self, path: str | Path, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self._query(load_sql_file(path), params, self._labels(operation="sql_file", sql_file=Path(path).stem))

    def _query(self, sql: str, params: Mapping[str, Any] | None, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        text, used = self._prepare(sql, params)
        return self._run_query(text, jobs.query_job_config(used, labels))

    def _run_query(self, text: str, config: bigquery.QueryJobConfig) -> list[dict[str, Any]]:
        with self._api("query"):
            job = self.client.query(
                text, job_config=config, job_id_prefix="ai_usage_query_",
                location=self.config.location, project=self.config.project,
                retry=self.retry, timeout=self.timeout,
            )
            log.info("query job %s", job.job_id)
            result = job.result(timeout=self.job_timeout, retry=self.retry)
            return [dict(row.items()) for row in result]

    def inventory(self) -> list[TableInventory]:
        """One query over every existing contracted table: COUNT, MIN/MAX of the partition day, partitions.

        Exact (it reads the data, not partition metadata that lags behind DML); it scans only the
        partition column of each table.
        """
        present = self._existing_tables()
        contracts = [c for _, c in sorted(self.contracts().items()) if (c.dataset, c.name) in present]
        if not contracts:
            return []
        sql = "\nUNION ALL\n".join(jobs.inventory_select(i, c, self.table_id(c)) for i, c in enumerate(contracts))
        rows = self._run_query(sql, jobs.query_job_config(None, self._labels(operation="inventory")))
        by_index = {r["i"]: r for r in rows}
        out = []
        for i, c in enumerate(contracts):
            r = by_index.get(i)
            if r is None:
                raise WarehouseError(f"inventory query returned no row for {c.qualified_name}")
            out.append(TableInventory(
                table=c.qualified_name, rows=int(r["row_count"]), partition_field=c.partition_field,
                min_date=r["min_date"], max_date=r["max_date"],
                partitions=int(r["partitions"]) if r["partitions"] is not None else None,
            ))
        return out

    def _existing_tables(self) -> set[tuple[str, str]]:
        present: set[tuple[str, str]] = set()
        for dataset in sorted({c.dataset for c in self.contracts().values()}):
            with self._api(f"list tables of {self.dataset_id(dataset)}"):
                try:
                    for item in self.client.list_tables(self.dataset_id(dataset), retry=self.retry,
                                                        timeout=self.timeout):
                        present.add((dataset, item.table_id))
                except gexc.NotFound:
                    continue
        return present


def _partition_days(contract: TableContract, dates: Iterable[date]) -> set[date]:
    if contract.partition_field is None:
        raise ContractError(f"{contract.qualified_name} is not partitioned; replace it whole with dates=None")
    days = set()
    for d in dates:
        if isinstance(d, datetime) or not isinstance(d, date):
            raise ContractError(f"{contract.qualified_name}: partition dates must be datetime.date, got {d!r}")
        days.add(d)
    return days

