"""`make airflow`: the local Airflow UI (`airflow standalone`) on this repository, with fixed local credentials."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from sandbox.airflow_env import configure

USER, PASSWORD = "admin", "admin"


def main() -> int:
    env = configure()
    home = Path(env["AIRFLOW_HOME"])
    passwords = home / "simple_auth_passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    os.environ.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", f"{USER}:admin")
    os.environ.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
    port = os.environ.get("AIRFLOW__API__PORT", "8080")
    print(f"Airflow UI: http://127.0.0.1:{port}  user: {USER}  password: {PASSWORD}  (local only)")
    print(f"AIRFLOW_HOME={home}; DAGs from {env['AIRFLOW__CORE__DAGS_FOLDER']}. Stop with Ctrl-C.")
    sys.stdout.flush()
    airflow = Path(sys.executable).with_name("airflow")
    # standalone starts its components as `airflow <command>` through PATH: put this venv first.
    os.environ["PATH"] = f"{airflow.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.execv(str(airflow), [str(airflow), "standalone"])


if __name__ == "__main__":
    sys.exit(main())
