"""Table contracts: ``include/schemas/<dataset>/<table>.json``, the single source of truth for every table.

A contract file is the subset of BigQuery's REST ``Table`` resource that defines a table
(https://cloud.google.com/bigquery/docs/reference/rest/v2/tables#Table)::

    {
      "description": "...",
      "timePartitioning": {"type": "DAY", "field": "usage_date"},   # optional
      "clustering": {"fields": ["email"]},                            # optional
      "schema": {"fields": [                                          # BigQuery JSON schema
        {"name": "usage_date", "type": "DATE", "mode": "REQUIRED", "description": "..."},
        {"name": "amount_usd", "type": "NUMERIC", "precision": "38", "scale": "9", ...},
        {"name": "model_breakdown", "type": "RECORD", "mode": "REPEATED", "fields": [...]}
      ]},
      "x-primaryKey": ["usage_date", "email"]                         # optional: the row's key, for tests/GX
    }

The partition field (when present) is the unit `replace_partitions` replaces atomically.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ai_usage.exceptions import ContractError
from ai_usage.paths import schemas_dir

DATASETS = ("raw", "ref", "marts", "ops")
SCALAR_TYPES = {
    "STRING", "BYTES", "INT64", "INTEGER", "FLOAT64", "FLOAT", "NUMERIC", "BIGNUMERIC",
    "BOOL", "BOOLEAN", "DATE", "DATETIME", "TIME", "TIMESTAMP", "JSON",
}
MODES = {"NULLABLE", "REQUIRED", "REPEATED"}
_ALLOWED_FIELD_KEYS = {"name", "type", "mode", "description", "fields", "precision", "scale", "maxLength"}
_ALLOWED_TABLE_KEYS = {"description", "timePartitioning", "clustering", "schema", "x-primaryKey", "labels"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str                     # canonical BigQuery type: INT64, FLOAT64, BOOL, RECORD, NUMERIC, ...
    mode: str = "NULLABLE"
    description: str = ""
    precision: int | None = None  # NUMERIC / BIGNUMERIC only
    scale: int | None = None
    fields: tuple[Column, ...] = ()

    @property
    def repeated(self) -> bool:
        return self.mode == "REPEATED"

    @property
    def required(self) -> bool:
        return self.mode == "REQUIRED"

    def to_bq(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "mode": self.mode}
        if self.description:
            out["description"] = self.description
        if self.precision is not None:
            out["precision"] = str(self.precision)
        if self.scale is not None:
            out["scale"] = str(self.scale)
        if self.fields:
            out["fields"] = [f.to_bq() for f in self.fields]
        return out


@dataclass(frozen=True)
class TableContract:
    dataset: str
    name: str
    description: str
    columns: tuple[Column, ...]
    partition_field: str | None = None
    clustering: tuple[str, ...] = ()
    primary_key: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def qualified_name(self) -> str:
        """Logical name used throughout the code and SQL, e.g. ``raw.cursor_daily_usage``."""
        return f"{self.dataset}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise ContractError(f"{self.qualified_name} has no column {name!r}")


_CANONICAL = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "STRUCT": "RECORD"}


def _parse_column(spec: dict[str, Any], where: str) -> Column:
    if not isinstance(spec, dict):
        raise ContractError(f"{where}: a field must be an object, got {spec!r}")
    unknown = set(spec) - _ALLOWED_FIELD_KEYS
    if unknown:
        raise ContractError(f"{where}: unknown key(s) {sorted(unknown)} in field {spec.get('name')!r}")
    name = spec.get("name")
    if not isinstance(name, str) or not name.isidentifier() or name != name.lower() and not name.startswith("_"):
        raise ContractError(f"{where}: field name {name!r} must be a snake_case identifier")
    type_ = _CANONICAL.get(str(spec.get("type", "")).upper(), str(spec.get("type", "")).upper())
    mode = str(spec.get("mode", "NULLABLE")).upper()
    if mode not in MODES:
        raise ContractError(f"{where}.{name}: mode {mode!r} is not one of {sorted(MODES)}")
    if not spec.get("description"):
        raise ContractError(f"{where}.{name}: every column needs a description")
    fields: tuple[Column, ...] = ()
    if type_ == "RECORD":
        sub = spec.get("fields")
        if not sub:
            raise ContractError(f"{where}.{name}: a RECORD needs fields")
        fields = tuple(_parse_column(s, f"{where}.{name}") for s in sub)
    elif type_ not in _CANONICAL.values() and type_ not in SCALAR_TYPES:
        raise ContractError(f"{where}.{name}: unknown type {spec.get('type')!r}")
    precision = int(spec["precision"]) if "precision" in spec else None
    scale = int(spec["scale"]) if "scale" in spec else None
    if (precision is not None or scale is not None) and type_ not in ("NUMERIC", "BIGNUMERIC"):
        raise ContractError(f"{where}.{name}: precision/scale only apply to NUMERIC")
    if type_ == "NUMERIC" and precision is not None:
        s = scale or 0
        if not (0 <= s <= 9 and 1 <= precision - s <= 29):
            raise ContractError(f"{where}.{name}: NUMERIC({precision},{s}) is outside BigQuery's bounds")
    return Column(
        name=name, type=type_, mode=mode, description=spec.get("description", ""),
        precision=precision, scale=scale, fields=fields,
    )


def parse_contract(dataset: str, name: str, doc: dict[str, Any]) -> TableContract:
    where = f"include/schemas/{dataset}/{name}.json"
    if dataset not in DATASETS:
        raise ContractError(f"{where}: dataset must be one of {DATASETS}")
    unknown = set(doc) - _ALLOWED_TABLE_KEYS
    if unknown:
        raise ContractError(f"{where}: unknown top-level key(s) {sorted(unknown)}")
    if not doc.get("description"):
        raise ContractError(f"{where}: the table needs a description")
    fields = (doc.get("schema") or {}).get("fields")
    if not fields:
        raise ContractError(f"{where}: schema.fields is empty")
    columns = tuple(_parse_column(f, where) for f in fields)
    names = [c.name for c in columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ContractError(f"{where}: duplicate column(s) {dupes}")
    partition = (doc.get("timePartitioning") or {}).get("field")
    if partition is not None:
        col = next((c for c in columns if c.name == partition), None)
        if col is None or col.type not in ("DATE", "TIMESTAMP", "DATETIME"):
            raise ContractError(f"{where}: partition field {partition!r} must be a DATE/TIMESTAMP column")
    clustering = tuple((doc.get("clustering") or {}).get("fields") or ())
    missing = [c for c in clustering if c not in names]
    if missing or len(clustering) > 4:
        raise ContractError(f"{where}: clustering fields {clustering} must be ≤4 existing columns")
    pk = tuple(doc.get("x-primaryKey") or ())
    if any(k not in names for k in pk):
        raise ContractError(f"{where}: x-primaryKey {pk} names unknown columns")
    return TableContract(
        dataset=dataset, name=name, description=doc["description"], columns=columns,
        partition_field=partition, clustering=clustering, primary_key=pk, raw=doc,
    )


def load_contract_file(path: Path) -> TableContract:
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ContractError(f"{path}: invalid JSON: {exc}") from exc
    return parse_contract(path.parent.name, path.stem, doc)


def iter_contract_files(root: Path | None = None) -> Iterator[Path]:
    root = root or schemas_dir()
    for dataset in DATASETS:
        yield from sorted((root / dataset).glob("*.json"))


@lru_cache(maxsize=8)
def _load_all(root: str) -> dict[str, TableContract]:
    return {c.qualified_name: c for c in (load_contract_file(p) for p in iter_contract_files(Path(root)))}


def load_contracts(root: Path | None = None) -> dict[str, TableContract]:
    """Every contract, keyed by logical name (``raw.cursor_spend``)."""
    return dict(_load_all(str(root or schemas_dir())))


def get_contract(table: str, root: Path | None = None) -> TableContract:
    contracts = load_contracts(root)
    try:
        return contracts[table]
    except KeyError:
        raise ContractError(
            f"no table contract {table!r} (expected include/schemas/{table.replace('.', '/')}.json)"
        ) from None
