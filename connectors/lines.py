"""Text exports that are not clean, read line by line so that one broken line costs one line.

``connectors.files`` decodes a whole file and hands it to Arrow's CSV reader; that fast path stays as
it is for clean files. Only when it fails does this module run, on that file alone:

- ``looks_like_utf8`` / ``decode_lines``: whether a file with undecodable bytes is still UTF-8, and
  its text with each line the encoding cannot decode blanked and reported;
- ``blank_lines``: the same for lines holding a NUL character (a truncated or padded file);
- ``csv_without_bad_lines``: CSV text without the physical lines that are not records (a quote that
  never closes, a wrong number of fields), found with Python's ``csv`` module one record at a time;
- ``ndjson_records`` / ``json_objects``: one JSON document per line, or the elements of an array,
  a bad one reported instead of failing the file.

Those loop over lines (or search once per bad line) in Python: bounded by the file's size, run only
on a file that the fast path refused. Two small questions run on every CSV file: ``header_fields``
(its first record) and ``swallowed_lines`` (asked only when byte counts say a value spans lines).
Line numbers are 1-based physical lines of the file, banner lines included.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = [
    "BadLine",
    "blank_lines",
    "csv_without_bad_lines",
    "decode_lines",
    "header_fields",
    "json_objects",
    "looks_like_utf8",
    "ndjson_records",
    "swallowed_lines",
]

_UNDECODED = re.compile("[\udc80-\udcff]")  # what ``surrogateescape`` makes of a byte it cannot decode
_NUL = re.compile("\x00")


@dataclass(frozen=True)
class BadLine:
    """One line (or JSON record) of a file that could not be read: where, its text as read, and why."""

    number: int
    text: str
    reason: str
    unit: str = "line"  # "line", or "record" for an element of a JSON array


def _lines_holding(text: str, pattern: re.Pattern[str]) -> list[tuple[int, int, int]]:
    """(line number, start, end) of each line of ``text`` where ``pattern`` matches; one search per line
    found, so a line full of matches costs one."""
    out: list[tuple[int, int, int]] = []
    number, counted_to = 1, 0
    hit = pattern.search(text)
    while hit is not None:
        pos = hit.start()
        number += text.count("\n", counted_to, pos)
        start = text.rfind("\n", 0, pos) + 1
        end = text.find("\n", pos)
        out.append((number, start, len(text) if end < 0 else end))
        if end < 0:
            break
        counted_to = end
        hit = pattern.search(text, end + 1)
    return out


def _blank(text: str, bounds: list[tuple[int, int, int]]) -> str:
    """``text`` with the given lines emptied (their line ends kept, so line numbers stay)."""
    pieces, last = [], 0
    for _, start, end in bounds:
        pieces.append(text[last:start])
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def looks_like_utf8(data: bytes, errors_seen: int = 16, window: int = 1 << 20) -> bool:
    """Is ``data``, which is not clean UTF-8, still UTF-8 with a few bad bytes?

    Reads it ``window`` bytes at a time from error to error (at most ``errors_seen`` errors, so a GBK
    file answers within its first line): true when the valid stretches hold more multi-byte
    continuation bytes than there are errors. A GBK character is valid UTF-8 by chance about once in
    eight; UTF-8 text has thousands. (Windows, because the error of a decode copies all its input.)
    """
    view = memoryview(data)
    pos = errors = continuation = 0
    while pos < len(view) and errors < errors_seen:
        chunk = view[pos:pos + window]
        try:
            text, used = codecs.utf_8_decode(chunk, "strict", pos + window >= len(view))
        except UnicodeDecodeError as e:
            text, used = codecs.utf_8_decode(chunk[:e.start], "strict", True)
            errors += 1
            pos += e.end - e.start  # past the bad bytes (the good ones are counted below)
        continuation += used - len(text)
        pos += used
    return continuation > errors


def decode_lines(data: bytes, encoding: str) -> tuple[str, list[BadLine], int]:
    """Decode ``data`` (an ASCII-compatible encoding) -> (text, the lines it cannot decode, number of
    lines holding non-ASCII bytes).

    Each undecodable line is blanked in ``text``; its ``BadLine`` text shows the bytes as ``\\xe9``.
    """
    text = data.decode(encoding, errors="surrogateescape")
    bounds = _lines_holding(text, _UNDECODED)
    reason = f"line is not valid {encoding} (set sources.encoding if the file uses another encoding)"
    bad = [BadLine(n, _shown(text[start:end], encoding), reason) for n, start, end in bounds]
    non_ascii = sum(1 for line in data.split(b"\n") if not line.isascii())
    return _blank(text, bounds), bad, non_ascii


def _shown(line: str, encoding: str) -> str:
    """A line with undecodable bytes as ``\\xNN`` (the rest as decoded), without its ``\\r``."""
    raw = line.encode(encoding, errors="surrogateescape")
    return raw.decode(encoding, errors="backslashreplace").removesuffix("\r")


def blank_lines(text: str, reason: str = "NUL byte in line") -> tuple[str, list[BadLine]]:
    """``text`` with every line holding a NUL blanked, and those lines (NUL shown as ``\\x00``)."""
    bounds = _lines_holding(text, _NUL)
    bad = [BadLine(n, text[start:end].replace("\x00", "\\x00").removesuffix("\r"), reason)
           for n, start, end in bounds]
    return _blank(text, bounds), bad


# --- CSV -----------------------------------------------------------------------------------------

@contextmanager
def _any_field_size() -> Iterator[None]:
    """``csv`` refuses fields over 128 KiB by default; a long description is data, not a broken line."""
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(limit)


def _fields(line: str, sep: str) -> int:
    """How many fields a line would have if it had no quotes."""
    return line.count(sep) + 1


def _looks_like_records(lines: list[str], sep: str, width: int) -> bool:
    """Do any of these lines (inside one quoted value) hold a whole record of ``width`` fields?

    Only asked for files of 3 or more columns: a ticket export always has them, and with fewer a
    sentence with one comma would look like a record.
    """
    return width >= 3 and any(_fields(line, sep) >= width for line in lines)


@dataclass
class _Scan:
    """The state of ``csv_without_bad_lines``: the lines, what a record is, and what was found so far."""

    lines: list[str]
    sep: str
    width: int
    first_number: int
    bad: list[BadLine] = field(default_factory=list)
    blank: list[int] = field(default_factory=list)
    _offsets: list[int] | None = None

    def _problem(self, fields: list[str], start: int, end: int) -> str | None:
        """Why the record on lines [start, end) is not one of ``width`` fields (None: it is)."""
        if end - start > 1 and (len(fields) != self.width
                                or _looks_like_records(self.lines[start + 1:end], self.sep, self.width)):
            return "unbalanced quote (a quoted field that does not close where the record ends)"
        if len(fields) != self.width:
            return f"wrong number of fields ({len(fields)}, header has {self.width})"
        return None

    def _offset(self, i: int) -> int:
        """The character offset of line ``i`` in the text (the offsets are counted once, when first needed)."""
        if i == 0:
            return 0
        if self._offsets is None:
            self._offsets = [0, *itertools.accumulate(len(line) + 1 for line in self.lines)]
        return self._offsets[i]

    def scan_from(self, source: io.StringIO, i: int) -> int:
        """Read records of ``source`` (the text) from line ``i`` until one is broken; the line to go on
        from (all read: the end)."""
        source.seek(self._offset(i))
        reader = csv.reader(source, delimiter=self.sep, strict=False)
        start = i
        while True:
            try:
                fields = next(reader, None)
            except csv.Error as e:  # e.g. a lone carriage return inside an unquoted field
                why = "a carriage return inside a field" if "new-line character" in str(e) else str(e)
                self.bad.append(BadLine(self.first_number + start, self.lines[start].removesuffix("\r"),
                                        f"unreadable CSV line ({why})"))
                return start + 1
            if fields is None:
                return len(self.lines)
            end = i + reader.line_num
            problem = self._problem(fields, start, end)
            if problem is not None:
                if end - start == 1 and not "".join(fields).strip():
                    self.blank.append(start)  # nothing in it: layout, like a blank line
                else:
                    self.bad.append(BadLine(self.first_number + start, self.lines[start].removesuffix("\r"), problem))
                    return start + 1
            start = end

    def cleaned(self) -> str:
        """The text with the bad and the blank lines emptied."""
        for k in itertools.chain(self.blank, (b.number - self.first_number for b in self.bad)):
            self.lines[k] = ""
        return "\n".join(self.lines)


def csv_without_bad_lines(text: str, sep: str, header_index: int, width: int, first_number: int = 1
                          ) -> tuple[str, list[BadLine]]:
    """CSV ``text`` with the lines after its header (line ``header_index``, 0-based) that start no
    record of ``width`` fields emptied, and those lines; lines with nothing in them are emptied too.

    Reads records with ``csv`` (quotes open only at the start of a field, ``""`` escapes): a record
    must have ``width`` fields, and one that runs over several lines must hold no line that is a
    whole record itself. Otherwise its first line is bad and reading starts again at the next line,
    so a quote that never closes costs its own line only. ``first_number`` is the file's line number
    of ``text``'s first line.
    """
    scan = _Scan(text.split("\n"), sep, width, first_number)
    source = io.StringIO(text, newline="\n")  # one copy of the text, read from wherever a scan restarts
    i = header_index + 1
    with _any_field_size():
        while i < len(scan.lines):
            i = scan.scan_from(source, i)
    return scan.cleaned(), scan.bad


def _lines_from(text: str, pos: int) -> Iterator[str]:
    """The lines of ``text`` from character ``pos`` on, with their line ends, read lazily."""
    while pos < len(text):
        end = text.find("\n", pos)
        if end < 0:
            yield text[pos:]
            return
        yield text[pos:end + 1]
        pos = end + 1


def header_fields(text: str, sep: str) -> tuple[list[str], int]:
    """The header record of CSV ``text`` (its first non-blank line) -> (fields, its 0-based line index).

    Reads only the first lines: cheap enough for the fast path.
    """
    pos = index = 0
    while True:
        end = text.find("\n", pos)
        if end < 0 or text[pos:end].strip():
            break
        pos, index = end + 1, index + 1
    with _any_field_size():
        fields = next(csv.reader(_lines_from(text, pos), delimiter=sep, strict=False), [])
    return fields, index


def swallowed_lines(frame: pd.DataFrame, sep: str) -> bool:
    """Does a value of the parsed ``frame`` hold whole records (a quote that never closed)?

    Looks only at values with a line break (a vectorised test per column, usually finding none).
    """
    width = len(frame.columns)
    if width < 3:
        return False
    for name in frame.columns:
        col = frame[name]
        multi = col[col.str.contains("\n", regex=False, na=False).to_numpy(dtype=bool)]
        for value in multi:  # values with a line break: few, and only in files that have them
            if _looks_like_records(value.split("\n")[1:], sep, width):
                return True
    return False


# --- NDJSON --------------------------------------------------------------------------------------

def ndjson_records(text: str) -> tuple[list[dict[str, Any]], list[BadLine]]:
    """One JSON object per line -> (the objects, the lines that are not one). Blank lines are skipped."""
    records: list[dict[str, Any]] = []
    bad: list[BadLine] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            bad.append(BadLine(number, line.removesuffix("\r"), f"invalid JSON ({e.msg} at column {e.colno})"))
            continue
        except (ValueError, RecursionError) as e:  # nested past Python's depth, a number of 4300+ digits
            bad.append(BadLine(number, line.removesuffix("\r"), f"unreadable JSON ({str(e)[:120]})"))
            continue
        if isinstance(value, dict):
            records.append(value)
        else:
            bad.append(BadLine(number, line.removesuffix("\r"), _not_an_object(value)))
    return records, bad


def json_objects(values: list[Any]) -> tuple[list[dict[str, Any]], list[BadLine]]:
    """The elements of a JSON array -> (the objects, the others as bad records numbered from 1)."""
    records = [v for v in values if isinstance(v, dict)]
    if len(records) == len(values):
        return records, []
    bad = [BadLine(k, json.dumps(v, ensure_ascii=False), _not_an_object(v), "record")
           for k, v in enumerate(values, start=1) if not isinstance(v, dict)]
    return records, bad


def _not_an_object(value: Any) -> str:
    """``JSON record is an array, not an object``."""
    return f"JSON record is {json_kind(value)}, not an object"


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, as a message names it: ``an object``, ``a number``, ``null``..."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
