"""Batches for the GX suites: the rows of the touched partitions, read through the warehouse into pandas.

Reading through `Warehouse.query` is the route that works the same on DuckDB and BigQuery without
patching GX (GX's SQL datasource needs a patch to keep DuckDB cursors open, stack notes). A table's
touched days are validated one calendar month at a time, so a failure covers exactly the months whose
marts it must block; only the columns the suite reads are selected. Statements are built as sqlglot
syntax trees (table and column names come from the contracts; values are @parameters), never by
formatting text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlglot import exp

from ai_usage.quality.suites import KEY_COLUMN, Suite
from ai_usage.warehouse import arrow

COUNT_LOOKBACK_DAYS = 7   # the "previous day" of a day is the nearest earlier day with rows within this
MIN_COMPARED_ROWS = 20    # below this many rows on the day compared with, a ratio is noise: not compared


@dataclass
class Batch:
    """One validation unit: a table's rows for the touched days of one month (or a whole ref table)."""

    suite: Suite
    month: date | None
    window: tuple[date, date] | None
    frame: Any                      # pandas.DataFrame
    counts: Any | None = None       # pandas.DataFrame: day, row_count, previous_row_count, ratio

    @property
    def label(self) -> str:
        return self.month.isoformat()[:7] if self.month else "all"


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def split_by_month(ranges: Sequence[tuple[date, date]]) -> dict[date, tuple[date, date]]:
    """Month -> the span of touched days inside it (first to last), from inclusive day ranges."""
    out: dict[date, tuple[date, date]] = {}
    for lo, hi in ranges:
        day = lo
        while day <= hi:
            m, last = month_start(day), min(hi, month_end(day))
            a, b = out.get(m, (day, last))
            out[m] = (min(a, day), max(b, last))
            day = last + timedelta(days=1)
    return dict(sorted(out.items()))


def _param(name: str) -> exp.Parameter:
    return exp.Parameter(this=exp.var(name))


def select_rows(table: str, columns: Sequence[str], field: str | None) -> str:
    """``SELECT <columns> FROM <table> [WHERE <field> BETWEEN @start_date AND @end_date]`` (BigQuery SQL)."""
    tree = exp.select(*[exp.column(c, quoted=True) for c in columns]).from_(exp.to_table(table))
    if field:
        tree = tree.where(exp.Between(this=exp.column(field, quoted=True), low=_param("start_date"),
                                      high=_param("end_date")))
    return tree.sql(dialect="bigquery")


def select_daily_counts(table: str, field: str) -> str:
    """Rows per partition day between @start_date and @end_date."""
    col = exp.column(field, quoted=True)
    tree = (
        exp.select(col.copy().as_("day"), exp.func("COUNT", exp.Star()).as_("row_count"))
        .from_(exp.to_table(table))
        .where(exp.Between(this=col.copy(), low=_param("start_date"), high=_param("end_date")))
        .group_by(col.copy())
    )
    return tree.sql(dialect="bigquery")


def to_frame(rows: list[dict[str, Any]], columns: Sequence[str], key: Sequence[str]) -> Any:
    """The rows as a DataFrame plus the key column (the key as JSON text, so NULL parts compare equal)."""
    import pandas as pd

    arrow.pandas_ready()  # GX hands these frames to pandas, which may hand them to pyarrow

    frame = pd.DataFrame.from_records(rows, columns=list(columns))
    frame[KEY_COLUMN] = [json.dumps([r.get(k) for k in key], default=str) for r in rows]
    return frame


def daily_counts(rows: list[dict[str, Any]], window: tuple[date, date], *, weekly: bool = False) -> Any:
    """For each day of `window`: rows, rows of the day compared with, and their ratio (None when that day
    has fewer than MIN_COMPARED_ROWS rows). The day compared with is the same weekday a week earlier
    (`weekly`), else the nearest earlier day with rows within a week."""
    import pandas as pd

    arrow.pandas_ready()

    by_day = {r["day"]: int(r["row_count"]) for r in rows}
    out = []
    day = window[0]
    while day <= window[1]:
        if weekly:
            previous = by_day.get(day - timedelta(days=7))
        else:
            earlier = [d for d in by_day if day - timedelta(days=COUNT_LOOKBACK_DAYS) <= d < day]
            previous = by_day[max(earlier)] if earlier else None
        count = by_day.get(day, 0)
        ratio = count / previous if previous and previous >= MIN_COMPARED_ROWS else None
        out.append({"day": day, "row_count": count, "previous_row_count": previous, "ratio": ratio})
        day += timedelta(days=1)
    return pd.DataFrame.from_records(out, columns=["day", "row_count", "previous_row_count", "ratio"])


def read_batches(
    warehouse: Any, suite_for: Any, table: str, ranges: Sequence[tuple[date, date]] | None,
) -> Iterator[Batch]:
    """Batches of `table`: one per month of the touched `ranges` (None: the whole table, one batch).

    `suite_for(window)` builds the table's suite for a batch window (None for a whole table).
    """
    if ranges is None:
        suite = suite_for(None)
        rows = warehouse.query(select_rows(table, suite.columns, None))
        yield Batch(suite, None, None, to_frame(rows, suite.columns, suite.key))
        return
    for month, window in split_by_month(ranges).items():
        suite = suite_for(window)
        params = {"start_date": window[0], "end_date": window[1]}
        rows = warehouse.query(select_rows(table, suite.columns, suite.partition_field), params)
        counts = None
        if suite.row_band is not None and suite.partition_field:
            count_rows = warehouse.query(
                select_daily_counts(table, suite.partition_field),
                {"start_date": window[0] - timedelta(days=COUNT_LOOKBACK_DAYS), "end_date": window[1]},
            )
            counts = daily_counts(count_rows, window, weekly=suite.weekly)
        yield Batch(suite, month, window, to_frame(rows, suite.columns, suite.key), counts)
