"""Card SQL templates: one BigQuery SQL text that serves Metabase and the local HTML report.

A card's SQL is BigQuery Standard SQL over the logical ``marts.*`` tables, with dashboard filters written
as Metabase template tags inside Metabase *optional clauses*
(https://www.metabase.com/docs/latest/questions/native-editor/sql-parameters#making-variables-optional)::

    SELECT month, SUM(amount_usd) AS amount_usd
    FROM marts.monthly_cost_allocation
    WHERE TRUE
      [[AND team = {{team}}]]
      [[AND month >= CAST({{date_from}} AS DATE)]]
    GROUP BY month

The convention, checked by `parse_template`:

- every ``{{tag}}`` sits inside a ``[[ ... ]]`` clause, so every filter is optional;
- a clause is exactly ``AND <column> <operator> {{tag}}`` or ``AND <column> <operator> CAST({{tag}} AS DATE)``
  (operators ``= <> != < <= > >=``): plain SQL that means the same in BigQuery and DuckDB, so a clause
  never needs translating. Anything more (a function of the column, a month's last day) goes into a CTE
  column that the clause then compares;
- no backtick-quoted names (tables are named ``marts.<table>``, and the dataset is re-pointed per target).

How the same text runs in each place:

- **Locally** (`local_query`): a clause whose tag has a value is kept with ``{{tag}}`` turned into the
  BigQuery query parameter ``@tag``; the others are dropped. The warehouse layer binds the values as
  parameters (never spliced into the text) and transpiles to DuckDB as for every SQL file.
- **Metabase on BigQuery** (`for_bigquery`): the text is sent as is, with ``marts.`` re-pointed at the
  deployment's dataset (``<prefix>_marts``); Metabase drops or fills the clauses itself.
- **Metabase on DuckDB** (`for_duckdb`): each clause is swapped for a sentinel predicate, the rest is
  transpiled BigQuery -> DuckDB like every SQL file, then the clauses are put back verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlglot import exp
from sqlglot.dialects.bigquery import BigQuery
from sqlglot.tokens import TokenType

from ai_usage.exceptions import ConfigurationError, WarehouseError
from ai_usage.warehouse.contracts import DATASETS
from ai_usage.warehouse.sql import parse_bigquery

_TAG = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_CLAUSE = re.compile(r"\[\[(.*?)\]\]", re.S)
_VALUE = r"(?:\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}|CAST\(\s*\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}\s+AS\s+DATE\s*\))"
_CLAUSE_GRAMMAR = re.compile(
    r"^\s*AND\s+(?:[A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*\s*(?:=|<>|!=|<=|>=|<|>)\s*" + _VALUE + r"\s*$",
    re.I | re.S,
)
_SENTINEL = "__mb_opt_{n} = 0"


class TemplateError(ConfigurationError):
    """A card's SQL breaks the template convention (see the module docstring)."""


@dataclass(frozen=True)
class Clause:
    """One optional clause ``[[ AND column op {{tag}} ]]``: its span in the text, inner text and tag."""

    start: int
    end: int       # exclusive, after the closing ]]
    inner: str
    tag: str


@dataclass(frozen=True)
class Template:
    """A parsed card SQL template; `where` names it in error messages."""

    text: str
    clauses: tuple[Clause, ...]
    where: str = "card SQL"

    @property
    def tags(self) -> tuple[str, ...]:
        """Template tags in order of first appearance."""
        return tuple(dict.fromkeys(c.tag for c in self.clauses))

    @cached_property
    def parse_form(self) -> str:
        """The text with every clause kept and each tag as ``@tag``, padded so character offsets stay put."""
        out = []
        last = 0
        for clause in self.clauses:
            out.append(self.text[last:clause.start])
            inner = _TAG.sub(lambda m: _pad("@" + m.group(1), len(m.group(0))), clause.inner)
            out.append("  " + inner + "  ")
            last = clause.end
        out.append(self.text[last:])
        form = "".join(out)
        assert len(form) == len(self.text)
        return form

    @cached_property
    def tree(self) -> exp.Query:
        try:
            tree = parse_bigquery(self.parse_form)
        except WarehouseError as exc:
            raise TemplateError(f"{self.where}: {exc}") from exc
        if not isinstance(tree, exp.Query):
            raise TemplateError(f"{self.where}: a card's SQL must be a query (SELECT or WITH … SELECT), "
                                f"not {tree.key.upper()}")
        return tree

    @cached_property
    def tables(self) -> frozenset[str]:
        """Every table the SQL reads, as ``dataset.table`` (CTE names excluded)."""
        ctes = {c.alias_or_name for c in self.tree.find_all(exp.CTE)}
        return frozenset(
            f"{t.db}.{t.name}" if t.db else t.name
            for t in self.tree.find_all(exp.Table)
            if t.db or t.name not in ctes
        )

    # -- local ------------------------------------------------------------------------------------------
    def local_query(self, values: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """BigQuery SQL with ``@tag`` parameters for the tags that have a value (None = no value), and them."""
        out: list[str] = []
        params: dict[str, Any] = {}
        last = 0
        for clause in self.clauses:
            out.append(self.text[last:clause.start])
            value = values.get(clause.tag)
            if value is not None:
                out.append(" " + _TAG.sub(lambda m: "@" + m.group(1), clause.inner) + " ")
                params[clause.tag] = value
            last = clause.end
        out.append(self.text[last:])
        return "".join(out), params

    # -- Metabase ---------------------------------------------------------------------------------------
    def for_bigquery(self, dataset: Callable[[str], str]) -> str:
        """The native query for Metabase on BigQuery: logical datasets re-pointed by `dataset`."""
        refs = {(t.db, t.name) for t in self.tree.find_all(exp.Table) if t.db in DATASETS and not t.catalog}
        tokens = BigQuery().tokenize(self.parse_form)
        edits: list[tuple[int, int, str]] = []
        for i in range(len(tokens) - 2):
            first, dot, second = tokens[i], tokens[i + 1], tokens[i + 2]
            if dot.token_type != TokenType.DOT or (i > 0 and tokens[i - 1].token_type == TokenType.DOT):
                continue
            if first.token_type in (TokenType.VAR, TokenType.IDENTIFIER) and (first.text, second.text) in refs:
                edits.append((first.start, first.end + 1, dataset(first.text)))
        text = self.text
        for start, end, name in reversed(edits):
            text = text[:start] + name + text[end:]
        return text

    def for_duckdb(self) -> str:
        """The native query for Metabase on DuckDB: transpiled like every SQL file, clauses kept verbatim."""
        from ai_usage.warehouse.transpile import to_duckdb

        skeleton, last = [], 0
        for n, clause in enumerate(self.clauses):
            skeleton.append(self.text[last:clause.start])
            skeleton.append(" AND " + _SENTINEL.format(n=n) + " ")
            last = clause.end
        skeleton.append(self.text[last:])
        try:
            text = to_duckdb("".join(skeleton))
        except WarehouseError as exc:
            raise TemplateError(f"{self.where}: {exc}") from exc
        for n, clause in enumerate(self.clauses):
            sentinel = "AND " + _SENTINEL.format(n=n)
            if text.count(sentinel) != 1:
                raise TemplateError(f"{self.where}: optional clause {n + 1} did not survive translation to DuckDB")
            text = text.replace(sentinel, "[[" + clause.inner.strip() + "]]")
        return text


def _pad(text: str, width: int) -> str:
    return text + " " * (width - len(text))


def parse_template(text: str, where: str = "card SQL") -> Template:
    """Parse and check a card SQL template against the convention of this module."""
    if "`" in text:
        raise TemplateError(f"{where}: backtick-quoted names are not allowed; name tables marts.<table>")
    clauses: list[Clause] = []
    for match in _CLAUSE.finditer(text):
        inner = match.group(1)
        if "[[" in inner:
            raise TemplateError(f"{where}: optional clauses cannot be nested")
        tags = _TAG.findall(inner)
        if len(tags) != 1 or not _CLAUSE_GRAMMAR.match(inner):
            raise TemplateError(
                f"{where}: optional clause [[{inner.strip()}]] must read 'AND <column> <op> {{{{tag}}}}' or "
                f"'AND <column> <op> CAST({{{{tag}}}} AS DATE)', with exactly one tag"
            )
        clauses.append(Clause(match.start(), match.end(), inner, tags[0]))
    outside = _CLAUSE.sub("", text)
    if "[[" in outside or "]]" in outside:
        raise TemplateError(f"{where}: unbalanced [[ ]]")
    stray = _TAG.findall(outside)
    if stray:
        raise TemplateError(f"{where}: template tag(s) {sorted(set(stray))} outside an optional [[ ]] clause")
    if "{{" in outside or "}}" in outside:
        raise TemplateError(f"{where}: malformed template tag")
    template = Template(text=text, clauses=tuple(clauses), where=where)
    template.tree  # noqa: B018 - parse now, so a bad file fails when loaded
    return template
