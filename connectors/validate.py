"""Quarantine of canonical rows that cannot be used (applied by the pipeline to every batch).

``validate`` checks canonical ``tickets`` and ``events`` frames, from files and REST alike, and moves
every row with a problem into ``rejected`` with its canonical row as JSON and one reason, the first
problem found. Nothing is repaired or guessed. For tickets and events separately, rows in = rows out +
rows rejected. Every check is a boolean mask over the frame; there are no row loops.

Ticket checks, in order: a required column is missing; a required value is missing; status, type or
priority is not canonical; the satisfaction answer cannot be mapped; planned_end is before
planned_start. Event checks: a required column or value is missing; the kind is unknown; a status or
priority value is not canonical; the event belongs to no ticket that survived the ticket checks.

A ticket read more than once (daily exports that repeat open tickets, a re-read REST window) is not bad
input (CONTRACT.md, ``rejected_rows``): among the usable copies of one (source, ticket_id) the newest
``updated_at`` wins (missing = oldest; a tie goes to the later row, i.e. the later file, then the later
line) and the others are *superseded*: dropped, never rejected. A superseded copy with the winner's
``updated_at`` but other content is a *conflict* the batch settled; an identical copy is not.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from connectors.mapping import RowReasons, raw_json
from kpis.csat import unmappable_satisfaction
from kpis.keys import frame_positions, ticket_keys, ticket_row_positions
from kpis.schema import (
    EVENT_COLUMNS,
    EVENT_KINDS,
    PRIORITIES,
    REJECTED_COLUMNS,
    STATUSES,
    TICKET_COLUMNS,
    TICKET_TYPES,
    Column,
    conform,
)

__all__ = ["Validated", "describe_rejections", "superseded_copies", "validate", "validate_batch"]

log = logging.getLogger(__name__)

_KEY = ["source", "ticket_id"]
_TICKET_VALUES = {"status": STATUSES, "ticket_type": TICKET_TYPES, "priority": PRIORITIES}
_EVENT_VALUES = {"status": STATUSES, "priority": PRIORITIES}


def _blank(values: pd.Series) -> pd.Series:
    """Missing, or text that is empty after stripping."""
    if pd.api.types.is_string_dtype(values) or values.dtype == object:
        return values.isna() | (values.astype("str").str.strip() == "")
    return values.isna()


def _check_required(frame: pd.DataFrame, present: set[str], columns: dict[str, Column], reasons: RowReasons) -> None:
    """A required column that is absent rejects every row; a required value that is blank, its row."""
    required = [c.name for c in columns.values() if c.required]
    for name in required:
        if name not in present:
            reasons.add(pd.Series(True, index=frame.index), f"missing column '{name}'")
    for name in required:
        reasons.add(_blank(frame[name]), f"missing {name}")


def _check_canonical(frame: pd.DataFrame, allowed: Mapping[str, tuple[str, ...]], reasons: RowReasons) -> None:
    for name, values in allowed.items():
        col = frame[name]
        reasons.add(col.notna() & ~col.isin(list(values)), f"non-canonical {name}", col)


@dataclass(frozen=True)
class Validated:
    """A batch after validation: the usable rows, the rejected ones, and the ticket copies superseded."""

    tickets: pd.DataFrame  # one row per (source, ticket_id): its newest usable copy
    events: pd.DataFrame
    rejected: pd.DataFrame
    superseded: pd.DataFrame  # one row per superseded copy: source, ticket_id, conflict (bool)


def superseded_copies(tickets: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(superseded, conflict) masks over ``tickets``: every copy but the newest of its (source, ticket_id)
    (by ``updated_at``, missing first, then position), and those of them that tie the winner's
    ``updated_at`` with other content."""
    ordered = tickets[_KEY + ["updated_at"]].assign(_pos=np.arange(len(tickets))).sort_values(
        ["updated_at", "_pos"], na_position="first", kind="stable")
    older = ordered.duplicated(_KEY, keep="last").reindex(tickets.index).to_numpy(dtype=bool)
    conflict = np.zeros(len(tickets), dtype=bool)
    if older.any():  # most batches hold one copy per ticket: nothing to compare
        conflict[older] = _ties_with_other_content(tickets[older], tickets[~older])
    return older, conflict


def _ties_with_other_content(copies: pd.DataFrame, kept: pd.DataFrame) -> np.ndarray:
    """For each superseded copy: does it share its kept copy's ``updated_at`` but not its content."""
    winners = kept.iloc[frame_positions(kept[_KEY], copies[_KEY])]
    # missing is one integer here, so two missing updated_at tie
    tie = pd.DatetimeIndex(copies["updated_at"]).asi8 == pd.DatetimeIndex(winners["updated_at"]).asi8
    differs = np.zeros(len(copies), dtype=bool)
    if tie.any():
        mine = pd.util.hash_pandas_object(copies[tie], index=False).to_numpy()
        theirs = pd.util.hash_pandas_object(winners[tie], index=False).to_numpy()
        differs[tie] = mine != theirs
    return differs


def _ticket_reasons(tickets: pd.DataFrame, present: set[str], satisfaction_map: Mapping[str, float]) -> RowReasons:
    reasons = RowReasons(tickets.index)
    _check_required(tickets, present, TICKET_COLUMNS, reasons)
    _check_canonical(tickets, _TICKET_VALUES, reasons)
    sat = tickets["satisfaction"]
    reasons.add(unmappable_satisfaction(sat, satisfaction_map), "unmappable satisfaction", sat)
    reasons.add(tickets["planned_end"] < tickets["planned_start"], "planned_end before planned_start")
    return reasons


def _unknown_ticket(events: pd.DataFrame, tickets: pd.DataFrame, known: pd.DataFrame | None) -> pd.Series:
    """True where the event's (source, ticket_id) is neither among ``tickets`` nor ``known``."""
    if events.empty:
        return pd.Series(False, index=events.index)
    keys = [tickets[["source", "ticket_id"]]]
    if known is not None and len(known):
        keys.append(known[["source", "ticket_id"]])
    known_keys = pd.concat(keys, ignore_index=True)
    # events come grouped by ticket: only the first of each run of one ticket's events is looked up (a key
    # known twice, from the batch and the raw layer, is fine: only whether it is found is read)
    found = ticket_row_positions(ticket_keys(known_keys["source"], known_keys["ticket_id"]), events["source"],
                                 events["ticket_id"])
    return pd.Series(found < 0, index=events.index)


def _event_reasons(events: pd.DataFrame, present: set[str], tickets: pd.DataFrame,
                   known: pd.DataFrame | None) -> RowReasons:
    reasons = RowReasons(events.index)
    _check_required(events, present, EVENT_COLUMNS, reasons)
    kind = events["kind"]
    reasons.add(kind.notna() & ~kind.isin(list(EVENT_KINDS)), "unknown event kind", kind)
    for event_kind, allowed in _EVENT_VALUES.items():
        value = events["value"]
        reasons.add((kind == event_kind) & value.isna(), f"missing {event_kind} value")
        reasons.add((kind == event_kind) & ~value.isin(list(allowed)), f"non-canonical {event_kind} value", value)
    reasons.add(_unknown_ticket(events, tickets, known), "event for unknown ticket")
    return reasons


def _conformed(frame: pd.DataFrame, columns: dict[str, Column]) -> tuple[pd.DataFrame, set[str]]:
    """(``frame`` conformed to ``columns`` with index 0..n-1, the canonical columns it really had)."""
    return conform(frame.reset_index(drop=True), columns), set(frame.columns)


def validate(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    rejected: pd.DataFrame,
    *,
    satisfaction_map: Mapping[str, float],
    known_tickets: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``validate_batch`` as (tickets, events, rejected): superseded copies are dropped without a count."""
    out = validate_batch(tickets, events, rejected, satisfaction_map=satisfaction_map, known_tickets=known_tickets)
    return out.tickets, out.events, out.rejected


def validate_batch(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    rejected: pd.DataFrame,
    *,
    satisfaction_map: Mapping[str, float],
    known_tickets: pd.DataFrame | None = None,
) -> Validated:
    """Quarantine unusable rows and keep the newest copy of each ticket -> ``Validated``.

    ``rejected`` comes back with the rows given plus one row per quarantined ticket or event (source,
    ticket id, row kind, the canonical row as JSON, the reason; ``run_id`` left null). ``known_tickets``
    (optional ``source``/``ticket_id`` pairs already stored) lets events of earlier tickets through.
    Ticket rows in = kept + superseded + rejected; event rows in = kept + rejected.
    """
    tickets, ticket_cols = _conformed(tickets, TICKET_COLUMNS)
    events, event_cols = _conformed(events, EVENT_COLUMNS)
    t_reasons = _ticket_reasons(tickets, ticket_cols, satisfaction_map)
    usable = tickets[t_reasons.ok.to_numpy()].reset_index(drop=True)
    older, conflict = superseded_copies(usable)
    kept = usable[~older]
    e_reasons = _event_reasons(events, event_cols, kept, known_tickets)
    out_rejected = [conform(rejected, REJECTED_COLUMNS), _rejected(tickets, t_reasons, "ticket"),
                    _rejected(events, e_reasons, "event")]
    _log(tickets, t_reasons, "ticket")
    _log(events, e_reasons, "event")
    superseded = pd.DataFrame({"source": usable["source"][older], "ticket_id": usable["ticket_id"][older],
                               "conflict": conflict[older]}).reset_index(drop=True)
    return Validated(
        tickets=conform(kept, TICKET_COLUMNS),
        events=conform(events[e_reasons.ok.to_numpy()], EVENT_COLUMNS),
        rejected=conform(pd.concat(out_rejected, ignore_index=True), REJECTED_COLUMNS),
        superseded=superseded,
    )


def _rejected(frame: pd.DataFrame, reasons: RowReasons, row_kind: str) -> pd.DataFrame:
    """Rejected rows of one frame; each keeps its own source (a batch may mix sources)."""
    bad = (~reasons.ok).to_numpy()
    rows = frame[bad]
    out = pd.DataFrame({
        "source": rows["source"],
        "ticket_id": rows["ticket_id"],
        "row_kind": row_kind,
        "raw": raw_json(rows),
        "reason": reasons.values[bad].to_numpy(),
    }, index=rows.index)
    return conform(out, REJECTED_COLUMNS)


def _log(frame: pd.DataFrame, reasons: RowReasons, row_kind: str) -> None:
    n_bad = int((~reasons.ok).sum())
    if n_bad:
        top = reasons.values.dropna().str.split(" '").str[0].value_counts().head(3)
        log.warning("%d of %d %s rows quarantined (%s)", n_bad, len(frame), row_kind,
                    ", ".join(f"{r}: {c}" for r, c in top.items()))


def describe_rejections(source: str, rejected: pd.DataFrame, limit: int) -> list[str]:
    """``source x: unmapped status 'Foo' (12 ticket rows)``, most frequent first, at most ``limit`` kinds."""
    counts = Counter(zip(rejected["reason"], rejected["row_kind"], strict=True))
    lines = [f"source {source}: {reason} ({n} {kind} row{'s' if n != 1 else ''})"
             for (reason, kind), n in counts.most_common(limit)]
    if len(counts) > limit:
        lines.append(f"source {source}: ... and {len(counts) - limit} more kinds of problem")
    return lines
