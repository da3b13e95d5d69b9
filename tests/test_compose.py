"""docker-compose.yaml is valid for users' machines (no Docker engine here): structure, settings, mounts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ai_usage import settings

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = ("airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def _default(value: str) -> str:
    """Resolve ${VAR:-default} the way compose does when VAR is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_services_and_dependencies(compose: dict) -> None:
    services = compose["services"]
    assert set(AIRFLOW_SERVICES) | {"postgres", "metabase"} <= set(services)
    for name, svc in services.items():
        for dep in (svc.get("depends_on") or {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
    for name in AIRFLOW_SERVICES[1:]:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert all("healthcheck" in services[s] for s in ("postgres", "airflow-apiserver", "airflow-scheduler", "metabase"))


def test_airflow_services_share_image_settings_and_mounts(compose: dict) -> None:
    envs = [compose["services"][s]["environment"] for s in AIRFLOW_SERVICES]
    assert all(e == envs[0] for e in envs)
    env = envs[0]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    # The ai-usage settings' defaults in the compose file are accepted by the product's own parsers.
    assert settings.parse_warehouse(_default(env["AI_USAGE_WAREHOUSE"])).kind == "duckdb"
    assert settings.parse_location(_default(env["AI_USAGE_ARCHIVE"]), "AI_USAGE_ARCHIVE").kind == "file"
    assert settings.parse_location(_default(env["AI_USAGE_INBOX"]), "AI_USAGE_INBOX").kind == "file"
    assert settings.parse_sheet(_default(env["AI_USAGE_SHEET"])).kind == "file"
    mounts = compose["services"]["airflow-scheduler"]["volumes"]
    for folder in ("dags", "plugins", "include"):
        assert f"./{folder}:/opt/airflow/{folder}" in mounts
        assert (ROOT / folder).is_dir()


def test_files_the_compose_file_needs_exist(compose: dict) -> None:
    assert (ROOT / "Dockerfile").is_file()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.2-python3\.11$", dockerfile, re.M)
    assert "requirements.txt" in dockerfile
    for mount in compose["services"]["postgres"]["volumes"]:
        source = mount.split(":")[0]
        if source.startswith("./"):
            assert (ROOT / source).is_file(), source


def test_no_secret_is_committed_in_the_compose_file() -> None:
    text = (ROOT / "docker-compose.yaml").read_text()
    assert not re.search(r"(sk-ant-admin01-[A-Za-z0-9]|key_[0-9a-f]{16}|crsr_[A-Za-z0-9]{16})", text)
