"""BigQuery -> DuckDB translation (`ai_usage.warehouse.transpile`).

Each silent trap of sqlglot is tested twice on a real DuckDB: sqlglot's own output must give the WRONG
answer (so the test proves the fix is needed, and will tell us when sqlglot fixes it upstream), and
`to_duckdb` must give BigQuery's answer. The expected values are BigQuery's documented semantics.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import pytest
import sqlglot

from ai_usage.exceptions import WarehouseError
from ai_usage.warehouse.transpile import to_duckdb, translate


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the logical schemas and a few small tables."""
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    for schema in ("raw", "ref", "marts", "ops"):
        c.execute(f"CREATE SCHEMA {schema}")
    c.execute("CREATE TABLE raw.days (d DATE, ts TIMESTAMPTZ)")
    c.execute("INSERT INTO raw.days VALUES ('2024-05-17', '2024-05-17 10:30:00+00'), ('2024-05-19', NULL)")
    c.execute("CREATE TABLE raw.usage (usage_date DATE, email VARCHAR, "
              "models STRUCT(model VARCHAR, tokens BIGINT, cost_usd DECIMAL(38,9))[])")
    c.execute("""INSERT INTO raw.usage VALUES
        ('2024-05-01', 'a@x.com', [{'model': 'sonnet', 'tokens': 10, 'cost_usd': 0.000000001},
                                   {'model': 'opus', 'tokens': 5, 'cost_usd': 1.5}]),
        ('2024-05-02', 'b@x.com', []),
        ('2024-05-02', 'a@x.com', NULL)""")
    yield c
    c.close()


def run(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    return con.execute(sql, params).fetchall()


def raw_sqlglot(sql: str) -> str:
    """What sqlglot alone produces (the baseline every trap test shows to be wrong)."""
    return sqlglot.transpile(sql, read="bigquery", write="duckdb")[0]


# --------------------------------------------------------------------------- silent traps, fixed


def test_numeric_keeps_nine_decimals(con: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT CAST('1234.123456789' AS NUMERIC) AS a, CAST('0.000000001' AS BIGNUMERIC) AS b"
    assert run(con, raw_sqlglot(sql)) == [(Decimal("1234.123"), Decimal("0.00000"))]  # money rounded
    assert run(con, to_duckdb(sql)) == [(Decimal("1234.123456789"), Decimal("0.000000001"))]


def test_integer_division_keeps_its_operands_together(con: duckdb.DuckDBPyConnection) -> None:
    """BigQuery DIV(7 + 3, 2) is 5; sqlglot alone emits `7 + 3 // 2` (= 8) for DuckDB."""
    sql = "SELECT DIV(7 + 3, 2) AS q, DIV(20, 3 + 1) AS r, DIV(9, 2) AS s"
    assert run(con, raw_sqlglot(sql)) != [(5, 5, 4)]
    assert run(con, to_duckdb(sql)) == [(5, 5, 4)]


def test_numeric_in_ddl_and_parse_numeric(con: duckdb.DuckDBPyConnection) -> None:
    ddl = "CREATE TABLE marts.money (amount_usd NUMERIC, rate NUMERIC(10, 4))"
    con.execute(to_duckdb(ddl))
    con.execute("INSERT INTO marts.money VALUES (0.000000001, 1.2345)")
    assert run(con, "SELECT amount_usd, rate FROM marts.money") == [(Decimal("0.000000001"), Decimal("1.2345"))]
    con.execute(raw_sqlglot(ddl.replace("marts.money", "marts.money_raw")))
    con.execute("INSERT INTO marts.money_raw VALUES (0.000000001, 1.2345)")
    assert run(con, "SELECT amount_usd FROM marts.money_raw") == [(Decimal("0.000"),)]
    parse = "SELECT PARSE_NUMERIC('12.345678901') AS x"
    assert run(con, to_duckdb(parse)) == [(Decimal("12.345678901"),)]
    with pytest.raises(duckdb.Error):
        run(con, raw_sqlglot(parse))


def test_sum_of_numeric_stays_exact(con: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT SUM(CAST(x AS NUMERIC)) AS s FROM UNNEST(['0.000000001', '0.000000002', '10.1']) AS x"
    assert run(con, raw_sqlglot(sql)) == [(Decimal("10.100"),)]
    assert run(con, to_duckdb(sql)) == [(Decimal("10.100000003"),)]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("DATE_TRUNC(d, MONTH)", date(2024, 5, 1)),
        ("DATE_TRUNC(d, ISOYEAR)", date(2024, 1, 1)),
        ("DATE_TRUNC(d, WEEK(MONDAY))", date(2024, 5, 13)),
        ("DATE_ADD(d, INTERVAL 1 DAY)", date(2024, 5, 18)),
        ("DATE_SUB(d, INTERVAL 1 MONTH)", date(2024, 4, 17)),
        ("DATE_SUB(DATE_TRUNC(d, MONTH), INTERVAL 1 DAY)", date(2024, 4, 30)),
        ("DATE_ADD(@day, INTERVAL 2 DAY)", date(2024, 5, 19)),
    ],
)
def test_date_functions_return_dates(con: duckdb.DuckDBPyConnection, expr: str, expected: date) -> None:
    sql = f"SELECT {expr} AS x, CAST({expr} AS STRING) AS s FROM raw.days WHERE d = DATE '2024-05-17'"
    params = {"day": date(2024, 5, 17)} if "@day" in sql else None
    raw_value, raw_text = run(con, raw_sqlglot(sql), params)[0]
    assert isinstance(raw_value, datetime)          # DuckDB's TIMESTAMP: a different type...
    assert raw_text == f"{expected.isoformat()} 00:00:00"   # ...that shows in every string and join
    value, text = run(con, to_duckdb(sql), params)[0]
    assert type(value) is date and value == expected
    assert text == expected.isoformat()


def test_date_trunc_of_a_timestamp_stays_a_timestamp(con: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT DATE_TRUNC(TIMESTAMP '2024-05-17 10:30:00+00', DAY) AS x"
    (value,) = run(con, to_duckdb(sql))[0]
    assert isinstance(value, datetime) and value.isoformat() == "2024-05-17T00:00:00+00:00"


@pytest.mark.parametrize(
    ("part", "day", "bigquery", "raw_result"),
    [
        ("DAYOFWEEK", "2024-05-19", 1, 0),      # a Sunday: 1 in BigQuery
        ("DAYOFWEEK", "2024-05-18", 7, 6),      # a Saturday: 7
        ("WEEK", "2024-05-20", 20, 21),         # Sunday-based weeks vs ISO weeks
        ("WEEK", "2024-01-06", 0, 1),           # before the year's first Sunday: week 0
        ("WEEK(MONDAY)", "2023-01-01", 0, 52),  # a Sunday before the first Monday
    ],
)
def test_extract_matches_bigquery(
    con: duckdb.DuckDBPyConnection, part: str, day: str, bigquery: int, raw_result: int
) -> None:
    sql = f"SELECT EXTRACT({part} FROM DATE '{day}') AS x"
    assert run(con, raw_sqlglot(sql)) == [(raw_result,)]
    assert run(con, to_duckdb(sql)) == [(bigquery,)]


def test_extract_isoweek_and_date_run(con: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT EXTRACT(ISOWEEK FROM DATE '2024-05-20') AS w, EXTRACT(DATE FROM TIMESTAMP '2024-05-20 23:59:00+00') AS d"
    with pytest.raises(duckdb.Error):
        run(con, raw_sqlglot(sql))
    assert run(con, to_duckdb(sql)) == [(21, date(2024, 5, 20))]


def test_with_offset_is_zero_based(con: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT x, o FROM UNNEST(['a', 'b', 'c']) AS x WITH OFFSET AS o ORDER BY o"
    assert run(con, raw_sqlglot(sql)) == [("a", 1), ("b", 2), ("c", 3)]
    assert run(con, to_duckdb(sql)) == [("a", 0), ("b", 1), ("c", 2)]


def test_with_offset_on_struct_arrays_of_a_table(con: duckdb.DuckDBPyConnection) -> None:
    sql = """
        SELECT u.email, m.model, pos, u.models[OFFSET(pos)].tokens AS same_tokens, m.tokens
        FROM raw.usage AS u, UNNEST(u.models) AS m WITH OFFSET AS pos
        ORDER BY u.email, pos
    """
    assert [r[2] for r in run(con, raw_sqlglot(sql))] == [1, 2]
    assert run(con, to_duckdb(sql)) == [("a@x.com", "sonnet", 0, 10, 10), ("a@x.com", "opus", 1, 5, 5)]


@pytest.mark.parametrize(
    ("subscript", "expected"),
    [("OFFSET(i)", 20), ("SAFE_OFFSET(i)", 20), ("SAFE_OFFSET(i + 5)", None), ("ORDINAL(i)", 10), ("OFFSET(1)", 20)],
)
def test_computed_array_offsets(con: duckdb.DuckDBPyConnection, subscript: str, expected: int | None) -> None:
    sql = f"SELECT a[{subscript}] AS x FROM (SELECT [10, 20, 30] AS a, 1 AS i)"
    if subscript in ("OFFSET(i)", "SAFE_OFFSET(i)"):
        assert run(con, raw_sqlglot(sql)) == [(10,)]           # sqlglot only shifts literal indexes
    assert run(con, to_duckdb(sql)) == [(expected,)]


def test_bare_integer_subscripts_are_refused_string_keys_pass(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(WarehouseError, match="OFFSET"):
        to_duckdb("SELECT a[i] FROM (SELECT [10, 20] AS a, 1 AS i)")
    with pytest.raises(WarehouseError, match="JSON_QUERY"):
        to_duckdb("SELECT a[0] FROM (SELECT [10, 20] AS a)")
    assert run(con, to_duckdb("""SELECT j['a'] AS x FROM (SELECT JSON '{"a": 1}' AS j)""")) == [("1",)]


def test_left_join_unnest_with_offset_keeps_empty_arrays(con: duckdb.DuckDBPyConnection) -> None:
    sql = """
        SELECT u.usage_date, u.email, m.model, pos
        FROM raw.usage AS u LEFT JOIN UNNEST(u.models) AS m WITH OFFSET AS pos ON TRUE
        ORDER BY u.usage_date, u.email, pos
    """
    assert run(con, to_duckdb(sql)) == [
        (date(2024, 5, 1), "a@x.com", "sonnet", 0),
        (date(2024, 5, 1), "a@x.com", "opus", 1),
        (date(2024, 5, 2), "a@x.com", None, None),
        (date(2024, 5, 2), "b@x.com", None, None),
    ]


def test_format_is_printf(con: duckdb.DuckDBPyConnection) -> None:
    sql = """SELECT FORMAT('%.2f', 3.14159) AS a, FORMAT('%d items', 3) AS b, FORMAT('%s-%s', 'x', NULL) AS c,
                    FORMAT("%'d", 1234567) AS d, FORMAT('%.2f', CAST('2.675' AS NUMERIC)) AS e,
                    FORMAT('100%% of %5.1f|%-4d|', 3.14159, 42) AS f, FORMAT('%t', DATE '2024-01-01') AS g"""
    assert run(con, raw_sqlglot(sql))[0][:2] == ("%.2f", "%d items")   # the format string comes back
    assert run(con, to_duckdb(sql)) == [
        ("3.14", "3 items", "x-NULL", "1,234,567", "2.68", "100% of   3.1|42  |", "2024-01-01")
    ]


def test_format_refuses_what_it_cannot_translate() -> None:
    with pytest.raises(WarehouseError, match="string literal"):
        to_duckdb("SELECT FORMAT(fmt, 1) FROM raw.days")
    with pytest.raises(WarehouseError, match="fewer arguments"):
        to_duckdb("SELECT FORMAT('%d %d', 1)")
    with pytest.raises(WarehouseError, match="%T"):
        to_duckdb("SELECT FORMAT('%T', 1)")


# --------------------------------------------------------------------------- names


def test_dataset_references_and_projects(con: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT COUNT(*) AS n, 'raw.days' AS label FROM `my-project.raw.days` JOIN raw.days AS d2 USING (d)"
    with pytest.raises(duckdb.Error):
        run(con, raw_sqlglot(sql))                                # a catalog DuckDB does not have
    out = to_duckdb(sql)
    assert "my-project" not in out and "'raw.days'" in out
    assert run(con, out) == [(2, "raw.days")]


# --------------------------------------------------------------------------- constructs that cannot run


@pytest.mark.parametrize(
    ("sql", "advice"),
    [
        ("SELECT SAFE.PARSE_DATE('%Y-%m-%d', '2024-13-01') AS d", "SAFE_CAST"),
        ("DECLARE x INT64 DEFAULT 1", "@query parameters"),
        ("SET x = 2", "@query parameters"),
        ("EXECUTE IMMEDIATE 'SELECT 1'", "one plain SQL statement"),
        ("MERGE raw.days T USING raw.days S ON T.d = S.d WHEN NOT MATCHED THEN INSERT ROW", "INSERT (a, b)"),
        ("SELECT ARRAY_AGG(email ORDER BY usage_date LIMIT 1) AS e FROM raw.usage", "SAFE_OFFSET"),
        ("SELECT * FROM `raw.events_*`", "UNION ALL"),
        ("SELECT * FROM raw.usage WHERE _TABLE_SUFFIX > '2024'", "UNION ALL"),
        ("SELECT * FROM `my-project`.raw.INFORMATION_SCHEMA.TABLES", "inventory()"),
        ("SELECT * FROM `region-us`.INFORMATION_SCHEMA.JOBS", "inventory()"),
        ("SELECT * FROM raw.days FOR SYSTEM_TIME AS OF TIMESTAMP '2024-01-01'", "current table"),
        ("SELECT * FROM raw.days WHERE d = ?", "named @parameters"),
        ("SELECT * FROM `other-project.billing.export`", "logically"),
        ("SELECT x FROM UNNEST([1, 2]) WITH OFFSET AS o", "name the element"),
    ],
)
def test_unsupported_constructs_explain_what_to_write(sql: str, advice: str) -> None:
    with pytest.raises(WarehouseError) as err:
        to_duckdb(sql)
    assert advice in str(err.value)


def test_more_than_one_statement_is_refused() -> None:
    with pytest.raises(WarehouseError, match="one SQL statement"):
        to_duckdb("SELECT 1; SELECT 2")


# --------------------------------------------------------------------------- what works as is


def test_merge_with_not_matched_by_source(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE marts.target (k VARCHAR, v DECIMAL(38,9))")
    con.execute("INSERT INTO marts.target VALUES ('keep', 1), ('gone', 2)")
    con.execute("CREATE TABLE raw.source (k VARCHAR, v DECIMAL(38,9))")
    con.execute("INSERT INTO raw.source VALUES ('keep', 10.5), ('new', 0.000000003)")
    sql = """
        MERGE marts.target T USING raw.source S ON T.k = S.k
        WHEN MATCHED THEN UPDATE SET v = S.v
        WHEN NOT MATCHED THEN INSERT (k, v) VALUES (S.k, S.v)
        WHEN NOT MATCHED BY SOURCE THEN DELETE
    """
    assert translate(sql).returns_rows is False
    con.execute(to_duckdb(sql))
    assert run(con, "SELECT k, v FROM marts.target ORDER BY k") == [
        ("keep", Decimal("10.500000000")), ("new", Decimal("0.000000003"))
    ]


def test_qualify_safe_divide_countif(con: duckdb.DuckDBPyConnection) -> None:
    sql = """
        SELECT email, usage_date, SAFE_DIVIDE(1, 0) AS nothing, SAFE_DIVIDE(6, 4) AS ratio,
               COUNTIF(ARRAY_LENGTH(models) > 0) OVER (PARTITION BY email) AS active_days
        FROM raw.usage
        QUALIFY ROW_NUMBER() OVER (PARTITION BY email ORDER BY usage_date DESC) = 1
        ORDER BY email
    """
    assert run(con, to_duckdb(sql)) == [
        ("a@x.com", date(2024, 5, 2), None, 1.5, 1),
        ("b@x.com", date(2024, 5, 2), None, 1.5, 0),
    ]


def test_unnest_struct_arrays_and_generate_date_array(con: duckdb.DuckDBPyConnection) -> None:
    sql = """
        SELECT day, COALESCE(SUM(m.cost_usd), 0) AS cost_usd, COUNT(m.model) AS models
        FROM UNNEST(GENERATE_DATE_ARRAY(@start_date, @end_date)) AS day
        LEFT JOIN (SELECT u.usage_date, m FROM raw.usage AS u, UNNEST(u.models) AS m) AS x
          ON x.usage_date = day
        GROUP BY day ORDER BY day
    """
    translation = translate(sql)
    assert translation.parameters == ("end_date", "start_date")
    out = run(con, translation.sql, {"start_date": date(2024, 4, 30), "end_date": date(2024, 5, 2)})
    assert out == [
        (date(2024, 4, 30), Decimal("0E-9"), 0),
        (date(2024, 5, 1), Decimal("1.500000001"), 2),
        (date(2024, 5, 2), Decimal("0E-9"), 0),
    ]


def test_translation_is_cached() -> None:
    sql = "SELECT COUNT(*) AS n FROM raw.days WHERE d >= @since"
    before = to_duckdb.cache_info().hits
    first = to_duckdb(sql)
    assert to_duckdb(sql) is first
    assert to_duckdb.cache_info().hits == before + 1
    assert "$since" in first and "@since" not in first
