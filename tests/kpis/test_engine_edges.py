"""Edges of the engine that no single KPI rule covers: empty input, unknown config keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpis import compute_all
from kpis.aggregate import SortCodes, _sort_keys, percentile_cont
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


# Whole numbers (durations in seconds) are sorted as their own codes, other values by their rank: both ways;
# and whole numbers ~2**29 apart in 7 groups need int64 sort keys (7 * 2**29 > 2**31).
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.floats(-1e6, 1e6, allow_nan=False)), max_size=60)
       | st.lists(st.tuples(st.integers(0, 6), st.integers(-10**6, 10**6)), max_size=60)
       | st.lists(st.tuples(st.integers(0, 6), st.sampled_from([-2**28, -1, 0, 5, 2**28 - 1])), max_size=60))
def test_group_percentiles_equal_numpy_percentile_per_group(pairs) -> None:
    groups = np.array([g for g, _ in pairs], dtype="int64")
    values = np.array([v for _, v in pairs], dtype="float64")
    n = np.bincount(groups, minlength=7)
    median, p90 = percentile_cont(groups, values, n, (0.5, 0.9))
    for g in range(7):
        mine = values[groups == g]
        if len(mine) == 0:
            assert np.isnan(median[g]) and np.isnan(p90[g])
        else:
            assert median[g] == pytest.approx(np.percentile(mine, 50), rel=1e-12, abs=1e-9)
            assert p90[g] == pytest.approx(np.percentile(mine, 90), rel=1e-12, abs=1e-9)


def test_sort_keys_are_int32_while_every_key_fits_and_int64_beyond() -> None:
    codes = SortCodes.of(np.array([0.0, 2.0**28 - 1]))  # width 2**28: 7 groups fit in int32, 8 do not
    group = np.array([6, 0])
    assert _sort_keys(group, codes, 7).tolist() == [6 * 2**28, 2**28 - 1]
    assert _sort_keys(group, codes, 7).dtype == np.int32
    assert _sort_keys(group, codes, 8).dtype == np.int64
    assert _sort_keys(np.array([7, 0]), codes, 8).tolist() == [7 * 2**28, 2**28 - 1]


def test_whole_numbers_are_their_own_sort_codes_and_other_values_are_ranked() -> None:
    whole = SortCodes.of(np.array([30.0, -5.0, 7.0]))
    assert whole.ascending is None and whole.code.tolist() == [35, 0, 12] and whole.width == 36
    assert whole.values(whole.code).tolist() == [30.0, -5.0, 7.0]
    ranked = SortCodes.of(np.array([0.5, -5.0, 7.0]))
    assert ranked.code.tolist() == [1, 0, 2] and ranked.values(ranked.code).tolist() == [0.5, -5.0, 7.0]
