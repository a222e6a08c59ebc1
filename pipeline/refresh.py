"""A nightly run's per-ticket facts: recomputed only where the input or the clock can have moved them.

When the stored facts were computed with the same fact settings (``kpis.config.facts_fingerprint``)
and cover every ticket of the raw layer, a nightly run recomputes the facts of

- tickets with a new ticket row or new events in this run (``Merged.changed_keys``);
- tickets whose facts the clock (``as_of``) can have moved since the stored facts were computed
  (``reads_the_clock``). When that earlier ``as_of`` is known (the last run was a nightly one, which leaves
  every stored fact computed at its ``as_of``) and this run's is not earlier, these are the SLA clocks still
  in progress whose due time this ``as_of`` reaches, the maintenance whose planned end falls between the two,
  and every ticket with an event after the earlier ``as_of`` (the priority in effect at ``as_of`` picks an
  open metric's policy). Otherwise every ticket not yet resolved or not yet answered, and maintenance not
  completed with a planned end (DECISIONS.md D97);
- incidents whose ``caused_by`` names a changed ticket (the induced-incident fact looks across tickets);
- the tickets that any of those incidents names (so an incident recomputed for any reason is computed
  beside its maintenance ticket: the one rule that reads another ticket, DECISIONS.md D30);

and keeps every other ticket's stored facts. Otherwise it recomputes them all. Either way the result
equals ``compute_facts`` over the whole raw layer (tests/pipeline/test_refresh.py), and ``changes``
says which rows differ from the stored ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kpis import compute_facts
from kpis.config import KpiSettings
from kpis.keys import join_keys, ticket_keys
from kpis.schema import DONE_STATUSES, TABLE_KEYS, TICKET_FACT_COLUMNS, TS, Column, rows_where
from kpis.status_time import CodedHistory
from pipeline.changes import RowChanges, row_changes
from pipeline.store.parquet import to_arrow, to_pandas

log = logging.getLogger(__name__)

FACT_KEY = list(TABLE_KEYS["ticket_facts"])
#: (tickets, events, settings, as_of, approvals) -> the facts and the history they read, if any
WholeFactsFunction = Callable[..., tuple[pd.DataFrame, CodedHistory | None]]


@dataclass(frozen=True)
class FactsRefresh:
    """Every ticket's facts after this run, and how they differ from the stored ones."""

    facts: pd.DataFrame  # one row per raw ticket (the columns asked for); ``as_of`` is this run's on every row
    changes: RowChanges  # rows to write (new or different) and the stored versions they replace
    recomputed: int  # tickets whose facts this run computed
    history: CodedHistory | None = None  # the raw layer's history, when every fact was computed in one piece


def refresh_facts(tickets: pd.DataFrame, events: pd.DataFrame, changed_keys: pd.DataFrame, stored: pa.Table,
                  settings: KpiSettings, as_of: pd.Timestamp, *, reuse: bool,
                  columns: Sequence[str] | None = None, approvals: pd.DataFrame | None = None,
                  facts_of: Callable[..., pd.DataFrame] = compute_facts,
                  stored_as_of: pd.Timestamp | None = None, whole_facts_of: WholeFactsFunction | None = None
                  ) -> FactsRefresh:
    """Facts of the raw layer (``tickets``/``events``) at ``as_of``, reusing ``stored`` where ``reuse`` allows.

    ``changed_keys``: (source, ticket_id) of the tickets with a new row or new events in this run.
    ``stored``: the stored ``ticket_facts`` as Arrow (as read, so the rows kept are never copied to pandas twice).
    ``reuse``: the stored facts were computed with these settings (the caller compares fingerprints).
    ``columns``: the columns ``facts`` holds (every column when None); ``changes`` always has them all.
    ``approvals``: the approved exemptions ``compute_facts`` applies (the tickets whose approvals changed
    must be among ``changed_keys``: pipeline/approvals.py).
    ``facts_of``: what computes facts, ``compute_facts``' signature (the ``[compute]`` engine: pipeline/compute).
    ``stored_as_of``: the ``as_of`` every stored fact was computed at, when known (the last run was nightly).
    ``whole_facts_of``: what computes every ticket's facts when none is reused, with the history they read
    when it has one (``pipeline.compute.facts_with_history``; the ops tables then share it); None: ``facts_of``.
    """
    wanted = {c: TICKET_FACT_COLUMNS[c] for c in (columns or TICKET_FACT_COLUMNS)}
    if reuse:
        as_of = pd.Timestamp(as_of)
        since = stored_as_of if stored_as_of is not None and stored_as_of <= as_of else None
        partial = _recompute_affected(tickets, events, changed_keys, stored, settings, as_of, since, wanted,
                                      approvals, facts_of)
        if partial is not None:
            return partial
    facts, history = (whole_facts_of or _without_history(facts_of))(tickets, events, settings, as_of, approvals)
    changes = row_changes(facts, to_pandas(stored, TICKET_FACT_COLUMNS), FACT_KEY)
    return FactsRefresh(facts if columns is None else facts[list(wanted)], changes, recomputed=len(facts),
                        history=history)


def _without_history(facts_of: Callable[..., pd.DataFrame]) -> WholeFactsFunction:
    return lambda *args: (facts_of(*args), None)


def _recompute_affected(tickets, events, changed_keys, stored: pa.Table, settings, as_of: pd.Timestamp,
                        since: pd.Timestamp | None, wanted: dict[str, Column],
                        approvals: pd.DataFrame | None = None,
                        facts_of: Callable[..., pd.DataFrame] = compute_facts) -> FactsRefresh | None:
    """``since``: the ``as_of`` of the stored facts when known and not after this run's (else None)."""
    stored_keys = join_keys([stored["source"], stored["ticket_id"]])
    changed = ticket_keys(changed_keys["source"], changed_keys["ticket_id"])
    if since is not None:
        changed = pc.unique(pa.concat_arrays([changed, _with_events_after(events, since)]))
    stale = (_is_in(stored_keys, changed) | reads_the_clock(stored, since, as_of)
             | _names_a_changed_cause(stored, changed))
    affected = pc.unique(pa.concat_arrays([changed, stored_keys.filter(pa.array(stale))]))
    raw_keys = ticket_keys(tickets["source"], tickets["ticket_id"])
    affected = pc.unique(pa.concat_arrays([affected, _causes(tickets, _is_in(raw_keys, affected))]))
    stale = _is_in(stored_keys, affected)
    stale_mask = pa.array(stale)
    recompute = _is_in(raw_keys, affected)
    kept = stored.num_rows - int(stale.sum())
    if len(tickets) - int(recompute.sum()) != kept:
        log.warning("stored ticket_facts do not match the raw layer (%d facts kept for %d tickets): "
                    "recomputing every ticket's facts", kept, len(tickets) - int(recompute.sum()))
        return None
    new = _facts_of(tickets, events, raw_keys, recompute, settings, as_of, approvals, facts_of)
    kept_rows = stored.select(list(wanted)).filter(pc.invert(stale_mask))  # only the columns asked for: 1M rows
    facts = to_pandas(pa.concat_tables([kept_rows, to_arrow(new[list(wanted)], wanted)]), wanted)
    if "as_of" in wanted:
        facts["as_of"] = pd.Series(pd.Timestamp(as_of).tz_convert("UTC"), index=facts.index).astype(TS)
    log.info("recomputed the facts of %d of %d tickets (changed or clock-dependent)", len(new), len(facts))
    before = to_pandas(stored.filter(stale_mask), TICKET_FACT_COLUMNS)
    return FactsRefresh(facts, row_changes(new, before, FACT_KEY), recomputed=len(new))


def _facts_of(tickets: pd.DataFrame, events: pd.DataFrame, keys: pa.Array, recompute: np.ndarray,
              settings: KpiSettings, as_of: pd.Timestamp, approvals: pd.DataFrame | None,
              facts_of: Callable[..., pd.DataFrame] = compute_facts) -> pd.DataFrame:
    """The facts of the tickets ``recompute`` marks, computed with the maintenance tickets their ``caused_by``
    names (read, not returned): without them an induced incident would lose its ``induced_incident``.
    ``keys``: the tickets' ``ticket_keys``, as the caller built them (10M tickets: ~0.5 s to build again)."""
    chosen = rows_where(tickets, recompute)
    read = recompute | _is_in(keys, ticket_keys(chosen["source"], chosen["caused_by"]).drop_null())
    of_read = _is_in(ticket_keys(events["source"], events["ticket_id"]), keys.filter(pa.array(read)))
    facts = facts_of(rows_where(tickets, read), rows_where(events, of_read), settings, as_of, approvals)
    wanted = _is_in(ticket_keys(facts["source"], facts["ticket_id"]), keys.filter(pa.array(recompute)))
    return rows_where(facts, wanted).reset_index(drop=True)


def reads_the_clock(facts: pa.Table, since: pd.Timestamp | None = None,
                    until: pd.Timestamp | None = None) -> np.ndarray:
    """Facts rows that moving ``as_of`` can change, other than through an event after ``since``.

    Without ``since``/``until``: every row whose SLA clocks still run and every maintenance ticket not yet done.
    With them (the rows were computed at ``as_of`` = ``since``, and ``until`` >= ``since``): only the rows a
    move from ``since`` to ``until`` can change. An open metric's elapsed time never shrinks as ``as_of``
    grows, so ``breached`` stays; ``in_progress`` turns ``breached`` only once ``as_of`` passes the due time
    (none: the clock stopped before the target). Maintenance becomes due when ``as_of`` passes its planned end.
    """
    pending_maintenance = pc.and_(
        pc.and_(pc.equal(facts["ticket_type"], "maintenance").fill_null(False), pc.is_valid(facts["planned_end"])),
        pc.invert(pc.is_in(facts["status"], value_set=pa.array(sorted(DONE_STATUSES)))))
    if since is None or until is None:
        running = pc.or_(pc.is_null(facts["resolved_at"]), pc.is_null(facts["response_at"]))
        return _numpy(pc.or_(running, pending_maintenance))
    reached = pc.or_(_due_by(facts, "response", until), _due_by(facts, "resolution", until))
    end = facts["planned_end"]
    ends_between = pc.and_(pc.greater_equal(end, _scalar(since - _EDGE, end)),
                           pc.less(end, _scalar(until + _EDGE, end))).fill_null(False)
    return _numpy(pc.or_(reached, pc.and_(pending_maintenance, ends_between)))


#: Slack around the instants compared: a due time is a whole second, the SLA verdict compares float seconds.
_EDGE = pd.Timedelta(minutes=1)


def _due_by(facts: pa.Table, metric: str, until: pd.Timestamp) -> pa.ChunkedArray:
    """Rows whose ``metric`` is ``in_progress`` and due by ``until`` (a missing due time never comes)."""
    due = facts[f"{metric}_due_at"]
    in_progress = pc.equal(facts[f"{metric}_sla"], "in_progress").fill_null(False)
    return pc.and_(in_progress, pc.less(due, _scalar(until + _EDGE, due)).fill_null(False))


def _scalar(at: pd.Timestamp, like: pa.ChunkedArray) -> pa.Scalar:
    return pa.scalar(pd.Timestamp(at).tz_convert("UTC").to_pydatetime(), type=like.type)


def _with_events_after(events: pd.DataFrame, since: pd.Timestamp) -> pa.Array:
    """Keys of the tickets with an event after ``since``: the priority in effect at ``as_of`` can differ."""
    later = events[(events["at"] > since).to_numpy(dtype=bool, na_value=False)]
    return ticket_keys(later["source"], later["ticket_id"])


def _causes(tickets: pd.DataFrame, rows: np.ndarray) -> pa.Array:
    """The keys of the tickets that the ``rows`` of ``tickets`` name in ``caused_by`` (same source)."""
    named = rows_where(tickets, rows & tickets["caused_by"].notna().to_numpy())
    return ticket_keys(named["source"], named["caused_by"]).cast(pa.large_string())


def _names_a_changed_cause(facts: pa.Table, changed: pa.Array) -> np.ndarray:
    """Facts rows whose ``caused_by`` names a changed ticket of the same source."""
    has_cause = _numpy(pc.is_valid(facts["caused_by"]))
    hit = np.zeros(facts.num_rows, dtype=bool)
    if has_cause.any():
        causes = facts.filter(pa.array(has_cause))
        hit[has_cause] = _is_in(join_keys([causes["source"], causes["caused_by"]]), changed)
    return hit


def _numpy(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def _is_in(keys: pa.Array, value_set: pa.Array) -> np.ndarray:
    return _numpy(pc.is_in(keys, value_set=value_set))
