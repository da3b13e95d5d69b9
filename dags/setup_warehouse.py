"""
### setup_warehouse

Creates (or migrates) every table of the ledger from the table contracts in `include/schemas`, then logs an
inventory of each table: rows, partition field, first and last date.

**When to run it**: after deploying a new version (a contract may have gained columns), or to check the
configuration: its first task parses every `AI_USAGE_*` setting and fails with a message naming a bad one.
It is safe to run at any time: creating tables is idempotent and it never deletes data. The ingest DAGs
create their own tables too, so nothing depends on running this first.

**Backend**: `AI_USAGE_WAREHOUSE` (`duckdb:///…` embedded file by default, `bigquery://project?…` in production).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from ai_usage.dag_defaults import default_args


@dag(
    dag_id="setup_warehouse",
    schedule=None,  # manual: deployment step and configuration check
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,  # DDL must not race itself
    default_args=default_args(),
    tags=["ai-usage", "setup", "warehouse"],
    doc_md=__doc__,
)
def setup_warehouse() -> None:
    @task
    def check_settings() -> dict[str, str]:
        from ai_usage import bootstrap

        return bootstrap.check_settings()

    @task
    def ensure_tables() -> list[dict]:
        from ai_usage import bootstrap

        return bootstrap.ensure_tables()

    @task
    def inventory() -> list[dict]:
        from ai_usage import bootstrap

        return bootstrap.log_inventory()

    check_settings() >> ensure_tables() >> inventory()


setup_warehouse()
