"""Exact BigQuery job configurations and statements the backend sends; pure, so tests can assert them.

- `job_labels`: every job carries ``app: ai-usage`` plus what it touches (``table``, ``operation``) and,
  when known, ``airflow_dag`` / ``airflow_task``: job labels are what ops filter on in the console and in
  INFORMATION_SCHEMA.JOBS (https://cloud.google.com/bigquery/docs/labels-intro).
- `load_job_config`: NDJSON load with the contract's explicit schema (never autodetect).
- `merge_sql` / `delete_sql`: the single atomic DML statement that swaps staged rows into the target.
- `query_parameters`: typed ``@name`` parameters inferred from Python values.
- `inventory_select`: one exact aggregate per table (rows, first/last day, partitions) for `inventory`.
Identifiers in SQL come only from contracts (validated snake_case names) and from configuration; values
only ever travel as query parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from google.cloud import bigquery

from ai_usage.exceptions import ContractError, WarehouseError
from ai_usage.warehouse.bigquery_rows import check_value
from ai_usage.warehouse.bigquery_schema import APP_LABEL, partition_type, table_schema
from ai_usage.warehouse.contracts import TableContract

_LABEL_BAD = re.compile(r"[^a-z0-9_-]")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TABLE_PATH = re.compile(r"^[a-z0-9.:\-]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_\-]+$")
Param = bigquery.ScalarQueryParameter | bigquery.ArrayQueryParameter


# -- labels ---------------------------------------------------------------------------------------------
def label_value(value: object) -> str:
    """A BigQuery label value: lowercase letters, digits, ``_`` and ``-``, at most 63 characters."""
    return _LABEL_BAD.sub("-", str(value).lower())[:63]


def job_labels(base: Mapping[str, object] | None = None, **extra: object) -> dict[str, str]:
    """``app: ai-usage`` + `base` (e.g. airflow_dag/airflow_task) + `extra`, sanitised; None values dropped."""
    merged: dict[str, object] = {**APP_LABEL, **(base or {}), **extra}
    return {label_value(k)[:63]: label_value(v) for k, v in merged.items() if v is not None and k}


def airflow_labels(dag_id: str | None, task_id: str | None) -> dict[str, str]:
    """Labels that tie a job to the Airflow task that ran it (pass as ``BigQueryBackend(labels=...)``)."""
    return job_labels(None, airflow_dag=dag_id, airflow_task=task_id)


# -- identifiers ----------------------------------------------------------------------------------------
def quote_table(table_id: str) -> str:
    """``project.dataset.table`` as one backquoted path, after checking it holds nothing but a path."""
    if not _TABLE_PATH.match(table_id):
        raise WarehouseError(f"refusing to put {table_id!r} into SQL: not a project.dataset.table path")
    return f"`{table_id}`"


def quote_column(name: str) -> str:
    if not _IDENT.match(name):
        raise ContractError(f"refusing to put column {name!r} into SQL: not an identifier")
    return f"`{name}`"


# -- load -----------------------------------------------------------------------------------------------
def load_job_config(contract: TableContract, write_disposition: str, labels: Mapping[str, str]) -> bigquery.LoadJobConfig:
    """An NDJSON load with the explicit contract schema; unknown fields and bad rows fail the whole job.

    CREATE_NEVER: the destination (a target table, or a staging table created with its expiration)
    must already exist, so a load can never create a table without partitioning or expiration.
    """
    return bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
        schema=table_schema(contract),
        autodetect=False,
        write_disposition=write_disposition,
        create_disposition=bigquery.CreateDisposition.CREATE_NEVER,
        ignore_unknown_values=False,
        max_bad_records=0,
        labels=dict(labels),
    )


# -- DML ------------------------------------------------------------------------------------------------
def _partition_predicate(contract: TableContract, alias: str) -> str:
    """``T.usage_date IN UNNEST(@dates)``; TIMESTAMP/DATETIME fields compare their (UTC) DATE."""
    pfield = contract.partition_field
    if pfield is None:
        raise ContractError(f"{contract.qualified_name} has no partition field; pass dates=None")
    column = f"{alias}.{quote_column(pfield)}"
    if contract.column(pfield).type != "DATE":
        column = f"DATE({column})"  # DATE(TIMESTAMP) is the UTC day
    return f"{column} IN UNNEST(@dates)"


def _key_predicate(contract: TableContract, key: Mapping[str, Sequence[Any]], alias: str) -> str:
    parts = []
    for i, name in enumerate(key):
        contract.column(name)  # raises ContractError for an unknown column
        parts.append(f"{alias}.{quote_column(name)} IN UNNEST(@key_{i})")
    if not parts:
        raise ContractError("replace_where needs at least one key column")
    return " AND ".join(parts)


def merge_sql(
    contract: TableContract,
    target_id: str,
    staging_id: str,
    *,
    dates: bool = False,
    key: Mapping[str, Sequence[Any]] | None = None,
) -> str:
    """One MERGE that deletes the rows being replaced and inserts the staged rows, atomically.

    ``ON FALSE`` makes every target row "not matched by source" and every staged row "not matched":
    the DELETE branch removes the target rows in scope (the partitions in ``@dates``, the rows matching
    the key, or all rows), the INSERT branch adds every staged row. One DML statement commits or fails
    as a whole (https://cloud.google.com/bigquery/docs/reference/standard-sql/dml-syntax#merge_statement).
    """
    if dates and key is not None:
        raise ValueError("scope the replacement by dates or by key, not both")
    if dates:
        scope = f" AND {_partition_predicate(contract, 'T')}"
    elif key is not None:
        scope = f" AND {_key_predicate(contract, key, 'T')}"
    else:
        scope = ""
    cols = [quote_column(c) for c in contract.column_names]
    return (
        f"MERGE {quote_table(target_id)} AS T\n"
        f"USING {quote_table(staging_id)} AS S\n"
        "ON FALSE\n"
        f"WHEN NOT MATCHED BY SOURCE{scope} THEN DELETE\n"
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(cols)})\n"
        f"  VALUES ({', '.join('S.' + c for c in cols)})"
    )


def delete_sql(
    contract: TableContract, target_id: str, *, dates: bool = False, key: Mapping[str, Sequence[Any]] | None = None
) -> str:
    """Replacing with zero rows is a plain DELETE of the scope: one statement, no staging needed."""
    if dates:
        where = _partition_predicate(contract, "T")
    elif key is not None:
        where = _key_predicate(contract, key, "T")
    else:
        where = "TRUE"
    return f"DELETE FROM {quote_table(target_id)} AS T\nWHERE {where}"


def scope_parameters(
    contract: TableContract,
    *,
    dates: Sequence[date] | None = None,
    key: Mapping[str, Sequence[Any]] | None = None,
) -> list[Param]:
    """``@dates`` (ARRAY<DATE>) or ``@key_<i>`` arrays typed by the key column's contract type."""
    if dates is not None:
        return [bigquery.ArrayQueryParameter("dates", "DATE", sorted(dates))]
    params: list[Param] = []
    for i, (name, values) in enumerate((key or {}).items()):
        col = contract.column(name)
        if col.repeated or col.type in ("RECORD", "JSON"):
            raise ContractError(f"{contract.qualified_name}.{name}: a {col.mode} {col.type} cannot be a key")
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise ContractError(f"replace_where key {name!r} needs a list of values, got {values!r}")
        for v in values:
            check_value(v, col, f"{contract.qualified_name} key {name}")
        params.append(bigquery.ArrayQueryParameter(
            f"key_{i}", col.type, [_param_value(v, col.type) for v in values]
        ))
    return params


def dml_job_config(params: Sequence[Param], labels: Mapping[str, str]) -> bigquery.QueryJobConfig:
    return bigquery.QueryJobConfig(query_parameters=list(params), labels=dict(labels), use_legacy_sql=False)


# -- query parameters -----------------------------------------------------------------------------------
def _decimal_type(values: Sequence[Decimal]) -> str:
    """NUMERIC when every value fits NUMERIC(38, 9) exactly, else BIGNUMERIC."""
    for v in values:
        _, digits, exponent = v.as_tuple()
        assert isinstance(exponent, int)
        frac = max(0, -exponent)
        whole = max(0, len(digits) + exponent)
        if frac > 9 or whole > 29:
            return "BIGNUMERIC"
    return "NUMERIC"


def _scalar_type(value: Any, name: str) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise WarehouseError(f"query parameter @{name}: {value} is not a finite NUMERIC")
        return _decimal_type([value])
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, bytes):
        return "BYTES"
    if isinstance(value, datetime):
        # Aware → TIMESTAMP (an instant); naive → DATETIME (civil time), never reinterpreted in a zone.
        return "TIMESTAMP" if value.tzinfo is not None and value.utcoffset() is not None else "DATETIME"
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, time):
        return "TIME"
    raise WarehouseError(
        f"query parameter @{name}: cannot infer a BigQuery type for {type(value).__name__} {value!r}; "
        "pass a google.cloud.bigquery ScalarQueryParameter/ArrayQueryParameter instead"
    )


def _param_value(value: Any, type_: str) -> Any:
    """Decimals travel as plain decimal strings (``0.000000001``, never ``1E-9`` or a float)."""
    if isinstance(value, Decimal) and type_ in ("NUMERIC", "BIGNUMERIC"):
        return format(value, "f")
    return value


def query_parameter(name: str, value: Any) -> Param:
    """One typed ``@name`` parameter; lists and tuples become ARRAY<type of their elements>."""
    if isinstance(value, bigquery.ScalarQueryParameter | bigquery.ArrayQueryParameter):
        return value
    if value is None:
        raise WarehouseError(
            f"query parameter @{name} is None: BigQuery needs a type for NULL; pass a "
            "ScalarQueryParameter with the type"
        )
    if isinstance(value, list | tuple):
        if not value:
            raise WarehouseError(f"query parameter @{name} is an empty list: its element type is unknown; "
                                 "pass an ArrayQueryParameter with the type")
        if any(v is None for v in value):
            raise WarehouseError(f"query parameter @{name}: BigQuery arrays cannot hold NULL")
        types = {_scalar_type(v, name) for v in value}
        if types <= {"NUMERIC", "BIGNUMERIC"}:
            types = {_decimal_type(value)}
        if len(types) != 1:
            raise WarehouseError(f"query parameter @{name} mixes types {sorted(types)}")
        type_ = types.pop()
        return bigquery.ArrayQueryParameter(name, type_, [_param_value(v, type_) for v in value])
    type_ = _scalar_type(value, name)
    return bigquery.ScalarQueryParameter(name, type_, _param_value(value, type_))


def query_parameters(params: Mapping[str, Any] | None) -> list[Param]:
    return [query_parameter(k, v) for k, v in (params or {}).items()]


def query_job_config(params: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bigquery.QueryJobConfig:
    """The QueryJobConfig of `query` / `run_sql_file`. ``.to_api_repr()`` is the REST ``configuration``
    that a ``BigQueryInsertJobOperator`` over the same SQL file takes."""
    return bigquery.QueryJobConfig(
        query_parameters=query_parameters(params), labels=dict(labels), use_legacy_sql=False
    )


# -- inventory ------------------------------------------------------------------------------------------
def inventory_select(index: int, contract: TableContract, table_id: str) -> str:
    """One branch of the inventory UNION ALL: ``i`` (the contract's index), row count, min/max day, partitions."""
    src = quote_table(table_id)
    pfield = contract.partition_field
    if pfield is None:
        return (f"SELECT {index} AS i, COUNT(*) AS row_count, CAST(NULL AS DATE) AS min_date, "
                f"CAST(NULL AS DATE) AS max_date, CAST(NULL AS INT64) AS partitions FROM {src}")
    col = quote_column(pfield)
    day = col if contract.column(pfield).type == "DATE" else f"DATE({col})"
    unit = partition_type(contract)
    part = {
        "DAY": day,
        "MONTH": f"DATE_TRUNC({day}, MONTH)",
        "YEAR": f"DATE_TRUNC({day}, YEAR)",
        "HOUR": f"TIMESTAMP_TRUNC(TIMESTAMP({col}), HOUR)",
    }[unit or "DAY"]
    return (f"SELECT {index} AS i, COUNT(*) AS row_count, MIN({day}) AS min_date, MAX({day}) AS max_date, "
            f"COUNT(DISTINCT {part}) AS partitions FROM {src}")
