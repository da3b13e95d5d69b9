"""Ground truth of the synthetic organisation: typed rows, and their JSON / CSV files.

Tests compare the warehouse's reference tables against these rows; `digest()` proves two generations
are identical (e.g. across time zones).
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.model import ApiKey

if TYPE_CHECKING:
    from sandbox.org import Organisation

Row = dict[str, Any]


def meta(org: Organisation) -> dict[str, Any]:
    return {
        "seed": org.seed,
        "people": len(org.people),
        "days": org.days,
        "start": org.start.isoformat(),
        "end": org.end.isoformat(),
        "organization_id": org.organization_id,
        "organization_name": org.organization_name,
    }


def key_is_developer_tooling(org: Organisation, key: ApiKey) -> bool:
    return key.purpose == "claude_code" and org.workspace(key.workspace_id).is_developer_tooling


def key_last_day(key: ApiKey) -> date | None:
    return key.archived_date - timedelta(days=1) if key.archived_date else None


def key_owner_rows(org: Organisation) -> list[Row]:
    """Owner of every owned key, effective-dated by the owner's team history over the key's life."""
    rows: list[Row] = []
    for key in org.api_keys:
        if key.owner_email is None:
            continue
        owner = org.person(key.owner_email)
        key_to = key_last_day(key)
        for a in owner.history:
            lo = max(a.valid_from, key.created_date)
            ends = [d for d in (a.valid_to, key_to) if d is not None]
            hi = min(ends) if ends else None
            if hi is not None and hi < lo:
                continue
            ws = org.workspace(key.workspace_id)
            rows.append(
                {
                    "api_key_id": key.id,
                    "api_key_name": key.name,
                    "workspace_id": key.workspace_id,
                    "workspace": ws.name,
                    "owner_email": owner.email,
                    "team": a.team,
                    "cost_center": a.cost_center,
                    "valid_from": lo,
                    "valid_to": hi,
                    "is_developer_tooling": key_is_developer_tooling(org, key),
                }
            )
    return rows


def ground_truth(org: Organisation) -> dict[str, list[Row]]:
    """Every reference fact of the organisation, as typed rows (date, Decimal, bool, None)."""
    ws_name = {w.id: w.name for w in org.workspaces}
    return {
        "teams": [{"team": t.name, "cost_center": t.cost_center} for t in org.teams],
        "people": [
            {"email": p.email, "name": p.name, "join_date": p.join_date, "leave_date": p.leave_date}
            for p in org.people
        ],
        "people_history": [
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
        ],
        "seats": [
            {
                "email": s.email,
                "tool": s.tool,
                "plan": s.plan,
                "valid_from": s.valid_from,
                "valid_to": s.valid_to,
                "idle": s.idle,
            }
            for s in org.seats
        ],
        "price_card": [
            {
                "tool": c.tool,
                "plan": c.plan,
                "monthly_price_usd": c.monthly_price_usd,
                "seats": c.seats,
                "valid_from": c.valid_from,
                "valid_to": c.valid_to,
            }
            for c in org.price_card
        ],
        "claude_code_access": [
            {
                "email": a.email,
                "via": a.via,
                "valid_from": a.valid_from,
                "valid_to": a.valid_to,
                "api_key_ids": list(a.api_key_ids),
            }
            for a in org.claude_code_access
        ],
        "workspaces": [
            {
                "workspace_id": w.id,
                "name": w.name,
                "kind": w.kind,
                "is_developer_tooling": w.is_developer_tooling,
                "created_date": w.created_date,
            }
            for w in org.workspaces
        ],
        "workspace_members": [
            {"workspace_id": m.workspace_id, "user_id": m.user_id, "workspace_role": m.workspace_role}
            for m in org.workspace_members
        ],
        "api_keys": [
            {
                "api_key_id": k.id,
                "name": k.name,
                "workspace_id": k.workspace_id,
                "workspace_name": ws_name[k.workspace_id],
                "purpose": k.purpose,
                "owner_email": k.owner_email,
                "created_date": k.created_date,
                "archived_date": k.archived_date,
                "status": k.status_on(org.end),
                "created_by_user_id": k.created_by_user_id,
                "partial_key_hint": k.partial_key_hint,
                "is_developer_tooling": key_is_developer_tooling(org, k),
            }
            for k in org.api_keys
        ],
        "api_key_names": [
            {"api_key_id": k.id, "name": n.name, "valid_from": n.valid_from, "valid_to": n.valid_to}
            for k in org.api_keys
            for n in k.names
        ],
        "api_key_owners": key_owner_rows(org),
        "users": [
            {
                "user_id": u.id,
                "email": u.email,
                "name": u.name,
                "role": u.role,
                "added_date": u.added_date,
                "removed_date": u.removed_date,
            }
            for u in org.users
        ],
    }


def to_jsonable(value: Any) -> Any:
    """date -> ISO string, Decimal -> exact string; containers recursively."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def to_cell(value: Any) -> str:
    """One CSV cell: '' for None, ISO dates, exact decimals, true/false, ';'-joined lists."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ";".join(to_cell(v) for v in value)
    return str(to_jsonable(value))


def canonical_json(org: Organisation) -> str:
    return json.dumps(
        {"meta": meta(org), "tables": to_jsonable(ground_truth(org))}, sort_keys=True, separators=(",", ":")
    )


def digest(org: Organisation) -> str:
    return hashlib.sha256(canonical_json(org).encode("utf-8")).hexdigest()


def write_csv(path: Path, rows: list[Row], columns: list[str] | None = None) -> Path:
    columns = columns or (list(rows[0]) if rows else [])
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([to_cell(row.get(c)) for c in columns])
    return path


def export_ground_truth(org: Organisation, folder: Path) -> list[Path]:
    """Write `ground_truth.json` (meta + every table) and one CSV per table into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = ground_truth(org)
    doc = {"meta": meta(org), "tables": to_jsonable(tables)}
    written = [folder / "ground_truth.json"]
    written[0].write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    for name, rows in tables.items():
        written.append(write_csv(folder / f"{name}.csv", rows))
    return written
