"""ai_usage: one ledger of AI developer-tool usage and cost, as an Airflow 3 DAG package."""

from __future__ import annotations

__version__ = "0.1.0"
