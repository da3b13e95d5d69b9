"""The organisation's Sheet as people really keep it: the generated tabs plus documented hostile rows.

`export_demo_sheet(org, folder)` writes one CSV per tab (the ``AI_USAGE_SHEET=file:///…`` fallback) with
the organisation's rows, then a blank row, then the rows of `HOSTILE`, each explained in an extra
``comment`` column (the pipeline ignores unknown columns). `make run` loads it, so the demo shows rows
loaded, normalised and quarantined. `expected_outcome()` says what must happen to each hostile row.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from sandbox.sheet import TAB_COLUMNS

if TYPE_CHECKING:
    from sandbox.org import Organisation

COMMENT = "comment"

# tab -> [(cells, comment, outcome)]; outcome "loads" or "quarantined".
HOSTILE: dict[str, list[tuple[dict[str, str], str, str]]] = {
    "people": [
        ({"email": "  Ada.Lovelace@Example.COM ", "name": "Ada Lovelace", "team": "Platform",
          "cost_center": "CC-1000", "valid_from": "Jan 6, 2025"},
         "capitalised e-mail with spaces, month-name date: loads normalised", "loads"),
        ({"email": "ada.lovelace@example.com", "name": "Ada Lovelace", "team": "Platform",
          "cost_center": "CC-1000", "valid_from": "2025-01-06"},
         "the row above typed again: exact duplicate, quarantined", "quarantined"),
        ({"email": "alan.turing@example.com", "name": "Alan Turing", "team": "Data", "cost_center": "CC-3000",
          "valid_from": "2025-01-01"}, "overlaps the next row (valid_to never closed): quarantined", "quarantined"),
        ({"email": "alan.turing@example.com", "name": "Alan Turing", "team": "Platform", "cost_center": "CC-1000",
          "valid_from": "2025-02-01"}, "overlaps the row above: quarantined", "quarantined"),
        ({"email": "grace.hopper@example", "name": "Grace Hopper", "team": "Platform"},
         "not an e-mail address: quarantined", "quarantined"),
        ({"email": "edsger.dijkstra@example.com", "name": "Edsger Dijkstra",
          "team": "=VLOOKUP(A2,Teams!A:B,2,FALSE)"}, "a formula shown as text: quarantined", "quarantined"),
        ({"email": "barbara.liskov@example.com", "name": "Barbara Liskov", "team": "Data",
          "valid_from": "03/04/2025"}, "ambiguous date (3 April or March 4?): quarantined", "quarantined"),
    ],
    "api_key_owners": [
        ({"notes": "a row that maps nothing"}, "no key id, key name or workspace: quarantined", "quarantined"),
        ({"api_key_id": "apikey_01DemoOrphan0000000000001", "api_key_name": "demo-orphan",
          "is_developer_tooling": "maybe"}, "is_developer_tooling is not TRUE/FALSE: quarantined", "quarantined"),
    ],
    "seat_prices": [
        ({"tool": "cursor", "plan": "Enterprise add-on", "monthly_price_usd": "$1,234.50", "seats": "1",
          "valid_from": "2025-01-01"}, "currency string with a thousands separator: loads", "loads"),
        ({"tool": "claude_code", "plan": "Premium seat", "monthly_price_usd": "€150"},
         "another currency: quarantined", "quarantined"),
    ],
    "claude_ai_usage": [
        ({"period_start": "2025-01-01", "period_end": "2025-01-31", "period_label": "Custom",
          "user_email": "ada.lovelace@example.com", "product": "Chat", "model": "claude-sonnet-4-5",
          "total_requests": "12.5", "total_net_spend_usd": "0.00"},
         "a fractional request count: quarantined", "quarantined"),
        ({"period_start": "2025-01-01", "period_end": "2025-01-31", "period_label": "Custom",
          "user_email": "ada.lovelace@example.com", "product": "Chat", "model": "claude-haiku-4-5",
          "total_net_spend_usd": "-3.00"}, "negative spend: quarantined", "quarantined"),
    ],
}


def export_demo_sheet(org: Organisation, folder: str | Path) -> list[Path]:
    """Write ``<tab>.csv`` per tab: the organisation's rows, a blank row, then the hostile rows."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for tab, rows in org.sheet_tabs().items():
        columns = [*TAB_COLUMNS[tab], COMMENT]
        path = folder / f"{tab}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([row.get(c, "") for c in columns] for row in rows)
            hostile = HOSTILE.get(tab, [])
            if hostile:
                writer.writerow([""] * len(columns))
            for cells, comment, _ in hostile:
                writer.writerow([cells.get(c, "") for c in TAB_COLUMNS[tab]] + [f"HOSTILE: {comment}"])
        written.append(path)
    return written


def expected_outcome() -> dict[str, dict[str, int]]:
    """Per tab, how many hostile rows load and how many are quarantined."""
    return {tab: {"loads": sum(o == "loads" for *_, o in rows), "quarantined": sum(o == "quarantined" for *_, o in rows)}
            for tab, rows in HOSTILE.items()}
