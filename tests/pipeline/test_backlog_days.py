"""Which backlog rows a night recomputes (pipeline/backlog_days.py, KPIS.md 4.2, DECISIONS.md D95).

``differing_cells`` compares the changed tickets' backlog before and after a night, on hand-worked
versions in Asia/Shanghai (UTC+8): a (day, engineer, type, priority) cell is recomputed only when some
ticket counts differently in it at the day's end (its next local midnight). ``backlog_scope`` adds every
row of the last stored day and the days after it, on a store after a real first night.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from helpers import ev, events, local, no_events, settings, tickets
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from ops_helpers import (
    DAY1_AS_OF,
    DAY2_AS_OF,
    DAY3_AS_OF,
    assert_same,
    load,
    month_export,
    open_stores,
    run,
    snapshot,
    sql_rows,
    write_config,
    write_export,
)

from kpis.facts import compute_facts
from kpis.schema import EVENT_COLUMNS, TICKET_COLUMNS, conform
from pipeline.backlog_days import BacklogScope, TicketVersion, backlog_scope, differing_cells
from pipeline.raw import RawLayer

TZ = "Asia/Shanghai"
AS_OF = local("2026-03-25 09:00", TZ)
SETTINGS = settings(reporting={"timezone": TZ}, kpi={"default_calendar": "24x7"})


def _l(text: str) -> str:
    return local(text, TZ).isoformat()


def _version(t: pd.DataFrame, e: pd.DataFrame) -> TicketVersion:
    return TicketVersion(RawLayer(t, e), compute_facts(t, e, SETTINGS, AS_OF))


def _none() -> TicketVersion:
    return _version(tickets(), no_events())


def _cells(version_old: TicketVersion, version_new: TicketVersion) -> list[tuple[str, str]]:
    """(day, engineer) of the cells that differ, in order."""
    cells = differing_cells(version_old, version_new, SETTINGS, AS_OF)
    return sorted({(str(d)[:10], e) for d, e in zip(cells["day"], cells["engineer"], strict=True)})


def _days(version_old: TicketVersion, version_new: TicketVersion) -> list[str]:
    return sorted({day for day, _ in _cells(version_old, version_new)})


def _span(first: str, last: str) -> list[str]:
    return [str(d) for d in np.arange(np.datetime64(first), np.datetime64(last) + 1)]


OPEN = {"ticket_id": "A", "opened_at": _l("2026-03-01 10:00"), "status": "IN_PROGRESS", "assignee": "ann"}


def test_a_long_open_ticket_resolved_moves_only_the_days_from_its_resolution() -> None:
    # open at every day end from 03-01 on; resolved at 03-20 10:00: the end of 03-19 still counts it
    old = _version(tickets(OPEN), no_events())
    new = _version(tickets({**OPEN, "status": "RESOLVED", "resolved_at": _l("2026-03-20 10:00")}), no_events())
    assert _days(old, new) == _span("2026-03-20", "2026-03-25")


def test_a_reassignment_event_moves_the_days_from_its_instant() -> None:
    first = [ev("A", _l("2026-03-01 10:00"), "status", "IN_PROGRESS"), ev("A", _l("2026-03-01 10:00"), "assignee", "ann")]
    old = _version(tickets(OPEN), events(*first))
    # reassigned at exactly the end of 03-22 (00:00 on 03-23): the end of 03-22 sees the state before it
    new = _version(tickets(OPEN), events(*first, ev("A", _l("2026-03-23 00:00"), "assignee", "bo")))
    assert _days(old, new) == _span("2026-03-23", "2026-03-25")


def test_a_late_event_in_the_past_moves_the_days_from_its_instant_only() -> None:
    first = [ev("A", _l("2026-03-01 10:00"), "status", "IN_PROGRESS")]
    old = _version(tickets(OPEN), events(*first))
    # on hold from 03-05 12:00 to 03-07 09:00 (paused at the ends of 03-05 and 03-06), sent late
    late = [ev("A", _l("2026-03-05 12:00"), "status", "WAITING_CUSTOMER"), ev("A", _l("2026-03-07 09:00"), "status", "IN_PROGRESS")]
    assert _days(old, _version(tickets(OPEN), events(*first, *late))) == ["2026-03-05", "2026-03-06"]


def test_a_survey_answer_or_a_reopen_within_a_day_moves_no_day() -> None:
    done = {**OPEN, "status": "RESOLVED", "resolved_at": _l("2026-03-02 09:00")}
    first = [ev("A", _l("2026-03-01 10:00"), "status", "IN_PROGRESS"), ev("A", _l("2026-03-02 09:00"), "status", "RESOLVED")]
    old = _version(tickets(done), events(*first))
    answered = _version(tickets({**done, "satisfaction": "满意", "satisfaction_at": _l("2026-03-24 08:00")}), events(*first))
    assert _days(old, answered) == []
    # reopened at 09:00 on 03-24 and resolved again at 15:00: closed at every day end either way
    again = [ev("A", _l("2026-03-24 09:00"), "status", "IN_PROGRESS"), ev("A", _l("2026-03-24 15:00"), "status", "RESOLVED")]
    assert _days(old, _version(tickets(done), events(*first, *again))) == []


def test_an_opening_corrected_across_midnight_moves_that_one_day() -> None:
    # opened 03-10 23:30 and resolved 03-11 00:40: open at the end of 03-10 only; corrected to 00:10 on 03-11
    row = {"ticket_id": "B", "opened_at": _l("2026-03-10 23:30"), "status": "RESOLVED", "assignee": "bo",
           "resolved_at": _l("2026-03-11 00:40")}
    old = _version(tickets(row), no_events())
    new = _version(tickets({**row, "opened_at": _l("2026-03-11 00:10")}), no_events())
    assert _days(old, new) == ["2026-03-10"]


def test_a_new_ticket_moves_the_days_it_is_open_and_an_unchanged_one_none() -> None:
    row = {"ticket_id": "C", "opened_at": _l("2026-03-22 08:00"), "status": "NEW", "assignee": "ann"}
    assert _days(_none(), _version(tickets(row), no_events())) == _span("2026-03-22", "2026-03-25")
    assert _days(_version(tickets(OPEN), no_events()), _version(tickets(OPEN), no_events())) == []


def test_a_reassignment_without_events_moves_every_day_it_was_open_but_only_its_two_engineers_cells() -> None:
    # A has no events: its status column's assignee counts on every day it is open (from 03-01), for ann
    # before and bo after; K, open beside it for carol, did not change
    other = {"ticket_id": "K", "opened_at": _l("2026-03-02 10:00"), "status": "NEW", "assignee": "carol"}
    old = _version(tickets(OPEN), no_events())
    new = _version(tickets({**OPEN, "assignee": "bo"}), no_events())
    assert _days(old, new) == _span("2026-03-01", "2026-03-25")
    assert {engineer for _, engineer in _cells(old, new)} == {"ann", "bo"}
    whole_before = _version(tickets(OPEN, other), no_events())
    scope = BacklogScope(np.array(_span("2026-03-01", "2026-03-25"), dtype="datetime64[D]"),
                         np.array([], dtype="datetime64[D]"), differing_cells(old, new, SETTINGS, AS_OF))
    rows = whole_before.backlog(SETTINGS, AS_OF)
    assert set(rows.loc[scope.holds(rows), "engineer"]) == {"ann"} and "carol" in set(rows["engineer"])


def test_a_changed_due_time_moves_the_days_its_overdue_count_differs() -> None:
    old = _version(tickets(OPEN), no_events())
    new = TicketVersion(old.raw, old.facts.assign(resolution_due_at=pd.Timestamp(_l("2026-03-23 12:00"))
                                                  .tz_convert("UTC")).astype({"resolution_due_at": "datetime64[us, UTC]"}))
    # due at noon on 03-23: overdue at the ends of 03-23, 03-24 and 03-25
    assert _days(old, new) == _span("2026-03-23", "2026-03-25")


def test_the_scope_adds_every_row_of_the_last_stored_day_and_the_new_ones(tmp_path: Path) -> None:
    """After night 1 (as_of 08-01 01:15 Shanghai) the store holds days up to 08-01; night 2 runs at 08-02."""
    exports = tmp_path / "exports"
    write_export(exports, "2026-07-31", *month_export())
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'kpi.sqlite'}", sources={"helpdesk": exports})
    run(config, "run", DAY2_AS_OF - pd.Timedelta(days=1))
    kpi = load(config).kpi
    stores = open_stores(config)
    try:
        previous = RawLayer(conform(stores.read("raw_tickets"), TICKET_COLUMNS),
                            conform(stores.read("raw_events"), EVENT_COLUMNS))
        facts = stores.read("ticket_facts")
        keys = pd.DataFrame({"source": ["helpdesk"], "ticket_id": ["INC0900"]})
        # nothing of INC0900 moved: only the last stored day (08-01) and the new one
        scope = backlog_scope(stores, kpi, previous, previous, facts, DAY2_AS_OF, keys)
        assert [str(d) for d in scope.days] == ["2026-08-01", "2026-08-02"] and scope.cells.empty
        # INC0900 (opened 07-31 23:30, resolved 08-01 00:40) was open at the end of 07-31; opened at 00:10 it is not
        moved = previous.tickets.copy()
        moved.loc[moved["ticket_id"] == "INC0900", "opened_at"] = pd.Timestamp("2026-07-31T16:10:00Z")
        now = RawLayer(moved, previous.events)
        scope = backlog_scope(stores, kpi, now, previous, facts, DAY2_AS_OF, keys)
        assert [str(d) for d in scope.days] == ["2026-07-31", "2026-08-01", "2026-08-02"]
        # of 07-31 only INC0900's own row: 张伟's P1 incidents
        assert scope.cells.astype("str").values.tolist() == [["2026-07-31", "张伟", "incident", "P1"]]
        stored = stores.read_arrow("kpi_backlog")
        held = stored.filter(scope.holds(stored)).to_pandas()
        assert set(held.loc[held["day"] < pd.Timestamp("2026-08-01").date(), "engineer"]) == {"张伟"}
        assert (held["day"] >= pd.Timestamp("2026-08-01").date()).sum() == \
            (stored.to_pandas()["day"] >= pd.Timestamp("2026-08-01").date()).sum()  # every row of the last day
        # only INC0003's facts move (its resolution due at 07-20 00:00 Shanghai): the stored facts are the old
        # version; the days whose end (the next local midnight) one due time lies before and the other not
        keys = pd.DataFrame({"source": ["helpdesk"], "ticket_id": ["INC0003"]})
        old_due = facts.loc[facts["ticket_id"] == "INC0003", "resolution_due_at"].iloc[0]
        new_due = pd.Timestamp("2026-07-20T00:00:00+08:00")
        due_moved = facts.copy()
        due_moved.loc[due_moved["ticket_id"] == "INC0003", "resolution_due_at"] = new_due
        scope = backlog_scope(stores, kpi, previous, previous, due_moved, DAY2_AS_OF, keys)
        ends = {d: pd.Timestamp(f"{d}T00:00:00+08:00") + pd.Timedelta(days=1) for d in _span("2026-07-04", "2026-07-31")}
        assert old_due < new_due
        assert sorted(scope.cells["day"].astype("str").str[:10].unique()) == \
            [d for d, end in ends.items() if (old_due < end) != (new_due < end)]
        assert len(scope.cells) and set(scope.cells["engineer"]) == {"刘洋"}  # INC0003's engineer
    finally:
        stores.close()


def test_a_night_at_an_earlier_as_of_deletes_the_stored_days_after_it(tmp_path: Path) -> None:
    """A rerun with an earlier ``--as-of`` (08-01 after 08-03): the backlog kept the later night's 08-02 and
    08-03, which a run at 08-01 does not have. They are deleted; every table equals a clean run at 08-01."""
    exports = tmp_path / "exports"
    write_export(exports, "2026-07-31", *month_export())
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'kpi.sqlite'}", sources={"helpdesk": exports})
    run(config, "run", DAY3_AS_OF)
    assert max(sql_rows(config, "kpi_backlog")["day"].astype("str").str[:10]) == "2026-08-03"

    run(config, "run", DAY1_AS_OF)
    assert max(sql_rows(config, "kpi_backlog")["day"].astype("str").str[:10]) == "2026-08-01"
    clean = write_config(tmp_path, f"sqlite:///{tmp_path / 'clean.sqlite'}", sources={"helpdesk": exports},
                         store=tmp_path / "clean")
    run(clean, "run", DAY1_AS_OF)
    assert_same(snapshot(config), snapshot(clean))


# --- by property: the days outside the scope are the same in the whole backlog ----------------------
STATUSES = ["NEW", "IN_PROGRESS", "WAITING_CUSTOMER", "RESOLVED", "CLOSED", "CANCELLED"]
hours = st.integers(min_value=0, max_value=24 * 24)


@st.composite
def _versions_of(draw, ids: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random raw version of the tickets ``ids``: rows and status, assignee and priority events."""
    rows, evs = [], []
    for tid in ids:
        opened = local("2026-03-01 00:00", TZ) + pd.Timedelta(hours=draw(hours))
        status = draw(st.sampled_from(STATUSES))
        resolved = opened + pd.Timedelta(hours=draw(hours)) if status in ("RESOLVED", "CLOSED") else None
        rows.append({"ticket_id": tid, "opened_at": opened.isoformat(), "status": status,
                     "assignee": draw(st.sampled_from(["ann", "bo"])), "priority": draw(st.sampled_from(["P1", "P2"])),
                     "resolved_at": resolved.isoformat() if resolved is not None else None})
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from(["status", "assignee", "priority"]))
            value = draw(st.sampled_from({"status": STATUSES, "assignee": ["ann", "bo"], "priority": ["P1", "P2"]}[kind]))
            at = opened + pd.Timedelta(hours=draw(hours) - 48)  # some before the opening
            evs.append(ev(tid, at.isoformat(), kind, value, seq=len(evs)))
    return tickets(*rows), events(*evs) if evs else no_events()


def _stacked(*parts: tuple[pd.DataFrame, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    t = pd.concat([p[0] for p in parts], ignore_index=True)
    e = pd.concat([p[1] for p in parts], ignore_index=True)
    return t, e.assign(seq=np.arange(len(e)))


@st.composite
def _facts_of(draw, raw: tuple[pd.DataFrame, pd.DataFrame]) -> TicketVersion:
    """A version with its facts as a night may change them, per ticket: as computed, out of scope, with a
    resolution due time, or no facts row at all."""
    version = _version(*raw)
    facts = version.facts.copy()
    how = draw(st.lists(st.sampled_from(["computed", "out_of_scope", "due", "none"]), min_size=len(facts),
                        max_size=len(facts)))
    facts.loc[[h == "out_of_scope" for h in how], "excluded_reason"] = "out_of_scope"
    due = [h == "due" for h in how]
    facts.loc[due, "resolution_due_at"] = [pd.Timestamp(_l("2026-03-01 00:00")) + pd.Timedelta(hours=draw(hours))
                                           for _ in range(sum(due))]
    return TicketVersion(version.raw, facts[[h != "none" for h in how]].reset_index(drop=True))


def _with(kept: TicketVersion, changed: TicketVersion) -> TicketVersion:
    """The unchanged tickets beside one version of the changed ones."""
    t, e = _stacked((kept.raw.tickets, kept.raw.events), (changed.raw.tickets, changed.raw.events))
    return TicketVersion(RawLayer(t, e), pd.concat([kept.facts, changed.facts], ignore_index=True))


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_versions_of(["k0", "k1", "k2"]), _versions_of(["c0", "c1"]), _versions_of(["c0", "c1"]), st.booleans(),
       st.data())
def test_cells_outside_the_scope_are_the_same_in_the_whole_backlog(kept, old, new, one_new, data) -> None:
    """Tickets c0, c1 change from ``old`` to ``new`` (c1 new tonight when ``one_new``; any of their facts may
    change too), k0..k2 do not: every row of the whole backlog that moved (changed, new or gone) is in one
    of ``differing_cells``."""
    if one_new:
        old = (old[0][old[0]["ticket_id"] != "c1"], old[1][old[1]["ticket_id"] != "c1"])
    old, new, kept = data.draw(_facts_of(old)), data.draw(_facts_of(new)), data.draw(_facts_of(kept))
    cells = differing_cells(old, new, SETTINGS, AS_OF)
    scope = {tuple(cell) for cell in cells.astype("str").to_numpy()}
    before = _with(kept, old).backlog(SETTINGS, AS_OF)
    after = _with(kept, new).backlog(SETTINGS, AS_OF)
    assert _moved_cells(before, after) <= scope


def _moved_cells(before: pd.DataFrame, after: pd.DataFrame) -> set[tuple]:
    """The keys of the rows in one backlog and not (or not the same) in the other, read as text."""
    rows_before, rows_after = (set(map(tuple, f.drop(columns="as_of").astype("str").to_numpy()))
                               for f in (before, after))
    return {row[:4] for row in rows_before ^ rows_after}
