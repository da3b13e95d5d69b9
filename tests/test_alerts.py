"""Alerts against real receivers on loopback: an HTTP server as the Slack webhook, aiosmtpd as the mail relay.

Connections come from AIRFLOW_CONN_* environment variables, exactly as a deployment would define them.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from ai_usage import alerts
from tests._alert_receivers import HttpReceiver, SmtpReceiver, free_port

TOKEN_PATH = "T0001/B0002/S3cr3tW3bh00kT0k3n"
LOG_URL = "http://airflow.example:8080/dags/ingest_cursor/runs/scheduled__2026-01-02T00:00:00+00:00/tasks/extract?try_number=2"


@pytest.fixture(autouse=True)
def _airflow_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow reads AIRFLOW_HOME on first import; no alert channel is configured unless a test says so."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path_factory.getbasetemp() / "airflow_home"))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    for name in ("AIRFLOW_CONN_SLACK_ALERTS", "AIRFLOW_CONN_SMTP_DEFAULT", "AI_USAGE_ALERT_EMAILS"):
        monkeypatch.delenv(name, raising=False)


class FakeTI:
    """The attributes of Airflow 3's RuntimeTaskInstance that the callback reads."""

    def __init__(self, *, log_url: str | None = LOG_URL, broken_log_url: bool = False) -> None:
        self.dag_id = "ingest_cursor"
        self.task_id = "extract_daily_usage"
        self.run_id = "scheduled__2026-01-02T00:00:00+00:00"
        self.try_number = 2
        self.max_tries = 2
        self.map_index = -1
        self._log_url = log_url
        self._broken = broken_log_url

    @property
    def log_url(self) -> str | None:
        if self._broken:
            raise RuntimeError("api base_url is not configured")
        return self._log_url


def failure_context(exc: BaseException | None = None, **ti_kwargs: Any) -> dict[str, Any]:
    if exc is None:
        try:
            raise ValueError("Cursor returned 0 rows for 2026-01-02")
        except ValueError as raised:
            exc = raised
    return {
        "ti": FakeTI(**ti_kwargs),
        "exception": exc,
        "logical_date": datetime(2026, 1, 2, tzinfo=UTC),
        "data_interval_start": datetime(2026, 1, 2, tzinfo=UTC),
        "data_interval_end": datetime(2026, 1, 3, tzinfo=UTC),
        "run_id": "scheduled__2026-01-02T00:00:00+00:00",
    }


def use_slack(monkeypatch: pytest.MonkeyPatch, **conn: Any) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps({"conn_type": "slackwebhook", **conn}))


def use_smtp(monkeypatch: pytest.MonkeyPatch, port: int, emails: str = "finops@example.com, oncall@example.com",
             **conn: Any) -> None:
    spec = {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@example.com",
                      "timeout": 5}}
    spec.update(conn)
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(spec))
    monkeypatch.setenv("AI_USAGE_ALERT_EMAILS", emails)


# --------------------------------------------------------------------------- Slack


def test_failure_reaches_slack_with_the_facts_and_without_the_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    with HttpReceiver() as slack:
        # The Slack provider's own form: base URL in host, token path in password.
        use_slack(monkeypatch, host=f"{slack.url}/services", password=TOKEN_PATH)
        result = alerts.on_failure_callback(failure_context())

    assert result == {"slack": True, "email": False}
    assert len(slack.received) == 1
    post = slack.received[0]
    assert post.path == f"/services/{TOKEN_PATH}"
    assert post.headers["Content-Type"] == "application/json"
    text = post.body.decode()
    for expected in ("ingest_cursor", "extract_daily_usage", "ValueError: Cursor returned 0 rows for 2026-01-02",
                     LOG_URL.replace("&", "&amp;"), "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2 of 3",
                     "scheduled__2026-01-02T00:00:00+00:00"):
        assert expected in text, expected
    assert "S3cr3tW3bh00kT0k3n" not in text
    payload = post.json()
    assert payload["blocks"][0]["text"]["text"] == "Failed: ingest_cursor.extract_daily_usage"
    assert payload["text"].startswith(":rotating_light: Failed: ingest_cursor.extract_daily_usage")


@pytest.mark.parametrize("form", ["url_in_host", "url_in_password"])
def test_full_webhook_url_in_host_or_password(monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    with HttpReceiver() as slack:
        url = f"{slack.url}/services/{TOKEN_PATH}"
        conn = {"host": url, "password": ""} if form == "url_in_host" else {"host": "", "password": url}
        use_slack(monkeypatch, **conn)
        result = alerts.on_failure_callback(failure_context())
    assert result["slack"] is True
    assert [r.path for r in slack.received] == [f"/services/{TOKEN_PATH}"]


@pytest.mark.parametrize(("conn", "expected"), [
    ({"host": "https://hooks.slack.com/services", "password": "T0/B0/XX"}, "https://hooks.slack.com/services/T0/B0/XX"),
    ({"host": "", "password": "T0/B0/XX"}, "https://hooks.slack.com/services/T0/B0/XX"),
    ({"host": "hooks.slack.com/services", "schema": "https", "password": "/T0/B0/XX"},
     "https://hooks.slack.com/services/T0/B0/XX"),
    ({"host": "127.0.0.1", "schema": "http", "port": 8099, "password": "hook"}, "http://127.0.0.1:8099/hook"),
    ({"host": "ignored", "password": "https://hooks.slack.com/services/T1/B1/YY"},
     "https://hooks.slack.com/services/T1/B1/YY"),
    ({"host": "", "password": ""}, None),
    ({"host": "ftp://example.com/x", "password": ""}, None),
])
def test_slack_webhook_url_follows_the_provider_conventions(conn: dict[str, Any], expected: str | None) -> None:
    fields = {"host": None, "schema": None, "port": None, "password": None} | conn
    assert alerts.slack_webhook_url(SimpleNamespace(**fields)) == expected


def test_unconfigured_channels_are_silent(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with HttpReceiver() as slack, SmtpReceiver() as smtp, caplog.at_level(logging.DEBUG, logger="ai_usage"):
        result = alerts.on_failure_callback(failure_context())
        # Recipients without an SMTP connection, and an SMTP connection without recipients: still off.
        monkeypatch.setenv("AI_USAGE_ALERT_EMAILS", "finops@example.com")
        assert alerts.on_failure_callback(failure_context()) == {"slack": False, "email": False}
        use_smtp(monkeypatch, smtp.port, emails="")
        assert alerts.on_failure_callback(failure_context()) == {"slack": False, "email": False}
    assert result == {"slack": False, "email": False}
    assert slack.received == [] and smtp.mails == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_retries_then_succeeds_on_5xx(monkeypatch: pytest.MonkeyPatch) -> None:
    with HttpReceiver(statuses=(503, 500, 200)) as slack:
        use_slack(monkeypatch, host=f"{slack.url}/services", password=TOKEN_PATH)
        result = alerts.on_failure_callback(failure_context())
    assert result["slack"] is True
    assert len(slack.received) == 3


def test_500_does_not_raise_and_logs_no_secret(monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with HttpReceiver(statuses=(500,), body=b"internal error") as slack, caplog.at_level(logging.INFO):
        use_slack(monkeypatch, host=f"{slack.url}/services", password=TOKEN_PATH)
        result = alerts.on_failure_callback(failure_context())
    assert result == {"slack": False, "email": False}
    assert len(slack.received) == 3  # one try + two retries
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("HTTP 500" in w for w in warnings), warnings
    assert "S3cr3tW3bh00kT0k3n" not in caplog.text


def test_429_waits_for_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    with HttpReceiver(statuses=(429, 200), headers={"Retry-After": "1"}) as slack:
        use_slack(monkeypatch, host=f"{slack.url}/services", password=TOKEN_PATH)
        started = time.monotonic()
        assert alerts.on_failure_callback(failure_context())["slack"] is True
        elapsed = time.monotonic() - started
    assert len(slack.received) == 2
    assert elapsed >= 1.0  # the Retry-After wait happened (a lower bound: a slow machine cannot break it)


def test_4xx_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    with HttpReceiver(statuses=(404,), body=b"no_service") as slack:
        use_slack(monkeypatch, host=f"{slack.url}/services", password=TOKEN_PATH)
        assert alerts.on_failure_callback(failure_context())["slack"] is False
    assert len(slack.received) == 1


def test_receiver_down_does_not_raise(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens there
    use_slack(monkeypatch, host=f"http://127.0.0.1:{port}/services", password=TOKEN_PATH)
    with caplog.at_level(logging.INFO):
        result = alerts.on_failure_callback(failure_context())
    assert result == {"slack": False, "email": False}
    assert any("ConnectionError" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "S3cr3tW3bh00kT0k3n" not in caplog.text


def test_exception_text_is_scrubbed_and_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-ant-admin01-" + "Q" * 40
    exc = RuntimeError(f"401 from https://api.anthropic.com/v1/x?api_key={key} with x-api-key: {key} " + "z" * 5000)
    with HttpReceiver() as slack:
        use_slack(monkeypatch, host=f"{slack.url}/services", password=TOKEN_PATH)
        alerts.on_failure_callback(failure_context(exc))
    text = slack.received[0].body.decode()
    assert key not in text and "QQQQQQQQ" not in text
    assert "RuntimeError: 401 from https://api.anthropic.com/v1/x?api_key=***" in text
    assert "more characters in the log" in text
    assert len(text) < 8000


def test_broken_context_still_alerts(monkeypatch: pytest.MonkeyPatch) -> None:
    with HttpReceiver() as slack:
        use_slack(monkeypatch, host=f"{slack.url}/services", password=TOKEN_PATH)
        # log_url raising, and a DAG-level context without any task instance.
        assert alerts.on_failure_callback(failure_context(broken_log_url=True))["slack"] is True
        dag_ctx = {"dag": SimpleNamespace(dag_id="refresh_marts"), "reason": "task_failure",
                   "dag_run": SimpleNamespace(dag_id="refresh_marts", run_id="manual__x", logical_date=None,
                                              data_interval_start=None, data_interval_end=None)}
        assert alerts.on_failure_callback(dag_ctx)["slack"] is True
        assert alerts.on_failure_callback({})["slack"] is True
    first, second, third = (r.json() for r in slack.received)
    assert "View the task log" not in json.dumps(first)
    assert second["blocks"][0]["text"]["text"] == "Failed: refresh_marts"
    assert "task_failure" in json.dumps(second)
    assert third["blocks"][0]["text"]["text"] == "Failed: unknown DAG"


# --------------------------------------------------------------------------- e-mail


def test_failure_reaches_email(monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpReceiver() as smtp:
        use_smtp(monkeypatch, smtp.port)
        result = alerts.on_failure_callback(failure_context())
    assert result == {"slack": False, "email": True}
    assert len(smtp.mails) == 1
    mail = smtp.mails[0]
    assert mail.mail_from == "airflow@example.com"
    assert mail.rcpt_tos == ["finops@example.com", "oncall@example.com"]
    assert mail.message["Subject"] == "[ai-usage] ERROR: Failed: ingest_cursor.extract_daily_usage"
    plain, html = mail.part("plain"), mail.part("html")
    for body in (plain, html):
        assert "ValueError: Cursor returned 0 rows for 2026-01-02" in body
        assert "extract_daily_usage" in body and "2 of 3" in body
    assert f"Log: {LOG_URL}" in plain
    assert "<a href=\"http://airflow.example:8080/dags/ingest_cursor/" in html


def test_smtp_login_uses_the_connection_and_never_mails_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpReceiver(credentials=("alerts@example.com", "smtp-Pa55word")) as smtp:
        use_smtp(monkeypatch, smtp.port, login="alerts@example.com", password="smtp-Pa55word",
                 extra={"disable_ssl": "true", "disable_tls": "true"})
        assert alerts.on_failure_callback(failure_context())["email"] is True
    assert smtp.logins == [("alerts@example.com", True)]
    assert smtp.mails[0].mail_from == "alerts@example.com"  # no from_email extra: the login is the sender
    assert b"smtp-Pa55word" not in smtp.mails[0].raw


def test_smtp_wrong_password_and_server_down_do_not_raise(monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    with SmtpReceiver(credentials=("alerts@example.com", "right")) as smtp, caplog.at_level(logging.WARNING):
        use_smtp(monkeypatch, smtp.port, login="alerts@example.com", password="wrong-Pa55")
        assert alerts.on_failure_callback(failure_context())["email"] is False
        assert smtp.mails == []
    use_smtp(monkeypatch, free_port())
    assert alerts.on_failure_callback(failure_context())["email"] is False
    assert "wrong-Pa55" not in caplog.text
    assert any("login refused" in r.getMessage() for r in caplog.records)


def test_invalid_recipients_setting_is_a_warning(monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    with SmtpReceiver() as smtp, caplog.at_level(logging.WARNING):
        use_smtp(monkeypatch, smtp.port, emails="finops@example.com, not-an-address")
        assert alerts.on_failure_callback(failure_context()) == {"slack": False, "email": False}
    assert smtp.mails == []
    assert any("AI_USAGE_ALERT_EMAILS" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- digests


def test_digest_goes_to_both_channels_with_a_capped_table(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"api_key_name": f"key-{i:02d}", "workspace": "wrkspc_01", "amount_usd": Decimal("12.345") + i}
            for i in range(30)]
    with HttpReceiver() as slack, SmtpReceiver() as smtp:
        use_slack(monkeypatch, host=f"{slack.url}/services", password=TOKEN_PATH)
        use_smtp(monkeypatch, smtp.port)
        result = alerts.send_digest("Unmapped API keys", "30 API keys have no owner in the Sheet.", rows,
                                    severity="warning", context=failure_context())
    assert result == {"slack": True, "email": True}
    slack_text = json.dumps(slack.received[0].json(), ensure_ascii=False)
    plain = smtp.mails[0].part("plain")
    for text in (slack_text, plain):
        assert "api_key_name" in text and "amount_usd" in text
        assert "key-00" in text and "12.345" in text and "key-19" in text and "31.345" in text
        assert "key-20" not in text
        assert "… and 10 more rows (30 in total)" in text
        assert "ingest_cursor" in text  # the context's DAG
    assert smtp.mails[0].message["Subject"] == "[ai-usage] WARNING: Unmapped API keys"
    assert slack.received[0].json()["text"].startswith(":warning: Unmapped API keys")


def test_digest_rejects_unknown_severity() -> None:
    with pytest.raises(ValueError, match="severity"):
        alerts.send_digest("t", "s", [], severity="fatal")


def test_format_table_aligns_and_counts() -> None:
    rows = [{"email": "a@example.com", "usd": Decimal("1.50")}, {"email": "bob@example.com", "team": None},
            {"email": "c@example.com", "usd": Decimal("0.00")}]
    table = alerts.format_table(rows, max_rows=2)
    assert table.splitlines() == [
        "email            usd   team",
        "---------------  ----  ----",
        "a@example.com    1.50",
        "bob@example.com",
        "… and 1 more row (3 in total)",
    ]
    assert alerts.format_table([]) == "(no rows)"
