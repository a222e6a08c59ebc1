"""Approved exemptions (KPIS.md 1.4) from the files that ``[adjustments]`` names: CSV, Excel or JSON.

Each file is read with the file sources' machinery (``connectors.files``: encodings, ``.gz``, bad lines
quarantined, every header the config names checked) and mapped like a source: ``columns`` says which header
holds each field, ``scope_map`` translates the file's scope labels (``整单`` -> ``ticket``), ``approved_at``
without an offset is wall-clock time in ``timezone``. A row that cannot be used goes to ``rejected_rows``
(``row_kind = "adjustment"``) with the first reason found; it is never applied:

    missing source / unknown source 'x'   (the source column is needed when several sources are configured)
    missing ticket_id / unknown ticket 'x'   (a ticket the raw layer does not hold)
    missing scope / unknown scope 'x'     (neither a scope_map label nor response / resolution / ticket)
    missing reason / missing approved_by / missing approved_at
    unparseable approved_at 'x' / approved_at out of range 1970..2099 'x' / no UTC offset in approved_at 'x'

A file that cannot be read at all (a corrupt workbook, a header the config names missing), and a file whose
times all lack an offset without ``timezone``, raise ``AdjustmentsError``: KPIs computed without the approvals
would be wrong. The same (source, ticket_id, scope) twice in one file is one approval, the earliest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from connectors.base import DEFAULT_NULL_TOKENS, SourceConfig
from connectors.errors import AdjustmentsError
from connectors.files import FileRefused, file_digest, lines_rejected, matching_files, read_export
from connectors.mapping import RowReasons, normalise_nulls, raw_json, read_timestamps
from kpis.keys import key_hits
from kpis.schema import ADJUSTMENT_COLUMNS, EXEMPTION_SCOPES, REJECTED_COLUMNS, concat_frames, conform

__all__ = ["APPROVALS", "ApprovalFile", "ApprovalsConfig", "ApprovalsRead", "approval_files", "read_approvals"]

log = logging.getLogger(__name__)

#: ``rejected_rows.source`` of a rejected approval (its row_kind is ``adjustment``).
APPROVALS = "adjustments"
_FORMATS = ("csv", "excel", "json", "ndjson")
_KEY = ["source", "ticket_id", "scope"]


class ApprovalsConfig(Protocol):
    """What reading approvals needs of ``[adjustments]`` (``pipeline.settings.AdjustmentsSettings``)."""

    path: str
    timezone: str | None
    columns: Mapping[str, str]
    scope_map: Mapping[str, str]


@dataclass(frozen=True)
class ApprovalFile:
    """One approvals file read: its path (as the glob found it), checksum and row counts."""

    file: str
    sha256: str
    rows_read: int
    rows_rejected: int

    @property
    def key(self) -> str:
        """What identifies this version of the file: ``path:sha256``."""
        return f"{self.file}:{self.sha256}"


@dataclass
class ApprovalsRead:
    """What reading the new approvals files gave."""

    approvals: pd.DataFrame  # ADJUSTMENT_COLUMNS: the usable approvals, one per (file, source, ticket_id, scope)
    rejected: pd.DataFrame  # rejected_rows
    files: list[ApprovalFile] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        """Rows read (data rows and unreadable lines): used + rejected."""
        return sum(f.rows_read for f in self.files)


def approval_files(pattern: str) -> list[Path]:
    """The approvals files ``path`` names (a file, a glob or a folder); none yet is a warning, not an error."""
    found = matching_files(pattern, _FORMATS)
    if not found:
        log.warning("adjustments.path %r names no CSV, Excel or JSON file yet: no approvals read", pattern)
    return found


def read_approvals(cfg: ApprovalsConfig, sources: tuple[str, ...], known: pd.DataFrame,
                   skip: Iterable[str] = ()) -> ApprovalsRead:
    """Read every approvals file whose ``path:sha256`` is not in ``skip``, and check each row.

    ``sources``: the configured source names; ``known``: (source, ticket_id) of every ticket the raw layer
    holds (an approval of another ticket is rejected). Raises ``AdjustmentsError`` for a file that cannot be
    read at all, naming it.
    """
    skip = set(skip)
    approvals, rejected, files = [], [], []
    for path in approval_files(cfg.path):
        digest = _digest(path)
        if f"{path}:{digest}" in skip:
            continue
        good, bad, rows_read = _read_file(path, cfg, sources, known)
        approvals.append(good)
        rejected.append(bad)
        files.append(ApprovalFile(str(path), digest, rows_read, len(bad)))
        log.info("adjustments: %s: %d approvals, %d rows rejected", path, len(good), len(bad))
    return ApprovalsRead(concat_frames(approvals, ADJUSTMENT_COLUMNS), concat_frames(rejected, REJECTED_COLUMNS),
                         files)


def _digest(path: Path) -> str:
    try:
        return file_digest(path)
    except OSError as e:
        raise AdjustmentsError(path, f"{path} cannot be read ({e.strerror or e}); check adjustments.path") from None


def _file_config(path: Path, cfg: ApprovalsConfig) -> SourceConfig:
    """The file machinery's view of the approvals: a file source named ``adjustments``."""
    return SourceConfig(name=APPROVALS, kind="csv", path=str(path), timezone=cfg.timezone,
                        columns=dict(cfg.columns))


def _headers(cfg: ApprovalsConfig, sources: tuple[str, ...]) -> dict[str, str]:
    """Header -> the setting naming it, for every header a file must have (``source`` with several sources)."""
    needed = [name for name in ADJUSTMENT_COLUMNS if name != "file" and (name != "source" or len(sources) > 1)]
    return {cfg.columns.get(name, name): f"adjustments.columns.{name}" for name in needed}


def _read_file(path: Path, cfg: ApprovalsConfig, sources: tuple[str, ...],
               known: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """One file -> (approvals, rejected rows, rows read); ``AdjustmentsError`` when it cannot be read at all.

    Rows read = data rows + unreadable lines; a repeated approval is read and used (as one approval)."""
    source_cfg = _file_config(path, cfg)
    try:
        table = read_export(path, source_cfg, _headers(cfg, sources))
    except FileRefused as e:
        raise AdjustmentsError(path, f"file {path} cannot be used: {e.reason}; the run stops, as KPIs without "
                                     "its approvals would be wrong") from None
    except OSError as e:
        raise AdjustmentsError(path, f"{path} cannot be read ({e.strerror or e})") from None
    unreadable = lines_rejected(APPROVALS, path, table.bad_lines, "adjustment")
    rows_read = len(table.frame) + len(table.bad_lines)
    if not len(table.frame):
        return conform(pd.DataFrame(), ADJUSTMENT_COLUMNS), unreadable, rows_read
    mapped, reasons = _mapped(table.frame, source_cfg, cfg, sources, known)
    ok = reasons.ok.to_numpy()
    rejected = _rejected(table.frame, path, reasons, mapped["ticket_id"])
    good = _earliest_per_key(mapped[ok].assign(file=str(path)))
    return conform(good, ADJUSTMENT_COLUMNS), concat_frames([unreadable, rejected], REJECTED_COLUMNS), rows_read


def _mapped(raw: pd.DataFrame, source_cfg: SourceConfig, cfg: ApprovalsConfig, sources: tuple[str, ...],
            known: pd.DataFrame) -> tuple[pd.DataFrame, RowReasons]:
    """The rows in canonical columns, and the first problem of each row."""
    norm = normalise_nulls(raw, DEFAULT_NULL_TOKENS)
    reasons = RowReasons(norm.index)

    def column(name: str) -> pd.Series:
        header = cfg.columns.get(name, name)
        return norm[header] if header in norm.columns else pd.Series(None, index=norm.index, dtype="str")

    source = column("source")
    if len(sources) == 1:
        source = source.fillna(sources[0])
    reasons.add(source.isna(), "missing source")
    reasons.add(~source.isin(sources), "unknown source", source)
    ticket_id = column("ticket_id")
    reasons.add(ticket_id.isna(), "missing ticket_id")
    scope = _scope(column("scope"), cfg.scope_map, reasons)
    for name in ("reason", "approved_by"):
        reasons.add(column(name).isna(), f"missing {name}")
    approved_at = _approved_at(column("approved_at"), source_cfg, reasons)
    frame = pd.DataFrame({"source": source, "ticket_id": ticket_id, "scope": scope, "reason": column("reason"),
                          "approved_by": column("approved_by"), "approved_at": approved_at}, index=norm.index)
    checkable = reasons.ok & frame["source"].notna() & frame["ticket_id"].notna()
    unknown = pd.Series(False, index=norm.index)
    if checkable.any():
        unknown[checkable] = ~key_hits(frame.loc[checkable, ["source", "ticket_id"]].astype("str"),
                                       known[["source", "ticket_id"]].astype("str"))
    reasons.add(unknown, "unknown ticket", ticket_id)
    return frame, reasons


def _scope(values: pd.Series, scope_map: Mapping[str, str], reasons: RowReasons) -> pd.Series:
    """The file's scope labels through ``scope_map``; the canonical names pass as they are."""
    mapped = values.map(dict(scope_map)).astype("object")  # float64 when no label matched
    scope = mapped.where(mapped.notna(), values).astype("str")
    reasons.add(values.isna(), "missing scope")
    reasons.add(~scope.isin(EXEMPTION_SCOPES), "unknown scope", values)
    return scope.where(scope.isin(EXEMPTION_SCOPES))


def _approved_at(values: pd.Series, source_cfg: SourceConfig, reasons: RowReasons) -> pd.Series:
    """``approved_at`` as UTC; naive times are in ``adjustments.timezone`` (all naive without one: an error)."""
    reasons.add(values.isna(), "missing approved_at")
    stamps = read_timestamps(values, source_cfg)
    if source_cfg.timezone is None and not stamps.has_offsets and stamps.no_offset.any():
        example = str(values[stamps.no_offset.to_numpy()].iloc[0])
        raise AdjustmentsError(source_cfg.path, f"{source_cfg.path}: approved_at has no UTC offset (e.g. {example!r}) "
                               "and adjustments.timezone is not set; set it, e.g. timezone = \"Asia/Shanghai\"")
    reasons.add(stamps.unparseable, "unparseable approved_at", values)
    reasons.add(stamps.out_of_range, "approved_at out of range 1970..2099", values)
    reasons.add(stamps.no_offset, "no UTC offset in approved_at (set adjustments.timezone)", values)
    return stamps.utc


def _rejected(raw: pd.DataFrame, path: Path, reasons: RowReasons, ticket_id: pd.Series) -> pd.DataFrame:
    """``rejected_rows`` of the rows with a reason: the row as read, with the file it came from."""
    bad = reasons.values.notna().to_numpy()
    if not bad.any():
        return conform(pd.DataFrame(), REJECTED_COLUMNS)
    rows = raw[bad]
    with_file = pd.concat([pd.DataFrame({"file": str(path)}, index=rows.index), rows], axis=1)
    return conform(pd.DataFrame({
        "source": APPROVALS, "ticket_id": ticket_id[bad].to_numpy(dtype=object), "row_kind": "adjustment",
        "raw": raw_json(with_file).to_numpy(dtype=object), "reason": reasons.values[bad].to_numpy(dtype=object),
    }, index=pd.RangeIndex(int(bad.sum()))), REJECTED_COLUMNS)


def _earliest_per_key(approvals: pd.DataFrame) -> pd.DataFrame:
    """One approval per (source, ticket_id, scope): the earliest (the first row of the file among equal times)."""
    if not len(approvals):
        return approvals
    order = np.lexsort((np.arange(len(approvals)), approvals["approved_at"].to_numpy()))
    return approvals.iloc[order].drop_duplicates(_KEY, keep="first").sort_index().reset_index(drop=True)
