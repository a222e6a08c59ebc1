"""A run's approved exemptions (KPIS.md 1.4): read new approvals files, keep the valid approvals in the store,
hand them to the facts, and say which tickets they change.

    raw_adjustments   (Parquet)     every usable approval of every file read, one per (file, source, ticket_id, scope)
    adjustment_files  (Parquet)     each approvals file read, with the checksum of the version read
    adjustments       (both stores) the approvals in effect: per (source, ticket_id, scope) the earliest approval,
                                    and whether this run applied it (approved_at <= as_of, the ticket exists)

Files (DECISIONS.md D47): each file is read once per version (path and SHA-256, like a source's daily
exports). A changed file is read again and its approvals replace those of its earlier version, so a row
deleted from the sheet withdraws that approval; a file that disappears keeps its approvals (archiving a
month's sheet withdraws nothing). The approvals are re-applied from the store by every run, nightly or
backfill, at its own ``as_of``: a backfill at an earlier ``as_of`` applies only what was approved by then.

Changes: a nightly run recomputes the facts of the tickets whose ``adjustments`` row is new, changed or gone,
``applied`` included, so an approval dated after one night's ``as_of`` is applied on the first night after it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pandas as pd

from connectors.adjustments import ApprovalsRead, read_approvals
from kpis.exemptions import applicable
from kpis.keys import key_hits
from kpis.schema import (
    ADJUSTMENT_COLUMNS,
    REJECTED_COLUMNS,
    STORED_ADJUSTMENT_COLUMNS,
    TABLE_KEYS,
    concat_frames,
    conform,
)
from pipeline.changes import row_changes
from pipeline.settings import Settings
from pipeline.store import Replacement, Stores
from pipeline.store.schema import ADJUSTMENT_FILE_COLUMNS

__all__ = ["RunApprovals", "effective_approvals", "run_approvals"]

log = logging.getLogger(__name__)

TICKET = ["source", "ticket_id"]
KEY = list(TABLE_KEYS["adjustments"])


@dataclasses.dataclass(frozen=True)
class RunApprovals:
    """What a run does with the approvals: the ``adjustments`` rows it applies from, what it writes, and the
    tickets whose facts the approvals changed."""

    approvals: pd.DataFrame  # every ``adjustments`` row after this run (STORED_ADJUSTMENT_COLUMNS)
    replacements: list[Replacement]  # raw_adjustments, adjustment_files, adjustments
    changed_keys: pd.DataFrame  # (source, ticket_id) with a new, changed or withdrawn approval

    def widened(self, merged: Any) -> Any:
        """``merged`` (a ``pipeline.run.Merged``) with these tickets added to its ``changed_keys``, so a nightly
        run recomputes their facts; call it after the raw layer's replacements are made (they use the keys)."""
        keys = pd.concat([merged.changed_keys[TICKET], self.changed_keys], ignore_index=True).drop_duplicates()
        return dataclasses.replace(merged, changed_keys=keys.reset_index(drop=True))


def run_approvals(settings: Settings, stores: Stores, as_of: pd.Timestamp, merged: Any, pulled: Any,
                  summary: Any, run_id: str) -> RunApprovals:
    """Read the approvals files not read before, check them against the raw layer ``merged.tickets``, and make
    this run's ``adjustments``. Rejected rows join ``pulled.rejected``; ``summary`` counts the rows read and
    rejected. ``AdjustmentsError`` (nothing written) when a file cannot be read at all."""
    stored_raw = stores.read("raw_adjustments", keep=True)
    read = _read(settings, stores, merged.tickets[TICKET])
    raw = concat_frames([stored_raw[~stored_raw["file"].isin([f.file for f in read.files])], read.approvals],
                        ADJUSTMENT_COLUMNS)
    table = effective_approvals(raw, merged.tickets[TICKET], as_of)
    changes = row_changes(table, stores.read("adjustments", keep=True), KEY)
    changed = pd.concat([changes.rows[TICKET], changes.before[TICKET], changes.gone[TICKET]], ignore_index=True)
    _count(read, pulled, summary)
    if len(changes.rows) or len(changes.gone):
        log.info("approvals: %d in effect (%d applied); %d new, changed or withdrawn", len(table),
                 int(table["applied"].sum()), len(changes.rows) + len(changes.gone))
    return RunApprovals(table, _replacements(read, changes, run_id), changed.drop_duplicates().reset_index(drop=True))


def effective_approvals(raw: pd.DataFrame, tickets: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The ``adjustments`` rows: per (source, ticket_id, scope) the earliest approval of any file (ties: the
    first file by path), and whether a run at ``as_of`` applies it (``kpis.exemptions.applicable``, and the
    ticket is in ``tickets``)."""
    ordered = raw.sort_values(["approved_at", "file"], kind="stable")
    table = ordered.drop_duplicates(KEY, keep="first").sort_values(KEY, ignore_index=True)
    exists = key_hits(table[TICKET].astype("str"), tickets[TICKET].astype("str"))
    table = table.assign(applied=applicable(table, as_of) & exists, as_of=pd.Timestamp(as_of).tz_convert("UTC"))
    return conform(table, STORED_ADJUSTMENT_COLUMNS)


def _read(settings: Settings, stores: Stores, known: pd.DataFrame) -> ApprovalsRead:
    """The approvals files not read before (none without ``[adjustments]``: the stored approvals still apply)."""
    cfg = settings.adjustments
    if cfg is None:
        return ApprovalsRead(conform(pd.DataFrame(), ADJUSTMENT_COLUMNS), conform(pd.DataFrame(), REJECTED_COLUMNS))
    files = stores.read("adjustment_files", keep=True)
    seen = set(files["file"].astype("str") + ":" + files["sha256"].astype("str"))
    return read_approvals(cfg, tuple(s.name for s in settings.sources), known, skip=seen)


def _count(read: ApprovalsRead, pulled: Any, summary: Any) -> None:
    """Rejected approvals join the run's rejected rows; the run's counters include the approvals files."""
    pulled.rejected = concat_frames([pulled.rejected, read.rejected], REJECTED_COLUMNS)
    summary.rows_read += read.rows_read
    summary.rows_rejected += len(read.rejected)
    reasons = read.rejected["reason"].astype("str").str.replace(r"\s*'.*$", "", regex=True)
    for reason, n in reasons.value_counts().items():
        summary.rejected_by_reason[str(reason)] = summary.rejected_by_reason.get(str(reason), 0) + int(n)


def _replacements(read: ApprovalsRead, changes: Any, run_id: str) -> list[Replacement]:
    """The raw approvals of the files read (replacing their earlier versions'), the files, the changed rows."""
    files = conform(pd.DataFrame([dataclasses.asdict(f) for f in read.files], columns=list(ADJUSTMENT_FILE_COLUMNS))
                    .assign(run_id=run_id), ADJUSTMENT_FILE_COLUMNS)
    return [
        Replacement("raw_adjustments", read.approvals, files[["file"]]),
        Replacement("adjustment_files", files, files[["file"]]),
        Replacement("adjustments", changes.rows, changes.gone),
    ]
