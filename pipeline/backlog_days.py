"""Which rows (day, group) of the stored backlog (KPIS.md 4.2, ``kpi_backlog``) a night recomputes (DECISIONS.md
D83, D95).

A day's rows are sums, and a minimum, over the tickets counted open at the day's end. A night changes some
tickets: a new raw copy or event, an approval, or a fact the backlog reads (``excluded_reason``,
``resolution_due_at``, ``resolution_policy``). Every other ticket counts on every day
as it did when the stored rows were computed. So a stored day can only have moved where the changed
tickets, counted on their own, give other rows in their *old* version (the raw layer before the run and
the stored facts: what the stored rows were computed from) than in their *new* one: counts that differ
move the sums, and equal rows leave both the sums and the minimum as they were.

The same holds for each row on its own, a (day, engineer, ticket type, priority) cell. A night counts the
days on which the two versions differ, the last stored day and every later one up to ``as_of``'s local date
(new days appear; from that date to the last stored day when ``as_of`` went back), and compares with the stored rows only the cells that differ and every row of those
last days (``kpis.backlog_scope``: the counted days' other cells never become rows). The two small
backlogs of the changed tickets cost little; a ticket reassigned today or a survey answered does not bring
back the days it was open long ago, and a ticket whose whole history moved (a reassignment in a source
without events) brings back only its own cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kpis.aggregate import local_days
from kpis.backlog_scope import CELL, BacklogScope
from kpis.config import KpiSettings
from kpis.keys import key_hits
from kpis.schema import rows_where
from pipeline.changes import row_changes
from pipeline.compute.ops import backlog_of
from pipeline.raw import RawLayer
from pipeline.store import Stores

KEY = ["source", "ticket_id"]
#: The facts the backlog reads besides the raw rows and events (``pipeline.compute.ops.backlog_of``).
BACKLOG_FACTS = ("excluded_reason", "resolution_due_at", "resolution_policy")


@dataclass(frozen=True)
class TicketVersion:
    """One version of some tickets: their raw rows, events and facts (``BACKLOG_FACTS``)."""

    raw: RawLayer
    facts: pd.DataFrame

    def backlog(self, settings: KpiSettings, as_of: pd.Timestamp) -> pd.DataFrame:
        """Their ``kpi_backlog`` rows, every day."""
        return backlog_of(self.raw.tickets, self.raw.events, self.facts, settings, as_of)


def backlog_scope(stores: Stores, settings: KpiSettings, now: RawLayer, previous: RawLayer, facts: pd.DataFrame,
                  as_of: pd.Timestamp, changed: pd.DataFrame) -> BacklogScope | None:
    """What a night recomputes of the backlog (see the module docstring); None (every row) when nothing is
    stored yet.

    ``now`` / ``previous``: the raw layer after and before the run; ``facts``: every ticket's facts after the
    run; ``changed``: (source, ticket_id) of the tickets with a new raw copy, event or approval, or changed facts.
    """
    last_stored = _last_stored_day(stores)
    if last_stored is None:
        return None
    end = local_days(pd.Series([pd.Timestamp(as_of)]), settings.reporting_timezone)[0]
    # an earlier as_of than the last night's (a rerun with --as-of): its date on, every stored day is redone,
    # so the later ones, which it does not count, are deleted
    recent = np.arange(min(last_stored, end), max(last_stored, end) + np.timedelta64(1, "D"), dtype="datetime64[D]")
    cells = differing_cells(*_versions(stores, now, previous, facts, changed), settings, as_of)
    days = np.asarray(cells["day"]).astype("datetime64[D]")
    return BacklogScope(np.union1d(days, recent), recent, cells)


def differing_cells(old: TicketVersion, new: TicketVersion, settings: KpiSettings,
                    as_of: pd.Timestamp) -> pd.DataFrame:
    """The backlog keys (day, engineer, ticket_type, priority) whose rows differ between the two versions."""
    changes = row_changes(new.backlog(settings, as_of), old.backlog(settings, as_of), CELL)
    return pd.concat([changes.rows[CELL], changes.gone[CELL]], ignore_index=True).drop_duplicates(ignore_index=True)


def _versions(stores: Stores, now: RawLayer, previous: RawLayer, facts: pd.DataFrame,
              changed: pd.DataFrame) -> tuple[TicketVersion, TicketVersion]:
    """The old and the new version of the changed tickets (a ticket new tonight has no old version). A
    ticket that changed in nothing the backlog reads gives the same rows in both: no day differs for it."""
    keys = changed[KEY].astype("str").drop_duplicates(ignore_index=True)
    new_facts = _only(facts[[*KEY, *BACKLOG_FACTS]], keys)
    return (TicketVersion(_only_layer(previous, keys), _stored_facts(stores, keys)),
            TicketVersion(_only_layer(now, keys), new_facts))


def _stored_facts(stores: Stores, keys: pd.DataFrame) -> pd.DataFrame:
    """The stored facts (``BACKLOG_FACTS``) of ``keys``: what the stored backlog was computed from."""
    if not len(keys):
        return pd.DataFrame(columns=[*KEY, *BACKLOG_FACTS])
    wanted = pc.field("ticket_id").isin(pa.array(keys["ticket_id"].unique(), type=pa.string()))
    # not kept: the run has staged its own facts by now, so the table is read once more, and only this part
    stored = stores.read_arrow("ticket_facts", wanted, columns=[*KEY, *BACKLOG_FACTS]).to_pandas()
    return _only(stored, keys)


def _only(frame: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` whose (source, ticket_id) is one of ``keys``'."""
    return rows_where(frame, key_hits(frame[KEY], keys)).reset_index(drop=True) if len(keys) else frame.iloc[:0]


def _only_layer(layer: RawLayer, keys: pd.DataFrame) -> RawLayer:
    """The raw rows and events of ``keys``."""
    return RawLayer(_only(layer.tickets, keys), _only(layer.events, keys))


def _last_stored_day(stores: Stores) -> np.datetime64 | None:
    """The latest ``day`` in the stored backlog, None when it holds no row."""
    days = stores.read_arrow("kpi_backlog", keep=True).column("day")
    latest = pc.max(days).as_py() if len(days) else None
    return None if latest is None else np.datetime64(latest, "D")
