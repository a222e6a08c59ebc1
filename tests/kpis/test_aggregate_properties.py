"""Property test (hypothesis) for KPIS.md 4: every period row of ``kpi_engineer`` and ``kpi_breakdown`` equals a
literal reading of its group, written here with pandas and ``zoneinfo``.

The engine counts each (day, who, ticket_type) once and adds the days up into weeks, months and quarters
(``kpis.aggregate.DayGroups``); this reading groups the facts of every grain directly, so a day group
credited to the wrong period, or a total added twice, shows here. The random tickets span 2026-03-27 to
04-14: a week, a month and a quarter boundary.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from test_properties import AS_OF, ENGINE_SETTINGS, datasets, frames

from kpis import aggregate, breakdown, compute_facts
from kpis.breakdown import members

SHANGHAI = ZoneInfo("Asia/Shanghai")  # ENGINE_SETTINGS' reporting timezone


def period_start(local_day: date, grain: str) -> date:
    """KPIS.md 4: the first local date of the day's period (ISO weeks start on Monday)."""
    if grain == "day":
        return local_day
    if grain == "week":
        return local_day - timedelta(days=local_day.weekday())
    month = local_day.month if grain == "month" else 3 * ((local_day.month - 1) // 3) + 1
    return date(local_day.year, month, 1)


def literal_groups(facts: pd.DataFrame, who: pd.Series, grain: str) -> dict[tuple, dict]:
    """Per (period_start, who, ticket_type): opened and resolved counts and both durations' n, mean, median
    and P90 in minutes, each family in the period of its own anchor."""
    groups: dict[tuple, dict] = {}
    included = facts["excluded_reason"].isna()
    families = (("opened_at", "response_business_s", "opened_count", lambda f: True),
                ("resolved_at", "resolution_business_s", "resolved_count",
                 lambda f: f["ticket_type"] in ("incident", "request")))
    for anchor, seconds, count, counted in families:
        for i in facts.index[included & facts[anchor].notna()]:
            f = facts.loc[i]
            day = f[anchor].to_pydatetime().astimezone(SHANGHAI).date()
            group = groups.setdefault((period_start(day, grain), who[i], f["ticket_type"]),
                                      {"opened_count": 0, "resolved_count": 0, "response": [], "resolution": []})
            group[count] += int(counted(f))
            if not pd.isna(f[seconds]):
                group[seconds.split("_")[0]].append(float(f[seconds]))
    return groups


def close(ours, literal) -> bool:
    if pd.isna(literal):
        return pd.isna(ours)
    return not pd.isna(ours) and math.isclose(float(ours), literal, rel_tol=1e-12, abs_tol=1e-9)


def assert_rows_read_literally(table: pd.DataFrame, literal: dict[tuple, dict], who: str) -> None:
    """``table``'s rows of one grain (and dimension) against the literal groups that have a row."""
    rows = {(r["period_start"].date(), r[who], r["ticket_type"]): r for r in table.to_dict("records")}
    counted = {key for key, group in literal.items() if group["opened_count"] or group["resolved_count"]}
    assert counted <= set(rows), f"groups with an opened or resolved ticket but no row: {counted - set(rows)}"
    for key, row in rows.items():
        group = literal.get(key, {"opened_count": 0, "resolved_count": 0, "response": [], "resolution": []})
        assert (row["opened_count"], row["resolved_count"]) == (group["opened_count"], group["resolved_count"]), key
        for kind in ("response", "resolution"):
            values = np.array(group[kind]) / 60
            assert row[f"{kind}_n"] == len(values), (key, kind)
            literal_stats = (values.mean(), np.percentile(values, 50), np.percentile(values, 90)) if len(values) \
                else (np.nan, np.nan, np.nan)
            ours = (row[f"{kind}_mean_min"], row[f"{kind}_median_min"], row[f"{kind}_p90_min"])
            assert all(close(o, v) for o, v in zip(ours, literal_stats, strict=True)), (key, kind, ours, literal_stats)


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.data_too_large])
@given(datasets())
def test_period_rows_equal_a_literal_reading_of_their_group(data):
    facts = compute_facts(*frames(*data), ENGINE_SETTINGS, AS_OF)
    engineer = aggregate(facts, ENGINE_SETTINGS, by="engineer")
    dimensions = breakdown(facts, ENGINE_SETTINGS)
    for grain in ENGINE_SETTINGS.grains:
        assert_rows_read_literally(engineer[engineer["grain"] == grain],
                                   literal_groups(facts, facts["engineer"], grain), "engineer")
        for dimension in ENGINE_SETTINGS.breakdowns:
            rows = dimensions[(dimensions["grain"] == grain) & (dimensions["dimension"] == dimension)]
            assert_rows_read_literally(rows, literal_groups(facts, members(facts[dimension]), grain), "member")
