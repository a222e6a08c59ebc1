"""The weighted scorecard (KPIS.md 5, 量化标准).

Values are taken per engineer and period over all ticket types together (re-aggregated from the
facts, never averaged from rates). A KPI scores ``min(1, value / target)`` when higher is better,
``min(1, target / value)`` when lower is better (value 0 scores 1), and ``induced_incidents`` scores 1
at 0 and 0 otherwise. The engineer's score is the weighted mean x 100 over the KPIs with a value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpis.aggregate import KpiRows, aggregate_periods, without_ticket_types
from kpis.config import KpiSettings, ScorecardEntry
from kpis.schema import SCORECARD_COLUMNS, SCORECARD_KPI_COLUMNS, UNASSIGNED, conform

_KEYS = ["grain", "period_start", "engineer"]


def compute_scorecard(facts: pd.DataFrame, settings: KpiSettings, rows: KpiRows | None = None,
                      engineer: pd.DataFrame | None = None,
                      only: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (``scorecard``, ``scorecard_kpi``): one row per engineer and period, and its parts.

    ``engineer``: the ``kpi_engineer`` rows of the same facts and of every group (``aggregate(...,
    every_group=True)``: a group the table leaves out still counts in the engineer's totals), when already
    computed; unless a duration statistic is scored, the totals are then summed from them instead of
    aggregated again.
    ``only``: (grain, period_start, engineer) groups to compute (``engineer`` then holds their rows);
    ranks are then among those groups only, so the caller ranks again with ``ranked``.
    """
    if engineer is not None and not any(entry.kpi.endswith("_min") for entry in settings.scorecard):
        totals = without_ticket_types(engineer, "engineer", settings)
    else:
        totals = aggregate_periods(facts, settings, by="engineer", by_type=False, rows=rows, only=only)
    parts = conform(pd.concat([kpi_scores(totals, entry) for entry in settings.scorecard], ignore_index=True)
                    if settings.scorecard else pd.DataFrame(), SCORECARD_KPI_COLUMNS)
    scorecard = _engineer_scores(totals, parts)
    parts["as_of"] = scorecard["as_of"] = totals["as_of"].iloc[0] if len(totals) else pd.NaT
    return conform(scorecard, SCORECARD_COLUMNS), conform(parts, SCORECARD_KPI_COLUMNS)


def kpi_scores(totals: pd.DataFrame, entry: ScorecardEntry) -> pd.DataFrame:
    """Value, attainment and score of one configured KPI for every engineer and period."""
    value = totals[entry.kpi].astype("float64").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        if entry.kpi == "induced_incidents":
            attainment = np.where(np.isnan(value), np.nan, (value == 0).astype("float64"))
        elif entry.higher_is_better:
            attainment = np.where(entry.target == 0, 1.0, value / entry.target)
        else:
            attainment = np.where(value == 0, np.inf, entry.target / value)
    attainment = np.where(np.isnan(value), np.nan, attainment)
    score = np.minimum(1.0, attainment)
    return totals[_KEYS].assign(
        kpi=entry.kpi, value=value, target=entry.target, weight=entry.weight,
        higher_is_better=entry.higher_is_better,
        attainment=np.where(np.isinf(attainment), np.nan, attainment), score=score,
        kpi_version=totals["kpi_version"].to_numpy(),
    )


def _engineer_scores(totals: pd.DataFrame, parts: pd.DataFrame) -> pd.DataFrame:
    scored = parts[parts["score"].notna()]
    sums = scored.assign(weighted=scored["score"] * scored["weight"]).groupby(_KEYS, sort=False).agg(
        weighted=("weighted", "sum"), weight_scored=("weight", "sum"), kpis_scored=("kpi", "size"))
    table = totals[[*_KEYS, "low_sample", "kpi_version"]].merge(sums.reset_index(), on=_KEYS, how="left")
    table["score"] = table["weighted"] / table["weight_scored"] * 100
    table["kpis_scored"] = table["kpis_scored"].fillna(0).astype("int64")
    table["weight_scored"] = table["weight_scored"].fillna(0.0)
    return ranked(table.drop(columns=["weighted"]))


def ranked(scorecard: pd.DataFrame) -> pd.DataFrame:
    """``scorecard`` with ``rank`` set among the engineers of each (grain, period_start): 1 = best score.

    Unranked (null): no score, a low sample, or the unassigned pseudo-engineer. Ties share the best rank.
    """
    table = scorecard.reset_index(drop=True)
    rankable = table["score"].notna() & ~table["low_sample"].astype(bool) & (table["engineer"] != UNASSIGNED)
    ranks = table[rankable].groupby(["grain", "period_start"])["score"].rank(method="min", ascending=False)
    return table.assign(rank=ranks.reindex(table.index).astype("Int64"))
