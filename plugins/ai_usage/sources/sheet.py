"""The Sheet's tabs → rows of ref.people, ref.api_key_owners, ref.seat_prices and raw.claude_ai_usage.

A tab arrives as the grid of cell texts a person sees, header in row 1 (the Sheets API's ``values``, or
the rows of a CSV export: `ai_usage.hooks.sheet`). Parsing is strict per row and forgiving per sheet:

- headers are trimmed, lowercased, punctuation → ``_`` and known aliases accepted (``user_email`` →
  ``email``, ``Cost Centre`` → ``cost_center``); unknown columns are ignored; a required column that is
  missing, or two columns that mean the same, raise `SheetLayoutError` naming the tab and the column;
- blank rows are skipped; every other row becomes exactly one contract row or one `Rejected` with the
  sheet's row number (header = row 1), so rows in = rows loaded + rows quarantined;
- cells are coerced by `sheet_cells` (e-mails trimmed and lowercased, dates, money, counts);
- duplicates: an exact copy of an earlier row is rejected ("exact duplicate of row 5"); rows sharing a
  key with different values are all rejected (which one is right cannot be known);
- validity ranges (``valid_from``..``valid_to``, both inclusive, blank = open) of the same person, key,
  workspace or price must not overlap: every row of an overlap is rejected, naming the other rows. For
  the claude.ai export, two different periods that overlap are rejected the same way (their spend must
  never be added up).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ai_usage.sources import sheet_cells as cells
from ai_usage.sources.common import BadValue, ParseResult, PayloadError, Rejected, norm_email

log = logging.getLogger(__name__)

TOOLS = ("cursor", "claude_code", "claude_ai")
_TOOL_ALIASES = {"claude_ai": "claude_ai", "claudeai": "claude_ai", "claude": "claude_ai",
                 "claude_code": "claude_code", "claudecode": "claude_code", "cursor": "cursor"}
_OPEN_START, _OPEN_END = date.min, date.max


class SheetLayoutError(PayloadError):
    """The tab itself is unusable (no header, a required column missing, a column twice): the run fails."""


Cells = Mapping[str, str | None]      # canonical column -> cell text (None = blank or absent)


@dataclass(frozen=True)
class TabSpec:
    """One tab of the template: its table, accepted header spellings and validation keys."""

    tab: str
    table: str
    columns: Mapping[str, tuple[str, ...]]     # canonical column -> accepted normalized headers
    required: tuple[str, ...]                  # columns the header must have
    build: Callable[[Cells, int], dict[str, Any]]
    key: tuple[str, ...]                       # duplicate key (the contract's primary key)
    ranges: tuple[tuple[str, ...], ...] = ()   # groups whose validity ranges must not overlap
    free_text: tuple[str, ...] = ()            # columns where a leading "=" is not a formula

    def header_index(self, header: Sequence[Any]) -> dict[str, int]:
        """Canonical column -> 0-based index in `header`; raises SheetLayoutError on a bad header."""
        aliases = {alias: column for column, names in self.columns.items() for alias in (column, *names)}
        found: dict[str, int] = {}
        for i, cell in enumerate(header):
            name = cells.normalize_header(str(cell or ""))
            column = aliases.get(name)
            if column is None:
                continue
            if column in found:
                raise SheetLayoutError(
                    f"tab {self.tab}: columns {_letter(found[column])} ({header[found[column]]!r}) and "
                    f"{_letter(i)} ({cell!r}) both mean {column!r}; delete or rename one of them")
            found[column] = i
        missing = [c for c in self.required if c not in found]
        if missing:
            shown = ", ".join(repr(str(h)) for h in header if str(h or "").strip()) or "nothing"
            raise SheetLayoutError(
                f"tab {self.tab}: required column {missing[0]!r} is missing"
                + (f" (also {', '.join(map(repr, missing[1:]))})" if missing[1:] else "")
                + f"; row 1 must be the header, and it has {shown}")
        return found


def _letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA: the column as the spreadsheet names it."""
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


# --------------------------------------------------------------------------- row builders


def _range(c: Cells) -> tuple[date | None, date | None]:
    start = cells.to_date(c.get("valid_from"), "valid_from")
    end = cells.to_date(c.get("valid_to"), "valid_to")
    if start and end and end < start:
        raise BadValue(f"valid_to {end} is before valid_from {start}")
    return start, end


def _person(c: Cells, row: int) -> dict[str, Any]:
    start, end = _range(c)
    return {
        "email": norm_email(cells.clean(c.get("email")), "email"),
        "name": cells.text(c.get("name"), "name"),
        "team": cells.text(c.get("team"), "team", required=True),
        "cost_center": cells.text(c.get("cost_center"), "cost_center"),
        "valid_from": start,
        "valid_to": end,
    }


def _key_owner(c: Cells, row: int) -> dict[str, Any]:
    start, end = _range(c)
    out = {
        "api_key_id": cells.text(c.get("api_key_id"), "api_key_id"),
        "api_key_name": cells.text(c.get("api_key_name"), "api_key_name"),
        "workspace": cells.text(c.get("workspace"), "workspace"),
        "owner_email": norm_email(cells.clean(c.get("owner_email")), "owner_email", required=False),
        "team": cells.text(c.get("team"), "team"),
        "cost_center": cells.text(c.get("cost_center"), "cost_center"),
        "valid_from": start,
        "valid_to": end,
        "notes": cells.text(c.get("notes"), "notes"),
        "is_developer_tooling": cells.to_flag(c.get("is_developer_tooling"), "is_developer_tooling"),
    }
    if not (out["api_key_id"] or out["api_key_name"] or out["workspace"]):
        raise BadValue("the row maps nothing: fill api_key_id, api_key_name or workspace")
    return out


def _seat_price(c: Cells, row: int) -> dict[str, Any]:
    start, end = _range(c)
    raw_tool = cells.text(c.get("tool"), "tool", required=True)
    assert raw_tool is not None
    tool = _TOOL_ALIASES.get(cells.normalize_header(raw_tool))
    if tool is None:
        raise BadValue(f"tool: {raw_tool!r} is not one of {', '.join(TOOLS)}")
    return {
        "tool": tool,
        "plan": cells.text(c.get("plan"), "plan", required=True),
        "monthly_price_usd": cells.to_money(c.get("monthly_price_usd"), "monthly_price_usd", required=True),
        "seats": cells.to_count(c.get("seats"), "seats"),
        "valid_from": start,
        "valid_to": end,
    }


def _claude_ai(c: Cells, row: int) -> dict[str, Any]:
    start = cells.to_date(c.get("period_start"), "period_start", required=True)
    end = cells.to_date(c.get("period_end"), "period_end", required=True)
    assert start is not None and end is not None
    if end < start:
        raise BadValue(f"period_end {end} is before period_start {start}")
    return {
        "period_start": start,
        "period_end": end,
        "period_label": cells.text(c.get("period_label"), "period_label"),
        # Rows without an e-mail are organisation-level service usage (vendor-apis.md §3.1).
        "email": norm_email(cells.clean(c.get("email")), "email", required=False),
        "account_uuid": cells.text(c.get("account_uuid"), "account_uuid"),
        "product": cells.text(c.get("product"), "product"),
        "model": cells.text(c.get("model"), "model"),
        "model_family": cells.text(c.get("model_family"), "model_family"),
        "total_requests": cells.to_count(c.get("total_requests"), "total_requests"),
        "total_prompt_tokens": cells.to_count(c.get("total_prompt_tokens"), "total_prompt_tokens"),
        "total_completion_tokens": cells.to_count(c.get("total_completion_tokens"), "total_completion_tokens"),
        "net_spend_usd": cells.to_money(c.get("net_spend_usd"), "total_net_spend_usd", required=True),
        "gross_spend_usd": cells.to_money(c.get("gross_spend_usd"), "total_gross_spend_usd"),
        "net_spend_raw": c.get("net_spend_usd"),
        "gross_spend_raw": c.get("gross_spend_usd"),
        "exported_at": cells.to_timestamp(c.get("exported_at"), "exported_at"),
        "source_row": row,
    }


_RANGE_ALIASES = {"valid_from": ("from", "start_date", "effective_from", "valid_since"),
                  "valid_to": ("to", "end_date", "effective_to", "valid_until")}
_EMAIL_ALIASES = ("user_email", "e_mail", "email_address")
_COST_CENTER = ("cost_centre", "costcenter", "costcentre")

PEOPLE = TabSpec(
    tab="people", table="ref.people",
    columns={"email": _EMAIL_ALIASES, "name": ("full_name", "display_name"), "team": (),
             "cost_center": _COST_CENTER, **_RANGE_ALIASES},
    required=("email", "team"), build=_person, key=("email", "valid_from"), ranges=(("email",),),
    free_text=("name",),
)
API_KEY_OWNERS = TabSpec(
    tab="api_key_owners", table="ref.api_key_owners",
    columns={"api_key_id": ("key_id",), "api_key_name": ("key_name", "api_key"),
             "workspace": ("workspace_id", "workspace_name"), "owner_email": ("owner", "owner_e_mail"),
             "team": (), "cost_center": _COST_CENTER, **_RANGE_ALIASES, "notes": ("note",),
             "is_developer_tooling": ("developer_tooling", "dev_tooling")},
    required=("api_key_id", "api_key_name", "workspace", "owner_email", "team"),
    build=_key_owner, key=("api_key_id", "api_key_name", "workspace", "valid_from"),
    ranges=(("api_key_id",), ("api_key_name",), ("workspace",)), free_text=("notes",),
)
SEAT_PRICES = TabSpec(
    tab="seat_prices", table="ref.seat_prices",
    columns={"tool": (), "plan": (), "monthly_price_usd": ("monthly_price", "price_usd", "price"),
             "seats": ("seat_count",), **_RANGE_ALIASES},
    required=("tool", "plan", "monthly_price_usd"), build=_seat_price, key=("tool", "plan", "valid_from"),
    ranges=(("tool", "plan"),),
)
CLAUDE_AI_USAGE = TabSpec(
    tab="claude_ai_usage", table="raw.claude_ai_usage",
    columns={"period_start": ("start",), "period_end": ("end",), "period_label": ("period", "label"),
             "exported_at": ("export_date", "exported"), "email": _EMAIL_ALIASES,
             "account_uuid": ("account_id",), "product": (), "model": (), "model_family": ("family",),
             "total_requests": ("requests",), "total_prompt_tokens": ("prompt_tokens",),
             "total_completion_tokens": ("completion_tokens",),
             "net_spend_usd": ("total_net_spend_usd", "total_net_spend", "net_spend"),
             "gross_spend_usd": ("total_gross_spend_usd", "total_gross_spend", "gross_spend")},
    required=("period_start", "period_end", "email", "product", "model", "net_spend_usd"),
    build=_claude_ai, key=("period_start", "period_end", "email", "product", "model"),
)
TABS: dict[str, TabSpec] = {s.tab: s for s in (PEOPLE, API_KEY_OWNERS, SEAT_PRICES, CLAUDE_AI_USAGE)}


# --------------------------------------------------------------------------- the grid


def _cell(row: Sequence[Any], index: int) -> str | None:
    value = row[index] if index < len(row) else None
    return None if value is None else str(value)


def record_of(header: Sequence[Any], row: Sequence[Any]) -> dict[str, str]:
    """The row as received, for ops.quarantine: header text (or column letter) → cell, blanks left out."""
    out: dict[str, str] = {}
    for i, value in enumerate(row):
        if value is None or str(value).strip() == "":
            continue
        name = str(header[i]).strip() if i < len(header) and str(header[i] or "").strip() else _letter(i)
        out[name if name not in out else f"{name} ({_letter(i)})"] = str(value)
    return out


@dataclass
class SheetRow:
    """One non-blank data row: its sheet row number, canonical cells and the cells as received."""

    number: int
    cells: dict[str, str | None]
    record: dict[str, str]


def data_rows(spec: TabSpec, values: Sequence[Sequence[Any]]) -> Iterator[SheetRow]:
    """The tab's non-blank rows below the header, with canonical cells; raises SheetLayoutError."""
    if not values or not any(str(c or "").strip() for c in values[0]):
        raise SheetLayoutError(f"tab {spec.tab}: row 1 is empty; it must be the header "
                               f"({', '.join(spec.required)} at least)")
    header = list(values[0])
    index = spec.header_index(header)
    known = set(index.values())
    extras = [str(h).strip() for i, h in enumerate(header) if i not in known and str(h or "").strip()]
    if extras:
        log.info("tab %s: ignoring column(s) %s", spec.tab, ", ".join(map(repr, extras)))
    blank = 0
    for number, row in enumerate(values[1:], start=2):
        if not any(str(c or "").strip() for c in row):
            blank += 1
            continue
        yield SheetRow(number, {col: _cell(row, i) for col, i in index.items()}, record_of(header, row))
    if blank:
        log.info("tab %s: skipped %d blank row(s)", spec.tab, blank)


# --------------------------------------------------------------------------- parsing


def parse_tab(tab: str, values: Sequence[Sequence[Any]], *, ref_prefix: str = "") -> ParseResult:
    """Rows of `tab`'s table, or `Rejected` with ref ``"<ref_prefix> row <n>"``, in sheet order."""
    spec = TABS[tab]
    prefix = f"{ref_prefix} " if ref_prefix else ""
    built: list[tuple[SheetRow, dict[str, Any]]] = []
    rejected: dict[int, Rejected] = {}
    order: list[SheetRow] = []
    for srow in data_rows(spec, values):
        order.append(srow)
        try:
            for column, value in srow.cells.items():
                if column not in spec.free_text:
                    cells.check_cell(cells.clean(value), column)
            built.append((srow, spec.build(srow.cells, srow.number)))
        except BadValue as exc:
            rejected[srow.number] = Rejected(str(exc), srow.record, f"{prefix}row {srow.number}")
    for number, reason in _conflicts(spec, built).items():
        srow = next(s for s, _ in built if s.number == number)
        rejected[number] = Rejected(reason, srow.record, f"{prefix}row {number}")
    rows = {s.number: row for s, row in built}
    for srow in order:
        yield rejected[srow.number] if srow.number in rejected else rows[srow.number]


def _conflicts(spec: TabSpec, built: list[tuple[SheetRow, dict[str, Any]]]) -> dict[int, str]:
    """Row number → reason, for duplicates, conflicting keys and overlapping ranges."""
    reasons: dict[int, str] = {}
    by_key: dict[tuple[Any, ...], list[tuple[int, dict[str, Any]]]] = {}
    for srow, row in built:
        by_key.setdefault(tuple(row[c] for c in spec.key), []).append((srow.number, row))
    for key, group in by_key.items():
        first_number, first = group[0]
        same = [n for n, r in group[1:] if _comparable(r) == _comparable(first)]
        differ = [n for n, r in group[1:] if n not in same]
        for n in same:
            reasons[n] = f"exact duplicate of row {first_number}"
        if differ:
            numbers = [first_number, *differ]
            what = ", ".join(f"{c}={v}" for c, v in zip(spec.key, key, strict=True) if v is not None)
            for n in numbers:
                others = ", ".join(str(m) for m in numbers if m != n)
                reasons[n] = (f"conflicts with row(s) {others}: same {what} but different values; "
                              "keep one row")
    survivors = [(s.number, r) for s, r in built if s.number not in reasons]
    if spec.tab == "claude_ai_usage":
        reasons.update(_period_overlaps(survivors))
        return reasons
    for group_cols in spec.ranges:
        reasons.update({n: r for n, r in _range_overlaps(group_cols, survivors, spec).items() if n not in reasons})
    return reasons


def _comparable(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's values without where it sits (`source_row`) and how its money was typed (`*_raw`)."""
    return {k: v for k, v in row.items() if k != "source_row" and not k.endswith("_raw")}


def _span(row: Mapping[str, Any], lo: str, hi: str) -> tuple[date, date]:
    return row[lo] or _OPEN_START, row[hi] or _OPEN_END


def _show(start: date, end: date) -> str:
    return f"{'' if start == _OPEN_START else start}..{'' if end == _OPEN_END else end}"


def _range_overlaps(group_cols: tuple[str, ...], rows: list[tuple[int, dict[str, Any]]],
                    spec: TabSpec) -> dict[int, str]:
    groups: dict[tuple[Any, ...], list[tuple[int, dict[str, Any]]]] = {}
    for n, row in rows:
        if spec.tab == "api_key_owners" and group_cols == ("workspace",) and (
                row["api_key_id"] or row["api_key_name"]):
            continue  # on a key's row the workspace is informational; only workspace-only rows map it
        key = tuple(row[c] for c in group_cols)
        if any(v is None for v in key):
            continue
        groups.setdefault(key, []).append((n, row))
    reasons: dict[int, str] = {}
    for key, group in groups.items():
        for i, (n, a) in enumerate(group):
            a_lo, a_hi = _span(a, "valid_from", "valid_to")
            for m, b in group[i + 1:]:
                b_lo, b_hi = _span(b, "valid_from", "valid_to")
                if a_lo <= b_hi and b_lo <= a_hi:
                    what = ", ".join(f"{c} {v}" for c, v in zip(group_cols, key, strict=True))
                    for x, y, lo, hi in ((n, m, b_lo, b_hi), (m, n, a_lo, a_hi)):
                        reasons.setdefault(x, f"validity overlaps row {y} ({what}, {_show(lo, hi)}); "
                                              "close one range (valid_to) the day before the other starts")
    return reasons


def _period_overlaps(rows: list[tuple[int, dict[str, Any]]]) -> dict[int, str]:
    periods = sorted({(r["period_start"], r["period_end"]) for _, r in rows})
    clash: dict[tuple[date, date], tuple[date, date]] = {}
    for i, (a_lo, a_hi) in enumerate(periods):
        for b_lo, b_hi in periods[i + 1:]:
            if a_lo <= b_hi and b_lo <= a_hi:
                clash.setdefault((a_lo, a_hi), (b_lo, b_hi))
                clash.setdefault((b_lo, b_hi), (a_lo, a_hi))
    return {
        n: (f"period {r['period_start']}..{r['period_end']} overlaps the period "
            f"{clash[(r['period_start'], r['period_end'])][0]}..{clash[(r['period_start'], r['period_end'])][1]} "
            "in the same tab; exports of overlapping periods must not be added up: delete the superseded one")
        for n, r in rows if (r["period_start"], r["period_end"]) in clash
    }


def claude_ai_periods(values: Sequence[Sequence[Any]]) -> list[date]:
    """The `period_start` partitions a claude.ai tab covers: every readable period start, rejected rows included,

    so re-pasting an export replaces its period (never doubles it) and a period whose rows were all rejected
    is emptied rather than left stale."""
    days: set[date] = set()
    for srow in data_rows(CLAUDE_AI_USAGE, values):
        try:
            day = cells.to_date(srow.cells.get("period_start"), "period_start")
        except BadValue:
            continue
        if day is not None:
            days.add(day)
    return sorted(days)


def align_row(tab: str, header: Sequence[Any], values: Mapping[str, str | None]) -> list[str]:
    """Cells for a row appended under `header`: each canonical column's text at its header position.

    Columns the tab's header does not have are left out (logged); extra header columns stay blank.
    """
    index = TABS[tab].header_index(header)
    out = [""] * len(header)
    for column, value in values.items():
        if column not in index:
            if value:
                log.warning("tab %s has no column %r: %r not written", tab, column, value)
            continue
        out[index[column]] = "" if value is None else str(value)
    return out
