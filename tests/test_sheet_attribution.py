"""ref.attribution: one resolved mapping per day from e-mails, API keys (id or name) and workspaces to teams,
built in SQL (include/sql/ref/select_attribution.sql on DuckDB) over ref.people and ref.api_key_owners."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ai_usage import attribution
from ai_usage.hooks.sheet import CsvFolderSource
from ai_usage.sources.common import split
from ai_usage.sources.sheet import parse_tab
from ai_usage.warehouse import get_warehouse

SAMPLE = Path(__file__).resolve().parents[1] / "include" / "sample_sheet"
LINEAGE = {"_ingested_at": datetime(2025, 4, 1, tzinfo=UTC), "_run_id": "test"}
D = date


def person(email: str, team: str, start: date | None, end: date | None, cc: str | None = None) -> dict[str, Any]:
    return {"email": email, "name": None, "team": team, "cost_center": cc or f"CC-{team}", "valid_from": start,
            "valid_to": end, **LINEAGE}


def owner(**cells: Any) -> dict[str, Any]:
    row = dict.fromkeys(("api_key_id", "api_key_name", "workspace", "owner_email", "team", "cost_center",
                         "valid_from", "valid_to", "notes", "is_developer_tooling"))
    return {**row, **cells, **LINEAGE}


@pytest.fixture()
def wh() -> Iterator[Any]:
    with get_warehouse() as warehouse:
        warehouse.ensure_tables(["ref.people", "ref.api_key_owners", "ref.attribution"])
        yield warehouse


def load(wh: Any, people: list[dict[str, Any]], owners: list[dict[str, Any]]) -> dict[str, int]:
    wh.replace_partitions("ref.people", people, None)
    wh.replace_partitions("ref.api_key_owners", owners, None)
    return attribution.rebuild(wh, run_id="test")


def team_on(wh: Any, kind: str, subject: str, day: date) -> tuple[str, str]:
    got = attribution.resolve(wh, kind, subject, day)
    return got["team"], got["basis"]


PEOPLE = [
    person("bob@example.com", "Payments", D(2025, 1, 1), D(2025, 3, 14)),
    person("bob@example.com", "Data", D(2025, 3, 15), None),          # changed team mid-month
    person("alice@example.com", "Platform", None, D(2025, 5, 31)),    # left at the end of May
    person("carol@example.com", "Mobile", D(2025, 2, 1), D(2025, 2, 28)),
    person("carol@example.com", "Mobile", D(2025, 4, 1), None),       # a gap in March
]
OWNERS = [
    owner(api_key_id="apikey_alice", api_key_name="claude-code-alice", workspace="Claude Code",
          owner_email="alice@example.com", team="Platform", cost_center="CC-P"),
    owner(api_key_id="apikey_bob", api_key_name="claude-code-bob", workspace="Claude Code",
          owner_email="bob@example.com"),                                # team blank: follows its owner
    owner(workspace="Research", team="Research", cost_center="CC-R", owner_email="carol@example.com",
          valid_from=D(2025, 3, 1)),                                     # a whole workspace from March
    owner(api_key_id="apikey_bot", api_key_name="research-bot", workspace="Research"),  # no team, no owner
    owner(api_key_id="apikey_orphan", workspace="Claude Code", notes="discovered"),     # nothing resolves it
]


def test_a_person_who_changed_team_mid_month_resolves_per_day(wh) -> None:
    load(wh, PEOPLE, OWNERS)
    assert team_on(wh, "email", "bob@example.com", D(2025, 3, 14)) == ("Payments", "people")
    assert team_on(wh, "email", " Bob@Example.com", D(2025, 3, 15)) == ("Data", "people")
    assert team_on(wh, "email", "bob@example.com", D(2024, 12, 31)) == ("Unattributed", "gap")
    assert team_on(wh, "email", "carol@example.com", D(2025, 3, 10)) == ("Unattributed", "gap")
    assert team_on(wh, "email", "alice@example.com", D(2000, 1, 1)) == ("Platform", "people")
    assert team_on(wh, "email", "alice@example.com", D(2025, 6, 1)) == ("Unattributed", "gap")
    assert team_on(wh, "email", "nobody@example.com", D(2025, 3, 15)) == ("Unattributed", "unknown")


def test_keys_resolve_by_id_and_name_through_owner_and_workspace(wh) -> None:
    counts = load(wh, PEOPLE, OWNERS)
    assert counts["owner"] == 2 * 2            # bob's key, by id and by name, split at his team change
    for kind, key in (("api_key_id", "apikey_bob"), ("api_key_name", "claude-code-bob")):
        assert team_on(wh, kind, key, D(2025, 3, 14)) == ("Payments", "owner")
        assert team_on(wh, kind, key, D(2025, 3, 15)) == ("Data", "owner")
        assert team_on(wh, kind, key, D(2024, 6, 1)) == ("Unattributed", "gap")   # before bob's first day
    got = attribution.resolve(wh, "api_key_name", "claude-code-alice", D(2025, 9, 1))
    assert (got["team"], got["cost_center"], got["owner_email"]) == ("Platform", "CC-P", "alice@example.com")
    assert team_on(wh, "api_key_id", "apikey_bot", D(2025, 2, 28)) == ("Unattributed", "gap")
    bot = attribution.resolve(wh, "api_key_id", "apikey_bot", D(2025, 3, 1))
    assert (bot["team"], bot["basis"], bot["owner_email"]) == ("Research", "workspace", "carol@example.com")
    assert team_on(wh, "workspace", "Research", D(2025, 3, 1)) == ("Research", "api_key_owners")
    assert team_on(wh, "api_key_id", "apikey_orphan", D(2025, 3, 1)) == ("Unattributed", "unmapped")
    assert team_on(wh, "api_key_name", "never-listed", D(2025, 3, 1)) == ("Unattributed", "unknown")
    with pytest.raises(ValueError, match="subject_type"):
        attribution.resolve(wh, "team", "x", D(2025, 3, 1))


def test_every_subject_has_exactly_one_row_on_every_day(wh) -> None:
    """The SQL-level invariant the marts rely on: a join on subject and day never duplicates, never misses."""
    load(wh, PEOPLE, OWNERS)
    rows = wh.query(
        """
        WITH days AS (SELECT day FROM UNNEST(GENERATE_DATE_ARRAY(DATE '2024-12-01', DATE '2025-07-31')) AS day),
        subjects AS (SELECT DISTINCT subject_type, subject FROM ref.attribution)
        SELECT s.subject_type, s.subject, d.day, COUNT(a.team) AS matches
        FROM subjects AS s CROSS JOIN days AS d
        LEFT JOIN ref.attribution AS a
          ON a.subject_type = s.subject_type AND a.subject = s.subject
          AND (a.valid_from IS NULL OR d.day >= a.valid_from) AND (a.valid_to IS NULL OR d.day <= a.valid_to)
        GROUP BY s.subject_type, s.subject, d.day
        """)
    subjects = {(r["subject_type"], r["subject"]) for r in rows}
    assert len(subjects) == 3 + 4 + 3 + 1       # 3 people, 4 keys by id, 3 by name (the orphan has none), 1 workspace
    assert {r["matches"] for r in rows} == {1}
    table = wh.query("SELECT subject_type, subject, valid_from, valid_to, basis FROM ref.attribution "
                     "WHERE subject = 'carol@example.com' ORDER BY valid_from NULLS FIRST")
    assert [(r["valid_from"], r["valid_to"], r["basis"]) for r in table] == [
        (None, D(2025, 1, 31), "gap"), (D(2025, 2, 1), D(2025, 2, 28), "people"),
        (D(2025, 3, 1), D(2025, 3, 31), "gap"), (D(2025, 4, 1), None, "people")]


def test_rebuild_replaces_and_an_empty_sheet_empties_it(wh) -> None:
    load(wh, PEOPLE, OWNERS)
    assert load(wh, PEOPLE[:1], []) == {"gap": 2, "people": 1}
    assert wh.query("SELECT COUNT(*) AS n FROM ref.attribution")[0]["n"] == 3
    assert load(wh, [], []) == {}
    assert team_on(wh, "email", "bob@example.com", D(2025, 1, 1)) == ("Unattributed", "unknown")


def test_from_the_shipped_sample_sheet_to_the_team_of_each_day(wh) -> None:
    """The sample's Bob changes team on 2025-03-15; his key's team is blank, so it follows him."""
    source = CsvFolderSource(SAMPLE)
    rows = {tab: split(parse_tab(tab, source.read_tab(tab).payload))[0] for tab in ("people", "api_key_owners")}
    load(wh, [{**r, **LINEAGE} for r in rows["people"]], [{**r, **LINEAGE} for r in rows["api_key_owners"]])
    day = D(2025, 3, 15)
    assert team_on(wh, "email", "bob.nguyen@example.com", day - timedelta(days=1)) == ("Payments", "people")
    assert team_on(wh, "email", "bob.nguyen@example.com", day) == ("Data", "people")
    assert team_on(wh, "api_key_name", "claude-code-bob-nguyen", day - timedelta(days=1)) == ("Payments", "owner")
    assert team_on(wh, "api_key_id", "apikey_01SampleBobKey000000000001", day) == ("Data", "owner")
    assert team_on(wh, "email", "carol.diaz@example.com", D(2025, 1, 15)) == ("Data", "people")
    assert team_on(wh, "email", "carol.diaz@example.com", D(2025, 1, 14)) == ("Unattributed", "gap")
    assert team_on(wh, "email", "erin.walsh@example.com", day) == ("Unattributed", "unknown")   # quarantined
    assert team_on(wh, "workspace", "Research Sandbox", day) == ("Data", "api_key_owners")
    assert team_on(wh, "api_key_id", "apikey_01SampleCiBotKey0000000001", day) == ("Unattributed", "unmapped")
