"""File sources: CSV, Excel, JSON, NDJSON and Parquet exports, one file or a folder of daily files.

``FileConnector`` reads every file of a source once (by name and SHA-256), maps the rows with
``connectors.mapping`` (or the snapshot / activity importers for those layouts) and returns a ``Batch``.
The pieces it stands on: ``file_paths`` (which files a path, glob or folder names), ``file_decode``
(bytes to text) and ``file_tables`` (``read_raw_table``: one file to a frame of text, every value a
``str`` or None, headers as written). Nothing here writes anything.

Bad input costs what it breaks, never more (docs/bad-input.md):

- a line that cannot be read (undecodable bytes, a NUL, a quote that never closes, a wrong number of
  fields, invalid NDJSON) is quarantined with its file, line number and text, and the rest is read.
  Clean files take the fast path (one decode, Arrow's CSV reader); only a file that fails it is
  re-read line by line (``connectors.lines``);
- a file that cannot be read at all (a broken or false ``.gz``, an unknown encoding, invalid JSON, a
  corrupt workbook, a header the config names but the file lacks) raises ``FileRefused`` inside the
  connector: the source's other files are read, the refusal becomes one ``rejected_rows`` row
  (``row_kind = "file"``) and the file is not recorded as read, so a fixed copy is read next run;
- an empty file is 0 rows, with a warning.

``Batch.rows_read`` counts every data row read, every quarantined line and one per refused file, so
that rows read = rows used + rows rejected.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from connectors.base import Batch, SourceConfig
from connectors.errors import SourceResponseError, SourceUnreachable
from connectors.file_decode import FileRefused
from connectors.file_paths import ExportFile, file_digest, matching_files, resolve_files
from connectors.file_tables import (
    CHECK_PROBLEMS,
    CHECK_ROWS,
    EVENTS,
    TICKETS,
    RawTable,
    expected_headers,
    read_export,
    read_raw_table,
    read_table,
)
from connectors.lines import (
    BadLine,
)
from connectors.mapping import map_events, map_tickets
from connectors.validate import describe_rejections
from kpis.errors import ConfigError
from kpis.schema import EVENT_COLUMNS, REJECTED_COLUMNS, TICKET_COLUMNS, concat_frames, conform

__all__ = ["FileConnector", "FileRefused", "RawTable", "file_digest", "lines_rejected", "matching_files",
           "read_export", "read_raw_table", "resolve_files"]

log = logging.getLogger(__name__)
CHECK_FILES = 10  # a check reads the first page of the first of these files that has data rows


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).astype("str") if len(frames) > 1 else frames[0]


def _row_kind(cfg: SourceConfig, role: str) -> str:
    """What a line of this file is in ``rejected_rows``: an activity log's lines are events."""
    return "event" if role == EVENTS or cfg.layout == "activity" else "ticket"


def lines_rejected(source: str, path: Path, bad: list[BadLine], row_kind: str) -> pd.DataFrame:
    """``rejected_rows`` for lines that could not be read: the raw column holds file, line and text."""
    return conform(pd.DataFrame({
        "source": source,
        "ticket_id": None,
        "row_kind": row_kind,
        "raw": [json.dumps({"file": str(path), b.unit: b.number, "text": b.text}, ensure_ascii=False) for b in bad],
        "reason": [b.reason for b in bad],
    }, index=pd.RangeIndex(len(bad))), REJECTED_COLUMNS)


def _file_rejected(source: str, path: Path, reason: str) -> pd.DataFrame:
    """One ``rejected_rows`` row (``row_kind = "file"``) for a file that could not be read at all."""
    return conform(pd.DataFrame({"source": [source], "ticket_id": [None], "row_kind": ["file"],
                                 "raw": [json.dumps({"file": str(path)}, ensure_ascii=False)],
                                 "reason": [reason]}), REJECTED_COLUMNS)


@dataclass
class _Reads:
    """What reading the files of one role gave: rows, lines and files quarantined, the keys of the
    files read and of those refused (a file that cannot even be opened is refused by its path)."""

    frame: pd.DataFrame
    rejected: pd.DataFrame
    read: list[str]
    refused: set[str]


class FileConnector:
    """A file source (``kind`` csv / excel / json / ndjson / parquet) read once per file."""

    def __init__(self, cfg: SourceConfig, skip_files: Iterable[str] = ()) -> None:
        self.config = cfg
        self.skip_files = set(skip_files)

    def _files(self, pattern: str | None, setting: str) -> list[ExportFile]:
        if not pattern:
            return []
        return [ExportFile(p) for p in resolve_files(pattern, self.config, setting)]

    def _read_one(self, f: ExportFile, sheet: str | None, role: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One file -> (rows, rejected lines); ``FileRefused`` when it cannot be read at all."""
        cfg = self.config
        log.info("source %s: reading %s", cfg.name, f.path)
        table = read_table(f.path, cfg, sheet, expect=expected_headers(cfg, role))
        if not table.bad_lines:
            return table.frame, lines_rejected(cfg.name, f.path, [], "ticket")
        first = table.bad_lines[0]
        log.warning("source %s: %s: %d lines cannot be read and are quarantined (%s %d: %s)", cfg.name,
                    f.path.name, len(table.bad_lines), first.unit, first.number, first.reason)
        return table.frame, lines_rejected(cfg.name, f.path, table.bad_lines, _row_kind(cfg, role))

    def _read(self, files: list[ExportFile], sheet: str | None, role: str) -> _Reads:
        frames, rejected, read, refused = [], [], [], set()
        for f in files:
            try:
                if f.key in self.skip_files:
                    continue
                frame, bad = self._read_one(f, sheet, role)
            except (FileRefused, OSError) as e:
                reason = e.reason if isinstance(e, FileRefused) else f"{f.path.name} cannot be read ({e.strerror or e})"
                log.error("source %s: %s; the file is not recorded as read: the next run reads it again",
                          self.config.name, reason)
                rejected.append(_file_rejected(self.config.name, f.path, reason))
                refused.add(f.__dict__.get("key", str(f.path)))  # the key, unless the file could not be opened
                continue
            frames.append(frame)
            rejected.append(bad)
            read.append(f.key)
        return _Reads(_concat(frames), concat_frames(rejected, REJECTED_COLUMNS), read, refused)

    def _event_files(self, ticket_files: list[ExportFile]) -> tuple[list[ExportFile], str | None]:
        """Events come from ``events_path``, or from ``events_sheet`` of the ticket workbooks."""
        cfg = self.config
        if cfg.events_path:
            return self._files(cfg.events_path, "events_path"), cfg.events_sheet
        if cfg.events_sheet:
            return ticket_files, cfg.events_sheet
        return [], None

    def pull(self, since: dt.datetime | None = None, until: dt.datetime | None = None) -> Batch:
        """Read every file not read before and map it. ``since`` / ``until`` are not used: a file is
        read whole, once; the pipeline decides which tickets a window needs.

        A refused file is left out of ``files_read``; its refusal and every unreadable line are in
        ``rejected`` and counted in ``rows_read``.
        """
        ticket_files = self._files(self.config.path, "path")
        event_files, events_sheet = self._event_files(ticket_files)
        return self._batch_of(ticket_files, event_files, events_sheet)

    def pull_each(self, since: dt.datetime | None = None, until: dt.datetime | None = None) -> Iterator[Batch]:
        """``pull``, one ``Batch`` per file not read before (ticket files, then event files, each in path
        order), so the caller can tell one file's rows from another's: a history that two exports both
        hold is one history, not two. A snapshot or activity export is one history across its files:
        it comes whole, as one ``Batch``."""
        if (self.config.layout or "tickets") != "tickets":
            yield self.pull(since, until)
            return
        ticket_files = self._files(self.config.path, "path")
        event_files, events_sheet = self._event_files(ticket_files)
        for f in {f.path: f for f in ticket_files + event_files}.values():  # a workbook's two sheets: one batch
            yield self._batch_of([f] if f in ticket_files else [], [f] if f in event_files else [], events_sheet)

    def _batch_of(self, ticket_files: list[ExportFile], event_files: list[ExportFile], events_sheet: str | None) -> Batch:
        """The mapped rows of these files (those not read before), their refusals and unreadable lines."""
        tickets = self._read(ticket_files, self.config.sheet, TICKETS)
        events = self._read(event_files, events_sheet, EVENTS)
        refused = tickets.refused | events.refused
        seen = [key for key in tickets.read + events.read if key not in refused]  # a workbook: both sheets read
        batch = self._to_batch(tickets.frame, events.frame)
        unread = concat_frames([tickets.rejected, events.rejected], REJECTED_COLUMNS)
        return replace(batch, rejected=concat_frames([batch.rejected, unread], REJECTED_COLUMNS),
                       rows_read=batch.rows_read + len(unread), files_read=tuple(dict.fromkeys(seen)))

    def _to_batch(self, raw: pd.DataFrame, events_raw: pd.DataFrame) -> Batch:
        """Dispatch on ``cfg.layout``; events from an events file are mapped the same way for every layout."""
        cfg = self.config
        layout = cfg.layout or "tickets"
        if layout == "tickets":
            tickets, rejected = map_tickets(raw, cfg) if len(raw) or len(raw.columns) else _no_rows()
            batch = Batch(tickets=tickets, rejected=rejected, rows_read=len(raw))
        elif layout in ("snapshot", "activity"):
            batch = self._layout_batch(layout, raw)
        else:
            raise ConfigError(f"sources[{cfg.name!r}].layout", f"{layout!r} is unknown", "use tickets, snapshot or activity")
        if len(events_raw) or len(events_raw.columns):
            events, rejected = map_events(events_raw, cfg)
            batch = replace(
                batch,
                events=concat_frames([batch.events, events], EVENT_COLUMNS),
                rejected=concat_frames([batch.rejected, rejected], REJECTED_COLUMNS),
                rows_read=batch.rows_read + len(events_raw),
            )
        return batch

    def _layout_batch(self, layout: str, raw: pd.DataFrame) -> Batch:
        if not len(raw):
            return Batch()
        if layout == "snapshot":
            from connectors.snapshot import to_batch
        else:
            from connectors.activity import to_batch
        batch = to_batch(raw, self.config)
        return batch if batch.rows_read else replace(batch, rows_read=len(raw))

    def _first_with_rows(self, files: list[ExportFile], sheet: str | None, role: str) -> tuple[ExportFile, RawTable]:
        """The first page of the first of ``files`` (at most ``CHECK_FILES``) that has data rows, else of the
        first: an empty daily export (a quiet day) is no problem for a run, so it is none for a check."""
        cfg = self.config
        first = None
        for f in files[:CHECK_FILES]:
            table = read_table(f.path, cfg, sheet, nrows=CHECK_ROWS, expect=expected_headers(cfg, role))
            if len(table.frame):
                return f, table
            first = first or (f, table)
        assert first is not None  # resolve_files raises when nothing matches
        return first

    def check(self) -> list[str]:
        """Read the first rows of the first file(s) with data, map them, and describe every problem found.

        Returns human-readable lines (empty: all good): a missing file, a file that cannot be read
        (with the headers it has), unreadable lines, unmapped values with their counts, naive
        timestamps without a configured timezone, no data rows in the first files. Writes nothing.
        """
        cfg = self.config
        self.sample = None  # a check that fails leaves no page of an earlier one behind
        try:
            ticket_files = self._files(cfg.path, "path")
            event_files, events_sheet = self._event_files(ticket_files)
            read = [self._first_with_rows(ticket_files, cfg.sheet, TICKETS)]
            if event_files:
                read.append(self._first_with_rows(event_files, events_sheet, EVENTS))
            events_raw = read[1][1].frame if event_files else pd.DataFrame()
            batch = self._to_batch(read[0][1].frame, events_raw)
        except (SourceUnreachable, SourceResponseError, ConfigError) as e:
            return [str(e)]
        self.sample = batch  # the page read, for validate's SLA policy counts
        empty = [f"source {cfg.name}: {f.path.name} has no data rows" for f, table in read if not len(table.frame)]
        unread = [f"source {cfg.name}: {f.path.name} {b.unit} {b.number}: {b.reason}"
                  for f, table in read for b in table.bad_lines[:CHECK_PROBLEMS]]
        return empty + unread + describe_rejections(cfg.name, batch.rejected, CHECK_PROBLEMS)


def _no_rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    return conform(pd.DataFrame(), TICKET_COLUMNS), conform(pd.DataFrame(), REJECTED_COLUMNS)
