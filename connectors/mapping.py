"""Declarative mapping of a source's rows onto the canonical frames (KPIS.md 1).

A source row arrives with the source's own column names and every value as text (or None). The
config says which source column holds which canonical one (``columns`` / ``event_columns``, identity
when omitted), how source statuses, priorities, types and event kinds read canonically (the ``*_map``
settings), which tokens mean "empty" and how timestamps are written. Everything here is vectorised:
problems are boolean masks, and each row that cannot be used goes to the rejected frame with the
first problem found as its reason, never a guess.

    map_tickets(raw, cfg) -> (tickets, rejected)
    map_events(raw, cfg)  -> (events, rejected)
    read_timestamps(values, cfg) -> Timestamps (UTC values and what was wrong with the others)
    parse_timestamps(values, cfg) -> (utc, bad)

A timestamp is used only inside ``TIMESTAMP_RANGE`` (1970-01-01 to 2100-01-01 UTC, see
docs/bad-input.md): a year 9999 or 1900 in an export is a placeholder or a typo, never a time.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import SourceConfig
from connectors.options import REST_KINDS, option
from kpis.errors import ConfigError
from kpis.schema import (
    EVENT_COLUMNS,
    INT,
    PRIORITIES,
    REJECTED_COLUMNS,
    STATUSES,
    TICKET_COLUMNS,
    TICKET_TYPES,
    TS,
    conform,
)

__all__ = [
    "map_events",
    "map_tickets",
    "normalise_nulls",
    "parse_timestamps",
    "raw_json",
    "read_timestamps",
    "rejected_rows",
    "require_offsets_or_timezone",
    "RowReasons",
    "TIMESTAMP_RANGE",
    "TIMESTAMP_RANGE_TEXT",
    "Timestamps",
]

log = logging.getLogger(__name__)

# A clock time followed by a UTC offset or zone designator: the value says where it was written.
# Matched by Arrow (RE2, ~10x faster than Python's re over 1M values), so Python's Unicode classes
# are spelled out: \d is \p{Nd}, \s is what str.isspace() accepts.
_SPACE = r"[\s\p{Z}\x{0b}\x{1c}-\x{1f}\x{85}]"
_HAS_OFFSET = (r"\p{Nd}{1,2}:\p{Nd}{2}(?::\p{Nd}{2})?(?:[.,]\p{Nd}+)?" + _SPACE
               + r"*(?:[zZ]|UTC|GMT|[+-]\p{Nd}{2}(?::?\p{Nd}{2})?)$")
_EPOCH_UNITS = {"ms": "ms", "s": "s"}
# A DST gap is shifted the way zoneinfo reads fold=0 (the offset before the change) for 1-hour gaps.
_DST_GAP = pd.Timedelta("1h")
# The instants a timestamp may be, [start, end) in UTC. Outside: a placeholder (1900-01-01, 9999-12-31)
# or a typo, and downstream the calendars would build holidays for centuries and the periods overflow.
TIMESTAMP_RANGE = (pd.Timestamp("1970-01-01", tz="UTC"), pd.Timestamp("2100-01-01", tz="UTC"))
TIMESTAMP_RANGE_TEXT = "1970..2099"  # how reasons name the range
_HEADERS_SHOWN = 30  # a reason lists at most this many of the headers a source has

# The canonical values each mapped column may hold, and the config map that translates to them.
_VALUE_MAPS = {
    "ticket_type": ("type_map", TICKET_TYPES, "type"),
    "priority": ("priority_map", PRIORITIES, "priority"),
    "status": ("status_map", STATUSES, "status"),
}
_EVENT_VALUE_MAPS = {"status": ("status_map", STATUSES), "priority": ("priority_map", PRIORITIES)}


# --- small helpers -----------------------------------------------------------------------------

def _as_text(values: pd.Series) -> pd.Series:
    """Any series -> ``str`` dtype with whitespace stripped; missing stays missing."""
    if str(values.dtype) == "str":
        return values.str.strip()
    return values.astype("object").where(values.notna(), None).astype("str").str.strip()


def normalise_nulls(frame: pd.DataFrame, null_tokens: Iterable[str]) -> pd.DataFrame:
    """Strip every value and turn the null tokens (``''``, ``'?'``, ``'N/A'``, ...) into missing.

    Returns a new frame of ``str`` columns with the same index and column names.
    """
    tokens = list(dict.fromkeys([*null_tokens, ""]))
    out = {}
    for name in frame.columns:
        text = _as_text(frame[name])
        out[name] = text.where(~text.isin(tokens))
    return pd.DataFrame(out, index=frame.index, columns=frame.columns)


def _json_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as ISO 8601 text (UTC ones with ``Z``) so the JSON reads like the row, not epoch numbers."""
    out = frame.copy()
    for name in out.columns:
        s = out[name]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            iso = s.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif pd.api.types.is_datetime64_dtype(s):
            iso = s.dt.strftime("%Y-%m-%dT%H:%M:%S")
        else:
            continue
        out[name] = iso.astype("object").where(s.notna(), None)
    return out


def raw_json(frame: pd.DataFrame) -> pd.Series:
    """Each row as one compact JSON object (UTF-8 kept, nulls as ``null``), indexed like ``frame``."""
    if frame.empty:
        return pd.Series([], index=frame.index, dtype="str")
    frame = _json_ready(frame)
    frame.columns = [str(c) for c in frame.columns]
    lines = frame.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
    # pandas escapes "/" as "\/"; both are valid JSON, the plain one is easier to read.
    rows = pd.Series(lines.rstrip("\n").split("\n"), index=frame.index, dtype="str")
    return rows.str.replace("\\/", "/", regex=False)


def rejected_rows(raw: pd.DataFrame, reasons: pd.Series, source: str, ticket_ids: pd.Series | None,
                  row_kind: str) -> pd.DataFrame:
    """The ``rejected_rows`` frame for the rows of ``raw`` whose reason is set (run_id left null)."""
    bad = reasons.notna()
    n = int(bad.sum())
    ids = ticket_ids[bad] if ticket_ids is not None else pd.Series([None] * n, dtype="str")
    frame = pd.DataFrame({
        "source": [source] * n,
        "ticket_id": ids.to_numpy(dtype=object),
        "row_kind": [row_kind] * n,
        "raw": raw_json(raw[bad]).to_numpy(dtype=object),
        "reason": reasons[bad].to_numpy(dtype=object),
    })
    return conform(frame, REJECTED_COLUMNS)


class RowReasons:
    """The first problem found for each row of a frame; a later problem never overwrites an earlier one.

    Held as numpy arrays: a batch of 5M events takes some 30 checks, most of which find nothing new."""

    def __init__(self, index: pd.Index) -> None:
        self._index = index
        self._reasons = np.full(len(index), None, dtype=object)
        self._found = np.zeros(len(index), dtype=bool)

    @property
    def values(self) -> pd.Series:
        """Each row's first problem (missing where none), indexed like the frame."""
        return pd.Series(self._reasons, index=self._index, dtype="object")

    def add(self, mask: pd.Series | np.ndarray, reason: str, values: pd.Series | None = None) -> None:
        """Record ``reason`` where ``mask`` (aligned with the frame; missing is false) is true and the row has
        no reason yet.

        With ``values`` the reason reads ``reason 'value'``, built only for the rows it is recorded on.
        """
        new = _row_mask(mask) & ~self._found
        if not new.any():
            return
        text: Any = reason
        if values is not None:
            shown = pd.Series(np.asarray(pd.Series(values).take(np.flatnonzero(new)), dtype=object))
            text = (reason + " '" + shown.fillna("").astype("str") + "'").to_numpy(dtype=object)
        self._reasons[new] = text
        self._found |= new

    @property
    def ok(self) -> pd.Series:
        """True for the rows with no problem."""
        return pd.Series(~self._found, index=self._index)


def _row_mask(mask: pd.Series | np.ndarray) -> np.ndarray:
    """A row mask as a numpy bool array, by position; a missing value is false."""
    if getattr(mask, "dtype", None) == np.dtype(bool):
        return np.asarray(mask, dtype=bool)
    return np.asarray(pd.Series(mask).astype("boolean").fillna(False), dtype=bool)


# --- timestamps ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Timestamps:
    """One column of source timestamps read: UTC values, and a mask per kind of problem.

    ``utc`` is missing wherever a mask is true. ``no_offset`` marks naive values of a source without
    ``timezone``; ``has_offsets`` says whether any value of the column carried an offset (then those
    naive values are row errors, see ``require_offsets_or_timezone``).
    """

    utc: pd.Series
    unparseable: pd.Series
    out_of_range: pd.Series
    no_offset: pd.Series
    has_offsets: bool

    @property
    def bad(self) -> pd.Series:
        """True where a value is present but cannot be used."""
        return self.unparseable | self.out_of_range | self.no_offset

    def add_reasons(self, reasons: RowReasons, name: str, values: pd.Series) -> None:
        """Record each problem with the column's name and the value as written."""
        reasons.add(self.unparseable, f"unparseable {name}", values)
        reasons.add(self.out_of_range, f"{name} out of range {TIMESTAMP_RANGE_TEXT}", values)
        reasons.add(self.no_offset, f"no UTC offset in {name} (set sources.timezone)", values)


def _timezone_missing(cfg: SourceConfig, example: str | None = None) -> ConfigError:
    seen = f" (e.g. {example!r})" if example else ""
    return ConfigError(
        f"sources[{cfg.name!r}].timezone", f"is missing and the source has timestamps without a UTC offset{seen}",
        'set timezone = "Asia/Shanghai" (the zone the source writes its times in)')


def require_offsets_or_timezone(stamps: Timestamps, values: pd.Series, cfg: SourceConfig) -> None:
    """A column of naive values only, in a source without ``timezone``: a config error.

    ``values`` are the column as written. When some value of the column carries an offset, the
    source writes offsets and its naive values lost theirs: those are row errors instead (D40).
    """
    if cfg.timezone is None and not stamps.has_offsets and stamps.no_offset.any():
        raise _timezone_missing(cfg, str(values[stamps.no_offset.to_numpy()].iloc[0]).strip())


def _parse_epoch(text: pd.Series, unit: str) -> pd.Series:
    numbers = pd.to_numeric(text, errors="coerce")
    return pd.to_datetime(numbers, unit=unit, utc=True, errors="coerce")


def _parse_naive(text: pd.Series, cfg: SourceConfig) -> pd.Series:
    """Values without an offset -> naive datetimes (ISO 8601 first, then the inferred format)."""
    if cfg.timestamp_format:
        return pd.to_datetime(text, format=cfg.timestamp_format, errors="coerce")
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    rest = parsed.isna() & text.notna()
    if rest.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "could not infer format": dateutil per element
            other = pd.to_datetime(text[rest], dayfirst=cfg.dayfirst, errors="coerce")
        if isinstance(other.dtype, pd.DatetimeTZDtype):  # an offset the pattern did not see: use it
            other = other.dt.tz_convert("UTC").dt.tz_localize(None)
            log.debug("source %s: %d values parsed with an unusual offset notation", cfg.name, len(other))
        parsed = parsed.astype("datetime64[us]")
        parsed[rest] = other.astype("datetime64[us]")
    return parsed


def has_offset_text(text: pd.Series) -> pd.Series:
    """Which (stripped) timestamp texts end in a zone: ``Z``, ``UTC``, ``GMT`` or an offset like ``+08:00``."""
    hits = pc.match_substring_regex(pa.array(text, type=pa.large_string(), from_pandas=True), _HAS_OFFSET)
    return pd.Series(np.asarray(hits.fill_null(False)), index=text.index)


def _localize(naive: pd.Series, timezone: str) -> pd.Series:
    """Naive wall-clock times in ``timezone`` -> UTC (fold=0 for repeated and missing times)."""
    ambiguous = np.ones(len(naive), dtype=bool)
    local = naive.dt.tz_localize(timezone, ambiguous=ambiguous, nonexistent=_DST_GAP)
    return local.dt.tz_convert("UTC")


def _epoch_unit(cfg: SourceConfig) -> str | None:
    """The unit of a file source's epoch-number timestamps (``options.epoch``), None for text ones."""
    return _EPOCH_UNITS.get(str(option(cfg, "epoch"))) if cfg.kind not in REST_KINDS else None


def _parse_present(text: pd.Series, cfg: SourceConfig) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Present values -> (UTC timestamps, NaT where not read; which carry their zone; which are naive
    values of a source without ``timezone``, left NaT)."""
    every = pd.Series(True, index=text.index)
    unit = _epoch_unit(cfg)
    if unit:
        return _parse_epoch(text, unit), every, ~every
    fmt = cfg.timestamp_format
    if fmt and ("%z" in fmt or "%Z" in fmt):
        return pd.to_datetime(text, format=fmt, utc=True, errors="coerce"), every, ~every
    has_offset = ~every if fmt else has_offset_text(text)
    out = pd.Series(pd.NaT, index=text.index, dtype=TS)
    if has_offset.any():
        out[has_offset] = pd.to_datetime(text[has_offset], format="ISO8601", utc=True, errors="coerce").astype(TS)
        retry = has_offset & out.isna()
        if retry.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                out[retry] = pd.to_datetime(text[retry], utc=True, dayfirst=cfg.dayfirst, errors="coerce").astype(TS)
    no_tz = ~every
    naive = ~has_offset
    if naive.any():
        parsed = _parse_naive(text[naive], cfg)
        if cfg.timezone is None:
            no_tz[naive] = parsed.notna().to_numpy()
        else:
            out[naive] = _localize(parsed, cfg.timezone).astype(TS)
    return out, has_offset, no_tz


def _distinct_texts(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """(each row's code, -1 where missing; the distinct texts in code order): work out something once per
    distinct text, then ``_spread`` it back to the rows."""
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    return codes, pd.Series(distinct, dtype="str")


def _spread(per_distinct: pd.Series, codes: np.ndarray, index: pd.Index, fill: Any) -> pd.Series:
    """Values computed once per distinct text, spread back to every row (``fill`` where missing)."""
    return pd.Series(per_distinct.array.take(codes, allow_fill=True, fill_value=fill), index=index,
                     dtype=per_distinct.dtype)


def read_timestamps(values: pd.Series, cfg: SourceConfig) -> Timestamps:
    """Source timestamps -> ``Timestamps``: UTC ``datetime64[us, UTC]`` truncated to whole seconds.

    Values with an offset (ISO 8601 ``Z`` / ``+08:00``) keep it; naive values are wall-clock time in
    ``cfg.timezone`` (without one they are marked ``no_offset``). Honours ``cfg.timestamp_format``
    (strftime), ``cfg.dayfirst`` and ``cfg.options['epoch']`` (``'ms'``/``'s'``). A value outside
    ``TIMESTAMP_RANGE`` is marked ``out_of_range``; one that cannot be read, ``unparseable``.
    """
    text = _as_text(values)
    return _iso_timestamps(text, cfg) or _distinct_timestamps(text, cfg)


def _iso_timestamps(text: pd.Series, cfg: SourceConfig) -> Timestamps | None:
    """``read_timestamps`` of a column whose every present value is ISO 8601 that Arrow reads, as a
    program writes its exports (Arrow: ~20 ns a value; numbering the texts and parsing each distinct one
    through pandas: ~1 us). None for any other column (a source format or epoch setting, another notation,
    one bad value): ``_distinct_timestamps`` reads it, and for these columns both give the same."""
    if cfg.timestamp_format or _epoch_unit(cfg):
        return None
    present = text.notna().to_numpy() & (text != "").to_numpy(dtype=bool, na_value=False)
    offset = present & has_offset_text(text).to_numpy()
    naive = present & ~offset
    texts = pa.array(text, type=pa.large_string(), from_pandas=True)
    try:
        aware = texts.filter(pa.array(offset)).cast(pa.timestamp("us", tz="UTC"))
        wall = texts.filter(pa.array(naive)).cast(pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    micros = np.full(len(text), _NAT_MICROS, dtype="int64")
    micros[offset] = aware.cast(pa.int64()).to_numpy()
    if cfg.timezone is not None and len(wall):
        local = _localize(pd.Series(wall.cast(pa.int64()).to_numpy().view("datetime64[us]")), cfg.timezone)
        micros[naive] = local.astype(TS).array.asi8
    return _checked_micros(micros, text.index, no_offset=naive if cfg.timezone is None else None,
                           has_offsets=bool(offset.any()))


_NAT_MICROS = np.iinfo("int64").min
_MICROS = 1_000_000
_RANGE_MICROS = tuple(int(bound.value // 1000) for bound in TIMESTAMP_RANGE)


def _checked_micros(micros: np.ndarray, index: pd.Index, *, no_offset: np.ndarray | None,
                    has_offsets: bool) -> Timestamps:
    """UTC microseconds (the least int64: none) floored to whole seconds and checked against
    ``TIMESTAMP_RANGE``; ``no_offset``: the naive values of a source without a timezone (left missing)."""
    known = micros != _NAT_MICROS
    micros = np.where(known, micros - micros % _MICROS, _NAT_MICROS)
    low, high = _RANGE_MICROS
    out_of_range = known & ((micros < low) | (micros >= high))
    micros[out_of_range] = _NAT_MICROS
    no_offset = np.zeros(len(micros), dtype=bool) if no_offset is None else no_offset
    utc = pd.Series(pd.DatetimeIndex(micros.view("datetime64[us]")).tz_localize("UTC"), index=index)
    return Timestamps(utc=utc, unparseable=pd.Series(False, index=index),
                      out_of_range=pd.Series(out_of_range, index=index), no_offset=pd.Series(no_offset, index=index),
                      has_offsets=has_offsets)


def _distinct_timestamps(text: pd.Series, cfg: SourceConfig) -> Timestamps:
    """``read_timestamps`` of any column (``text``: stripped), each distinct text parsed once (exports repeat
    timestamps a lot: snapshots copy opened_at into every row) and the results spread back by code."""
    codes, distinct = _distinct_texts(text)
    distinct = distinct.where(distinct != "")
    parsed = pd.Series(pd.NaT, index=distinct.index, dtype=TS)
    aware = pd.Series(False, index=distinct.index)
    no_tz = pd.Series(False, index=distinct.index)
    present = distinct.notna()
    if present.any():
        parsed[present], aware[present], no_tz[present] = _parse_present(distinct[present], cfg)
    parsed = parsed.dt.floor("s").astype(TS)
    low, high = TIMESTAMP_RANGE
    out_of_range = parsed.notna() & ((parsed < low) | (parsed >= high))
    parsed = parsed.where(~out_of_range)
    unparseable = present & parsed.isna() & ~out_of_range & ~no_tz
    return Timestamps(
        utc=_spread(parsed, codes, text.index, pd.NaT),
        unparseable=_spread(unparseable, codes, text.index, False),
        out_of_range=_spread(out_of_range, codes, text.index, False),
        no_offset=_spread(no_tz, codes, text.index, False),
        has_offsets=bool(aware.any()),
    )


def parse_timestamps(values: pd.Series, cfg: SourceConfig) -> tuple[pd.Series, pd.Series]:
    """Source timestamps -> (UTC timestamps, mask of present values that cannot be used).

    ``read_timestamps`` with its problems folded into one mask; a column of naive values only in a
    source without ``timezone`` is a ``ConfigError`` naming ``sources[..].timezone``.
    """
    stamps = read_timestamps(values, cfg)
    require_offsets_or_timezone(stamps, values, cfg)
    return stamps.utc, stamps.bad


# --- shared column mapping -----------------------------------------------------------------------

def _source_column(canonical: str, columns: Mapping[str, str]) -> str:
    return columns.get(canonical, canonical)


def _pick(raw: pd.DataFrame, canonical: str, columns: Mapping[str, str]) -> pd.Series | None:
    """The source column holding ``canonical``, or None when the source has no such column."""
    name = _source_column(canonical, columns)
    return raw[name] if name in raw.columns else None


def _map_values(values: pd.Series, mapping: Mapping[str, str], canonical: Iterable[str]) -> tuple[pd.Series, pd.Series]:
    """Translate through ``mapping``; canonical values pass through. -> (mapped, present-but-unmapped mask).

    Each distinct text is translated once (a status column holds a few texts in 1M rows)."""
    codes, distinct = _distinct_texts(values)
    mapped = _mapped_texts(distinct, mapping, canonical)
    return _spread(mapped, codes, values.index, np.nan), _spread(mapped.isna(), codes, values.index, False)


def _mapped_texts(distinct: pd.Series, mapping: Mapping[str, str], canonical: Iterable[str]) -> pd.Series:
    """Each distinct text through ``mapping``, a canonical one as itself, any other missing (``str``)."""
    mapped = distinct.map(dict(mapping)) if mapping else pd.Series(None, index=distinct.index, dtype="object")
    return mapped.where(mapped.notna(), distinct.where(distinct.isin(list(canonical)))).astype("str")


#: Texts of plain digits, as many as float64 holds exactly: what a sequence column holds, one text per row
_PLAIN_COUNT = r"^[0-9]{1,15}$"


def _parse_count(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Whole numbers >= 0 (``3`` or ``3.0``) -> (Int64, present-but-bad mask).

    Plain digits are cast by Arrow in one pass: a sequence column (5M events) has a distinct text per row,
    and parsing each distinct text took 3.9 s against 0.25 s. Any other text is parsed once per distinct
    text (``_parse_distinct_counts``), as before."""
    if not isinstance(values.dtype, pd.StringDtype) or not len(values):
        return _parse_distinct_counts(values)
    text = pa.array(values.array, from_pandas=True)
    plain = pc.match_substring_regex(text, _PLAIN_COUNT).fill_null(False)
    is_plain = plain.to_numpy(zero_copy_only=False)
    numbers = np.zeros(len(values), dtype="int64")
    numbers[is_plain] = pc.cast(text.filter(plain), pa.int64()).to_numpy(zero_copy_only=False)
    counts, bad = pd.arrays.IntegerArray(numbers, ~is_plain), np.zeros(len(values), dtype=bool)
    rest = ~is_plain & values.notna().to_numpy()
    if rest.any():
        parsed, rest_bad = _parse_distinct_counts(values[rest])
        counts[rest] = parsed.array
        bad[rest] = rest_bad.to_numpy(dtype=bool)
    return pd.Series(counts, index=values.index), pd.Series(bad, index=values.index)


def _parse_distinct_counts(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``_parse_count``, each distinct text parsed once."""
    codes, distinct = _distinct_texts(values)
    numbers = pd.to_numeric(distinct, errors="coerce")
    good = numbers.notna() & (numbers >= 0) & (numbers == np.floor(numbers.fillna(0)))
    out = numbers.where(good).astype("Float64").astype(INT)
    return _spread(out, codes, values.index, pd.NA), _spread(~good, codes, values.index, False)


def _missing_columns(raw: pd.DataFrame, columns: dict, mapping: Mapping[str, str], optional: set[str]) -> list[str]:
    """Required canonical columns whose source column is absent (``optional`` ones are filled otherwise)."""
    return [c.name for c in columns.values()
            if c.required and c.name not in optional and _source_column(c.name, mapping) not in raw.columns]


def _missing_column_reason(raw: pd.DataFrame, canonical: str, columns: Mapping[str, str]) -> str:
    """``missing column 'opened_at' (source column 'Opened'; headers: Number, State)``: what the rows had."""
    names = [str(c) for c in raw.columns]
    shown = ", ".join(names[:_HEADERS_SHOWN]) + (f", ... ({len(names)} in all)" if len(names) > _HEADERS_SHOWN else "")
    return f"missing column '{canonical}' (source column '{_source_column(canonical, columns)}'; headers: {shown or 'none'})"


# --- tickets -------------------------------------------------------------------------------------

def _ticket_type(raw: pd.DataFrame, cfg: SourceConfig) -> pd.Series | None:
    """The type column, with ``default_ticket_type`` filling a missing column or missing values."""
    values = _pick(raw, "ticket_type", cfg.columns)
    if cfg.default_ticket_type is None:
        return values
    default = cfg.type_map.get(cfg.default_ticket_type, cfg.default_ticket_type)
    if default not in TICKET_TYPES:
        raise ConfigError(f"sources[{cfg.name!r}].default_ticket_type", f"{cfg.default_ticket_type!r} is not a ticket type",
                          f"use one of {', '.join(TICKET_TYPES)}")
    if values is None:
        return pd.Series(default, index=raw.index, dtype="str")
    return values.fillna(default)


def _ticket_column(raw: pd.DataFrame, cfg: SourceConfig, name: str, reasons: RowReasons) -> pd.Series | None:
    """One canonical ticket column, parsed; problems recorded in ``reasons``."""
    values = _ticket_type(raw, cfg) if name == "ticket_type" else _pick(raw, name, cfg.columns)
    if values is None:
        return None
    dtype = TICKET_COLUMNS[name].dtype
    if name in _VALUE_MAPS:
        map_name, canonical, label = _VALUE_MAPS[name]
        mapped, bad = _map_values(values, getattr(cfg, map_name), canonical)
        reasons.add(bad, f"unmapped {label}", values)
        return mapped
    if dtype == TS:
        read = read_timestamps(values, cfg)
        require_offsets_or_timezone(read, values, cfg)
        read.add_reasons(reasons, name, values)
        return read.utc
    if dtype == INT:
        parsed, bad = _parse_count(values)
        reasons.add(bad, f"bad integer {name}", values)
        return parsed
    return values


def map_tickets(raw: pd.DataFrame, cfg: SourceConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw rows with the source's column names (values as str or None) -> (tickets, rejected).

    ``tickets`` follows ``kpis.schema.TICKET_COLUMNS``; ``rejected`` follows ``REJECTED_COLUMNS`` with
    the original row as JSON and the first problem found (an unmapped status, priority or type, an
    unparseable timestamp, a bad count, a missing required column). ``source`` is ``cfg.name``.
    """
    norm = normalise_nulls(raw, cfg.null_tokens)
    reasons = RowReasons(norm.index)
    optional = {"source"} | ({"ticket_type"} if cfg.default_ticket_type else set())
    for name in _missing_columns(norm, TICKET_COLUMNS, cfg.columns, optional):
        reasons.add(pd.Series(True, index=norm.index), _missing_column_reason(norm, name, cfg.columns))
    out = {}
    for name in TICKET_COLUMNS:
        if name != "source":
            col = _ticket_column(norm, cfg, name, reasons)
            if col is not None:
                out[name] = col
    tickets = pd.DataFrame(out, index=norm.index)
    tickets["source"] = cfg.name
    ids = tickets["ticket_id"] if "ticket_id" in tickets else None
    rejected = rejected_rows(raw, reasons.values, cfg.name, ids, "ticket")
    good = reasons.values.isna()
    _log_rejections(cfg, "ticket", len(raw), rejected)
    return conform(tickets[good], TICKET_COLUMNS), rejected


# --- events --------------------------------------------------------------------------------------

def _event_kind(values: pd.Series, cfg: SourceConfig) -> pd.Series:
    """Source kinds -> canonical kinds; a kind neither mapped nor canonical stays as is (validate rejects it)."""
    if not cfg.event_kind_map:
        return values
    mapped = values.map(dict(cfg.event_kind_map))
    return mapped.where(mapped.notna(), values).astype("str")


def _event_values(kind: pd.Series, values: pd.Series, cfg: SourceConfig, reasons: RowReasons) -> pd.Series:
    """Status and priority event values mapped like the ticket columns; other kinds pass through.

    The values are numbered once and each kind's rows replaced by position (5M events: 0.4 s; selecting
    and setting each kind's rows by index label took 1.7 s)."""
    codes, distinct = _distinct_texts(values)
    out = pa.array(values.array, from_pandas=True)
    for event_kind, (map_name, canonical) in _EVENT_VALUE_MAPS.items():
        rows = (kind == event_kind).to_numpy(dtype=bool, na_value=False)
        if not rows.any():
            continue
        mapped = _mapped_texts(distinct, getattr(cfg, map_name), canonical)
        reasons.add(rows & _spread(mapped.isna(), codes, values.index, False).to_numpy(), f"unmapped {event_kind}",
                    values)
        texts = pa.array(_spread(mapped, codes, values.index, np.nan).array, from_pandas=True)
        out = pc.if_else(pa.array(rows), texts.cast(out.type), out)
    return pd.Series(pd.array(out, dtype=values.dtype), index=values.index)


def _event_seq(norm: pd.DataFrame, cfg: SourceConfig, reasons: RowReasons) -> pd.Series:
    """The source's own ``seq`` when it has one, else the row's position in the input."""
    values = _pick(norm, "seq", cfg.event_columns)
    if values is None:
        return pd.Series(np.arange(len(norm)), index=norm.index, dtype=INT)
    parsed, bad = _parse_count(values)
    reasons.add(bad, "bad integer seq", values)
    return parsed.fillna(pd.Series(np.arange(len(norm)), index=norm.index))


def map_events(raw: pd.DataFrame, cfg: SourceConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw event rows -> (events per ``kpis.schema.EVENT_COLUMNS``, rejected).

    ``kind`` goes through ``event_kind_map``; the value of a ``status`` event through ``status_map`` and
    of a ``priority`` event through ``priority_map`` (unmapped: rejected). ``seq`` is the row's position
    in the input when the source has no sequence column.
    """
    norm = normalise_nulls(raw, cfg.null_tokens)
    reasons = RowReasons(norm.index)
    for name in _missing_columns(norm, EVENT_COLUMNS, cfg.event_columns, {"source", "seq"}):
        reasons.add(pd.Series(True, index=norm.index), _missing_column_reason(norm, name, cfg.event_columns))
    out: dict[str, pd.Series] = {}
    for name in ("ticket_id", "kind", "value", "actor"):
        col = _pick(norm, name, cfg.event_columns)
        if col is not None:
            out[name] = col
    at = _pick(norm, "at", cfg.event_columns)
    if at is not None:
        read = read_timestamps(at, cfg)
        read.add_reasons(reasons, "at", at)
        require_offsets_or_timezone(read, at, cfg)
        out["at"] = read.utc
    if "kind" in out:
        out["kind"] = _event_kind(out["kind"], cfg)
        if "value" in out:
            out["value"] = _event_values(out["kind"], out["value"], cfg, reasons)
    out["seq"] = _event_seq(norm, cfg, reasons)
    events = pd.DataFrame(out, index=norm.index)
    events["source"] = cfg.name
    ids = events["ticket_id"] if "ticket_id" in events else None
    rejected = rejected_rows(raw, reasons.values, cfg.name, ids, "event")
    _log_rejections(cfg, "event", len(raw), rejected)
    return conform(events[reasons.values.isna()], EVENT_COLUMNS), rejected


def _log_rejections(cfg: SourceConfig, row_kind: str, n: int, rejected: pd.DataFrame) -> None:
    if len(rejected):
        top = rejected["reason"].str.split(" '").str[0].value_counts().head(3)
        log.warning("source %s: %d of %d %s rows rejected (%s)", cfg.name, len(rejected), n, row_kind,
                    ", ".join(f"{r}: {c}" for r, c in top.items()))
