"""pipeline/compute/siphash.py: SipHash-2-4 of many texts at once equals the paper's, text by text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.util import hash_array
from siphash_reference import key_hash, siphash24

import pipeline.compute.siphash as siphash_module
from pipeline.compute.partition import PARTITION_HASH_KEY, _hashes
from pipeline.compute.siphash import siphash24 as many_siphash24

KEY = PARTITION_HASH_KEY.encode()


def test_the_papers_test_vector() -> None:
    # Appendix A: key 00 01 .. 0f, message 00 01 .. 0e (15 bytes: one block and a 7-byte tail)
    message = bytes(range(15)).decode("ascii")
    assert many_siphash24(pa.array([message]), bytes(range(16))).tolist() == [0xA129CA6149BE45E5]


def test_every_tail_length_and_several_blocks() -> None:
    texts = ["", "a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh", "abcdefghi",
             "x" * 23, "y" * 24, "z" * 41, "工单-7", "helpdesk\x1fINC-1"]
    assert many_siphash24(pa.array(texts), KEY).tolist() == [siphash24(KEY, t.encode()) for t in texts]


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.text(max_size=30), min_size=1, max_size=30))
def test_any_texts_hash_as_the_paper_says(texts: list[str]) -> None:
    assert many_siphash24(pa.array(texts), KEY).tolist() == [siphash24(KEY, t.encode()) for t in texts]


def test_texts_across_blocks_of_keys_of_different_lengths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 4 keys: some blocks hold only short texts, one text in a block runs longer than the rest."""
    monkeypatch.setattr(siphash_module, "BLOCK", 4)
    texts = ["a", "bb", "c" * 17, "d", "e" * 3, "", "f" * 9, "g" * 40, "h", "i" * 8]
    assert many_siphash24(pa.array(texts), KEY).tolist() == [siphash24(KEY, t.encode()) for t in texts]


def test_a_slice_and_chunks_hash_their_own_texts() -> None:
    texts = pa.array(["zero", "one", "two", "three", "four"])
    assert many_siphash24(texts.slice(2, 2), KEY).tolist() == [siphash24(KEY, b"two"), siphash24(KEY, b"three")]
    chunked = pa.chunked_array([texts.slice(0, 2), texts.slice(3)])
    assert many_siphash24(chunked, KEY).tolist() == [siphash24(KEY, t) for t in (b"zero", b"one", b"three", b"four")]


def test_missing_texts_and_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="missing"):
        many_siphash24(pa.array(["a", None]), KEY)
    with pytest.raises(ValueError, match="16-byte"):
        many_siphash24(pa.array(["a"]), b"short")


@settings(max_examples=30, deadline=None)
@given(texts=st.lists(st.text(max_size=20), min_size=1, max_size=20))
def test_partition_hashes_are_pandas_hash_array(texts: list[str]) -> None:
    """The engine's partition hashes are what pandas' ``hash_array`` gives, so partitions stay where they were."""
    keys = pa.array(texts, pa.large_string())
    expected = hash_array(np.array(texts, dtype=object), encoding="utf8", hash_key=PARTITION_HASH_KEY,
                          categorize=False)
    assert _hashes(keys).tolist() == expected.tolist()


def test_a_ticket_key_hashes_as_documented() -> None:
    keys = pa.array(["helpdesk\x1fINC-1", "jira\x1f工单-7"], pa.large_string())
    assert _hashes(keys).tolist() == [key_hash("helpdesk", "INC-1"), key_hash("jira", "工单-7")]


def test_a_missing_key_is_hashed_as_pandas_hashes_it() -> None:
    keys = pa.array(["s\x1f1", None], pa.large_string())
    expected = hash_array(pd.array(["s\x1f1", None], dtype=object).to_numpy(), encoding="utf8",
                          hash_key=PARTITION_HASH_KEY, categorize=False)
    assert _hashes(keys).tolist() == expected.tolist()
