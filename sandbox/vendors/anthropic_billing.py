"""Product workloads and the cost lines of a day: what the Anthropic bill charges, priced exactly.

Product-workload keys (tool ``"api"`` in the organisation's key activity) use the model mix of their
workspace (`anthropic_catalog.WORKLOADS`): tokens, web searches, code execution and, on some days,
the newer ``session_usage`` cost type. Cost lines are the cost report's rows grouped by workspace and
description, priced from the day's usage at list prices, so the bill and the usage report agree.
"""

from __future__ import annotations

from sandbox.vendors.anthropic_catalog import (
    CODE_EXECUTION,
    DEFAULT_WORKLOAD,
    MODELS,
    SESSION_USAGE,
    TOKEN_TYPES,
    U_WEB,
    WEB_SEARCH,
    WORKLOADS,
    token_description,
    unit_prices,
)
from sandbox.vendors.anthropic_types import CostLine, UsageKey

_INV32 = 1.0 / 4294967296.0
# (workspace_id, (description, cost_type, units per billing unit)) -> units of a day
Extras = dict[tuple[str | None, tuple[str, str, int]], int]


def add_workload(
    words: tuple[int, ...],
    intensity: float,
    key_id: str,
    ws: str | None,
    ws_name: str,
    usage: dict[UsageKey, list[int]],
    extras: Extras,
) -> None:
    """A product workload's day: token usage per model line, web searches, code execution, sessions."""
    w = words
    profile = WORKLOADS.get(ws_name, DEFAULT_WORKLOAD)
    for n, line in enumerate(profile.lines):
        f = 0.6 + 0.8 * w[n] * _INV32
        vec = usage.setdefault(
            (ws, key_id, None, line.model, line.tier, line.context, MODELS[line.model].inference_geo),
            [0, 0, 0, 0, 0, 0],
        )
        for k, per in enumerate(line.per_intensity):
            vec[k] += int(per * intensity * f)
        if n == 0 and profile.web_searches:
            vec[U_WEB] += int(profile.web_searches * intensity * w[8] * _INV32)
    if profile.code_quarter_hours:
        qh = int(profile.code_quarter_hours * intensity * w[9] * _INV32)
        if qh:
            extras[(ws, CODE_EXECUTION)] = extras.get((ws, CODE_EXECUTION), 0) + qh * CODE_EXECUTION[2]
    if profile.session_days and w[10] * _INV32 < profile.session_days:
        qh = 1 + int(4 * intensity * w[11] * _INV32)
        extras[(ws, SESSION_USAGE)] = extras.get((ws, SESSION_USAGE), 0) + qh * SESSION_USAGE[2]


def cost_lines(usage: dict[UsageKey, tuple[int, ...]], extras: Extras) -> tuple[CostLine, ...]:
    """Cost-report rows (grouped by workspace and description) priced exactly from the day's usage."""
    tokens: dict[tuple[str | None, str, str, str, str], list[int]] = {}
    web: dict[str | None, int] = {}
    for (ws, _key, _acct, model, tier, context, geo), vec in usage.items():
        acc = tokens.setdefault((ws, model, tier, context, geo), [0, 0, 0, 0, 0])
        for k in range(5):
            acc[k] += vec[k]
        if vec[U_WEB]:
            web[ws] = web.get(ws, 0) + vec[U_WEB]
    lines: list[CostLine] = []
    for (ws, model, tier, context, geo), acc in tokens.items():
        prices = unit_prices(model, tier, context)
        for k, token_type in enumerate(TOKEN_TYPES):
            if acc[k]:
                lines.append(
                    CostLine(
                        ws,
                        token_description(model, tier, context, token_type),
                        "tokens",
                        context,
                        model,
                        tier,
                        token_type,
                        geo,
                        acc[k] * prices[k],
                    )
                )
    for ws, n in web.items():
        lines.append(
            CostLine(ws, WEB_SEARCH[0], WEB_SEARCH[1], None, None, None, None, None, n * WEB_SEARCH[2])
        )
    for (ws, (desc, cost_type, _per)), units in extras.items():
        lines.append(CostLine(ws, desc, cost_type, None, None, None, None, None, units))
    lines.sort(key=lambda c: (c.workspace_id or "", c.description))
    return tuple(lines)
