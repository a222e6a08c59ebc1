"""Approved exemptions (KPIS.md 1.4 and 3, Exemptions): which tickets the approvals exempt at an ``as_of``.

A run applies the approvals whose ``approved_at <= as_of`` (so a backfill at an earlier ``as_of`` applies what
was known then); the same (source, ticket_id, scope) approved twice applies once, since an exemption is a
flag per ticket and scope. What an applied exemption does (``compute_facts`` calls the two functions below):

- ``ticket``: a ticket that is not otherwise excluded gets ``excluded_reason = exempt``, so it is in no KPI,
  exactly as an excluded ticket (SLA verdicts, due times, first fix, diagnosis and maintenance null);
- ``response`` / ``resolution``: a ``met``, ``breached`` or ``in_progress`` verdict of that SLA becomes
  ``exempt``; a null verdict stays null, and nothing else changes (durations, policies, due times stay).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kpis.keys import ticket_keys
from kpis.schema import EXEMPT
from kpis.vocabulary import MISSING, Vocabulary

__all__ = ["Exemptions", "applicable", "exempt_verdicts", "exempted_reason", "exemptions"]


@dataclass(frozen=True)
class Exemptions:
    """Per ticket: does an applied approval exempt the whole ticket, its response SLA, its resolution SLA."""

    ticket: np.ndarray
    response: np.ndarray
    resolution: np.ndarray

    @classmethod
    def none(cls, n: int) -> Exemptions:
        """No exemption for any of ``n`` tickets."""
        nothing = np.zeros(n, dtype=bool)
        return cls(nothing, nothing, nothing)


def applicable(approvals: pd.DataFrame | None, as_of: pd.Timestamp) -> np.ndarray:
    """Which approvals a run at ``as_of`` applies: those approved at or before it (a missing time never)."""
    if approvals is None or not len(approvals):
        return np.zeros(0 if approvals is None else len(approvals), dtype=bool)
    approved = pd.to_datetime(approvals["approved_at"], utc=True)
    return (approved <= pd.Timestamp(as_of).tz_convert("UTC")).fillna(False).to_numpy(dtype=bool)


def exemptions(n: int, keys_of: Callable[[], pa.Array], approvals: pd.DataFrame | None,
               as_of: pd.Timestamp) -> Exemptions:
    """The exemptions of ``n`` tickets whose ``(source, ticket_id)`` keys ``keys_of()`` gives (see ``kpis.keys``),
    asked for only when some approval is to be looked up (10M joined keys: ~0.3 s).

    ``approvals``: rows with ``source``, ``ticket_id``, ``scope`` and ``approved_at`` (None: none); only the
    applicable ones count, each (source, ticket_id, scope) once however often it was approved.
    """
    if approvals is None or not len(approvals):
        return Exemptions.none(n)
    keys = keys_of()
    valid = approvals[applicable(approvals, as_of)]
    approved = ticket_keys(valid["source"], valid["ticket_id"])
    scope = valid["scope"].astype("str").to_numpy()
    flags = {}
    for name in ("ticket", "response", "resolution"):
        of_scope = approved.filter(pa.array(scope == name))
        flags[name] = np.asarray(pc.is_in(keys, value_set=of_scope).to_numpy(zero_copy_only=False), dtype=bool)
    return Exemptions(**flags)


def exempted_reason(excluded_reason: np.ndarray, exempt: np.ndarray, v: Vocabulary) -> np.ndarray:
    """``excluded_reason`` codes with ``exempt`` where a ticket exemption applies to a ticket not otherwise
    excluded (a cancelled or out-of-scope ticket keeps its reason)."""
    return np.where(exempt & (excluded_reason == MISSING), v.add(EXEMPT), excluded_reason)


def exempt_verdicts(verdict: np.ndarray, exempt: np.ndarray, v: Vocabulary) -> np.ndarray:
    """SLA verdict codes with ``exempt`` where the metric's exemption applies and a verdict exists (null stays
    null: a ticket without a policy, an excluded one, one with a negative duration)."""
    return np.where(exempt & (verdict != MISSING), v.add(EXEMPT), verdict)
