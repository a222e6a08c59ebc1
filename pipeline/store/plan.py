"""What a run hands to the stores: a ``Replacement`` per table, checked and converted to a ``TablePlan``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from kpis.schema import TABLE_COLUMNS
from pipeline.store.errors import StoreError
from pipeline.store.parquet import PARQUET_COLUMNS, PARQUET_KEYS, dedupe_last, distinct, to_arrow

__all__ = ["Replacement", "TablePlan", "check_table", "plan_of"]

log = logging.getLogger(__name__)


@dataclass
class Replacement:
    """New rows for one table and the scope of existing rows they replace.

    ``scope`` holds distinct tuples of some of the table's columns; existing rows matching any tuple
    are deleted first (a tuple holding a null matches nothing). A frame with no columns appends.
    Rows sharing a key (``TABLE_KEYS``) with a new row are replaced too, so a key is never doubled.
    """

    table: str
    rows: pd.DataFrame
    scope: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class TablePlan:
    """A replacement checked and converted to Arrow: the rows to write and the scope they replace."""

    table: str
    rows: pa.Table
    scope: pa.Table | None

    @property
    def in_sql(self) -> bool:
        """Whether the SQL store has this table (the raw layer is Parquet only)."""
        return self.table in TABLE_COLUMNS

    @property
    def changes_anything(self) -> bool:
        """Whether writing the plan adds or removes any row."""
        return self.rows.num_rows > 0 or (self.scope is not None and self.scope.num_rows > 0)


def check_table(table: str, known: dict[str, Any]) -> None:
    """Refuse a table name the stores do not know."""
    if table not in known:
        raise StoreError(f"unknown table {table!r}; known: {', '.join(sorted(known))}")


def plan_of(replacement: Replacement) -> TablePlan:
    """Validate and convert one replacement before anything is written."""
    table = replacement.table
    check_table(table, PARQUET_COLUMNS)
    columns = PARQUET_COLUMNS[table]
    extra = sorted(set(replacement.rows.columns) - set(columns))
    if extra:
        log.warning("%s: dropping columns not in the schema: %s", table, ", ".join(extra))
    keys = PARQUET_KEYS.get(table, ())
    rows = to_arrow(replacement.rows, columns)
    for key in keys:
        if rows.column(key).null_count:
            raise StoreError(f"{table}: {rows.column(key).null_count} new rows have no {key} (a key column)")
    return TablePlan(table, dedupe_last(rows, keys), _scope(table, replacement.scope))


def _scope(table: str, scope: pd.DataFrame) -> pa.Table | None:
    if len(scope.columns) == 0:
        return None
    columns = PARQUET_COLUMNS[table]
    unknown = sorted(set(scope.columns) - set(columns))
    if unknown:
        raise StoreError(f"{table}: scope columns {', '.join(unknown)} are not columns of the table")
    scope_columns = {name: columns[name] for name in scope.columns}
    return distinct(to_arrow(scope, scope_columns))


