"""Codes of small-domain texts (kpis/vocabulary.py): decoding and sorting as the texts would."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kpis.vocabulary import ABSENT, MISSING, Vocabulary, positions_in


def test_codes_decode_back_to_their_texts_and_blank_is_missing() -> None:
    vocabulary = Vocabulary()
    codes = vocabulary.encode(pd.Series(["王芳", " bo ", "", None, "王芳"], dtype="str"))
    assert codes.tolist() == [0, 1, MISSING, MISSING, 0]
    assert vocabulary.decode(codes).tolist()[:2] == ["王芳", "bo"] and vocabulary.decode(codes).isna().tolist() == [
        False, False, True, True, False]


@pytest.mark.parametrize("dtype", ["str", "string[pyarrow]", "object", "category"])
def test_codes_of_a_column_in_several_chunks_follow_first_appearance_across_the_chunks(dtype) -> None:
    # a column made of two (for str: two Arrow chunks, what a concat leaves); one code per stripped text,
    # numbered in order of first appearance over both parts; blank and missing are -1
    column = pd.concat([pd.Series(["b", None, "a"], dtype=dtype), pd.Series([" a", "", "c", "b ", "  "], dtype=dtype)],
                       ignore_index=True)
    vocabulary = Vocabulary()
    vocabulary.add("z")  # an earlier text keeps its code 0
    assert vocabulary.encode(column).tolist() == [1, MISSING, 2, 2, MISSING, 3, 1, MISSING]
    assert vocabulary.decode(np.array([0, 1, 2, 3])).tolist() == ["z", "b", "a", "c"]
    assert vocabulary.encode(column.iloc[:0]).tolist() == []
    assert vocabulary.encode(pd.Series([None, None], dtype=dtype)).tolist() == [MISSING, MISSING]


@pytest.mark.parametrize("dtype", ["str", "object", "category"])
def test_a_column_missing_everywhere_is_missing_and_only_a_str_one_stands_for_its_codes(dtype) -> None:
    """An unmapped column (missing on every row) has code -1 everywhere and adds no text; decoding its codes
    gives it back, so a ``str`` one may stand for them, as a column of texts does. Blanks are not missing:
    they are texts that decode to missing, so the column may not stand for its codes."""
    vocabulary = Vocabulary()
    codes, round_trips = vocabulary.encode_texts(pd.Series([None, None, None], dtype=dtype))
    assert codes.tolist() == [MISSING] * 3 and codes.dtype == np.int32 and round_trips == (dtype == "str")
    assert len(vocabulary.ranks()) == 1 and vocabulary.decode(codes).isna().all()  # ranks: each text's, then missing's
    blanks, round_trips = vocabulary.encode_texts(pd.Series(["", "  ", None], dtype=dtype))
    assert blanks.tolist() == [MISSING] * 3 and not round_trips


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


def test_is_one_of_finds_the_codes_of_the_texts_and_nothing_missing_or_never_seen() -> None:
    vocabulary = Vocabulary()
    codes = vocabulary.encode(pd.Series(["RESOLVED", "OPEN", None, "CLOSED", "OPEN"], dtype="str"))
    assert codes.tolist() == [0, 1, MISSING, 2, 1]

    # RESOLVED (0) and CLOSED (2) are asked for; "CANCELLED" was never seen; -1 (missing) and -2 (a never
    # seen text's code) match nothing
    hits = vocabulary.is_one_of(np.append(codes, ABSENT), ("RESOLVED", "CLOSED", "CANCELLED"))
    assert hits.tolist() == [True, False, False, True, False, False]
    assert vocabulary.is_one_of(codes, ()).tolist() == [False] * 5
    assert vocabulary.is_one_of(np.empty(0, dtype="int32"), ("OPEN",)).tolist() == []


@hsettings(max_examples=200, deadline=None)
@given(texts=st.lists(st.sampled_from(["a", "b", "c", "d", "", None]), max_size=30),
       asked=st.lists(st.sampled_from(["a", "b", "c", "d", "zz"]), max_size=5))
def test_is_one_of_equals_isin_on_the_texts_codes(texts, asked) -> None:
    """Any column and any texts asked for: the same as ``np.isin`` of the codes, and as asking the texts."""
    vocabulary = Vocabulary()
    codes = vocabulary.encode(pd.Series(texts, dtype="str"))
    wanted = vocabulary.codes(asked)

    hits = vocabulary.is_one_of(codes, asked)

    np.testing.assert_array_equal(hits, np.isin(codes, wanted[wanted >= 0]))
    assert hits.tolist() == [text in asked and text != "" for text in texts]


@pytest.mark.parametrize("dtype", ["str", "object", "category"])
def test_positions_in_a_few_texts(dtype) -> None:
    values = pd.Series(["breached", None, "met", "Met", "exempt", " met", "met"], dtype=dtype)
    # position among (met, breached, exempt); another text (case, blanks) or a missing one is -1
    assert positions_in(values, ("met", "breached", "exempt")).tolist() == [1, -1, 0, -1, 2, -1, 0]


def test_positions_in_a_column_without_any_text() -> None:
    assert positions_in(pd.Series([None, np.nan], dtype="object"), ("met",)).tolist() == [-1, -1]
    assert positions_in(pd.Series([], dtype="str"), ("met",)).tolist() == []
