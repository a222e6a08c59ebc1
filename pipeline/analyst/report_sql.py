"""Small helpers shared by the report's readers (``report_data``, ``report_tables``): SQL literals and the
conversion of what either engine returns (DuckDB over Parquet, SQLite, PostgreSQL) to plain pandas types."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd

from pipeline.analyst.query import StoreQuery
from pipeline.analyst.report_period import Period

__all__ = ["as_dates", "as_flags", "as_floats", "as_utc", "lit", "period_filter", "ts_literal"]


def lit(value: date | str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def ts_literal(store: StoreQuery, value: pd.Timestamp) -> str:
    """A UTC instant as a SQL literal comparable with the store's timestamp columns.

    SQLite keeps them as UTC text ``YYYY-MM-DD HH:MM:SS.ffffff``: the literal without fraction sorts just
    before the same second with one, so ``<`` and ``>=`` compare as for instants. DuckDB and PostgreSQL
    compare timestamps with time zone, so the literal carries ``+00:00``.
    """
    text = pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")
    return lit(text if store.dialect == "sqlite" else f"{text}+00:00")


def as_floats(frame: pd.DataFrame, exclude: Sequence[str]) -> pd.DataFrame:
    """Every column but ``exclude`` as float64 (both engines return numbers in their own types)."""
    for column in frame.columns:
        if column not in exclude:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def as_dates(frame: pd.DataFrame, column: str = "period_start") -> pd.DataFrame:
    """``column`` as ``datetime.date`` values."""
    frame[column] = pd.to_datetime(frame[column]).dt.date
    return frame


def as_utc(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``columns`` as UTC timestamps."""
    for column in columns:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def as_flags(series: pd.Series) -> pd.Series:
    """A nullable flag as plain booleans (null is false)."""
    return series.map(lambda v: bool(v) if v is not None and not pd.isna(v) else False).astype(bool)


def period_filter(period: Period) -> str:
    """The SQL condition selecting ``period``'s rows of a grained table."""
    return f"grain = {lit(period.grain)} AND period_start = {lit(period.start)}"
