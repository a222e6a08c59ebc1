"""Audit-snapshot exports (``layout = "snapshot"``): one row per update, each a full copy of the ticket.

ServiceNow's incident audit export (the UCI event log) is the model: every row holds the whole ticket
as it stood after one update. The import maps every row with ``map_tickets`` (a row that cannot be
mapped is rejected on its own; the ticket keeps its good rows), orders each ticket's snapshots by
``updated_at``, then the numeric ``options.order_by`` column (e.g. ``sys_mod_count``), then file
order, and turns the history into canonical frames:

- the ticket row is the last snapshot (so ``reopen_count`` / ``reassignment_count`` are the final
  counters);
- an event for every change between consecutive snapshots of status, assignee, group, priority and
  category, at the snapshot's ``updated_at``, with the actor from ``options.actor_column``. The first
  snapshot emits the values it starts with, status included (see docs/real-data.md for why);
- optionally a ``response`` event at the first snapshot whose status is in
  ``options.response_statuses`` (canonical statuses, e.g. ``["IN_PROGRESS"]``).

With ``options.order_by`` (the snapshot's own key, e.g. ``sys_mod_count``) every event carries an
``event_id``: the snapshot's update time and key and the event's kind (``2016-05-06T22:01:00Z#3/group``),
so the same snapshot read again (a re-sent export) gives the same events, and the pipeline keeps them
once; two changes in one minute stay two events.

Options (``[sources.options]``): ``order_by`` (tie-break column, numeric), ``actor_column``,
``response_statuses``. Everything is vectorised: no Python loop runs per ticket.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from connectors.base import Batch, SourceConfig
from connectors.mapping import map_tickets, normalise_nulls, raw_json
from connectors.options import option
from kpis.errors import ConfigError
from kpis.schema import (
    EVENT_COLUMNS,
    EVENT_KINDS,
    REJECTED_COLUMNS,
    TICKET_COLUMNS,
    concat_frames,
    conform,
    empty_rejected,
)

__all__ = ["EMPTY_IS_VALUE", "SNAPSHOT_FIELDS", "change_events", "last_snapshots", "map_rows", "order_snapshots",
           "snapshot_keys", "to_batch"]

log = logging.getLogger(__name__)

# Event kind -> canonical ticket column whose changes it records.
SNAPSHOT_FIELDS: Mapping[str, str] = {
    "status": "status",
    "assignee": "assignee",
    "group": "assignment_group",
    "priority": "priority",
    "category": "category",
}
# Kinds where an empty value is a state of its own ("unassigned"), so a change to empty is an event.
# For the others an empty value means "not known here": it neither emits nor interrupts anything.
EMPTY_IS_VALUE = frozenset({"assignee", "group"})
_KIND_ORDER = {k: i for i, k in enumerate(EVENT_KINDS)}
_ROW = "__itsm_kpi_row__"  # carries each raw row's position through map_tickets


def to_batch(raw: pd.DataFrame, cfg: SourceConfig) -> Batch:
    """Snapshot rows (source column names, text values) -> ``Batch`` of last-snapshot tickets and events.

    ``rows_read`` is ``len(raw)``; every raw row is either used (it is one of its ticket's snapshots)
    or in ``rejected`` with its reason. A ticket all of whose rows are rejected is only in ``rejected``.
    """
    rows, rejected = map_rows(raw, cfg)
    rows, no_time = _require_update_time(rows, raw, cfg)
    order_by = _option_column(raw, cfg, "order_by")
    actor = _option_column(raw, cfg, "actor_column")
    ordered = order_snapshots(rows, None if order_by is None else order_by.loc[rows.index])
    responds = ordered["status"].isin(_response_statuses(cfg))
    keys = None if order_by is None else snapshot_keys(ordered["updated_at"], order_by.loc[ordered.index])
    events = change_events(ordered, None if actor is None else actor.loc[ordered.index], responds=responds,
                           snapshot_key=keys)
    tickets = last_snapshots(ordered)
    tickets = _with_first_response(tickets, events)
    events["source"] = cfg.name
    log.info("source %s: %d snapshot rows -> %d tickets, %d events, %d rejected",
             cfg.name, len(raw), len(tickets), len(events), len(rejected) + len(no_time))
    return Batch(tickets=conform(tickets, TICKET_COLUMNS), events=conform(events, EVENT_COLUMNS),
                 rejected=concat_frames([rejected, no_time], REJECTED_COLUMNS), rows_read=len(raw))


# --- mapping with row positions --------------------------------------------------------------------

def _mapped_source_columns(cfg: SourceConfig) -> list[str]:
    """The source columns ``map_tickets`` reads for ``cfg`` (identity where ``columns`` is silent)."""
    return list(dict.fromkeys(cfg.columns.get(name, name) for name in TICKET_COLUMNS))


def map_rows(raw: pd.DataFrame, cfg: SourceConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``map_tickets`` on every row, keeping each good row's position in ``raw`` as its index.

    Only the mapped columns go through ``map_tickets`` (a 36-column export maps in a third of the
    time); a rejected row is reported with the whole raw row. ``map_tickets`` returns its good rows
    re-indexed from 0, so each row's position rides along as an extra column and is read back from
    the rejected rows' JSON.
    """
    work = raw[[c for c in _mapped_source_columns(cfg) if c in raw.columns]].copy()
    work[_ROW] = np.arange(len(raw)).astype(str)
    tickets, rejected = map_tickets(work.reset_index(drop=True), cfg)
    bad = rejected["raw"].str.extract(rf'"{_ROW}":"(\d+)"\}}$', expand=False).astype("int64").to_numpy()
    good = np.ones(len(raw), dtype=bool)
    good[bad] = False
    tickets.index = pd.Index(np.flatnonzero(good))
    rejected["raw"] = raw_json(raw.iloc[bad]).to_numpy(dtype=object)
    return tickets, rejected


def _require_update_time(rows: pd.DataFrame, raw: pd.DataFrame, cfg: SourceConfig
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A snapshot without ``updated_at`` cannot be placed in its history: reject it."""
    missing = rows["updated_at"].isna()
    if not missing.any():
        return rows, empty_rejected()
    source_col = cfg.columns.get("updated_at", "updated_at")
    positions = rows.index[missing]
    rejected = pd.DataFrame({
        "source": cfg.name,
        "ticket_id": rows.loc[missing, "ticket_id"].to_numpy(dtype=object),
        "row_kind": "ticket",
        "raw": raw_json(raw.iloc[positions]).to_numpy(dtype=object),
        "reason": f"missing updated_at (source column '{source_col}'): the snapshot cannot be ordered",
    })
    return rows[~missing], conform(rejected, REJECTED_COLUMNS)



def _option_column(raw: pd.DataFrame, cfg: SourceConfig, setting: str) -> pd.Series | None:
    """The raw column named by option ``setting``, null tokens made missing (None when not set)."""
    name = option(cfg, setting)
    if name is None:
        return None
    if name not in raw.columns:
        raise ConfigError(f"sources[{cfg.name!r}].options.{setting}", f"column {name!r} is not in the file",
                          f"name one of: {', '.join(map(str, raw.columns[:12]))}")
    values = normalise_nulls(raw[[name]], cfg.null_tokens)[name]
    return values.set_axis(pd.RangeIndex(len(raw)))


def snapshot_keys(updated_at: pd.Series, order_by: pd.Series) -> pd.Series:
    """Each snapshot's identity: its update time (UTC) and its ``order_by`` value, e.g. ``...T22:01:00Z#3``.

    The time is part of it because a source's counter may repeat (5 UCI incidents repeat a
    ``sys_mod_count`` on another day); no UCI incident repeats the pair.
    """
    when = updated_at.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype("str")
    key = order_by.astype("str").str.strip().fillna("")
    return when + "#" + key.to_numpy()


def _response_statuses(cfg: SourceConfig) -> list[str]:
    """The canonical statuses (checked when the config is loaded) whose first snapshot is the response."""
    return list(option(cfg, "response_statuses"))


# --- the pure part: ordering, change detection, last row -----------------------------------------

def order_snapshots(rows: pd.DataFrame, order_by: pd.Series | None = None) -> pd.DataFrame:
    """Canonical snapshot rows -> the same rows grouped by ticket (in order of first appearance) and
    ordered within a ticket by ``updated_at`` (missing last), then ``order_by`` (numeric; unreadable
    values last), then their order in ``rows``. The index is kept.
    """
    n = len(rows)
    ticket = pd.factorize(rows["ticket_id"])[0]
    at = rows["updated_at"]
    at_key = np.where(at.isna().to_numpy(), np.iinfo("int64").max, at.to_numpy(dtype="int64", na_value=0))
    tie = pd.to_numeric(order_by, errors="coerce").to_numpy(dtype="float64", na_value=np.nan) \
        if order_by is not None else np.zeros(n)
    order = np.lexsort((np.arange(n), tie, at_key, ticket))  # last key sorts first; NaN sorts last
    return rows.iloc[order]


def _text(values: pd.Series) -> np.ndarray:
    """A column as an object array with None for missing."""
    return values.to_numpy(dtype=object, na_value=None)


def _carried_forward(values: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """Missing values replaced by the last present value of the same group (None when there is none)."""
    positions = np.arange(len(values))
    last_present = np.maximum.accumulate(np.where(pd.notna(values), positions, -1)) if len(values) else positions
    found = last_present >= group_start
    out = np.full(len(values), None, dtype=object)
    out[found] = values[last_present[found]]
    return out


def _changed(values: np.ndarray, group_start: np.ndarray, empty_is_value: bool) -> np.ndarray:
    """Per row: does the value differ from the previous snapshot of the same ticket.

    The first snapshot 'changes' from nothing when it has a value. Where an empty value means "not
    known" (``empty_is_value`` false), values are carried forward first, so A, empty, A emits once.
    """
    if not empty_is_value:
        values = _carried_forward(values, group_start)
    present = pd.notna(values)
    is_first = group_start == np.arange(len(values))
    differs = np.ones(len(values), dtype=bool)
    differs[1:] = values[1:] != values[:-1]  # object comparison: None == None, None != "x"
    if not empty_is_value:
        differs &= present
    return np.where(is_first, present, differs)


def _group_starts(ticket_ids: pd.Series) -> np.ndarray:
    """Per row of tickets grouped contiguously: the position of its ticket's first row."""
    key = pd.factorize(ticket_ids)[0]
    new = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, dtype=bool)
    return np.maximum.accumulate(np.where(new, np.arange(len(key)), 0)) if len(key) else np.zeros(0, dtype="int64")


def change_events(ordered: pd.DataFrame, actor: pd.Series | None = None,
                  kinds: Mapping[str, str] = SNAPSHOT_FIELDS, empty_is_value: Collection[str] = EMPTY_IS_VALUE,
                  responds: pd.Series | None = None, snapshot_key: pd.Series | None = None) -> pd.DataFrame:
    """Events for every change between consecutive rows of a ticket (``ordered`` as from ``order_snapshots``).

    ``kinds`` maps event kind -> column of ``ordered``; ``at`` is the row's ``updated_at``. One event per
    change with the new value (empty only for the kinds in ``empty_is_value``, where it means
    "removed"), ``actor`` (aligned with ``ordered``) and ``seq`` (row order, then kind order within a
    row). Where ``responds`` (aligned with ``ordered``) is true, each ticket's first such row also
    gets a ``response`` event. ``snapshot_key`` (aligned with ``ordered``, see ``snapshot_keys``) gives
    each event the ``event_id`` ``<snapshot key>/<kind>``.
    """
    starts = _group_starts(ordered["ticket_id"])
    base = _EventBase(_text(ordered["ticket_id"]), ordered["updated_at"].array,
                      _text(actor) if actor is not None else np.full(len(ordered), None, dtype=object),
                      None if snapshot_key is None else _text(snapshot_key))
    parts = []
    for kind, column in kinds.items():  # a handful of kinds, each one vectorised pass over all rows
        values = _text(ordered[column])
        parts.append(base.events(_changed(values, starts, kind in empty_is_value), kind, values))
    if responds is not None:
        hit = _first_true(responds.to_numpy(dtype=bool, na_value=False), starts)
        parts.append(base.events(hit, "response", np.full(len(ordered), None, dtype=object)))
    return _sequence(pd.concat(parts, ignore_index=True))


def _first_true(hit: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """Per row: is this the first true row of its group."""
    running = np.cumsum(hit)
    before_group = np.r_[0, running][group_start]  # true rows before the group's first row
    return hit & (running - before_group == 1)


@dataclass(frozen=True)
class _EventBase:
    """The columns every event of a snapshot shares, as arrays aligned with the ordered snapshots."""

    ticket_id: np.ndarray
    at: pd.api.extensions.ExtensionArray
    actor: np.ndarray
    key: np.ndarray | None = None  # each snapshot's identity (``snapshot_keys``), when the source has one

    def events(self, hit: np.ndarray, kind: str, values: np.ndarray) -> pd.DataFrame:
        """The events of one kind at the rows ``hit``."""
        n = int(hit.sum())
        ids = np.full(n, None, dtype=object) if self.key is None else self.key[hit] + f"/{kind}"
        return pd.DataFrame({  # object columns: the one conversion to ``str`` happens in conform
            "ticket_id": pd.Series(self.ticket_id[hit], dtype=object),
            "at": self.at[hit],
            "kind": pd.Series(np.full(n, kind, dtype=object), dtype=object),
            "value": pd.Series(values[hit], dtype=object),
            "actor": pd.Series(self.actor[hit], dtype=object),
            "event_id": pd.Series(ids, dtype=object),
            "_row": np.flatnonzero(hit),
            "_kind": np.full(n, _KIND_ORDER[kind]),
        })


def _sequence(events: pd.DataFrame) -> pd.DataFrame:
    """Order events by (snapshot, kind order) and number them: ``seq`` is that order."""
    order = np.lexsort((events["_kind"].to_numpy(), events["_row"].to_numpy()))
    events = events.iloc[order].drop(columns=["_row", "_kind"]).reset_index(drop=True)
    events["seq"] = np.arange(len(events), dtype="int64")
    return events


def last_snapshots(ordered: pd.DataFrame) -> pd.DataFrame:
    """The last snapshot of every ticket (``ordered`` as from ``order_snapshots``), in ticket order."""
    return ordered[~ordered["ticket_id"].duplicated(keep="last").to_numpy()]


def _with_first_response(tickets: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """``first_response_at`` from the response events where the snapshot itself has none."""
    response = events[events["kind"] == "response"].groupby("ticket_id")["at"].min()
    if response.empty:
        return tickets
    found = tickets["ticket_id"].map(response)
    return tickets.assign(first_response_at=tickets["first_response_at"].fillna(found))
