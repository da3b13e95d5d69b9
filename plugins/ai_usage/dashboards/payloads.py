"""The Metabase objects the specs describe, as the JSON bodies of Metabase's REST API.

Shapes follow Metabase's API documentation (https://www.metabase.com/docs/latest/api, and the per-endpoint
pages of v0.50: https://www.metabase.com/docs/v0.50/api/card, .../api/dashboard):

- a card is a native question: ``dataset_query = {"type": "native", "database": <id>, "native": {"query",
  "template-tags"}}``; each filter is a template tag of type ``date`` or ``text``
  (https://www.metabase.com/docs/latest/questions/native-editor/sql-parameters);
- a dashboard filter is a parameter (``date/single`` or ``string/=``) wired to a card's tag by a
  dashcard ``parameter_mapping`` with target ``["variable", ["template-tag", <tag>]]``;
- dashcards are placed on the 24-column grid (``row``, ``col``, ``size_x``, ``size_y``); new ones get
  negative ids in ``PUT /api/dashboard/:id``.

Every object the provisioner manages carries ``[ai-usage:<key>]`` at the end of its description: that key,
not the name, identifies it on the next run, so a renamed card is updated in place.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from ai_usage.dashboards.spec import Card, Dashboard, Filter, Specs
from ai_usage.dashboards.target import MetabaseTarget

MARKER = re.compile(r"\[ai-usage:([a-z0-9_./-]+)\]\s*$")
_NAMESPACE = uuid.UUID("6f1c2a9e-8d4b-4f0e-9a51-3c7e2b1d5a10")
DISPLAY = {"number": "scalar", "line": "line", "bar": "bar", "table": "table"}
STATUS_COLORS = {"missing": "#ED6E6E", "failed": "#ED6E6E", "provisional": "#F9CF48", "partial": "#F9CF48",
                 "unchecked": "#F9CF48"}


def with_marker(text: str, key: str) -> str:
    """`text` plus the provisioner's key marker (and a warning that edits in Metabase are overwritten)."""
    return f"{text.strip()}\n\nManaged as code in include/dashboards; edits made here are overwritten. [ai-usage:{key}]"


def marker_of(description: str | None) -> str | None:
    """The key in a description written by `with_marker`, else None."""
    match = MARKER.search(description or "")
    return match.group(1) if match else None


def card_key(dashboard: Dashboard, card: Card) -> str:
    return f"card/{dashboard.key}/{card.key}"


def dashboard_key(dashboard: Dashboard) -> str:
    return f"dashboard/{dashboard.key}"


def tag_id(dashboard: Dashboard, card: Card, tag: str) -> str:
    """A stable id per card and tag, so a second run sends exactly what the first did."""
    return str(uuid.uuid5(_NAMESPACE, f"{dashboard.key}/{card.key}/{tag}"))


def template_tags(dashboard: Dashboard, card: Card, catalogue: Mapping[str, Filter]) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    for tag in card.template.tags:
        spec = catalogue[tag]
        entry: dict[str, Any] = {
            "id": tag_id(dashboard, card, tag), "name": tag, "display-name": spec.name,
            "type": spec.type, "required": False,
        }
        if tag in card.defaults:
            entry["default"] = card.defaults[tag]
        tags[tag] = entry
    return tags


def card_parameters(dashboard: Dashboard, card: Card, catalogue: Mapping[str, Filter]) -> list[dict[str, Any]]:
    """The card's own parameters, one per template tag (what the card's filter widgets show)."""
    out = []
    for tag in card.template.tags:
        spec = catalogue[tag]
        param: dict[str, Any] = {
            "id": tag_id(dashboard, card, tag), "name": spec.name, "slug": tag,
            "type": "date/single" if spec.type == "date" else "category",
            "target": ["variable", ["template-tag", tag]],
        }
        if tag in card.defaults:
            param["default"] = card.defaults[tag]
        out.append(param)
    return out


def _column_settings(card: Card) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for column, fmt in card.formats.items():
        key = f'["name","{column}"]'
        if fmt == "usd":
            settings[key] = {"number_style": "currency", "currency": "USD", "currency_style": "symbol"}
        elif fmt == "percent":
            settings[key] = {"number_style": "percent", "decimals": 1}
        elif fmt == "pct_change":
            settings[key] = {"suffix": " %", "decimals": 1}
        elif fmt == "int":
            settings[key] = {"decimals": 0}
        elif fmt == "month":
            settings[key] = {"date_style": "MMMM, YYYY"}
    return settings


def visualization_settings(card: Card) -> dict[str, Any]:
    """Metabase ``visualization_settings`` for the card's visual, formats and status colours."""
    settings: dict[str, Any] = {}
    columns = _column_settings(card)
    if columns:
        settings["column_settings"] = columns
    if card.visual == "number":
        settings["scalar.field"] = card.value
    elif card.visual in ("line", "bar"):
        settings["graph.dimensions"] = [card.x] + ([card.series] if card.series else [])
        settings["graph.metrics"] = list(card.y)
        if card.stacked:
            settings["stackable.stack_type"] = "stacked"
        if card.visual == "line":
            # NULL means missing data: draw a gap, never a zero (Metabase's "Replace missing values").
            settings["series_settings"] = {col: {"line.missing": "none"} for col in card.y}
    else:
        settings["table.column_formatting"] = [
            {"columns": [column], "type": "single", "operator": "=", "value": value, "color": color,
             "highlight_row": False}
            for column in ("status", "coverage", "month_status")
            if column in card.template.tree.named_selects
            for value, color in STATUS_COLORS.items()
        ]
        if not settings["table.column_formatting"]:
            del settings["table.column_formatting"]
    return settings


def card_payload(
    dashboard: Dashboard, card: Card, *, database_id: int, collection_id: int, target: MetabaseTarget,
    catalogue: Mapping[str, Filter],
) -> dict[str, Any]:
    """Body of ``POST /api/card`` (and of ``PUT /api/card/:id``) for one card."""
    return {
        "name": card.title,
        "description": with_marker(card.description, card_key(dashboard, card)),
        "type": "question",
        "display": DISPLAY[card.visual],
        "collection_id": collection_id,
        "dataset_query": {
            "type": "native",
            "database": database_id,
            "native": {
                "query": target.native_sql(card.template),
                "template-tags": template_tags(dashboard, card, catalogue),
            },
        },
        "parameters": card_parameters(dashboard, card, catalogue),
        "visualization_settings": visualization_settings(card),
    }


def dashboard_parameters(dashboard: Dashboard, catalogue: Mapping[str, Filter]) -> list[dict[str, Any]]:
    """The filter bar: one dashboard parameter per filter, id = the filter key."""
    out = []
    for key in dashboard.filters:
        spec = catalogue[key]
        param: dict[str, Any] = {
            "id": key, "name": spec.name, "slug": key,
            "type": "date/single" if spec.type == "date" else "string/=",
            "sectionId": "date" if spec.type == "date" else "string",
        }
        if spec.values:
            param["values_source_type"] = "static-list"
            param["values_source_config"] = {"values": list(spec.values)}
            param["values_query_type"] = "list"
        out.append(param)
    return out


def dashcards(
    dashboard: Dashboard, card_ids: Mapping[str, int], existing: Mapping[int, int],
) -> list[dict[str, Any]]:
    """Dashcards of ``PUT /api/dashboard/:id``: existing dashcard ids kept per card, new ones negative.

    `existing` maps card id -> dashcard id of what is on the dashboard now.
    """
    out = []
    new_id = 0
    for card in dashboard.cards:
        place = dashboard.layout[card.key]
        card_id = card_ids[card.key]
        if card_id in existing:
            dashcard_id = existing[card_id]
        else:
            new_id -= 1
            dashcard_id = new_id
        out.append({
            "id": dashcard_id, "card_id": card_id, "row": place.row, "col": place.col,
            "size_x": place.width, "size_y": place.height,
            "parameter_mappings": [
                {"parameter_id": f, "card_id": card_id, "target": ["variable", ["template-tag", f]]}
                for f in card.filters
            ],
            "visualization_settings": {}, "series": [],
        })
    return out


def all_card_keys(specs: Specs) -> set[str]:
    return {card_key(d, c) for d in specs.dashboards for c in d.cards}
