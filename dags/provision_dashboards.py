"""
### provision_dashboards

Creates or updates the four **Metabase** dashboards from the specs in `include/dashboards` through
Metabase's REST API (Connection `metabase_default`: host, login, password — or an API key as password
with an empty login):

| task | what |
|---|---|
| `validate_specs` | loads every spec strictly: cards read the marts only, filters exist, layout fits |
| `export_marts` | DuckDB only: writes the marts-only copy Metabase's DuckDB driver reads (storage v1.4.0); BigQuery: nothing |
| `provision` | database connection (marts only), groups Finance / Engineering Leadership / Admins, a collection per audience, native-query cards, dashboards with wired filters, data and collection permissions, the monthly e-mail subscription of Cost Allocation to Finance |

**Idempotent**: each object is compared with what Metabase has and only differences are written, so a
second run changes nothing; cards and dashboards are found by the `[ai-usage:<key>]` marker in their
description, so a renamed card is updated, not duplicated; one removed from the specs is archived.

**When to run it**: after changing `include/dashboards` (manual trigger; `schedule=None` on purpose,
so a deployment without Metabase never alerts), and on DuckDB after each marts refresh to refresh the
copy Metabase reads. Conf `{"update_credentials": true}` also re-sends the warehouse credentials (after
rotating the BigQuery service-account key in the connection's extra).

**Access**: Finance and Engineering Leadership see the marts only — the Metabase database is a
marts-only connection (BigQuery dataset filter `<prefix>_marts`; DuckDB marts export) — with the query
builder (no SQL) and CSV / XLSX downloads; raw and ref data never reach Metabase.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, get_current_context, task

from ai_usage.dag_defaults import default_args


@dag(
    dag_id="provision_dashboards",
    schedule=None,  # manual / on change of include/dashboards
    start_date=datetime(2025, 1, 1),
    catchup=False,  # nothing is per-interval: each run provisions the current specs
    max_active_runs=1,  # two runs at once would race on the same Metabase objects
    default_args=default_args(),
    tags=["ai-usage", "dashboards", "metabase"],
    doc_md=__doc__,
)
def provision_dashboards() -> None:
    @task
    def validate_specs() -> dict:
        from ai_usage.dashboards import service

        return service.validate_specs()

    @task
    def export_marts() -> dict | None:
        from ai_usage.dashboards import service

        return service.export_for_metabase()

    @task
    def provision() -> dict:
        from ai_usage.dashboards import service

        conf = get_current_context()["dag_run"].conf or {}
        return service.provision(update_credentials=bool(conf.get("update_credentials", False)))

    validate_specs() >> export_marts() >> provision()


provision_dashboards()
