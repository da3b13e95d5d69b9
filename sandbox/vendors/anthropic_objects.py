"""Organisation listing objects of the Anthropic Admin API (vendor-apis.md §1.5), as of one UTC day.

Timestamps get a stable time of day (with microseconds) derived from the object's id, so they look like
the vendor's (``2024-10-30T23:58:27.427722Z``) and the ground truth can recompute them. With
``extra_fields`` on, product-workload API keys carry an undocumented ``last_used_at`` parsers must ignore.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sandbox.model import AnthropicUser, ApiKey, Workspace, WorkspaceMember
from sandbox.rng import stable_int


def instant(day: date, seed: int, *key: object) -> datetime:
    """A stable time of day on `day` (with microseconds), so created_at values look real."""
    x = stable_int(seed, "anthropic-instant", *key, bits=48)
    return datetime.combine(day, time(0), tzinfo=UTC) + timedelta(
        seconds=x % 86_400, microseconds=(x >> 17) % 1_000_000
    )


def rfc3339_micro(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def api_key_obj(k: ApiKey, seed: int, today: date, extra_fields: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": k.id,
        "type": "api_key",
        "name": k.name_on(today),
        "created_at": rfc3339_micro(instant(k.created_date, seed, "api_key", k.id)),
        "created_by": {"id": k.created_by_user_id, "type": "user"},
        "expires_at": None,
        "partial_key_hint": k.partial_key_hint,
        "status": k.status_on(today),
        "workspace_id": k.workspace_id,
    }
    if extra_fields and k.purpose == "workload":
        out["last_used_at"] = rfc3339_micro(instant(today, seed, "last-used", k.id) - timedelta(days=1))
    return out


def user_obj(u: AnthropicUser, seed: int) -> dict[str, Any]:
    return {
        "id": u.id,
        "type": "user",
        "email": u.email,
        "name": u.name,
        "role": u.role,
        "added_at": rfc3339_micro(instant(u.added_date, seed, "user", u.id)),
    }


def workspace_tags(w: Workspace) -> dict[str, str]:
    return {"purpose": "developer-tooling"} if w.is_developer_tooling else {"env": "prod"}


def workspace_residency(w: Workspace) -> dict[str, Any]:
    return {
        "allowed_inference_geos": "unrestricted",
        "default_inference_geo": "global",
        "workspace_geo": "us",
    }


def workspace_obj(w: Workspace, seed: int) -> dict[str, Any]:
    return {
        "id": w.id,
        "type": "workspace",
        "name": w.name,
        "created_at": rfc3339_micro(instant(w.created_date, seed, "workspace", w.id)),
        "archived_at": None,
        "display_color": w.display_color,
        "tags": workspace_tags(w),
        "data_residency": workspace_residency(w),
    }


def member_obj(m: WorkspaceMember) -> dict[str, Any]:
    return {
        "type": "workspace_member",
        "user_id": m.user_id,
        "workspace_id": m.workspace_id,
        "workspace_role": m.workspace_role,
    }
