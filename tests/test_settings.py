"""Settings: defaults, accepted forms, and errors that name the setting and what it accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_usage import settings
from ai_usage.exceptions import ConfigurationError


def test_defaults_resolve_relative_to_the_project_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("AI_USAGE_WAREHOUSE", "AI_USAGE_SHEET", "AI_USAGE_ARCHIVE", "AI_USAGE_INBOX"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AI_USAGE_HOME", str(tmp_path))
    assert settings.warehouse() == settings.DuckDBConfig(path=tmp_path / ".ai_usage" / "warehouse.duckdb")
    assert settings.archive() == settings.FileLocation(path=tmp_path / ".ai_usage" / "archive")
    assert settings.sheet() == settings.CsvFolderSheet(folder=tmp_path / "include" / "sample_sheet")
    assert settings.warehouse_kind() == "duckdb"


def test_project_home_defaults_to_the_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AI_USAGE_HOME", raising=False)
    assert (settings.project_home() / "plugins" / "ai_usage" / "settings.py").is_file()


def test_four_slashes_is_an_absolute_path() -> None:
    assert settings.parse_warehouse("duckdb:////srv/ledger/w.duckdb") == settings.DuckDBConfig(Path("/srv/ledger/w.duckdb"))
    assert settings.parse_location("file:////var/archive", "AI_USAGE_ARCHIVE") == settings.FileLocation(Path("/var/archive"))


def test_bigquery_url() -> None:
    cfg = settings.parse_warehouse("bigquery://acme-data-prod?location=EU&dataset_prefix=ai_usage")
    assert cfg == settings.BigQueryConfig(project="acme-data-prod", location="EU", dataset_prefix="ai_usage")
    assert cfg.dataset("raw") == "ai_usage_raw"
    assert settings.parse_warehouse("bigquery://acme-data-prod").dataset_prefix == "ai_usage"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("postgres://db/ledger", "is not supported"),
        ("duckdb://", "has no file path"),
        ("bigquery://?location=EU", "does not name a Google Cloud project"),
        ("bigquery://acme-data-prod?region=EU", "unknown option"),
        ("bigquery://acme-data-prod?dataset_prefix=bad-prefix", "dataset_prefix"),
    ],
)
def test_bad_warehouse_names_the_setting_and_the_accepted_forms(value: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        settings.parse_warehouse(value)
    message = str(err.value)
    assert "AI_USAGE_WAREHOUSE" in message and fragment in message
    if fragment == "is not supported":
        assert "duckdb:///" in message and "bigquery://" in message


def test_warehouse_kind_is_cheap_and_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_USAGE_WAREHOUSE", "bigquery://acme-data-prod")
    assert settings.warehouse_kind() == "bigquery"
    monkeypatch.setenv("AI_USAGE_WAREHOUSE", "sqlite:///x")
    with pytest.raises(ConfigurationError, match="AI_USAGE_WAREHOUSE"):
        settings.warehouse_kind()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-xy", settings.GoogleSheet("1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-xy")),
        ("https://docs.google.com/spreadsheets/d/1AbCdEfGhIjKlMnOpQrStUvWx/edit#gid=0", settings.GoogleSheet("1AbCdEfGhIjKlMnOpQrStUvWx")),
        ("file:////srv/sheet", settings.CsvFolderSheet(Path("/srv/sheet"))),
    ],
)
def test_sheet_forms(value: str, expected: settings.SheetConfig) -> None:
    assert settings.parse_sheet(value) == expected


def test_bad_sheet() -> None:
    with pytest.raises(ConfigurationError, match="AI_USAGE_SHEET='my sheet'.*file:///"):
        settings.parse_sheet("my sheet")


def test_gcs_archive_and_bad_locations() -> None:
    assert settings.parse_location("gs://acme-ai-usage/archive/", "AI_USAGE_ARCHIVE") == settings.GcsLocation(
        "acme-ai-usage", "archive")
    with pytest.raises(ConfigurationError, match="AI_USAGE_ARCHIVE.*gs://<bucket>"):
        settings.parse_location("s3://bucket/x", "AI_USAGE_ARCHIVE")
    with pytest.raises(ConfigurationError, match="no valid bucket"):
        settings.parse_location("gs://Bad_Bucket!/x", "AI_USAGE_ARCHIVE")


def test_alert_emails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AI_USAGE_ALERT_EMAILS", raising=False)
    assert settings.alert_emails() == []
    monkeypatch.setenv("AI_USAGE_ALERT_EMAILS", "ops@example.com; finance@example.com,")
    assert settings.alert_emails() == ["ops@example.com", "finance@example.com"]
    monkeypatch.setenv("AI_USAGE_ALERT_EMAILS", "ops@example.com, nobody")
    with pytest.raises(ConfigurationError, match="AI_USAGE_ALERT_EMAILS.*nobody"):
        settings.alert_emails()


def test_lookback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AI_USAGE_LOOKBACK_CURSOR", raising=False)
    assert settings.lookback_days("cursor") == 3
    assert settings.lookback_days("claude_code") == 4
    monkeypatch.setenv("AI_USAGE_LOOKBACK_CURSOR", "7")
    assert settings.lookback_days("cursor") == 7
    monkeypatch.setenv("AI_USAGE_LOOKBACK_CURSOR", "seven")
    with pytest.raises(ConfigurationError, match="AI_USAGE_LOOKBACK_CURSOR='seven'"):
        settings.lookback_days("cursor")
    monkeypatch.setenv("AI_USAGE_LOOKBACK_CURSOR", "120")
    with pytest.raises(ConfigurationError, match="between 0 and 90"):
        settings.lookback_days("cursor")


def test_settings_are_read_at_call_time_not_import_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_USAGE_WAREHOUSE", "duckdb:////tmp/one.duckdb")
    first = settings.warehouse()
    monkeypatch.setenv("AI_USAGE_WAREHOUSE", "duckdb:////tmp/two.duckdb")
    assert settings.warehouse() != first


def test_describe_holds_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CURSOR_ADMIN", '{"password": "key_secret"}')
    assert "key_secret" not in repr(settings.describe())


def test_cursor_usage_events_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AI_USAGE_CURSOR_USAGE_EVENTS", raising=False)
    assert settings.cursor_usage_events() is True
    monkeypatch.setenv("AI_USAGE_CURSOR_USAGE_EVENTS", "Off")
    assert settings.cursor_usage_events() is False
    monkeypatch.setenv("AI_USAGE_CURSOR_USAGE_EVENTS", "sometimes")
    with pytest.raises(ConfigurationError, match="AI_USAGE_CURSOR_USAGE_EVENTS='sometimes'"):
        settings.cursor_usage_events()


def test_quality_settings_have_defaults_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    from decimal import Decimal

    for var in ("AI_USAGE_ESTIMATE_TOLERANCE", "AI_USAGE_CLAUDE_AI_SPEND_BAND", "AI_USAGE_REF_REFRESH_MONTHS"):
        monkeypatch.delenv(var, raising=False)
    assert settings.estimate_tolerance() == Decimal("0.05")
    assert settings.claude_ai_spend_band() == Decimal("1.0")
    assert settings.ref_refresh_months() == 2
    monkeypatch.setenv("AI_USAGE_ESTIMATE_TOLERANCE", "0.02")
    assert settings.estimate_tolerance() == Decimal("0.02")
    monkeypatch.setenv("AI_USAGE_ESTIMATE_TOLERANCE", "5%")
    with pytest.raises(ConfigurationError, match="AI_USAGE_ESTIMATE_TOLERANCE='5%' is not a number"):
        settings.estimate_tolerance()
    monkeypatch.setenv("AI_USAGE_ESTIMATE_TOLERANCE", "1.5")
    with pytest.raises(ConfigurationError, match="between 0 and 1"):
        settings.estimate_tolerance()
    monkeypatch.setenv("AI_USAGE_REF_REFRESH_MONTHS", "0")
    with pytest.raises(ConfigurationError, match="AI_USAGE_REF_REFRESH_MONTHS='0'"):
        settings.ref_refresh_months()


def test_setup_check_validates_every_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """setup_warehouse's first task must name a bad setting, wherever its parser lives."""
    from ai_usage import bootstrap

    monkeypatch.setenv("AI_USAGE_PLATFORM_PATTERNS", "not json")
    with pytest.raises(ConfigurationError, match="AI_USAGE_PLATFORM_PATTERNS"):
        bootstrap.check_settings()
    monkeypatch.delenv("AI_USAGE_PLATFORM_PATTERNS")
    monkeypatch.setenv("AI_USAGE_CURSOR_SPEND_TOLERANCE", "-1")
    with pytest.raises(ConfigurationError, match="AI_USAGE_CURSOR_SPEND_TOLERANCE"):
        bootstrap.check_settings()
