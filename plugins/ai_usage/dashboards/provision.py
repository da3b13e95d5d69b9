"""Idempotent provisioning of the dashboards in Metabase, through its REST API.

Each run reads what Metabase has, compares it with what the specs describe, and writes only the
differences, in this order: the warehouse database connection, the permission groups, a collection per
audience, the native-query cards, the dashboards (filters wired to cards), the data permissions graph,
the collection permissions graph and the e-mail subscriptions. A second run with unchanged specs sends no
write at all. Managed objects are found by the ``[ai-usage:<key>]`` marker in their description
(`ai_usage.dashboards.payloads`), so a renamed card or dashboard is updated in place; a card or dashboard
removed from the specs is archived (Metabase's soft delete), never hard-deleted.

API reference (cited per call below): https://www.metabase.com/docs/latest/api and the endpoint pages
of v0.50, e.g. https://www.metabase.com/docs/v0.50/api/permissions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ai_usage.dashboards import payloads
from ai_usage.dashboards.spec import Dashboard, GroupSpec, Specs, SubscriptionSpec
from ai_usage.dashboards.target import MetabaseTarget
from ai_usage.exceptions import ConfigurationError

log = logging.getLogger(__name__)

ALL_USERS = "All Users"  # Metabase's built-in group every user belongs to


class MetabaseAPI(Protocol):
    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any: ...
    def post(self, path: str, body: Any) -> Any: ...
    def put(self, path: str, body: Any, params: Mapping[str, Any] | None = None) -> Any: ...


@dataclass(frozen=True)
class Action:
    kind: str          # database | group | collection | card | dashboard | data_permissions | ...
    key: str
    verb: str          # created | updated | unchanged | archived | skipped
    id: int | None = None
    detail: str = ""


@dataclass
class ProvisionReport:
    actions: list[Action] = field(default_factory=list)

    def add(self, kind: str, key: str, verb: str, id_: int | None = None, detail: str = "") -> None:
        self.actions.append(Action(kind, key, verb, id_, detail))
        level = logging.DEBUG if verb == "unchanged" else logging.INFO
        log.log(level, "%s %s: %s%s", kind, key, verb, f" ({detail})" if detail else "")

    @property
    def changes(self) -> list[Action]:
        """What the run wrote: created, updated or archived objects (not the unchanged or skipped ones)."""
        return [a for a in self.actions if a.verb in ("created", "updated", "archived")]

    @property
    def skipped(self) -> list[Action]:
        return [a for a in self.actions if a.verb == "skipped"]

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for action in self.actions:
            out[action.verb] = out.get(action.verb, 0) + 1
        return out


# --------------------------------------------------------------------------- comparison

_EXACT_KEYS = {"template-tags", "column_settings", "series_settings", "values_source_config"}


def differences(desired: Any, current: Any, path: str = "") -> list[str]:
    """Paths where `current` does not match `desired`.

    Dicts match when every desired key matches (Metabase adds keys of its own, which are ignored), except
    dicts keyed by our own names (template tags, column settings), whose key sets must be equal. Lists
    match element by element. Numbers compare by value (the API's JSON may come back as Decimal).
    """
    if isinstance(desired, Mapping):
        if not isinstance(current, Mapping):
            return [path or "."]
        out = []
        if path.rsplit(".", 1)[-1] in _EXACT_KEYS and set(desired) != set(current):
            out.append(f"{path} keys")
        for key, value in desired.items():
            out += differences(value, current.get(key), f"{path}.{key}" if path else str(key))
        return out
    if isinstance(desired, list | tuple):
        if not isinstance(current, list | tuple) or len(desired) != len(current):
            return [path or "."]
        out = []
        for i, (want, have) in enumerate(zip(desired, current, strict=True)):
            out += differences(want, have, f"{path}[{i}]")
        return out
    if isinstance(desired, bool) or isinstance(current, bool):
        return [] if desired is current or desired == current and type(desired) is type(current) else [path]
    if isinstance(desired, int | float) and not isinstance(current, str) and current is not None:
        try:
            return [] if float(desired) == float(current) else [path]
        except (TypeError, ValueError):
            return [path]
    return [] if desired == current else [path]


def _listing(payload: Any) -> list[dict[str, Any]]:
    """Metabase list endpoints answer a list or ``{"data": [...]}`` depending on the endpoint and version."""
    if isinstance(payload, Mapping):
        payload = payload.get("data", [])
    return list(payload or [])


# --------------------------------------------------------------------------- the provisioner


class Provisioner:
    """Brings one Metabase in line with the specs; `run()` returns what it did."""

    def __init__(
        self,
        api: MetabaseAPI,
        specs: Specs,
        target: MetabaseTarget,
        *,
        extra_recipients: Sequence[str] = (),
        update_credentials: bool = False,
    ) -> None:
        self.api = api
        self.specs = specs
        self.target = target
        self.extra_recipients = list(extra_recipients)
        self.update_credentials = update_credentials
        self.report = ProvisionReport()

    def run(self) -> ProvisionReport:
        database_id = self.ensure_database()
        groups = self.ensure_groups()
        collections = self.ensure_collections()
        card_ids = self.ensure_cards(database_id, collections)
        dashboards = self.ensure_dashboards(card_ids, collections)
        self.ensure_data_permissions(database_id, groups)
        self.ensure_collection_permissions(collections, groups)
        self.ensure_subscriptions(dashboards, collections, groups)
        log.info("Metabase provisioning: %s", self.report.summary())
        return self.report

    # -- database ----------------------------------------------------------------------------------------
    def ensure_database(self) -> int:
        """The warehouse connection (https://www.metabase.com/docs/v0.50/api/database)."""
        name = self.specs.metabase.database_name
        existing = next((d for d in _listing(self.api.get("/api/database")) if d.get("name") == name), None)
        details = {**self.target.details, **self.target.secrets}
        if existing is None:
            created = self.api.post("/api/database", {
                "engine": self.target.engine, "name": name, "details": details,
                "is_full_sync": True, "auto_run_queries": True,
            })
            self.report.add("database", name, "created", created["id"])
            return int(created["id"])
        database_id = int(existing["id"])
        current = self.api.get(f"/api/database/{database_id}")
        diff = differences({"engine": self.target.engine, "details": dict(self.target.details)}, current)
        if diff or self.update_credentials:
            self.api.put(f"/api/database/{database_id}", {"engine": self.target.engine, "name": name,
                                                          "details": details})
            self.report.add("database", name, "updated", database_id,
                            ", ".join(diff) or "credentials")
        else:
            self.report.add("database", name, "unchanged", database_id)
        return database_id

    # -- groups and collections -------------------------------------------------------------------------
    def ensure_groups(self) -> dict[str, int]:
        """Permission groups by spec key, plus ``all_users`` (https://www.metabase.com/docs/v0.50/api/permissions)."""
        existing = {g["name"]: int(g["id"]) for g in _listing(self.api.get("/api/permissions/group"))}
        if ALL_USERS not in existing:
            raise ConfigurationError(f"Metabase has no {ALL_USERS!r} group; is this a Metabase server?")
        out = {"all_users": existing[ALL_USERS]}
        for group in self.specs.metabase.groups:
            assert group.name is not None
            if group.name in existing:
                out[group.key] = existing[group.name]
                self.report.add("group", group.name, "unchanged", existing[group.name])
                continue
            created = self.api.post("/api/permissions/group", {"name": group.name})
            out[group.key] = int(created["id"])
            self.report.add("group", group.name, "created", out[group.key])
        return out

    def ensure_collections(self) -> dict[str, int]:
        """A collection per audience (https://www.metabase.com/docs/v0.50/api/collection)."""
        existing = {
            payloads.marker_of(c.get("description")): c
            for c in _listing(self.api.get("/api/collection"))
            if isinstance(c.get("id"), int) and payloads.marker_of(c.get("description"))
        }
        out: dict[str, int] = {}
        for spec in self.specs.metabase.collections:
            key = f"collection/{spec.key}"
            desired = {"name": spec.name, "description": payloads.with_marker(spec.description, key)}
            current = existing.get(key)
            if current is None:
                created = self.api.post("/api/collection", desired)
                out[spec.key] = int(created["id"])
                self.report.add("collection", key, "created", out[spec.key])
                continue
            out[spec.key] = int(current["id"])
            diff = differences(desired, current)
            if diff:
                self.api.put(f"/api/collection/{out[spec.key]}", desired)
                self.report.add("collection", key, "updated", out[spec.key], ", ".join(diff))
            else:
                self.report.add("collection", key, "unchanged", out[spec.key])
        return out

    def _managed_items(self, collections: Mapping[str, int], model: str) -> dict[str, dict[str, Any]]:
        """Items of `model` (card | dashboard) in our collections, by marker key."""
        found: dict[str, dict[str, Any]] = {}
        for collection_id in collections.values():
            items = _listing(self.api.get(f"/api/collection/{collection_id}/items", {"models": model}))
            for item in items:
                key = payloads.marker_of(item.get("description"))
                if key and item.get("model") == model:
                    found[key] = item
        return found

    # -- cards ------------------------------------------------------------------------------------------
    def ensure_cards(self, database_id: int, collections: Mapping[str, int]) -> dict[str, dict[str, int]]:
        """Native-query cards (https://www.metabase.com/docs/v0.50/api/card); returns dashboard -> card -> id."""
        existing = self._managed_items(collections, "card")
        out: dict[str, dict[str, int]] = {}
        for dashboard in self.specs.dashboards:
            out[dashboard.key] = {}
            for card in dashboard.cards:
                key = payloads.card_key(dashboard, card)
                desired = payloads.card_payload(
                    dashboard, card, database_id=database_id, collection_id=collections[dashboard.collection],
                    target=self.target, catalogue=self.specs.filters,
                )
                item = existing.get(key)
                if item is None:
                    created = self.api.post("/api/card", desired)
                    out[dashboard.key][card.key] = int(created["id"])
                    self.report.add("card", key, "created", int(created["id"]))
                    continue
                card_id = int(item["id"])
                out[dashboard.key][card.key] = card_id
                current = self.api.get(f"/api/card/{card_id}")
                diff = differences({**desired, "archived": False}, current)
                if diff:
                    self.api.put(f"/api/card/{card_id}", {**desired, "archived": False})
                    self.report.add("card", key, "updated", card_id, ", ".join(diff[:5]))
                else:
                    self.report.add("card", key, "unchanged", card_id)
        wanted = payloads.all_card_keys(self.specs)
        for key, item in sorted(existing.items()):
            if key.startswith("card/") and key not in wanted:
                self.api.put(f"/api/card/{int(item['id'])}", {"archived": True})
                self.report.add("card", key, "archived", int(item["id"]))
        return out

    # -- dashboards -------------------------------------------------------------------------------------
    def ensure_dashboards(
        self, card_ids: Mapping[str, Mapping[str, int]], collections: Mapping[str, int],
    ) -> dict[str, dict[str, Any]]:
        """Dashboards with their filters wired to the cards (https://www.metabase.com/docs/v0.50/api/dashboard).

        Returns dashboard key -> the dashboard as Metabase has it after the run (with its dashcards).
        """
        existing = self._managed_items(collections, "dashboard")
        out: dict[str, dict[str, Any]] = {}
        for dashboard in self.specs.dashboards:
            key = payloads.dashboard_key(dashboard)
            head = {
                "name": dashboard.title,
                "description": payloads.with_marker(dashboard.description, key),
                "collection_id": collections[dashboard.collection],
                "parameters": payloads.dashboard_parameters(dashboard, self.specs.filters),
            }
            item = existing.get(key)
            if item is None:
                created = self.api.post("/api/dashboard", head)
                dashboard_id, current, verb = int(created["id"]), {**created, "dashcards": []}, "created"
            else:
                dashboard_id, verb = int(item["id"]), "updated"
                current = self.api.get(f"/api/dashboard/{dashboard_id}")
            out[dashboard.key] = self._sync_dashcards(dashboard, dashboard_id, head, current,
                                                      card_ids[dashboard.key], verb, key)
        wanted = {payloads.dashboard_key(d) for d in self.specs.dashboards}
        for key, item in sorted(existing.items()):
            if key.startswith("dashboard/") and key not in wanted:
                self.api.put(f"/api/dashboard/{int(item['id'])}", {"archived": True})
                self.report.add("dashboard", key, "archived", int(item["id"]))
        return out

    def _sync_dashcards(
        self, dashboard: Dashboard, dashboard_id: int, head: dict[str, Any], current: Mapping[str, Any],
        card_ids: Mapping[str, int], verb: str, key: str,
    ) -> dict[str, Any]:
        have = {int(dc["card_id"]): int(dc["id"]) for dc in current.get("dashcards") or [] if dc.get("card_id")}
        desired_cards = payloads.dashcards(dashboard, card_ids, have)
        diff = differences({**head, "archived": False}, current)
        by_card = {int(dc["card_id"]): dc for dc in current.get("dashcards") or [] if dc.get("card_id")}
        if set(by_card) != {dc["card_id"] for dc in desired_cards}:
            diff.append("dashcards")
        else:
            for dc in desired_cards:
                diff += differences({k: v for k, v in dc.items() if k != "id"}, by_card[dc["card_id"]],
                                    f"dashcards[{dc['card_id']}]")
        if not diff and verb == "updated":
            self.report.add("dashboard", key, "unchanged", dashboard_id)
            return dict(current)
        updated = self.api.put(f"/api/dashboard/{dashboard_id}",
                               {**head, "archived": False, "dashcards": desired_cards})
        self.report.add("dashboard", key, verb, dashboard_id, ", ".join(diff[:5]) if verb == "updated" else "")
        return dict(updated)

    # -- permissions ------------------------------------------------------------------------------------
    @staticmethod
    def _data_entry(group: GroupSpec) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "create-queries": group.data["create_queries"],
            "download": {"schemas": group.data["download"]},
            "data-model": {"schemas": group.data["data_model"]},
            "details": group.data["details"],
        }
        if group.name is not None:
            # Our groups view the marts database. All Users keeps Metabase's default ("Blocked" is a
            # paid-plan feature); it gets no queries, no downloads and no access to our collections.
            entry = {"view-data": "unrestricted", **entry}
        return entry

    @staticmethod
    def _normalise_data_entry(entry: Mapping[str, Any] | None) -> dict[str, Any]:
        """Metabase leaves least-permissive values out of the graph it returns; put them back to compare."""
        entry = dict(entry or {})
        entry.setdefault("view-data", "blocked")
        entry.setdefault("create-queries", "no")
        entry.setdefault("download", {"schemas": "none"})
        entry.setdefault("data-model", {"schemas": "none"})
        entry.setdefault("details", "no")
        return entry

    def ensure_data_permissions(self, database_id: int, groups: Mapping[str, int]) -> None:
        """Data permissions on the marts database (``GET/PUT /api/permissions/graph``).

        Finance and Engineering Leadership: view the marts, query builder only (no SQL), CSV/XLSX downloads;
        Admins: SQL too; All Users: nothing. The database itself holds the marts only (see target.py).
        """
        graph = self.api.get("/api/permissions/graph")
        changes: dict[str, dict[str, Any]] = {}
        specs = [*self.specs.metabase.groups, self.specs.metabase.all_users]
        for group in specs:
            group_id = groups[group.key]
            desired = self._data_entry(group)
            current = self._normalise_data_entry(
                (graph.get("groups", {}).get(str(group_id)) or {}).get(str(database_id)))
            diff = differences(desired, current)
            name = group.name or ALL_USERS
            if diff:
                changes[str(group_id)] = {str(database_id): desired}
                self.report.add("data_permissions", name, "updated", group_id, ", ".join(diff))
            else:
                self.report.add("data_permissions", name, "unchanged", group_id)
        if changes:
            self.api.put("/api/permissions/graph", {"revision": graph["revision"], "groups": changes})

    def ensure_collection_permissions(self, collections: Mapping[str, int], groups: Mapping[str, int]) -> None:
        """Who sees which collection (``GET/PUT /api/collection/graph``)."""
        graph = self.api.get("/api/collection/graph")
        changes: dict[str, dict[str, str]] = {}
        for group in [*self.specs.metabase.groups, self.specs.metabase.all_users]:
            group_id = groups[group.key]
            current = graph.get("groups", {}).get(str(group_id)) or {}
            wanted = {str(collections[c]): group.collections.get(c, "none") for c in collections}
            diff = sorted(cid for cid, perm in wanted.items() if current.get(cid, "none") != perm)
            name = group.name or ALL_USERS
            if diff:
                changes[str(group_id)] = {cid: wanted[cid] for cid in diff}
                self.report.add("collection_permissions", name, "updated", group_id,
                                ", ".join(f"{cid}={wanted[cid]}" for cid in diff))
            else:
                self.report.add("collection_permissions", name, "unchanged", group_id)
        if changes:
            self.api.put("/api/collection/graph", {"revision": graph["revision"], "groups": changes})

    # -- subscriptions ----------------------------------------------------------------------------------
    def _recipients(self, group_id: int) -> list[dict[str, Any]]:
        group = self.api.get(f"/api/permissions/group/{group_id}")
        members = sorted({int(m["user_id"]) for m in group.get("members") or []})
        return [{"id": uid} for uid in members] + [{"email": e} for e in sorted(set(self.extra_recipients))]

    def ensure_subscriptions(
        self, dashboards: Mapping[str, Mapping[str, Any]], collections: Mapping[str, int],
        groups: Mapping[str, int],
    ) -> None:
        """Dashboard subscriptions by e-mail (``/api/pulse``, https://www.metabase.com/docs/v0.50/api/pulse)."""
        for sub in self.specs.metabase.subscriptions:
            self._ensure_subscription(sub, dashboards, collections, groups)

    def _ensure_subscription(
        self, sub: SubscriptionSpec, dashboards: Mapping[str, Mapping[str, Any]], collections: Mapping[str, int],
        groups: Mapping[str, int],
    ) -> None:
        dashboard = self.specs.dashboard(sub.dashboard)
        group = next(g for g in self.specs.metabase.groups if g.key == sub.group)
        key = f"subscription/{sub.key}"
        live = dashboards[dashboard.key]
        dashboard_id = int(live["id"])
        recipients = self._recipients(groups[sub.group])
        if not recipients:
            self.report.add("subscription", key, "skipped", None,
                            f"group {group.name!r} has no members and no extra recipients are configured")
            return
        name = f"{dashboard.title} for {group.name}"
        by_card = {int(dc["card_id"]): int(dc["id"]) for dc in live.get("dashcards") or [] if dc.get("card_id")}
        order = [int(dc["card_id"]) for dc in sorted(live.get("dashcards") or [],
                                                     key=lambda d: (d["row"], d["col"])) if dc.get("card_id")]
        schedule = sub.schedule
        desired: dict[str, Any] = {
            "name": name,
            "collection_id": collections[dashboard.collection],
            "skip_if_empty": False,
            "cards": [{"id": cid, "include_csv": "csv" in sub.attachments, "include_xls": "xlsx" in sub.attachments,
                       "dashboard_card_id": by_card[cid]} for cid in order],
            "channels": [{
                "channel_type": "email", "enabled": True, "schedule_type": schedule["type"],
                "schedule_hour": schedule["hour"], "schedule_day": schedule.get("day"),
                "schedule_frame": schedule.get("frame") if schedule["type"] == "monthly" else None,
                "recipients": recipients, "details": {},
            }],
            "parameters": [],
        }
        pulses = _listing(self.api.get("/api/pulse", {"dashboard_id": dashboard_id}))
        current = next((p for p in pulses if not p.get("archived") and (
            p.get("name") == name or str(p.get("name", "")).endswith(f" for {group.name}"))), None)
        if current is None:
            created = self.api.post("/api/pulse", {**desired, "dashboard_id": dashboard_id})
            self.report.add("subscription", key, "created", int(created["id"]))
            return
        pulse_id = int(current["id"])
        comparable = {**desired, "channels": [_channel_view(c) for c in desired["channels"]]}
        diff = differences(comparable, {**current, "channels": [_channel_view(c) for c in current.get("channels") or []]})
        if diff:
            self.api.put(f"/api/pulse/{pulse_id}", desired)
            self.report.add("subscription", key, "updated", pulse_id, ", ".join(diff[:5]))
        else:
            self.report.add("subscription", key, "unchanged", pulse_id)


def _channel_view(channel: Mapping[str, Any]) -> dict[str, Any]:
    """A channel reduced to what we manage, recipients as a sorted list of ids / e-mails."""
    recipients: Iterable[Mapping[str, Any]] = channel.get("recipients") or []
    return {
        "channel_type": channel.get("channel_type"), "enabled": channel.get("enabled"),
        "schedule_type": channel.get("schedule_type"), "schedule_hour": channel.get("schedule_hour"),
        "schedule_day": channel.get("schedule_day"), "schedule_frame": channel.get("schedule_frame"),
        "recipients": sorted(f"id:{r['id']}" if r.get("id") is not None else f"email:{r.get('email')}"
                             for r in recipients),
    }
