"""Run a card's query on the configured warehouse, the way Metabase would with the same filter values.

The card's template keeps the optional clauses whose filter has a value and binds the values as query
parameters (`ai_usage.dashboards.template`); the warehouse layer runs the BigQuery SQL (transpiled for
DuckDB on the embedded default). A card gets the values of the filters it honours plus its fixed defaults.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ai_usage.dashboards.spec import Card, Filter
from ai_usage.exceptions import ConfigurationError
from ai_usage.warehouse.base import Warehouse

log = logging.getLogger(__name__)


@dataclass
class CardResult:
    """What a card's query returned (or why it failed)."""

    columns: list[str]
    rows: list[dict[str, Any]]
    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def card_values(card: Card, selected: Mapping[str, Any]) -> dict[str, Any]:
    """The tag values a card runs with: the selected filters it honours, then its fixed defaults."""
    values: dict[str, Any] = {tag: None for tag in card.template.tags}
    for tag in card.filters:
        values[tag] = selected.get(tag)
    values.update(card.defaults)
    return values


def parse_filter_values(raw: Mapping[str, str], catalogue: Mapping[str, Filter]) -> dict[str, Any]:
    """``{"date_from": "2025-01-01", "team": "Platform"}`` -> typed values; unknown keys or bad dates raise."""
    out: dict[str, Any] = {}
    for key, text in raw.items():
        if key not in catalogue:
            raise ConfigurationError(f"unknown filter {key!r}; known: {sorted(catalogue)}")
        spec = catalogue[key]
        if spec.type == "date":
            try:
                out[key] = dt.date.fromisoformat(text)
            except ValueError:
                raise ConfigurationError(f"filter {key}={text!r} is not a date (YYYY-MM-DD)") from None
        else:
            if spec.values and text not in spec.values:
                raise ConfigurationError(f"filter {key}={text!r} is not one of {list(spec.values)}")
            out[key] = text
    return out


def output_columns(card: Card) -> list[str]:
    """The result columns of the card's query, in order (known even when it returns no rows)."""
    return list(card.template.tree.named_selects)


def run_card(warehouse: Warehouse, card: Card, selected: Mapping[str, Any]) -> CardResult:
    """Run `card` with the `selected` filter values; a failure is returned as `error`, not raised."""
    sql, params = card.template.local_query(card_values(card, selected))
    columns = output_columns(card)
    try:
        rows = warehouse.query(sql, params)
    except Exception as exc:  # one broken card must not take the whole report down; it shows the error
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.warning("card %s (%s) failed: %s", card.key, card.sql_path, first_line)
        return CardResult(columns=columns, rows=[], sql=sql, params=params, error=first_line)
    if rows:
        columns = list(rows[0])
    return CardResult(columns=columns, rows=rows, sql=sql, params=params)
