"""Satisfaction answers -> scores 1..5 (KPIS.md 3, csat_score)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def csat_scores(satisfaction: pd.Series, satisfaction_map: Mapping[str, float]) -> pd.Series:
    """Map survey answers to scores: a mapped label gives its score, a number in 1..5 passes through.

    Returns a Float64 series, null where the answer is empty *or* cannot be mapped; use
    ``unmappable_satisfaction`` to tell the two apart (an unmappable answer is a data error).
    """
    text = satisfaction.astype("object").where(satisfaction.notna(), None)
    text = pd.Series(text, dtype="str").str.strip()
    mapped = text.map(dict(satisfaction_map)).astype("float64")
    numeric = pd.to_numeric(text, errors="coerce").astype("float64")
    numeric = numeric.where((numeric >= 1) & (numeric <= 5))
    score = np.where(np.isnan(mapped), numeric, mapped)
    return pd.Series(score, index=satisfaction.index, dtype="Float64")


def unmappable_satisfaction(satisfaction: pd.Series, satisfaction_map: Mapping[str, float]) -> pd.Series:
    """True where an answer is present but neither in the map nor a number from 1 to 5."""
    present = satisfaction.notna() & (satisfaction.astype("str").str.strip() != "")
    return present & csat_scores(satisfaction, satisfaction_map).isna()
