"""Each ticket's resolution-policy calendar and pause statuses, from the policy name its facts hold.

``ticket_facts.resolution_policy`` names the ``[[sla]]`` policy that governs a ticket's resolution (names
are unique, the config refuses two alike). Time in status is measured on that policy's calendar (KPIS.md
3.1) and the backlog's ``paused_count`` uses its pause statuses (4.2); a ticket without a policy, or whose
policy names neither, takes the default calendar and ``[kpi].pause_statuses`` (KPIS.md 3: no policy, the default calendar).
One lookup over the distinct names, then a ``take``: no Python loop over tickets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kpis.backlog import PauseSets
from kpis.calendar import CalendarColumn
from kpis.config import KpiSettings
from kpis.keys import ticket_positions
from kpis.sla import policy_calendars


def _policy_codes(policy: pd.Series, settings: KpiSettings) -> np.ndarray:
    """Per ticket, the position of its policy in ``settings.sla`` (``len(settings.sla)``: no such policy)."""
    names = pa.array([p.name for p in settings.sla], type=pa.large_string())
    text = pc.cast(pa.array(policy, from_pandas=True, type=None if len(policy) else pa.large_string()),
                   pa.large_string())
    codes = np.asarray(pc.index_in(text, value_set=names).fill_null(-1), dtype="int64")  # Arrow hashes: no Python str
    return np.where(codes < 0, len(settings.sla), codes)


def resolution_calendars(policy: pd.Series, settings: KpiSettings) -> CalendarColumn:
    """The calendar of each ticket's resolution policy (the default calendar without one), aligned with ``policy``."""
    return policy_calendars(tuple(settings.sla), _policy_codes(policy, settings), settings.default_calendar)


def resolution_pauses(policy: pd.Series, settings: KpiSettings) -> PauseSets:
    """The pause statuses of each ticket's resolution policy (``[kpi].pause_statuses`` without one)."""
    sets = [p.pause_statuses if p.pause_statuses is not None else settings.pause_statuses for p in settings.sla]
    sets.append(settings.pause_statuses)
    distinct = tuple(dict.fromkeys(tuple(s) for s in sets))
    lookup = np.array([distinct.index(tuple(s)) for s in sets], dtype="int64")
    return PauseSets(distinct, lookup[_policy_codes(policy, settings)])


def ticket_policies(tickets: pd.DataFrame, facts: pd.DataFrame) -> pd.Series:
    """Each ticket's ``resolution_policy`` from ``facts`` (any order), aligned with ``tickets`` (null: no facts)."""
    row = ticket_positions(facts, tickets)
    names = pa.array(facts["resolution_policy"], from_pandas=True, type=pa.large_string())
    taken = names.take(pa.array(row, mask=row < 0, type=pa.int64()))  # -1: no facts, a null
    return pd.Series(pd.array(taken, dtype=pd.StringDtype("pyarrow", na_value=np.nan)), index=tickets.index)
