"""File sources: CSV, Excel, JSON, NDJSON and Parquet exports, one file or a folder of daily files.

``read_raw_table`` turns one file into a frame of text (every value a ``str`` or None, headers as
written); ``FileConnector`` reads every file of a source once (by name and SHA-256), maps the rows
with ``connectors.mapping`` (or the snapshot / activity importers for those layouts) and returns a
``Batch``. Nothing here writes anything.

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

import codecs
import datetime as dt
import difflib
import fnmatch
import glob
import gzip
import hashlib
import io
import itertools
import json
import logging
import math
import os
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import Batch, SourceConfig
from connectors.errors import SourceResponseError, SourceUnreachable
from connectors.lines import (
    BadLine,
    blank_lines,
    csv_without_bad_lines,
    decode_lines,
    header_fields,
    json_objects,
    looks_like_utf8,
    ndjson_records,
    swallowed_lines,
)
from connectors.mapping import map_events, map_tickets
from connectors.options import option
from kpis.errors import ConfigError
from kpis.schema import EVENT_COLUMNS, REJECTED_COLUMNS, TICKET_COLUMNS, concat_frames, conform

__all__ = ["FileConnector", "FileRefused", "RawTable", "file_digest", "lines_rejected", "matching_files",
           "read_export", "read_raw_table", "resolve_files"]

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
_HEADERS_SHOWN = 40  # a refusal lists at most this many of the file's headers
_TICKETS, _EVENTS = "tickets", "events"  # which file of a source: path or events_path / events_sheet
_PARSE_ERRORS = (pd.errors.ParserError, pa.ArrowInvalid)


class FileRefused(SourceResponseError):
    """One file of a source cannot be read at all; ``reason`` is one line naming the file.

    Raised by ``read_raw_table``; ``FileConnector`` catches it, records the refusal and reads the
    source's other files.
    """

    def __init__(self, source: str, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(source, reason)


@dataclass
class RawTable:
    """One file read: its rows as text, and the lines (or JSON records) that could not be read."""

    frame: pd.DataFrame
    bad_lines: list[BadLine] = field(default_factory=list)


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


def _read_bytes(path: Path, compressed: bool, cfg: SourceConfig) -> bytes:
    """The file's bytes, decompressed for ``.gz``; a broken or false ``.gz`` refuses the file."""
    data = path.read_bytes()
    if not compressed:
        return data
    try:
        return gzip.decompress(data)
    except gzip.BadGzipFile:
        reason = f"{path.name} is not gzip-compressed although its name ends in .gz; rename or replace it"
    except EOFError:
        reason = f"{path.name} is truncated: its gzip stream ends early; replace it with a complete copy"
    except zlib.error as e:
        reason = f"{path.name} is a corrupt gzip file ({e}); replace it"
    raise FileRefused(cfg.name, path, reason)


# --- bytes -> text ---------------------------------------------------------------------------------

def _ascii_compatible(encoding: str) -> bool:
    """Whether lines can be found and decoded one by one (not so for UTF-16 and UTF-32)."""
    return "a\n".encode(encoding) == b"a\n"


def _checked_encoding(cfg: SourceConfig) -> str:
    try:
        return codecs.lookup(str(cfg.encoding)).name
    except LookupError:
        raise ConfigError(f"sources[{cfg.name!r}].encoding", f"{cfg.encoding!r} is not an encoding",
                          'use e.g. "utf-8", "gb18030" or "big5"') from None


def _decode_as(data: bytes, encoding: str, cfg: SourceConfig, path: Path) -> tuple[str, list[BadLine], str]:
    """Text in a known encoding (set, or from a BOM); lines it cannot decode are reported, not fatal."""
    try:
        return data.decode(encoding), [], encoding
    except UnicodeDecodeError as e:
        if not _ascii_compatible(encoding):
            raise FileRefused(cfg.name, path, f"{path.name} is not {encoding}: {e}; fix sources.encoding") from None
    text, bad, _ = decode_lines(data, encoding)
    return text, bad, encoding


def _detect(data: bytes, cfg: SourceConfig, path: Path) -> tuple[str, list[BadLine], str]:
    """UTF-8, else GB18030; a file that decodes cleanly in neither is judged line by line.

    A file that looks like UTF-8 despite bad bytes (``looks_like_utf8``) is not tried as GB18030 first:
    GB18030 reads almost any byte pair, so a UTF-8 file with one stray byte could decode "cleanly",
    every Chinese character garbled. UTF-8 with bad lines is kept when it decodes more of the lines
    holding non-ASCII bytes than it fails, or when only one line fails; GB18030 with bad lines when
    they are at most one in a hundred of those lines. Otherwise the file is refused, naming
    ``sources.encoding``.
    """
    try:
        return data.decode("utf-8"), [], "utf-8"
    except UnicodeDecodeError:
        pass
    utf8 = looks_like_utf8(data)
    if not utf8:
        try:
            return data.decode("gb18030"), [], "gb18030"
        except UnicodeDecodeError:
            pass
    text, bad, non_ascii = decode_lines(data, "utf-8")
    if len(bad) <= 1 or (utf8 and len(bad) < non_ascii - len(bad)):
        return text, bad, "utf-8"
    gb_text, gb_bad, _ = decode_lines(data, "gb18030")
    if len(gb_bad) <= max(1, non_ascii // 100):
        return gb_text, gb_bad, "gb18030"
    raise FileRefused(cfg.name, path, f"{path.name} is neither UTF-8 nor GB18030 ({len(bad)} of {non_ascii} lines "
                                      "with non-ASCII bytes are not UTF-8); set sources.encoding (e.g. \"big5\")")


def _decode(data: bytes, cfg: SourceConfig, path: Path) -> tuple[str, list[BadLine], bytes | None]:
    """Text of an export: ``cfg.encoding``, else a BOM, else UTF-8, else GB18030 (Chinese Excel/WPS).

    Returns the text with each undecodable line blanked, those lines, and the text's UTF-8 bytes when
    they come for free (a clean UTF-8 file: its own bytes, so Arrow needs no re-encoded copy).
    """
    body, encoding = data, None
    if cfg.encoding:
        encoding = _checked_encoding(cfg)
    else:
        for bom, bom_encoding in _BOMS:
            if data.startswith(bom):
                body, encoding = data[len(bom):], bom_encoding
                break
    text, bad, used = _detect(body, cfg, path) if encoding is None else _decode_as(body, encoding, cfg, path)
    return text, bad, body if not bad and codecs.lookup(used).name == "utf-8" else None


# --- cells -> text ------------------------------------------------------------------------------

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


# --- headers the config names ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Expected:
    """The headers a file must have (header -> (the setting naming it, required?)), and every header
    the config reads (those are no guess for a missing one: `closed_at` is not a typo of `opened_at`)."""

    named: Mapping[str, tuple[str, bool]] = field(default_factory=dict)
    read: frozenset[str] = frozenset()

    def required_only(self) -> _Expected:
        return _Expected({h: e for h, e in self.named.items() if e[1]}, self.read)


def _expected_headers(cfg: SourceConfig, role: str) -> _Expected:
    """What the config expects of one file role's headers.

    Every header named in ``columns`` (``event_columns`` for history) and, where nothing is mapped,
    the canonical name of each required column. Activity logs name their columns in their options.
    """
    if role == _TICKETS:
        if cfg.layout == "activity":
            return _Expected()
        mapping, canonical, setting = cfg.columns, TICKET_COLUMNS, "columns"
        filled = {"ticket_type"} if cfg.default_ticket_type else set()
    else:
        mapping, canonical, setting = cfg.event_columns, EVENT_COLUMNS, "event_columns"
        filled = {"seq"}
    named: dict[str, tuple[str, bool]] = {}
    for name, column in canonical.items():
        required = column.required and name not in filled and name != "source"
        if name in mapping:
            named.setdefault(str(mapping[name]), (f"{setting}.{name}", required))
        elif required:
            named.setdefault(name, (f"required; map it with {setting}.{name}", True))
    return _Expected(named, frozenset(str(mapping.get(name, name)) for name in canonical))


def _closest(header: str, headers: list[str], expect: _Expected) -> str | None:
    """The file's header most like ``header`` among those the config does not read otherwise."""
    close = difflib.get_close_matches(header, [h for h in headers if h not in expect.read], n=1, cutoff=0.6)
    return close[0] if close else None


def _missing_headers(name: str, missing: list[str], expect: _Expected, headers: list[str]) -> str:
    """"`解决时问` (columns.resolved_at) not found in t.csv; did you mean `解决时间`? (headers: ...)"."""
    shown = ", ".join(headers[:_HEADERS_SHOWN]) + (f", ... ({len(headers)} in all)" if len(headers) > _HEADERS_SHOWN else "")
    guesses = [(h, g) for h in missing if (g := _closest(h, headers, expect)) is not None]
    if len(missing) == len(expect.named) > 1 and not guesses:
        return (f"none of the headers the config names ({', '.join(missing)}) is in {name}; is the header on "
                f"another line? set options.header_row (headers: {shown or 'none'})")
    named = ", ".join(f"`{h}` ({expect.named[h][0]})" for h in missing)
    hint = ""
    if len(missing) == 1 and guesses:
        hint = f"; did you mean `{guesses[0][1]}`?"
    elif guesses:
        hint = "; did you mean " + ", ".join(f"`{g}` for `{h}`" for h, g in guesses) + "?"
    return f"{named} not found in {name}{hint} (headers: {shown or 'none'})"


def _check_headers(path: Path, cfg: SourceConfig, headers: list[str], expect: _Expected) -> None:
    """Refuse the file when a header the config names is not among ``headers``."""
    missing = [h for h in expect.named if h not in headers]
    if missing:
        raise FileRefused(cfg.name, path, _missing_headers(path.name, missing, expect, headers))


def _header_row(cfg: SourceConfig) -> int:
    """``options.header_row``: the 1-based line (CSV) or row (Excel) of the header; rows above are a banner
    (checked to be a whole number >= 1 when the config is loaded)."""
    return int(option(cfg, "header_row") or 1)


# --- CSV -----------------------------------------------------------------------------------------

def _after_lines(text: str | bytes, skip: int) -> str | bytes:
    """``text`` without its first ``skip`` lines (empty when it has no more)."""
    newline = "\n" if isinstance(text, str) else b"\n"
    pos = 0
    for _ in range(skip):
        end = text.find(newline, pos)  # type: ignore[arg-type]
        if end < 0:
            return text[:0]
        pos = end + 1
    return text[pos:]


def _parse_csv_text(text: str, sep: str, nrows: int | None, data: bytes | None = None) -> pd.DataFrame:
    """Every cell as text. Arrow's multithreaded parser reads whole files (``data``: ``text`` as UTF-8);
    the C parser takes the head, and a file that Arrow could not take (a value longer than its 1 MiB
    block)."""
    if data is not None and nrows is None and len(sep) == 1:
        return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, sep=sep, engine="pyarrow")
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=sep, nrows=nrows)


def _may_span_lines(data: bytes, rows: int) -> bool:
    """Can a value of the ``rows`` parsed from ``data`` span lines? False only when it surely cannot.

    Without a quote nothing spans lines; else one header line, one line per row and the empty lines
    (counted low: ``\\n\\n`` does not overlap) add up to every line exactly when no record has a second
    line. Byte counts: a clean file pays one pass over its bytes (no quote: not even that).
    """
    if b'"' not in data:
        return False
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if rows + 1 == lines:
        return False
    return rows + 1 + data.count(b"\n\n") + data.count(b"\n\r\n") != lines


def _csv_rows(text: str, utf8: bytes | None, sep: str, nrows: int | None, header: tuple[int, int, int],
              where: tuple[SourceConfig, Path]) -> tuple[pd.DataFrame, list[BadLine]]:
    """The data rows of CSV ``text`` (``utf8``: its UTF-8 bytes, if at hand), and the lines that are not
    records. ``header`` is (the header's 0-based line in ``text``, its width, the file's line number
    of ``text``'s first line).

    The fast parse is tried first; a parse error, or a quoted value that swallowed whole records, sends
    the file through ``csv_without_bad_lines``: those lines are emptied and the rest parsed again.
    """
    cfg, path = where
    header_index, width, first_number = header
    data = utf8 if utf8 is not None else text.encode("utf-8")
    try:
        frame = _parse_csv_text(text, sep, nrows, data)
        if not _may_span_lines(data, len(frame)) or not swallowed_lines(frame, sep):
            return frame, []
        problem = "a quoted value holds whole records"
    except _PARSE_ERRORS as e:
        if len(sep) != 1:
            raise FileRefused(cfg.name, path, f"{path.name} is not a readable CSV: {e}") from None
        problem = str(e).splitlines()[0]
    log.info("source %s: %s does not parse as a whole (%s); read line by line", cfg.name, path.name, problem)
    text, bad = csv_without_bad_lines(text, sep, header_index, width, first_number)
    try:
        return _parse_csv_text(text, sep, nrows, text.encode("utf-8")), bad
    except _PARSE_ERRORS:
        pass
    try:
        return _parse_csv_text(text, sep, nrows), bad
    except _PARSE_ERRORS as e:
        raise FileRefused(cfg.name, path, f"{path.name} is not a readable CSV: {str(e).splitlines()[0]}") from None


def _csv_text(path: Path, cfg: SourceConfig, compressed: bool, skip: int
              ) -> tuple[str, list[BadLine], bytes | None]:
    """The text of a CSV file from its header on (``skip`` banner lines dropped), its bad lines
    (undecodable, NUL) emptied and returned, and its UTF-8 bytes when they come for free."""
    data = _read_bytes(path, compressed, cfg)
    text, bad, utf8 = _decode(data, cfg, path)
    if b"\x00" in data and "\x00" in text:  # bytes are searched fast; UTF-16 has NUL bytes, not NULs
        text, nul = blank_lines(text)
        bad, utf8 = sorted(bad + nul, key=lambda b: b.number), None
    if skip:  # a banner above the header: not data, nor are bad lines in it
        text, bad = str(_after_lines(text, skip)), [b for b in bad if b.number > skip]
        utf8 = None if utf8 is None else bytes(_after_lines(utf8, skip))
    return text, bad, utf8


def _read_csv(path: Path, cfg: SourceConfig, compressed: bool, nrows: int | None,
              expect: _Expected) -> RawTable:
    skip = _header_row(cfg) - 1
    text, bad, utf8 = _csv_text(path, cfg, compressed, skip)
    if not text or text.isspace():  # isspace stops at the first character that is not
        return RawTable(pd.DataFrame(), bad)
    sep = option(cfg, "delimiter") or ("\t" if ".tsv" in [s.lower() for s in path.suffixes] else ",")
    header, index = header_fields(text, sep)
    header_number = skip + index + 1
    unreadable = [b for b in bad if b.number <= header_number]
    if unreadable:
        raise FileRefused(cfg.name, path, f"{path.name} line {unreadable[0].number}: the header cannot be read "
                                          f"({unreadable[0].reason})")
    headers = [h.strip() for h in header]
    _check_headers(path, cfg, headers, expect)
    frame, more = _csv_rows(text, utf8, sep, nrows, (index, len(header), skip + 1), (cfg, path))
    frame.columns = [str(c).strip() for c in frame.columns]
    return RawTable(frame, sorted(bad + more, key=lambda b: b.number))


# --- Excel ---------------------------------------------------------------------------------------

def _sheet_rows(workbook: Any, path: Path, cfg: SourceConfig, sheet: str | None, nrows: int | None) -> list[tuple]:
    """Header row (``options.header_row``) plus up to ``nrows`` data rows of one sheet, as raw cell values."""
    name = sheet or workbook.sheetnames[0]
    if name not in workbook.sheetnames:
        raise ConfigError(f"sources[{cfg.name!r}].sheet", f"{path.name} has no sheet {name!r}",
                          f"use one of {', '.join(workbook.sheetnames)}")
    rows = workbook[name].iter_rows(min_row=_header_row(cfg), values_only=True)
    return list(rows if nrows is None else itertools.islice(rows, nrows + 1))


def _workbook_rows(path: Path, cfg: SourceConfig, sheet: str | None, nrows: int | None) -> list[tuple]:
    """The rows of one sheet; a file that is no workbook (or a broken one) refuses the file."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            return _sheet_rows(workbook, path, cfg, sheet, nrows)
        finally:
            workbook.close()
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, SyntaxError) as e:  # SyntaxError: bad XML
        raise FileRefused(cfg.name, path, f"{path.name} is not a readable Excel workbook ({e})") from None


def _read_excel(path: Path, cfg: SourceConfig, sheet: str | None, nrows: int | None,
                expect: _Expected) -> RawTable:
    rows = _workbook_rows(path, cfg, sheet, nrows)
    header = rows[0] if rows else ()
    names = [str(h).strip() if h is not None else f"column_{i + 1}" for i, h in enumerate(header)]
    if rows:
        _check_headers(path, cfg, [str(h).strip() for h in header if h is not None], expect)
    body = [[_cell_text(v) for v in row[: len(names)]] + [None] * (len(names) - len(row)) for row in rows[1:]]
    frame = pd.DataFrame(body, columns=names, dtype="object")
    unnamed = [n for n, h in zip(names, header, strict=True) if h is None and frame[n].isna().all()]
    return RawTable(frame.drop(columns=unnamed).astype("str"))


# --- JSON, NDJSON, Parquet -----------------------------------------------------------------------

def _json_records(data: Any, cfg: SourceConfig, path: Path) -> list:
    if isinstance(data, list):
        return data
    key = option(cfg, "records_key")
    if isinstance(data, dict) and key in data and isinstance(data[key], list):
        return data[key]
    keys = ", ".join(sorted(data)) if isinstance(data, dict) else type(data).__name__
    raise ConfigError(f"sources[{cfg.name!r}].options.records_key",
                      f"{path.name} holds an object, not an array of records (keys: {keys})",
                      "name the key that holds the records, e.g. options = { records_key = \"tickets\" }")


def _read_json(path: Path, cfg: SourceConfig, compressed: bool, lines: bool,
               expect: _Expected) -> RawTable:
    """JSON has no header line and leaves out keys without a value: only required keys are checked."""
    text, bad, _ = _decode(_read_bytes(path, compressed, cfg), cfg, path)
    if not text or text.isspace():  # isspace stops at the first character that is not
        return RawTable(pd.DataFrame(), bad)
    if lines:
        records, more = ndjson_records(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise FileRefused(cfg.name, path, f"{path.name} is not valid JSON: {e}") from None
        records, more = json_objects(_json_records(data, cfg, path))
    frame = _text_frame(pd.DataFrame.from_records(records)) if records else pd.DataFrame()
    if records:
        _check_headers(path, cfg, list(frame.columns), expect.required_only())
    return RawTable(frame, sorted(bad + more, key=lambda b: b.number))


def _read_parquet(path: Path, cfg: SourceConfig, expect: _Expected) -> RawTable:
    try:
        frame = _text_frame(pd.read_parquet(path))
    except (pa.ArrowInvalid, OSError) as e:
        raise FileRefused(cfg.name, path, f"{path.name} is not a readable Parquet file ({e})") from None
    _check_headers(path, cfg, list(frame.columns), expect)
    return RawTable(frame)


def _read_table(path: Path, cfg: SourceConfig, sheet: str | None = None, nrows: int | None = None,
                expect: _Expected | None = None) -> RawTable:
    """One file -> ``RawTable``; ``expect`` (header -> (setting, required)) refuses a file without them."""
    fmt, compressed = _format_of(path, cfg)
    expect = expect or _Expected()
    if fmt == "csv":
        table = _read_csv(path, cfg, compressed, nrows, expect)
    elif fmt == "excel":
        table = _read_excel(path, cfg, sheet or cfg.sheet, nrows, expect)
    elif fmt in ("json", "ndjson"):
        table = _read_json(path, cfg, compressed, fmt == "ndjson", expect)
    elif fmt == "parquet":
        table = _read_parquet(path, cfg, expect)
    else:
        raise ConfigError(f"sources[{cfg.name!r}].kind", f"cannot read {path.name}",
                          f"use a file ending in {', '.join(sorted(_FORMATS))} (optionally .gz)")
    frame = _drop_blank_rows(table.frame)
    if not len(frame.columns):
        log.warning("source %s: %s is empty: 0 rows read", cfg.name, path.name)
    return replace(table, frame=frame.head(nrows) if nrows is not None else frame)


def read_raw_table(path: str | Path, cfg: SourceConfig, *, sheet: str | None = None) -> pd.DataFrame:
    """One export file -> a frame with the file's headers and every value as ``str`` or None.

    CSV (encoding ``cfg.encoding`` or detected: UTF-8, UTF-8 with BOM, GB18030/GBK; the header on
    line ``options.header_row``), Excel ``.xlsx`` (sheet ``sheet``, else ``cfg.sheet``, else the
    first; datetime cells as ISO 8601 text), JSON (an array of objects, or an object with the array
    under ``cfg.options['records_key']``), NDJSON and Parquet; ``.gz`` for the text formats. Rows with
    no value in any cell are dropped, and so are lines that cannot be read (``FileConnector``
    quarantines those). ``FileRefused`` when the file cannot be read at all.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceUnreachable(cfg.name, f"file {str(path)!r} does not exist; check sources.path")
    return _read_table(path, cfg, sheet).frame


def read_export(path: Path, cfg: SourceConfig, headers: Mapping[str, str]) -> RawTable:
    """One export file read as a source's files are (encodings, ``.gz``, bad lines quarantined, blank rows
    dropped), refused (``FileRefused``) unless it has every header of ``headers`` (header -> the setting that
    names it, quoted in the refusal)."""
    expect = _Expected({h: (setting, True) for h, setting in headers.items()}, frozenset(headers))
    return _read_table(Path(path), cfg, expect=expect)


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def matching_files(pattern: str, formats: Iterable[str]) -> list[Path]:
    """A file, a glob or a folder -> the files of one of the readers ``formats`` (csv, excel, json, ndjson,
    parquet) it names, sorted, each real file once; empty when there is none (a named file is kept whatever
    its extension: it was asked for)."""
    target, wanted = Path(pattern), set(formats)
    if target.is_file():
        return [target]
    found = target.iterdir() if target.is_dir() else _glob(pattern)
    return _once_each(p for p in found if p.is_file() and _known_format(p)[0] in wanted
                      and not p.name.startswith((".", "~$")))


# --- a source: its files, each read once ---------------------------------------------------------

@dataclass
class _File:
    """One export file; its key ``name:sha256`` is computed when first asked for."""

    path: Path

    @cached_property
    def key(self) -> str:
        return f"{self.path.name}:{file_digest(self.path)}"


def _matches_kind(path: Path, cfg: SourceConfig) -> bool:
    fmt, _ = _known_format(path)
    return fmt in _KIND_FORMATS.get(cfg.kind, set()) and not path.name.startswith((".", "~$"))


def _segment_matches(name: str, pattern: str) -> bool:
    """One path segment against one glob segment; like ``glob``, a wildcard never matches a hidden name."""
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def _parts_match(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """A relative path (as segments) against a glob (as segments); ``**`` is any number of folders."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return _parts_match(parts, rest) or (
            bool(parts) and not parts[0].startswith(".") and _parts_match(parts[1:], pattern))
    return bool(parts) and _segment_matches(parts[0], head) and _parts_match(parts[1:], rest)


def _recursive_glob(pattern: str) -> list[Path]:
    """``glob.glob(pattern, recursive=True)`` that walks each real folder once.

    Symlinked folders are followed, but one reached again (a link to a parent: a loop, or two links
    to one folder) is not entered a second time; ``glob`` itself would walk a loop 40 levels deep.
    """
    parts = Path(pattern).parts
    first_magic = next(i for i, p in enumerate(parts) if glob.has_magic(p))
    root = Path(*parts[:first_magic]) if first_magic else Path(".")
    wanted = parts[first_magic:]
    found, walked = [], set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in walked:
            subfolders[:] = []
            continue
        walked.add(real)
        relative = Path(folder).relative_to(root).parts
        found.extend(Path(folder) / f for f in files if _parts_match((*relative, f), wanted))
    return found


def _glob(pattern: str) -> list[Path]:
    if "**" in pattern:
        return _recursive_glob(pattern)
    return [Path(p) for p in glob.glob(pattern)]


def _once_each(paths: Iterable[Path]) -> list[Path]:
    """Paths sorted, each real file once (the first path that reaches it)."""
    out: dict[Path, Path] = {}
    for p in sorted(paths, key=str):
        out.setdefault(p.resolve(), p)
    return list(out.values())


def resolve_files(pattern: str, cfg: SourceConfig, setting: str = "path") -> list[Path]:
    """A file, a glob or a directory -> its export files sorted by path, each real file once;
    ``SourceUnreachable`` when there is none."""
    target = Path(pattern)
    if target.is_dir():
        found = [p for p in target.iterdir() if p.is_file() and _matches_kind(p, cfg)]
    elif target.is_file():
        found = [target]
    else:
        found = [p for p in _glob(pattern) if p.is_file()]
    if not found:
        where = "folder has no export files" if target.is_dir() else "no file matches it"
        raise SourceUnreachable(cfg.name, f"{setting} {pattern!r}: {where}; check sources.{setting} "
                                          "(relative paths start at the config file's folder)")
    return _once_each(found)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).astype("str") if len(frames) > 1 else frames[0]


def _row_kind(cfg: SourceConfig, role: str) -> str:
    """What a line of this file is in ``rejected_rows``: an activity log's lines are events."""
    return "event" if role == _EVENTS or cfg.layout == "activity" else "ticket"


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

    def _files(self, pattern: str | None, setting: str) -> list[_File]:
        if not pattern:
            return []
        return [_File(p) for p in resolve_files(pattern, self.config, setting)]

    def _read_one(self, f: _File, sheet: str | None, role: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One file -> (rows, rejected lines); ``FileRefused`` when it cannot be read at all."""
        cfg = self.config
        log.info("source %s: reading %s", cfg.name, f.path)
        table = _read_table(f.path, cfg, sheet, expect=_expected_headers(cfg, role))
        if not table.bad_lines:
            return table.frame, lines_rejected(cfg.name, f.path, [], "ticket")
        first = table.bad_lines[0]
        log.warning("source %s: %s: %d lines cannot be read and are quarantined (%s %d: %s)", cfg.name,
                    f.path.name, len(table.bad_lines), first.unit, first.number, first.reason)
        return table.frame, lines_rejected(cfg.name, f.path, table.bad_lines, _row_kind(cfg, role))

    def _read(self, files: list[_File], sheet: str | None, role: str) -> _Reads:
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

    def _batch_of(self, ticket_files: list[_File], event_files: list[_File], events_sheet: str | None) -> Batch:
        """The mapped rows of these files (those not read before), their refusals and unreadable lines."""
        tickets = self._read(ticket_files, self.config.sheet, _TICKETS)
        events = self._read(event_files, events_sheet, _EVENTS)
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

    def check(self) -> list[str]:
        """Read the first rows of the first file(s), map them, and describe every problem found.

        Returns human-readable lines (empty: all good): a missing file, a file that cannot be read
        (with the headers it has), unreadable lines, unmapped values with their counts, naive
        timestamps without a configured timezone. Writes nothing.
        """
        cfg = self.config
        try:
            ticket_files = self._files(cfg.path, "path")[:1]
            event_files, events_sheet = self._event_files(ticket_files)
            read = [(ticket_files[0], _read_table(ticket_files[0].path, cfg, cfg.sheet, nrows=_CHECK_ROWS,
                                                  expect=_expected_headers(cfg, _TICKETS)))]
            if event_files:
                read.append((event_files[0], _read_table(event_files[0].path, cfg, events_sheet, nrows=_CHECK_ROWS,
                                                         expect=_expected_headers(cfg, _EVENTS))))
            events_raw = read[1][1].frame if event_files else pd.DataFrame()
            batch = self._to_batch(read[0][1].frame, events_raw)
        except (SourceUnreachable, SourceResponseError, ConfigError) as e:
            return [str(e)]
        self.sample = batch  # the page read, for validate's SLA policy counts
        empty = [f"source {cfg.name}: {f.path.name} has no data rows" for f, table in read if not len(table.frame)]
        unread = [f"source {cfg.name}: {f.path.name} {b.unit} {b.number}: {b.reason}"
                  for f, table in read for b in table.bad_lines[:_CHECK_PROBLEMS]]
        return empty + unread + _describe_rejections(cfg.name, batch.rejected)


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
