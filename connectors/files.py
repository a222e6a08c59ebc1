"""File sources: CSV, Excel, JSON, NDJSON and Parquet exports, one file or a folder of daily files.

``read_raw_table`` turns one file into a frame of text (every value a ``str`` or None, headers as
written); ``FileConnector`` reads every file of a source once (by name and SHA-256), maps the rows
with ``connectors.mapping`` (or the snapshot / activity importers for those layouts) and returns a
``Batch``. Nothing here writes anything.
"""

from __future__ import annotations

import codecs
import datetime as dt
import glob
import gzip
import hashlib
import io
import itertools
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import Batch, SourceConfig
from connectors.errors import SourceResponseError, SourceUnreachable
from connectors.mapping import map_events, map_tickets
from kpis.errors import ConfigError
from kpis.schema import EVENT_COLUMNS, REJECTED_COLUMNS, TICKET_COLUMNS, concat_frames, conform

__all__ = ["FileConnector", "read_raw_table"]

log = logging.getLogger(__name__)

# File name endings (after an optional ".gz") -> the reader that handles them.
_FORMATS = {
    ".csv": "csv", ".txt": "csv", ".tsv": "csv",
    ".xlsx": "excel", ".xlsm": "excel",
    ".json": "json",
    ".ndjson": "ndjson", ".jsonl": "ndjson",
    ".parquet": "parquet", ".pq": "parquet",
}
_KIND_FORMATS = {"csv": {"csv"}, "excel": {"excel"}, "json": {"json", "ndjson"},
                 "ndjson": {"ndjson"}, "parquet": {"parquet"}}
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_CHECK_ROWS = 1000
_CHECK_PROBLEMS = 30


# --- one file -> a frame of text -----------------------------------------------------------------

def _known_format(path: Path) -> tuple[str | None, bool]:
    """(reader name or None, gzip-compressed?) from the file name alone."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    return _FORMATS.get(suffixes[-1] if suffixes else ""), compressed


def _format_of(path: Path, cfg: SourceConfig) -> tuple[str, bool]:
    """(reader name, gzip-compressed?) from the file name, else from the source kind."""
    fmt, compressed = _known_format(path)
    return fmt or cfg.kind, compressed


def _read_bytes(path: Path, compressed: bool) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if compressed else data


def _decode(data: bytes, cfg: SourceConfig, path: Path) -> str:
    """Text of an export: ``cfg.encoding``, else a BOM, else UTF-8, else GB18030 (Chinese Excel/WPS)."""
    if cfg.encoding:
        try:
            return data.decode(cfg.encoding)
        except (UnicodeDecodeError, LookupError) as e:
            raise SourceResponseError(cfg.name, f"{path.name} is not {cfg.encoding}: {e}; fix sources.encoding") from None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(encoding)
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SourceResponseError(cfg.name, f"{path.name} is neither UTF-8 nor GB18030; set sources.encoding (e.g. \"big5\")")


def _cell_text(value: Any) -> str | None:
    """One cell of Excel, JSON or Parquet as text: ISO timestamps, whole numbers without ``.0``."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**63 else repr(value)
    if isinstance(value, dt.datetime):
        return _round_ms(value).isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if value is pd.NA:
        return None
    return str(value)


def _round_ms(value: dt.datetime) -> dt.datetime:
    """Excel keeps times as day fractions: 10:00 may come back as 09:59:59.999998. Round to the ms."""
    return value + dt.timedelta(microseconds=round(value.microsecond, -3) - value.microsecond)


def _text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Any frame -> the same frame with ``str``-or-None cells and stripped text headers."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            text = _iso_seconds(col.dt.tz_convert("UTC").dt.tz_localize(None), suffix="+00:00")
        elif pd.api.types.is_datetime64_dtype(col):
            text = _iso_seconds(col)
        elif pd.api.types.is_integer_dtype(col) or pd.api.types.is_bool_dtype(col):
            text = col.astype("str").str.lower()
        elif isinstance(col.dtype, pd.StringDtype):
            text = col  # already text (a Parquet string column): no per-cell conversion
        else:
            text = col.astype("object").map(_cell_text)
        if str(text.dtype) != "str":  # str already: no round trip through objects
            text = text.astype("object").where(text.notna(), None).astype("str")
        out[str(name).strip()] = text
    return pd.DataFrame(out, index=frame.index)


def _iso_seconds(naive: pd.Series, suffix: str = "") -> pd.Series:
    """Timestamps -> ``YYYY-MM-DDTHH:MM:SS`` + ``suffix`` (the text ``strftime`` writes, seconds floored).

    Arrow's cast to text is ~10x faster than ``strftime`` (a 1M-row export has ~9 timestamp columns).
    """
    seconds = pc.floor_temporal(pa.array(naive, from_pandas=True), unit="second").cast(pa.timestamp("s"))
    text = pc.replace_substring(seconds.cast(pa.string()), " ", "T", max_replacements=1)
    if suffix:
        text = pc.binary_join_element_wise(text, pa.scalar(suffix), "")
    return pd.Series(text.to_pandas(types_mapper=pd.ArrowDtype), index=naive.index).astype("str")


def _drop_blank_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with nothing in any cell are layout, not data (Excel keeps formatted empty rows)."""
    if frame.empty or not len(frame.columns):
        return frame.reset_index(drop=True)
    filled = frame.apply(lambda c: c.notna() & (c.astype("str").str.strip() != ""))
    return frame[filled.any(axis=1)].reset_index(drop=True)


def _read_csv(path: Path, cfg: SourceConfig, compressed: bool, nrows: int | None) -> pd.DataFrame:
    text = _decode(_read_bytes(path, compressed), cfg, path)
    sep = cfg.options.get("delimiter", "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ",")
    try:
        frame = _parse_csv_text(text, sep, nrows)
    except (pd.errors.ParserError, pa.ArrowInvalid) as e:
        raise SourceResponseError(cfg.name, f"{path.name} is not a readable CSV: {e}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _parse_csv_text(text: str, sep: str, nrows: int | None) -> pd.DataFrame:
    """Every cell as text. Arrow's multithreaded parser reads whole files; the C parser takes the head."""
    if nrows is None and len(sep) == 1:
        return pd.read_csv(io.BytesIO(text.encode("utf-8")), dtype=str, keep_default_na=False, sep=sep,
                           engine="pyarrow")
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=sep, nrows=nrows)


def _sheet_rows(workbook: Any, path: Path, cfg: SourceConfig, sheet: str | None, nrows: int | None) -> list[tuple]:
    """Header row plus up to ``nrows`` data rows of one sheet, as raw cell values."""
    name = sheet or workbook.sheetnames[0]
    if name not in workbook.sheetnames:
        raise ConfigError(f"sources[{cfg.name!r}].sheet", f"{path.name} has no sheet {name!r}",
                          f"use one of {', '.join(workbook.sheetnames)}")
    rows = workbook[name].iter_rows(values_only=True)
    return list(rows if nrows is None else itertools.islice(rows, nrows + 1))


def _read_excel(path: Path, cfg: SourceConfig, sheet: str | None, nrows: int | None) -> pd.DataFrame:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        rows = _sheet_rows(workbook, path, cfg, sheet, nrows)
    finally:
        workbook.close()
    header = rows[0] if rows else ()
    names = [str(h).strip() if h is not None else f"column_{i + 1}" for i, h in enumerate(header)]
    body = [[_cell_text(v) for v in row[: len(names)]] + [None] * (len(names) - len(row)) for row in rows[1:]]
    frame = pd.DataFrame(body, columns=names, dtype="object")
    unnamed = [n for n, h in zip(names, header, strict=True) if h is None and frame[n].isna().all()]
    return frame.drop(columns=unnamed).astype("str")


def _json_records(data: Any, cfg: SourceConfig, path: Path) -> list:
    if isinstance(data, list):
        return data
    key = cfg.options.get("records_key")
    if isinstance(data, dict) and key in data and isinstance(data[key], list):
        return data[key]
    keys = ", ".join(sorted(data)) if isinstance(data, dict) else type(data).__name__
    raise ConfigError(f"sources[{cfg.name!r}].options.records_key",
                      f"{path.name} holds an object, not an array of records (keys: {keys})",
                      "name the key that holds the records, e.g. options = { records_key = \"tickets\" }")


def _read_json(path: Path, cfg: SourceConfig, compressed: bool, lines: bool) -> pd.DataFrame:
    text = _decode(_read_bytes(path, compressed), cfg, path)
    try:
        if lines:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = _json_records(json.loads(text), cfg, path)
    except json.JSONDecodeError as e:
        raise SourceResponseError(cfg.name, f"{path.name} is not valid JSON: {e}") from None
    bad = [i for i, r in enumerate(records) if not isinstance(r, dict)]
    if bad:
        raise SourceResponseError(cfg.name, f"{path.name}: record {bad[0] + 1} is not an object")
    return _text_frame(pd.DataFrame.from_records(records)) if records else pd.DataFrame()


def _read_table(path: Path, cfg: SourceConfig, sheet: str | None = None, nrows: int | None = None) -> pd.DataFrame:
    fmt, compressed = _format_of(path, cfg)
    if fmt == "csv":
        frame = _read_csv(path, cfg, compressed, nrows)
    elif fmt == "excel":
        frame = _read_excel(path, cfg, sheet or cfg.sheet, nrows)
    elif fmt in ("json", "ndjson"):
        frame = _read_json(path, cfg, compressed, lines=fmt == "ndjson")
    elif fmt == "parquet":
        frame = _text_frame(pd.read_parquet(path))
    else:
        raise ConfigError(f"sources[{cfg.name!r}].kind", f"cannot read {path.name}",
                          f"use a file ending in {', '.join(sorted(_FORMATS))} (optionally .gz)")
    frame = _drop_blank_rows(frame)
    return frame.head(nrows) if nrows is not None else frame


def read_raw_table(path: str | Path, cfg: SourceConfig, *, sheet: str | None = None) -> pd.DataFrame:
    """One export file -> a frame with the file's headers and every value as ``str`` or None.

    CSV (encoding ``cfg.encoding`` or detected: UTF-8, UTF-8 with BOM, GB18030/GBK), Excel ``.xlsx``
    (sheet ``sheet``, else ``cfg.sheet``, else the first; datetime cells as ISO 8601 text), JSON (an
    array of objects, or an object with the array under ``cfg.options['records_key']``), NDJSON and
    Parquet; ``.gz`` for the text formats. Rows with no value in any cell are dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceUnreachable(cfg.name, f"file {str(path)!r} does not exist; check sources.path")
    return _read_table(path, cfg, sheet)


# --- a source: its files, each read once ---------------------------------------------------------

@dataclass
class _File:
    """One export file; its key ``name:sha256`` is computed when first asked for."""

    path: Path

    @cached_property
    def key(self) -> str:
        digest = hashlib.sha256()
        with self.path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return f"{self.path.name}:{digest.hexdigest()}"


def _matches_kind(path: Path, cfg: SourceConfig) -> bool:
    fmt, _ = _known_format(path)
    return fmt in _KIND_FORMATS.get(cfg.kind, set()) and not path.name.startswith((".", "~$"))


def resolve_files(pattern: str, cfg: SourceConfig, setting: str = "path") -> list[Path]:
    """A file, a glob or a directory -> its export files sorted by path; ``SourceUnreachable`` when none."""
    target = Path(pattern)
    if target.is_dir():
        found = [p for p in target.iterdir() if p.is_file() and _matches_kind(p, cfg)]
    elif target.is_file():
        found = [target]
    else:
        found = [Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file()]
    if not found:
        where = "folder has no export files" if target.is_dir() else "no file matches it"
        raise SourceUnreachable(cfg.name, f"{setting} {pattern!r}: {where}; check sources.{setting} "
                                          "(relative paths start at the config file's folder)")
    return sorted(found, key=lambda p: str(p))


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).astype("str") if len(frames) > 1 else frames[0]


class FileConnector:
    """A file source (``kind`` csv / excel / json / ndjson / parquet) read once per file."""

    def __init__(self, cfg: SourceConfig, skip_files: Iterable[str] = ()) -> None:
        self.config = cfg
        self.skip_files = set(skip_files)

    def _files(self, pattern: str | None, setting: str) -> list[_File]:
        if not pattern:
            return []
        return [_File(p) for p in resolve_files(pattern, self.config, setting)]

    def _read(self, files: list[_File], sheet: str | None) -> pd.DataFrame:
        new = [f for f in files if f.key not in self.skip_files]
        for f in new:
            log.info("source %s: reading %s", self.config.name, f.path)
        return _concat([_read_table(f.path, self.config, sheet) for f in new])

    def _event_files(self, ticket_files: list[_File]) -> tuple[list[_File], str | None]:
        """Events come from ``events_path``, or from ``events_sheet`` of the ticket workbooks."""
        cfg = self.config
        if cfg.events_path:
            return self._files(cfg.events_path, "events_path"), cfg.events_sheet
        if cfg.events_sheet:
            return ticket_files, cfg.events_sheet
        return [], None

    def pull(self, since: dt.datetime | None = None, until: dt.datetime | None = None) -> Batch:
        """Read every file not read before and map it. ``since`` / ``until`` are not used: a file is
        read whole, once; the pipeline decides which tickets a window needs."""
        ticket_files = self._files(self.config.path, "path")
        event_files, events_sheet = self._event_files(ticket_files)
        raw = self._read(ticket_files, self.config.sheet)
        events_raw = self._read(event_files, events_sheet)
        seen = [f.key for f in ticket_files + event_files if f.key not in self.skip_files]
        batch = self._to_batch(raw, events_raw)
        return replace(batch, files_read=tuple(dict.fromkeys(seen)))

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
        files = {f.key: f for f in ticket_files + event_files if f.key not in self.skip_files}
        for key, f in files.items():
            raw = self._read([f], self.config.sheet) if f in ticket_files else pd.DataFrame()
            events_raw = self._read([f], events_sheet) if f in event_files else pd.DataFrame()
            yield replace(self._to_batch(raw, events_raw), files_read=(key,))

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

    def check(self) -> list[str]:
        """Read the first rows of the first file(s), map them, and describe every problem found.

        Returns human-readable lines (empty: all good): a missing file, a missing column, unmapped
        values with their counts, naive timestamps without a configured timezone. Writes nothing.
        """
        cfg = self.config
        try:
            ticket_files = self._files(cfg.path, "path")[:1]
            event_files, events_sheet = self._event_files(ticket_files)
            raw = _read_table(ticket_files[0].path, cfg, cfg.sheet, nrows=_CHECK_ROWS)
            events_raw = (_read_table(event_files[0].path, cfg, events_sheet, nrows=_CHECK_ROWS)
                          if event_files else pd.DataFrame())
            batch = self._to_batch(raw, events_raw)
        except (SourceUnreachable, SourceResponseError, ConfigError) as e:
            return [str(e)]
        read = [(ticket_files[0], raw)] + ([(event_files[0], events_raw)] if event_files else [])
        empty = [f"source {cfg.name}: {f.path.name} has no data rows" for f, frame in read if not len(frame)]
        return empty + _describe_rejections(cfg.name, batch.rejected)


def _no_rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    return conform(pd.DataFrame(), TICKET_COLUMNS), conform(pd.DataFrame(), REJECTED_COLUMNS)


def _describe_rejections(source: str, rejected: pd.DataFrame) -> list[str]:
    """``source x: unmapped status 'Foo' (12 ticket rows)``, most frequent first."""
    counts = Counter(zip(rejected["reason"], rejected["row_kind"], strict=True))
    lines = [f"source {source}: {reason} ({n} {kind} row{'s' if n != 1 else ''})"
             for (reason, kind), n in counts.most_common(_CHECK_PROBLEMS)]
    if len(counts) > _CHECK_PROBLEMS:
        lines.append(f"source {source}: ... and {len(counts) - _CHECK_PROBLEMS} more kinds of problem")
    return lines
