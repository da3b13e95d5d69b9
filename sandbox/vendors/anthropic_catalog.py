"""Fixed facts of the Anthropic simulator: models, list prices, cost-report descriptions, workload mixes.

Money is kept in integer **units of 1e-7 US cents** from generation to serialisation, so every billed
amount is exact: a price of $p per million tokens is ``p * 1000`` units per token ($3/MTok -> 3000), and a
cost-report ``amount`` (a decimal string of cents) is ``units / 10**7`` with at least five decimals.
Prices follow Anthropic's public list prices (https://platform.claude.com/docs/en/about-claude/pricing);
batch is half price, the 1M-context window doubles input and raises output by half.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

UNITS_PER_CENT = 10_000_000  # 1 unit = 1e-7 US cents
CENT_DECIMALS = 7

# Token types of the cost report, in the order the usage vectors below hold them.
TOKEN_TYPES: tuple[str, ...] = (
    "uncached_input_tokens",
    "cache_creation.ephemeral_1h_input_tokens",
    "cache_creation.ephemeral_5m_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)
TOKEN_LABELS: dict[str, str] = {
    "uncached_input_tokens": "Input Tokens",
    "cache_creation.ephemeral_1h_input_tokens": "Input Tokens, Cache Write (1h)",
    "cache_creation.ephemeral_5m_input_tokens": "Input Tokens, Cache Write (5m)",
    "cache_read_input_tokens": "Input Tokens, Cache Read",
    "output_tokens": "Output Tokens",
}
# Index of each field in a usage vector: the five token types, then web-search requests.
U_IN, U_1H, U_5M, U_READ, U_OUT, U_WEB = range(6)

CONTEXT_STD, CONTEXT_LONG = "0-200k", "200k-1M"
TIERS = ("standard", "batch")


@dataclass(frozen=True)
class Model:
    """A model with its list prices in units per token: (input, 1h write, 5m write, cache read, output)."""

    id: str
    family: str  # as in cost-report descriptions, e.g. "Claude Sonnet 4"
    prices: tuple[int, int, int, int, int]
    inference_geo: str  # "global", or "not_available" for models without geo routing
    long_context: bool = False


MODELS: dict[str, Model] = {
    m.id: m
    for m in (
        Model("claude-sonnet-4-20250514", "Claude Sonnet 4", (3000, 6000, 3750, 300, 15000), "global", True),
        Model(
            "claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", (3000, 6000, 3750, 300, 15000), "global", True
        ),
        Model("claude-opus-4-1-20250805", "Claude Opus 4.1", (15000, 30000, 18750, 1500, 75000), "global"),
        Model("claude-haiku-4-5-20251001", "Claude Haiku 4.5", (1000, 2000, 1250, 100, 5000), "global"),
        Model("claude-3-5-haiku-20241022", "Claude Haiku 3.5", (800, 1600, 1000, 80, 4000), "not_available"),
    )
}
SONNET_4, SONNET_45, OPUS_41, HAIKU_45, HAIKU_35 = MODELS


def unit_prices(model: str, tier: str, context: str) -> tuple[int, int, int, int, int]:
    """Units per token of each token type for (model, service tier, context window); exact integers."""
    base = MODELS[model].prices
    if context == CONTEXT_LONG:  # 1M context: input-side x2, output x1.5
        base = (base[0] * 2, base[1] * 2, base[2] * 2, base[3] * 2, base[4] * 3 // 2)
    if tier == "batch":
        base = (base[0] // 2, base[1] // 2, base[2] // 2, base[3] // 2, base[4] // 2)
    return base


def token_description(model: str, tier: str, context: str, token_type: str) -> str:
    """Cost-report description of a token line; unique per (model, tier, context, token type)."""
    family = MODELS[model].family + (" Batch" if tier == "batch" else "")
    suffix = " - Long Context" if context == CONTEXT_LONG else ""
    return f"{family} Usage - {TOKEN_LABELS[token_type]}{suffix}"


# Non-token cost lines: (description, cost_type, units per billing unit). Web search is $10 per 1,000
# searches (1 cent each); code execution $0.05 per container-hour and sessions $0.08 per session-hour,
# both billed here per quarter hour. "session_usage" is the newer cost_type an older parser won't know.
WEB_SEARCH = ("Web Search Usage", "web_search", 1 * UNITS_PER_CENT)
CODE_EXECUTION = ("Code Execution Usage", "code_execution", UNITS_PER_CENT * 5 // 4)
SESSION_USAGE = ("Session Usage", "session_usage", 2 * UNITS_PER_CENT)


@dataclass(frozen=True)
class WorkloadLine:
    """One model line of a product workload: tokens per unit of key intensity, per usage-vector field."""

    model: str
    tier: str
    context: str
    per_intensity: tuple[int, int, int, int, int]  # (input, 1h write, 5m write, cache read, output)


@dataclass(frozen=True)
class WorkloadProfile:
    lines: tuple[WorkloadLine, ...]
    web_searches: int = 0  # up to this many searches per unit of intensity
    code_quarter_hours: int = 0  # up to this many container quarter-hours per unit of intensity
    session_days: float = 0.0  # share of active days with (undocumented) session_usage cost


WORKLOADS: dict[str, WorkloadProfile] = {
    "Support Assistant": WorkloadProfile(
        (WorkloadLine(SONNET_45, "standard", CONTEXT_STD, (120_000, 0, 40_000, 600_000, 25_000)),),
        web_searches=8,
        session_days=0.15,
    ),
    "Document Summaries": WorkloadProfile(
        (
            WorkloadLine(SONNET_4, "batch", CONTEXT_STD, (400_000, 0, 0, 0, 60_000)),
            WorkloadLine(SONNET_4, "standard", CONTEXT_LONG, (300_000, 60_000, 0, 200_000, 10_000)),
        )
    ),
    "Search Ranking": WorkloadProfile(
        (
            WorkloadLine(HAIKU_35, "standard", CONTEXT_STD, (600_000, 0, 0, 0, 40_000)),
            WorkloadLine(HAIKU_45, "batch", CONTEXT_STD, (200_000, 0, 0, 0, 20_000)),
        ),
        code_quarter_hours=6,
    ),
}
DEFAULT_WORKLOAD = WorkloadProfile(
    (WorkloadLine(SONNET_45, "standard", CONTEXT_STD, (100_000, 0, 20_000, 300_000, 20_000)),)
)

# Free-form terminal types as the Claude Code report gives them (vendor-apis.md §1.2).
TERMINALS: tuple[str, ...] = (
    "vscode",
    "iTerm.app",
    "tmux",
    "VS Code",
    "Apple_Terminal",
    "cursor",
    "ghostty",
    "WezTerm",
    "xterm-256color",
    "pycharm",
)
# tool_actions keys in response order, with the chance a record has each (G-A5: keys can be missing).
TOOLS: tuple[tuple[str, float], ...] = (
    ("edit_tool", 0.95),
    ("multi_edit_tool", 0.5),
    ("write_tool", 0.85),
    ("notebook_edit_tool", 0.12),
)


def cents_text(units: int) -> str:
    """Integer units -> the cost report's decimal string of cents, exact, with at least five decimals."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), UNITS_PER_CENT)
    digits = f"{frac:0{CENT_DECIMALS}d}".rstrip("0").ljust(5, "0")
    return f"{sign}{whole}.{digits}"


def units_to_usd(units: int) -> Decimal:
    """Integer units -> exact USD Decimal (units are 1e-7 cents = 1e-9 dollars)."""
    return Decimal(units).scaleb(-9)
