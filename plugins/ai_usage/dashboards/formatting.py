"""How card values are shown: one formatter for the HTML report (and the formats Metabase is given).

Formats (``formats:`` of a card spec, else inferred from the column name and value type):
``usd`` ($1,234.56), ``percent`` (a ratio 0.123 shown as 12.3 %), ``pct_change`` (a percentage 12.5 shown
as +12.5 %), ``int`` (1,234), ``date`` (2025-03-14), ``month`` (2025-03), ``text``. A missing value (NULL)
is shown as an em dash, never as 0.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

MISSING = "\u2014"
_ACRONYMS = {"api": "API", "id": "ID", "pr": "PR", "prs": "PRs", "ai": "AI"}


def infer_format(column: str, value: Any = None) -> str:
    """The format of a column the spec does not name: by its name first, then by its value's type."""
    if column.endswith("_usd"):
        return "usd"
    if column.endswith(("_rate", "_share")):
        return "percent"
    if column.endswith("_pct"):
        return "pct_change"
    if column == "month":
        return "month"
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return "date"
    if isinstance(value, int) and not isinstance(value, bool):
        return "int"
    return "text"


def format_value(value: Any, fmt: str) -> str:
    """`value` as the report shows it in format `fmt`."""
    if value is None:
        return MISSING
    if fmt == "usd":
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        sign = "-" if amount < 0 else ""
        return f"{sign}${abs(amount):,.2f}"
    if fmt == "percent":
        return f"{float(value) * 100:.1f} %"
    if fmt == "pct_change":
        return f"{float(value):+.1f} %"
    if fmt == "int":
        return f"{int(value):,}"
    if fmt == "month" and isinstance(value, dt.date):
        return value.strftime("%Y-%m")
    if fmt in ("date", "month") and isinstance(value, dt.date):
        return value.isoformat()
    return format_text(value)


def format_text(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    return str(value)


def raw_value(value: Any) -> Any:
    """A JSON-safe exact form of a value: money and other Decimals as strings, dates ISO, NULL as None."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value else None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return json.loads(json.dumps(value, default=str))


def csv_value(value: Any) -> str:
    """A cell of a card's CSV download: exact values (no currency symbols), empty for NULL."""
    raw = raw_value(value)
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, dict | list):
        return json.dumps(raw, sort_keys=True)
    return str(raw)


def as_number(value: Any) -> float | None:
    """A value as a float for plotting (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None


def title_of(column: str) -> str:
    """A column header: ``cost_per_active_user_usd`` -> ``Cost per active user (USD)``."""
    words = column.split("_")
    unit = ""
    if words[-1] == "usd" and len(words) > 1:
        words, unit = words[:-1], " (USD)"
    elif words[-1] == "pct" and len(words) > 1:
        words, unit = words[:-1], " (%)"
    words = [_ACRONYMS.get(w, w) for w in words]
    text = " ".join(words)
    return text[:1].upper() + text[1:] + unit
