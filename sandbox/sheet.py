"""The Google Sheet tabs people maintain, generated from the organisation (cell text, as a sheet holds it).

Values are strings as the Sheets values API (FORMATTED_VALUE) or a CSV export returns them: ISO dates,
'' for an open end, prices with two decimals, TRUE/FALSE. Keys without an owner are left out of
`api_key_owners` on purpose: the unmapped-key workflow must discover them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox import claude_ai
from sandbox.export import key_owner_rows, write_csv

if TYPE_CHECKING:
    from sandbox.org import Organisation

PEOPLE_COLUMNS = ["email", "name", "team", "cost_center", "valid_from", "valid_to"]
API_KEY_OWNERS_COLUMNS = [
    "api_key_id",
    "api_key_name",
    "workspace",
    "owner_email",
    "team",
    "cost_center",
    "valid_from",
    "valid_to",
    "notes",
    "is_developer_tooling",
]
SEAT_PRICES_COLUMNS = ["tool", "plan", "monthly_price_usd", "seats", "valid_from", "valid_to"]
TAB_COLUMNS = {
    "people": PEOPLE_COLUMNS,
    "api_key_owners": API_KEY_OWNERS_COLUMNS,
    "seat_prices": SEAT_PRICES_COLUMNS,
    "claude_ai_usage": claude_ai.COLUMNS,
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _notes(org: Organisation, key_id: str) -> str:
    key = org.api_key(key_id)
    notes = []
    if key.purpose == "workload":
        notes.append("product workload")
    for old, new in zip(key.names, key.names[1:], strict=False):
        notes.append(f"renamed from {old.name} on {new.valid_from.isoformat()}")
    if key.archived_date:
        notes.append(f"archived on {key.archived_date.isoformat()}")
    return "; ".join(notes)


def sheet_tabs(org: Organisation) -> dict[str, list[dict[str, str]]]:
    people = [
        {
            "email": p.email,
            "name": p.name,
            "team": a.team,
            "cost_center": a.cost_center,
            "valid_from": a.valid_from,
            "valid_to": a.valid_to,
        }
        for p in org.people
        for a in p.history
    ]
    owners = [{**r, "notes": _notes(org, r["api_key_id"])} for r in key_owner_rows(org)]
    prices = [
        {
            "tool": c.tool,
            "plan": c.plan,
            "monthly_price_usd": f"{c.monthly_price_usd:.2f}",
            "seats": c.seats,
            "valid_from": c.valid_from,
            "valid_to": c.valid_to,
        }
        for c in org.price_card
    ]
    tabs = {
        name: [{c: _text(row.get(c)) for c in TAB_COLUMNS[name]} for row in rows]
        for name, rows in (("people", people), ("api_key_owners", owners), ("seat_prices", prices))
    }
    tabs["claude_ai_usage"] = claude_ai.tab_rows(org)  # the claude.ai spend exports, pasted per period
    return tabs


def export_sheet_csv(org: Organisation, folder: Path) -> list[Path]:
    """Write one `<tab>.csv` per tab: the manual-upload fallback (`AI_USAGE_SHEET=file:///…`)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_csv(folder / f"{name}.csv", rows, TAB_COLUMNS[name]) for name, rows in sheet_tabs(org).items()
    ]
