"""Per-engineer and per-team KPIs per period (KPIS.md 4).

Each KPI family has an anchor timestamp that decides its period. For every family we take the
tickets it applies to, find the anchor's local date in the reporting timezone once, derive each
grain's ``period_start`` from it, and group. The families are then joined on
(grain, period_start, who, ticket_type); counts missing from a family are 0, rates are
numerator / denominator and null on a zero denominator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kpis.config import KpiSettings
from kpis.schema import KPI_ENGINEER_COLUMNS, KPI_TEAM_COLUMNS, KPI_VERSION, conform

SECONDS_PER_MINUTE = 60.0
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
    """Tickets that one group of KPIs counts, with the anchor that decides their period."""

    rows: pd.DataFrame  # columns: who, ticket_type, anchor, and the measures below
    counts: tuple[str, ...] = ()  # boolean/0-1 measures summed per group
    durations: dict[str, str] = field(default_factory=dict)  # output prefix -> minutes column


def aggregate(facts: pd.DataFrame, settings: KpiSettings, by: str = "engineer") -> pd.DataFrame:
    """``kpi_engineer`` (by="engineer") or ``kpi_team`` (by="team") rows for every configured grain."""
    columns = KPI_ENGINEER_COLUMNS if by == "engineer" else KPI_TEAM_COLUMNS
    table = aggregate_periods(facts, settings, by=by, by_type=True)
    return conform(table, columns)


def aggregate_periods(facts: pd.DataFrame, settings: KpiSettings, *, by: str, by_type: bool) -> pd.DataFrame:
    """KPI rows keyed by (grain, period_start, ``by``[, ticket_type]) with counts, stats and rates."""
    keys = [by, "ticket_type"] if by_type else [by]
    families = _families(facts, by)
    frames = [_grain_table(families, grain, keys, settings.reporting_timezone) for grain in settings.grains]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    table = _finish(table, keys, settings)
    table["as_of"] = facts["as_of"].iloc[0] if len(facts) else pd.NaT
    table["kpi_version"] = KPI_VERSION
    return table


def _families(facts: pd.DataFrame, who: str) -> list[Family]:
    included = facts[facts["excluded_reason"].isna()]
    return [_opened(included, who), _resolved(included, who), _csat(included, who),
            _maintenance(included, who), _induced(facts, who)]


def _base(frame: pd.DataFrame, who: str, anchor: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({who: frame[who].to_numpy(), "ticket_type": frame["ticket_type"].to_numpy(),
                         "anchor": anchor.to_numpy()})


def _sla_counts(frame: pd.DataFrame, column: str, prefix: str) -> dict[str, np.ndarray]:
    status = frame[column].to_numpy(dtype=object, na_value=None)
    return {f"{prefix}_met": status == "met", f"{prefix}_breached": status == "breached"}


def _opened(facts: pd.DataFrame, who: str) -> Family:
    rows = _base(facts, who, facts["opened_at"]).assign(
        opened_count=True,
        response_minutes=facts["response_business_s"].to_numpy(dtype="float64", na_value=np.nan) / SECONDS_PER_MINUTE,
        **_sla_counts(facts, "response_sla", "response_sla"),
    )
    return Family(rows, ("opened_count", "response_sla_met", "response_sla_breached"), {"response": "response_minutes"})


def _resolved(facts: pd.DataFrame, who: str) -> Family:
    done = facts[facts["resolved_at"].notna()]
    fixable = done["ticket_type"].isin(_FIXABLE).to_numpy()
    rows = _base(done, who, done["resolved_at"]).assign(
        resolved_count=fixable,
        resolution_minutes=done["resolution_business_s"].to_numpy(dtype="float64", na_value=np.nan) / SECONDS_PER_MINUTE,
        first_fix_count=done["first_fix"].to_numpy(dtype=bool, na_value=False),
        reopened_count=fixable & done["reopened"].to_numpy(dtype=bool, na_value=False),
        accuracy_assessable=done["diagnosis_assessable"].to_numpy(dtype=bool, na_value=False),
        accuracy_correct=done["diagnosis_accurate"].to_numpy(dtype=bool, na_value=False),
        **_sla_counts(done, "resolution_sla", "resolution_sla"),
    )
    counts = ("resolved_count", "resolution_sla_met", "resolution_sla_breached", "first_fix_count",
              "reopened_count", "accuracy_assessable", "accuracy_correct")
    return Family(rows, counts, {"resolution": "resolution_minutes"})


def _csat(facts: pd.DataFrame, who: str) -> Family:
    anchor = facts["satisfaction_at"].fillna(facts["resolved_at"])
    answered = facts["csat_score"].notna() & anchor.notna()
    rows = _base(facts[answered], who, anchor[answered]).assign(
        csat_answered=True,
        csat_satisfied=facts.loc[answered, "csat_satisfied"].to_numpy(dtype=bool, na_value=False),
    )
    return Family(rows, ("csat_answered", "csat_satisfied"))


def _maintenance(facts: pd.DataFrame, who: str) -> Family:
    due = facts[facts["maintenance_on_time"].notna()]
    rows = _base(due, who, due["planned_end"]).assign(
        maintenance_due=True,
        maintenance_on_time=due["maintenance_on_time"].to_numpy(dtype=bool, na_value=False),
    )
    return Family(rows, ("maintenance_due", "maintenance_on_time"))


def _induced(facts: pd.DataFrame, who: str) -> Family:
    """Induced incidents, credited to the maintenance ticket's engineer/team in its maintenance row."""
    incidents = facts[facts["induced_incident"].fillna(False).astype(bool)]
    maintenance = facts.loc[facts["ticket_type"] == "maintenance", ["source", "ticket_id", who]]
    credited = incidents[["source", "caused_by", "opened_at"]].merge(
        maintenance, left_on=["source", "caused_by"], right_on=["source", "ticket_id"], how="inner")
    rows = pd.DataFrame({who: credited[who].to_numpy(), "ticket_type": "maintenance",
                         "anchor": credited["opened_at"].to_numpy(), "induced_incidents": True})
    return Family(rows, ("induced_incidents",))


def local_days(anchor: pd.Series, timezone: str) -> np.ndarray:
    """UTC timestamps -> their local dates (``datetime64[D]``) in ``timezone``."""
    local = pd.DatetimeIndex(anchor).tz_convert(timezone).tz_localize(None)
    return local.to_numpy().astype("datetime64[D]")


def period_starts(days: np.ndarray, grain: str) -> np.ndarray:
    """Local dates -> the first local date of their period (ISO weeks start on Monday)."""
    if grain == "day":
        return days
    if grain == "week":
        n = days.astype("int64")
        return (n - (n + 3) % 7).astype("datetime64[D]")  # 1970-01-01 was a Thursday
    months = days.astype("datetime64[M]")
    if grain == "quarter":
        m = months.astype("int64")
        months = (m - m % 3).astype("datetime64[M]")
    return months.astype("datetime64[D]")


def _grain_table(families: list[Family], grain: str, keys: list[str], timezone: str) -> pd.DataFrame:
    parts = []
    for family in families:
        rows = family.rows[family.rows["anchor"].notna()]
        if rows.empty:
            continue
        period = period_starts(local_days(rows["anchor"], timezone), grain)
        parts.append(_group(rows.assign(period_start=period), ["period_start", *keys], family))
    if not parts:
        return pd.DataFrame(columns=["grain", "period_start", *keys])
    table = parts[0]
    for part in parts[1:]:
        table = table.merge(part, on=["period_start", *keys], how="outer")
    return table.assign(grain=grain)


def _group(rows: pd.DataFrame, keys: list[str], family: Family) -> pd.DataFrame:
    grouped = rows.groupby(keys, sort=False, observed=True, dropna=False)
    out = grouped[list(family.counts)].sum().astype("int64") if family.counts else grouped.size().to_frame("_n")
    for prefix, column in family.durations.items():
        values = grouped[column]
        out[f"{prefix}_n"] = values.count()
        out[f"{prefix}_mean_min"] = values.mean()
        out[f"{prefix}_median_min"] = values.median()
        out[f"{prefix}_p90_min"] = values.quantile(0.9)
    return out.drop(columns=["_n"], errors="ignore").reset_index()


def _finish(table: pd.DataFrame, keys: list[str], settings: KpiSettings) -> pd.DataFrame:
    count_columns = [c.name for c in KPI_ENGINEER_COLUMNS.values()
                     if c.dtype == "Int64" and c.name not in ("response_n", "resolution_n")]
    for column in [*count_columns, "response_n", "resolution_n"]:
        table[column] = table[column].fillna(0).astype("int64") if column in table else 0
    table = table[(table[list(ROW_COUNTS)] > 0).any(axis=1)].copy()
    for rate, (numerator, denominators) in RATES.items():
        denominator = sum(table[d] for d in denominators)
        table[rate] = (table[numerator] / denominator.where(denominator > 0)).astype("float64")
    table["low_sample"] = (table["resolved_count"] + table["maintenance_due"]) < settings.min_sample
    table["period_start"] = pd.to_datetime(table["period_start"]).astype("datetime64[s]")
    return table.sort_values(["grain", "period_start", *keys], ignore_index=True)
