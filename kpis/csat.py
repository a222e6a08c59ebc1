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
    codes, answers = pd.factorize(satisfaction, use_na_sentinel=True)
    scores = np.array([_score(answer, satisfaction_map) for answer in answers] + [np.nan], dtype="float64")
    return pd.Series(scores[codes], index=satisfaction.index, dtype="Float64")


def _score(answer: object, satisfaction_map: Mapping[str, float]) -> float:
    """One distinct answer's score (a survey has few distinct answers, so this runs a handful of times)."""
    text = str(answer).strip()
    if text in satisfaction_map:
        return float(satisfaction_map[text])
    try:
        number = float(text)
    except ValueError:
        return np.nan
    return number if 1 <= number <= 5 else np.nan


def unmappable_satisfaction(satisfaction: pd.Series, satisfaction_map: Mapping[str, float]) -> pd.Series:
    """True where an answer is present but neither in the map nor a number from 1 to 5."""
    present = satisfaction.notna() & (satisfaction.astype("str").str.strip() != "")
    return present & csat_scores(satisfaction, satisfaction_map).isna()
