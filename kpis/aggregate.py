"""Per-engineer and per-team KPIs per period (KPIS.md 4).

Each KPI family has an anchor timestamp that decides its period. For every family we take the
tickets it applies to, find the anchor's local date in the reporting timezone once, derive each
grain's ``period_start`` from it, and group. The families are then joined on
(grain, period_start, who, ticket_type); counts missing from a family are 0, rates are
numerator / denominator and null on a zero denominator.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kpis.config import KpiSettings
from kpis.percentile import SortCodes, code_dtype, percentile_cont
from kpis.schema import KPI_ENGINEER_COLUMNS, KPI_TEAM_COLUMNS, KPI_VERSION, conform
from kpis.vocabulary import positions_in

SECONDS_PER_MINUTE = 60.0
#: The ``ticket_facts`` columns the aggregates and the scorecard read: a caller holding many facts may
#: pass only these (tests/kpis/test_properties.py checks the tables come out the same).
FACTS_READ = ("source", "ticket_id", "ticket_type", "engineer", "team", "client", "service", "category", "priority",
              "excluded_reason", "opened_at",
              "resolved_at", "satisfaction_at", "planned_end", "response_business_s", "response_sla",
              "resolution_business_s", "resolution_sla", "first_fix", "reopened", "diagnosis_assessable",
              "diagnosis_accurate", "csat_score", "csat_satisfied", "maintenance_on_time", "caused_by",
              "induced_incident", "as_of")
_FIXABLE = ("incident", "request")
# Counts that make a row exist (KPIS.md 4).
ROW_COUNTS = ("opened_count", "resolved_count", "csat_answered", "maintenance_due", "induced_incidents")
RATES = {
    "response_sla_rate": ("response_sla_met", ("response_sla_met", "response_sla_breached")),
    "resolution_sla_rate": ("resolution_sla_met", ("resolution_sla_met", "resolution_sla_breached")),
    "first_fix_rate": ("first_fix_count", ("resolved_count",)),
    "reopen_rate": ("reopened_count", ("resolved_count",)),
    "accuracy_rate": ("accuracy_correct", ("accuracy_assessable",)),
    "csat_rate": ("csat_satisfied", ("csat_answered",)),
    "maintenance_on_time_rate": ("maintenance_on_time", ("maintenance_due",)),
}


@dataclass(frozen=True)
class Family:
    """Tickets that one group of KPIs counts, with the local day of the anchor that decides their period."""

    rows: pd.DataFrame  # columns: who (code), ticket_type (code), day (datetime64[D]) and its measures


def aggregate(facts: pd.DataFrame, settings: KpiSettings, by: str = "engineer",
              rows: KpiRows | None = None, only: pd.DataFrame | None = None, *,
              every_group: bool = False) -> pd.DataFrame:
    """``kpi_engineer`` (by="engineer") or ``kpi_team`` (by="team") rows for every configured grain.

    ``rows`` (from ``kpi_rows``) may be passed when several aggregates are made from the same facts.
    ``only``: (grain, period_start, ``by``) groups; when given, only their rows are computed.
    ``every_group``: also the groups KPIS.md 4 leaves out of the table (none of ``ROW_COUNTS`` above 0, such
    as a maintenance ticket's resolution verdict alone), which the scorecard's totals still count;
    ``with_activity`` then gives the table's rows.
    """
    columns = KPI_ENGINEER_COLUMNS if by == "engineer" else KPI_TEAM_COLUMNS
    table = aggregate_periods(facts, settings, by=by, by_type=True, rows=rows, only=only, every_group=every_group)
    return conform(table, columns)


def with_activity(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of an aggregate that KPIS.md 4 keeps: at least one of ``ROW_COUNTS`` above 0."""
    return table[_active(table)].reset_index(drop=True)


def _active(table: pd.DataFrame) -> np.ndarray:
    return (table[list(ROW_COUNTS)] > 0).any(axis=1).to_numpy()


@dataclass(frozen=True)
class KpiRows:
    """Every KPI family's rows stacked: the facts row each one counts for, its anchor's local day, its measures.

    It does not depend on who is credited, so engineer, team, scorecard and breakdown aggregates share it
    (with the facts rows' ticket types, coded once).
    """

    row: np.ndarray  # the facts row each stacked row counts for
    day: np.ndarray  # its anchor's local date as a day number (days since 1970-01-01)
    flagged: dict[str, Flags]  # count -> the stacked positions where it is 1
    durations: dict[str, Durations]
    ticket_type: np.ndarray  # each facts row's ticket type, coded in name order (``type_names``)
    type_names: pd.Index


def kpi_rows(facts: pd.DataFrame, settings: KpiSettings) -> KpiRows:
    """The stacked KPI rows of ``facts`` with anchors placed in the reporting timezone.

    Families are stacked one at a time (rows without an anchor dropped), keeping only what the
    aggregates read: the positions of every count's 1s and the known values of every duration.
    """
    stack = _Stack()
    for family in _families(facts, settings.reporting_timezone):
        stack.add(family.rows)
    return stack.rows(*pd.factorize(facts["ticket_type"], sort=True))


class _Stack:
    """Accumulates families' rows as arrays of positions in the stacked order."""

    def __init__(self) -> None:
        self.size = 0
        self.row: list[np.ndarray] = []
        self.day: list[np.ndarray] = []
        self.flagged: dict[str, _FlagParts] = {count: _FlagParts() for count in COUNTS}
        self.duration_rows: dict[str, list[np.ndarray]] = {column: [] for column in DURATIONS.values()}
        self.duration_values: dict[str, list[np.ndarray]] = {column: [] for column in DURATIONS.values()}

    def add(self, family: pd.DataFrame) -> None:
        day = family["day"].to_numpy().astype("datetime64[D]", copy=False)
        anchored = ~np.isnat(day)
        if not anchored.all():  # else no copy of the family's columns
            family, day = family[anchored], day[anchored]
        self.row.append(family["row"].to_numpy(dtype="int64"))
        self.day.append(day.view("int64"))
        for count in [c for c in COUNTS if c in family]:
            self.flagged[count].add(family[count].to_numpy(dtype=bool), self.size)
        for column in [c for c in DURATIONS.values() if c in family]:
            values = family[column].to_numpy(dtype="float64")
            known = np.flatnonzero(~np.isnan(values))
            self.duration_rows[column].append(known + self.size)
            self.duration_values[column].append(values[known])
        self.size += len(family)

    def rows(self, ticket_type: np.ndarray, type_names: pd.Index) -> KpiRows:
        positions = "int32" if self.size < 2**31 else "int64"  # half the memory of int64
        return KpiRows(
            row=_concat(self.row, positions), day=_concat(self.day),
            flagged={count: parts.flags(positions) for count, parts in self.flagged.items()},
            durations={column: Durations.of(_concat(self.duration_rows[column], positions),
                                            _concat(self.duration_values[column], "float64"))
                       for column in DURATIONS.values()},
            ticket_type=ticket_type, type_names=type_names,
        )


@dataclass(frozen=True)
class Flags:
    """The stacked positions where one count is 1. Where most of a family's rows are 1s, its whole segment
    of the stack is kept with the positions of its 0s instead: a group's count is then its rows in the
    segment less its 0s. Counting a contiguous segment reads no positions, and the 0s are few (at 10M
    tickets, 5M positions are read instead of 51M)."""

    ones: np.ndarray  # positions of 1s outside ``segments``
    segments: tuple[tuple[int, int], ...]  # (start, stop) of the families kept whole
    zeros: np.ndarray  # positions of 0s inside ``segments``

    def per_group(self, group: np.ndarray, size: int, segment_sizes: Callable[[int, int], np.ndarray]) -> np.ndarray:
        """The count per group, for ``group`` the group of each stacked row (``size`` groups);
        ``segment_sizes(start, stop)``: the rows per group in a segment (called once per segment)."""
        total = np.bincount(group[self.ones], minlength=size)
        for start, stop in self.segments:
            total += segment_sizes(start, stop)
        if len(self.zeros):
            total -= np.bincount(group[self.zeros], minlength=size)
        return total


class _FlagParts:
    """A count's ``Flags`` as families are stacked."""

    def __init__(self) -> None:
        self.ones: list[np.ndarray] = []
        self.segments: list[tuple[int, int]] = []
        self.zeros: list[np.ndarray] = []

    def add(self, flag: np.ndarray, start: int) -> None:
        """A family's flags, its first row at stacked position ``start``."""
        ones = np.count_nonzero(flag)
        if ones * 2 <= len(flag):
            self.ones.append(np.flatnonzero(flag) + start)
        else:
            self.segments.append((start, start + len(flag)))
            self.zeros.append(np.flatnonzero(~flag) + start)

    def flags(self, dtype: str) -> Flags:
        """The stacked flags, positions as ``dtype``."""
        return Flags(_concat(self.ones, dtype), tuple(self.segments), _concat(self.zeros, dtype))


def _concat(parts: list[np.ndarray], dtype: str = "int64") -> np.ndarray:
    return np.concatenate(parts, dtype=dtype) if parts else np.empty(0, dtype=dtype)  # cast while copying


def aggregate_periods(facts: pd.DataFrame, settings: KpiSettings, *, by: str, by_type: bool,
                      rows: KpiRows | None = None, only: pd.DataFrame | None = None,
                      every_group: bool = False) -> pd.DataFrame:
    """KPI rows keyed by (grain, period_start, ``by``[, ticket_type]) with counts, stats and rates.

    ``only``: (grain, period_start, ``by``) groups; when given, only their rows are computed (a group's
    rows are the same as in the whole table: every stacked row of the group is counted).
    ``every_group``: keep the groups without any of ``ROW_COUNTS`` above 0 too (see ``aggregate``).
    """
    rows = rows or kpi_rows(facts, settings)
    codes = Codes(facts, by, rows)
    n_type = max(len(codes.type_names), 1) if by_type else 1
    who_type = (codes.who * n_type + (codes.ticket_type if by_type else 0))[rows.row]  # one key, half the memory
    days = DayGroups.of(rows, who_type, n_type)
    # Each grain's rows come out in (period_start, who, ticket_type) order (the codes number the names in
    # sorted order), so grains stacked in name order are the table's key order: no sort of the whole table.
    frames = [_grain_table(rows, days, n_type, grain,
                           None if only is None else codes.groups(only[only["grain"] == grain]))
              for grain in sorted(settings.grains)]
    table = codes.decode(pd.concat(frames, ignore_index=True), by_type)
    table = _finish(table, [by, "ticket_type"] if by_type else [by], settings, in_key_order=True,
                    every_group=every_group)
    table["as_of"] = facts["as_of"].iloc[0] if len(facts) else pd.NaT
    table["kpi_version"] = KPI_VERSION
    return table


def without_ticket_types(table: pd.DataFrame, by: str, settings: KpiSettings) -> pd.DataFrame:
    """``aggregate_periods(..., by_type=False)`` from the per-ticket-type rows of ``aggregate``: counts summed,
    rates recomputed from them. Duration statistics cannot be summed and are left out."""
    counts = [c.name for c in KPI_ENGINEER_COLUMNS.values() if c.dtype == "Int64"]
    summed = table.groupby(["grain", "period_start", by], sort=False)[counts].sum().reset_index()
    summed = _finish(summed, [by], settings)
    summed["as_of"] = table["as_of"].iloc[0] if len(table) else pd.NaT
    summed["kpi_version"] = KPI_VERSION
    return summed


class Codes:
    """Integer codes for the grouping columns, so grouping never touches strings. The codes number the names
    in sorted order (as pandas sorts ``str``): groups in code order are in name order."""

    def __init__(self, facts: pd.DataFrame, who: str, rows: KpiRows) -> None:
        self.who_name = who
        column = facts[who]
        if isinstance(column.dtype, pd.CategoricalDtype):  # already coded (``breakdown.member_categories``)
            self.who, self.who_names = in_name_order(column.cat.codes.to_numpy(dtype="int64"), column.cat.categories)
        else:
            self.who, self.who_names = pd.factorize(column, sort=True)
        self.ticket_type, self.type_names = rows.ticket_type, rows.type_names

    def groups(self, only: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(period start day numbers, who codes) of ``only``'s groups whose who appears in the facts."""
        who = self.who_names.get_indexer(only[self.who_name].astype("str"))
        days = only["period_start"].to_numpy().astype("datetime64[D]").astype("int64")
        return days[who >= 0], who[who >= 0]

    def decode(self, table: pd.DataFrame, by_type: bool) -> pd.DataFrame:
        """Replace the code columns by their names."""
        table[self.who_name] = self.who_names.take(table.pop("who").to_numpy(dtype="int64"))
        types = table.pop("ticket_type").to_numpy(dtype="int64")
        if by_type:
            table["ticket_type"] = self.type_names.take(types)
        return table


def in_name_order(codes: np.ndarray, names: pd.Index) -> tuple[np.ndarray, pd.Index]:
    """``codes`` of ``names`` renumbered so that code order is name order (-1, missing, stays -1); as they
    are when the names are in order already (``breakdown.member_categories`` makes them so)."""
    order = names.argsort()
    if np.array_equal(order, np.arange(len(names))):
        return codes, names
    rank = np.empty(len(names) + 1, dtype="int64")
    rank[order] = np.arange(len(names))
    rank[-1] = -1  # code -1 reads the last entry
    return rank[codes], names.take(order)


#: The timestamp that places each KPI family in its period, in the order ``_families`` yields them.
FAMILY_ANCHORS = ("opened_at", "resolved_at", "satisfaction_at", "planned_end", "induced")


def credits(facts: pd.DataFrame, settings: KpiSettings) -> pd.DataFrame:
    """Every credit the aggregates give: one row per (facts row credited, KPI family) with the family's anchor
    (``FAMILY_ANCHORS``; ``induced`` = the incident's opened_at, credited to the maintenance ticket's row), its
    local day and the counts it adds (a bool column per count). The rows ``kpi_rows`` stacks, kept apart by
    family, so that an explanation can say which period rows a ticket counts in and for what."""
    frames = []
    for anchor, family in zip(FAMILY_ANCHORS, _families(facts, settings.reporting_timezone), strict=True):
        rows = family.rows
        rows = rows[~pd.isna(rows["day"].to_numpy())]
        counts = {c: rows[c].to_numpy(dtype=bool) if c in rows else np.zeros(len(rows), dtype=bool) for c in COUNTS}
        frames.append(pd.DataFrame({"row": rows["row"].to_numpy(dtype="int64"), "anchor": anchor,
                                    "day": rows["day"].to_numpy().astype("datetime64[D]"), **counts}))
    return pd.concat(frames, ignore_index=True)


def _families(facts: pd.DataFrame, timezone: str) -> Iterator[Family]:
    included = facts["excluded_reason"].isna().to_numpy()
    base = Anchored(timezone)
    for make in (_opened, _resolved, _csat, _maintenance):
        yield make(facts, base, included)
    yield _induced(facts, timezone)


@dataclass(frozen=True)
class Anchored:
    """Builds a family's base columns: the facts rows it counts and the local day of their anchor."""

    timezone: str

    def __call__(self, rows: np.ndarray, anchor: pd.Series) -> pd.DataFrame:
        return pd.DataFrame({"row": np.flatnonzero(rows), "day": local_days(anchor.array[rows], self.timezone)})


def _flag(values: pd.Series, rows: np.ndarray) -> np.ndarray:
    return values.to_numpy(dtype=bool, na_value=False)[rows]


def _seconds(seconds: pd.Series, rows: np.ndarray) -> np.ndarray:
    return seconds.to_numpy(dtype="float64", na_value=np.nan)[rows]


def _sla_counts(status: pd.Series, prefix: str, rows: np.ndarray, exempt_counted: np.ndarray | bool = True
                ) -> dict[str, np.ndarray]:
    """met / breached / exempt flags of the selected ``rows`` (``exempt_counted``: which of them may count as exempt).

    One lookup of the texts among the three verdicts instead of three comparisons of every text.
    """
    verdict = positions_in(status, ("met", "breached", "exempt"))[rows]
    return {f"{prefix}_met": verdict == 0, f"{prefix}_breached": verdict == 1,
            f"{prefix}_exempt": exempt_counted & (verdict == 2)}


def _opened(facts: pd.DataFrame, base: Anchored, included: np.ndarray) -> Family:
    rows = base(included, facts["opened_at"]).assign(
        opened_count=True, response_seconds=_seconds(facts["response_business_s"], included),
        **_sla_counts(facts["response_sla"], "response_sla", included))
    return Family(rows)


def _resolved(facts: pd.DataFrame, base: Anchored, included: np.ndarray) -> Family:
    selected = included & facts["resolved_at"].notna().to_numpy()
    fixable = facts["ticket_type"].isin(_FIXABLE).to_numpy()[selected]
    rows = base(selected, facts["resolved_at"]).assign(
        resolved_count=fixable,
        resolution_seconds=_seconds(facts["resolution_business_s"], selected),
        first_fix_count=_flag(facts["first_fix"], selected),
        reopened_count=fixable & _flag(facts["reopened"], selected),
        accuracy_assessable=_flag(facts["diagnosis_assessable"], selected),
        accuracy_correct=_flag(facts["diagnosis_accurate"], selected),
        **_sla_counts(facts["resolution_sla"], "resolution_sla", selected, exempt_counted=fixable),
    )
    return Family(rows)


def _csat(facts: pd.DataFrame, base: Anchored, included: np.ndarray) -> Family:
    anchor = facts["satisfaction_at"].fillna(facts["resolved_at"])
    selected = included & facts["csat_score"].notna().to_numpy() & anchor.notna().to_numpy()
    rows = base(selected, anchor).assign(
        csat_answered=True, csat_satisfied=_flag(facts["csat_satisfied"], selected))
    return Family(rows)


def _maintenance(facts: pd.DataFrame, base: Anchored, included: np.ndarray) -> Family:
    selected = included & facts["maintenance_on_time"].notna().to_numpy()
    rows = base(selected, facts["planned_end"]).assign(
        maintenance_due=True, maintenance_on_time=_flag(facts["maintenance_on_time"], selected))
    return Family(rows)


def _induced(facts: pd.DataFrame, timezone: str) -> Family:
    """Induced incidents, credited to the maintenance ticket's engineer/team in its maintenance row."""
    position = np.arange(len(facts))
    everyone = np.ones(len(facts), dtype=bool)
    is_maintenance = _flag(facts["ticket_type"] == "maintenance", everyone)
    maintenance = pd.DataFrame({"source": facts["source"], "ticket_id": facts["ticket_id"], "m": position})[is_maintenance]
    incidents = pd.DataFrame({"source": facts["source"], "caused_by": facts["caused_by"], "i": position})
    incidents = incidents[_flag(facts["induced_incident"], everyone)]
    pairs = incidents.merge(maintenance, left_on=["source", "caused_by"], right_on=["source", "ticket_id"])
    m, i = pairs["m"].to_numpy(dtype="int64"), pairs["i"].to_numpy(dtype="int64")
    rows = pd.DataFrame({"row": m, "day": local_days(facts["opened_at"].iloc[i], timezone), "induced_incidents": True})
    return Family(rows)


def local_days(anchor: pd.Series, timezone: str) -> np.ndarray:
    """UTC timestamps -> their local dates (``datetime64[D]``, NaT where missing) in ``timezone``."""
    local = pd.DatetimeIndex(anchor).tz_convert(timezone).tz_localize(None)
    return local.to_numpy().astype("datetime64[D]")


def period_starts(days: np.ndarray, grain: str) -> np.ndarray:
    """Local dates -> the first local date of their period (ISO weeks start on Monday).

    Many dates over a shorter range of days (every fact's anchor days) are looked up in a table of the
    range's days: numpy's calendar arithmetic costs ~60 ns a date, a lookup ~3 ns."""
    days = days.astype("datetime64[D]")
    if grain == "day":
        return days
    n = days.view("int64")
    if len(n) > _PERIOD_TABLE_FROM:
        lo, hi = int(n.min()), int(n.max())
        if lo != _NAT and hi - lo < len(n):  # NaT (the least int64) keeps the arithmetic
            return _calendar_period_starts(np.arange(lo, hi + 1).astype("datetime64[D]"), grain)[n - lo]
    return _calendar_period_starts(days, grain)


_PERIOD_TABLE_FROM = 4096
_NAT = np.iinfo("int64").min


def _calendar_period_starts(days: np.ndarray, grain: str) -> np.ndarray:
    if grain == "week":
        n = days.astype("int64")
        return (n - (n + 3) % 7).astype("datetime64[D]")  # 1970-01-01 was a Thursday
    months = days.astype("datetime64[M]")
    if grain == "quarter":
        m = months.astype("int64")
        months = (m - m % 3).astype("datetime64[M]")
    return months.astype("datetime64[D]")


COUNTS = ("opened_count", "response_sla_met", "response_sla_breached", "response_sla_exempt", "resolved_count",
          "resolution_sla_met", "resolution_sla_breached", "resolution_sla_exempt", "first_fix_count", "reopened_count", "accuracy_assessable", "accuracy_correct",
          "csat_answered", "csat_satisfied", "maintenance_due", "maintenance_on_time", "induced_incidents")
# Durations are summed in whole seconds and turned into minutes per group: a sum of integers is exact,
# so a mean does not depend on the order of the facts (a nightly run compares it with the stored one).
DURATIONS = {"response": "response_seconds", "resolution": "resolution_seconds"}


@dataclass(frozen=True)
class Durations:
    """The known values of one duration column, with their sort codes computed once for every grain."""

    rows: np.ndarray  # positions in the stacked frame
    values: np.ndarray
    codes: SortCodes

    @classmethod
    def of(cls, rows: np.ndarray, values: np.ndarray) -> Durations:
        """The known ``values`` at stacked positions ``rows``."""
        return cls(rows, values, SortCodes.of(values))


@dataclass(frozen=True)
class DayGroups:
    """The stacked rows grouped once by (local day, who, ticket_type), with every count and duration total
    per group. A period of any grain is a union of days, so its counts and sums add up from these groups'
    (exactly: they are whole numbers); only the percentiles read the rows again."""

    day: np.ndarray  # each day group's day number
    who_type: np.ndarray  # each day group's who * n_type + ticket_type
    n_who_type: int  # a multiple of n_type above every who_type: the keys built with it decode
    counts: dict[str, np.ndarray]  # count -> its total per day group
    durations: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # column -> (day group per value, n, sum)

    @classmethod
    def of(cls, rows: KpiRows, who_type: np.ndarray, n_type: int) -> DayGroups:
        """The day groups of ``rows``, whose stacked rows are credited to ``who_type``."""
        n_who_type = (int(who_type.max(initial=0)) // n_type + 1) * n_type
        first = _first(rows.day)
        group, keys = dense_groups((rows.day - first) * n_who_type + who_type)
        size = len(keys)
        segment_sizes = functools.cache(lambda start, stop: np.bincount(group[start:stop], minlength=size))
        counts = {count: rows.flagged[count].per_group(group, size, segment_sizes) for count in COUNTS}
        durations = {}
        for column, values in rows.durations.items():
            value_group = group[values.rows]
            durations[column] = (value_group, np.bincount(value_group, minlength=size),
                                 np.bincount(value_group, weights=values.values, minlength=size))
        return cls(keys // n_who_type + first, keys % n_who_type, n_who_type, counts, durations)


def _grain_table(rows: KpiRows, days: DayGroups, n_type: int, grain: str,
                 only: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """One grain: every family's rows grouped by (period_start, who, ticket_type) at once, in numpy.

    Each period group gathers the day groups of its days. ``only``: (period day numbers, who codes) of the
    groups to compute; the day groups of other groups fall in bin ``size``, which is dropped.
    """
    period = period_starts(days.day.astype("datetime64[D]"), grain).astype("int64")
    first = _first(period)
    key = (period - first) * days.n_who_type + days.who_type
    selected = None if only is None else _in_groups(period - first, days.who_type // n_type, only, first,
                                                    days.n_who_type // n_type)
    group, keys = dense_groups(key if selected is None else key[selected])
    size = len(keys)
    if selected is not None:
        group = _scatter(group, selected, len(key), size)
    group = group.astype(code_dtype(size + 1))  # every duration value reads its group: int32 halves those reads
    out = {"period_start": (keys // days.n_who_type + first).astype("datetime64[D]"),
           "who": keys % days.n_who_type // n_type, "ticket_type": keys % n_type}
    for count in COUNTS:
        out[count] = _added(group, days.counts[count], size).astype("int64")
    for prefix, column in DURATIONS.items():
        out.update(_duration_stats(prefix, group, days.durations[column], rows.durations[column], size))
    return pd.DataFrame(out).assign(grain=grain)


def _first(days: np.ndarray) -> int:
    """The smallest day number (0 when none): keys count from it, so their span is the days covered, not the
    days since 1970 (which would overflow the lookup table of ``dense_groups`` into a hash)."""
    return int(days.min()) if len(days) else 0


def _added(group: np.ndarray, totals: np.ndarray, size: int) -> np.ndarray:
    """The day groups' whole-number ``totals`` added up per period group (float sums of integers are exact);
    bin ``size``, the day groups outside the selected groups, is dropped."""
    return np.bincount(group, weights=totals, minlength=size + 1)[:size]


def _in_groups(period: np.ndarray, who: np.ndarray, only: tuple[np.ndarray, np.ndarray], first: int,
               n_who: int) -> np.ndarray:
    """Positions of the day groups whose (period, who) is one of ``only``'s groups (a lookup table)."""
    span = int(period.max(initial=-1)) + 1
    table = np.zeros(span * n_who, dtype=bool)
    days, codes = only[0] - first, only[1]
    inside = (days >= 0) & (days < span) & (codes < n_who)
    table[days[inside] * n_who + codes[inside]] = True
    return np.flatnonzero(table[period * n_who + who])


def _scatter(group: np.ndarray, positions: np.ndarray, size: int, outside: int) -> np.ndarray:
    everywhere = np.full(size, outside, dtype="int64")
    everywhere[positions] = group
    return everywhere


def dense_groups(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Number the distinct values of a non-negative int64 key 0..k-1 (ascending); return (codes, values).

    The key's range is bounded (periods x people x types), so a lookup table beats hashing.
    """
    span = int(key.max(initial=-1)) + 1
    if span > 4 * len(key) + 1024:
        codes, values = pd.factorize(key, sort=True)
        return codes, values
    present = np.zeros(span, dtype=bool)
    present[key] = True
    values = np.flatnonzero(present)
    lookup = np.cumsum(present)
    lookup -= 1
    return lookup[key], values



def dense_combinations(columns: Sequence[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Number the distinct value tuples of ``n`` rows of integer ``columns`` (codes >= -1) 0..k-1 in
    ascending tuple order; return (per row its number, one row holding each number). Each column is
    numbered through ``dense_groups``, then the tuples of those numbers, so the keys stay small."""
    combination = np.zeros(n, dtype="int64")
    for column in columns:
        dense, distinct = dense_groups(column.astype("int64") + 1)  # codes start at -1 (empty)
        combination, _ = dense_groups(combination * len(distinct) + dense)
    first = np.zeros(int(combination.max(initial=-1)) + 1, dtype="int64")
    first[combination] = np.arange(n)  # the last row of each combination: any one will do
    return combination, first


def _duration_stats(prefix: str, group: np.ndarray, totals: tuple[np.ndarray, np.ndarray, np.ndarray],
                    durations: Durations, size: int) -> dict[str, np.ndarray]:
    """n, mean, median and P90 in minutes per period group of seconds, ignoring missing values; percentiles as
    ``percentile_cont``. ``group``: each day group's period group (``size`` outside the selected groups);
    ``totals``: the day group of each known value, and n and the sum of seconds per day group."""
    value_day_group, day_n, day_sum = totals
    n = _added(group, day_n, size).astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = _added(group, day_sum, size) / n
    value_group, values, codes = group[value_day_group], durations.values, durations.codes
    counted = value_group < size
    if not counted.all():  # only some groups: three copies a whole table does without
        value_group, values, codes = value_group[counted], values[counted], codes.take(counted)
    median, p90 = percentile_cont(value_group, values, n, (0.5, 0.9), codes=codes)
    return {f"{prefix}_n": n, f"{prefix}_mean_min": mean / SECONDS_PER_MINUTE,
            f"{prefix}_median_min": median / SECONDS_PER_MINUTE, f"{prefix}_p90_min": p90 / SECONDS_PER_MINUTE}


def _finish(table: pd.DataFrame, keys: list[str], settings: KpiSettings, in_key_order: bool = False,
            every_group: bool = False) -> pd.DataFrame:
    """Counts as int64, rows without any of ``ROW_COUNTS`` dropped (unless ``every_group``), rates and the
    low-sample flag added; sorted by (grain, period_start, *keys) unless ``in_key_order`` says the rows already
    are."""
    count_columns = [c.name for c in KPI_ENGINEER_COLUMNS.values()
                     if c.dtype == "Int64" and c.name not in ("response_n", "resolution_n")]
    for column in [*count_columns, "response_n", "resolution_n"]:
        if column not in table:
            table[column] = 0
        elif table[column].dtype != "int64":  # counted with numpy they are int64 already, without gaps
            table[column] = table[column].fillna(0).astype("int64")
    table = table.copy() if every_group else table[_active(table)].copy()
    for rate, (numerator, denominators) in RATES.items():
        denominator = sum(table[d] for d in denominators)
        table[rate] = (table[numerator] / denominator.where(denominator > 0)).astype("float64")
    table["low_sample"] = (table["resolved_count"] + table["maintenance_due"]) < settings.min_sample
    table["period_start"] = pd.to_datetime(table["period_start"]).astype("datetime64[s]")
    if in_key_order:
        return table.reset_index(drop=True)
    return table.sort_values(["grain", "period_start", *keys], ignore_index=True)
