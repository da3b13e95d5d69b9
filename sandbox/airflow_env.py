"""Local Airflow for the demo, `make run` and `make airflow`: environment first, then DAG runs via `dag.test()`.

Airflow reads its configuration when first imported, so `configure()` must run before any Airflow import.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)


def configure(root: Path = ROOT) -> dict[str, str]:
    """Set (without overriding what the caller exported) the environment of a local Airflow on this repo."""
    state = root / ".ai_usage"
    defaults = {
        "AI_USAGE_HOME": str(root),
        "AIRFLOW_HOME": str(state / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "GX_ANALYTICS_ENABLED": "False",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    return {k: os.environ[k] for k in defaults}


class DagRunFailed(RuntimeError):
    pass


def run_dag(dag_id: str, conf: dict[str, Any] | None = None, *, fail_fast: bool = True) -> Any:
    """Run one DAG through Airflow (`dag.test()`: the scheduler loop in-process) and return its DagRun.

    `fail_fast` sets retries to 0 for this local run only: a demo should stop at the first error with its
    message, not sit out the production retry back-off.
    """
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise DagRunFailed(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise DagRunFailed(f"no DAG {dag_id!r} in {os.environ['AIRFLOW__CORE__DAGS_FOLDER']}")
    if fail_fast:
        for task in dag.tasks:
            task.retries = 0
    dag_run = dag.test(run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    if str(dag_run.state) != "success":
        failed = {k: v for k, v in states.items() if v != "success"}
        raise DagRunFailed(f"{dag_id} finished {dag_run.state}: {failed}")
    return dag_run
