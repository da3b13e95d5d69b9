"""Provisioning Metabase through its REST API, against the strict stand-in (sandbox/metabase_standin.py) on
loopback, through the real hook and Airflow connection: what gets created, that a second run writes
nothing, renames update in place, raw data stays away from Finance and Leadership, and drift is refused."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import pytest
import requests
import sqlglot
from sqlglot import exp

from ai_usage.dashboards import service
from ai_usage.dashboards.export import export_marts
from ai_usage.dashboards.metabase_hook import MetabaseHook
from ai_usage.dashboards.payloads import marker_of
from ai_usage.dashboards.provision import Provisioner, differences
from ai_usage.dashboards.spec import load_specs
from ai_usage.dashboards.target import target_from_settings
from ai_usage.exceptions import ConfigurationError, VendorAPIError
from ai_usage.settings import BigQueryConfig, parse_warehouse
from ai_usage.warehouse.contracts import load_contracts
from sandbox.metabase_standin import StandInState, build_app
from sandbox.server import SimServer

SPECS = load_specs()
N_CARDS = sum(len(d.cards) for d in SPECS.dashboards)
SA_KEY = {"type": "service_account", "project_id": "acme-analytics", "private_key_id": "k1",
          "client_email": "metabase@acme-analytics.iam.gserviceaccount.com"}


@pytest.fixture
def metabase(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SimServer, StandInState]]:
    app, state = build_app()
    with SimServer(app) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_METABASE_DEFAULT", json.dumps({
            "conn_type": "metabase", "host": srv.url, "login": state.username, "password": state.password,
            "extra": {"duckdb_file": "/metabase-data/ai_usage_marts.duckdb"}}))
        yield srv, state


def writes(srv: SimServer) -> list[Any]:
    return [r for r in srv.requests() if r.method != "GET" and r.path != "/api/session"]


def test_first_run_creates_everything_and_second_run_writes_nothing(metabase) -> None:
    srv, st = metabase
    finance_user = st.add_user("fiona.finance@example.com")
    first = service.provision()
    assert first["summary"]["created"] == 1 + 3 + 2 + N_CARDS + 4  # database, groups, collections, cards, boards
    assert len(st.cards) == N_CARDS and len(st.dashboards) == 4 and len(st.databases) == 1
    assert not [r for r in srv.requests() if r.status >= 400]
    st.members[st.group_id("Finance")].add(finance_user)       # an admin adds someone to Finance
    second = service.provision()
    assert [(c["kind"], c["verb"]) for c in second["changes"]] == [("subscription", "created")]
    written = len(writes(srv))
    third = service.provision()
    assert third["changes"] == [] and set(third["summary"]) == {"unchanged"}
    assert len(writes(srv)) == written                           # a run with nothing to do writes nothing
    assert third["summary"]["unchanged"] == 1 + 3 + 2 + N_CARDS + 4 + 4 + 4 + 1


def test_cards_are_native_queries_over_the_marts_with_filters_wired(metabase) -> None:
    srv, st = metabase
    service.provision()
    for card in st.cards.values():
        query = card["dataset_query"]
        assert query["type"] == "native" and query["database"] == next(iter(st.databases))
        text = query["native"]["query"]
        parsed = sqlglot.parse_one(text.replace("[[", "").replace("]]", "").replace("{{", "'").replace("}}", "'"),
                                   read="duckdb")
        assert {t.db for t in parsed.find_all(exp.Table) if t.db} == {"marts"}, card["name"]
    executive = next(d for d in st.dashboards.values() if marker_of(d["description"]) == "dashboard/executive")
    assert [p["id"] for p in executive["parameters"]] == ["date_from", "date_to", "team", "cost_center", "tool"]
    tool = next(p for p in executive["parameters"] if p["id"] == "tool")
    assert tool["values_source_config"] == {"values": ["cursor", "claude_code", "claude_ai"]}
    by_card = {dc["card_id"]: dc for dc in executive["dashcards"]}
    cost = next(c for c in st.cards.values() if marker_of(c["description"]) == "card/executive/cost_by_month_tool")
    assert {m["parameter_id"] for m in by_card[cost["id"]]["parameter_mappings"]} == {
        "date_from", "date_to", "team", "cost_center", "tool"}
    assert cost["display"] == "bar" and cost["visualization_settings"]["graph.dimensions"] == ["month", "tool"]
    freshness = next(c for c in st.cards.values()
                     if marker_of(c["description"]) == "card/cursor_productivity/data_freshness")
    assert freshness["dataset_query"]["native"]["template-tags"]["product"]["default"] == "cursor"


def test_raw_and_ref_data_never_reach_finance_or_leadership(metabase) -> None:
    srv, st = metabase
    service.provision()
    (db_id, database), = st.databases.items()
    assert database["engine"] == "duckdb"
    assert database["details"] == {"database_file": "/metabase-data/ai_usage_marts.duckdb", "read_only": True}
    hook = MetabaseHook()  # the graphs as Metabase returns them, through the API
    data = hook.get("/api/permissions/graph")["groups"]
    collections = hook.get("/api/collection/graph")["groups"]
    ours = {c["id"] for c in st.collections.values()}
    for name in ("Finance", "Engineering Leadership"):
        gid = str(st.group_id(name))
        assert data[gid] == {str(db_id): {"view-data": "unrestricted", "create-queries": "query-builder",
                                          "download": {"schemas": "full"}}}  # no SQL editor; CSV/XLSX downloads
        assert {collections[gid][str(c)] for c in ours} == {"read"}
    admins = str(st.group_id("Admins"))
    assert data[admins][str(db_id)]["create-queries"] == "query-builder-and-native"
    everyone = str(st.group_id("All Users"))
    assert "create-queries" not in data[everyone].get(str(db_id), {})  # elided = "no"
    assert {collections[everyone][str(c)] for c in ours} == {"none"}


def test_duckdb_export_holds_the_marts_only_in_a_1x_readable_format(metabase, tmp_path) -> None:
    from ai_usage.warehouse import get_warehouse

    with get_warehouse() as wh:
        wh.ensure_tables()
        wh.replace_partitions("marts.seat_utilization", [{
            "month": date(2025, 1, 1), "tool": "cursor", "seats_paid": 3,
            "_refreshed_at": datetime(2025, 1, 2, tzinfo=UTC), "_run_id": "r"}], [date(2025, 1, 1)])
        wh.append_rows("raw.cursor_members", [{"snapshot_date": date(2025, 1, 2), "member_id": "m1",
                                               "email": "secret.person@example.com",
                                               "_ingested_at": datetime(2025, 1, 2, tzinfo=UTC), "_run_id": "r"}])
    with pytest.raises(ConfigurationError, match="ambiguous"):
        export_marts(tmp_path / "marts.duckdb")
    counts = export_marts(tmp_path / "mb.duckdb")
    marts = {name.split(".")[1] for name in load_contracts() if name.startswith("marts.")}
    assert set(counts) == marts and counts["seat_utilization"] == 1
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{tmp_path / 'mb.duckdb'}' AS mb (READ_ONLY)")
        tags = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 'mb'").fetchone()[0]
        schemas = {r[0] for r in con.execute(
            "SELECT DISTINCT schema_name FROM duckdb_tables() WHERE database_name = 'mb'").fetchall()}
    finally:
        con.close()
    assert tags["storage_version"].startswith("v1.4")
    assert schemas == {"marts"}
    assert b"secret.person@example.com" not in (tmp_path / "mb.duckdb").read_bytes()


def test_a_renamed_card_is_updated_and_a_removed_one_archived(metabase) -> None:
    srv, st = metabase
    service.provision()
    hook = MetabaseHook()
    target = target_from_settings(hook.extra())
    executive = SPECS.dashboard("executive")
    renamed = tuple(dataclasses.replace(c, title="Billed cost per month, per tool") if c.key == "cost_by_month_tool"
                    else c for c in executive.cards if c.key != "adoption_trend")
    specs = dataclasses.replace(SPECS, dashboards=tuple(
        dataclasses.replace(d, cards=renamed) if d.key == "executive" else d for d in SPECS.dashboards))
    ids_before = {marker_of(c["description"]): c["id"] for c in st.cards.values()}
    report = Provisioner(hook, specs, target).run()
    changes = {(a.kind, a.key, a.verb) for a in report.changes}
    assert ("card", "card/executive/cost_by_month_tool", "updated") in changes
    assert ("card", "card/executive/adoption_trend", "archived") in changes
    assert ("dashboard", "dashboard/executive", "updated") in changes
    ids_after = {marker_of(c["description"]): c["id"] for c in st.cards.values()}
    assert ids_after == ids_before and len(st.cards) == N_CARDS              # no duplicate
    assert st.cards[ids_before["card/executive/cost_by_month_tool"]]["name"] == "Billed cost per month, per tool"
    assert st.cards[ids_before["card/executive/adoption_trend"]]["archived"] is True
    board = next(d for d in st.dashboards.values() if marker_of(d["description"]) == "dashboard/executive")
    assert ids_before["card/executive/adoption_trend"] not in {dc["card_id"] for dc in board["dashcards"]}
    assert Provisioner(hook, specs, target).run().changes == []


def test_monthly_subscription_of_cost_allocation_to_finance(metabase) -> None:
    srv, st = metabase
    fiona = st.add_user("fiona.finance@example.com", groups=())
    service.provision()
    assert st.pulses == {}                                         # Finance has no members yet: skipped
    st.members[st.group_id("Finance")].add(fiona)
    service.provision()
    (pulse,) = st.pulses.values()
    board = st.dashboards[pulse["dashboard_id"]]
    assert marker_of(board["description"]) == "dashboard/cost_allocation"
    (channel,) = pulse["channels"]
    assert (channel["channel_type"], channel["schedule_type"], channel["schedule_frame"], channel["schedule_hour"]) \
        == ("email", "monthly", "first", 8)
    assert [r["email"] for r in channel["recipients"]] == ["fiona.finance@example.com"]
    assert len(pulse["cards"]) == len(SPECS.dashboard("cost_allocation").cards)
    assert all(c["include_csv"] and c["include_xls"] for c in pulse["cards"])
    assert {c["dashboard_card_id"] for c in pulse["cards"]} == {dc["id"] for dc in board["dashcards"]}
    st.members[st.group_id("Finance")].add(st.add_user("frank.finance@example.com"))
    result = service.provision()
    assert [(c["kind"], c["verb"]) for c in result["changes"]] == [("subscription", "updated")]
    assert len(st.pulses) == 1 and len(next(iter(st.pulses.values()))["channels"][0]["recipients"]) == 2


def test_bigquery_target_uses_a_marts_only_dataset_and_repoints_the_sql(metabase, monkeypatch) -> None:
    srv, st = metabase
    monkeypatch.setenv("AIRFLOW_CONN_METABASE_DEFAULT", json.dumps({
        "conn_type": "metabase", "host": srv.url, "login": st.username, "password": st.password,
        "extra": {"bigquery_service_account_json": SA_KEY}}))
    monkeypatch.setenv("AI_USAGE_WAREHOUSE", "bigquery://acme-analytics?location=EU&dataset_prefix=ai_usage")
    hook = MetabaseHook()
    target = target_from_settings(hook.extra())
    Provisioner(hook, SPECS, target).run()
    (database,) = st.databases.values()
    assert database["engine"] == "bigquery-cloud-sdk"
    assert database["details"]["dataset-filters-type"] == "inclusion"
    assert database["details"]["dataset-filters-patterns"] == "ai_usage_marts"
    assert json.loads(database["details"]["service-account-json"]) == SA_KEY
    shown = hook.get(f"/api/database/{database['id']}")["details"]["service-account-json"]
    assert shown == "**MetabasePass**"                               # the API never shows the key again
    for card in st.cards.values():
        text = card["dataset_query"]["native"]["query"]
        assert "ai_usage_marts." in text and " marts." not in text and "raw." not in text
    assert Provisioner(hook, SPECS, target).run().changes == []      # secrets are not compared
    rotated = Provisioner(hook, SPECS, target, update_credentials=True).run()
    assert [(a.kind, a.verb) for a in rotated.changes] == [("database", "updated")]


def test_api_key_authentication(metabase, monkeypatch) -> None:
    srv, st = metabase
    st.api_key = "mb_TestKey123"
    monkeypatch.setenv("AIRFLOW_CONN_METABASE_DEFAULT", json.dumps({
        "conn_type": "metabase", "host": srv.url, "password": st.api_key}))
    assert MetabaseHook().get("/api/user/current")["email"] == st.username
    assert srv.requests(path="/api/session") == []
    assert MetabaseHook().test_connection()[0] is True


def test_bad_credentials_and_missing_bigquery_key_fail_clearly(metabase, monkeypatch) -> None:
    srv, st = metabase
    with pytest.raises(ConfigurationError, match="AIRFLOW_CONN_NO_SUCH_METABASE"):
        MetabaseHook("no_such_metabase").extra()
    monkeypatch.setenv("AIRFLOW_CONN_METABASE_DEFAULT", json.dumps({
        "conn_type": "metabase", "host": srv.url, "login": st.username, "password": "wrong"}))
    with pytest.raises(VendorAPIError, match="HTTP 401"):
        MetabaseHook().get("/api/user/current")
    with pytest.raises(ConfigurationError, match="bigquery_service_account_json"):
        target_from_settings({}, parse_warehouse("bigquery://acme-analytics"))
    with pytest.raises(ConfigurationError, match="ambiguous"):
        target_from_settings({"duckdb_file": "/data/marts.duckdb"}, parse_warehouse("duckdb:///w.duckdb"))
    assert isinstance(parse_warehouse("bigquery://acme-analytics"), BigQueryConfig)


# --------------------------------------------------------------------------- the stand-in is strict


def _session(srv: SimServer, st: StandInState) -> requests.Session:
    s = requests.Session()
    token = s.post(f"{srv.url}/api/session", json={"username": st.username, "password": st.password}).json()["id"]
    s.headers["X-Metabase-Session"] = token
    return s


def test_stand_in_refuses_drift(metabase) -> None:
    srv, st = metabase
    service.provision()
    s = _session(srv, st)
    assert requests.get(f"{srv.url}/api/card/1").status_code == 401          # no session
    card_id, card = next(iter(st.cards.items()))
    good = {k: card[k] for k in ("name", "display", "visualization_settings", "dataset_query")}
    assert s.post(f"{srv.url}/api/card", json={**good, "colour": "red"}).status_code == 400   # unknown key
    assert s.post(f"{srv.url}/api/card", json={k: v for k, v in good.items() if k != "display"}).status_code == 400
    bad_tags = json.loads(json.dumps(good))
    bad_tags["dataset_query"]["native"]["template-tags"].pop(next(iter(bad_tags["dataset_query"]["native"]
                                                                      ["template-tags"])), None)
    if good["dataset_query"]["native"]["template-tags"]:
        response = s.post(f"{srv.url}/api/card", json=bad_tags)
        assert response.status_code == 400 and "template-tags" in response.text
    board_id, board = next(iter(st.dashboards.items()))
    dc = board["dashcards"][0]
    wrong = {"dashcards": [{**{k: dc[k] for k in ("id", "card_id", "row", "col", "size_x", "size_y")},
                            "parameter_mappings": [{"parameter_id": "date_from", "card_id": dc["card_id"],
                                                    "target": ["variable", ["template-tag", "no_such_tag"]]}]}]}
    assert s.put(f"{srv.url}/api/dashboard/{board_id}", json=wrong).status_code == 400
    graph = s.get(f"{srv.url}/api/permissions/graph").json()
    stale = {"revision": graph["revision"] - 1, "groups": {}}
    assert s.put(f"{srv.url}/api/permissions/graph", json=stale).status_code == 409
    blocked = {"revision": graph["revision"], "groups": {"1": {str(next(iter(st.databases))): {"view-data": "blocked"}}}}
    assert s.put(f"{srv.url}/api/permissions/graph", json=blocked).status_code == 402  # a paid-plan feature
    assert card_id in st.cards


def test_differences_ignores_server_keys_but_not_ours() -> None:
    assert differences({"a": 1, "b": {"c": [1, 2]}}, {"a": 1, "b": {"c": [1, 2]}, "extra": True}) == []
    assert differences({"a": 1}, {"a": 2}) == ["a"]
    assert differences({"template-tags": {"x": {}}}, {"template-tags": {"x": {}, "y": {}}}) == ["template-tags keys"]
    assert differences({"n": 8}, {"n": Decimal("8")}) == []
    assert differences({"flag": False}, {"flag": 0}) == ["flag"]
