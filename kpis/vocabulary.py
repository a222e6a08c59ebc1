"""Small-domain strings (statuses, people, categories, event values) as integer codes.

The engine compares and combines codes with numpy (``np.where``, ``==``) instead of Python strings, and
decodes them back to pandas ``str`` columns once, at the end, with an Arrow ``take``. One vocabulary is
shared by every column of a computation, so codes from events and from ticket columns mix freely.
Blank or missing text is code -1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

MISSING = -1
CODE_DTYPE = "int32"  # a computation sees far fewer than 2**31 distinct texts; half the memory of int64
ABSENT = -2  # the code of a text the vocabulary has never seen: equal to no code
DECODED_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' ``str``, as ``conform`` makes text columns


class Vocabulary:
    """A growing text <-> code dictionary."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._texts: list[str] = []

    def _add(self, text: str) -> int:
        code = self._index.get(text)
        if code is None:
            code = self._index[text] = len(self._texts)
            self._texts.append(text)
        return code

    def encode(self, values: pd.Series) -> np.ndarray:
        """Codes of a text column (surrounding blanks stripped; blank or missing -> -1)."""
        return self.encode_texts(values)[0]

    def encode_texts(self, values: pd.Series) -> tuple[np.ndarray, bool]:
        """``encode(values)``, and whether ``decode`` of those codes gives ``values`` back: a ``str`` column
        whose texts are all stripped and not blank (so that it may stand for its codes without a copy)."""
        if not values.count():  # missing everywhere (an unmapped column): nothing to number
            return np.full(len(values), MISSING, dtype=CODE_DTYPE), values.dtype == DECODED_DTYPE
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        remap = np.array([self._code_of_unique(u) for u in uniques] + [MISSING], dtype=CODE_DTYPE)
        round_trips = values.dtype == DECODED_DTYPE and all(u and u == u.strip() for u in uniques)
        return remap[codes], round_trips

    def _code_of_unique(self, value: object) -> int:
        text = str(value).strip()
        return self._add(text) if text else MISSING

    def code(self, text: str) -> int:
        """The code of ``text`` (ABSENT when never seen, which matches nothing)."""
        return self._index.get(text, ABSENT)

    def codes(self, texts: tuple[str, ...] | list[str]) -> np.ndarray:
        """The codes of several texts, for ``np.isin``."""
        return np.array([self.code(t) for t in texts], dtype="int64")

    def is_one_of(self, codes: np.ndarray, texts: tuple[str, ...] | list[str]) -> np.ndarray:
        """Where ``codes`` hold one of ``texts`` (``np.isin(codes, self.codes(texts))``; a missing or never
        seen code matches nothing): one lookup in a table over the vocabulary, ~4x faster than ``np.isin``."""
        table = np.zeros(len(self._texts) + 2, dtype=bool)  # the last two entries: codes -2 (ABSENT) and -1
        wanted = self.codes(texts)
        table[wanted[wanted >= 0]] = True
        return np.take(table, codes)

    def add(self, text: str) -> int:
        """The code of ``text``, adding it when new (for values the engine itself produces)."""
        return self._add(text)

    def ranks(self) -> np.ndarray:
        """Each code's place in text order (code point order, as pandas sorts a ``str`` column), missing last:
        ``ranks()[codes]`` sorts as the decoded texts would."""
        order = np.array(sorted(range(len(self._texts)), key=self._texts.__getitem__), dtype="int64")
        ranks = np.empty(len(self._texts) + 1, dtype="int64")
        ranks[order] = np.arange(len(order))
        ranks[-1] = len(order)  # MISSING (-1) indexes the last entry
        return ranks

    def decode(self, codes: np.ndarray) -> pd.Series:
        """Codes -> a pandas ``str`` column (-1 -> missing)."""
        dictionary = pa.array(self._texts, type=pa.large_string())
        taken = dictionary.take(pa.array(codes, mask=codes < 0, type=pa.int32()))
        return pd.Series(pd.array(taken, dtype=DECODED_DTYPE))


def positions_in(values: pd.Series, texts: tuple[str, ...], dtype: str = "int64") -> np.ndarray:
    """Each value's position in ``texts`` (in ``dtype``; -1 for another text or a missing one).

    One Arrow lookup of every value in the few texts, without numbering the column's texts first.
    """
    column = pa.array(values.array, from_pandas=True)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.large_string())  # a categorical's texts, or none at all
    found = pc.fill_null(pc.index_in(column, value_set=pa.array(texts, type=column.type)), -1)
    return found.cast(pa.from_numpy_dtype(np.dtype(dtype))).to_numpy()
