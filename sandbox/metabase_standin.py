"""A strict stand-in for the parts of Metabase's REST API that dashboard provisioning uses.

No Metabase server can run here, so the provisioner is tested against this: an in-memory Metabase that
implements exactly the endpoints and payload shapes `ai_usage.dashboards.provision` sends, written from
Metabase's API documentation (https://www.metabase.com/docs/latest/api; the per-endpoint pages of v0.50,
e.g. https://www.metabase.com/docs/v0.50/api/card, /api/dashboard, /api/collection, /api/database,
/api/permissions, /api/pulse, /api/session) and from the permission-graph schema of Metabase's source
(``metabase.permissions.api.permission-graph``: StrictDbGraph). It is strict on purpose: a body with a key
the documentation does not list, a missing required key, a value of the wrong shape, a dashboard filter
wired to a template tag the card does not have, or a stale graph revision is refused with Metabase's
status (400, 404, 409, 402 for paid-plan permissions), so drift between client and API is caught.

Auth: ``POST /api/session`` with the configured user, then ``X-Metabase-Session``; or ``X-API-Key``.
Tests reach the state directly (`state`) to seed users and group members and to inspect results.
"""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.app import App, HTTPAbort, Request, Response, json_response

SECRET = "**MetabasePass**"  # how Metabase shows a secret connection property it keeps
ALL_USERS_ID, ADMINS_ID = 1, 2

# Connection properties per engine (the drivers' metabase-plugin.yaml; BigQuery's from its driver code).
ENGINE_DETAILS = {
    "bigquery-cloud-sdk": {
        "project-id", "service-account-json", "dataset-filters-type", "dataset-filters-patterns",
        "use-jvm-timezone", "include-user-id-and-hash", "advanced-options", "host",
    },
    "duckdb": {
        "database_file", "read_only", "old_implicit_casting", "allow_unsigned_extensions", "memory_limit",
        "azure_transport_option_type", "motherduck_token", "init_sql", "filter_by_search_path",
        "additional-options",
    },
}
SECRET_DETAILS = {"service-account-json", "motherduck_token"}
TAG_TYPES = {"text", "number", "date", "dimension", "card", "snippet", "temporal-unit"}
PARAMETER_TYPES = {
    "date/single", "date/range", "date/all-options", "date/month-year", "date/quarter-year", "date/relative",
    "string/=", "string/!=", "string/contains", "category", "number/=", "number/between", "id", "text",
    "temporal-unit",
}
DISPLAYS = {"scalar", "smartscalar", "line", "bar", "row", "area", "combo", "pie", "table", "pivot",
            "progress", "gauge", "funnel", "map", "scatter", "waterfall", "object"}
_TAG_IN_QUERY = re.compile(r"\{\{\s*([A-Za-z0-9_.#-]+)\s*\}\}")


class BadRequest(HTTPAbort):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(400, f"{field_name}: {message}", response=json_response(
            {"errors": {field_name: message}, "specific-errors": {field_name: [message]}}, status=400))


# --------------------------------------------------------------------------- validation helpers

Check = Callable[[Any, str], None]


def _keys(body: Any, where: str, required: Mapping[str, Check], optional: Mapping[str, Check]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(where or "body", "value must be a map")
    for name in body:
        if name not in required and name not in optional:
            raise BadRequest(f"{where}{name}", "unknown key (not in Metabase's API documentation)")
    for name, check in required.items():
        if name not in body:
            raise BadRequest(f"{where}{name}", "missing required key")
        check(body[name], f"{where}{name}")
    for name, check in optional.items():
        if name in body:
            check(body[name], f"{where}{name}")
    return body


def non_blank(value: Any, where: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(where, "value must be a non-blank string.")


def nullable(check: Check) -> Check:
    def run(value: Any, where: str) -> None:
        if value is not None:
            check(value, where)
    return run


def string(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise BadRequest(where, "value must be a string.")


def boolean(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise BadRequest(where, "value must be a boolean.")


def pos_int(value: Any, where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise BadRequest(where, "value must be an integer greater than zero.")


def a_map(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise BadRequest(where, "Value must be a map.")


def one_of(*allowed: Any) -> Check:
    def run(value: Any, where: str) -> None:
        if value not in allowed:
            raise BadRequest(where, f"value must be one of: {', '.join(map(str, allowed))}.")
    return run


def list_of(check: Check) -> Check:
    def run(value: Any, where: str) -> None:
        if not isinstance(value, list):
            raise BadRequest(where, "value must be an array.")
        for i, item in enumerate(value):
            check(item, f"{where}[{i}].")
    return run


def anything(value: Any, where: str) -> None:
    return None


def nonzero_int(value: Any, where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value == 0:
        raise BadRequest(where, "value must be a non-zero integer (negative for a new dashcard).")


def hour(value: Any, where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 23:
        raise BadRequest(where, "value must be an integer from 0 to 23.")


# --------------------------------------------------------------------------- the state


@dataclass
class StandInState:
    """Everything the stand-in Metabase holds; tests seed and inspect it directly."""

    username: str = "admin@example.com"
    password: str = "admin-password"
    api_key: str | None = None
    sessions: set[str] = field(default_factory=set)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    groups: dict[int, str] = field(default_factory=lambda: {ALL_USERS_ID: "All Users", ADMINS_ID: "Administrators"})
    members: dict[int, set[int]] = field(default_factory=lambda: {ALL_USERS_ID: {1}, ADMINS_ID: {1}})
    databases: dict[int, dict[str, Any]] = field(default_factory=dict)
    collections: dict[int, dict[str, Any]] = field(default_factory=dict)
    cards: dict[int, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[int, dict[str, Any]] = field(default_factory=dict)
    pulses: dict[int, dict[str, Any]] = field(default_factory=dict)
    data_perms: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    collection_perms: dict[int, dict[str, str]] = field(default_factory=dict)
    data_revision: int = 1
    collection_revision: int = 1
    premium: bool = False   # paid-plan features (view-data "blocked")
    lock: threading.RLock = field(default_factory=threading.RLock)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(10))

    def __post_init__(self) -> None:
        self.users.setdefault(1, {"id": 1, "email": self.username, "first_name": "Admin", "last_name": "User",
                                  "is_superuser": True})
        for gid in self.groups:
            self.collection_perms.setdefault(gid, {"root": "write"})

    def next_id(self) -> int:
        return next(self._ids)

    def add_user(self, email: str, *, groups: tuple[str, ...] = ()) -> int:
        """Create a user (member of All Users and of the named groups, which must exist)."""
        with self.lock:
            uid = self.next_id()
            first, _, last = email.split("@")[0].partition(".")
            self.users[uid] = {"id": uid, "email": email, "first_name": first.title(), "last_name": last.title(),
                               "is_superuser": False}
            self.members[ALL_USERS_ID].add(uid)
            for name in groups:
                gid = next(g for g, n in self.groups.items() if n == name)
                self.members.setdefault(gid, set()).add(uid)
            return uid

    def group_id(self, name: str) -> int:
        return next(g for g, n in self.groups.items() if n == name)


# --------------------------------------------------------------------------- the app


def build_app(state: StandInState | None = None) -> tuple[App, StandInState]:
    """The stand-in as a sandbox `App` (serve it with ``sandbox.server.SimServer``)."""
    st = state or StandInState()
    app = App("metabase", error_body=lambda status, message: {"message": message})

    def route(method: str, pattern: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(request: Request) -> Any:
                if pattern != "/api/session":
                    _authenticate(st, request)
                with st.lock:
                    return handler(request)
            app.add_route(method, pattern, wrapped)
            return handler
        return decorate

    _session_routes(route, st)
    _permission_routes(route, st)  # before /api/collection/{id}: /api/collection/graph is its own route
    _database_routes(route, st)
    _group_routes(route, st)
    _collection_routes(route, st)
    _card_routes(route, st)
    _dashboard_routes(route, st)
    _pulse_routes(route, st)
    return app, st


def _authenticate(st: StandInState, request: Request) -> None:
    session, key = request.header("x-metabase-session"), request.header("x-api-key")
    if (session and session in st.sessions) or (key and st.api_key and key == st.api_key):
        return
    raise HTTPAbort(401, response=Response(status=401, body=b"Unauthenticated", content_type="text/plain"))


def _entity(st: StandInState, table: dict[int, dict[str, Any]], object_id: str, what: str) -> dict[str, Any]:
    try:
        found = table[int(object_id)]
    except (KeyError, ValueError):
        raise HTTPAbort(404, f"{what} not found") from None
    return found


def _session_routes(route: Any, st: StandInState) -> None:
    @route("POST", "/api/session")
    def session(request: Request) -> Any:
        body = _keys(request.json, "", {"username": non_blank, "password": non_blank}, {"remember": boolean})
        if body["username"] != st.username or body["password"] != st.password:
            raise HTTPAbort(401, response=json_response(
                {"errors": {"password": "did not match stored password"}}, status=401))
        token = str(uuid.uuid4())
        st.sessions.add(token)
        return {"id": token}

    @route("GET", "/api/user/current")
    def current(request: Request) -> Any:
        user = st.users[1]
        return {**user, "common_name": f"{user['first_name']} {user['last_name']}"}


def _database_view(db: dict[str, Any]) -> dict[str, Any]:
    details = {k: (SECRET if k in SECRET_DETAILS and v else v) for k, v in db["details"].items()}
    return {**db, "details": details}


def _check_details(engine: str, details: Any, where: str) -> None:
    a_map(details, where)
    unknown = sorted(set(details) - ENGINE_DETAILS[engine])
    if unknown:
        raise BadRequest(where, f"unknown connection propert(ies) {unknown} for engine {engine}")


def _database_routes(route: Any, st: StandInState) -> None:
    optional = {"schedules": nullable(a_map), "connection_source": nullable(one_of("admin", "setup")),
                "auto_run_queries": nullable(boolean), "is_full_sync": nullable(boolean),
                "cache_ttl": nullable(pos_int), "is_on_demand": nullable(boolean)}

    @route("GET", "/api/database")
    def listing(request: Request) -> Any:
        data = [_database_view(d) for d in st.databases.values()]
        return {"data": data, "total": len(data)}

    @route("POST", "/api/database")
    def create(request: Request) -> Any:
        body = _keys(request.json, "", {"engine": one_of(*ENGINE_DETAILS), "name": non_blank, "details": a_map},
                     optional)
        _check_details(body["engine"], body["details"], "details")
        if any(d["name"] == body["name"] for d in st.databases.values()):
            raise BadRequest("name", "a database with this name exists")
        db_id = st.next_id()
        st.databases[db_id] = {"id": db_id, "name": body["name"], "engine": body["engine"],
                               "details": dict(body["details"]), "is_full_sync": body.get("is_full_sync", True),
                               "auto_run_queries": body.get("auto_run_queries", True)}
        # A new database: every group may view it and All Users may query it (Metabase's defaults).
        for gid in st.groups:
            st.data_perms.setdefault(gid, {})[db_id] = {"view-data": "unrestricted",
                                                        "create-queries": "query-builder-and-native"}
        st.data_revision += 1
        return _database_view(st.databases[db_id])

    @route("GET", "/api/database/{id}")
    def get(request: Request) -> Any:
        return _database_view(_entity(st, st.databases, request.path_params["id"], "Database"))

    @route("PUT", "/api/database/{id}")
    def update(request: Request) -> Any:
        db = _entity(st, st.databases, request.path_params["id"], "Database")
        body = _keys(request.json, "", {}, {
            "engine": nullable(one_of(*ENGINE_DETAILS)), "name": nullable(non_blank), "details": nullable(a_map),
            "schedules": nullable(a_map), "refingerprint": nullable(boolean), "points_of_interest": nullable(string),
            "description": nullable(string), "auto_run_queries": nullable(boolean), "settings": nullable(a_map),
            "caveats": nullable(string), "is_full_sync": nullable(boolean), "cache_ttl": nullable(pos_int),
            "is_on_demand": nullable(boolean),
        })
        engine = body.get("engine") or db["engine"]
        if body.get("details") is not None:
            _check_details(engine, body["details"], "details")
            kept = {k: (db["details"].get(k) if v == SECRET else v) for k, v in body["details"].items()}
            db["details"] = kept
        for name in ("name", "engine", "description", "auto_run_queries", "is_full_sync"):
            if body.get(name) is not None:
                db[name] = body[name]
        return _database_view(db)


def _group_routes(route: Any, st: StandInState) -> None:
    @route("GET", "/api/permissions/group")
    def listing(request: Request) -> Any:
        return [{"id": gid, "name": name, "member_count": len(st.members.get(gid, ()))}
                for gid, name in sorted(st.groups.items())]

    @route("POST", "/api/permissions/group")
    def create(request: Request) -> Any:
        body = _keys(request.json, "", {"name": non_blank}, {})
        if body["name"] in st.groups.values():
            raise BadRequest("name", "A group with that name already exists.")
        gid = st.next_id()
        st.groups[gid] = body["name"]
        st.members[gid] = set()
        st.collection_perms[gid] = {"root": "none", **{str(c): "none" for c in st.collections}}
        st.data_perms[gid] = {}
        return {"id": gid, "name": body["name"], "member_count": 0}

    @route("GET", "/api/permissions/group/{id}")
    def get(request: Request) -> Any:
        gid = int(request.path_params["id"])
        if gid not in st.groups:
            raise HTTPAbort(404, "Not found.")
        members = [{"user_id": uid, "email": st.users[uid]["email"], "first_name": st.users[uid]["first_name"],
                    "last_name": st.users[uid]["last_name"], "membership_id": gid * 1000 + uid,
                    "is_group_manager": False} for uid in sorted(st.members.get(gid, ()))]
        return {"id": gid, "name": st.groups[gid], "members": members}


def _collection_routes(route: Any, st: StandInState) -> None:
    optional = {"description": nullable(non_blank), "parent_id": nullable(pos_int), "namespace": nullable(non_blank),
                "authority_level": nullable(one_of("official"))}

    @route("GET", "/api/collection")
    def listing(request: Request) -> Any:
        root = {"id": "root", "name": "Our analytics", "description": None, "can_write": True}
        return [root] + [{**c, "can_write": True} for c in st.collections.values() if not c["archived"]]

    @route("POST", "/api/collection")
    def create(request: Request) -> Any:
        body = _keys(request.json, "", {"name": non_blank}, optional)
        cid = st.next_id()
        st.collections[cid] = {"id": cid, "name": body["name"], "description": body.get("description"),
                               "archived": False, "location": "/", "entity_id": uuid.uuid4().hex[:21]}
        for perms in st.collection_perms.values():  # a new collection copies its parent's permissions
            perms[str(cid)] = perms.get("root", "none")
        st.collection_revision += 1
        return st.collections[cid]

    @route("PUT", "/api/collection/{id}")
    def update(request: Request) -> Any:
        collection = _entity(st, st.collections, request.path_params["id"], "Collection")
        body = _keys(request.json, "", {}, {**optional, "name": nullable(non_blank), "archived": nullable(boolean)})
        for name in ("name", "description", "archived"):
            if name in body:
                collection[name] = body[name]
        return collection

    @route("GET", "/api/collection/{id}/items")
    def items(request: Request) -> Any:
        cid = int(_entity(st, st.collections, request.path_params["id"], "Collection")["id"])
        models = request.args("models") or ["card", "dashboard"]
        unknown = set(models) - {"card", "dashboard", "dataset", "collection", "pulse", "snippet", "timeline",
                                 "no_models"}
        if unknown:
            raise BadRequest("models", f"unknown model(s) {sorted(unknown)}")
        data = []
        for model, table in (("card", st.cards), ("dashboard", st.dashboards)):
            if model in models:
                data += [{"id": o["id"], "name": o["name"], "description": o.get("description"), "model": model,
                          "collection_position": None} for o in table.values()
                         if o["collection_id"] == cid and not o["archived"]]
        return {"total": len(data), "data": data, "models": models, "limit": None, "offset": None}


def _check_template_tags(native: Any, where: str) -> None:
    _keys(native, where, {"query": non_blank}, {"template-tags": nullable(a_map), "collection": nullable(string)})
    tags = native.get("template-tags") or {}
    in_query = set(_TAG_IN_QUERY.findall(native["query"]))
    if set(tags) != in_query:
        raise BadRequest(f"{where}template-tags", f"tags {sorted(tags)} do not match the query's {sorted(in_query)}")
    for name, tag in tags.items():
        _keys(tag, f"{where}template-tags.{name}.", {"id": non_blank, "name": one_of(name), "display-name": non_blank,
                                                     "type": one_of(*TAG_TYPES)},
              {"required": boolean, "default": anything, "dimension": anything, "widget-type": string,
               "options": anything})


def _check_parameters(value: Any, where: str) -> None:
    list_of(lambda p, w: _keys(p, w, {"id": non_blank, "type": one_of(*PARAMETER_TYPES)}, {
        "name": non_blank, "slug": non_blank, "target": anything, "default": anything, "sectionId": string,
        "values_source_type": nullable(one_of("static-list", "card")), "values_source_config": a_map,
        "values_query_type": one_of("list", "search", "none"), "required": boolean,
        "filteringParameters": anything, "isMultiSelect": boolean,
    }))(value, where)


def _check_dataset_query(st: StandInState, value: Any, where: str) -> None:
    _keys(value, where, {"type": one_of("native", "query"), "database": pos_int}, {"native": a_map, "query": a_map})
    if value["database"] not in st.databases:
        raise BadRequest(f"{where}database", "database does not exist")
    if value["type"] == "native":
        _check_template_tags(value.get("native"), f"{where}native.")


def _card_routes(route: Any, st: StandInState) -> None:
    def optional() -> dict[str, Check]:
        return {"parameters": nullable(_check_parameters), "description": nullable(non_blank),
                "collection_position": nullable(pos_int), "result_metadata": anything,
                "collection_id": nullable(pos_int), "type": nullable(one_of("question", "model", "metric")),
                "cache_ttl": nullable(pos_int), "parameter_mappings": nullable(list_of(a_map))}

    def check_collection(body: dict[str, Any]) -> None:
        if body.get("collection_id") is not None and body["collection_id"] not in st.collections:
            raise BadRequest("collection_id", "collection does not exist")

    @route("POST", "/api/card")
    def create(request: Request) -> Any:
        body = _keys(request.json, "", {
            "name": non_blank, "display": one_of(*DISPLAYS), "visualization_settings": a_map,
            "dataset_query": lambda v, w: _check_dataset_query(st, v, w + "."),
        }, optional())
        check_collection(body)
        card_id = st.next_id()
        st.cards[card_id] = {"id": card_id, "archived": False, "collection_id": None, "description": None,
                             "parameters": [], "type": "question", "query_type": body["dataset_query"]["type"],
                             "database_id": body["dataset_query"]["database"], "creator_id": 1,
                             "entity_id": uuid.uuid4().hex[:21], **body}
        return st.cards[card_id]

    @route("GET", "/api/card/{id}")
    def get(request: Request) -> Any:
        return _entity(st, st.cards, request.path_params["id"], "Card")

    @route("PUT", "/api/card/{id}")
    def update(request: Request) -> Any:
        card = _entity(st, st.cards, request.path_params["id"], "Card")
        body = _keys(request.json, "", {}, {
            **optional(), "description": nullable(string), "collection_preview": nullable(boolean),
            "visualization_settings": nullable(a_map), "archived": nullable(boolean),
            "enable_embedding": nullable(boolean), "name": nullable(non_blank), "embedding_params": nullable(a_map),
            "dataset_query": nullable(lambda v, w: _check_dataset_query(st, v, w + ".")),
            "display": nullable(one_of(*DISPLAYS)),
        })
        check_collection(body)
        card.update({k: v for k, v in body.items() if v is not None or k in ("description", "collection_id")})
        return card


def _check_target(st: StandInState, card: dict[str, Any], target: Any, where: str) -> None:
    if not (isinstance(target, list) and len(target) == 2 and target[0] in ("variable", "dimension")
            and isinstance(target[1], list) and len(target[1]) == 2 and target[1][0] == "template-tag"):
        raise BadRequest(where, "target must be [\"variable\"|\"dimension\", [\"template-tag\", <name>]]")
    tags = card["dataset_query"].get("native", {}).get("template-tags") or {}
    if target[1][1] not in tags:
        raise BadRequest(where, f"card {card['id']} has no template tag {target[1][1]!r}")


def _dashboard_view(st: StandInState, dashboard: dict[str, Any]) -> dict[str, Any]:
    dashcards = [{**dc, "card": {"id": dc["card_id"], "name": st.cards[dc["card_id"]]["name"]}}
                 for dc in dashboard["dashcards"]]
    return {**dashboard, "dashcards": dashcards}


def _dashboard_routes(route: Any, st: StandInState) -> None:
    @route("POST", "/api/dashboard")
    def create(request: Request) -> Any:
        body = _keys(request.json, "", {"name": non_blank}, {
            "description": nullable(string), "parameters": nullable(_check_parameters),
            "cache_ttl": nullable(pos_int), "collection_id": nullable(pos_int),
            "collection_position": nullable(pos_int)})
        if body.get("collection_id") is not None and body["collection_id"] not in st.collections:
            raise BadRequest("collection_id", "collection does not exist")
        dashboard_id = st.next_id()
        st.dashboards[dashboard_id] = {"id": dashboard_id, "archived": False, "description": None,
                                       "collection_id": None, "parameters": [], "dashcards": [], "tabs": [],
                                       "width": "fixed", "entity_id": uuid.uuid4().hex[:21], **body}
        return _dashboard_view(st, st.dashboards[dashboard_id])

    @route("GET", "/api/dashboard/{id}")
    def get(request: Request) -> Any:
        return _dashboard_view(st, _entity(st, st.dashboards, request.path_params["id"], "Dashboard"))

    @route("PUT", "/api/dashboard/{id}")
    def update(request: Request) -> Any:
        dashboard = _entity(st, st.dashboards, request.path_params["id"], "Dashboard")
        body = _keys(request.json, "", {}, {
            "parameters": nullable(_check_parameters), "points_of_interest": nullable(string),
            "description": nullable(string), "archived": nullable(boolean), "dashcards": nullable(list_of(a_map)),
            "collection_position": nullable(pos_int), "tabs": nullable(list_of(a_map)),
            "show_in_getting_started": nullable(boolean), "enable_embedding": nullable(boolean),
            "collection_id": nullable(pos_int), "name": nullable(non_blank), "width": nullable(one_of("fixed", "full")),
            "caveats": nullable(string), "embedding_params": nullable(a_map), "cache_ttl": nullable(pos_int),
            "position": nullable(pos_int)})
        parameters = body.get("parameters", dashboard["parameters"]) or []
        if body.get("dashcards") is not None:
            dashboard["dashcards"] = _apply_dashcards(st, dashboard, body["dashcards"], parameters)
        for name in ("parameters", "description", "archived", "collection_id", "name", "width"):
            if name in body and (body[name] is not None or name == "description"):
                dashboard[name] = body[name]
        return _dashboard_view(st, dashboard)


def _apply_dashcards(
    st: StandInState, dashboard: dict[str, Any], dashcards: list[dict[str, Any]], parameters: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    ids = [dc.get("id") for dc in dashcards]
    if len(set(ids)) != len(ids):
        raise BadRequest("dashcards", "value must be seq of maps in which ids are unique")
    own = {dc["id"] for dc in dashboard["dashcards"]}
    parameter_ids = {p["id"] for p in parameters}
    out = []
    for i, dc in enumerate(dashcards):
        where = f"dashcards[{i}]."
        _keys(dc, where, {"id": nonzero_int, "card_id": nullable(pos_int), "row": _non_negative,
            "col": _non_negative, "size_x": pos_int, "size_y": pos_int}, {
            "parameter_mappings": nullable(list_of(a_map)), "visualization_settings": nullable(a_map),
            "series": nullable(list_of(a_map)), "dashboard_tab_id": nullable(pos_int), "action_id": nullable(pos_int),
            "inline_parameters": nullable(list_of(string))})
        if dc["id"] > 0 and dc["id"] not in own:
            raise BadRequest(f"{where}id", f"dashcard {dc['id']} is not on dashboard {dashboard['id']}")
        if dc["col"] + dc["size_x"] > 24:
            raise BadRequest(f"{where}col", "the card does not fit the 24-column grid")
        card = st.cards.get(dc["card_id"]) if dc.get("card_id") is not None else None
        if dc.get("card_id") is not None and card is None:
            raise BadRequest(f"{where}card_id", "card does not exist")
        for j, mapping in enumerate(dc.get("parameter_mappings") or []):
            mw = f"{where}parameter_mappings[{j}]."
            _keys(mapping, mw, {"parameter_id": non_blank, "target": anything}, {"card_id": nullable(pos_int)})
            if mapping["parameter_id"] not in parameter_ids:
                raise BadRequest(f"{mw}parameter_id", f"dashboard has no parameter {mapping['parameter_id']!r}")
            if card is None or mapping.get("card_id", card["id"]) != card["id"]:
                raise BadRequest(f"{mw}card_id", "mapping must target the dashcard's card")
            _check_target(st, card, mapping["target"], f"{mw}target")
        dashcard_id = dc["id"] if dc["id"] > 0 else st.next_id()
        out.append({"id": dashcard_id, "dashboard_id": dashboard["id"], "card_id": dc.get("card_id"),
                    "row": dc["row"], "col": dc["col"], "size_x": dc["size_x"], "size_y": dc["size_y"],
                    "parameter_mappings": dc.get("parameter_mappings") or [],
                    "visualization_settings": dc.get("visualization_settings") or {},
                    "series": dc.get("series") or [], "dashboard_tab_id": dc.get("dashboard_tab_id")})
    return out


def _non_negative(value: Any, where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadRequest(where, "value must be an integer greater or equal to than zero.")


# --------------------------------------------------------------------------- permission graphs

_LEAST = {"view-data": "blocked", "create-queries": "no", "details": "no"}
_SCHEMAS_LEAST = {"download": "none", "data-model": "none"}
_VALUES = {
    "view-data": {"unrestricted", "blocked", "legacy-no-self-service", "impersonated"},
    "create-queries": {"query-builder-and-native", "query-builder", "no"},
    "details": {"yes", "no"},
}
_SCHEMA_VALUES = {"download": {"full", "limited", "none"}, "data-model": {"all", "none"}}


def _data_graph(st: StandInState) -> dict[str, Any]:
    """The graph as Metabase returns it: least-permissive values left out, admins full on every database."""
    groups: dict[str, Any] = {}
    for gid in st.groups:
        entries: dict[str, Any] = {}
        for db_id in st.databases:
            if gid == ADMINS_ID:
                entries[str(db_id)] = {"view-data": "unrestricted", "create-queries": "query-builder-and-native",
                                       "download": {"schemas": "full"}, "data-model": {"schemas": "all"},
                                       "details": "yes"}
                continue
            entry = {k: v for k, v in st.data_perms.get(gid, {}).get(db_id, {}).items()
                     if not (k in _LEAST and v == _LEAST[k])
                     and not (k in _SCHEMAS_LEAST and v.get("schemas") == _SCHEMAS_LEAST[k])}
            if entry:
                entries[str(db_id)] = entry
        groups[str(gid)] = entries
    return {"revision": st.data_revision, "groups": groups}


def _check_db_entry(st: StandInState, entry: Any, where: str) -> None:
    _keys(entry, where, {}, {
        "view-data": one_of(*_VALUES["view-data"]), "create-queries": one_of(*_VALUES["create-queries"]),
        "details": one_of(*_VALUES["details"]),
        "download": lambda v, w: _keys(v, w + ".", {"schemas": one_of(*_SCHEMA_VALUES["download"])}, {}),
        "data-model": lambda v, w: _keys(v, w + ".", {"schemas": one_of(*_SCHEMA_VALUES["data-model"])}, {}),
    })
    if entry.get("view-data") == "blocked" and not st.premium:
        raise HTTPAbort(402, "The blocked permissions functionality is only enabled if you have a premium token "
                             "with the advanced-permissions feature.")
    if entry.get("create-queries") == "query-builder-and-native" and entry.get("view-data") == "blocked":
        raise BadRequest(where, "Invalid DB permissions: If you have write access for native queries, you must "
                                "have data access to all schemas.")


def _permission_routes(route: Any, st: StandInState) -> None:
    @route("GET", "/api/permissions/graph")
    def data_graph(request: Request) -> Any:
        return _data_graph(st)

    @route("PUT", "/api/permissions/graph")
    def put_data_graph(request: Request) -> Any:
        body = _keys(request.json, "", {"groups": a_map}, {"revision": nullable(lambda v, w: None), "force": boolean,
                                                           "sandboxes": anything, "impersonations": anything})
        if "sandboxes" in body or "impersonations" in body:
            raise HTTPAbort(402, "Sandboxes and impersonations are paid-plan features.")
        if body.get("revision") != st.data_revision and not body.get("force"):
            raise HTTPAbort(409, "Looks like someone else edited the permissions and your data is out of date. "
                                 "Please fetch new data and try again.")
        for gid_text, dbs in body["groups"].items():
            gid = int(gid_text)
            if gid not in st.groups:
                raise BadRequest(f"groups.{gid_text}", "group does not exist")
            if gid == ADMINS_ID:
                raise BadRequest(f"groups.{gid_text}", "the Administrators group's permissions cannot be changed")
            a_map(dbs, f"groups.{gid_text}")
            for db_text, entry in dbs.items():
                if int(db_text) not in st.databases:
                    raise BadRequest(f"groups.{gid_text}.{db_text}", "database does not exist")
                _check_db_entry(st, entry, f"groups.{gid_text}.{db_text}")
        for gid_text, dbs in body["groups"].items():
            for db_text, entry in dbs.items():
                st.data_perms.setdefault(int(gid_text), {}).setdefault(int(db_text), {}).update(entry)
        st.data_revision += 1
        return _data_graph(st)

    @route("GET", "/api/collection/graph")
    def collection_graph(request: Request) -> Any:
        return {"revision": st.collection_revision,
                "groups": {str(g): dict(p) for g, p in st.collection_perms.items()}}

    @route("PUT", "/api/collection/graph")
    def put_collection_graph(request: Request) -> Any:
        body = _keys(request.json, "", {"groups": a_map}, {"revision": nullable(lambda v, w: None),
                                                           "skip_graph": boolean, "force": boolean})
        if body.get("revision") != st.collection_revision and not body.get("force"):
            raise HTTPAbort(409, "Looks like someone else edited the permissions and your data is out of date.")
        for gid_text, perms in body["groups"].items():
            if int(gid_text) not in st.groups:
                raise BadRequest(f"groups.{gid_text}", "group does not exist")
            a_map(perms, f"groups.{gid_text}")
            for cid, perm in perms.items():
                if cid != "root" and int(cid) not in st.collections:
                    raise BadRequest(f"groups.{gid_text}.{cid}", "collection does not exist")
                one_of("read", "write", "none")(perm, f"groups.{gid_text}.{cid}")
        for gid_text, perms in body["groups"].items():
            st.collection_perms.setdefault(int(gid_text), {}).update(perms)
        st.collection_revision += 1
        return {"revision": st.collection_revision,
                "groups": {str(g): dict(p) for g, p in st.collection_perms.items()}}


# --------------------------------------------------------------------------- subscriptions


def _check_pulse_card(value: Any, where: str) -> None:
    _keys(value, where, {"id": pos_int, "include_csv": boolean, "include_xls": boolean,
                         "dashboard_card_id": pos_int}, {})


def _check_channel(st: StandInState, value: Any, where: str) -> None:
    _keys(value, where, {"channel_type": one_of("email", "slack"), "enabled": boolean,
                         "schedule_type": one_of("hourly", "daily", "weekly", "monthly")}, {
        "schedule_hour": nullable(hour),
        "schedule_day": nullable(one_of("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
        "schedule_frame": nullable(one_of("first", "mid", "last")),
        "recipients": list_of(anything), "details": a_map, "channel_id": nullable(pos_int)})
    if value["schedule_type"] == "monthly" and not value.get("schedule_frame"):
        raise BadRequest(f"{where}schedule_frame", "a monthly schedule needs a frame (first, mid, last)")
    if value["channel_type"] == "email" and not value.get("recipients"):
        raise BadRequest(f"{where}recipients", "an e-mail channel needs at least one recipient")
    for i, recipient in enumerate(value.get("recipients") or []):
        if isinstance(recipient, dict) and set(recipient) == {"id"}:
            if recipient["id"] not in st.users:
                raise BadRequest(f"{where}recipients[{i}]", "user does not exist")
        elif not (isinstance(recipient, dict) and set(recipient) == {"email"} and "@" in str(recipient["email"])):
            raise BadRequest(f"{where}recipients[{i}]", "a recipient is {\"id\": <user id>} or {\"email\": <address>}")


def _stored_channels(st: StandInState, channels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Channels as Metabase returns them: an id each, user recipients expanded to the user."""
    out = []
    for channel in channels:
        recipients = [
            {**st.users[r["id"]], "common_name": f"{st.users[r['id']]['first_name']} {st.users[r['id']]['last_name']}"}
            if "id" in r else dict(r)
            for r in channel.get("recipients") or []
        ]
        out.append({"id": st.next_id(), **channel, "recipients": recipients})
    return out


def _pulse_routes(route: Any, st: StandInState) -> None:
    def check_cards(body: dict[str, Any]) -> None:
        dashboard = st.dashboards.get(body.get("dashboard_id") or -1)
        for i, card in enumerate(body.get("cards") or []):
            if card["id"] not in st.cards:
                raise BadRequest(f"cards[{i}].id", "card does not exist")
            if dashboard is not None and card["dashboard_card_id"] not in {dc["id"] for dc in dashboard["dashcards"]}:
                raise BadRequest(f"cards[{i}].dashboard_card_id", "not a dashcard of the subscription's dashboard")

    def channels(value: Any, where: str) -> None:
        list_of(lambda c, w: _check_channel(st, c, w))(value, where)
        if not value:
            raise BadRequest(where, "one or more map")

    @route("GET", "/api/pulse")
    def listing(request: Request) -> Any:
        dashboard_id = request.arg("dashboard_id")
        return [p for p in st.pulses.values()
                if dashboard_id is None or p.get("dashboard_id") == int(dashboard_id)]

    @route("POST", "/api/pulse")
    def create(request: Request) -> Any:
        body = _keys(request.json, "", {"name": non_blank, "cards": list_of(_check_pulse_card),
                                        "channels": channels}, {
            "skip_if_empty": nullable(boolean), "collection_id": nullable(pos_int),
            "collection_position": nullable(pos_int), "dashboard_id": nullable(pos_int),
            "parameters": nullable(list_of(a_map))})
        if body.get("dashboard_id") is not None and body["dashboard_id"] not in st.dashboards:
            raise BadRequest("dashboard_id", "dashboard does not exist")
        check_cards(body)
        pulse_id = st.next_id()
        st.pulses[pulse_id] = {"id": pulse_id, "archived": False, "skip_if_empty": False, "parameters": [],
                               "creator_id": 1, **body,
                               "channels": _stored_channels(st, body["channels"])}
        return st.pulses[pulse_id]

    @route("PUT", "/api/pulse/{id}")
    def update(request: Request) -> Any:
        pulse = _entity(st, st.pulses, request.path_params["id"], "Pulse")
        body = _keys(request.json, "", {}, {
            "name": nullable(non_blank), "cards": nullable(list_of(_check_pulse_card)), "channels": nullable(channels),
            "skip_if_empty": nullable(boolean), "collection_id": nullable(pos_int), "archived": nullable(boolean),
            "parameters": nullable(list_of(a_map))})
        check_cards({**pulse, **body})
        for name, value in body.items():
            if value is not None:
                pulse[name] = value if name != "channels" else _stored_channels(st, value)
        return pulse
