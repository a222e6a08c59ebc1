"""Breakdowns (KPIS.md 4.1): the ``kpi_engineer`` columns per client, service, category and priority.

One row per (grain, period_start, dimension, member, ticket_type) for each dimension of
``[reporting].breakdowns``: the member is the ticket's value of that dimension in ``ticket_facts`` (final
category, current priority), ``(none)`` when empty. The rows are made by the same machinery as ``kpi_engineer``
(kpis.aggregate): the stacked KPI rows are shared, only who is credited changes, so an induced incident counts
for the member of the maintenance ticket that caused it, as it counts for that ticket's engineer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpis.aggregate import KpiRows, aggregate_periods, kpi_rows
from kpis.config import KpiSettings
from kpis.schema import KPI_BREAKDOWN_COLUMNS, KPI_BREAKDOWN_KEYS, concat_frames

NO_MEMBER = "(none)"


def breakdown(facts: pd.DataFrame, settings: KpiSettings, rows: KpiRows | None = None,
              only: pd.DataFrame | None = None) -> pd.DataFrame:
    """``kpi_breakdown`` rows of every configured dimension and grain.

    ``rows`` (from ``kpi_rows``) may be passed when several aggregates are made from the same facts.
    ``only``: (grain, period_start, dimension, member) groups; when given, only their rows are computed
    (each equal to its row in the whole table).
    """
    rows = rows if rows is not None else kpi_rows(facts, settings)
    tables = [_dimension_rows(facts, settings, dimension, rows, only) for dimension in settings.breakdowns]
    table = concat_frames(tables, KPI_BREAKDOWN_COLUMNS)
    return table.sort_values(list(KPI_BREAKDOWN_KEYS), ignore_index=True)


def _dimension_rows(facts: pd.DataFrame, settings: KpiSettings, dimension: str, rows: KpiRows,
                    only: pd.DataFrame | None) -> pd.DataFrame:
    """One dimension's rows: the engineer aggregate with the dimension's member in place of the engineer."""
    credited = pd.DataFrame({"member": member_categories(facts[dimension]), "ticket_type": facts["ticket_type"],
                             "as_of": facts["as_of"]})
    groups = None if only is None else only[only["dimension"] == dimension]
    return aggregate_periods(credited, settings, by="member", by_type=True, rows=rows, only=groups).assign(
        dimension=dimension)


def member_categories(values: pd.Series) -> pd.Series:
    """``members`` as a categorical Series, each member one category, the categories in name order (so the
    codes group in the table's order): worked out on the distinct values only, and grouped by its codes
    without reading a string again."""
    codes, distinct = pd.factorize(values)  # missing values: -1, which picks the NO_MEMBER appended last
    text = pd.Series(distinct, dtype="str")
    named = text.where(text.notna() & (text.str.strip() != ""), NO_MEMBER).to_numpy()
    merged, categories = pd.factorize(np.append(named, NO_MEMBER), sort=True)  # blank and empty are one member
    return pd.Series(pd.Categorical.from_codes(merged[codes], categories=pd.Index(categories, dtype="str")),
                     index=values.index, name=values.name)


def members(values: pd.Series) -> pd.Series:
    """A dimension's member per ticket: its value, ``(none)`` when empty."""
    coded = member_categories(values)
    return pd.Series(coded.cat.categories.take(coded.cat.codes.to_numpy()), index=values.index, name=values.name)
