"""Which (grain, period, engineer or team) groups a nightly run must recompute (DECISIONS.md D31).

A group's KPI row depends only on the facts credited to it: a fact is credited to the groups of its own
engineer/team at each of its anchors (opened, resolved, answered, planned end), and an induced incident
also to its maintenance ticket's engineer/team at the incident's opening. A group can therefore change
only when a credit to it changed, i.e. through

- a changed fact: the groups of its stored version and of its new one, at every anchor;
- an induced-incident credit present before or after this run but not both (a new cause, a maintenance
  ticket reassigned, an incident moved to another day...), found by comparing both credit lists.

The same holds for ``kpi_breakdown`` groups (grain, period_start, dimension, member): a fact is credited to
its own member of each dimension, an induced incident also to its maintenance ticket's member.

Every other group's rows are the stored ones, so only these are aggregated, compared and written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import union_categoricals

from kpis import KpiTables
from kpis.aggregate import (
    FACTS_READ,
    aggregate,
    dense_groups,
    kpi_rows,
    local_days,
    period_starts,
    with_activity,
)
from kpis.breakdown import breakdown, member_categories, members
from kpis.config import BREAKDOWN_DIMENSIONS, KpiSettings
from kpis.keys import frame_positions, key_hits
from kpis.scorecard import compute_scorecard
from pipeline.changes import RowChanges
from pipeline.periods import ANCHORS, PERIOD_KEY, facts_on_days, period_days

log = logging.getLogger(__name__)

WHO = ("engineer", "team")
#: The breakdown groups' columns besides the period (``TouchedGroups.of``, ``in_groups``).
BREAKDOWN_BY = ("dimension", "member")
_MEMBERS = tuple(d for d in BREAKDOWN_DIMENSIONS if d != "source")  # source is a credit column already
_CREDIT_COLUMNS = ["source", "ticket_id", "caused_by", "induced_incident", "opened_at", "ticket_type", *WHO,
                   *_MEMBERS]


@dataclass(frozen=True)
class TouchedGroups:
    """The groups to recompute: (grain, period_start, engineer), (grain, period_start, team) and
    (grain, period_start, dimension, member)."""

    engineer: pd.DataFrame
    team: pd.DataFrame
    breakdown: pd.DataFrame

    def of(self, by: str | tuple[str, ...]) -> pd.DataFrame:
        """The groups of ``by`` (engineer, team or ``BREAKDOWN_BY``)."""
        if by == BREAKDOWN_BY:
            return self.breakdown
        return self.engineer if by == "engineer" else self.team

    def periods(self) -> pd.DataFrame:
        """Every (grain, period_start) holding a touched group."""
        every = pd.concat([self.engineer[PERIOD_KEY], self.team[PERIOD_KEY], self.breakdown[PERIOD_KEY]],
                          ignore_index=True)
        return every.drop_duplicates(ignore_index=True)


def touched_groups(changes: RowChanges, stored_facts: pa.Table, facts: pd.DataFrame, grains: tuple[str, ...],
                   timezone: str, dimensions: tuple[str, ...] = ()) -> TouchedGroups:
    """The groups whose rows this run can have changed (see the module docstring).

    ``changes``: the facts rows that differ from the stored ones (``rows``) and their stored versions
    (``before``); ``stored_facts``: the stored ``ticket_facts``; ``facts``: every fact after this run;
    ``dimensions``: the breakdowns (``[reporting].breakdowns``).
    """
    changed = pd.concat([changes.rows, changes.before], ignore_index=True)
    credits = [_own_credits(changed), _changed_induced_credits(_credit_frame(stored_facts), facts[_CREDIT_COLUMNS])]
    periods = _CreditPeriods.of(stacked_credits(credits), grains, timezone)
    parts = [periods.groups(d, "member").assign(dimension=d) for d in dimensions]
    breakdowns = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"grain": [], "period_start": pd.Series([], dtype="datetime64[s]"), "member": [], "dimension": []})
    return TouchedGroups(*(periods.groups(by, by) for by in WHO), breakdown=breakdowns)


def group_tables(facts: pd.DataFrame, settings: KpiSettings, groups: TouchedGroups) -> KpiTables:
    """``kpis.kpi_tables`` for the touched groups only: their rows equal those of the whole tables,
    but for the scorecard's ranks, which are among the touched engineers only (see ``kpis.scorecard.ranked``).
    The tables' ``facts`` are the ``crediting_facts`` (their ``FACTS_READ`` columns), not every fact."""
    facts = crediting_facts(facts, groups, settings.reporting_timezone)
    rows = kpi_rows(facts, settings)
    engineer = aggregate(facts, settings, by="engineer", rows=rows, only=groups.engineer, every_group=True)
    scorecard, scorecard_kpi = compute_scorecard(facts, settings, rows, engineer=engineer, only=groups.engineer)
    team = aggregate(facts, settings, by="team", rows=rows, only=groups.team)
    return KpiTables(facts=facts, kpi_engineer=with_activity(engineer), kpi_team=team, scorecard=scorecard,
                     scorecard_kpi=scorecard_kpi,
                     kpi_breakdown=breakdown(facts, settings, rows=rows, only=groups.breakdown))


def crediting_facts(facts: pd.DataFrame, groups: TouchedGroups, timezone: str) -> pd.DataFrame:
    """The rows of ``facts`` that can credit a touched group: those with an anchor in a touched period, and
    every maintenance ticket (an induced incident credits its maintenance ticket's row at the incident's
    opening, which may lie outside the maintenance ticket's own periods). A night whose touched groups lie
    in the last weeks aggregates those weeks' facts, not the whole history; the groups' rows are the same,
    as every credit to them comes from these rows."""
    periods = groups.periods()
    if periods.empty:  # a night that moved no credit has nothing to aggregate
        return facts.iloc[:0]
    keep = facts_on_days(facts, period_days(periods), timezone)
    keep |= (facts["ticket_type"] == "maintenance").to_numpy(dtype=bool, na_value=False)
    log.info("aggregating the %d of %d facts that can credit one of %d touched periods", keep.sum(), len(facts),
             len(periods))
    read = facts[[c for c in FACTS_READ if c in facts]]  # a take per column: only those the aggregates read
    return read if keep.all() else read[keep].reset_index(drop=True)


def in_groups(frame: pd.DataFrame | pa.Table, groups: pd.DataFrame, by: str | tuple[str, ...]) -> np.ndarray:
    """Which rows of a period table ``frame`` belong to one of ``groups`` (grain, period_start, ``by``)."""
    key = [*PERIOD_KEY, *((by,) if isinstance(by, str) else by)]
    rows = frame.select(key) if isinstance(frame, pa.Table) else frame[key]
    return key_hits(rows, groups[key])


def _own_credits(facts: pd.DataFrame) -> pd.DataFrame:
    """(at, engineer, team, each dimension's member) for every anchor of every row of ``facts``. The names are
    coded once per row (categoricals), so the anchors repeat small codes, not texts: a first run of 3M
    tickets credits 12M times, and seven text columns of 12M rows took ~1 GiB."""
    who = {"engineer": facts["engineer"].astype("category"), "team": facts["team"].astype("category"),
           **{d: member_categories(facts[d]) for d in BREAKDOWN_DIMENSIONS}}
    return pd.concat([pd.DataFrame({"at": facts[anchor], **who}) for anchor in ANCHORS], ignore_index=True)


def stacked_credits(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The credits of ``parts`` in one frame: the columns every part with rows has, stacked as ``pd.concat``
    does, but a column categorical in some part stays categorical over the union of the parts' names (concat
    would make texts of the codes, or Python objects of categories that differ)."""
    full = [part for part in parts if len(part)]
    if len(full) <= 1:
        return full[0].reset_index(drop=True) if full else pd.concat(parts, ignore_index=True)
    columns = [name for name in full[0].columns if all(name in part for part in full)]
    return pd.DataFrame({name: _stacked_column([part[name] for part in full]) for name in columns})


def _stacked_column(columns: list[pd.Series]) -> pd.Series:
    if not any(isinstance(column.dtype, pd.CategoricalDtype) for column in columns):
        return pd.concat(columns, ignore_index=True)
    return pd.Series(union_categoricals([column.astype("category") for column in columns]))


def _credit_frame(stored: pa.Table) -> pd.DataFrame:
    """The stored facts an induced credit can come from (flagged incidents and maintenance tickets)."""
    may_credit = pc.or_(pc.fill_null(stored["induced_incident"], False),
                        pc.fill_null(pc.equal(stored["ticket_type"], "maintenance"), False))
    return stored.filter(may_credit).select(_CREDIT_COLUMNS).to_pandas()


def _induced_credits(facts: pd.DataFrame) -> pd.DataFrame:
    """(incident source and id, its opening, the maintenance ticket's engineer, team and members), as aggregate
    and breakdown credit them."""
    incidents = facts.loc[facts["induced_incident"].fillna(False).astype(bool), ["source", "caused_by", "ticket_id", "opened_at"]]
    maintenance = facts.loc[(facts["ticket_type"] == "maintenance").fillna(False).astype(bool),
                            ["source", "ticket_id", *WHO, *_MEMBERS]]
    maintenance = maintenance.assign(**{d: members(maintenance[d]) for d in _MEMBERS})
    pairs = incidents.merge(maintenance.rename(columns={"ticket_id": "caused_by"}), on=["source", "caused_by"])
    return pairs[["source", "ticket_id", "opened_at", *WHO, *_MEMBERS]].astype({"opened_at": "datetime64[us, UTC]"})


def _changed_induced_credits(stored: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """(at, engineer, team, members) of the induced credits found before this run or after it, not both."""
    before, after = _induced_credits(stored), _induced_credits(new)
    gone = before[frame_positions(after, before) < 0]
    added = after[frame_positions(before, after) < 0]
    both = pd.concat([gone, added], ignore_index=True)
    return both.rename(columns={"opened_at": "at"}).assign(source=members(both["source"]))


@dataclass(frozen=True)
class _CreditPeriods:
    """The credits with a time, and each one's period start in every grain (days since 1970-01-01).

    Groups are numbered, not hashed as texts: a first run credits every fact at each anchor (1M facts: 4M
    credits, 16M over four grains, for each of engineer, team and the breakdowns' members), and
    deduplicating those as rows of text took ~10 s."""

    credits: pd.DataFrame
    starts: dict[str, np.ndarray]

    @classmethod
    def of(cls, credits: pd.DataFrame, grains: tuple[str, ...], timezone: str) -> _CreditPeriods:
        """``credits``: (at, the credited columns); those without a time credit no group."""
        credits = credits[credits["at"].notna().to_numpy()]
        days = local_days(credits["at"], timezone) if len(credits) else np.array([], dtype="datetime64[D]")
        return cls(credits, {grain: period_starts(days, grain).view("int64") for grain in grains})

    def groups(self, column: str, by: str) -> pd.DataFrame:
        """Distinct (grain, period_start, ``by``) = the credits' ``column``, grain by grain in period then
        first-seen order of the names."""
        values = self.credits[column]
        coded = isinstance(values.dtype, pd.CategoricalDtype)  # the codes group as the texts would
        who, names = pd.factorize(values if coded else values.astype("str"), use_na_sentinel=False)
        names = names.astype("str") if coded else names
        width = max(len(names), 1)
        frames = []
        for grain, starts in self.starts.items():
            first = int(starts.min(initial=0))
            _, pairs = dense_groups((starts - first) * width + who)
            frames.append(pd.DataFrame({"grain": grain, "period_start": (pairs // width + first).astype("datetime64[D]"),
                                        by: names.take(pairs % width)}))
        groups = pd.concat(frames, ignore_index=True)
        groups["period_start"] = groups["period_start"].astype("datetime64[s]")
        return groups
