"""The marts of a sandbox organisation computed independently, in plain Python, from its ground truth.

`load_truth` fills a warehouse's raw and ref tables with the organisation's ground-truth rows (what the
ingest DAGs land, `sandbox.vendors.*_truth`, `sandbox.claude_ai`, `org.ground_truth()`). `Expected`
computes every mart from the same truth rows with Decimal and Python integers — not by running the
product's SQL — following the rules documented in include/sql/marts/*.sql, so a test comparing the two
compares two independent computations.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ai_usage import attribution
from sandbox import claude_ai
from sandbox.org import Organisation
from sandbox.vendors import anthropic_truth, cursor_truth

NANO = Decimal("0.000000001")
UNATTRIBUTED = "Unattributed"
MART_SOURCES = ("cursor_daily_usage", "cursor_usage_events", "claude_code_usage", "anthropic_costs")
LINEAGE = ("_refreshed_at", "_run_id")
Row = dict[str, Any]


def month_of(day: date) -> date:
    return day.replace(day=1)


def month_end(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def valid(row: Mapping[str, Any], day: date) -> bool:
    return (row.get("valid_from") is None or day >= row["valid_from"]) and (
        row.get("valid_to") is None or day <= row["valid_to"])


def latest(rows: Iterable[Row]) -> Row | None:
    rows = list(rows)
    return max(rows, key=lambda r: r.get("valid_from") or date.min) if rows else None


def nano(amount: Decimal) -> int:
    return int(amount / NANO)


def usd(n: int) -> Decimal:
    return (Decimal(n) * NANO).quantize(NANO)


def sum_or_none(values: Iterable[Any]) -> Any:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


@dataclass
class Truth:
    """The ground-truth rows of every table the marts read."""

    org: Organisation
    daily: list[Row]
    events: list[Row]
    claude_code: list[Row]
    costs: list[Row]
    keys: list[Row]
    claude_ai: list[Row]
    people: list[Row]
    owners: list[Row]
    prices: list[Row]
    coverage: list[Row] = field(default_factory=list)

    @classmethod
    def of(cls, org: Organisation, *, start: date | None = None, end: date | None = None) -> Truth:
        start, end = start or org.start, end or org.end
        gt = org.ground_truth()
        return cls(
            org=org,
            daily=cursor_truth.expected_daily_usage(org, start, end),
            events=cursor_truth.expected_usage_events(org, start, end),
            claude_code=anthropic_truth.expected_claude_code(org, start, end),
            costs=[{**r, "platform_rule": "truth"} for r in anthropic_truth.expected_costs(org, start, end)],
            keys=anthropic_truth.expected_api_keys(org, org.end),
            claude_ai=[r for r in claude_ai.expected_claude_ai_usage(org) if start <= r["period_start"] <= end],
            people=gt["people_history"],
            owners=[{k: v for k, v in r.items() if k != "workspace_id"} for r in gt["api_key_owners"]],
            prices=gt["price_card"],
            coverage=[
                {"coverage_date": start + timedelta(days=i), "source": source,
                 "status": "provisional" if (end - (start + timedelta(days=i))).days < 2 else "final",
                 "row_count": 1, "checked_at": datetime.now(UTC), "run_id": "truth"}
                for source in MART_SOURCES for i in range((end - start).days + 1)
            ],
        )

    def tables(self) -> dict[str, list[Row]]:
        return {
            "raw.cursor_daily_usage": self.daily, "raw.cursor_usage_events": self.events,
            "raw.claude_code_usage": self.claude_code, "raw.anthropic_costs": self.costs,
            "raw.anthropic_api_keys": self.keys, "raw.claude_ai_usage": self.claude_ai,
            "ref.people": self.people, "ref.api_key_owners": self.owners, "ref.seat_prices": self.prices,
        }


def load_truth(warehouse: Any, truth: Truth) -> None:
    """Replace every raw/ref table the marts read with the truth rows (lineage added), rebuild ref.attribution
    from them (the product's own resolution, as ingest_sheets runs it) and record the coverage."""
    warehouse.ensure_tables()
    lineage = {"_ingested_at": datetime.now(UTC), "_run_id": "truth"}
    for table, rows in truth.tables().items():
        warehouse.replace_partitions(table, [{**r, **lineage} for r in rows], None)
    attribution.rebuild(warehouse, run_id="truth")  # as ingest_sheets does after loading the Sheet
    warehouse.replace_partitions("ops.source_coverage", truth.coverage, None)


# --------------------------------------------------------------------------- attribution


class Attribution:
    def __init__(self, truth: Truth):
        self.people: dict[str, list[Row]] = defaultdict(list)
        for r in truth.people:
            self.people[r["email"]].append(r)
        self.key_id_by_name = {}
        for k in sorted(truth.keys, key=lambda k: (k["snapshot_date"], k["api_key_id"])):
            if k["name"] is not None:
                self.key_id_by_name.setdefault(k["name"], k["api_key_id"])
        self.owners = truth.owners

    def person(self, email: str | None, day: date) -> Row | None:
        return latest(r for r in self.people.get(email or "", []) if valid(r, day))

    def key_owner(self, name: str, day: date) -> Row | None:
        key_id = self.key_id_by_name.get(name)
        candidates = [o for o in self.owners if valid(o, day) and (
            (key_id is not None and o["api_key_id"] == key_id) or o["api_key_name"] == name)]
        if not candidates:
            return None
        by_id = [o for o in candidates if key_id is not None and o["api_key_id"] == key_id]
        return latest(by_id) if by_id else latest(candidates)


# --------------------------------------------------------------------------- the marts


def largest_remainder(total: int, parts: list[tuple[tuple, int]]) -> dict[tuple, int]:
    """Split integer `total` by integer weights; leftover units to the largest remainders, ties by key."""
    weight_total = sum(w for _, w in parts)
    sign, total = (-1 if total < 0 else 1), abs(total)
    base = {k: total * w // weight_total for k, w in parts}
    remainder = {k: total * w % weight_total for k, w in parts}
    leftover = total - sum(base.values())
    order = sorted(base, key=lambda k: (-remainder[k], tuple("" if v is None else v for v in k[:6])))
    for k in order[:leftover]:
        base[k] += 1
    return {k: sign * v for k, v in base.items()}


class Expected:
    """Every mart of the truth, computed in Python."""

    def __init__(self, truth: Truth, *, as_of: date):
        self.t = truth
        self.a = Attribution(truth)
        self.as_of = as_of

    # -- daily ---------------------------------------------------------------------------------------
    def daily(self) -> list[Row]:
        a = self.a
        events: dict[tuple[date, str], list[Row]] = defaultdict(list)
        for e in self.t.events:
            if e["email"] is not None:
                events[(e["event_date"], e["email"])].append(e)
        out = []
        for d in self.t.daily:
            day, email = d["usage_date"], d["email"]
            ev = events.get((day, email), [])
            p = a.person(email, day)
            parts = [d["composer_requests"], d["chat_requests"], d["agent_requests"], d["cmdk_usages"]]
            out.append({
                "usage_date": day, "tool": "cursor", "email": email, "api_key_name": None, "owner_email": None,
                "name": p["name"] if p else None, "team": p["team"] if p else UNATTRIBUTED,
                "cost_center": p["cost_center"] if p else None, "is_active": bool(d["is_active"]),
                "sessions": None, "requests": None if all(v is None for v in parts) else sum(v or 0 for v in parts),
                "lines_added": d["total_lines_added"], "lines_accepted": d["accepted_lines_added"],
                "accepts": d["total_accepts"], "rejects": d["total_rejects"], "tabs_shown": d["total_tabs_shown"],
                "tabs_accepted": d["total_tabs_accepted"],
                "input_tokens": sum_or_none(e["input_tokens"] for e in ev),
                "output_tokens": sum_or_none(e["output_tokens"] for e in ev),
                "commits": None, "pull_requests": None,
                "estimated_cost_usd": sum_or_none(e["charged_usd"] for e in ev),
            })
        actors: dict[tuple[date, str, str], list[Row]] = defaultdict(list)
        for r in self.t.claude_code:
            actors[(r["usage_date"], r["actor_type"], r["actor_id"])].append(r)
        for (day, kind, actor), records in actors.items():
            def total(field_name: str, records: list[Row] = records) -> Any:
                return sum_or_none(r[field_name] for r in records)

            def nested(array: str, field_name: str, records: list[Row] = records) -> Any:
                return sum_or_none(sum_or_none(x[field_name] for x in r[array]) for r in records)

            user = kind == "user_actor"
            owner = None if user else a.key_owner(actor, day)
            p = a.person(actor, day) if user else None
            if user:
                team, cost_center = (p["team"], p["cost_center"]) if p else (UNATTRIBUTED, None)
            else:
                team = owner["team"] if owner and owner["team"] else UNATTRIBUTED
                cost_center = owner["cost_center"] if owner and owner["team"] else None
            sessions = total("num_sessions")
            out.append({
                "usage_date": day, "tool": "claude_code", "email": actor if user else None,
                "api_key_name": None if user else actor,
                "owner_email": actor if user else (owner["owner_email"] if owner else None),
                "name": p["name"] if p else None, "team": team, "cost_center": cost_center,
                "is_active": (sessions or 0) > 0, "sessions": sessions, "requests": None,
                "lines_added": total("lines_added"), "lines_accepted": total("lines_added"),
                "accepts": nested("tool_actions", "accepted"), "rejects": nested("tool_actions", "rejected"),
                "tabs_shown": None, "tabs_accepted": None,
                "input_tokens": nested("model_breakdown", "input_tokens"),
                "output_tokens": nested("model_breakdown", "output_tokens"),
                "commits": total("commits_by_claude_code"), "pull_requests": total("pull_requests_by_claude_code"),
                "estimated_cost_usd": total("estimated_cost_usd"),
            })
        return sorted(out, key=daily_key)

    def breakdown(self) -> list[Row]:
        """marts.daily_usage_breakdown: one row per active item (see select_daily_usage_breakdown.sql)."""
        a, out = self.a, []

        def person(email: str | None, day: date) -> dict[str, Any]:
            p = a.person(email, day)
            name = latest(self.a.people.get(email or "", []))
            return {"email": email, "api_key_name": None, "name": name["name"] if name else None,
                    "team": p["team"] if p else UNATTRIBUTED, "cost_center": p["cost_center"] if p else None}

        def row(day: date, tool: str, who: dict[str, Any], breakdown: str, item: str, **values: Any) -> None:
            out.append({"usage_date": day, "tool": tool, **who, "breakdown": breakdown, "item": item,
                        **{k: values.get(k) for k in ("requests", "accepted", "rejected", "input_tokens",
                                                      "output_tokens", "estimated_cost_usd")}})

        counters = (("request_kind", "composer", "composer_requests"), ("request_kind", "chat", "chat_requests"),
                    ("request_kind", "agent", "agent_requests"), ("request_kind", "cmdk", "cmdk_usages"),
                    ("request_kind", "bugbot", "bugbot_usages"),
                    ("billing_kind", "included", "subscription_included_reqs"),
                    ("billing_kind", "usage_based", "usage_based_reqs"), ("billing_kind", "api_key", "api_key_reqs"))
        events: dict[tuple[date, str], dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
        for e in self.t.events:
            if e["email"] is not None:
                events[(e["event_date"], e["email"])][e["model"] or "unknown"].append(e)
        for d in self.t.daily:
            day, who = d["usage_date"], person(d["email"], d["usage_date"])
            for breakdown, item, column in counters:
                if (d[column] or 0) > 0:
                    row(day, "cursor", who, breakdown, item, requests=d[column])
            models = events.get((day, d["email"]), {})
            for model, evs in models.items():
                row(day, "cursor", who, "model", model, requests=len(evs),
                    input_tokens=sum_or_none(e["input_tokens"] for e in evs),
                    output_tokens=sum_or_none(e["output_tokens"] for e in evs),
                    estimated_cost_usd=sum_or_none(e["charged_usd"] for e in evs))
            if not models and d["is_active"] and d["most_used_model"] is not None:
                row(day, "cursor", who, "model", d["most_used_model"])
        tools = {"edit_tool": "Edit", "multi_edit_tool": "MultiEdit", "write_tool": "Write",
                 "notebook_edit_tool": "NotebookEdit"}
        per_model: dict[tuple, list[Row]] = defaultdict(list)
        per_tool: dict[tuple, list[Row]] = defaultdict(list)
        for r in self.t.claude_code:
            for m in r["model_breakdown"]:
                per_model[(r["usage_date"], r["actor_type"], r["actor_id"], m["model"])].append(m)
            for t in r["tool_actions"]:
                per_tool[(r["usage_date"], r["actor_type"], r["actor_id"], tools.get(t["tool"], t["tool"]))].append(t)

        def actor(day: date, kind: str, actor_id: str) -> dict[str, Any]:
            if kind == "user_actor":
                return person(actor_id, day)
            o = a.key_owner(actor_id, day)
            mapped = o is not None and o["team"] is not None
            return {"email": None, "api_key_name": actor_id, "name": None,
                    "team": o["team"] if mapped else UNATTRIBUTED, "cost_center": o["cost_center"] if mapped else None}

        for (day, kind, actor_id, model), ms in per_model.items():
            row(day, "claude_code", actor(day, kind, actor_id), "model", model,
                input_tokens=sum_or_none(m["input_tokens"] for m in ms),
                output_tokens=sum_or_none(m["output_tokens"] for m in ms),
                estimated_cost_usd=sum_or_none(m["estimated_cost_usd"] for m in ms))
        for (day, kind, actor_id, item), ts in per_tool.items():
            accepted, rejected = sum_or_none(t["accepted"] for t in ts), sum_or_none(t["rejected"] for t in ts)
            if (accepted or 0) + (rejected or 0) > 0:
                row(day, "claude_code", actor(day, kind, actor_id), "tool_action", item, accepted=accepted,
                    rejected=rejected)
        for month in sorted({month_of(r["period_start"]) for r in self.t.claude_ai}):
            grouped: dict[tuple, list[Row]] = defaultdict(list)
            for r in self.ai_rows(month):
                grouped[(r["period_start"], r["email"], r["model"] or "unknown")].append(r)
            for (day, email, model), rs in grouped.items():
                row(day, "claude_ai", person(email, day), "model", model,
                    requests=sum_or_none(r["total_requests"] for r in rs),
                    input_tokens=sum_or_none(r["total_prompt_tokens"] for r in rs),
                    output_tokens=sum_or_none(r["total_completion_tokens"] for r in rs))
        return sorted(out, key=breakdown_key)

    # -- allocation ----------------------------------------------------------------------------------
    def ai_rows(self, month: date) -> list[Row]:
        periods = {(r["period_start"], r["period_end"]) for r in self.t.claude_ai
                   if month <= r["period_start"] <= month_end(month) and r["period_end"] <= month_end(month)}
        if not periods:
            return []
        chosen = min(periods, key=lambda p: (-p[1].toordinal(), p[0]))
        return [r for r in self.t.claude_ai if (r["period_start"], r["period_end"]) == chosen]

    def _attributed(self, email: str | None, day: date, basis: str) -> tuple:
        p = self.a.person(email, day)
        if p is None:
            return (UNATTRIBUTED, None, email, None, None, "unattributed")
        return (p["team"], p["cost_center"], email, None, None, basis)

    def prices(self, month: date) -> list[Row]:
        chosen: dict[tuple[str, str], Row] = {}
        rows = [r for r in self.t.prices if (r["valid_from"] is None or r["valid_from"] <= month_end(month))
                and (r["valid_to"] is None or r["valid_to"] >= month)]
        for r in rows:
            key = (r["tool"], r["plan"])
            in_effect = (r["valid_from"] or date.min) <= month
            rank = (0, -(r["valid_from"] or date.min).toordinal()) if in_effect else (1, r["valid_from"].toordinal())
            if key not in chosen or rank < chosen[key]["_rank"]:
                chosen[key] = {**r, "_rank": rank}
        return list(chosen.values())

    def roster(self, month: date) -> dict[str, dict[str, date]]:
        lo, hi = month, month_end(month)
        out: dict[str, dict[str, date]] = defaultdict(dict)

        def add(tool: str, email: str, day: date) -> None:
            out[tool][email] = max(day, out[tool].get(email, day))

        for d in self.t.daily:
            if lo <= d["usage_date"] <= hi:
                add("cursor", d["email"], d["usage_date"])
        for r in self.ai_rows(month):
            if r["email"] is not None:
                add("claude_ai", r["email"], r["period_end"])
        for r in self.t.claude_code:
            if lo <= r["usage_date"] <= hi and r["actor_type"] == "user_actor":
                add("claude_ai" if r["customer_type"] == "subscription" else "claude_code", r["actor_id"],
                    r["usage_date"])
        return out

    def seat_totals(self, month: date) -> dict[str, tuple[int, int]]:
        """tool -> (total nano-dollars, seats)."""
        roster = self.roster(month)
        out: dict[str, tuple[int, int]] = {}
        for p in self.prices(month):
            seats = p["seats"] if p["seats"] is not None else len(roster.get(p["tool"], {}))
            total, n = out.get(p["tool"], (0, 0))
            out[p["tool"]] = (total + nano(p["monthly_price_usd"]) * seats, n + seats)
        return out

    def allocation(self, month: date) -> list[Row]:
        lo, hi = month, month_end(month)
        amounts: dict[tuple, int] = defaultdict(int)    # (tool, kind, team, cc, email, key id, key name, basis)
        # Cursor and claude.ai usage: billed per person
        per_day: dict[tuple[date, str | None], Decimal] = defaultdict(Decimal)
        for e in self.t.events:
            if lo <= e["event_date"] <= hi and e["kind"] == "Usage-based" and e["is_chargeable"] is not False:
                per_day[(e["event_date"], e["email"])] += e["charged_usd"]
        for (day, email), amount in per_day.items():
            amounts[("cursor", "usage_billed", *self._attributed(email, day, "vendor_per_user"))] += nano(amount)
        for r in self.ai_rows(month):
            key = ("claude_ai", "usage_billed", *self._attributed(r["email"], r["period_end"], "vendor_per_user"))
            amounts[key] += nano(r["net_spend_usd"])
        # Claude Code: the developer-tooling bill, split by the month's estimates
        pool = sum(nano(c["amount_usd"]) for c in self.t.costs
                   if lo <= c["cost_date"] <= hi and c["platform"] == "claude_code")
        has_costs = any(lo <= c["cost_date"] <= hi and c["platform"] == "claude_code" for c in self.t.costs)
        weights: dict[tuple, Decimal] = defaultdict(Decimal)
        per_actor: dict[tuple[date, str, str], Decimal] = defaultdict(Decimal)
        for r in self.t.claude_code:
            if lo <= r["usage_date"] <= hi and r["customer_type"] == "api":
                per_actor[(r["usage_date"], r["actor_type"], r["actor_id"])] += r["estimated_cost_usd"] or 0
        for (day, kind, actor), estimate in per_actor.items():
            if kind == "user_actor":
                p = self.a.person(actor, day)
                key = (p["team"], p["cost_center"], actor, None, None, "estimate_share") if p else \
                    (UNATTRIBUTED, None, actor, None, None, "unattributed")
            else:
                o = self.a.key_owner(actor, day)
                key_id = self.a.key_id_by_name.get(actor)
                key = (o["team"], o["cost_center"], o["owner_email"], key_id, actor, "api_key_owner") \
                    if o and o["team"] else (UNATTRIBUTED, None, o["owner_email"] if o else None, key_id, actor,
                                             "unattributed")
            weights[key] += estimate
        if has_costs:
            parts = [(k, int((w * 100).to_integral_value(ROUND_HALF_UP))) for k, w in weights.items()]
            parts = [(k, w) for k, w in parts if w > 0] or [((UNATTRIBUTED, None, None, None, None, "unattributed"), 1)]
            for k, n in largest_remainder(pool, parts).items():
                amounts[("claude_code", "usage_billed", *k)] += n
        # Seat fees: equal shares of the roster, seats beyond it unassigned
        roster = self.roster(month)
        for tool, (total, seats) in self.seat_totals(month).items():
            holders = roster.get(tool, {})
            parts = []
            for email, day in holders.items():
                team, cc, _, _, _, basis = self._attributed(email, day, "seat")
                parts.append(((team, cc, email, None, None, basis), 1))
            if seats > len(holders):
                parts.append(((UNATTRIBUTED, None, None, None, None, "seat_unassigned"), seats - len(holders)))
            if not parts:
                parts = [((UNATTRIBUTED, None, None, None, None, "unattributed"), 1)]
            for k, n in largest_remainder(total, parts).items():
                amounts[(tool, "seat_fee", *k)] += n
        names = ("tool", "cost_kind", "team", "cost_center", "email", "api_key_id", "api_key_name", "allocation_basis")
        return sorted(({"month": month, **dict(zip(names, k, strict=True)), "amount_usd": usd(n)}
                       for k, n in amounts.items() if n != 0), key=allocation_key)

    # -- seats and exec ------------------------------------------------------------------------------
    def active(self, month: date) -> dict[str, set[str]]:
        lo, hi = month, month_end(month)
        out: dict[str, set[str]] = defaultdict(set)
        for d in self.t.daily:
            if lo <= d["usage_date"] <= hi and d["is_active"]:
                out["cursor"].add(d["email"])
        for r in self.ai_rows(month):
            if r["email"] is not None and (r["total_requests"] or 0) > 0:
                out["claude_ai"].add(r["email"])
        for r in self.t.claude_code:
            if lo <= r["usage_date"] <= hi and r["actor_type"] == "user_actor" and (r["num_sessions"] or 0) > 0:
                out["claude_ai" if r["customer_type"] == "subscription" else "claude_code"].add(r["actor_id"])
        return out

    def seat_utilization(self, month: date) -> list[Row]:
        active = self.active(month)
        out = []
        for tool, (total, seats) in sorted(self.seat_totals(month).items()):
            n_active = len(active.get(tool, set()))
            idle = max(seats - n_active, 0)
            price = (2 * total + seats) // (2 * seats) if seats else None
            out.append({"month": month, "tool": tool, "seats_paid": seats, "seats_active": n_active,
                        "seats_idle": idle, "seat_price_usd": usd(price) if price is not None else None,
                        "seat_cost_usd": usd(total), "idle_cost_usd": usd(price * idle) if price is not None else None})
        return out

    def exec_monthly(self, months: list[date]) -> list[Row]:
        out = []
        previous: Decimal | None = None
        daily = self.daily()
        for month in sorted(months):
            lo, hi = month, month_end(month)
            alloc = self.allocation(month)
            total = sum((r["amount_usd"] for r in alloc), Decimal(0))
            usage = sum((r["amount_usd"] for r in alloc if r["cost_kind"] == "usage_billed"), Decimal(0))

            def tool_cost(tool: str, alloc: list[Row] = alloc) -> Decimal | None:
                rows = [r["amount_usd"] for r in alloc if r["tool"] == tool]
                return sum(rows, Decimal(0)) if rows else None

            active = {r["email"] or r["owner_email"] for r in daily
                      if lo <= r["usage_date"] <= hi and r["is_active"] and (r["email"] or r["owner_email"])}
            active |= {r["email"] for r in self.ai_rows(month) if r["email"] and (r["total_requests"] or 0) > 0}
            directory = {p["email"] for p in self.t.people if (p["valid_from"] is None or p["valid_from"] <= hi)
                         and (p["valid_to"] is None or p["valid_to"] >= lo)}
            seats = self.seat_utilization(month)
            n_seats = sum(s["seats_paid"] for s in seats) if seats else None
            covered = [c for c in self.t.coverage if lo <= c["coverage_date"] <= hi]
            through = max((c["coverage_date"] for c in covered), default=None)
            partial = hi >= self.as_of or through is None or through < hi or any(
                c["status"] != "final" for c in covered)
            if not partial:
                projected: Decimal | None = total
            elif through is None:
                projected = None
            else:
                days, upto = (hi - lo).days + 1, (through - lo).days + 1
                projected = usd(nano(total - usage) + (2 * nano(usage) * days + upto) // (2 * upto))
            out.append({
                "month": month, "total_cost_usd": total, "cursor_cost_usd": tool_cost("cursor"),
                "claude_code_cost_usd": tool_cost("claude_code"), "claude_ai_cost_usd": tool_cost("claude_ai"),
                "active_users": len(active), "seats": n_seats,
                "adoption_rate": len(active & directory) / len(directory) if directory else None,
                "seat_adoption_rate": sum(s["seats_active"] for s in seats) / n_seats if n_seats else None,
                "cost_per_active_user_usd": usd((2 * nano(total) + len(active)) // (2 * len(active))) if active else None,
                "cost_change_pct": float((total - previous) / previous * 100) if previous else None,
                "projected_month_end_cost_usd": projected, "is_partial_month": partial,
                "data_through_date": through,
            })
            previous = total
        return out


def daily_key(r: Mapping[str, Any]) -> tuple:
    return (r["usage_date"], r["tool"], r["email"] or "", r["api_key_name"] or "")


def breakdown_key(r: Mapping[str, Any]) -> tuple:
    return (r["usage_date"], r["tool"], r["email"] or "", r["api_key_name"] or "", r["breakdown"], r["item"])


def allocation_key(r: Mapping[str, Any]) -> tuple:
    return tuple("" if r[k] is None else str(r[k]) for k in (
        "month", "tool", "cost_kind", "team", "cost_center", "email", "api_key_id", "api_key_name",
        "allocation_basis"))


def without_lineage(rows: Iterable[Mapping[str, Any]]) -> list[Row]:
    return [{k: v for k, v in r.items() if k not in LINEAGE} for r in rows]
