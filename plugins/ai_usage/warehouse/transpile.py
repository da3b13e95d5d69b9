"""BigQuery Standard SQL -> DuckDB SQL: sqlglot plus a fix-up pass over the syntax tree.

sqlglot translates most of BigQuery correctly, but a few constructs come out as valid DuckDB SQL that
returns a *different answer*. Those are rewritten here, on the BigQuery syntax tree, before DuckDB SQL is
generated:

- ``NUMERIC`` / ``BIGNUMERIC`` without precision would become ``DECIMAL(18,3)`` / ``DECIMAL(38,5)`` and
  round money: they become ``DECIMAL(38,9)`` (BigQuery NUMERIC's own scale); declared ``(p,s)`` is kept.
  ``PARSE_NUMERIC`` / ``PARSE_BIGNUMERIC`` become casts.
- ``DATE_TRUNC`` / ``DATE_ADD`` / ``DATE_SUB`` return DATE in BigQuery but TIMESTAMP in DuckDB: they are
  cast back to DATE (except ``DATE_TRUNC`` of a value known to be a TIMESTAMP/DATETIME, which BigQuery
  returns unchanged in type).
- ``EXTRACT(DAYOFWEEK)`` is 1 (Sunday)..7 in BigQuery, 0..6 in DuckDB; ``EXTRACT(WEEK)`` counts
  Sunday-started weeks in BigQuery but ISO weeks in DuckDB; ``EXTRACT(ISOWEEK)`` / ``EXTRACT(DATE)``
  do not exist in DuckDB.
- ``UNNEST(...) WITH OFFSET`` is 0-based in BigQuery, ``WITH ORDINALITY`` 1-based in DuckDB; and
  ``arr[OFFSET(i)]`` / ``arr[SAFE_OFFSET(i)]`` only get DuckDB's +1 when ``i`` is a literal.
- ``FORMAT('%.2f', x)`` means printf in BigQuery and ``{}``-formatting in DuckDB (it returns the format
  string unchanged): it becomes ``PRINTF``, one argument per specifier, with BigQuery's NULL -> 'NULL'.

Constructs that cannot run on DuckDB raise WarehouseError with what to write instead, rather than
failing later with a parser error or, worse, silently. Logical datasets (raw/ref/marts/ops) are DuckDB
schemas of the same name (`sql.qualify_datasets` with the identity mapping).

Known gap, not fixable by rewriting: DuckDB divides DECIMALs in DOUBLE, BigQuery NUMERIC / NUMERIC stays
NUMERIC. Allocation SQL should split money by multiplying with a share and rounding, and put the
rounding remainder on one row, so that sums are exact on both engines.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types

from ai_usage.exceptions import WarehouseError
from ai_usage.warehouse.contracts import DATASETS
from ai_usage.warehouse.sql import parse_bigquery, qualify_datasets

log = logging.getLogger(__name__)

# BigQuery NUMERIC is NUMERIC(38, 9); DuckDB's widest DECIMAL is 38 digits.
DECIMAL_PRECISION = 38
DECIMAL_SCALE = 9
_DUCKDB_MAX_PRECISION = 38

_TIMESTAMP_TYPES = {
    exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.TIMESTAMPLTZ,
    exp.DataType.Type.DATETIME, exp.DataType.Type.TIMESTAMP_S, exp.DataType.Type.TIMESTAMP_MS,
    exp.DataType.Type.TIMESTAMP_NS,
}


@dataclass(frozen=True)
class Translation:
    """One BigQuery statement translated for DuckDB."""

    sql: str                        # DuckDB SQL, ``$name`` parameters
    parameters: tuple[str, ...]     # names of the ``@name`` parameters it uses, sorted
    returns_rows: bool              # a query (SELECT / set operation), not DML or DDL


@lru_cache(maxsize=512)
def to_duckdb(sql: str) -> str:
    """Translate one BigQuery Standard SQL statement to DuckDB SQL (``@name`` -> ``$name``)."""
    return translate(sql).sql


@lru_cache(maxsize=512)
def translate(sql: str) -> Translation:
    """Parse, check, fix up and generate; raise WarehouseError for SQL that cannot run on DuckDB."""
    tree = parse_bigquery(sql)
    _reject_unsupported(tree)
    _strip_projects(tree)
    qualify_datasets(tree, lambda dataset: dataset)
    _widen_decimals(tree)
    _date_functions_return_dates(tree)
    _fix_extract(tree)
    _fix_unnest_offsets(tree)
    _fix_subscripts(tree)
    _fix_format(tree)
    _parenthesise_int_div(tree)
    params = tuple(sorted({p.name for p in tree.find_all(exp.Parameter)}))
    return Translation(sql=tree.sql(dialect="duckdb"), parameters=params, returns_rows=isinstance(tree, exp.Query))


# --------------------------------------------------------------------------- unsupported constructs


def _unsupported(what: str, instead: str) -> WarehouseError:
    return WarehouseError(f"{what} does not run on DuckDB; {instead}")


def _reject_unsupported(tree: exp.Expression) -> None:
    """Raise for BigQuery features that have no DuckDB translation (they would fail there, or worse)."""
    if isinstance(tree, exp.Command):
        raise _unsupported(
            f"the statement {tree.name!r} (BigQuery scripting or a procedural statement)",
            "write one plain SQL statement per file and pass values as @query parameters",
        )
    for node in tree.walk():
        if isinstance(node, exp.Declare | exp.Set):
            raise _unsupported(
                "BigQuery scripting (DECLARE / SET)",
                "write one plain SQL statement per file and pass values as @query parameters",
            )
        if isinstance(node, exp.SafeFunc):
            raise _unsupported(
                f"the SAFE. prefix ({node.sql(dialect='bigquery')[:60]})",
                "use SAFE_CAST, SAFE_DIVIDE or guard the argument with IF/CASE instead",
            )
        if isinstance(node, exp.When):
            then = node.args.get("then")
            if isinstance(then, exp.Insert) and isinstance(then.this, exp.Var) and then.this.name.upper() == "ROW":
                raise _unsupported(
                    "MERGE ... INSERT ROW",
                    "list the columns: WHEN NOT MATCHED THEN INSERT (a, b) VALUES (S.a, S.b)",
                )
        if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Limit):
            raise _unsupported(
                "ARRAY_AGG(... LIMIT n)",
                "aggregate without LIMIT and pick elements with [SAFE_OFFSET(i)], "
                "or keep the first n rows with ROW_NUMBER() ... QUALIFY before aggregating",
            )
        if isinstance(node, exp.Placeholder):
            raise _unsupported("a positional ? parameter", "use named @parameters")
        if isinstance(node, exp.Column) and node.name.upper() == "_TABLE_SUFFIX":
            raise _unsupported("_TABLE_SUFFIX (wildcard tables)", "name each table and UNION ALL them")
        if isinstance(node, exp.Table):
            _check_table(node)


def _check_table(table: exp.Table) -> None:
    name = table.name
    parts = [table.catalog, table.db, name]
    if "*" in name:
        raise _unsupported(f"the wildcard table {table.sql(dialect='bigquery')}",
                           "name each table and UNION ALL them")
    if any(p.upper().startswith("INFORMATION_SCHEMA") for p in parts if p):
        raise _unsupported(
            f"{table.sql(dialect='bigquery')} (INFORMATION_SCHEMA)",
            "read table metadata through Warehouse.inventory() or the contracts in include/schemas",
        )
    if table.args.get("version") is not None:
        raise _unsupported("time travel (FOR SYSTEM_TIME AS OF)", "query the current table")
    if table.catalog and table.db not in DATASETS:
        raise _unsupported(
            f"the table {table.sql(dialect='bigquery')}",
            f"name tables logically as <dataset>.<table> with a dataset among {DATASETS}",
        )


def _strip_projects(tree: exp.Expression) -> None:
    """``project.raw.t`` -> ``raw.t``: SQL files name tables logically; the project is BigQuery's business."""
    for table in tree.find_all(exp.Table):
        if table.catalog and table.db in DATASETS:
            table.set("catalog", None)


# --------------------------------------------------------------------------- exact decimals


def _decimal_type(precision: int, scale: int) -> exp.DataType:
    return exp.DataType.build(f"DECIMAL({precision}, {scale})")


def _int_param(dt: exp.DataType, i: int) -> int | None:
    params = dt.expressions
    if len(params) <= i:
        return None
    value = params[i].this if isinstance(params[i], exp.DataTypeParam) else params[i]
    return int(value.name)


def _widen_decimals(tree: exp.Expression) -> None:
    """NUMERIC/BIGNUMERIC -> DECIMAL(38, 9) unless declared; PARSE_(BIG)NUMERIC -> CAST."""
    for node in list(tree.find_all(exp.ParseNumeric, exp.ParseBignumeric)):
        node.replace(exp.Cast(this=node.this, to=_decimal_type(DECIMAL_PRECISION, DECIMAL_SCALE)))
    for dt in list(tree.find_all(exp.DataType)):
        if dt.this not in (exp.DataType.Type.DECIMAL, exp.DataType.Type.BIGDECIMAL):
            continue
        precision = _int_param(dt, 0)
        scale = _int_param(dt, 1)
        if precision is None:
            dt.replace(_decimal_type(DECIMAL_PRECISION, DECIMAL_SCALE))
        elif dt.this == exp.DataType.Type.BIGDECIMAL or precision > _DUCKDB_MAX_PRECISION:
            dt.replace(_decimal_type(min(precision, _DUCKDB_MAX_PRECISION), min(scale or 0, _DUCKDB_MAX_PRECISION)))


# --------------------------------------------------------------------------- dates stay dates


def _wrap(node: exp.Expr, make: type[exp.Expression], **args: object) -> exp.Expression:
    """Put `node` inside a new `make(this=node, **args)` in place (no copy: nested fixes survive)."""
    wrapper = make(**args)
    node.replace(wrapper)
    wrapper.set("this", node)
    return wrapper


def _is_timestamp(node: exp.Expression) -> bool:
    """True when the expression is known (without a schema) to be a TIMESTAMP or DATETIME."""
    try:
        typed = annotate_types(node.copy(), dialect="bigquery")
    except Exception:  # noqa: BLE001 - unknown means "not known to be a timestamp"
        return False
    return typed.type is not None and typed.type.this in _TIMESTAMP_TYPES


def _date_functions_return_dates(tree: exp.Expression) -> None:
    """BigQuery's DATE_* functions return DATE; DuckDB's return TIMESTAMP. Cast them back."""
    date_type = exp.DataType.build("DATE")
    for node in list(tree.find_all(exp.DateTrunc, exp.DateAdd, exp.DateSub)):
        if isinstance(node, exp.DateTrunc) and _is_timestamp(node.this):
            continue
        parent = node.parent
        if isinstance(parent, exp.Cast) and parent.to.this == exp.DataType.Type.DATE:
            continue
        _wrap(node, exp.Cast, to=date_type.copy())


def _fix_extract(tree: exp.Expression) -> None:
    for node in list(tree.find_all(exp.Extract)):
        part = node.this
        source = node.expression
        if isinstance(part, exp.WeekStart):
            # EXTRACT(WEEK(<weekday>)): weeks starting on that weekday, days before the first one are week 0.
            day = part.this.name.upper()
            if day == "SUNDAY":
                node.replace(_week_number(source, "%U"))
            elif day == "MONDAY":
                node.replace(_week_number(source, "%W"))
            else:
                raise _unsupported(f"EXTRACT(WEEK({day}))", "use WEEK, WEEK(MONDAY) or ISOWEEK")
            continue
        name = part.name.upper()
        if name == "DAYOFWEEK":
            # BigQuery: Sunday = 1 .. Saturday = 7; DuckDB: Sunday = 0 .. Saturday = 6.
            node.replace(exp.Paren(this=exp.Add(this=node.copy(), expression=exp.Literal.number(1))))
        elif name == "WEEK":
            node.replace(_week_number(source, "%U"))
        elif name == "ISOWEEK":
            node.set("this", exp.var("WEEK"))       # DuckDB's WEEK is the ISO week
        elif name == "DATE":
            node.replace(exp.Cast(this=source, to=exp.DataType.build("DATE")))


def _week_number(source: exp.Expression, fmt: str) -> exp.Expression:
    strftime = exp.Anonymous(this="STRFTIME", expressions=[source.copy(), exp.Literal.string(fmt)])
    return exp.Cast(this=strftime, to=exp.DataType.build("BIGINT"))


# --------------------------------------------------------------------------- UNNEST ... WITH OFFSET


def _fix_unnest_offsets(tree: exp.Expression) -> None:
    """``UNNEST(a) AS v WITH OFFSET AS o`` -> ``(SELECT v, ord - 1 AS o FROM UNNEST(a) ...)``.

    The derived table is correlated like the UNNEST it replaces (DuckDB joins it laterally), and ``v``
    keeps its name, so ``v.field`` still reaches a STRUCT element's fields.
    """
    for n, unnest in enumerate(list(tree.find_all(exp.Unnest))):
        offset = unnest.args.get("offset")
        if not offset:
            continue
        if not isinstance(unnest.parent, exp.From | exp.Join):
            raise _unsupported("UNNEST ... WITH OFFSET outside FROM/JOIN", "unnest in the FROM clause")
        offset_name = offset.name if isinstance(offset, exp.Identifier) else "offset"
        alias = unnest.args.get("alias")
        columns = alias.columns if isinstance(alias, exp.TableAlias) else []
        if len(columns) != 1:
            raise _unsupported(
                "UNNEST ... WITH OFFSET without an element alias",
                "name the element: UNNEST(x) AS item WITH OFFSET AS pos",
            )
        element = columns[0].name
        ordinal = f"__ordinal_{n}"
        inner = unnest.copy()
        inner.set("offset", exp.to_identifier(ordinal))
        select = exp.select(
            exp.column(element, quoted=True),
            exp.alias_(exp.Sub(this=exp.column(ordinal), expression=exp.Literal.number(1)), offset_name, quoted=True),
        ).from_(inner)
        unnest.replace(exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(f"__unnest_{n}"))))


def _fix_subscripts(tree: exp.Expression) -> None:
    """``arr[OFFSET(i)]`` -> ``arr[i + 1]`` for a computed `i`; a bare integer subscript is refused.

    A bare ``x[i]`` is 0-based on a BigQuery ARRAY and on a JSON array, while sqlglot cannot tell the
    two apart (it shifts literal indexes as if every subscript were an ARRAY's): the author says which.
    """
    for bracket in list(tree.find_all(exp.Bracket)):
        index = bracket.expressions[0] if len(bracket.expressions) == 1 else None
        if index is None or (isinstance(index, exp.Literal) and index.is_string):
            continue
        offset = bracket.args.get("offset")
        if offset is None:
            raise _unsupported(
                f"the bare subscript {bracket.sql(dialect='bigquery')}",
                "write arr[OFFSET(i)], arr[SAFE_OFFSET(i)] or arr[ORDINAL(i)] for arrays, "
                "JSON_QUERY / JSON_VALUE for JSON",
            )
        if offset == 0 and not isinstance(index, exp.Literal):
            index.replace(exp.Add(this=exp.Paren(this=index.copy()), expression=exp.Literal.number(1)))


# --------------------------------------------------------------------------- FORMAT -> PRINTF

# BigQuery FORMAT specifiers: https://cloud.google.com/bigquery/docs/reference/standard-sql/string_functions#format_string
_SPEC = re.compile(r"%(?P<flags>[-+ #0']*)(?P<width>\d+|\*)?(?:\.(?P<precision>\d+|\*))?(?P<conv>[a-zA-Z%])")
_INTEGER_CONVS = set("dioxX")
_FLOAT_CONVS = set("fFeEgG")


def _parenthesise_int_div(tree: exp.Expression) -> None:
    """BigQuery's ``DIV(a + b, c)`` becomes DuckDB's ``a + b // c`` in sqlglot 30.30: ``//`` binds tighter
    than ``+``, so the quotient is silently wrong. Parenthesise every compound operand."""
    for node in list(tree.find_all(exp.IntDiv)):
        for arg in ("this", "expression"):
            operand = node.args.get(arg)
            if isinstance(operand, exp.Binary) and not isinstance(operand, exp.Paren):
                node.set(arg, exp.Paren(this=operand))


def _fix_format(tree: exp.Expression) -> None:
    for node in list(tree.find_all(exp.Format)):
        node.replace(_printf(node))


def _printf(node: exp.Format) -> exp.Expression:
    """Each specifier becomes ``%s`` over ``COALESCE(PRINTF(spec, typed_arg), 'NULL')``, as BigQuery prints NULL."""
    fmt = node.this
    if not (isinstance(fmt, exp.Literal) and fmt.is_string):
        raise _unsupported("FORMAT with a computed format string", "use a string literal as the format")
    args = list(node.expressions)
    pieces: list[str] = []
    wrapped: list[exp.Expression] = []
    pos = 0
    text = fmt.this
    for match in _SPEC.finditer(text):
        pieces.append(text[pos:match.start()])
        pos = match.end()
        conv = match["conv"]
        if conv == "%":
            pieces.append("%%")
            continue
        if match["width"] == "*" or match["precision"] == "*":
            raise _unsupported("FORMAT with '*' width or precision", "write the width into the format")
        if not args:
            raise WarehouseError(f"FORMAT({text!r}, ...) has fewer arguments than specifiers")
        arg = args.pop(0)
        flags = (match["flags"] or "").replace("'", ",")   # BigQuery's grouping flag is fmt's ','
        spec = f"%{flags}{match['width'] or ''}{'.' + match['precision'] if match['precision'] else ''}"
        if conv in _INTEGER_CONVS:
            typed: exp.Expression = exp.cast(arg, "BIGINT")
        elif conv in _FLOAT_CONVS:
            # Round a NUMERIC exactly (half away from zero, like BigQuery) before it becomes a DOUBLE.
            rounded = exp.Round(this=arg, decimals=exp.Literal.number(match["precision"])) \
                if match["precision"] and conv in "fF" else arg
            typed = exp.cast(rounded, "DOUBLE")
        elif conv in ("s", "t"):
            typed, conv = exp.cast(arg, "VARCHAR"), "s"
        else:
            raise _unsupported(f"the FORMAT specifier %{conv}", "use %s, %d, %f, %e, %g, %x or %o")
        pieces.append("%s")
        call = exp.Anonymous(this="PRINTF", expressions=[exp.Literal.string(spec + conv), typed])
        wrapped.append(exp.Coalesce(this=call, expressions=[exp.Literal.string("NULL")]))
    pieces.append(text[pos:])
    if args:
        raise WarehouseError(f"FORMAT({text!r}, ...) has more arguments than specifiers")
    return exp.Anonymous(this="PRINTF", expressions=[exp.Literal.string("".join(pieces)), *wrapped])
