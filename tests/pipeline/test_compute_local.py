"""The local engine with partitions: the same facts as one process, and the same tables in both stores.

The whole pipeline runs (a demo run, a backfill and a nightly run) with ``[compute] partitions`` = 1, 7 and
64; every table of both stores is compared cell by cell. The generated set has induced incidents whose
maintenance ticket is in another partition, reopens, and two sources.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from compute_helpers import (
    AS_OF,
    SLA_CONFIG,
    assert_same_stores,
    bench_settings,
    export,
    file_settings,
    generated,
    with_compute,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpis import compute_facts, kpi_tables
from kpis.backlog_scope import BacklogScope
from kpis.config import KpiSettings
from kpis.schema import EVENT_COLUMNS, TABLE_KEYS, TICKET_COLUMNS, conform
from pipeline.cli import demo_settings
from pipeline.compute import facts_engine, facts_with_history, ops_engine
from pipeline.compute.local import (
    _MANY,
    PartitionFacts,
    _InputOrder,
    _one_text,
    in_input_order,
    partition_facts,
)
from pipeline.compute.ops import (
    FACT_COLUMNS,
    OpsRequest,
    aligned_facts,
    in_ticket_order,
    local_ops,
    partition_ops,
    tickets_in_key_order,
)
from pipeline.compute.partition import partition_of
from pipeline.jobs import run_job
from pipeline.periods import dates_window
from pipeline.settings import ComputeSettings


def test_generated_set_has_induced_incidents_across_partitions() -> None:
    """The data the other tests rely on: induced incidents whose maintenance ticket is in another partition."""
    tickets, _ = generated(3000)
    facts = compute_facts(tickets, generated(3000)[1], bench_settings(), AS_OF)
    induced = tickets[facts["induced_incident"].to_numpy(dtype=bool)]
    own = partition_of(induced["source"], induced["ticket_id"], 7)
    cause = partition_of(induced["source"], induced["caused_by"], 7)
    assert len(induced) > 50 and (own != cause).sum() > 40
    assert (facts["reopen_count"] > 0).sum() > 100


@pytest.mark.parametrize("partitions", [2, 7, 64])
def test_partitioned_facts_equal_one_process(partitions: int) -> None:
    tickets, events = generated(3000)
    expected = compute_facts(tickets, events, bench_settings(), AS_OF)
    got = facts_engine(ComputeSettings(partitions=partitions))(tickets, events, bench_settings(), AS_OF, None)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


@pytest.mark.parametrize("partitions", [2, 7, 64])
def test_partitioned_status_time_and_backlog_equal_one_process(partitions: int) -> None:
    """Every ticket's status rows and every day's backlog (a full run), then a night's scope: some tickets'
    status rows and the last ten days of the backlog, then days with gaps (one before every opening)."""
    tickets, events = generated(3000)
    facts = compute_facts(tickets, events, bench_settings(), AS_OF)
    some = tickets.loc[::5, ["source", "ticket_id"]].reset_index(drop=True)
    last_days = np.arange(np.datetime64("2026-01-05"), np.datetime64("2026-01-15"), dtype="datetime64[D]")
    sparse = np.array(["2020-01-01", "2025-03-03", "2025-08-17", "2025-08-18", "2026-01-14"], dtype="datetime64[D]")
    for status_keys, days, min_backlog_rows in ((None, None, 100), (some, last_days, 100), (some, sparse, 20)):
        request = OpsRequest(bench_settings(), AS_OF, status_keys, days)
        expected = local_ops(tickets, events, facts, request)
        got = ops_engine(ComputeSettings(partitions=partitions))(tickets, events, facts, request)
        assert len(expected.status_time) > 1000 and len(expected.backlog) > min_backlog_rows
        pd.testing.assert_frame_equal(got.status_time, expected.status_time, check_exact=True)
        pd.testing.assert_frame_equal(got.backlog, expected.backlog, check_exact=True)


@pytest.mark.parametrize("partitions", [1, 7])
def test_a_nights_backlog_scope_gives_the_rows_it_holds_of_the_whole_backlog(partitions: int) -> None:
    """A night's request carries its backlog scope (every seventh cell of the whole backlog, and the last two
    days whole): one process and 7 partitions give exactly the whole backlog's rows the scope holds."""
    tickets, events = generated(3000)
    facts = compute_facts(tickets, events, bench_settings(), AS_OF)
    whole = local_ops(tickets, events, facts, OpsRequest(bench_settings(), AS_OF, None, None)).backlog
    cells = whole.loc[::7, list(TABLE_KEYS["kpi_backlog"])].reset_index(drop=True)
    recent = np.array(["2026-01-14", "2026-01-15"], dtype="datetime64[D]")
    scope = BacklogScope(np.union1d(cells["day"].to_numpy().astype("datetime64[D]"), recent), recent, cells)
    expected = whole[scope.holds(whole)].reset_index(drop=True)
    request = OpsRequest(bench_settings(), AS_OF, tickets.loc[:9, ["source", "ticket_id"]], scope.days, scope)
    got = ops_engine(ComputeSettings(partitions=partitions))(tickets, events, facts, request)
    assert len(whole) > 3 * len(expected) > 3 * len(cells) > 300
    pd.testing.assert_frame_equal(got.backlog, expected, check_exact=True)


def test_facts_in_any_order_are_aligned_with_the_tickets_and_give_the_same_tables() -> None:
    """Both tables look a ticket's facts up by position once the facts are in the tickets' order; facts in
    another order are put in it, and facts missing a ticket are left as they are (looked up by a join)."""
    tickets, events = generated(600)
    facts = compute_facts(tickets, events, bench_settings(), AS_OF)
    shuffled = facts.sample(frac=1, random_state=3).reset_index(drop=True)
    keys = list(zip(tickets["source"], tickets["ticket_id"], strict=True))

    aligned = aligned_facts(tickets, shuffled)
    assert list(zip(aligned["source"], aligned["ticket_id"], strict=True)) == keys
    assert list(aligned.columns) == FACT_COLUMNS
    assert aligned_facts(tickets, shuffled.iloc[1:])["ticket_id"].tolist() == shuffled["ticket_id"].iloc[1:].tolist()
    request = OpsRequest(bench_settings(), AS_OF, None, None)
    expected, got = partition_ops(tickets, events, facts, request), partition_ops(tickets, events, shuffled, request)
    assert len(expected.backlog) > 20
    pd.testing.assert_frame_equal(got.status_time, expected.status_time, check_exact=True)
    pd.testing.assert_frame_equal(got.backlog.frame(AS_OF), expected.backlog.frame(AS_OF), check_exact=True)


def test_facts_in_one_piece_hand_their_history_to_both_tables() -> None:
    """The local engine in one piece gives the facts and the history they read; both tables computed from it
    equal those that build their own, for every ticket (a full run) and for some tickets' status rows (a
    backfill: only the backlog reads it). Split into 7 partitions the history is not used (each partition
    numbers its own tickets), and a partitioned engine hands none over. A night's few days (``days``) read only
    the tickets that may be open on them, as without it."""
    tickets, events = generated(600)
    facts, history = facts_with_history(ComputeSettings(partitions=1), tickets, events, bench_settings(), AS_OF, None)
    pd.testing.assert_frame_equal(facts, compute_facts(tickets, events, bench_settings(), AS_OF), check_exact=True)
    assert history is not None and len(history.history["status"]) == (events["kind"] == "status").sum() > 600
    some = tickets.loc[::5, ["source", "ticket_id"]].reset_index(drop=True)
    last_days = np.arange(np.datetime64("2026-01-05"), np.datetime64("2026-01-15"), dtype="datetime64[D]")
    for status_keys, days in ((None, None), (some, None), (some, last_days)):
        request = OpsRequest(bench_settings(), AS_OF, status_keys, days)
        expected = local_ops(tickets, events, facts, request)
        assert len(expected.status_time) > 300 and len(expected.backlog) > 20
        for partitions in (1, 7):
            got = local_ops(tickets, events, facts, replace(request, history=history), partitions=partitions)
            pd.testing.assert_frame_equal(got.status_time, expected.status_time, check_exact=True)
            pd.testing.assert_frame_equal(got.backlog, expected.backlog, check_exact=True)
    partitioned = facts_with_history(ComputeSettings(partitions=7), tickets, events, bench_settings(), AS_OF, None)
    pd.testing.assert_frame_equal(partitioned[0], facts, check_exact=True)
    assert partitioned[1] is None


def _read_the_facts_history(caplog) -> bool:
    return any("read the history their facts built" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("partitions", "shared"), [(1, True), (7, False)])
def test_a_full_run_in_one_piece_does_not_sort_the_events_twice(tmp_path: Path, caplog, partitions: int,
                                                                 shared: bool) -> None:
    """On one process, time in status and the backlog of a demo run and of a first night read the history the
    facts built; the next night refreshes some tickets' facts only, so the ops tables build their own."""
    with caplog.at_level(logging.DEBUG, logger="pipeline.compute.ops"):
        _demo(tmp_path / "demo", partitions)
        assert _read_the_facts_history(caplog) is shared
        caplog.clear()
        exports = export(*generated(300), tmp_path)
        settings = file_settings(tmp_path / "store", exports, ComputeSettings(partitions=partitions))
        run_job(settings, kind="run", as_of=AS_OF)
        assert _read_the_facts_history(caplog) is shared
        caplog.clear()
        run_job(settings, kind="run", as_of=AS_OF + pd.Timedelta(days=1))
        assert not _read_the_facts_history(caplog)


def test_partitioned_facts_of_no_tickets() -> None:
    tickets, events = generated(300)
    expected = compute_facts(tickets.iloc[:0], events.iloc[:0], bench_settings(), AS_OF)
    got = facts_engine(ComputeSettings(partitions=7))(tickets.iloc[:0], events.iloc[:0], bench_settings(), AS_OF, None)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def _demo(root: Path, partitions: int):
    settings = with_compute(demo_settings(root), root, partitions=partitions)
    run_job(settings, kind="demo", as_of=pd.Timestamp("2026-07-31T00:00:00Z"))
    return settings


def test_demo_tables_identical_with_1_7_64_partitions(tmp_path: Path) -> None:
    one = _demo(tmp_path / "p1", 1)
    for partitions in (7, 64):
        assert_same_stores(one, _demo(tmp_path / f"p{partitions}", partitions))


def _backfill_then_night(root: Path, exports: Path, partitions: int):
    settings = file_settings(root, exports, ComputeSettings(partitions=partitions))
    run_job(settings, kind="run", as_of=AS_OF)  # the first night reads every file
    window = dates_window(pd.Timestamp("2025-01-01").date(), pd.Timestamp("2026-01-15").date())
    run_job(settings, kind="backfill", as_of=AS_OF, window=window)
    return settings


def test_generated_tables_identical_with_1_7_64_partitions(tmp_path: Path) -> None:
    """A first night (every ticket) and a backfill of the whole year, then a night in which some tickets
    changed (a new export: a reopen, a maintenance ticket that is now failed): same tables whatever the
    partitions."""
    tickets, events = generated(2500)
    exports = export(tickets, events, tmp_path)
    stores = {p: _backfill_then_night(tmp_path / f"p{p}", exports, p) for p in (1, 7, 64)}
    changed = tickets[tickets["ticket_type"].isin(["maintenance"]).to_numpy()].head(40).copy()
    changed["close_code"], changed["updated_at"] = "failed", AS_OF
    changed.to_parquet(exports / "tickets" / "part-1.parquet", index=False)
    reopened = events[events["ticket_id"].isin(tickets["ticket_id"].head(50))].copy()
    reopened["at"] += pd.Timedelta(days=2)
    reopened["seq"] += 10_000_000
    reopened.to_parquet(exports / "events" / "part-1.parquet", index=False)
    for store in stores.values():
        run_job(store, kind="run", as_of=AS_OF + pd.Timedelta(days=1))
    for p in (7, 64):
        assert_same_stores(stores[1], stores[p])


def test_partitions_bound_the_work_per_partition() -> None:
    """With 7 partitions no partition holds much more than a seventh of the tickets (the hash spreads)."""
    tickets, _ = generated(7000)
    counts = np.bincount(partition_of(tickets["source"], tickets["ticket_id"], 7), minlength=7)
    assert counts.sum() == 7000 and counts.min() > 850 and counts.max() < 1150


def _by_key(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return frame.sort_values(key, kind="stable").reset_index(drop=True)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), n=st.integers(60, 400), partitions=st.integers(1, 40),
       order=st.randoms(use_true_random=False))
def test_tables_do_not_depend_on_input_order_or_partitions(seed: int, n: int, partitions: int, order) -> None:
    """Shuffled tickets and events, any number of partitions: the same facts (by key) and the same KPI tables."""
    tickets, events = generated(n, seed)
    kpi = bench_settings()
    expected = kpi_tables(compute_facts(tickets, events, kpi, AS_OF), kpi)
    t_order, e_order = list(range(len(tickets))), list(range(len(events)))
    order.shuffle(t_order)
    order.shuffle(e_order)
    facts = facts_engine(ComputeSettings(partitions=partitions))(
        tickets.iloc[t_order].reset_index(drop=True), events.iloc[e_order].reset_index(drop=True), kpi, AS_OF, None)
    got = kpi_tables(facts, kpi)
    for table in ("facts", "kpi_engineer", "kpi_team", "scorecard", "scorecard_kpi", "kpi_breakdown"):
        key = ["source", "ticket_id"] if table == "facts" else list(TABLE_KEYS.get(table, ()))
        pd.testing.assert_frame_equal(_by_key(getattr(got, table), key), _by_key(getattr(expected, table), key),
                                      check_exact=True, obj=table)


# --- the partitions' status rows stacked back in key order ---------------------------------------------------
def _status_rows(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["source", "ticket_id", "status"], dtype="str")


def test_stacked_status_rows_are_put_in_key_order_one_ticket_at_a_time() -> None:
    stacked = _status_rows(
        ("svc", "2", "IN_PROGRESS"), ("svc", "2", "NEW"), ("svc", "10", "NEW"),  # partition A, in key order
        ("svc", "1", "NEW"), ("desk", "5", "RESOLVED"), ("desk", "5", "WAITING_CUSTOMER"),  # partition B
    )

    # desk/5 first (source), then svc's ids as text: "1" < "10" < "2"; each ticket's rows keep their order
    assert tickets_in_key_order(stacked).tolist() == [4, 5, 3, 2, 0, 1]
    assert tickets_in_key_order(stacked.iloc[:0]).tolist() == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "ab"]), st.sampled_from(["1", "2", "10", "x"]),
                          st.lists(st.sampled_from(["NEW", "IN_PROGRESS", "RESOLVED"]), min_size=1, max_size=3,
                                   unique=True)),
                unique_by=lambda t: (t[0], t[1])), st.randoms())
def test_key_order_of_stacked_tickets_equals_sorting_every_row(tickets, random) -> None:
    """Tickets in any order, each with its rows together and sorted by status: the same order as sorting
    every row by (source, ticket_id, status)."""
    random.shuffle(tickets)
    stacked = _status_rows(*[(s, t, status) for s, t, statuses in tickets for status in sorted(statuses)])

    got = stacked.take(tickets_in_key_order(stacked)).reset_index(drop=True)

    pd.testing.assert_frame_equal(got, stacked.sort_values(["source", "ticket_id", "status"], ignore_index=True))


# --- columns the facts take from the tickets as read ---------------------------------------------------------
def _hand_tickets() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Six incidents (A..F, two sources); an event moves only C's priority (P3 -> P1)."""
    rows = [{"source": "desk" if i % 2 else "mail", "ticket_id": name, "ticket_type": "incident", "status": "NEW",
             "priority": "P3", "assignee": f"eng{i % 3}", "opened_at": AS_OF - pd.Timedelta(hours=i + 1)}
            for i, name in enumerate("ABCDEF")]
    tickets = conform(pd.DataFrame(rows), TICKET_COLUMNS)
    events = conform(pd.DataFrame([{"source": "mail", "ticket_id": "C", "at": AS_OF - pd.Timedelta(minutes=30),
                                    "kind": "priority", "value": "P1", "actor": "", "seq": 0}]), EVENT_COLUMNS)
    return tickets, events


def test_a_partition_leaves_to_its_tickets_the_columns_that_equal_theirs() -> None:
    tickets, events = _hand_tickets()
    broadcast = tickets.iloc[:0]
    moved = partition_facts(tickets, events, broadcast, bench_settings(), AS_OF, None)
    assert {"source", "ticket_id", "opened_at", "status", "engineer", "client"} <= set(moved.from_tickets)
    assert moved.from_tickets["engineer"] == "assignee"
    assert "priority" not in moved.from_tickets and moved.facts["priority"].tolist() == [
        "P3", "P3", "P1", "P3", "P3", "P3"]
    assert not set(moved.from_tickets) & set(moved.facts.columns)  # left out of the partition's facts
    quiet = partition_facts(tickets, events.iloc[:0], broadcast, bench_settings(), AS_OF, None)
    assert quiet.from_tickets["priority"] == "priority"


def _two_policies() -> tuple[pd.DataFrame, pd.DataFrame, KpiSettings]:
    """The hand tickets, A, C and E for ACME's ERP (policy ACME-core-P34 at P3), the others on "default"."""
    tickets, events = _hand_tickets()
    acme = np.arange(len(tickets)) % 2 == 0
    tickets["client"] = pd.array(np.where(acme, "ACME", None), dtype="str")
    tickets["service"] = pd.array(np.where(acme, "ERP", None), dtype="str")
    return tickets, events, bench_settings(SLA_CONFIG)


def test_a_partition_leaves_the_twins_of_ticket_and_fact_columns() -> None:
    """Nothing moves a priority: the priority at the response and at the resolution is the ticket's. Both
    metrics match one policy, which is not the same for every ticket."""
    tickets, events, kpi = _two_policies()
    part = partition_facts(tickets, events.iloc[:0], tickets.iloc[:0], kpi, AS_OF, None)
    assert "response_policy" in part.facts and "response_policy" not in part.constants
    assert (part.from_tickets["response_priority"], part.from_tickets["resolution_priority"]) == ("priority", "priority")
    assert part.twins == {"resolution_policy": "response_policy"}
    assert not {"response_priority", "resolution_priority", "resolution_policy"} & set(part.facts.columns)
    # C's priority moved (P3 -> P1 before any response): its response priority is its own column again
    moved = partition_facts(tickets, events, tickets.iloc[:0], kpi, AS_OF, None)
    assert "response_priority" not in moved.from_tickets and "response_priority" in moved.facts


def test_a_twin_only_some_partitions_left_is_put_back_for_those() -> None:
    """Rows 0-2 are one partition (its resolution policy is its response policy: left as a twin), rows 3-5
    another whose resolution policy is its own ("special"): stacked, rows 3, 4, 5 read "special"."""
    tickets, events, kpi = _two_policies()
    whole = compute_facts(tickets, events.iloc[:0], kpi, AS_OF)
    rows = [np.array([0, 1, 2]), np.array([3, 4, 5])]
    one, two = (partition_facts(tickets.iloc[r].reset_index(drop=True), events.iloc[:0], tickets.iloc[:0],
                                kpi, AS_OF, None) for r in rows)
    assert one.twins == two.twins == {"resolution_policy": "response_policy"}
    two = PartitionFacts(two.facts.assign(resolution_policy=pd.array(["special"] * 3, dtype="str")),
                         two.from_tickets, {}, two.constants)
    expected = whole.assign(resolution_policy=whole["response_policy"].where(whole.index < 3, "special"))
    pd.testing.assert_frame_equal(in_input_order([(rows[0], one), (rows[1], two)], tickets), expected,
                                  check_exact=True)


@pytest.mark.parametrize(("values", "expected"), [
    (["v2", "v2", "v2"], "v2"), ([None, None], None),
    (["v2", None, "v2"], _MANY), ([None, "v2"], _MANY), (["v2", "v3"], _MANY), ([], _MANY)])
def test_one_text_is_the_value_of_every_row_missing_included(values: list, expected: object) -> None:
    assert _one_text(pd.Series(values, dtype="str")) == expected  # _MANY equals only itself


def test_a_text_with_one_value_travels_as_that_value() -> None:
    """Every row of a partition holds the KPI version, and no data-quality flag: both travel as one value
    each. Rows 0-2 are one partition, rows 3-5 another whose versions differ (v9, v9, v8): stacked, the first
    partition's one value is put back in rows 0-2."""
    tickets, events, kpi = _two_policies()
    whole = compute_facts(tickets, events.iloc[:0], kpi, AS_OF)
    rows = [np.array([0, 1, 2]), np.array([3, 4, 5])]
    one, two = (partition_facts(tickets.iloc[r].reset_index(drop=True), events.iloc[:0], tickets.iloc[:0],
                                kpi, AS_OF, None) for r in rows)
    version = whole["kpi_version"].iloc[0]
    assert one.constants["kpi_version"] == version and one.constants["dq_flag"] is None
    assert "response_policy" not in one.constants  # ACME-core-P34 and default
    two = PartitionFacts(two.facts.assign(kpi_version=pd.array(["v9", "v9", "v8"], dtype="str")), two.from_tickets,
                         two.twins, {name: value for name, value in two.constants.items() if name != "kpi_version"})
    expected = whole.assign(kpi_version=pd.array([version] * 3 + ["v9", "v9", "v8"], dtype="str"))
    pd.testing.assert_frame_equal(in_input_order([(rows[0], one), (rows[1], two)], tickets), expected,
                                  check_exact=True)
    both = in_input_order([(rows[0], one), (rows[1], partition_facts(
        tickets.iloc[rows[1]].reset_index(drop=True), events.iloc[:0], tickets.iloc[:0], kpi, AS_OF, None))], tickets)
    pd.testing.assert_frame_equal(both, whole, check_exact=True)  # the same value everywhere: built once


@pytest.mark.parametrize("partitions", [1, 2, 3, 6])
def test_stacked_facts_take_the_input_s_columns_where_every_partition_left_them(partitions: int) -> None:
    # C's priority is its own in C's partition only: there the column is kept, elsewhere taken from the
    # input for that partition; source, ticket_id and status are left by every partition: the input's own
    tickets, events = _hand_tickets()
    expected = compute_facts(tickets, events, bench_settings(), AS_OF)
    got = facts_engine(ComputeSettings(partitions=partitions))(tickets, events, bench_settings(), AS_OF, None)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    if partitions > 1:
        for column in ("ticket_id", "status"):
            shared = [chunk.buffers()[2].address for chunk in got[column].array._pa_array.chunks]
            assert shared == [chunk.buffers()[2].address for chunk in tickets[column].array._pa_array.chunks]


def test_facts_in_the_tickets_order_are_aligned_by_position_and_others_by_their_keys() -> None:
    tickets, events = _hand_tickets()
    facts = compute_facts(tickets, events, bench_settings(), AS_OF)
    assert in_ticket_order(facts, tickets)
    backwards = facts.iloc[::-1].reset_index(drop=True)
    other_source = facts.assign(source="desk")  # same ticket ids, another source for half of them
    assert not in_ticket_order(backwards, tickets) and not in_ticket_order(facts.iloc[:5], tickets)
    assert not in_ticket_order(other_source, tickets)
    for stored in (facts, backwards):
        pd.testing.assert_frame_equal(aligned_facts(tickets, stored), facts[FACT_COLUMNS], check_exact=True)


# Two partitions: the first holds input rows 0, 2 and 3, the second rows 1 and 4.
PLACES = [np.array([0, 2, 3]), np.array([1, 4])]
T = pd.Timestamp


@pytest.mark.parametrize(("first", "second", "expected"), [
    (pd.array([T("2026-01-01", tz="UTC"), pd.NaT, T("2026-01-03", tz="UTC")], dtype="datetime64[us, UTC]"),
     pd.array([T("2026-01-02", tz="UTC"), T("2026-01-05", tz="UTC")], dtype="datetime64[us, UTC]"),
     pd.array([T("2026-01-01", tz="UTC"), T("2026-01-02", tz="UTC"), pd.NaT, T("2026-01-03", tz="UTC"),
               T("2026-01-05", tz="UTC")], dtype="datetime64[us, UTC]")),
    (pd.array([10, None, 30], dtype="Int64"), pd.array([20, 50], dtype="Int64"),
     pd.array([10, 20, None, 30, 50], dtype="Int64")),
    (pd.array([True, None, False], dtype="boolean"), pd.array([None, True], dtype="boolean"),
     pd.array([True, None, None, False, True], dtype="boolean")),
    (pd.array([0.5, None, 3.5], dtype="Float64"), pd.array([2.5, 4.5], dtype="Float64"),
     pd.array([0.5, 2.5, None, 3.5, 4.5], dtype="Float64")),
    (pd.array(["met", None, "breached"], dtype="str"), pd.array(["pending", "met"], dtype="str"),
     pd.array(["met", "pending", None, "breached", "met"], dtype="str")),
    # another kind of array is stacked and taken by pandas
    (pd.array(np.array([1, 3, 4])), pd.array(np.array([2, 5])), pd.array(np.array([1, 2, 3, 4, 5]))),
    # partitions that disagree on the dtype: stacked (pandas finds the common dtype)
    (pd.array([1, None, 3], dtype="Int64"), pd.array([2.5, 5.5], dtype="Float64"),
     pd.array([1, 2.5, None, 3, 5.5], dtype="Float64")),
])
def test_each_partitions_values_go_back_to_their_input_rows(first, second, expected) -> None:
    """By hand: row 0 <- first[0], 1 <- second[0], 2 <- first[1], 3 <- first[2], 4 <- second[1]."""
    got = _InputOrder(PLACES).column([first, second])
    pd.testing.assert_extension_array_equal(pd.array(got), expected)
