"""Edges of the engine that no single KPI rule covers: empty input, unknown config keys, row order
(the percentiles: test_percentile.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import settings as make_settings
from helpers import tickets

from kpis import compute_all
from kpis.aggregate import (
    _first,
    _FlagParts,
    aggregate_periods,
    dense_combinations,
    in_name_order,
    kpi_rows,
)
from kpis.breakdown import member_categories
from kpis.errors import ConfigError
from kpis.schema import TABLE_COLUMNS, empty_events, empty_tickets
from pipeline.config import kpi_settings_from_mapping


@pytest.mark.parametrize("scorecard", [[], [{"kpi": "first_fix_rate", "target": 0.8, "weight": 1}]])
def test_no_tickets_gives_empty_tables_with_the_stored_dtypes(scorecard) -> None:
    settings = kpi_settings_from_mapping({"scorecard": scorecard})
    tables = compute_all(empty_tickets(), empty_events(), settings, pd.Timestamp("2026-01-01", tz="UTC"))
    for name, frame in [("ticket_facts", tables.facts), ("kpi_engineer", tables.kpi_engineer),
                        ("kpi_team", tables.kpi_team), ("scorecard", tables.scorecard),
                        ("scorecard_kpi", tables.scorecard_kpi)]:
        assert len(frame) == 0
        assert list(frame.columns) == list(TABLE_COLUMNS[name])
        if "period_start" in frame:
            assert str(frame["period_start"].dtype) == "datetime64[s]"


@pytest.mark.parametrize("cfg, key", [
    ({"kpi": {"bogus": 1}}, "kpi.bogus"),
    ({"reporting": {"timezon": "UTC"}}, "reporting.timezon"),
    ({"sla": [{"ticket_type": "incident", "responce": "30m"}]}, "sla[0].responce"),
    ({"calendars": {"x": {"timezone": "UTC", "holiday": []}}}, "calendars.x.holiday"),
    ({"scorecard": [{"kpi": "csat_rate", "target": 1, "wieght": 1}]}, "scorecard[0].wieght"),
])
def test_a_mistyped_key_is_refused_by_name(cfg, key) -> None:
    with pytest.raises(ConfigError) as error:
        kpi_settings_from_mapping(cfg)
    assert key in str(error.value)  # every problem is reported; this one among them


# Names whose first appearance, code point order and case order all differ: "b" first, capitals before small
# letters, 王 (U+738B) after Ä (U+00C4). The tables come out in key order without being sorted as a whole.
_NAMES = ["b", "王", "Z", "a", "Ä", "B"]
_ORDERED = ["B", "Z", "a", "b", "Ä", "王"]


def _named_tickets() -> pd.DataFrame:
    rows = []
    for i, name in enumerate(_NAMES):
        for day, kind in ((2, "request"), (1, "incident")):  # the later day and the later type first
            rows.append({"ticket_id": f"T{i}{day}", "opened_at": f"2026-03-0{day} 09:00", "status": "RESOLVED",
                         "resolved_at": f"2026-03-0{day} 10:00", "ticket_type": kind, "assignee": name,
                         "assignment_group": name, "client": name})
    return tickets(*rows)


def test_aggregate_rows_come_out_in_key_order_with_names_in_code_point_order() -> None:
    cfg = make_settings(reporting={"timezone": "UTC", "breakdowns": ["client"],
                                   "grains": ["week", "day", "quarter", "month"]})
    tables = compute_all(_named_tickets(), empty_events(), cfg, pd.Timestamp("2026-04-01", tz="UTC"))
    day_rows = tables.kpi_engineer[tables.kpi_engineer["grain"] == "day"]
    # Per day: every engineer in code point order, each with incident before request.
    expected = [(day, name, kind) for day, kind in (("2026-03-01", "incident"), ("2026-03-02", "request"))
                for name in _ORDERED]
    assert list(zip(day_rows["period_start"].dt.strftime("%Y-%m-%d"), day_rows["engineer"],
                    day_rows["ticket_type"], strict=True)) == expected
    assert tables.kpi_engineer["grain"].drop_duplicates().tolist() == ["day", "month", "quarter", "week"]
    for frame, keys in ((tables.kpi_engineer, ["engineer", "ticket_type"]), (tables.kpi_team, ["team", "ticket_type"]),
                        (tables.kpi_breakdown, ["dimension", "member", "ticket_type"])):
        order = ["grain", "period_start", *keys]
        pd.testing.assert_frame_equal(frame, frame.sort_values(order, ignore_index=True))
    assert tables.kpi_breakdown["member"].drop_duplicates().tolist() == _ORDERED


def test_a_categorical_who_is_renumbered_in_name_order() -> None:
    names = pd.Index(["b", "王", "Z", "a"], dtype="str")  # categories in order of appearance
    codes, ordered = in_name_order(np.array([0, 1, 2, 3, -1, 1]), names)
    assert ordered.tolist() == ["Z", "a", "b", "王"]
    assert codes.tolist() == [2, 3, 0, 1, -1, 3]  # b -> 2, 王 -> 3, Z -> 0, a -> 1; missing stays -1

    facts = compute_all(_named_tickets(), empty_events(), make_settings(reporting={"timezone": "UTC"}),
                        pd.Timestamp("2026-04-01", tz="UTC")).facts
    members = member_categories(facts["client"])
    # made in name order ("(none)", always a category, sorts first): no renumbering needed
    assert members.cat.categories.tolist() == ["(none)", *_ORDERED]
    in_appearance = pd.Series(pd.Categorical(facts["client"], categories=pd.Index(_NAMES, dtype="str")))
    days = make_settings(reporting={"timezone": "UTC", "grains": ["day"]})
    for member in (members, in_appearance):
        credited = pd.DataFrame({"member": member, "ticket_type": facts["ticket_type"], "as_of": facts["as_of"]})
        table = aggregate_periods(credited, days, by="member", by_type=True, rows=kpi_rows(facts, days))
        assert table["member"].tolist() == _ORDERED * 2  # day 1 (incidents), then day 2 (requests)


def test_dense_combinations_number_the_value_tuples_in_ascending_order() -> None:
    # tuples (1, 5), (-1, 5), (1, 2), (0, 5), (1, 5): ascending (-1, 5) < (0, 5) < (1, 2) < (1, 5)
    combination, first = dense_combinations([np.array([1, -1, 1, 0, 1]), np.array([5, 5, 2, 5, 5])], 5)
    assert combination.tolist() == [3, 0, 2, 1, 3]
    assert combination[first].tolist() == [0, 1, 2, 3]  # a row of each
    empty, none = dense_combinations([np.array([], dtype="int64")], 0)
    assert empty.tolist() == [] and none.tolist() == []


def test_names_already_in_order_keep_their_codes() -> None:
    names = pd.Index(["Z", "a", "王"], dtype="str")
    codes = np.array([2, -1, 0, 1])
    renumbered, ordered = in_name_order(codes, names)
    assert renumbered.tolist() == [2, -1, 0, 1] and ordered.tolist() == ["Z", "a", "王"]


def test_day_keys_count_from_the_first_day_not_from_1970() -> None:
    # 2025-01-01 is day 20089: keys built from it span the days covered (a lookup table), not 20k days more
    assert _first(np.array([20457, 20089, 20100])) == 20089
    assert _first(np.array([-3, 5])) == -3  # before 1970
    assert _first(np.array([], dtype="int64")) == 0


def test_a_family_mostly_flagged_is_counted_as_its_rows_less_its_zeros() -> None:
    # two families stacked: rows 0-3 flagged 1, 1, 0, 1 (mostly 1s: kept as the segment 0-4 less its 0 at
    # row 2); rows 4-6 flagged 0, 0, 1 (kept as the 1 at row 6)
    parts = _FlagParts()
    parts.add(np.array([True, True, False, True]), 0)
    parts.add(np.array([False, False, True]), 4)
    flags = parts.flags("int32")
    assert flags.segments == ((0, 4),) and flags.zeros.tolist() == [2] and flags.ones.tolist() == [6]
    # rows 0..6 in groups 0, 1, 1, 1, 1, 0, 1: group 0 holds rows 0 and 5, of which row 0 is flagged -> 1;
    # group 1 holds rows 1, 2, 3, 4 and 6, of which rows 1, 3 and 6 are flagged -> 3
    group = np.array([0, 1, 1, 1, 1, 0, 1])
    asked = []

    def segment_sizes(start: int, stop: int) -> np.ndarray:
        asked.append((start, stop))
        return np.bincount(group[start:stop], minlength=2)

    assert flags.per_group(group, 2, segment_sizes).tolist() == [1, 3]
    assert asked == [(0, 4)]


def test_a_family_flagged_everywhere_is_one_segment_without_positions() -> None:
    parts = _FlagParts()
    parts.add(np.array([False, False]), 0)  # a family without any 1: nothing kept
    parts.add(np.array([True, True, True]), 2)
    flags = parts.flags("int64")
    assert flags.segments == ((2, 5),) and flags.zeros.tolist() == [] and flags.ones.tolist() == []
    # rows 2, 3, 4 in groups 1, 0, 1 -> 1 in group 0, 2 in group 1
    group = np.array([0, 0, 1, 0, 1])
    sizes = flags.per_group(group, 2, lambda start, stop: np.bincount(group[start:stop], minlength=2))
    assert sizes.tolist() == [1, 2]
