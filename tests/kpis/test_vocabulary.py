"""Codes of small-domain texts (kpis/vocabulary.py): decoding and sorting as the texts would."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpis.vocabulary import MISSING, Vocabulary


def test_codes_decode_back_to_their_texts_and_blank_is_missing() -> None:
    vocabulary = Vocabulary()
    codes = vocabulary.encode(pd.Series(["王芳", " bo ", "", None, "王芳"], dtype="str"))
    assert codes.tolist() == [0, 1, MISSING, MISSING, 0]
    assert vocabulary.decode(codes).tolist()[:2] == ["王芳", "bo"] and vocabulary.decode(codes).isna().tolist() == [
        False, False, True, True, False]


def test_ranks_sort_codes_as_pandas_sorts_the_decoded_texts_missing_last() -> None:
    vocabulary = Vocabulary()
    # codes 0..5 in the order added; in code point order "(" comes first, capitals before small letters, and
    # 刘 (U+5218) before 王 (U+738B)
    codes = vocabulary.encode(pd.Series(["王芳", "bo", "ann", "Zed", "刘洋", "(none)"], dtype="str"))
    codes = np.append(codes, MISSING)
    by_rank = vocabulary.decode(codes[np.argsort(vocabulary.ranks()[codes], kind="stable")]).tolist()
    assert by_rank[:6] == ["(none)", "Zed", "ann", "bo", "刘洋", "王芳"] and pd.isna(by_rank[6])
    decoded = vocabulary.decode(codes)
    assert by_rank[:6] == decoded.sort_values(na_position="last").tolist()[:6]
