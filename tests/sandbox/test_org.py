"""The synthetic organisation: deterministic, time-zone independent, and holding every case the pipeline must meet."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from sandbox import Organisation
from sandbox.sheet import API_KEY_OWNERS_COLUMNS, PEOPLE_COLUMNS, SEAT_PRICES_COLUMNS

REPO = Path(__file__).resolve().parents[2]
END = date(2026, 3, 31)


@pytest.fixture(scope="module")
def org() -> Organisation:
    return Organisation.generate(seed=7, people=60, days=120, end=END)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "plugins"), str(REPO)])
    env.update(extra)
    return env


def _activity_fingerprint(o: Organisation, day: date) -> list[tuple[str, str, float, int]]:
    return [(a.person.email, a.tool, round(a.intensity, 12), a.seed) for a in o.activity(day)]


# --------------------------------------------------------------------------- determinism


def test_same_arguments_give_identical_organisations(org: Organisation) -> None:
    again = Organisation.generate(seed=7, people=60, days=120, end=END)
    assert again.ground_truth() == org.ground_truth()
    assert again.sheet_tabs() == org.sheet_tabs()
    assert again.digest() == org.digest()
    day = END - timedelta(days=10)
    assert _activity_fingerprint(again, day) == _activity_fingerprint(org, day)
    assert [(k.api_key.id, k.intensity) for k in again.key_activity(day)] == [
        (k.api_key.id, k.intensity) for k in org.key_activity(day)
    ]


def test_different_seed_gives_a_different_organisation(org: Organisation) -> None:
    other = Organisation.generate(seed=8, people=60, days=120, end=END)
    assert other.digest() != org.digest()
    assert {p.email for p in other.people} != {p.email for p in org.people}
    assert other.organization_id != org.organization_id


def test_other_arguments_change_the_organisation(org: Organisation) -> None:
    assert Organisation.generate(seed=7, people=61, days=120, end=END).digest() != org.digest()
    assert (
        Organisation.generate(seed=7, people=60, days=120, end=END + timedelta(days=1)).digest()
        != org.digest()
    )


_PROBE = """
import hashlib, json, sys
from datetime import date, timedelta
from sandbox import Organisation
o = Organisation.generate(seed=7, people=60, days=120, end=date(2026, 3, 31))
acts = [(a.person.email, a.tool, repr(a.intensity), a.seed) for d in o.dates() for a in o.activity(d)]
keys = [(k.api_key.id, repr(k.intensity)) for d in o.dates() for k in o.key_activity(d)]
act = hashlib.sha256(json.dumps([acts, keys]).encode()).hexdigest()
print(json.dumps({"digest": o.digest(), "activity": act}))
"""


@pytest.mark.parametrize(("tz", "hashseed"), [("America/Los_Angeles", "123"), ("Pacific/Kiritimati", "0")])
def test_generation_ignores_time_zone_and_hash_seed(org: Organisation, tz: str, hashseed: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env=_env(TZ=tz, PYTHONHASHSEED=hashseed),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    remote = json.loads(out.stdout)
    import hashlib

    acts = [(a.person.email, a.tool, repr(a.intensity), a.seed) for d in org.dates() for a in org.activity(d)]
    keys = [(k.api_key.id, repr(k.intensity)) for d in org.dates() for k in org.key_activity(d)]
    assert remote["digest"] == org.digest()
    assert remote["activity"] == hashlib.sha256(json.dumps([acts, keys]).encode()).hexdigest()


def test_default_end_is_yesterday_in_utc_whatever_the_local_zone() -> None:
    probe = (
        "import time, json; from sandbox import Organisation; o = Organisation.generate(days=3);"
        "g = time.gmtime(); print(json.dumps([o.end.isoformat(), [g.tm_year, g.tm_mon, g.tm_mday]]))"
    )
    for tz in (
        "Pacific/Kiritimati",
        "Pacific/Pago_Pago",
    ):  # UTC+14 and UTC-11: a local date differs from UTC's
        out = subprocess.run(
            [sys.executable, "-c", probe],
            env=_env(TZ=tz),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        end, (y, m, d) = json.loads(out.stdout)
        assert date.fromisoformat(end) == date(y, m, d) - timedelta(days=1)
    assert Organisation.generate(days=3).end == datetime.now(UTC).date() - timedelta(days=1)


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        Organisation.generate(people=0)
    with pytest.raises(ValueError):
        Organisation.generate(days=0)


# --------------------------------------------------------------------------- teams and people


def test_range_and_teams(org: Organisation) -> None:
    assert org.start == date(2025, 12, 2) and org.end == END and org.days == 120
    assert len(list(org.dates())) == 120
    assert 6 <= len(org.teams) <= 10
    assert len({t.name for t in org.teams}) == len(org.teams)
    assert all(re.fullmatch(r"CC-\d{4}", t.cost_center) for t in org.teams)
    per_cc = Counter(t.cost_center for t in org.teams)
    assert max(per_cc.values()) >= 2, "some cost centre must hold several teams"


def test_people_emails_are_unique_lowercase_and_well_formed(org: Organisation) -> None:
    emails = [p.email for p in org.people]
    assert len(emails) == 60 == len(set(emails))
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+\d*@example\.com", e) for e in emails)
    first, last = org.people[0].name.lower().split(" ")
    assert org.people[0].email.startswith(f"{first}.{last}")


def test_people_join_leave_and_change_team_inside_the_range(org: Organisation) -> None:
    joiners = [p for p in org.people if org.start < p.join_date <= org.end]
    leavers = [p for p in org.people if p.leave_date is not None and org.start <= p.leave_date < org.end]
    movers = [p for p in org.people if p.changed_team]
    assert joiners and leavers and movers
    assert all(p.join_date < org.start or p in joiners for p in org.people)
    for p in movers:
        old, new = p.history
        assert old.team != new.team
        assert old.valid_to is not None and new.valid_from == old.valid_to + timedelta(days=1)
        assert org.start <= new.valid_from <= org.end
    for p in org.people:  # history covers employment exactly, with no gaps
        assert p.history[0].valid_from == p.join_date and p.history[-1].valid_to == p.leave_date
    assert {p.email for p in org.people_on(org.end)} == {
        p.email
        for p in org.people
        if p.join_date <= org.end and (p.leave_date is None or p.leave_date >= org.end)
    }
    leaver = leavers[0]
    last_day = leaver.leave_date
    assert last_day is not None
    assert leaver in org.people_on(last_day)
    assert leaver not in org.people_on(last_day + timedelta(days=1))


def test_team_of_either_side_of_a_change(org: Organisation) -> None:
    mover = next(p for p in org.people if p.changed_team)
    old, new = mover.history
    change = new.valid_from
    assert org.team_of(mover.email, change - timedelta(days=1)) == (old.team, old.cost_center)
    assert org.team_of(mover.email, change) == (new.team, new.cost_center)
    assert org.team_of(mover.email.upper(), change) == (new.team, new.cost_center)
    joiner = next(p for p in org.people if p.join_date > org.start)
    assert org.team_of(joiner.email, joiner.join_date - timedelta(days=1)) is None
    with pytest.raises(KeyError):
        org.team_of("nobody@example.com", change)


# --------------------------------------------------------------------------- seats and prices


def test_seats_modes_and_idle_holders(org: Organisation) -> None:
    tools = Counter(s.tool for s in org.seats)
    assert tools["cursor"] > 20 and tools["claude_ai"] > 5
    assert {s.plan for s in org.seats if s.tool == "claude_ai"} == {"team", "premium"}
    idle = [s for s in org.seats if s.idle]
    assert {s.tool for s in idle} == {"cursor", "claude_ai"}
    for s in idle:  # an idle holder never uses the seat on any day
        assert not any(a.tool == s.tool for d in org.dates() for a in org.activity_of(s.email, d))
    used = [s for s in org.seats if not s.idle and s.tool == "cursor"]
    assert (
        sum(
            any(a.tool == "cursor" for a in org.activity_of(s.email, END - timedelta(days=i)))
            for s in used
            for i in range(7)
        )
        > 0
    )
    modes = Counter(a.via for a in org.claude_code_access)
    assert set(modes) == {"api_key", "console", "subscription"}
    premium = {s.email for s in org.seats if s.plan == "premium"}
    assert {a.email for a in org.claude_code_access if a.via == "subscription"} <= premium


def test_price_card_is_decimal_and_effective_dated(org: Organisation) -> None:
    card = org.price_card
    assert all(isinstance(c.monthly_price_usd, Decimal) for c in card)
    team = sorted((c for c in card if (c.tool, c.plan) == ("claude_ai", "team")), key=lambda c: c.valid_from)
    assert [c.monthly_price_usd for c in team] == [Decimal("30.00"), Decimal("25.00")]
    assert team[0].valid_to == team[1].valid_from - timedelta(days=1)
    assert org.start < team[1].valid_from <= org.end
    cursor = next(c for c in card if c.tool == "cursor")
    holders_on = [len(org.seats_on(d, "cursor")) for d in org.dates()]
    assert cursor.seats == max(holders_on) and cursor.monthly_price_usd == Decimal("40.00")


# --------------------------------------------------------------------------- Anthropic


def test_anthropic_ids_workspaces_users(org: Organisation) -> None:
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", org.organization_id
    )
    kinds = Counter(w.kind for w in org.workspaces)
    assert kinds["claude_code"] == 1 and kinds["default"] == 1 and 2 <= kinds["product"] <= 3
    default = next(w for w in org.workspaces if w.kind == "default")
    assert default.id is None
    assert all(not w.is_developer_tooling for w in org.workspaces if w.kind == "product")
    assert all(re.fullmatch(r"wrkspc_01[0-9A-Za-z]{22}", w.id) for w in org.workspaces if w.id)
    assert all(re.fullmatch(r"user_01[0-9A-Za-z]{22}", u.id) for u in org.users)
    assert len({u.id for u in org.users}) == len(org.users)
    roles = Counter(u.role for u in org.users)
    assert roles["admin"] >= 1 and roles["developer"] >= 1 and roles["claude_code_user"] >= 1
    for u in org.users:  # a Console user exists while the person is employed
        p = org.person(u.email)
        assert u.added_date >= p.join_date
        assert u.removed_date == (p.leave_date + timedelta(days=1) if p.leave_date else None)


def test_api_keys_cover_owned_unowned_renamed_archived_and_workloads(org: Organisation) -> None:
    keys = org.api_keys
    assert all(re.fullmatch(r"apikey_01[0-9A-Za-z]{22}", k.id) for k in keys)
    assert len({k.id for k in keys}) == len(keys)
    all_names = [n.name for k in keys for n in k.names]
    assert len(all_names) == len(set(all_names)), "the Claude Code report joins on names: keep them unique"
    unowned = [k for k in keys if k.owner_email is None]
    assert unowned and all(k.purpose == "claude_code" for k in unowned)
    renamed = [k for k in keys if len(k.names) > 1]
    assert len(renamed) == 1
    k = renamed[0]
    day = k.names[1].valid_from
    assert k.name_on(day - timedelta(days=1)) == k.names[0].name != k.name_on(day) == k.name
    archived = [k for k in keys if k.archived_date is not None]
    assert len(archived) == 1
    old = archived[0]
    gone = old.archived_date
    assert gone is not None
    assert old.status_on(gone) == "archived" and old.status_on(gone - timedelta(days=1)) == "active"
    successor = [k for k in keys if k.owner_email == old.owner_email and k is not old]
    assert successor and successor[0].created_date == old.archived_date
    workloads = [k for k in keys if k.purpose == "workload"]
    assert {k.workspace_id for k in workloads} == {w.id for w in org.workspaces if w.kind == "product"}
    assert any(k.workspace_id is None for k in keys), "one key lives in the Default Workspace"
    for a in org.claude_code_access:
        if a.via == "api_key":
            assert a.api_key_ids and all(org.api_key(i).owner_email == a.email for i in a.api_key_ids)


def test_key_activity_uses_the_name_and_key_of_the_day(org: Organisation) -> None:
    used = Counter(ka.api_key.id for d in org.dates() for ka in org.key_activity(d))
    assert all(
        used[k.id] > 0
        for k in org.api_keys
        if k.owner_email is None and k.created_date <= org.end - timedelta(days=7)
    )
    assert all(used[k.id] > 50 for k in org.api_keys if k.purpose == "workload")
    archived = next(k for k in org.api_keys if k.archived_date is not None)
    gone = archived.archived_date
    assert gone is not None
    for d in org.dates():
        for ka in org.key_activity(d):
            assert ka.api_key.usable_on(d)
            if ka.person is not None:
                assert ka.person.employed_on(d) and ka.api_key.owner_email == ka.person.email
        for a in org.activity(d):
            if a.api_key_id == archived.id:
                assert d < gone


# --------------------------------------------------------------------------- activity


def test_activity_only_for_employed_people_with_access(org: Organisation) -> None:
    tools: Counter[str] = Counter()
    for d in org.dates():
        for a in org.activity(d):
            tools[a.tool] += 1
            assert a.person.employed_on(d) and a.intensity > 0 and a.day == d
            if a.tool in ("cursor", "claude_ai"):
                assert any(s.email == a.person.email for s in org.seats_on(d, a.tool))
            else:
                assert a.via in ("api_key", "console", "subscription")
                assert (a.api_key_id is not None) == (a.via == "api_key")
    assert set(tools) == {"cursor", "claude_code", "claude_ai"}
    assert list(org.activity(org.start - timedelta(days=1))) == []
    assert list(org.activity(org.end + timedelta(days=1))) == []


def test_weekend_activity_is_much_lower(org: Organisation) -> None:
    weekend = [sum(1 for _ in org.activity(d)) for d in org.dates() if d.weekday() >= 5]
    weekday = [sum(1 for _ in org.activity(d)) for d in org.dates() if d.weekday() < 5]
    assert sum(weekend) / len(weekend) < 0.3 * sum(weekday) / len(weekday)


def test_activity_of_agrees_with_the_day_stream(org: Organisation) -> None:
    day = END - timedelta(days=3)
    stream = {(a.person.email, a.tool): a for a in org.activity(day)}
    for p in org.people:
        for a in org.activity_of(p.email, day):
            assert stream.pop((p.email, a.tool)) == a
    assert stream == {}
    a = next(iter(org.activity(day)))
    assert a.rng().random() == a.rng().random()


def test_activity_of_2000_people_is_a_lazy_stream() -> None:
    big = Organisation.generate(seed=3, people=2000, days=365, end=END)
    stream = big.activity(END)
    assert inspect.isgenerator(big.activity(END))
    first = next(stream)
    assert first.day == END
    assert 1 + sum(1 for _ in stream) > 1000
    assert inspect.isgenerator(big.key_activity(END))


# --------------------------------------------------------------------------- exports


def test_sheet_tabs(org: Organisation) -> None:
    tabs = org.sheet_tabs()
    assert set(tabs) == {"people", "api_key_owners", "seat_prices", "claude_ai_usage"}
    assert all(list(r) == PEOPLE_COLUMNS for r in tabs["people"])
    assert all(list(r) == API_KEY_OWNERS_COLUMNS for r in tabs["api_key_owners"])
    assert all(list(r) == SEAT_PRICES_COLUMNS for r in tabs["seat_prices"])
    assert all(isinstance(v, str) for rows in tabs.values() for r in rows for v in r.values())
    assert len(tabs["people"]) == sum(len(p.history) for p in org.people)
    owners = tabs["api_key_owners"]
    listed = {r["api_key_id"] for r in owners}
    assert listed == {k.id for k in org.api_keys if k.owner_email is not None}
    assert not listed & {k.id for k in org.api_keys if k.owner_email is None}
    assert {r["is_developer_tooling"] for r in owners} == {"TRUE", "FALSE"}
    mover_key = [r for r in owners if org.person(r["owner_email"]).changed_team]
    if mover_key:  # an owner who changed team has one row per team, contiguous
        rows = sorted(
            (r for r in owners if r["api_key_id"] == mover_key[0]["api_key_id"]),
            key=lambda r: r["valid_from"],
        )
        assert len(rows) == 2 and rows[0]["team"] != rows[1]["team"]
    prices = {(r["tool"], r["plan"], r["valid_from"]): r["monthly_price_usd"] for r in tabs["seat_prices"]}
    assert "40.00" in prices.values() and "150.00" in prices.values()


def test_ground_truth_export_and_cli(org: Organisation, tmp_path: Path) -> None:
    written = org.export_ground_truth(tmp_path / "gt")
    doc = json.loads((tmp_path / "gt" / "ground_truth.json").read_text())
    assert doc["meta"]["organization_id"] == org.organization_id
    assert set(doc["tables"]) == set(org.ground_truth())
    assert {p.name for p in written} >= {
        "ground_truth.json",
        "people_history.csv",
        "api_keys.csv",
        "price_card.csv",
    }
    assert "30.00" in (tmp_path / "gt" / "price_card.csv").read_text()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "org",
            "--seed",
            "7",
            "--people",
            "60",
            "--days",
            "120",
            "--end",
            END.isoformat(),
            "--out",
            str(tmp_path / "cli"),
        ],
        env=_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert org.digest() in out.stdout
    cli_doc = json.loads((tmp_path / "cli" / "ground_truth.json").read_text())
    assert cli_doc == doc
    assert (tmp_path / "cli" / "sheet" / "api_key_owners.csv").read_text().splitlines()[0] == ",".join(
        API_KEY_OWNERS_COLUMNS
    )
