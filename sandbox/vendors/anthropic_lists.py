"""Organisation listings of the Anthropic Admin API simulator (vendor-apis.md §1.5).

Lists are snapshots as of the simulator clock's UTC day, newest first, paged with ``after_id`` /
``before_id`` and ``limit`` (1-1000, default 20); the envelope is ``{data, first_id, last_id, has_more}``.
The Default Workspace has no id and is never listed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sandbox.app import HTTPAbort, Request, Response, json_response
from sandbox.vendors.anthropic_objects import api_key_obj, member_obj, user_obj, workspace_obj
from sandbox.vendors.anthropic_params import bad_request, parse_limit

if TYPE_CHECKING:
    from sandbox.vendors.anthropic import AnthropicApp

KEY_STATUSES = ("active", "inactive", "archived", "expired")


def page_of(items: list[dict[str, Any]], request: Request, id_field: str = "id") -> Response:
    """One page of `items` (already in list order) per ``limit`` / ``after_id`` / ``before_id``."""
    limit = parse_limit(request, 20, 1000)
    after, before = request.arg("after_id"), request.arg("before_id")
    if after and before:
        raise bad_request("after_id and before_id cannot be used together")
    ids = [item[id_field] for item in items]
    if after:
        if after not in ids:
            raise bad_request(f"after_id: {after!r} is not in this list")
        rest = items[ids.index(after) + 1 :]
        page, more = rest[:limit], len(rest) > limit
    elif before:
        if before not in ids:
            raise bad_request(f"before_id: {before!r} is not in this list")
        rest = items[: ids.index(before)]
        page, more = rest[-limit:], len(rest) > limit
    else:
        page, more = items[:limit], len(items) > limit
    body = {
        "data": page,
        "first_id": page[0][id_field] if page else None,
        "last_id": page[-1][id_field] if page else None,
        "has_more": more,
    }
    return json_response(body, records="data", required=(id_field,))


def _newest_first(items: list[dict[str, Any]], stamp_field: str) -> list[dict[str, Any]]:
    return sorted(items, key=lambda it: (it[stamp_field], it["id"]), reverse=True)


def api_keys(app: AnthropicApp) -> list[dict[str, Any]]:
    today, seed = app.clock.today(), app.org.seed
    return _newest_first(
        [
            api_key_obj(k, seed, today, app.options.extra_fields)
            for k in app.org.api_keys
            if k.created_date <= today
        ],
        "created_at",
    )


def users(app: AnthropicApp) -> list[dict[str, Any]]:
    today = app.clock.today()
    return _newest_first([user_obj(u, app.org.seed) for u in app.org.users if u.member_on(today)], "added_at")


def workspaces(app: AnthropicApp) -> list[dict[str, Any]]:
    today = app.clock.today()
    return _newest_first(
        [
            workspace_obj(w, app.org.seed)
            for w in app.org.workspaces
            if w.id is not None and w.created_date <= today
        ],
        "created_at",
    )


def register_lists(
    app: AnthropicApp, route: Callable[[str], Callable[[Callable[[Request], Response]], Any]]
) -> None:
    """Add the listing routes to `app` through `route` (the app's guarded GET decorator)."""

    @route("/v1/organizations/me")
    def me(request: Request) -> Response:
        return json_response(
            {"id": app.org.organization_id, "type": "organization", "name": app.org.organization_name}
        )

    @route("/v1/organizations/api_keys")
    def list_api_keys(request: Request) -> Response:
        items = api_keys(app)
        status = request.arg("status")
        if status:
            if status not in KEY_STATUSES:
                raise bad_request(f"status: Input should be one of {', '.join(KEY_STATUSES)}, got {status!r}")
            items = [k for k in items if k["status"] == status]
        if request.arg("workspace_id"):
            items = [k for k in items if k["workspace_id"] == request.arg("workspace_id")]
        if request.arg("created_by_user_id"):
            items = [k for k in items if k["created_by"]["id"] == request.arg("created_by_user_id")]
        return page_of(items, request)

    @route("/v1/organizations/api_keys/{api_key_id}")
    def get_api_key(request: Request) -> Response:
        return _one(api_keys(app), request.path_params["api_key_id"], "API key")

    @route("/v1/organizations/users")
    def list_users(request: Request) -> Response:
        items = users(app)
        email = (request.arg("email") or "").strip().lower()
        if email:
            items = [u for u in items if u["email"].lower() == email]
        return page_of(items, request)

    @route("/v1/organizations/users/{user_id}")
    def get_user(request: Request) -> Response:
        return _one(users(app), request.path_params["user_id"], "user")

    @route("/v1/organizations/workspaces")
    def list_workspaces(request: Request) -> Response:
        return page_of(workspaces(app), request)  # no archived workspaces: include_archived changes nothing

    @route("/v1/organizations/workspaces/{workspace_id}")
    def get_workspace(request: Request) -> Response:
        return _one(workspaces(app), request.path_params["workspace_id"], "workspace")

    @route("/v1/organizations/workspaces/{workspace_id}/members")
    def list_members(request: Request) -> Response:
        ws = request.path_params["workspace_id"]
        _one(workspaces(app), ws, "workspace")
        today = app.clock.today()
        active = {u.id for u in app.org.users if u.member_on(today)}
        items = [
            member_obj(m) for m in app.org.workspace_members if m.workspace_id == ws and m.user_id in active
        ]
        return page_of(items, request, "user_id")

    @route("/v1/organizations/invites")
    def list_invites(request: Request) -> Response:
        return page_of([], request)


def _one(items: list[dict[str, Any]], item_id: str, what: str) -> Response:
    for item in items:
        if item["id"] == item_id:
            return json_response(item)
    raise HTTPAbort(404, f"{what} {item_id!r} not found")
