"""`make run`: the main job end to end on the embedded default, through Airflow.

Today it bootstraps the warehouse with the `setup_warehouse` DAG and prints the inventory of every table;
each source pipeline extends it (simulators up, connections pointed at them, ingest DAGs run, marts refreshed).
"""

from __future__ import annotations

import logging
import sys

from sandbox.airflow_env import configure, run_dag


def main() -> int:
    configure()
    logging.basicConfig(level=logging.WARNING)
    from ai_usage import bootstrap, settings

    print("ai-usage local run")
    for key, value in settings.describe().items():
        print(f"  {key:<22} {value}")
    print("\n== setup_warehouse (through Airflow: dag.test)")
    run_dag("setup_warehouse")

    print("\n== warehouse inventory")
    print(bootstrap.format_inventory(bootstrap.inventory_rows()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
