"""pipeline.groups: which (grain, period, engineer/team) groups a night recomputes, and that the rest of
the KPI tables cannot have moved.

Hand-worked case (reporting timezone Asia/Shanghai, UTC+8; grains day, month, quarter):

    T1  incident, changed: amy/desk -> ben/desk, resolved on day 2 at 2026-03-31T17:00Z (local Apr 1)
    M1  maintenance, changed: cal/ops -> dan/ops, opened 02-10 03:00Z, planned end 02-11 03:00Z
    I1  incident caused by M1, unchanged, opened 02-20 01:00Z: its credit moves from cal to dan
    M2  maintenance of eve/field, unchanged
    I2  incident caused by M2, unchanged (its credit to eve stays)
    I3  incident of fay/desk, changed: no cause -> caused by M2, opened 01-05 02:00Z: a new credit to eve
    T3  incident of amy/desk, unchanged

so the engineer groups are amy, ben (T1), cal, dan (M1 and I1's credit), fay (I3), eve (I3's new
credit, only in January), and never a group of T3, I2 or M2 alone.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kpis import compute_facts, kpi_tables
from kpis.schema import EVENT_COLUMNS, TICKET_COLUMNS, TICKET_FACT_COLUMNS, conform
from kpis.scorecard import ranked
from pipeline.changes import row_changes
from pipeline.config import kpi_settings_from_mapping
from pipeline.groups import (
    _CreditPeriods,
    crediting_facts,
    group_tables,
    in_groups,
    stacked_credits,
    touched_groups,
)
from pipeline.store.parquet import to_arrow

TZ = "Asia/Shanghai"
GRAINS = ("day", "month", "quarter")
KEY = ["source", "ticket_id"]


def fact(tid: str, ticket_type: str, engineer: str, team: str, opened: str, **kw) -> dict:
    return {"source": "s", "ticket_id": tid, "ticket_type": ticket_type, "engineer": engineer, "team": team,
            "opened_at": pd.Timestamp(opened), "induced_incident": False, **kw}


def facts_frame(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in ("opened_at", "resolved_at", "satisfaction_at", "planned_end"):
        frame[column] = pd.to_datetime(frame.get(column), utc=True)
    return conform(frame, TICKET_FACT_COLUMNS)


M1 = dict(planned_end=pd.Timestamp("2026-02-11T03:00Z"))
UNCHANGED = [fact("I1", "incident", "gus", "desk", "2026-02-20T01:00Z", caused_by="M1", induced_incident=True),
             fact("M2", "maintenance", "eve", "field", "2026-01-02T03:00Z"),
             fact("I2", "incident", "gus", "desk", "2026-02-25T01:00Z", caused_by="M2", induced_incident=True),
             fact("T3", "incident", "amy", "desk", "2026-03-02T02:00Z")]
DAY1 = [fact("T1", "incident", "amy", "desk", "2026-03-02T02:00Z"),
        fact("M1", "maintenance", "cal", "ops", "2026-02-10T03:00Z", **M1),
        fact("I3", "incident", "fay", "desk", "2026-01-05T02:00Z")]
DAY2 = [fact("T1", "incident", "ben", "desk", "2026-03-02T02:00Z", resolved_at=pd.Timestamp("2026-03-31T17:00Z")),
        fact("M1", "maintenance", "dan", "ops", "2026-02-10T03:00Z", **M1),
        fact("I3", "incident", "fay", "desk", "2026-01-05T02:00Z", caused_by="M2", induced_incident=True)]


def groups_of_the_case():
    stored, new = facts_frame(*UNCHANGED, *DAY1), facts_frame(*UNCHANGED, *DAY2)
    changes = row_changes(new, stored, KEY)
    return touched_groups(changes, to_arrow(stored, TICKET_FACT_COLUMNS), new, GRAINS, TZ)


def as_set(groups: pd.DataFrame, by: str) -> set[tuple[str, str, str]]:
    return {(g, p.strftime("%Y-%m-%d"), w) for g, p, w in groups[["grain", "period_start", by]].itertuples(index=False)}


def test_the_groups_of_changed_facts_and_of_moved_induced_credits() -> None:
    groups = groups_of_the_case()

    assert as_set(groups.engineer, "engineer") == {
        # T1 old (amy) and new (ben) at its opening (local 03-02 10:00); ben also at its resolution (local 04-01)
        ("day", "2026-03-02", "amy"), ("month", "2026-03-01", "amy"), ("quarter", "2026-01-01", "amy"),
        ("day", "2026-03-02", "ben"), ("month", "2026-03-01", "ben"), ("quarter", "2026-01-01", "ben"),
        ("day", "2026-04-01", "ben"), ("month", "2026-04-01", "ben"), ("quarter", "2026-04-01", "ben"),
        # M1 old (cal) and new (dan): opened 02-10, planned end 02-11, I1's credit at its opening 02-20
        *{(g, p, who) for who in ("cal", "dan") for g, p in [
            ("day", "2026-02-10"), ("day", "2026-02-11"), ("day", "2026-02-20"),
            ("month", "2026-02-01"), ("quarter", "2026-01-01")]},
        # I3 itself (fay), and its new credit to M2's engineer eve at its opening (local 01-05)
        ("day", "2026-01-05", "fay"), ("month", "2026-01-01", "fay"), ("quarter", "2026-01-01", "fay"),
        ("day", "2026-01-05", "eve"), ("month", "2026-01-01", "eve"), ("quarter", "2026-01-01", "eve"),
    }
    assert as_set(groups.team, "team") == {
        ("day", "2026-03-02", "desk"), ("month", "2026-03-01", "desk"), ("quarter", "2026-01-01", "desk"),
        ("day", "2026-04-01", "desk"), ("month", "2026-04-01", "desk"), ("quarter", "2026-04-01", "desk"),
        ("day", "2026-02-10", "ops"), ("day", "2026-02-11", "ops"), ("day", "2026-02-20", "ops"),
        ("month", "2026-02-01", "ops"), ("quarter", "2026-01-01", "ops"),
        ("day", "2026-01-05", "desk"), ("month", "2026-01-01", "desk"),
        ("day", "2026-01-05", "field"), ("month", "2026-01-01", "field"), ("quarter", "2026-01-01", "field"),
    }
    assert len(groups.periods()) == 12  # days 01-05, 02-10, 02-11, 02-20, 03-02, 04-01; months 01-04; Q1, Q2


def test_no_change_touches_no_group() -> None:
    stored = facts_frame(*UNCHANGED, *DAY1)
    changes = row_changes(stored, stored, KEY)

    groups = touched_groups(changes, to_arrow(stored, TICKET_FACT_COLUMNS), stored, GRAINS, TZ)

    assert groups.engineer.empty and groups.team.empty and groups.periods().empty


# --- property: outside the touched groups nothing moves, inside them group_tables equals kpi_tables ---------
AS_OF = pd.Timestamp("2026-03-20T00:00Z")
SETTINGS = kpi_settings_from_mapping({
    "reporting": {"timezone": TZ, "grains": ["day", "week", "month", "quarter"], "min_sample": 1},
    "sla": [{"ticket_type": "incident", "priority": "P1", "response": "30m", "resolution": "4h"}],
})
PEOPLE, TEAMS = ["amy", "ben", "cal"], ["desk", "ops"]


@st.composite
def ticket(draw, tid: str, ids: list[str]) -> dict:
    opened = pd.Timestamp("2026-03-01T00:00Z") + pd.Timedelta(hours=draw(st.integers(0, 24 * 40)))
    later = st.integers(1, 24 * 20).map(lambda h: str(opened + pd.Timedelta(hours=h)))
    kind = draw(st.sampled_from(["incident", "incident", "request", "maintenance"]))
    row = {"source": "s", "ticket_id": tid, "ticket_type": kind, "priority": "P1", "opened_at": str(opened),
           "status": draw(st.sampled_from(["CLOSED", "IN_PROGRESS"])), "assignee": draw(st.sampled_from(PEOPLE)),
           "assignment_group": draw(st.sampled_from(TEAMS)), "first_response_at": draw(st.one_of(st.none(), later)),
           "resolved_at": draw(st.one_of(st.none(), later)), "satisfaction": draw(st.sampled_from([None, "满意", "2"])),
           "satisfaction_at": draw(st.one_of(st.none(), later))}
    if kind == "maintenance":
        row["planned_end"] = draw(st.one_of(st.none(), later))
    elif kind == "incident":
        row["caused_by"] = draw(st.one_of(st.none(), st.sampled_from(ids)))
    return row


@st.composite
def two_days(draw) -> tuple[list[dict], list[dict]]:
    ids = [f"T{i}" for i in range(draw(st.integers(2, 9)))]
    day1 = [draw(ticket(tid, ids)) for tid in ids]
    day2 = [draw(ticket(tid, ids)) if draw(st.booleans()) else row for tid, row in zip(ids, day1, strict=True)]
    return day1, day2


def facts_of(rows: list[dict]) -> pd.DataFrame:
    return compute_facts(conform(pd.DataFrame(rows), TICKET_COLUMNS), conform(pd.DataFrame(), EVENT_COLUMNS),
                         SETTINGS, AS_OF)


def without(table: pd.DataFrame, groups: pd.DataFrame, by: str) -> pd.DataFrame:
    return table[~in_groups(table, groups, by)].drop(columns="as_of").reset_index(drop=True)


@hsettings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(two_days())
def test_outside_the_touched_groups_nothing_moves_and_inside_group_tables_equals_kpi_tables(days) -> None:
    stored, new = facts_of(days[0]), facts_of(days[1])
    groups = touched_groups(row_changes(new, stored, KEY), to_arrow(stored, TICKET_FACT_COLUMNS), new,
                            SETTINGS.grains, TZ)
    assert_group_tables_are_the_touched_rows(stored, new, groups)


def assert_group_tables_are_the_touched_rows(stored: pd.DataFrame, new: pd.DataFrame, groups) -> None:
    before, after, partial = kpi_tables(stored, SETTINGS), kpi_tables(new, SETTINGS), group_tables(new, SETTINGS, groups)

    for table, by in (("kpi_engineer", "engineer"), ("kpi_team", "team"), ("scorecard_kpi", "engineer")):
        touched = groups.of(by)
        pd.testing.assert_frame_equal(without(getattr(after, table), touched, by),
                                      without(getattr(before, table), touched, by), obj=table)
        inside = getattr(after, table)[in_groups(getattr(after, table), touched, by)].reset_index(drop=True)
        pd.testing.assert_frame_equal(getattr(partial, table), inside, obj=table, check_exact=True)
    # the scorecard: the touched engineers' new rows with the others' stored ones, ranked again
    untouched = before.scorecard[~in_groups(before.scorecard, groups.engineer, "engineer")]
    merged = ranked(pd.concat([untouched, partial.scorecard], ignore_index=True))
    key = ["grain", "period_start", "engineer"]
    pd.testing.assert_frame_equal(merged.drop(columns="as_of").sort_values(key, ignore_index=True),
                                  after.scorecard.drop(columns="as_of").sort_values(key, ignore_index=True),
                                  check_exact=True, check_dtype=False)


def test_the_property_sees_a_moved_credit() -> None:
    """The strategy can move an induced credit: I's cause M is reassigned (guards the property's reach)."""
    day1 = [{"source": "s", "ticket_id": "M", "ticket_type": "maintenance", "opened_at": "2026-03-02T00:00Z",
             "assignee": "amy", "assignment_group": "desk", "status": "CLOSED"},
            {"source": "s", "ticket_id": "I", "ticket_type": "incident", "opened_at": "2026-03-05T00:00Z",
             "assignee": "ben", "assignment_group": "desk", "status": "CLOSED", "caused_by": "M",
             "resolved_at": "2026-03-05T02:00Z"}]
    day2 = [{**day1[0], "assignee": "cal"}, day1[1]]
    stored, new = facts_of(day1), facts_of(day2)
    groups = touched_groups(row_changes(new, stored, KEY), to_arrow(stored, TICKET_FACT_COLUMNS), new,
                            SETTINGS.grains, TZ)

    # local 03-05 08:00: the induced incident's opening, credited to amy before and cal after
    assert {("day", "2026-03-05", "amy"), ("day", "2026-03-05", "cal")} <= as_set(groups.engineer, "engineer")
    assert ("day", "2026-03-05", "ben") not in as_set(groups.engineer, "engineer")  # I itself did not change


def test_a_night_aggregates_only_the_facts_that_can_credit_a_touched_group() -> None:
    """T1 (amy) is resolved on 03-16, and I2 (ben, opened 03-17) is found caused by M1 (cal's maintenance in
    October): the touched periods are those two days, their ISO week (Monday 03-16), March and Q1 2026.
    T3 (January) counts in amy's Q1 row and stays; T2, T4 and M1's earlier incident I1 (Q4 2025) can credit
    none of those groups and are left out; T5 (December) stays, as its survey answer of 03-16 counts in amy's
    rows of that day; M1 stays, as every maintenance ticket does: I2's credit to cal in March is counted on
    M1's row."""
    common = {"source": "s", "priority": "P1", "assignment_group": "desk", "status": "CLOSED"}
    t1 = {**common, "ticket_id": "T1", "ticket_type": "incident", "assignee": "amy", "opened_at": "2026-03-16T02:00Z",
          "status": "IN_PROGRESS"}
    rest = [{**common, "ticket_id": "T2", "ticket_type": "incident", "assignee": "amy",
             "opened_at": "2025-11-10T02:00Z", "resolved_at": "2025-11-10T05:00Z"},
            {**common, "ticket_id": "T3", "ticket_type": "incident", "assignee": "amy",
             "opened_at": "2026-01-05T02:00Z", "resolved_at": "2026-01-06T02:00Z", "satisfaction": "5"},
            {**common, "ticket_id": "M1", "ticket_type": "maintenance", "assignee": "cal",
             "opened_at": "2025-10-05T02:00Z", "planned_end": "2025-10-06T02:00Z"},
            {**common, "ticket_id": "I1", "ticket_type": "incident", "assignee": "ben", "caused_by": "M1",
             "opened_at": "2025-10-07T02:00Z", "resolved_at": "2025-10-07T04:00Z"},
            {**common, "ticket_id": "T4", "ticket_type": "request", "assignee": "ben",
             "opened_at": "2025-12-01T02:00Z", "resolved_at": "2025-12-02T02:00Z"},
            {**common, "ticket_id": "T5", "ticket_type": "incident", "assignee": "amy", "opened_at": "2025-12-20T02:00Z",
             "resolved_at": "2025-12-21T02:00Z", "satisfaction": "5", "satisfaction_at": "2026-03-16T03:00Z"}]
    i2 = {**common, "ticket_id": "I2", "ticket_type": "incident", "assignee": "ben",
          "opened_at": "2026-03-17T02:00Z", "resolved_at": "2026-03-17T03:00Z"}
    stored = facts_of([t1, *rest, i2])
    new = facts_of([{**t1, "status": "CLOSED", "resolved_at": "2026-03-16T06:00Z"}, *rest, {**i2, "caused_by": "M1"}])
    groups = touched_groups(row_changes(new, stored, KEY), to_arrow(stored, TICKET_FACT_COLUMNS), new,
                            SETTINGS.grains, TZ)

    assert set(groups.periods()["period_start"].dt.strftime("%Y-%m-%d")) == {
        "2026-03-16", "2026-03-17", "2026-01-01", "2026-03-01"}  # the days (03-16 a Monday), month, quarter
    assert list(crediting_facts(new, groups, TZ)["ticket_id"]) == ["T1", "T3", "M1", "T5", "I2"]
    assert_group_tables_are_the_touched_rows(stored, new, groups)
    cal = group_tables(new, SETTINGS, groups).kpi_engineer.query("engineer == 'cal'")
    assert dict(cal[["grain", "induced_incidents"]].values.tolist()) == {
        "day": 1, "week": 1, "month": 1, "quarter": 1}  # I2's credit, on M1's row


# --- the credits' groups, numbered, against the definition worked out credit by credit ----------------
def period_start_of(day: date, grain: str) -> date:
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day


@hsettings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(-3 * 10**9, 3 * 10**9)),
                          st.sampled_from([None, "amy", "ben", "曹", "(none)"])), max_size=40))
def test_the_groups_of_credits_are_their_distinct_local_periods_and_names(credits) -> None:
    frame = pd.DataFrame({"at": pd.to_datetime([None if s is None else s for s, _ in credits], unit="s", utc=True),
                          "engineer": pd.Series([who for _, who in credits], dtype="str")})
    grains = ("day", "week", "month", "quarter")

    groups = _CreditPeriods.of(frame, grains, TZ).groups("engineer", "engineer")

    expected = {(grain, period_start_of(pd.Timestamp(s, unit="s", tz="UTC").tz_convert(TZ).date(), grain), who)
                for s, who in credits if s is not None for grain in grains}
    rows = [(g, p.date(), None if pd.isna(w) else w) for g, p, w in groups.itertuples(index=False)]
    assert len(rows) == len(set(rows))
    assert set(rows) == expected
    assert str(groups["period_start"].dtype) == "datetime64[s]"
    # names coded as categories (as a night's own credits are) group alike, in the same order, as texts
    coded = _CreditPeriods.of(frame.assign(engineer=frame["engineer"].astype("category")), grains, TZ)
    pd.testing.assert_frame_equal(coded.groups("engineer", "engineer"), groups, check_exact=True)


def test_credits_stack_as_concat_does_and_names_stay_coded() -> None:
    at = pd.to_datetime(["2026-03-16T01:00Z", "2026-03-17T01:00Z", None], utc=True)
    own = pd.DataFrame({"at": at, "engineer": pd.Series(["amy", None, "amy"], dtype="str").astype("category")})
    induced = pd.DataFrame({"source": pd.Series(["s"], dtype="str"), "at": at[:1],
                            "engineer": pd.Series(["曹"], dtype="str")})  # a name the own credits do not have
    stacked = stacked_credits([own, induced])
    assert list(stacked.columns) == ["at", "engineer"]  # the columns both have, in the first part's order
    assert isinstance(stacked["engineer"].dtype, pd.CategoricalDtype)
    assert stacked["engineer"].astype("str").fillna("-").tolist() == ["amy", "-", "amy", "曹"]
    pd.testing.assert_series_equal(stacked["at"], pd.concat([own["at"], induced["at"]], ignore_index=True))
    assert stacked_credits([own, induced.iloc[:0]]).equals(own)  # an empty part adds nothing, not a copy
    assert stacked_credits([own.iloc[:0], induced]).equals(induced)
