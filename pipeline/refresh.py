"""A nightly run's per-ticket facts: recomputed only where the input or the clock can have moved them.

When the stored facts were computed with the same fact settings (``kpis.config.facts_fingerprint``)
and cover every ticket of the raw layer, a nightly run recomputes the facts of

- tickets with a new ticket row or new events in this run (``Merged.changed_keys``);
- tickets whose facts read the clock (``as_of``): not yet resolved, not yet answered, or maintenance
  not completed with a planned end (its on-time fact becomes due when ``as_of`` passes that end);
- incidents whose ``caused_by`` names a changed ticket (the induced-incident fact looks across tickets);

and keeps every other ticket's stored facts. Otherwise it recomputes them all. Either way the result
equals ``compute_facts`` over the whole raw layer (tests/pipeline/test_refresh.py), and ``changes``
says which rows differ from the stored ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kpis import compute_facts
from kpis.config import KpiSettings
from kpis.keys import ticket_keys
from kpis.schema import DONE_STATUSES, TABLE_KEYS, TS
from pipeline.changes import RowChanges, row_changes

log = logging.getLogger(__name__)

FACT_KEY = list(TABLE_KEYS["ticket_facts"])


@dataclass(frozen=True)
class FactsRefresh:
    """Every ticket's facts after this run, and how they differ from the stored ones."""

    facts: pd.DataFrame  # one row per raw ticket; ``as_of`` is this run's on every row
    changes: RowChanges  # rows to write (new or different) and the stored versions they replace
    recomputed: int  # tickets whose facts this run computed


def refresh_facts(tickets: pd.DataFrame, events: pd.DataFrame, changed_keys: pd.DataFrame, stored: pd.DataFrame,
                  settings: KpiSettings, as_of: pd.Timestamp, *, reuse: bool) -> FactsRefresh:
    """Facts of the raw layer (``tickets``/``events``) at ``as_of``, reusing ``stored`` where ``reuse`` allows.

    ``changed_keys``: (source, ticket_id) of the tickets with a new row or new events in this run.
    ``reuse``: the stored facts were computed with these settings (the caller compares fingerprints).
    """
    if reuse:
        partial = _recompute_affected(tickets, events, changed_keys, stored, settings, as_of)
        if partial is not None:
            return partial
    facts = compute_facts(tickets, events, settings, as_of)
    return FactsRefresh(facts, row_changes(facts, stored, FACT_KEY), recomputed=len(facts))


def _recompute_affected(tickets, events, changed_keys, stored, settings, as_of) -> FactsRefresh | None:
    stored_keys = ticket_keys(stored["source"], stored["ticket_id"])
    changed = ticket_keys(changed_keys["source"], changed_keys["ticket_id"])
    stale = (_is_in(stored_keys, changed) | reads_the_clock(stored)
             | _names_a_changed_cause(stored, changed))
    affected = pc.unique(pa.concat_arrays([_flat(changed), _flat(stored_keys.filter(pa.array(stale)))]))
    recompute = _is_in(ticket_keys(tickets["source"], tickets["ticket_id"]), affected)
    if len(tickets) - int(recompute.sum()) != len(stored) - int(stale.sum()):
        log.warning("stored ticket_facts do not match the raw layer (%d facts kept for %d tickets): "
                    "recomputing every ticket's facts", len(stored) - int(stale.sum()),
                    len(tickets) - int(recompute.sum()))
        return None
    new = compute_facts(tickets[recompute], events[_is_in(ticket_keys(events["source"], events["ticket_id"]), affected)],
                        settings, as_of)
    kept = stored[~stale]
    facts = pd.concat([kept, new], ignore_index=True) if len(kept) else new
    facts["as_of"] = pd.Series(pd.Timestamp(as_of).tz_convert("UTC"), index=facts.index).astype(TS)
    log.info("recomputed the facts of %d of %d tickets (changed or clock-dependent)", len(new), len(facts))
    return FactsRefresh(facts, row_changes(new, stored[stale], FACT_KEY), recomputed=len(new))


def reads_the_clock(facts: pd.DataFrame) -> np.ndarray:
    """Facts rows that a later ``as_of`` can change: SLA clocks still running, maintenance not yet done."""
    running = facts["resolved_at"].isna().to_numpy() | facts["response_at"].isna().to_numpy()
    pending_maintenance = ((facts["ticket_type"] == "maintenance").to_numpy(dtype=bool, na_value=False)
                           & facts["planned_end"].notna().to_numpy()
                           & ~facts["status"].isin(sorted(DONE_STATUSES)).to_numpy(dtype=bool, na_value=False))
    return running | pending_maintenance


def _names_a_changed_cause(facts: pd.DataFrame, changed: pa.Array) -> np.ndarray:
    """Facts rows whose ``caused_by`` names a changed ticket of the same source."""
    hit = np.zeros(len(facts), dtype=bool)
    has_cause = facts["caused_by"].notna().to_numpy()
    if has_cause.any():
        causes = facts[has_cause]
        hit[has_cause] = _is_in(ticket_keys(causes["source"], causes["caused_by"]), changed)
    return hit


def _flat(keys: pa.Array | pa.ChunkedArray) -> pa.Array:
    return keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys


def _is_in(keys: pa.Array, value_set: pa.Array) -> np.ndarray:
    return pc.is_in(keys, value_set=value_set).to_numpy(zero_copy_only=False)
