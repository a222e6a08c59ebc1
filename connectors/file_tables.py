"""One export file to a frame of text (every value a ``str`` or None, headers as written): the CSV, Excel,
JSON, NDJSON and Parquet readers, the header row and the check that the headers the config names exist.
Bad lines are returned beside the frame (``RawTable``), never dropped silently."""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import itertools
import json
import logging
import math
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from connectors.base import SourceConfig
from connectors.errors import SourceUnreachable
from connectors.file_decode import FileRefused, decode, read_bytes
from connectors.file_paths import FORMATS, known_format
from connectors.lines import (
    BadLine,
    blank_lines,
    csv_without_bad_lines,
    header_fields,
    json_kind,
    json_objects,
    ndjson_records,
    swallowed_lines,
)
from connectors.options import option
from kpis.errors import ConfigError, first_line
from kpis.schema import EVENT_COLUMNS, TICKET_COLUMNS

log = logging.getLogger(__name__)

CHECK_ROWS = 1000


CHECK_PROBLEMS = 30


_HEADERS_SHOWN = 40  # a refusal lists at most this many of the file's headers


TICKETS, EVENTS = "tickets", "events"  # which file of a source: path or events_path / events_sheet


_PARSE_ERRORS = (pd.errors.ParserError, pa.ArrowInvalid)


@dataclass
class RawTable:
    """One file read: its rows as text, and the lines (or JSON records) that could not be read."""

    frame: pd.DataFrame
    bad_lines: list[BadLine] = field(default_factory=list)


def _format_of(path: Path, cfg: SourceConfig) -> tuple[str, bool]:
    """(reader name, gzip-compressed?) from the file name, else from the source kind."""
    fmt, compressed = known_format(path)
    return fmt or cfg.kind, compressed


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
    """Rows with nothing in any cell are layout, not data (Excel keeps formatted empty rows).

    Column by column, only the rows blank so far are looked at: the first column (an id) usually fills
    every row, and then the other columns are not read (at 1M rows, 24 columns stripped took 0.35 s)."""
    if frame.empty or not len(frame.columns):
        return frame.reset_index(drop=True)
    blank = np.arange(len(frame))
    for column in range(len(frame.columns)):
        cells = frame.iloc[:, column] if len(blank) == len(frame) else frame.iloc[blank, column]
        empty = cells.isna() | (cells.astype("str").str.strip() == "")
        blank = blank[empty.to_numpy(dtype=bool, na_value=True)]
        if not len(blank):
            return frame.reset_index(drop=True)
    keep = np.ones(len(frame), dtype=bool)
    keep[blank] = False
    return frame[keep].reset_index(drop=True)


# --- headers the config names ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Expected:
    """The headers a file must have (header -> (the setting naming it, required?)), and every header
    the config reads (those are no guess for a missing one: `closed_at` is not a typo of `opened_at`)."""

    named: Mapping[str, tuple[str, bool]] = field(default_factory=dict)
    read: frozenset[str] = frozenset()

    def required_only(self) -> _Expected:
        return _Expected({h: e for h, e in self.named.items() if e[1]}, self.read)


def expected_headers(cfg: SourceConfig, role: str) -> _Expected:
    """What the config expects of one file role's headers.

    Every header named in ``columns`` (``event_columns`` for history) and, where nothing is mapped,
    the canonical name of each required column. Activity logs name their columns in their options.
    """
    if role == TICKETS:
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
    """Refuse the file when a header the config names is not among ``headers``, or one it reads is there twice
    (which of the two columns would be a guess)."""
    missing = [h for h in expect.named if h not in headers]
    if missing:
        raise FileRefused(cfg.name, path, _missing_headers(path.name, missing, expect, headers))
    counts = Counter(headers)
    twice = sorted(h for h, n in counts.items() if n > 1 and h in expect.read)
    if twice:
        raise FileRefused(cfg.name, path, f"{path.name} has the header `{twice[0]}` {counts[twice[0]]} times "
                                          "and reads one of them: rename or remove the others")


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
        return _arrow_csv_text(text, data, sep)
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=sep, nrows=nrows)


def _arrow_csv_text(text: str, data: bytes, sep: str) -> pd.DataFrame:
    """Arrow's CSV reader told that every column is text, so no value is inferred first: pandas' own
    ``engine="pyarrow"`` infers types and casts back to text with pyarrow < 25 or pandas < 3.1.1, where ``007``
    became ``7`` and ``...+08:00`` a UTC time. The columns are named as the C parser names them (empty and
    repeated headers), which parses the header line alone."""
    raw_names = header_fields(text, sep)[0]
    names = [str(n) for n in pd.read_csv(io.StringIO(text), dtype=str, sep=sep, nrows=0).columns]
    convert = pacsv.ConvertOptions(column_types={name: pa.string() for name in raw_names},
                                   strings_can_be_null=False, quoted_strings_can_be_null=False)
    table = pacsv.read_csv(io.BytesIO(data), parse_options=pacsv.ParseOptions(delimiter=sep),
                           convert_options=convert)
    if table.num_columns != len(names):  # Arrow and the C parser read the header differently: the C parser
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=sep)  # decides (never infers)
    text_dtype = pd.StringDtype(na_value=float("nan"))
    return table.rename_columns(names).to_pandas(
        types_mapper=lambda t: text_dtype if pa.types.is_string(t) or pa.types.is_large_string(t) else None)


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
    data = read_bytes(path, compressed, cfg)
    text, bad, utf8 = decode(data, cfg, path)
    if "\r" in text and "\n" not in text:  # classic Mac OS line ends (CR alone): read as lines too
        text, utf8 = text.replace("\r", "\n"), None
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
    try:
        return _csv_table(text, bad, utf8, sep, nrows, skip, (cfg, path, expect))
    except csv.Error as e:  # the lenient reader still refused the text: this file only is refused
        raise FileRefused(cfg.name, path, f"{path.name} cannot be read as CSV ({e})") from None


def _csv_table(text: str, bad: list[BadLine], utf8: bytes | None, sep: str, nrows: int | None, skip: int,
               where: tuple[SourceConfig, Path, _Expected]) -> RawTable:
    cfg, path, expect = where
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
    if isinstance(data, dict) and key is None and any(isinstance(value, list) for value in data.values()):
        # the records may be one of these arrays: the config must say which (every file is likely alike)
        raise ConfigError(f"sources[{cfg.name!r}].options.records_key",
                          f"{path.name} holds an object, not an array of records (keys: {', '.join(sorted(data))})",
                          "name the key that holds the records, e.g. options = { records_key = \"tickets\" }")
    # no array a setting could point at (an export's error object, a bare value): this file only is refused
    where = f" under {key!r}" if key is not None and isinstance(data, dict) else ""
    raise FileRefused(cfg.name, path, f"{path.name} holds {_json_kind(data)}, not an array of records{where}")


def _json_kind(data: Any) -> str:
    if isinstance(data, dict):
        return f"an object (keys: {', '.join(sorted(data)[:10]) or 'none'})"
    return json_kind(data)


def _read_json(path: Path, cfg: SourceConfig, compressed: bool, lines: bool,
               expect: _Expected) -> RawTable:
    """JSON has no header line and leaves out keys without a value: only required keys are checked."""
    text, bad, _ = decode(read_bytes(path, compressed, cfg), cfg, path)
    if not text or text.isspace():  # isspace stops at the first character that is not
        return RawTable(pd.DataFrame(), bad)
    if lines:
        records, more = ndjson_records(text)
    else:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:  # also nested past Python's depth, or a number of 4300+ digits
            raise FileRefused(cfg.name, path, f"{path.name} is not valid JSON: {first_line(e)}") from None
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


def read_table(path: Path, cfg: SourceConfig, sheet: str | None = None, nrows: int | None = None,
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
                          f"use a file ending in {', '.join(sorted(FORMATS))} (optionally .gz)")
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
    return read_table(path, cfg, sheet).frame


def read_export(path: Path, cfg: SourceConfig, headers: Mapping[str, str]) -> RawTable:
    """One export file read as a source's files are (encodings, ``.gz``, bad lines quarantined, blank rows
    dropped), refused (``FileRefused``) unless it has every header of ``headers`` (header -> the setting that
    names it, quoted in the refusal)."""
    expect = _Expected({h: (setting, True) for h, setting in headers.items()}, frozenset(headers))
    return read_table(Path(path), cfg, expect=expect)
