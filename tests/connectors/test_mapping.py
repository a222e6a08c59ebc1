"""connectors.mapping: column and value maps, null tokens, timestamps; expected values by hand."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from connectors.mapping import (
    RowReasons,
    has_offset_text,
    map_events,
    map_tickets,
    normalise_nulls,
    parse_timestamps,
    raw_json,
    read_timestamps,
)
from kpis.errors import ConfigError
from kpis.schema import EVENT_COLUMNS, REJECTED_COLUMNS, TICKET_COLUMNS


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def text_frame(data: dict[str, list]) -> pd.DataFrame:
    return pd.DataFrame(data, dtype="str")


# --- normalise_nulls / raw_json ----------------------------------------------------------------

def test_normalise_nulls_strips_and_nulls_tokens():
    frame = text_frame({"a": ["  x ", "N/A", "?", "", "  ", None, "-", "0"]})
    out = normalise_nulls(frame, ("?", "N/A", "-"))
    assert out["a"].tolist()[0] == "x"
    assert out["a"].isna().tolist() == [False, True, True, True, True, True, True, False]
    assert out["a"].tolist()[7] == "0"


def test_raw_json_is_compact_utf8_with_nulls():
    frame = pd.DataFrame({"编号": ["INC/1", None], "n": ["3", "x"]}, dtype="object")
    out = raw_json(frame)
    assert out.tolist() == ['{"编号":"INC/1","n":"3"}', '{"编号":null,"n":"x"}']
    assert json.loads(out[0]) == {"编号": "INC/1", "n": "3"}


def test_raw_json_writes_timestamps_as_iso():
    frame = pd.DataFrame({"at": pd.Series([utc("2026-03-05 02:00:00"), pd.NaT]).astype("datetime64[us, UTC]")})
    assert raw_json(frame).tolist() == ['{"at":"2026-03-05T02:00:00Z"}', '{"at":null}']


# --- parse_timestamps --------------------------------------------------------------------------

def test_naive_values_are_local_time_of_the_source(make_source):
    # Shanghai is UTC+8 all year: 10:00 local = 02:00 UTC; fractions are truncated, not rounded.
    values = pd.Series(["2026-03-05 10:00:00", "2026-03-05T10:00:59.900", "2026-03-05"])
    out, bad = parse_timestamps(values, make_source())
    assert out.tolist() == [utc("2026-03-05 02:00:00"), utc("2026-03-05 02:00:59"), utc("2026-03-04 16:00:00")]
    assert str(out.dtype) == "datetime64[us, UTC]"
    assert not bad.any()


def test_offsets_win_over_the_source_timezone(make_source):
    values = pd.Series(["2026-03-05T10:00:00Z", "2026-03-05T10:00:00+08:00", "2026-03-05 10:00:00-0500",
                        "2026-03-05 10:00:00"])
    out, _ = parse_timestamps(values, make_source())
    assert out.tolist() == [utc("2026-03-05 10:00"), utc("2026-03-05 02:00"), utc("2026-03-05 15:00"),
                            utc("2026-03-05 02:00")]


def test_unparseable_values_are_flagged_and_missing_ones_are_not(make_source):
    values = pd.Series(["2026-03-05 10:00", "yesterday-ish", None, "", "2026-13-45 10:00"])
    out, bad = parse_timestamps(values, make_source())
    assert bad.tolist() == [False, True, False, False, True]
    assert out.isna().tolist() == [False, True, True, True, True]


def test_naive_values_without_timezone_raise_config_error(make_source):
    with pytest.raises(ConfigError, match=r"sources\['hd'\]\.timezone"):
        parse_timestamps(pd.Series(["2026-03-05 10:00"]), make_source(timezone=None))


def test_values_with_offsets_need_no_timezone(make_source):
    out, bad = parse_timestamps(pd.Series(["2026-03-05T10:00:00+01:00", None]), make_source(timezone=None))
    assert out[0] == utc("2026-03-05 09:00")
    assert not bad.any()


def test_strftime_format(make_source):
    cfg = make_source(timestamp_format="%d.%m.%Y %H:%M", timezone="Europe/Berlin")
    out, bad = parse_timestamps(pd.Series(["05.03.2026 10:30", "2026-03-05 10:30"]), cfg)
    assert out[0] == utc("2026-03-05 09:30")  # Berlin is UTC+1 in March before the DST change
    assert bad.tolist() == [False, True]


def test_strftime_format_with_offset(make_source):
    cfg = make_source(timestamp_format="%Y/%m/%d %H:%M %z", timezone=None)
    out, _ = parse_timestamps(pd.Series(["2026/03/05 10:30 +0800"]), cfg)
    assert out[0] == utc("2026-03-05 02:30")


def test_dayfirst(make_source):
    out, bad = parse_timestamps(pd.Series(["05/03/2026 10:00", "13/03/2026 11:00"]), make_source(dayfirst=True))
    assert out.tolist() == [utc("2026-03-05 02:00"), utc("2026-03-13 03:00")]
    assert not bad.any()


@pytest.mark.parametrize(("unit", "value"), [("ms", "1772676000500"), ("s", "1772676000")])
def test_epoch(make_source, unit, value):
    # 1772676000 s = 2026-03-05T02:00:00Z
    out, bad = parse_timestamps(pd.Series([value, "soon"]), make_source(timezone=None, options={"epoch": unit}))
    assert out[0] == utc("2026-03-05 02:00:00")
    assert bad.tolist() == [False, True]


def test_dst_times_resolve_like_zoneinfo_fold_0(make_source):
    # New York: 2026-03-08 02:30 does not exist (fold=0 reads it with EST, -5 -> 07:30Z);
    # 2026-11-01 01:30 happens twice (fold=0 is the first, EDT, -4 -> 05:30Z).
    cfg = make_source(timezone="America/New_York")
    out, _ = parse_timestamps(pd.Series(["2026-03-08 02:30", "2026-11-01 01:30"]), cfg)
    assert out.tolist() == [utc("2026-03-08 07:30"), utc("2026-11-01 05:30")]


# --- out of range, naive values without timezone ------------------------------------------------

def test_only_1970_to_2099_utc_is_a_time(make_source):
    # Shanghai is UTC+8: local 1970-01-01 07:59:59 is 1969-12-31T23:59:59Z, one second too early.
    values = pd.Series(["9999-12-31T23:00:00+08:00", "1900-01-01 00:00", "1970-01-01 07:59:59",
                        "1970-01-01T00:00:00Z", "2099-12-31T23:59:59Z", "2100-01-01T00:00:00Z",
                        "0001-01-01T00:00:00Z", "2026-03-05 10:00", "soon", None])
    stamps = read_timestamps(values, make_source())
    assert stamps.out_of_range.tolist() == [True, True, True, False, False, True, True, False, False, False]
    assert stamps.unparseable.tolist() == [False] * 8 + [True, False]
    assert stamps.utc.tolist()[3:5] == [utc("1970-01-01 00:00:00"), utc("2099-12-31 23:59:59")]
    assert stamps.utc.isna().tolist() == [True, True, True, False, False, True, True, False, True, True]
    _, bad = parse_timestamps(values, make_source())
    assert bad.tolist() == [True, True, True, False, False, True, True, False, True, False]


def test_out_of_range_timestamp_rejects_its_row_only(make_source):
    raw = text_frame({"ticket_id": ["A", "B"], "ticket_type": ["incident"] * 2, "status": ["NEW"] * 2,
                      "opened_at": ["9999-12-31T23:00:00+08:00", "2026-03-05T10:00:00+08:00"]})
    tickets, rejected = map_tickets(raw, make_source())
    assert tickets["ticket_id"].tolist() == ["B"]
    assert rejected["reason"].tolist() == ["opened_at out of range 1970..2099 '9999-12-31T23:00:00+08:00'"]


def test_a_naive_value_among_offsets_without_timezone_rejects_its_row(make_source):
    # the column's other values carry offsets: the source writes offsets and this value lost its own
    raw = text_frame({"ticket_id": ["A", "B", "C"], "ticket_type": ["incident"] * 3, "status": ["RESOLVED"] * 3,
                      "opened_at": ["2026-03-05T10:00:00+08:00", "2026-03-05 10:00:00", "2026-03-05T10:00:00+08:00"],
                      "resolved_at": ["2026-03-05T12:00:00Z", None, "2026-03-05 11:00"]})
    tickets, rejected = map_tickets(raw, make_source(timezone=None))
    assert tickets["ticket_id"].tolist() == ["A"]
    assert tickets["opened_at"].tolist() == [utc("2026-03-05 02:00")]
    assert tickets["resolved_at"].tolist() == [utc("2026-03-05 12:00")]
    assert rejected["reason"].tolist() == ["no UTC offset in opened_at (set sources.timezone) '2026-03-05 10:00:00'",
                                           "no UTC offset in resolved_at (set sources.timezone) '2026-03-05 11:00'"]


def test_a_column_of_naive_values_without_timezone_is_a_config_error_naming_the_source_and_a_value(make_source):
    # resolved_at carries offsets, opened_at never does: the source writes opened_at naive, always
    raw = text_frame({"ticket_id": ["A", "B"], "ticket_type": ["incident"] * 2, "status": ["NEW"] * 2,
                      "opened_at": ["2026-03-05 10:00:00", "2026-03-05 11:00:00"],
                      "resolved_at": ["2026-03-05T12:00:00Z", None]})
    with pytest.raises(ConfigError, match=r"sources\['hd'\]\.timezone.*'2026-03-05 10:00:00'.*set timezone"):
        map_tickets(raw, make_source(timezone=None))


def test_naive_event_time_among_offsets_rejects_the_event(make_source):
    raw = text_frame({"ticket_id": ["A", "A"], "at": ["2026-03-05T10:00:00Z", "2026-03-05 10:05"],
                      "kind": ["response", "response"], "value": [None, None]})
    events, rejected = map_events(raw, make_source(timezone=None))
    assert len(events) == 1
    assert rejected["reason"].tolist() == ["no UTC offset in at (set sources.timezone) '2026-03-05 10:05'"]


# --- map_tickets --------------------------------------------------------------------------------

def helpdesk(make_source, **overrides):
    values = {
        "columns": {"ticket_id": "Number", "opened_at": "Opened", "status": "State", "priority": "Priority",
                    "ticket_type": "Type", "reopen_count": "Reopens"},
        "status_map": {"Active": "IN_PROGRESS", "Solved": "RESOLVED"},
        "priority_map": {"1 - Critical": "P1", "3 - Moderate": "P3"},
        "type_map": {"Incident": "incident"},
    }
    values.update(overrides)
    return make_source(**values)


def test_map_tickets_maps_columns_and_values(make_source):
    raw = text_frame({
        "Number": ["INC1", " INC2 "],
        "Opened": ["2026-03-05 10:00:00", "2026-03-05T09:00:00Z"],
        "State": ["Active", "CLOSED"],  # a canonical value passes through
        "Priority": ["1 - Critical", "N/A"],
        "Type": ["Incident", "request"],
        "Reopens": ["2", "0.0"],
        "Ignored": ["x", "y"],
    })
    tickets, rejected = map_tickets(raw, helpdesk(make_source))
    assert len(rejected) == 0
    assert list(tickets.columns) == list(TICKET_COLUMNS)
    assert tickets["ticket_id"].tolist() == ["INC1", "INC2"]
    assert tickets["source"].tolist() == ["hd", "hd"]
    assert tickets["status"].tolist() == ["IN_PROGRESS", "CLOSED"]
    assert tickets["priority"].tolist()[0] == "P1" and pd.isna(tickets["priority"][1])
    assert tickets["ticket_type"].tolist() == ["incident", "request"]
    assert tickets["opened_at"].tolist() == [utc("2026-03-05 02:00"), utc("2026-03-05 09:00")]
    assert tickets["reopen_count"].tolist() == [2, 0]
    assert {c: str(t) for c, t in tickets.dtypes.items()}["reopen_count"] == "Int64"


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("State", "Foo", "unmapped status 'Foo'"),
    ("Priority", "Urgent", "unmapped priority 'Urgent'"),
    ("Type", "Bug", "unmapped type 'Bug'"),
    ("Opened", "31/31/2026", "unparseable opened_at '31/31/2026'"),
    ("Reopens", "two", "bad integer reopen_count 'two'"),
    ("Reopens", "1.5", "bad integer reopen_count '1.5'"),
    ("Reopens", "-1", "bad integer reopen_count '-1'"),
])
def test_map_tickets_rejects_what_it_cannot_map(make_source, column, value, reason):
    row = {"Number": "INC9", "Opened": "2026-03-05 10:00", "State": "Active", "Priority": "1 - Critical",
           "Type": "Incident", "Reopens": "1"}
    raw = text_frame({k: ["fine" if k == "Number" else v, v if k != column else value] for k, v in row.items()})
    raw.loc[0, "Number"] = "INC8"
    tickets, rejected = map_tickets(raw, helpdesk(make_source))
    assert tickets["ticket_id"].tolist() == ["INC8"]
    assert rejected["reason"].tolist() == [reason]
    assert rejected["ticket_id"].tolist() == ["INC9"]
    assert rejected["row_kind"].tolist() == ["ticket"]
    assert rejected["source"].tolist() == ["hd"]
    assert rejected["run_id"].isna().all()
    assert json.loads(rejected["raw"][0])[column] == value
    assert list(rejected.columns) == list(REJECTED_COLUMNS)


def test_first_problem_is_the_reason(make_source):
    # type comes before status in the canonical column order, status before opened_at
    raw = text_frame({"Number": ["A"], "Opened": ["bad"], "State": ["Foo"], "Type": ["Bug"], "Priority": ["P2"]})
    _, rejected = map_tickets(raw, helpdesk(make_source))
    assert rejected["reason"].tolist() == ["unmapped type 'Bug'"]


def test_raw_json_holds_the_original_row(make_source):
    raw = text_frame({"Number": [" A "], "Opened": ["N/A"], "State": ["Foo "], "Type": ["Incident"]})
    _, rejected = map_tickets(raw, helpdesk(make_source))
    assert json.loads(rejected["raw"][0]) == {"Number": " A ", "Opened": "N/A", "State": "Foo ", "Type": "Incident"}
    assert rejected["reason"].tolist() == ["unmapped status 'Foo'"]  # values are stripped before mapping


def test_default_ticket_type_fills_a_missing_column_and_empty_cells(make_source):
    raw = text_frame({"ticket_id": ["1", "2"], "status": ["NEW", "NEW"], "opened_at": ["2026-03-05 10:00"] * 2})
    tickets, _ = map_tickets(raw, make_source(default_ticket_type="request"))
    assert tickets["ticket_type"].tolist() == ["request", "request"]
    raw["ticket_type"] = pd.Series(["", "incident"], dtype="str")
    tickets, _ = map_tickets(raw, make_source(default_ticket_type="request"))
    assert tickets["ticket_type"].tolist() == ["request", "incident"]


def test_bad_default_ticket_type_is_a_config_error(make_source):
    raw = text_frame({"ticket_id": ["1"], "status": ["NEW"], "opened_at": ["2026-03-05 10:00"]})
    with pytest.raises(ConfigError, match="default_ticket_type"):
        map_tickets(raw, make_source(default_ticket_type="bug"))


def test_missing_required_column_rejects_every_row_and_names_it(make_source):
    raw = text_frame({"Number": ["1", "2"], "State": ["NEW", "NEW"], "Type": ["Incident", "Incident"]})
    tickets, rejected = map_tickets(raw, helpdesk(make_source))
    assert len(tickets) == 0
    # the reason lists what the rows had, so a misspelt mapping can be seen at once
    assert rejected["reason"].tolist() == [
        "missing column 'opened_at' (source column 'Opened'; headers: Number, State, Type)"] * 2


def test_canonical_headers_need_no_columns(make_source):
    raw = text_frame({"ticket_id": ["7"], "ticket_type": ["incident"], "status": ["NEW"],
                      "opened_at": ["2026-03-05T10:00:00+08:00"], "satisfaction": ["满意"],
                      "planned_end": ["2026-03-06 18:00"]})
    tickets, rejected = map_tickets(raw, make_source())
    assert len(rejected) == 0
    assert tickets.loc[0, "satisfaction"] == "满意"
    assert tickets.loc[0, "planned_end"] == utc("2026-03-06 10:00")


def test_empty_input_gives_empty_conformed_frames(make_source):
    tickets, rejected = map_tickets(text_frame({"ticket_id": [], "status": [], "opened_at": [], "ticket_type": []}),
                                    make_source())
    assert len(tickets) == 0 and len(rejected) == 0
    assert str(tickets["opened_at"].dtype) == "datetime64[us, UTC]"


# --- map_events ---------------------------------------------------------------------------------

def events_source(make_source):
    return make_source(
        event_columns={"ticket_id": "Ticket", "at": "When", "kind": "Field", "value": "New", "actor": "By"},
        event_kind_map={"State": "status", "Assigned to": "assignee", "Priority": "priority"},
        status_map={"Active": "IN_PROGRESS"},
        priority_map={"1 - Critical": "P1"},
    )


def test_map_events_maps_kinds_and_values_and_numbers_rows(make_source):
    raw = text_frame({
        "Ticket": ["INC1", "INC1", "INC1", "INC1"],
        "When": ["2026-03-05 10:00", "2026-03-05 10:05", "2026-03-05 10:05", "2026-03-05T03:00:00Z"],
        "Field": ["State", "Assigned to", "Priority", "response"],
        "New": ["Active", "王伟", "1 - Critical", ""],
        "By": ["sys", "lead", "lead", "王伟"],
    })
    events, rejected = map_events(raw, events_source(make_source))
    assert len(rejected) == 0
    assert list(events.columns) == list(EVENT_COLUMNS)
    assert events["kind"].tolist() == ["status", "assignee", "priority", "response"]
    assert events["value"].tolist()[:3] == ["IN_PROGRESS", "王伟", "P1"] and pd.isna(events["value"][3])
    assert events["at"].tolist() == [utc("2026-03-05 02:00"), utc("2026-03-05 02:05"), utc("2026-03-05 02:05"),
                                     utc("2026-03-05 03:00")]
    assert events["seq"].tolist() == [0, 1, 2, 3]
    assert events["source"].tolist() == ["hd"] * 4


def test_map_events_rejects_unmapped_values_and_bad_times(make_source):
    raw = text_frame({
        "Ticket": ["A", "B", "C", "D"],
        "When": ["2026-03-05 10:00", "2026-03-05 10:00", "soon", "2026-03-05 10:00"],
        "Field": ["State", "Priority", "State", "comment"],
        "New": ["Paused", "Urgent", "Active", "hello"],
        "By": ["x", "x", "x", "x"],
    })
    events, rejected = map_events(raw, events_source(make_source))
    assert rejected["reason"].tolist() == ["unmapped status 'Paused'", "unmapped priority 'Urgent'",
                                           "unparseable at 'soon'"]
    assert rejected["ticket_id"].tolist() == ["A", "B", "C"]
    assert rejected["row_kind"].tolist() == ["event"] * 3
    # an unknown kind passes through mapping; validate quarantines it
    assert events["kind"].tolist() == ["comment"]
    assert events["seq"].tolist() == [3]


def test_map_events_uses_the_source_sequence_when_it_has_one(make_source):
    raw = text_frame({"ticket_id": ["A", "A"], "at": ["2026-03-05 10:00"] * 2, "kind": ["status"] * 2,
                      "value": ["NEW", "CLOSED"], "seq": ["20", "10"]})
    events, _ = map_events(raw, make_source())
    assert events["seq"].tolist() == [20, 10]


# The zone test runs in Arrow (RE2); it must classify texts as Python's re did with \d and \s.
PYTHON_HAS_OFFSET = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?\s*(?:[zZ]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$")


@pytest.mark.parametrize("text", [
    "2026-03-01T08:00:00Z", "2026-03-01 08:00:00+08:00", "2026-03-01 08:00 +0800", "2026-03-01 08:00:00.5 UTC",
    "2026-03-01 08:00:00,25\tGMT", "2026-03-01 08:00\u00a0UTC", "2026-03-01 08:00\u3000z", "2026-03-01 08:00\x1cZ",
    "2026-03-01 \u0660\u0668:\u0660\u0660+08:00", "2026-03-01 08:00:00", "2026-03-01", "08:00 UTC later",
    "2026-03-01 08:00+8", "8:00Z", "2026-03-01 08:00:00-05",
])
def test_zone_detection_reads_texts_as_pythons_re_did(text: str) -> None:
    expected = PYTHON_HAS_OFFSET.search(text) is not None
    assert has_offset_text(pd.Series([text], dtype="str")).tolist() == [expected]


def test_row_reasons_keep_the_first_problem_of_each_row() -> None:
    """Hand-worked over rows labelled 10..14: a later problem never overwrites an earlier one; a missing mask
    value is false; masks are read by position (a numpy array, or a Series whatever its labels); the value
    shown is the row's own (missing shown as '')."""
    reasons = RowReasons(pd.Index([10, 11, 12, 13, 14]))
    reasons.add(pd.Series([False, True, None, False, False], dtype="boolean"), "missing at")
    reasons.add(np.array([True, True, False, False, True]), "bad seq", pd.Series(["7x", "8", "9", "1", None]))
    reasons.add(pd.Series([False, False, True, False, False], index=[4, 3, 2, 1, 0]), "unknown kind",
                pd.Series(["a", "b", "c", "d", "e"], dtype="str"))
    reasons.add(pd.Series(False, index=range(5)), "never")
    assert reasons.values.tolist() == ["bad seq '7x'", "missing at", "unknown kind 'c'", None, "bad seq ''"]
    assert list(reasons.values.index) == [10, 11, 12, 13, 14]
    assert reasons.ok.tolist() == [False, False, False, True, False] and list(reasons.ok.index) == [10, 11, 12, 13, 14]
