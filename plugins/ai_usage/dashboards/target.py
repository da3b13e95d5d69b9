"""The warehouse connection Metabase is given, per backend, and the SQL dialect its cards are written in.

Metabase sees the **marts only**, so no dashboard, question or ad-hoc query can reach raw or ref data
(e-mails in the vendor exports, API keys, the people directory):

- **BigQuery** (production): engine ``bigquery-cloud-sdk`` with a dataset filter that includes the
  ``<prefix>_marts`` dataset alone (https://www.metabase.com/docs/latest/databases/connections/bigquery),
  authenticated as a service account that should hold BigQuery Data Viewer on that dataset only.
  Cards are the BigQuery SQL of the specs with ``marts.`` re-pointed at ``<prefix>_marts``.
- **DuckDB** (local docker-compose): engine ``duckdb`` (MotherDuck's Metabase driver, connection
  properties ``database_file`` and ``read_only``) on a file holding a copy of the marts schema only,
  written by `ai_usage.dashboards.export` in a storage format the driver's DuckDB 1.x can read. Cards are
  the specs' SQL transpiled to DuckDB with the optional clauses kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_usage import settings
from ai_usage.dashboards.template import Template
from ai_usage.exceptions import ConfigurationError
from ai_usage.warehouse.contracts import DATASETS

# Not "marts.duckdb": DuckDB names the catalog after the file, and a catalog "marts" next to the schema
# "marts" makes every "marts.<table>" ambiguous.
DEFAULT_EXPORT = ".ai_usage/metabase/ai_usage_marts.duckdb"


def _same_dataset(name: str) -> str:
    return name


@dataclass(frozen=True)
class MetabaseTarget:
    """Engine and connection details of the Metabase database, and how card SQL is written for it."""

    engine: str
    details: Mapping[str, Any]                       # compared on every run
    secrets: Mapping[str, Any] = field(default_factory=dict)  # sent, never compared (Metabase hides them)
    dataset: Callable[[str], str] = _same_dataset
    export_path: Path | None = None                  # DuckDB: where the marts copy is written

    def native_sql(self, template: Template) -> str:
        if self.engine == "duckdb":
            return template.for_duckdb()
        return template.for_bigquery(self.dataset)


def _service_account(extra: Mapping[str, Any]) -> str:
    value = extra.get("bigquery_service_account_json")
    if not value:
        raise ConfigurationError(
            "Airflow connection 'metabase_default' needs extra.bigquery_service_account_json: the key (JSON) of "
            "the service account Metabase reads the marts dataset with (BigQuery Data Viewer on that dataset only)"
        )
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True)
    try:
        json.loads(str(value))
    except ValueError:
        raise ConfigurationError("metabase_default extra.bigquery_service_account_json is not valid JSON") from None
    return str(value)


def _path(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else settings.project_home() / path


def target_from_settings(extra: Mapping[str, Any], config: settings.WarehouseConfig | None = None) -> MetabaseTarget:
    """The target for the configured warehouse (``AI_USAGE_WAREHOUSE``) and the Metabase connection's extra."""
    config = config or settings.warehouse()
    if isinstance(config, settings.BigQueryConfig):
        marts = config.dataset("marts")
        return MetabaseTarget(
            engine="bigquery-cloud-sdk",
            details={
                "project-id": str(extra.get("bigquery_project") or config.project),
                "dataset-filters-type": "inclusion",
                "dataset-filters-patterns": marts,
            },
            secrets={"service-account-json": _service_account(extra)},
            dataset=config.dataset,
        )
    export = _path(str(extra.get("duckdb_export") or DEFAULT_EXPORT))
    database_file = str(extra.get("duckdb_file") or export)
    for name in (database_file, str(export)):
        if Path(name).stem in DATASETS:
            raise ConfigurationError(
                f"metabase_default extra: {name!r}: DuckDB names the catalog after the file, and a catalog "
                f"{Path(name).stem!r} makes '{Path(name).stem}.<table>' ambiguous; use e.g. ai_usage_marts.duckdb"
            )
    return MetabaseTarget(
        engine="duckdb",
        details={"database_file": database_file, "read_only": True},
        export_path=export,
    )
