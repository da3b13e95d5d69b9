"""Table contracts as BigQuery tables: schema fields, partitioning, clustering, and schema drift.

Pure functions (no API calls) so tests can assert the exact definitions the backend sends.

Partitioning: DAY on the contract's partition field, unless the contract's ``timePartitioning.type`` says
otherwise. Month tables (``month`` = the DATE of the month's first day) are DAY-partitioned too: every
row of a month lands in one daily partition, so pruning and partition counts are the same as with MONTH
partitioning, while every table keeps one partition granularity, one ``$YYYYMMDD`` decorator form and one
replace path. A contract that explicitly asks for MONTH gets MONTH.
"""

from __future__ import annotations

from typing import Any

from google.cloud import bigquery

from ai_usage.exceptions import ContractError
from ai_usage.warehouse.contracts import Column, TableContract

APP_LABEL = {"app": "ai-usage"}
_LEGACY = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "STRUCT": "RECORD"}
_PARTITION_TYPES = {"DAY", "HOUR", "MONTH", "YEAR"}


def schema_field(col: Column) -> bigquery.SchemaField:
    """One contract column as a SchemaField, with description, precision/scale and nested fields."""
    extra: dict[str, Any] = {}
    if col.precision is not None:
        extra["precision"] = col.precision
    if col.scale is not None:
        extra["scale"] = col.scale
    if col.description:
        extra["description"] = col.description
    return bigquery.SchemaField(
        col.name, col.type, mode=col.mode,
        fields=[schema_field(f) for f in col.fields], **extra,
    )


def table_schema(contract: TableContract) -> list[bigquery.SchemaField]:
    return [schema_field(c) for c in contract.columns]


def partition_type(contract: TableContract) -> str | None:
    """BigQuery's time-partitioning type for the contract (None when unpartitioned)."""
    if contract.partition_field is None:
        return None
    type_ = str((contract.raw.get("timePartitioning") or {}).get("type") or "DAY").upper()
    if type_ not in _PARTITION_TYPES:
        raise ContractError(f"{contract.qualified_name}: timePartitioning.type {type_!r} is not one of "
                            f"{sorted(_PARTITION_TYPES)}")
    return type_


def table_definition(contract: TableContract, table_id: str) -> bigquery.Table:
    """The table `ensure_tables` creates: explicit schema, time partitioning, clustering, labels."""
    table = bigquery.Table(table_id, schema=table_schema(contract))
    table.description = contract.description
    table.labels = {**{str(k): str(v) for k, v in (contract.raw.get("labels") or {}).items()}, **APP_LABEL}
    ptype = partition_type(contract)
    if ptype is not None:
        table.time_partitioning = bigquery.TimePartitioning(type_=ptype, field=contract.partition_field)
        # Off on purpose: ad-hoc queries and dashboards must not need a partition filter to work.
        table.require_partition_filter = False
    if contract.clustering:
        table.clustering_fields = list(contract.clustering)
    return table


def staging_definition(contract: TableContract, table_id: str, expires: Any) -> bigquery.Table:
    """A plain (unpartitioned) table with the contract's schema that BigQuery deletes at `expires`.

    The expiration is the safety net for a worker killed before it could drop its staging table.
    """
    table = bigquery.Table(table_id, schema=table_schema(contract))
    table.expires = expires
    table.labels = {**APP_LABEL, "role": "staging"}
    table.description = f"Staging for {contract.qualified_name}; dropped after the MERGE, expires anyway."
    return table


def _canonical(type_: str | None) -> str:
    t = (type_ or "").upper()
    return _LEGACY.get(t, t)


# Effective (precision, scale) of an unparameterised NUMERIC / BIGNUMERIC
# (https://cloud.google.com/bigquery/docs/reference/standard-sql/data-types#parameterized_decimal_type).
_DECIMAL_DEFAULTS = {"NUMERIC": (38, 9), "BIGNUMERIC": (76, 38)}


def _decimal_params(type_: str, precision: int | None, scale: int | None) -> tuple[int | None, int | None]:
    """NUMERIC and NUMERIC(38, 9) are the same type; a precision without scale means scale 0."""
    if type_ not in _DECIMAL_DEFAULTS:
        return precision, scale
    if precision is None and scale is None:
        return _DECIMAL_DEFAULTS[type_]
    return precision, scale or 0


def _signature(f: bigquery.SchemaField) -> tuple[Any, ...]:
    """What must match between a live field and the contract (descriptions may differ)."""
    type_ = _canonical(f.field_type)
    return (
        f.name,
        type_,
        (f.mode or "NULLABLE").upper(),
        *_decimal_params(type_, f.precision, f.scale),
        tuple(_signature(s) for s in f.fields),
    )


def added_columns(contract: TableContract, live: bigquery.Table) -> list[bigquery.SchemaField]:
    """Contract columns missing from the live table, which may be added (NULLABLE only).

    Anything else that differs (a dropped, retyped or re-moded column, a changed nested field, other
    partitioning or clustering) raises ContractError: BigQuery cannot apply it in place, and
    silently living with it would load data the contract does not describe.
    """
    name = contract.qualified_name
    live_fields = {f.name: f for f in live.schema}
    wanted = {f.name: f for f in table_schema(contract)}
    problems = [f"column {n!r} exists in the table but not in the contract" for n in live_fields if n not in wanted]
    added: list[bigquery.SchemaField] = []
    for n, f in wanted.items():
        if n not in live_fields:
            if f.mode == "NULLABLE":
                added.append(f)
            else:
                problems.append(f"new column {n!r} is {f.mode}; only NULLABLE columns can be added")
        elif _signature(live_fields[n]) != _signature(f):
            problems.append(f"column {n!r} is {_describe(live_fields[n])} in the table but "
                            f"{_describe(f)} in the contract")
    live_tp = live.time_partitioning
    live_part = (live_tp.field, (live_tp.type_ or "DAY").upper()) if live_tp else None
    want_part = (contract.partition_field, partition_type(contract)) if contract.partition_field else None
    if live_part != want_part:
        problems.append(f"partitioning is {live_part} in the table but {want_part} in the contract")
    if tuple(live.clustering_fields or ()) != contract.clustering:
        problems.append(f"clustering is {list(live.clustering_fields or ())} in the table but "
                        f"{list(contract.clustering)} in the contract")
    if problems:
        raise ContractError(f"{name} drifted from its contract (fix the contract or migrate the table): "
                            + "; ".join(problems))
    return added


def _describe(f: bigquery.SchemaField) -> str:
    sig = _signature(f)
    params = f"({sig[3]},{sig[4]})" if sig[3] is not None else ""
    nested = f"<{', '.join(s.name for s in f.fields)}>" if f.fields else ""
    return f"{sig[2]} {sig[1]}{params}{nested}"
