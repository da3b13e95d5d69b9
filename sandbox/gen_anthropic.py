"""Generation of the Anthropic side: organisation id, workspaces, Console users and API keys.

Keys follow real-life untidiness the pipeline must cope with: a few keys nobody owns, one key renamed
mid-range (the Claude Code report names API actors by the key's name of that day), one key rotated
(the old one archived, a new one created for the same owner), product-workload keys that are not
developer tooling, and one personal key living in the Default Workspace (``workspace_id`` null).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, timedelta

from sandbox.model import AnthropicUser, ApiKey, ClaudeCodeAccess, KeyName, Person, Workspace, WorkspaceMember
from sandbox.names import PRODUCT_WORKSPACES, UNOWNED_KEY_NAMES
from sandbox.rng import digest, stable_id, stable_rng, stable_token

KeySchedule = tuple[tuple[str, date, date | None], ...]


@dataclass(frozen=True)
class AnthropicParts:
    organization_id: str
    workspaces: tuple[Workspace, ...]
    users: tuple[AnthropicUser, ...]
    members: tuple[WorkspaceMember, ...]
    api_keys: tuple[ApiKey, ...]
    access: tuple[ClaudeCodeAccess, ...]  # with api_key_ids filled in
    key_schedules: dict[str, KeySchedule]  # email -> keys used over time


def _day(start: date, offset: int) -> date:
    return start + timedelta(days=offset)


def make_anthropic(
    seed: int, people: tuple[Person, ...], access: list[ClaudeCodeAccess], start: date, end: date
) -> AnthropicParts:
    days = (end - start).days + 1
    rng = stable_rng(seed, "anthropic")
    org_id = str(uuid.UUID(bytes=digest(seed, "organization", size=16), version=4))
    by_email = {p.email: p for p in people}

    cc_ws = Workspace(
        stable_id(seed, "wrkspc", "claude-code"),
        "Claude Code",
        "claude_code",
        True,
        _day(start, -400),
        "#6C5BB9",
    )
    products = tuple(
        Workspace(
            stable_id(seed, "wrkspc", name),
            name,
            "product",
            False,
            _day(start, -rng.randint(60, 500)),
            f"#{stable_token(seed, 'color', name, length=6, alphabet='0123456789ABCDEF')}",
        )
        for name, _ in PRODUCT_WORKSPACES[: rng.randint(2, 3)]
    )
    default_ws = Workspace(None, "Default Workspace", "default", True, _day(start, -800), "#808080")

    users = _make_users(seed, people, access, start)
    admin_id = next((u.id for u in users.values() if u.role == "admin"), stable_id(seed, "user", "owner"))

    keys: list[ApiKey] = []
    schedules: dict[str, KeySchedule] = {}

    def new_key(
        label: str,
        ws: str | None,
        purpose: str,
        owner: str | None,
        created: date,
        names: tuple[KeyName, ...],
        archived: date | None = None,
    ) -> ApiKey:
        creator = users[owner].id if owner in users else admin_id
        hint = f"sk-ant-api03-{stable_token(seed, 'hint', label, length=3)}...{stable_token(seed, 'hint2', label, length=4)}"
        key = ApiKey(
            stable_id(seed, "apikey", label), ws, purpose, owner, created, archived, names, creator, hint
        )
        keys.append(key)
        return key

    api_people = sorted((a for a in access if a.via == "api_key"), key=lambda a: a.email)
    order = stable_rng(seed, "key-roles").sample(api_people, len(api_people))
    default_person = order[0].email if len(order) >= 3 else None
    rotate = next(
        (
            a
            for a in order[1:]
            if by_email[a.email].leave_date is None and a.valid_from < start and days >= 14
        ),
        None,
    )
    rename = next(
        (a for a in order[1:] if a is not rotate and a.valid_from < _day(start, days // 3) and days >= 14),
        None,
    )
    rotate_day = _day(start, days // 2 + rng.randint(0, max(0, days // 6)))
    rename_day = _day(start, days // 3 + rng.randint(0, max(0, days // 6)))

    for a in api_people:
        local = a.email.split("@")[0].replace(".", "-")
        base = f"claude-code-{local}"
        ws = None if a.email == default_person else cc_ws.id
        if a is rotate:
            old = new_key(
                f"{a.email}#1",
                ws,
                "claude_code",
                a.email,
                a.valid_from,
                (KeyName(base, a.valid_from, None),),
                archived=rotate_day,
            )
            new = new_key(
                f"{a.email}#2",
                ws,
                "claude_code",
                a.email,
                rotate_day,
                (KeyName(f"{base}-r2", rotate_day, None),),
            )
            schedules[a.email] = (
                (old.id, a.valid_from, rotate_day - timedelta(days=1)),
                (new.id, rotate_day, a.valid_to),
            )
            continue
        names: tuple[KeyName, ...]
        if a is rename:
            names = (
                KeyName(f"{local}-dev", a.valid_from, rename_day - timedelta(days=1)),
                KeyName(base, rename_day, None),
            )
        else:
            names = (KeyName(base, a.valid_from, None),)
        key = new_key(f"{a.email}#1", ws, "claude_code", a.email, a.valid_from, names)
        schedules[a.email] = ((key.id, a.valid_from, a.valid_to),)

    n_unowned = rng.randint(2, 3)
    for i, name in enumerate(UNOWNED_KEY_NAMES[:n_unowned]):
        # The last unowned key appears inside the range: a newly discovered, unmapped key.
        created = (
            _day(start, days // 2)
            if (i == n_unowned - 1 and days >= 14)
            else _day(start, -rng.randint(10, 200))
        )
        new_key(f"unowned:{name}", cc_ws.id, "claude_code", None, created, (KeyName(name, created, None),))

    stayers = [p for p in people if p.leave_date is None and p.join_date < start] or list(people)
    for product, (ws_name, key_name) in zip(products, PRODUCT_WORKSPACES, strict=False):
        owner = stable_rng(seed, "workload-owner", ws_name).choice(stayers).email if stayers else None
        created = product.created_date + timedelta(days=1)
        new_key(
            f"workload:{key_name}",
            product.id,
            "workload",
            owner,
            created,
            (KeyName(key_name, created, None),),
        )

    final_access = tuple(
        replace(a, api_key_ids=tuple(k for k, _, _ in schedules.get(a.email, ()))) for a in access
    )
    workspaces = (cc_ws, *products, default_ws)
    members = _make_members(users, cc_ws, products, keys)
    return AnthropicParts(
        org_id,
        workspaces,
        tuple(sorted(users.values(), key=lambda u: u.email)),
        members,
        tuple(keys),
        final_access,
        schedules,
    )


def _make_users(
    seed: int, people: tuple[Person, ...], access: list[ClaudeCodeAccess], start: date
) -> dict[str, AnthropicUser]:
    """Console users: API-key and Console Claude Code users, plus two admins and one billing user."""
    by_email = {p.email: p for p in people}
    users: dict[str, AnthropicUser] = {}

    def add(p: Person, role: str, added: date) -> None:
        removed = p.leave_date + timedelta(days=1) if p.leave_date else None
        users[p.email] = AnthropicUser(
            stable_id(seed, "user", p.email), p.email, p.name, role, added, removed
        )

    for a in access:
        if a.via in ("api_key", "console"):
            add(by_email[a.email], "developer" if a.via == "api_key" else "claude_code_user", a.valid_from)
    veterans = sorted(
        (p for p in people if p.leave_date is None and p.join_date < start), key=lambda p: p.email
    )
    picks = stable_rng(seed, "console-admins").sample(veterans, min(3, len(veterans)))
    for p, role in zip(picks, ("admin", "admin", "billing"), strict=False):
        added = (
            min(users[p.email].added_date, start - timedelta(days=300))
            if p.email in users
            else start - timedelta(days=300)
        )
        add(p, role, max(added, p.join_date))
    return users


def _make_members(
    users: dict[str, AnthropicUser], cc_ws: Workspace, products: tuple[Workspace, ...], keys: list[ApiKey]
) -> tuple[WorkspaceMember, ...]:
    assert cc_ws.id is not None
    members = []
    for u in sorted(users.values(), key=lambda u: u.email):
        if u.role in ("developer", "claude_code_user"):
            members.append(WorkspaceMember(cc_ws.id, u.id, "workspace_developer"))
        elif u.role == "admin":
            members.append(WorkspaceMember(cc_ws.id, u.id, "workspace_admin"))
    for ws in products:
        assert ws.id is not None
        for k in keys:
            if k.workspace_id == ws.id and k.owner_email in users:
                members.append(WorkspaceMember(ws.id, users[k.owner_email].id, "workspace_developer"))
    return tuple(members)
