"""Great Expectations suites as code: one per raw and reference table (DESIGN.md §6).

Most of a suite follows from the table's contract, so a contract change updates its suite:

- the primary key (``x-primaryKey``) is unique, and its REQUIRED columns are not null (error);
- every INT64 / NUMERIC column is >= 0: counters and money are never negative (error; one expectation over
  a derived column that names the negative columns of each row);
- the partition date lies inside the window the triggering run replaced, and not after today (error);
- e-mail columns are lowercased and trimmed, as the join to ref.people needs (warning).

`EXTRAS` adds what a contract cannot say: allowed values, ordered date pairs, non-overlapping validity
ranges, and the band a day's row count may move in against the previous day's (warning). Activity
tables swing over weekends, so they compare a day with the same weekday a week earlier; rosters and
listings with the nearest earlier day that has rows. `blocks` says whether an error-level failure blocks
the refresh of the marts for the months it covers: true for the tables the marts read, false for tables
that only feed reconciliation or audit. This module is pure data: the GX objects are built by
`ai_usage.quality.gx_runner`, which imports GX inside the task only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

from ai_usage.warehouse.contracts import TableContract, get_contract

ERROR = "error"
WARNING = "warning"
KEY_COLUMN = "__primary_key"     # a derived column: the key as text, so NULL parts compare equal
NEGATIVE_COLUMN = "__negative_columns"   # a derived column: which counters / money columns are below 0
EMAIL_PATTERN = r"^[^A-Z\s]+@[^A-Z\s]+$"


@dataclass(frozen=True)
class Check:
    """One expectation: `kind` names the GX expectation the runner builds (see gx_runner.EXPECTATIONS)."""

    kind: str                      # not_null | unique | between | in_set | regex | pair_ge
    column: str
    level: str = ERROR
    args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        extra = f">={self.args['other']}" if self.kind == "pair_ge" else ""
        return f"{self.kind}:{self.column}{extra}"


# A derived column: name -> function of the batch's DataFrame (pandas), computed before validation.
Derivation = Callable[[Any], Any]


@dataclass(frozen=True)
class Extras:
    allowed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    allowed_warn: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    patterns: Mapping[str, str] = field(default_factory=dict)
    ordered: tuple[tuple[str, str], ...] = ()          # (later, earlier): later >= earlier where both set
    upper: Mapping[str, float] = field(default_factory=dict)
    derived: Mapping[str, Derivation] = field(default_factory=dict)   # each must be all True
    row_band: tuple[float, float] | None = None        # day's rows / previous day's rows
    weekly: bool = False                               # compare with the same weekday a week earlier
    blocks: bool = True


def _no_overlap(df: Any, by: Sequence[str] = ("email",)) -> Any:
    """True per row when its validity range overlaps no other row of the same subject (`by` columns)."""
    import pandas as pd

    lo = pd.to_datetime(df["valid_from"]).fillna(pd.Timestamp.min)
    hi = pd.to_datetime(df["valid_to"]).fillna(pd.Timestamp.max)
    ok = pd.Series(True, index=df.index)
    for _, group in df.groupby(list(by), dropna=False, sort=False):
        idx = list(group.index)
        for i, a in enumerate(idx):
            for b in idx[i + 1:]:
                if lo[a] <= hi[b] and lo[b] <= hi[a]:
                    ok[a] = ok[b] = False
    return ok


def _has_identity(df: Any) -> Any:
    """An owners row must name an API key (id or name) or a workspace."""
    return df[["api_key_id", "api_key_name", "workspace"]].notna().any(axis=1)


_ACTIVITY_BAND = (0.1, 10.0)   # activity swings over weekends: compared with the same weekday (weekly=True)
_ROSTER_BAND = (0.5, 2.0)
_CURSOR_KINDS = ("Usage-based", "Included in Business", "Included in Pro", "Errored, Not Charged",
                 "Aborted, Not Charged", "Free")

EXTRAS: dict[str, Extras] = {
    "raw.cursor_daily_usage": Extras(row_band=_ROSTER_BAND),
    "raw.cursor_usage_events": Extras(allowed_warn={"kind": _CURSOR_KINDS}, upper={"discount_percent_off": 100},
                                      row_band=_ACTIVITY_BAND, weekly=True),
    "raw.cursor_spend": Extras(ordered=(("snapshot_date", "subscription_cycle_start_date"),),
                               row_band=_ROSTER_BAND, blocks=False),
    "raw.cursor_members": Extras(row_band=_ROSTER_BAND, blocks=False),
    "raw.claude_code_usage": Extras(allowed={"actor_type": ("user_actor", "api_actor"),
                                             "customer_type": ("api", "subscription")},
                                    row_band=_ACTIVITY_BAND, weekly=True),
    "raw.anthropic_costs": Extras(allowed={"currency": ("USD",)}, patterns={"platform": r"^[a-z][a-z0-9_]*$"},
                                  row_band=_ACTIVITY_BAND, weekly=True),
    "raw.anthropic_messages_usage": Extras(row_band=_ACTIVITY_BAND, weekly=True, blocks=False),
    "raw.anthropic_api_keys": Extras(allowed_warn={"status": ("active", "inactive", "archived", "expired")},
                                     row_band=_ROSTER_BAND, blocks=False),
    "raw.anthropic_users": Extras(row_band=_ROSTER_BAND, blocks=False),
    "raw.anthropic_workspaces": Extras(row_band=_ROSTER_BAND, blocks=False),
    "raw.claude_ai_usage": Extras(ordered=(("period_end", "period_start"),)),
    "ref.people": Extras(ordered=(("valid_to", "valid_from"),), derived={"__no_overlapping_range": _no_overlap}),
    "ref.api_key_owners": Extras(ordered=(("valid_to", "valid_from"),),
                                 derived={"__names_a_key_or_workspace": _has_identity}),
    "ref.seat_prices": Extras(allowed={"tool": ("cursor", "claude_code", "claude_ai")},
                              ordered=(("valid_to", "valid_from"),)),
    "ref.attribution": Extras(allowed={"subject_type": ("email", "api_key_id", "api_key_name", "workspace")},
                              ordered=(("valid_to", "valid_from"),),
                              derived={"__no_overlapping_range": partial(_no_overlap, by=("subject_type", "subject"))}),
}
SUITE_TABLES = tuple(EXTRAS)


@dataclass(frozen=True)
class Suite:
    """The checks of one table for one batch (the window matters for the partition-date check)."""

    table: str
    checks: tuple[Check, ...]
    key: tuple[str, ...]
    partition_field: str | None
    derived: Mapping[str, Derivation]
    row_band: tuple[float, float] | None
    weekly: bool
    blocks: bool

    @property
    def columns(self) -> list[str]:
        """Columns a batch must hold: a reference table whole; of a raw table what the checks read."""
        if self.partition_field is None:
            return [c for c in get_contract(self.table).column_names if not c.startswith("_")]
        wanted = list(self.key)
        for c in self.checks:
            for name in (c.column, c.args.get("other"), *c.args.get("columns", ())):
                if name and not name.startswith("__") and name not in wanted:
                    wanted.append(name)
        return wanted


def build_suite(table: str, window: tuple[date, date] | None = None, *, today: date | None = None) -> Suite:
    """The suite of `table`; `window` (inclusive days) bounds its partition dates, capped at `today`."""
    contract = get_contract(table)
    extras = EXTRAS[table]
    checks: list[Check] = [Check("unique", KEY_COLUMN)]
    checks += [Check("not_null", k) for k in contract.primary_key if contract.column(k).required]
    checks += _numeric_checks(contract, extras)
    if contract.partition_field and window is not None:
        hi = min(window[1], today) if today else window[1]
        checks.append(Check("between", contract.partition_field,
                            args={"min_value": window[0], "max_value": max(hi, window[0])}))
    checks += [Check("in_set", col, ERROR, {"value_set": values}) for col, values in extras.allowed.items()]
    checks += [Check("in_set", col, WARNING, {"value_set": values}) for col, values in extras.allowed_warn.items()]
    checks += [Check("regex", col, ERROR, {"regex": rx}) for col, rx in extras.patterns.items()]
    checks += [Check("regex", c.name, WARNING, {"regex": EMAIL_PATTERN})
               for c in contract.columns if c.name in ("email", "owner_email")]
    checks += [Check("pair_ge", later, ERROR, {"other": earlier}) for later, earlier in extras.ordered]
    checks += [Check("in_set", name, ERROR, {"value_set": (True,)}) for name in extras.derived]
    return Suite(table, tuple(checks), contract.primary_key, contract.partition_field, extras.derived,
                 extras.row_band, extras.weekly, extras.blocks)


def numeric_columns(contract: TableContract) -> list[str]:
    """The top-level INT64 / NUMERIC columns: counters and money, never negative."""
    return [c.name for c in contract.columns
            if c.type in ("INT64", "NUMERIC") and not c.repeated and not c.name.startswith("_")]


def _numeric_checks(contract: TableContract, extras: Extras) -> list[Check]:
    """One check for all counters and money (a GX expectation costs ~50 ms per batch, so not one per
    column): the derived column NEGATIVE_COLUMN names, per row, the columns below 0 and must be empty."""
    columns = numeric_columns(contract)
    out = [Check("in_set", NEGATIVE_COLUMN, ERROR, {"value_set": ("",), "columns": tuple(columns)})] if columns else []
    out += [Check("between", name, args={"max_value": upper}) for name, upper in extras.upper.items()]
    return out


def negative_columns(df: Any, columns: Sequence[str]) -> Any:
    """Per row, the comma-separated names of `columns` holding a value below 0 ('' when none)."""
    import pandas as pd

    names = pd.Series("", index=df.index, dtype=object)
    for name in columns:
        values = pd.to_numeric(df[name], errors="coerce") if name in df.columns else None
        if values is None:
            continue
        below = values.lt(0).fillna(False)
        names = names.where(~below, names.str.cat([name] * len(names), sep=",").str.lstrip(","))
    return names
