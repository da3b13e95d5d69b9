"""Dashboard specs as code: ``include/dashboards/*.yaml`` loaded into typed, validated objects.

Layout of ``include/dashboards`` (see its README.md):

- ``filters.yaml``: the filter catalogue (key -> label, type, choices);
- ``metabase.yaml``: the Metabase database name, collections, groups, permissions, subscriptions;
- ``<dashboard>.yaml``: one dashboard: title, collection, filter bar and cards;
- ``<dashboard>/<card>.sql`` and ``common/*.sql``: card SQL templates (`ai_usage.dashboards.template`).

Loading is strict: an unknown or missing key, a filter that is not in the catalogue, a card SQL that
reads anything but ``marts.*`` (never raw, ref or ops), or a layout that does not fit the grid raises
`SpecError` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from ai_usage.dashboards.template import Template, TemplateError, parse_template
from ai_usage.exceptions import ConfigurationError
from ai_usage.paths import include_dir

GRID_WIDTH = 24  # Metabase's dashboard grid (columns)
VISUALS = ("number", "line", "bar", "table")
FORMATS = ("usd", "percent", "pct_change", "int", "date", "month", "text")
FILTER_TYPES = ("date", "text")
ALLOWED_DATASET = "marts"
_DEFAULT_SIZE = {"number": (6, 4), "line": (12, 6), "bar": (12, 6), "table": (24, 6)}
_KEY_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


class SpecError(ConfigurationError):
    """A dashboard spec file is invalid; the message names the file and the problem."""


def dashboards_dir() -> Path:
    """``include/dashboards`` (follows ``AI_USAGE_INCLUDE``)."""
    return include_dir() / "dashboards"


@dataclass(frozen=True)
class Filter:
    key: str
    name: str
    type: str                         # "date" | "text"
    description: str = ""
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Card:
    key: str
    title: str
    description: str
    sql_path: str                     # relative to include/dashboards
    template: Template
    visual: str
    filters: tuple[str, ...]          # dashboard filters wired to this card
    defaults: Mapping[str, str] = field(default_factory=dict)  # fixed tag values (not wired)
    value: str | None = None          # number: the column shown
    x: str | None = None              # line / bar
    y: tuple[str, ...] = ()
    series: str | None = None
    stacked: bool = False
    formats: Mapping[str, str] = field(default_factory=dict)
    width: int = 0
    height: int = 0

    def format_of(self, column: str) -> str:
        return self.formats.get(column, "text")


@dataclass(frozen=True)
class Placement:
    row: int
    col: int
    width: int
    height: int


@dataclass(frozen=True)
class Dashboard:
    key: str
    position: int
    title: str
    description: str
    collection: str
    filters: tuple[str, ...]
    cards: tuple[Card, ...]
    path: Path

    @cached_property
    def layout(self) -> dict[str, Placement]:
        """Cards flowed left to right, top to bottom on the 24-column grid, in spec order."""
        out: dict[str, Placement] = {}
        row = col = line_height = 0
        for card in self.cards:
            if col + card.width > GRID_WIDTH:
                row, col, line_height = row + line_height, 0, 0
            out[card.key] = Placement(row=row, col=col, width=card.width, height=card.height)
            col += card.width
            line_height = max(line_height, card.height)
        return out

    def card(self, key: str) -> Card:
        for card in self.cards:
            if card.key == key:
                return card
        raise KeyError(f"dashboard {self.key!r} has no card {key!r}")


@dataclass(frozen=True)
class GroupSpec:
    key: str
    name: str | None                  # None: Metabase's built-in All Users group
    data: Mapping[str, str]
    collections: Mapping[str, str]


@dataclass(frozen=True)
class CollectionSpec:
    key: str
    name: str
    description: str


@dataclass(frozen=True)
class SubscriptionSpec:
    key: str
    dashboard: str
    group: str
    schedule: Mapping[str, Any]
    attachments: tuple[str, ...]


@dataclass(frozen=True)
class MetabaseSpec:
    database_name: str
    collections: tuple[CollectionSpec, ...]
    groups: tuple[GroupSpec, ...]
    all_users: GroupSpec
    subscriptions: tuple[SubscriptionSpec, ...]


@dataclass(frozen=True)
class Specs:
    filters: Mapping[str, Filter]
    dashboards: tuple[Dashboard, ...]
    metabase: MetabaseSpec
    root: Path

    def dashboard(self, key: str) -> Dashboard:
        for dashboard in self.dashboards:
            if dashboard.key == key:
                return dashboard
        raise KeyError(f"no dashboard {key!r}")


# --------------------------------------------------------------------------- loading


def load_specs(root: Path | None = None) -> Specs:
    """Load and validate every spec under `root` (default: include/dashboards)."""
    root = Path(root or dashboards_dir())
    filters = _load_filters(root / "filters.yaml")
    dashboards = tuple(sorted(
        (_load_dashboard(path, root, filters)
         for path in sorted(root.glob("*.yaml"))
         if path.name not in ("filters.yaml", "metabase.yaml")),
        key=lambda d: (d.position, d.key),
    ))
    if not dashboards:
        raise SpecError(f"{root}: no dashboard specs (*.yaml)")
    keys = [d.key for d in dashboards]
    if len(set(keys)) != len(keys):
        raise SpecError(f"{root}: duplicate dashboard keys {keys}")
    metabase = _load_metabase(root / "metabase.yaml", dashboards)
    return Specs(filters=filters, dashboards=dashboards, metabase=metabase, root=root)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise SpecError(f"{path}: expected a mapping at the top level")
    return doc


def _keys(where: str, doc: Mapping[str, Any], required: set[str], optional: Iterable[str] = ()) -> None:
    if not isinstance(doc, Mapping):
        raise SpecError(f"{where}: expected a mapping, got {doc!r}")
    missing = sorted(required - set(doc))
    unknown = sorted(set(doc) - required - set(optional))
    if missing:
        raise SpecError(f"{where}: missing key(s) {missing}")
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}")


def _key(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value or not set(value) <= _KEY_CHARS or value[0].isdigit():
        raise SpecError(f"{where}: {value!r} is not a snake_case key")
    return value


def _text(where: str, value: Any, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise SpecError(f"{where}: expected non-empty text, got {value!r}")
    return value.strip()


def _key_list(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise SpecError(f"{where}: expected a list, got {value!r}")
    keys = tuple(_key(where, v) for v in value)
    if len(set(keys)) != len(keys):
        raise SpecError(f"{where}: duplicates in {list(keys)}")
    return keys


def _load_filters(path: Path) -> dict[str, Filter]:
    doc = _read_yaml(path)
    out: dict[str, Filter] = {}
    for key, spec in doc.items():
        where = f"{path.name}: {key}"
        _key(where, key)
        _keys(where, spec, {"name", "type"}, {"description", "values"})
        if spec["type"] not in FILTER_TYPES:
            raise SpecError(f"{where}: type must be one of {FILTER_TYPES}")
        values = spec.get("values") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SpecError(f"{where}: values must be a list of text")
        if values and spec["type"] != "text":
            raise SpecError(f"{where}: only text filters take values")
        out[key] = Filter(key=key, name=_text(where, spec["name"]), type=spec["type"],
                          description=_text(where, spec.get("description", ""), empty=True), values=tuple(values))
    return out


_CARD_REQUIRED = {"key", "title", "description", "sql", "visual", "filters"}
_CARD_OPTIONAL = {"defaults", "value", "x", "y", "series", "stacked", "formats", "width", "height"}
_BY_VISUAL = {
    "number": ({"value"}, set()),
    "line": ({"x", "y"}, set()),
    "bar": ({"x", "y"}, {"series", "stacked"}),
    "table": (set(), set()),
}


def _load_card(where: str, doc: Mapping[str, Any], root: Path, filters: Mapping[str, Filter]) -> Card:
    _keys(where, doc, _CARD_REQUIRED, _CARD_OPTIONAL)
    key = _key(where, doc["key"])
    where = f"{where} {key}"
    visual = doc["visual"]
    if visual not in VISUALS:
        raise SpecError(f"{where}: visual must be one of {VISUALS}")
    needed, allowed = _BY_VISUAL[visual]
    given = set(doc) & {"value", "x", "y", "series", "stacked"}
    if needed - given or given - needed - allowed:
        raise SpecError(f"{where}: a {visual} card takes {sorted(needed | allowed)} (required {sorted(needed)}), "
                        f"got {sorted(given)}")
    sql_rel = _text(where, doc["sql"])
    sql_path = (root / sql_rel).resolve()
    if root.resolve() not in sql_path.parents or sql_path.suffix != ".sql":
        raise SpecError(f"{where}: sql must be a .sql file under include/dashboards, got {sql_rel!r}")
    if not sql_path.is_file():
        raise SpecError(f"{where}: SQL file {sql_rel} not found")
    text = sql_path.read_text()
    if not text.startswith("-- "):
        raise SpecError(f"{where}: {sql_rel} must open with a one-line '-- what it does' comment")
    try:
        template = parse_template(text, where=f"{sql_rel}")
    except TemplateError as exc:
        raise SpecError(f"{where}: {exc}") from exc
    outside = sorted(t for t in template.tables if t.split(".")[0] != ALLOWED_DATASET or "." not in t)
    if outside:
        raise SpecError(f"{where}: {sql_rel} reads {outside}; card SQL reads the marts only (marts.<table>)")
    unknown_tags = sorted(set(template.tags) - set(filters))
    if unknown_tags:
        raise SpecError(f"{where}: {sql_rel} uses template tag(s) {unknown_tags} that are not in filters.yaml")
    wired = _key_list(f"{where} filters", doc["filters"])
    not_in_sql = sorted(set(wired) - set(template.tags))
    if not_in_sql:
        raise SpecError(f"{where}: honours filter(s) {not_in_sql} that {sql_rel} has no [[ ]] clause for")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, Mapping) or not all(isinstance(v, str) for v in defaults.values()):
        raise SpecError(f"{where}: defaults must map tags to text values")
    for tag, value in defaults.items():
        if tag not in template.tags or tag in wired:
            raise SpecError(f"{where}: default {tag!r} must be a tag of {sql_rel} that is not a wired filter")
        choices = filters[tag].values
        if choices and value not in choices:
            raise SpecError(f"{where}: default {tag}={value!r} is not one of {list(choices)}")
    formats = doc.get("formats") or {}
    if not isinstance(formats, Mapping) or any(f not in FORMATS for f in formats.values()):
        raise SpecError(f"{where}: formats must map columns to one of {FORMATS}")
    y = doc.get("y", [])
    if not isinstance(y, list) or not all(isinstance(c, str) for c in y) or (visual in ("line", "bar") and not y):
        raise SpecError(f"{where}: y must be a non-empty list of columns")
    default_w, default_h = _DEFAULT_SIZE[visual]
    width, height = doc.get("width", default_w), doc.get("height", default_h)
    if not (isinstance(width, int) and 1 <= width <= GRID_WIDTH and isinstance(height, int) and 1 <= height <= 20):
        raise SpecError(f"{where}: width must be 1-{GRID_WIDTH} and height 1-20")
    stacked = doc.get("stacked", False)
    if not isinstance(stacked, bool):
        raise SpecError(f"{where}: stacked must be true or false")
    return Card(
        key=key, title=_text(where, doc["title"]), description=_text(where, doc["description"]),
        sql_path=sql_rel, template=template, visual=visual, filters=wired, defaults=dict(defaults),
        value=doc.get("value"), x=doc.get("x"), y=tuple(y), series=doc.get("series"), stacked=stacked,
        formats=dict(formats), width=width, height=height,
    )


def _load_dashboard(path: Path, root: Path, filters: Mapping[str, Filter]) -> Dashboard:
    doc = _read_yaml(path)
    where = path.name
    _keys(where, doc, {"key", "position", "title", "collection", "description", "filters", "cards"})
    key = _key(where, doc["key"])
    if not isinstance(doc["position"], int) or doc["position"] < 1:
        raise SpecError(f"{where}: position must be a whole number >= 1 (order of the dashboards)")
    if key != path.stem:
        raise SpecError(f"{where}: key {key!r} must equal the file name")
    bar = _key_list(f"{where} filters", doc["filters"])
    unknown = sorted(set(bar) - set(filters))
    if unknown:
        raise SpecError(f"{where}: filters {unknown} are not in filters.yaml")
    if not isinstance(doc["cards"], list) or not doc["cards"]:
        raise SpecError(f"{where}: cards must be a non-empty list")
    cards = tuple(_load_card(f"{where} card", c, root, filters) for c in doc["cards"])
    card_keys = [c.key for c in cards]
    if len(set(card_keys)) != len(card_keys):
        raise SpecError(f"{where}: duplicate card keys")
    for card in cards:
        missing = sorted(set(card.filters) - set(bar))
        if missing:
            raise SpecError(f"{where}: card {card.key} honours {missing}, which the dashboard's filters lack")
    unused = sorted(set(bar) - {f for c in cards for f in c.filters})
    if unused:
        raise SpecError(f"{where}: filters {unused} are wired to no card")
    return Dashboard(key=key, position=doc["position"], title=_text(where, doc["title"]), description=_text(where, doc["description"]),
                     collection=_key(where, doc["collection"]), filters=bar, cards=cards, path=path)


_DATA_VALUES = {
    "create_queries": ("query-builder-and-native", "query-builder", "no"),
    "download": ("full", "limited", "none"),
    "data_model": ("all", "none"),
    "details": ("yes", "no"),
}
_COLLECTION_ACCESS = ("write", "read", "none")


def _load_group(where: str, key: str, doc: Any, collections: set[str], *, named: bool) -> GroupSpec:
    _keys(where, doc, ({"name"} if named else set()) | {"data", "collections"})
    data = doc["data"]
    _keys(f"{where} data", data, set(_DATA_VALUES))
    for name, allowed in _DATA_VALUES.items():
        if data[name] not in allowed:
            raise SpecError(f"{where} data.{name}: {data[name]!r} is not one of {allowed}")
    access = doc["collections"]
    if not isinstance(access, Mapping) or set(access) - collections:
        raise SpecError(f"{where}: collections must map {sorted(collections)} to {_COLLECTION_ACCESS}")
    if any(v not in _COLLECTION_ACCESS for v in access.values()):
        raise SpecError(f"{where}: collection access must be one of {_COLLECTION_ACCESS}")
    return GroupSpec(key=key, name=_text(where, doc["name"]) if named else None, data=dict(data),
                     collections=dict(access))


def _load_metabase(path: Path, dashboards: tuple[Dashboard, ...]) -> MetabaseSpec:
    doc = _read_yaml(path)
    where = path.name
    _keys(where, doc, {"database", "collections", "groups", "all_users", "subscriptions"})
    _keys(f"{where} database", doc["database"], {"name"})
    collections = []
    for key, spec in (doc["collections"] or {}).items():
        _keys(f"{where} collections.{key}", spec, {"name", "description"})
        collections.append(CollectionSpec(key=_key(where, key), name=_text(where, spec["name"]),
                                          description=_text(where, spec["description"])))
    collection_keys = {c.key for c in collections}
    for dashboard in dashboards:
        if dashboard.collection not in collection_keys:
            raise SpecError(f"{dashboard.path.name}: collection {dashboard.collection!r} is not in {where}")
    groups = tuple(
        _load_group(f"{where} groups.{key}", _key(where, key), spec, collection_keys, named=True)
        for key, spec in (doc["groups"] or {}).items()
    )
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise SpecError(f"{where}: duplicate group names {names}")
    all_users = _load_group(f"{where} all_users", "all_users", doc["all_users"], collection_keys, named=False)
    subscriptions = []
    for i, spec in enumerate(doc["subscriptions"] or []):
        sub_where = f"{where} subscriptions[{i}]"
        _keys(sub_where, spec, {"key", "dashboard", "group", "schedule", "attachments"})
        if spec["dashboard"] not in {d.key for d in dashboards}:
            raise SpecError(f"{sub_where}: unknown dashboard {spec['dashboard']!r}")
        if spec["group"] not in {g.key for g in groups}:
            raise SpecError(f"{sub_where}: unknown group {spec['group']!r}")
        schedule = spec["schedule"]
        _keys(f"{sub_where} schedule", schedule, {"type", "hour"}, {"frame", "day"})
        if schedule["type"] not in ("daily", "weekly", "monthly") or schedule.get("frame", "first") not in (
            "first", "mid", "last"
        ) or not (isinstance(schedule["hour"], int) and 0 <= schedule["hour"] <= 23):
            raise SpecError(f"{sub_where}: schedule needs type daily|weekly|monthly, frame first|mid|last, hour 0-23")
        attachments = tuple(spec["attachments"] or ())
        if set(attachments) - {"csv", "xlsx"}:
            raise SpecError(f"{sub_where}: attachments are csv and/or xlsx")
        subscriptions.append(SubscriptionSpec(key=_key(sub_where, spec["key"]), dashboard=spec["dashboard"],
                                              group=spec["group"], schedule=dict(schedule),
                                              attachments=attachments))
    return MetabaseSpec(database_name=_text(where, doc["database"]["name"]), collections=tuple(collections),
                        groups=groups, all_users=all_users, subscriptions=tuple(subscriptions))
