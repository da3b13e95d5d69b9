"""What every ai_usage DAG shares: owner, retries, the failure callback. DAG files stay thin by importing this.

Kept import-light on purpose: DAG files import it at parse time, and all of `dags/` must parse in well
under a second beyond importing Airflow.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

OWNER = "data-platform"


def _on_failure(context: Any) -> None:
    # Imported on failure only: alert delivery pulls in HTTP/SMTP code that parsing never needs.
    from ai_usage.alerts import on_failure_callback

    on_failure_callback(context)


def default_args(**overrides: Any) -> dict[str, Any]:
    """Task defaults: two retries with exponential backoff on top of the hooks' own transient-error retries."""
    args: dict[str, Any] = {
        "owner": OWNER,
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=20),
        "on_failure_callback": _on_failure,
    }
    args.update(overrides)
    return args


on_failure = _on_failure
