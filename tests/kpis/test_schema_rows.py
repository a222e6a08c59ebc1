"""``kpis.schema.rows_where``: ``frame[mask]`` column by column, Arrow columns filtered chunk by chunk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpis.schema import rows_where

STR = pd.StringDtype("pyarrow", na_value=np.nan)  # the canonical ``str`` columns
STR_NA = pd.StringDtype("pyarrow")


def chunked_text(chunks: list[list[str | None]], dtype: pd.StringDtype = STR) -> pd.api.extensions.ExtensionArray:
    """A text column of several Arrow chunks, as a table read from Parquet row groups gives."""
    return pd.array(pa.chunked_array([pa.array(c, pa.large_string()) for c in chunks]), dtype=dtype)


def every_kind(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """A frame with one column of every kind the pipeline holds, on a non-default index."""
    texts = [None if i % 5 == 0 else f"t{i % 7}" for i in range(n)]
    half = n // 2
    return pd.DataFrame({
        "text": chunked_text([texts[:half], texts[half:]]),
        "text_na": chunked_text([texts[:half], texts[half:]], STR_NA),
        "count": pd.array([None if i % 3 == 0 else i for i in range(n)], dtype="Int64"),
        "at": pd.DatetimeIndex(pd.to_datetime(rng.integers(0, 10**9, n), unit="s")).tz_localize("UTC").array,
        "flag": rng.random(n) < 0.5,
        "maybe": pd.array([None if i % 4 == 0 else bool(i % 2) for i in range(n)], dtype="boolean"),
        "ratio": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
        "member": pd.Categorical([f"m{i % 3}" for i in range(n)]),
        "other": np.array([("x", i) for i in range(n)] + [None], dtype=object)[:n],
    }, index=pd.RangeIndex(100, 100 + 2 * n, 2))


def test_the_kept_rows_by_hand() -> None:
    frame = pd.DataFrame({"id": chunked_text([["a", "b"], ["c", None, "e"]]),
                          "n": pd.array([1, None, 3, 4, 5], dtype="Int64")}, index=[10, 11, 12, 13, 14])
    kept = rows_where(frame, np.array([False, True, False, True, True]))
    assert kept["id"].tolist()[0] == "b" and pd.isna(kept["id"].iloc[1]) and kept["id"].iloc[2] == "e"
    assert kept["n"].tolist() == [pd.NA, 4, 5]
    assert kept.index.tolist() == [11, 13, 14]
    assert kept.dtypes.tolist() == [STR, pd.Int64Dtype()]


def test_equals_pandas_boolean_indexing_for_every_column_kind() -> None:
    frame = every_kind(40, np.random.default_rng(3))
    mask = np.random.default_rng(4).random(40) < 0.6
    pd.testing.assert_frame_equal(rows_where(frame, mask), frame[mask])


def test_arrow_columns_are_filtered_chunk_by_chunk() -> None:
    # pandas' own frame[mask] takes positions, which joins the chunks first: here each chunk is filtered
    frame = pd.DataFrame({"id": chunked_text([["a", "b", "c"], ["d", "e"], ["f"]])})
    kept = rows_where(frame, np.array([True, False, True, True, False, True]))
    arrow = kept["id"].array.__arrow_array__()
    assert arrow.num_chunks == 3
    assert arrow.to_pylist() == ["a", "c", "d", "f"]


def test_no_rows_no_columns_and_repeated_names() -> None:
    frame = every_kind(6, np.random.default_rng(5))
    pd.testing.assert_frame_equal(rows_where(frame, np.zeros(6, dtype=bool)), frame[np.zeros(6, dtype=bool)])
    bare = pd.DataFrame(index=[1, 2, 3])
    pd.testing.assert_frame_equal(rows_where(bare, np.array([True, False, True])), bare[[True, False, True]])
    twice = pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"])
    pd.testing.assert_frame_equal(rows_where(twice, np.array([False, True])), twice[[False, True]])


def test_every_row_kept_shares_the_columns() -> None:
    frame = every_kind(8, np.random.default_rng(6))
    kept = rows_where(frame, np.ones(8, dtype=bool))
    pd.testing.assert_frame_equal(kept, frame)
    assert np.shares_memory(kept["ratio"].to_numpy(), frame["ratio"].to_numpy())
    kept.loc[kept.index[0], "ratio"] = -1.0  # copy on write: the frame itself is not changed
    assert frame["ratio"].iloc[0] != -1.0


def test_positions_are_not_a_mask() -> None:
    frame = pd.DataFrame({"n": [1, 2, 3]})
    with pytest.raises(TypeError, match="boolean mask"):
        rows_where(frame, np.array([0, 2]))


@given(n=st.integers(min_value=0, max_value=30), seed=st.integers(min_value=0, max_value=2**32 - 1),
       share=st.floats(min_value=0, max_value=1))
def test_property_equals_pandas_boolean_indexing(n: int, seed: int, share: float) -> None:
    rng = np.random.default_rng(seed)
    frame = every_kind(n, rng)
    mask = rng.random(n) < share
    pd.testing.assert_frame_equal(rows_where(frame, mask), frame[mask])
