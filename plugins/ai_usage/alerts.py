"""Alerts, in one module: the task failure callback and the data-quality / unmapped-key digests.

Two channels, each off unless configured (DESIGN.md §2):
- Slack: an incoming webhook in Connection ``slack_alerts`` (https://api.slack.com/messaging/webhooks).
- E-mail: Connection ``smtp_default`` plus recipients in ``AI_USAGE_ALERT_EMAILS``.

Delivery never raises: an alert channel that is down must not mask the task's own error, so failures
are logged as warnings (with secrets scrubbed) and reported in the returned
``{"slack": bool, "email": bool}``.
"""

from __future__ import annotations

import html
import logging
import smtplib
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlsplit

import requests

from ai_usage import settings
from ai_usage.exceptions import AlertDeliveryError, ConfigurationError
from ai_usage.redaction import redact_text

log = logging.getLogger(__name__)

SEVERITIES = {"info": ":information_source:", "warning": ":warning:", "error": ":rotating_light:"}
MAX_EXCEPTION_CHARS = 1500
MAX_DIGEST_ROWS = 20
MAX_CELL_CHARS = 40
_SLACK_TEXT_LIMIT = 2900          # Slack section text is capped at 3000 characters
_SLACK_TIMEOUT = (5, 10)          # (connect, read) seconds
_SLACK_BACKOFF = (0.5, 1.5)       # sleeps before retry 1 and 2 (2 retries on 5xx / 429 / network errors)
_MAX_RETRY_AFTER = 5.0            # a failure callback must not hang on a rate-limited webhook
_SMTP_ATTEMPTS = 2
_DEFAULT_FROM = "ai-usage-alerts@localhost"


@dataclass
class Alert:
    """One message, rendered to Slack blocks and to a plain-text + HTML e-mail."""

    title: str
    severity: str
    summary: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)
    detail: str = ""                 # preformatted (exception text, digest table)
    link: str | None = None


# --------------------------------------------------------------------------- public API


def on_failure_callback(context: Mapping[str, Any]) -> dict[str, bool]:
    """Task (or DAG) failure callback: DAG, task, dates, try, exception and log link to Slack and e-mail."""
    try:
        alert = failure_alert(context)
    except Exception as exc:  # a malformed context must still produce an alert
        log.warning("Could not read the failure context (%s); sending a minimal alert", type(exc).__name__)
        alert = Alert(title="Airflow task failed", severity="error",
                      summary="The failure context was unreadable.")
    return deliver(alert)


def send_digest(
    title: str, summary: str, rows: Sequence[Mapping[str, Any]], *, severity: str = "warning",
    context: Mapping[str, Any] | None = None, max_rows: int = MAX_DIGEST_ROWS,
) -> dict[str, bool]:
    """Send a data-quality / unmapped-key digest (a capped table of `rows`).

    Returns which channels delivered, e.g. ``{"slack": True, "email": False}``.
    """
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {sorted(SEVERITIES)}, not {severity!r}")
    facts = _context_facts(context) if context else []
    alert = Alert(title=title, severity=severity, summary=summary, facts=facts,
                  detail=format_table(rows, max_rows=max_rows),
                  link=_log_url(context) if context else None)
    return deliver(alert)


def deliver(alert: Alert) -> dict[str, bool]:
    """Send `alert` to every configured channel; never raises."""
    result = {"slack": False, "email": False}
    for channel, send in (("slack", _send_slack), ("email", _send_email)):
        try:
            result[channel] = send(alert)
        except AlertDeliveryError as exc:
            log.warning("Alert %r not delivered to %s: %s", alert.title, channel, exc)
        except Exception as exc:  # defensive: never let alerting raise into Airflow
            log.warning("Alert %r not delivered to %s: unexpected %s: %s", alert.title, channel,
                        type(exc).__name__, redact_text(str(exc)))
    return result


# --------------------------------------------------------------------------- building messages


def failure_alert(context: Mapping[str, Any]) -> Alert:
    """The failure message for an Airflow callback context (task-level, or DAG-level without `ti`)."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = _first(getattr(ti, "dag_id", None), getattr(context.get("dag"), "dag_id", None),
                    getattr(context.get("dag_run"), "dag_id", None)) or "unknown DAG"
    task_id = getattr(ti, "task_id", None) or getattr(context.get("task"), "task_id", None)
    where = f"{dag_id}.{task_id}" if task_id else dag_id
    exc = context.get("exception")
    reason = format_exception(exc) if exc is not None else str(context.get("reason") or "no exception given")
    kind = "task" if task_id else "DAG run"
    return Alert(title=f"Failed: {where}", severity="error", summary=f"Airflow {kind} `{where}` failed.",
                 facts=_context_facts(context), detail=reason, link=_log_url(context))


def format_exception(exc: Any) -> str:
    """``Type: message`` with credentials scrubbed and the message cut to a readable length."""
    if isinstance(exc, BaseException):
        text = f"{type(exc).__name__}: {redact_text(str(exc))}" if str(exc) else type(exc).__name__
    else:
        text = redact_text(str(exc))
    if len(text) > MAX_EXCEPTION_CHARS:
        more = len(text) - MAX_EXCEPTION_CHARS
        text = text[:MAX_EXCEPTION_CHARS] + f"… ({more} more characters in the log)"
    return text


def format_table(rows: Sequence[Mapping[str, Any]], *, max_rows: int = MAX_DIGEST_ROWS) -> str:
    """A fixed-width text table of the first `max_rows` rows, saying how many more there are."""
    if not rows:
        return "(no rows)"
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    shown = rows[:max(max_rows, 0)]
    cells = [[_cell(row.get(c)) for c in columns] for row in shown]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    lines = [line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells]
    hidden = len(rows) - len(shown)
    # Keep the table inside one Slack section; whatever is cut is counted as "more".
    while len("\n".join(lines)) > _SLACK_TEXT_LIMIT - 60 and len(lines) > 3:
        lines.pop()
        hidden += 1
    if hidden:
        lines.append(f"… and {hidden} more row{'s' if hidden != 1 else ''} ({len(rows)} in total)")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, date | datetime) else str(value)
    text = " ".join(redact_text(text).split())
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS - 1] + "…"


def _first(*values: Any) -> Any:
    return next((v for v in values if v), None)


def _fmt_time(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _context_facts(context: Mapping[str, Any]) -> list[tuple[str, str]]:
    """DAG, task, run, logical date, data interval and try, read defensively from an Airflow context."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    facts: list[tuple[str, Any]] = [
        ("DAG", _first(getattr(ti, "dag_id", None), getattr(context.get("dag"), "dag_id", None),
                       getattr(dag_run, "dag_id", None))),
        ("Task", getattr(ti, "task_id", None) or getattr(context.get("task"), "task_id", None)),
        ("Run", _first(getattr(ti, "run_id", None), context.get("run_id"), getattr(dag_run, "run_id", None))),
        ("Logical date",
         _fmt_time(_first(context.get("logical_date"), getattr(dag_run, "logical_date", None)))),
    ]
    start = _first(context.get("data_interval_start"), getattr(dag_run, "data_interval_start", None))
    end = _first(context.get("data_interval_end"), getattr(dag_run, "data_interval_end", None))
    if start or end:
        facts.append(("Data interval", f"{_fmt_time(start) or '?'} → {_fmt_time(end) or '?'}"))
    map_index = getattr(ti, "map_index", None)
    if isinstance(map_index, int) and map_index >= 0:
        facts.append(("Map index", map_index))
    try_number = getattr(ti, "try_number", None)
    if isinstance(try_number, int):
        max_tries = getattr(ti, "max_tries", None)
        # Airflow's own wording: "Try {try_number} out of {max_tries + 1}".
        tries = f"{try_number} of {max_tries + 1}" if isinstance(max_tries, int) else try_number
        facts.append(("Try", tries))
    return [(k, str(v)) for k, v in facts if v not in (None, "")]


def _log_url(context: Mapping[str, Any] | None) -> str | None:
    ti = (context or {}).get("ti") or (context or {}).get("task_instance")
    try:
        url = getattr(ti, "log_url", None)  # a property in Airflow 3; may fail without a base_url
    except Exception as exc:
        log.debug("No log URL for the alert: %s", type(exc).__name__)
        return None
    return str(url) if url else None


# --------------------------------------------------------------------------- connections


def _get_connection(conn_id: str) -> Any | None:
    """The Airflow Connection, or None when it is not defined (the channel is then off)."""
    try:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:  # Airflow 2 layout
        from airflow.exceptions import AirflowNotFoundException  # type: ignore[no-redef]
        from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.debug("Connection %s is not defined: channel off", conn_id)
        return None


def _mask(secret: str) -> None:
    """Tell Airflow's log masker about a secret that is not a connection password (e.g. a URL in `host`)."""
    try:
        from airflow.sdk.log import mask_secret

        mask_secret(secret)
    except Exception:  # outside Airflow's task logging there is nothing to register with
        pass


def slack_webhook_url(conn: Any) -> str | None:
    """The webhook URL from a `slack_alerts` connection, following the Slack provider's conventions.

    A full URL in `password` wins; otherwise `host` (a full URL, or a host name with `schema` as the URL
    scheme, default ``hooks.slack.com/services``) joined with the token path in `password`
    (``T000/B000/XXX``). A full URL in `host` with an empty password is accepted too.
    """
    password = (getattr(conn, "password", None) or "").strip()
    host = (getattr(conn, "host", None) or "").strip()
    if not password and not host:
        return None
    if "://" in password:
        url = password
    else:
        if "://" in host:
            base = host
        else:
            schema = (getattr(conn, "schema", None) or "").strip().lower()
            port = getattr(conn, "port", None)
            scheme = schema if schema in ("http", "https") else "https"
            base = f"{scheme}://{host or 'hooks.slack.com/services'}"
            if port and host and "/" not in host:
                base = f"{base}:{port}"
        url = f"{base.rstrip('/')}/{password.lstrip('/')}" if password else base
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url


# --------------------------------------------------------------------------- Slack


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Block Kit payload with a plain `text` fallback (https://api.slack.com/reference/block-kit/blocks)."""
    icon = SEVERITIES.get(alert.severity, ":warning:")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(alert.title, 150), "emoji": True}},
    ]
    if alert.summary:
        summary = _cut(f"{icon} {_md(alert.summary)}", _SLACK_TEXT_LIMIT)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": summary}})
    if alert.facts:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": _cut(f"*{_md(k)}*\n{_md(v)}", 1900)} for k, v in alert.facts[:10]]})
    if alert.detail:
        detail = _md(alert.detail).replace("```", "` ` `")  # a fence inside would end the code block
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": "```" + _cut(detail, _SLACK_TEXT_LIMIT) + "```"}})
    if alert.link:
        link = f"<{alert.link}|View the task log>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": link}})
    text = f"{icon} {_md(alert.title)}" + (f": {_md(alert.summary)}" if alert.summary else "")
    return {"text": _cut(text, _SLACK_TEXT_LIMIT), "blocks": blocks}


def _md(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _send_slack(alert: Alert) -> bool:
    conn = _get_connection(settings.SLACK_CONN_ID)
    if conn is None:
        return False
    url = slack_webhook_url(conn)
    if not url:
        raise AlertDeliveryError(f"connection {settings.SLACK_CONN_ID} has no usable webhook URL "
                                 "(password: token path or full URL; host: base URL)")
    _mask(url)
    post_slack(url, slack_payload(alert))
    return True


def post_slack(url: str, payload: Mapping[str, Any]) -> None:
    """POST to a webhook: 2 retries on network errors, 5xx and 429; AlertDeliveryError without the URL."""
    attempts = len(_SLACK_BACKOFF) + 1
    problem = ""
    for attempt in range(1, attempts + 1):
        wait = _SLACK_BACKOFF[attempt - 1] if attempt < attempts else 0.0
        try:
            response = requests.post(url, json=payload, timeout=_SLACK_TIMEOUT)
        except requests.RequestException as exc:
            # The exception text holds the URL (and so the token): report the type only.
            problem = f"{type(exc).__name__} (network)"
        else:
            if response.status_code < 300:
                return
            problem = f"HTTP {response.status_code} {_cut(redact_text(response.text.strip()), 100)}"
            if response.status_code < 500 and response.status_code != 429:
                break  # 4xx: the payload or the webhook is wrong, retrying will not help
            if response.status_code == 429:
                wait = max(wait, _retry_after(response.headers.get("Retry-After")))
        if attempt < attempts:
            log.info("Slack webhook attempt %s/%s failed: %s; retrying", attempt, attempts, problem)
            time.sleep(wait)
    raise AlertDeliveryError(f"Slack webhook of connection {settings.SLACK_CONN_ID} failed: {problem}")


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or 0), 0.0), _MAX_RETRY_AFTER)
    except ValueError:  # an HTTP date; Slack sends seconds
        return 0.0


# --------------------------------------------------------------------------- e-mail


def email_bodies(alert: Alert) -> tuple[str, str]:
    """(plain text, HTML) bodies of an alert e-mail."""
    text = [alert.title, "=" * len(alert.title), ""]
    if alert.summary:
        text += [alert.summary, ""]
    text += [f"{k}: {v}" for k, v in alert.facts]
    if alert.detail:
        text += ["", alert.detail]
    if alert.link:
        text += ["", f"Log: {alert.link}"]
    rows = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                   for k, v in alert.facts)
    body = [f"<h2>{html.escape(alert.title)}</h2>"]
    if alert.summary:
        body.append(f"<p>{html.escape(alert.summary)}</p>")
    if rows:
        body.append(f"<table>{rows}</table>")
    if alert.detail:
        body.append(f"<pre>{html.escape(alert.detail)}</pre>")
    if alert.link:
        body.append(f"<p><a href=\"{html.escape(alert.link, quote=True)}\">View the task log</a></p>")
    return "\n".join(text) + "\n", "<html><body>" + "\n".join(body) + "</body></html>"


def _flag(extra: Mapping[str, Any], name: str) -> bool:
    value = extra.get(name, False)
    return value.strip().lower() in ("1", "true", "yes", "on") if isinstance(value, str) else bool(value)


def _send_email(alert: Alert) -> bool:
    try:
        recipients = settings.alert_emails()
    except ConfigurationError as exc:
        raise AlertDeliveryError(str(exc)) from None
    if not recipients:
        log.debug("AI_USAGE_ALERT_EMAILS is empty: e-mail alerts off")
        return False
    conn = _get_connection(settings.SMTP_CONN_ID)
    if conn is None:
        return False
    send_smtp(conn, recipients, alert)
    return True


def send_smtp(conn: Any, recipients: Sequence[str], alert: Alert) -> None:
    """Send through the connection with the SMTP provider's extras: `disable_ssl`, `disable_tls`,
    `timeout`, `from_email`, `ssl_context` ("default" | "none"). SSL on (port 465) unless `disable_ssl`;
    then STARTTLS (port 587) unless `disable_tls`; then plain SMTP (port 25).
    """
    extra = getattr(conn, "extra_dejson", None) or {}
    host = getattr(conn, "host", None)
    if not host:
        raise AlertDeliveryError(f"connection {settings.SMTP_CONN_ID} has no host")
    use_ssl, use_starttls = not _flag(extra, "disable_ssl"), not _flag(extra, "disable_tls")
    port = getattr(conn, "port", None) or (465 if use_ssl else 587 if use_starttls else 25)
    timeout = float(extra.get("timeout", 30))
    # `ssl_context: "none"` is the provider's switch for relays with self-signed certificates.
    unverified = extra.get("ssl_context") == "none"
    tls = ssl._create_unverified_context() if unverified else ssl.create_default_context()
    login, password = getattr(conn, "login", None), getattr(conn, "password", None)
    sender = extra.get("from_email") or (login if login and "@" in login else _DEFAULT_FROM)

    text, html_body = email_bodies(alert)
    msg = EmailMessage()
    msg["Subject"] = " ".join(f"[ai-usage] {alert.severity.upper()}: {alert.title}".split())[:200]
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="ai-usage")
    msg.set_content(text)
    msg.add_alternative(html_body, subtype="html")

    problem = ""
    for attempt in range(1, _SMTP_ATTEMPTS + 1):
        try:
            client: smtplib.SMTP = (smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls) if use_ssl
                                    else smtplib.SMTP(host, port, timeout=timeout))
            with client:
                if not use_ssl and use_starttls:
                    client.starttls(context=tls)
                    client.ehlo()
                if login and password:
                    client.login(login, password)
                client.send_message(msg, from_addr=sender, to_addrs=list(recipients))
            return
        except smtplib.SMTPAuthenticationError as exc:
            raise AlertDeliveryError(f"SMTP login refused by {host}:{port} (code {exc.smtp_code})") from None
        except OSError as exc:  # smtplib.SMTPException is an OSError
            # str(exc) of smtplib errors holds server replies, never our password; scrub anyway.
            problem = f"{type(exc).__name__}: {redact_text(str(exc))}"
            permanent = isinstance(exc, smtplib.SMTPRecipientsRefused) or (
                isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500)
            if permanent:
                break
            if attempt < _SMTP_ATTEMPTS:
                log.info("SMTP attempt %s/%s to %s:%s failed: %s; retrying", attempt, _SMTP_ATTEMPTS,
                         host, port, problem)
                time.sleep(1)
    raise AlertDeliveryError(f"SMTP {host}:{port} failed: {problem}")


__all__ = ["Alert", "deliver", "failure_alert", "format_exception", "format_table",
           "on_failure_callback", "post_slack", "send_digest", "slack_payload", "slack_webhook_url"]
