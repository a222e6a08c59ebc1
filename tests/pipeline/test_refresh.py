"""pipeline.refresh: a nightly run recomputes only the facts that can have changed, and gets the same facts.

Day 1 (as_of 2026-03-10 03:00Z) stores the facts of six tickets; day 2 (as_of 2026-03-11 03:00Z) brings
one changed ticket and one new one. P1 incidents: response 30 min, resolution 4 h, 24x7.

    A   closed incident, untouched                        -> kept as stored
    B   open incident, responded, opened 02:00Z day 1     -> clock: in_progress at day 1, breached at day 2
    C   closed incident reassigned on day 2 (new row)     -> changed
    D   closed incident caused_by M2, which arrives day 2 -> cross-ticket: induced only on day 2
    E   closed incident, untouched                        -> kept as stored
    M   maintenance IN_PROGRESS, planned end 12:00Z day 1 -> clock: not due at day 1, due (late) at day 2
    M2  maintenance, new on day 2                         -> changed (new)
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from kpis import compute_facts
from kpis.config import facts_fingerprint
from kpis.facts import facts_and_history
from kpis.schema import EVENT_COLUMNS, TICKET_COLUMNS, TICKET_FACT_COLUMNS, conform
from pipeline.config import kpi_settings_from_mapping
from pipeline.refresh import reads_the_clock, refresh_facts
from pipeline.store.parquet import to_arrow

DAY1, DAY2 = pd.Timestamp("2026-03-10T03:00Z"), pd.Timestamp("2026-03-11T03:00Z")
SETTINGS = kpi_settings_from_mapping({"sla": [{"ticket_type": "incident", "priority": "P1",
                                             "response": "30m", "resolution": "4h"}]})
KEY = ["source", "ticket_id"]


def incident(tid: str, **kw) -> dict:
    closed = {"status": "CLOSED", "first_response_at": "2026-03-09T08:05Z", "resolved_at": "2026-03-09T09:00Z"}
    return {"ticket_id": tid, "ticket_type": "incident", "priority": "P1", "opened_at": "2026-03-09T08:00Z",
            "assignee": "bob", "assignment_group": "desk", **closed, **kw}


def maintenance(tid: str, **kw) -> dict:
    return {"ticket_id": tid, "ticket_type": "maintenance", "opened_at": "2026-03-08T08:00Z", "status": "IN_PROGRESS",
            "planned_end": "2026-03-10T12:00Z", "assignee": "ann", "assignment_group": "ops", **kw}


def frame(*rows: dict) -> pd.DataFrame:
    out = pd.DataFrame([{"source": "hd", **r} for r in rows])
    for c in [c.name for c in TICKET_COLUMNS.values() if c.dtype.startswith("datetime64") and c.name in out]:
        out[c] = pd.to_datetime(out[c], utc=True)
    return conform(out, TICKET_COLUMNS)


NO_EVENTS = conform(pd.DataFrame({c: [] for c in EVENT_COLUMNS}), EVENT_COLUMNS)
# B's status history, given in reverse order (the history sorts it)
DAY2_EVENTS = conform(pd.DataFrame({"source": "hd", "ticket_id": ["B", "B"], "kind": "status",
                                    "value": ["WAITING_CUSTOMER", "IN_PROGRESS"], "actor": "", "seq": [1, 0],
                                    "at": pd.to_datetime(["2026-03-10T04:00Z", "2026-03-10T02:30Z"], utc=True)}),
                      EVENT_COLUMNS)
DAY1_TICKETS = frame(incident("A"), incident("B", status="IN_PROGRESS", opened_at="2026-03-10T02:00Z",
                                            first_response_at="2026-03-10T02:10Z", resolved_at=None),
                     incident("C"), incident("D", caused_by="M2"), incident("E"), maintenance("M"))
DAY2_CHANGES = frame(incident("C", assignee="cy"), maintenance("M2", status="CLOSED", actual_end="2026-03-09T10:00Z",
                                                               resolved_at="2026-03-09T10:00Z"))
DAY2_TICKETS = pd.concat([DAY1_TICKETS[DAY1_TICKETS["ticket_id"] != "C"], DAY2_CHANGES], ignore_index=True)


def day1_facts() -> pd.DataFrame:
    return compute_facts(DAY1_TICKETS, NO_EVENTS, SETTINGS, DAY1)


def stored_day1() -> pa.Table:
    """Day 1's facts as the Parquet store hands them back."""
    return to_arrow(day1_facts(), TICKET_FACT_COLUMNS)


def by_key(facts: pd.DataFrame) -> pd.DataFrame:
    return facts.sort_values(KEY, ignore_index=True)


def test_day1_facts_are_what_day2_must_change() -> None:
    """The hand-worked day-1 state the other tests build on."""
    facts = day1_facts().set_index("ticket_id")
    assert facts.loc["B", "resolution_sla"] == "in_progress"  # 1 h of 4 h elapsed
    assert pd.isna(facts.loc["M", "maintenance_on_time"])  # planned end 12:00Z not reached at 03:00Z
    assert not facts.loc["D", "induced_incident"]  # M2 is not known yet


def test_only_changed_clock_and_cause_tickets_are_recomputed() -> None:
    refresh = refresh_facts(DAY2_TICKETS, NO_EVENTS, DAY2_CHANGES[KEY], stored_day1(), SETTINGS, DAY2, reuse=True)
    # C, M2 changed; B (unresolved) and M (maintenance not done) read the clock; D names M2. A, E kept.
    assert refresh.recomputed == 5
    assert sorted(refresh.changes.rows["ticket_id"]) == ["B", "C", "D", "M", "M2"]
    assert sorted(refresh.changes.before["ticket_id"]) == ["B", "C", "D", "M"]  # M2 had no stored row
    facts = refresh.facts.set_index("ticket_id")
    assert facts.loc["B", "resolution_sla"] == "breached"  # 25 h elapsed > 4 h
    assert not facts.loc["M", "maintenance_on_time"]  # due (day 2 is past 12:00Z day 1), not done
    assert facts.loc["D", "induced_incident"]
    assert facts.loc["C", "engineer"] == "cy"
    assert (refresh.facts["as_of"] == DAY2).all()


def test_a_changed_incident_keeps_its_induced_flag_when_its_maintenance_ticket_did_not_change() -> None:
    """Day 3: D (caused by M2, both stored on day 2) is reassigned; M2 is untouched. D is recomputed with M2
    read beside it, so it stays an induced incident."""
    day2 = refresh_facts(DAY2_TICKETS, NO_EVENTS, DAY2_CHANGES[KEY], stored_day1(), SETTINGS, DAY2, reuse=True)
    stored = to_arrow(day2.facts, TICKET_FACT_COLUMNS)
    changed = frame(incident("D", caused_by="M2", assignee="dee"))
    day3_tickets = pd.concat([DAY2_TICKETS[DAY2_TICKETS["ticket_id"] != "D"], changed], ignore_index=True)
    day3 = refresh_facts(day3_tickets, NO_EVENTS, changed[KEY], stored, SETTINGS, DAY2, reuse=True)
    assert "M2" not in set(day3.changes.rows["ticket_id"])  # read for D, not rewritten
    assert day3.facts.set_index("ticket_id").loc["D", "induced_incident"]
    pd.testing.assert_frame_equal(by_key(day3.facts), by_key(compute_facts(day3_tickets, NO_EVENTS, SETTINGS, DAY2)),
                                  check_exact=True)


def test_reused_facts_equal_a_full_recomputation() -> None:
    refresh = refresh_facts(DAY2_TICKETS, NO_EVENTS, DAY2_CHANGES[KEY], stored_day1(), SETTINGS, DAY2, reuse=True)
    full = compute_facts(DAY2_TICKETS, NO_EVENTS, SETTINGS, DAY2)
    pd.testing.assert_frame_equal(by_key(refresh.facts), by_key(full), check_exact=True)


@pytest.mark.parametrize("reuse", [True, False])
def test_facts_asked_for_some_columns_hold_those_and_changes_hold_all(reuse: bool) -> None:
    columns = ["source", "ticket_id", "engineer", "resolution_sla", "as_of"]
    refresh = refresh_facts(DAY2_TICKETS, NO_EVENTS, DAY2_CHANGES[KEY], stored_day1(), SETTINGS, DAY2, reuse=reuse,
                            columns=columns)
    full = compute_facts(DAY2_TICKETS, NO_EVENTS, SETTINGS, DAY2)
    pd.testing.assert_frame_equal(by_key(refresh.facts), by_key(full[columns]), check_exact=True)
    assert list(refresh.changes.rows.columns) == list(TICKET_FACT_COLUMNS)
    assert sorted(refresh.changes.rows["ticket_id"]) == ["B", "C", "D", "M", "M2"]


def test_without_reuse_every_ticket_is_recomputed() -> None:
    refresh = refresh_facts(DAY2_TICKETS, NO_EVENTS, DAY2_CHANGES[KEY], stored_day1(), SETTINGS, DAY2, reuse=False)
    assert refresh.recomputed == 7
    assert sorted(refresh.changes.rows["ticket_id"]) == ["B", "C", "D", "M", "M2"]
    pd.testing.assert_frame_equal(by_key(refresh.facts), by_key(compute_facts(DAY2_TICKETS, NO_EVENTS, SETTINGS, DAY2)))


def test_facts_recomputed_whole_hand_on_their_history_and_reused_ones_none() -> None:
    """Without reuse every fact comes from ``whole_facts_of``, with the history it read (the ops tables share
    it); with reuse only the changed and clock-moved tickets are recomputed, whose history does not number the
    raw layer, so none is handed on; without ``whole_facts_of`` there is none either."""
    whole = refresh_facts(DAY2_TICKETS, DAY2_EVENTS, DAY2_CHANGES[KEY], stored_day1(), SETTINGS, DAY2, reuse=False,
                          whole_facts_of=facts_and_history)
    assert whole.recomputed == 7 and whole.history is not None
    assert whole.history.vocabulary.decode(whole.history.history["status"].value).tolist() == ["IN_PROGRESS",
                                                                                               "WAITING_CUSTOMER"]
    assert whole.history.history["status"].tix.tolist() == [1, 1]  # B, the second raw ticket
    pd.testing.assert_frame_equal(by_key(whole.facts), by_key(compute_facts(DAY2_TICKETS, DAY2_EVENTS, SETTINGS, DAY2)))
    reused = refresh_facts(DAY2_TICKETS, DAY2_EVENTS, DAY2_CHANGES[KEY], stored_day1(), SETTINGS, DAY2, reuse=True,
                           whole_facts_of=facts_and_history)
    assert reused.recomputed < 7 and reused.history is None
    assert refresh_facts(DAY2_TICKETS, DAY2_EVENTS, DAY2_CHANGES[KEY], stored_day1(), SETTINGS, DAY2,
                         reuse=False).history is None


def test_stored_facts_missing_a_ticket_mean_a_full_recomputation() -> None:
    day1 = day1_facts()
    stored = to_arrow(day1[day1["ticket_id"] != "E"], TICKET_FACT_COLUMNS)  # E is in the raw layer, not stored
    refresh = refresh_facts(DAY2_TICKETS, NO_EVENTS, DAY2_CHANGES[KEY], stored, SETTINGS, DAY2, reuse=True)
    assert refresh.recomputed == 7
    assert "E" in set(refresh.changes.rows["ticket_id"])
    pd.testing.assert_frame_equal(by_key(refresh.facts), by_key(compute_facts(DAY2_TICKETS, NO_EVENTS, SETTINGS, DAY2)))


def test_reads_the_clock() -> None:
    clock = dict(zip(day1_facts()["ticket_id"], reads_the_clock(stored_day1()), strict=True))
    assert clock == {"A": False, "B": True, "C": False, "D": False, "E": False, "M": True}


@pytest.mark.parametrize("change, moves", [
    ({"sla": [{"ticket_type": "incident", "priority": "P1", "response": "30m", "resolution": "5h"}]}, True),
    ({"kpi": {"failed_close_codes": ["rolled_back"]}}, True),
    ({"reporting": {"min_sample": 3}}, False),  # aggregates only
    ({"reporting": {"grains": ["month"]}}, False),
])
def test_fingerprint_follows_the_settings_facts_read(change: dict, moves: bool) -> None:
    base = {"sla": [{"ticket_type": "incident", "priority": "P1", "response": "30m", "resolution": "4h"}]}
    changed = kpi_settings_from_mapping({**base, **change})
    assert (facts_fingerprint(changed) != facts_fingerprint(SETTINGS)) is moves


def test_fingerprint_ignores_set_and_mapping_order() -> None:
    one = kpi_settings_from_mapping({"kpi": {"failed_close_codes": ["a", "b", "c"], "satisfaction_map": {"x": 5, "y": 1}}})
    two = kpi_settings_from_mapping({"kpi": {"failed_close_codes": ["c", "a", "b"], "satisfaction_map": {"y": 1, "x": 5}}})
    assert facts_fingerprint(one) == facts_fingerprint(two)


def test_an_incident_recomputed_for_its_clock_still_sees_its_maintenance_ticket() -> None:
    """Cross-ticket rule (induced_incident): I, open and so recomputed every night, names M3, which did not
    change. Recomputed without M3, I would stop being induced and M3's engineer would lose the credit.

        M3  maintenance, done, untouched on day 2
        I   incident caused by M3, open (its SLA clock runs): recomputed on day 2
    """
    m3 = maintenance("M3", status="CLOSED", resolved_at="2026-03-09T10:00Z", actual_end="2026-03-09T10:00Z")
    i = incident("I", caused_by="M3", status="IN_PROGRESS", resolved_at=None)
    day1 = frame(m3, i, incident("A"))
    stored = to_arrow(compute_facts(day1, NO_EVENTS, SETTINGS, DAY1), TICKET_FACT_COLUMNS)
    day2 = pd.concat([day1, frame(incident("N"))], ignore_index=True)  # a new, unrelated ticket

    refresh = refresh_facts(day2, NO_EVENTS, frame(incident("N"))[KEY], stored, SETTINGS, DAY2, reuse=True)

    assert refresh.facts.set_index("ticket_id").loc["I", "induced_incident"]
    assert "I" not in set(refresh.changes.rows["ticket_id"])  # nothing about I changed but as_of
    pd.testing.assert_frame_equal(by_key(refresh.facts), by_key(compute_facts(day2, NO_EVENTS, SETTINGS, DAY2)))



# ---------------------------------------------------------------- the clock's rule when day 1's as_of is known

CLOCK_SETTINGS = kpi_settings_from_mapping({"sla": [
    {"ticket_type": "incident", "priority": "P1", "response": "30m", "resolution": "4h"},
    {"ticket_type": "incident", "priority": "P2", "response": "1h", "resolution": "3d"}]})


def open_incident(tid: str, opened: str, priority: str = "P1", responded: str | None = "auto", **kw) -> dict:
    response = (pd.Timestamp(opened) + pd.Timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%MZ") if responded == "auto" else responded
    return incident(tid, **{"priority": priority, "opened_at": opened, "first_response_at": response,
                            "status": "IN_PROGRESS", "resolved_at": None, **kw})


def clock_case() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Day 1 = 03-10 03:00Z, day 2 = 03-11 03:00Z; 24x7; P1 4 h, P2 3 d (72 h) to resolve. Nothing changes.

        A   closed                                                       kept
        B   P1 opened 03-10 02:00: due 06:00 day 1, in progress at day 1  due by day 2: recomputed, breached
        F   P2 opened 03-09 20:00: due 03-12 20:00                        kept (in progress on both days)
        G   P1 opened 03-09 08:00: breached at day 1 (due 12:00 day 0)    kept (elapsed only grows)
        H   P1 opened 03-10 02:00, WAITING_CUSTOMER since 02:30: 30 min   kept (clock stopped: no due time)
        P   P1 now, P2 until its priority event at 03-10 12:00 (after     event after day 1: recomputed; at day
            day 1): at day 1 the P2 policy, due 03-13 01:00               2 the P1 policy, 26 h > 4 h: breached
        R   P2 opened 03-10 02:30, not answered: response due 03:30       due by day 2: recomputed, breached
        D2  P2 opened 03-08 03:00: due exactly at day 2                    recomputed (within the minute's slack);
                                                                         72 h is not > 72 h: still in progress
        D3  P2 opened 03-08 03:02: due 2 min after day 2                   kept
        M   maintenance, planned end 03-10 12:00 (between the days)      recomputed: due, late (False)
        M4  maintenance, planned end 03-20                               kept (not due)
        M5  maintenance, planned end 03-05 (due at day 1 already)        kept (False on both days)
    """
    rows = frame(
        incident("A"), open_incident("B", "2026-03-10T02:00Z"), open_incident("F", "2026-03-09T20:00Z", "P2"),
        open_incident("G", "2026-03-09T08:00Z"), open_incident("H", "2026-03-10T02:00Z", status="WAITING_CUSTOMER"),
        open_incident("P", "2026-03-10T01:00Z"), open_incident("R", "2026-03-10T02:30Z", "P2", responded=None),
        open_incident("D2", "2026-03-08T03:00Z", "P2"), open_incident("D3", "2026-03-08T03:02Z", "P2"),
        maintenance("M"), maintenance("M4", planned_end="2026-03-20T00:00Z"),
        maintenance("M5", planned_end="2026-03-05T00:00Z"))
    events = pd.DataFrame([
        {"ticket_id": "H", "at": "2026-03-10T02:00Z", "kind": "status", "value": "IN_PROGRESS"},
        {"ticket_id": "H", "at": "2026-03-10T02:30Z", "kind": "status", "value": "WAITING_CUSTOMER"},
        {"ticket_id": "P", "at": "2026-03-10T01:00Z", "kind": "priority", "value": "P2"},
        {"ticket_id": "P", "at": "2026-03-10T12:00Z", "kind": "priority", "value": "P1"}]).assign(source="hd", actor="")
    events["at"], events["seq"] = pd.to_datetime(events["at"], utc=True), range(len(events))
    return rows, conform(events, EVENT_COLUMNS)


def test_day1_of_the_clock_case_is_as_worked_out() -> None:
    facts = compute_facts(*clock_case(), CLOCK_SETTINGS, DAY1).set_index("ticket_id")
    assert list(facts.loc[["B", "F", "H", "P", "D2", "D3"], "resolution_sla"]) == ["in_progress"] * 6
    assert facts.loc["G", "resolution_sla"] == "breached" and facts.loc["R", "response_sla"] == "in_progress"
    assert pd.isna(facts.loc["H", "resolution_due_at"])  # the clock stopped at 30 min of 4 h
    assert facts.loc["P", "resolution_policy"] == "sla_2"  # P2 at day 1's as_of
    assert facts.loc["D2", "resolution_due_at"] == DAY2
    assert facts.loc["M5", "maintenance_on_time"] == False  # noqa: E712 (a nullable boolean: not null, False)
    assert pd.isna(facts.loc["M", "maintenance_on_time"]) and pd.isna(facts.loc["M4", "maintenance_on_time"])


def test_a_known_day1_as_of_recomputes_only_what_the_clock_moves() -> None:
    tickets, events = clock_case()
    stored = to_arrow(compute_facts(tickets, events, CLOCK_SETTINGS, DAY1), TICKET_FACT_COLUMNS)
    none_changed = tickets[KEY].iloc[:0]
    refresh = refresh_facts(tickets, events, none_changed, stored, CLOCK_SETTINGS, DAY2, reuse=True, stored_as_of=DAY1)

    assert refresh.recomputed == 5  # B, P, R, D2, M
    assert sorted(refresh.changes.rows["ticket_id"]) == ["B", "M", "P", "R"]  # D2 recomputed, unchanged
    facts = refresh.facts.set_index("ticket_id")
    assert facts.loc["B", "resolution_sla"] == "breached" and facts.loc["R", "response_sla"] == "breached"
    assert facts.loc["P", "resolution_policy"] == "sla_1" and facts.loc["P", "resolution_sla"] == "breached"
    assert facts.loc["D2", "resolution_sla"] == "in_progress" and not facts.loc["M", "maintenance_on_time"]
    pd.testing.assert_frame_equal(by_key(refresh.facts), by_key(compute_facts(tickets, events, CLOCK_SETTINGS, DAY2)),
                                  check_exact=True)


@pytest.mark.parametrize("stored_on, stored_as_of, run_on", [
    (DAY1, None, DAY2),  # not known (the last run was a backfill, or an older store)
    (DAY2, DAY2, DAY1),  # a run at an earlier as_of: breached can turn back to in progress
])
def test_without_a_known_earlier_as_of_every_running_clock_is_recomputed(stored_on, stored_as_of, run_on) -> None:
    tickets, events = clock_case()
    stored = to_arrow(compute_facts(tickets, events, CLOCK_SETTINGS, stored_on), TICKET_FACT_COLUMNS)
    refresh = refresh_facts(tickets, events, tickets[KEY].iloc[:0], stored, CLOCK_SETTINGS, run_on, reuse=True,
                            stored_as_of=stored_as_of)
    assert refresh.recomputed == 11  # all but A: the 8 open incidents and the 3 maintenance tickets not done
    pd.testing.assert_frame_equal(by_key(refresh.facts), by_key(compute_facts(tickets, events, CLOCK_SETTINGS, run_on)),
                                  check_exact=True)


def test_reads_the_clock_between_two_as_ofs() -> None:
    tickets, events = clock_case()
    facts = compute_facts(tickets, events, CLOCK_SETTINGS, DAY1)
    moved = dict(zip(facts["ticket_id"], reads_the_clock(to_arrow(facts, TICKET_FACT_COLUMNS), DAY1, DAY2), strict=True))
    assert sorted(t for t, m in moved.items() if m) == ["B", "D2", "M", "R"]  # P comes through its event
