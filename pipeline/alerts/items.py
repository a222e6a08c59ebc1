"""Which tickets, engineers or run each alert kind lists (CONTRACT.md, Alerts), from the stored tables.

Pure functions over frames: ``ticket_facts`` rows, the ``alerts_sent`` rows already posted, the month's
``scorecard_kpi`` and ``scorecard`` rows. Every item is a small dict that the message formats render.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.settings import AlertSettings

METRICS = ("response", "resolution")
FINAL_STATUSES = ("RESOLVED", "CLOSED", "CANCELLED")
#: ``ticket_facts`` columns the ticket kinds read.
FACT_COLUMNS = ("source", "ticket_id", "status", "engineer", "team", "client", "excluded_reason", "response_at",
                "resolved_at", "response_sla", "resolution_sla", "response_policy", "resolution_policy",
                "response_due_at", "resolution_due_at")


def for_rule(facts: pd.DataFrame, rule: AlertSettings) -> pd.DataFrame:
    """The facts rows an alert may talk about: its team and client filters applied."""
    keep = np.ones(len(facts), dtype=bool)
    if rule.team:
        keep &= facts["team"].isin(rule.team).to_numpy(dtype=bool)
    if rule.client:
        keep &= facts["client"].isin(rule.client).to_numpy(dtype=bool)
    return facts[keep]


def breached_items(facts: pd.DataFrame, posted: pd.DataFrame) -> list[dict]:
    """Tickets whose response or resolution SLA is ``breached`` and was not posted before for that metric.

    ``posted``: this alert's earlier ``breached`` rows of ``alerts_sent`` (source, ticket_id, metric).
    """
    found = [_metric_rows(facts, metric, facts[f"{metric}_sla"].eq("breached").to_numpy(dtype=bool, na_value=False))
             for metric in METRICS]
    items = pd.concat(found, ignore_index=True)
    done = posted[["source", "ticket_id", "metric"]].drop_duplicates().assign(_posted=True)
    items = items.merge(done, on=["source", "ticket_id", "metric"], how="left")
    return _records(items[items["_posted"].isna()].drop(columns="_posted"))


def due_soon_items(facts: pd.DataFrame, as_of: pd.Timestamp, due_within_s: int) -> list[dict]:
    """Open, not excluded tickets whose running metric falls due in ``(as_of, as_of + due_within]``.

    As CONTRACT.md words it: a metric whose SLA an approval exempted (KPIS.md 1.4) keeps its due time and its
    ticket is not excluded, so it is listed too (DECISIONS.md D128).
    """
    open_ = facts["excluded_reason"].isna().to_numpy() & ~facts["status"].isin(FINAL_STATUSES).to_numpy(dtype=bool)
    until = as_of + pd.Timedelta(seconds=due_within_s)
    found = []
    for metric, stop in (("response", "response_at"), ("resolution", "resolved_at")):
        due = facts[f"{metric}_due_at"]
        soon = (due > as_of) & (due <= until)
        found.append(_metric_rows(facts, metric, open_ & facts[stop].isna().to_numpy()
                                  & soon.to_numpy(dtype=bool, na_value=False)))
    return _records(pd.concat(found, ignore_index=True).sort_values(["due_at", "source", "ticket_id"]))


def below_target_items(scorecard_kpi: pd.DataFrame, scorecard: pd.DataFrame,
                       engineers: set[str] | None = None) -> list[dict]:
    """Engineers whose KPI in the period is below its target (attainment under 1), low samples left out.

    Both frames hold the month's rows of one (grain, period_start). ``engineers``: only these (an alert
    scoped to teams or clients: who worked their tickets this month); None: everyone.
    """
    low = scorecard.loc[scorecard["low_sample"].fillna(False).astype(bool), "engineer"]
    # attainment is value / target (target / value when lower is better; 0 or 1 for induced incidents);
    # it is null where a lower-is-better value is 0, which scores 1
    below = scorecard_kpi["attainment"].lt(1).to_numpy(dtype=bool, na_value=False)
    if engineers is not None:
        below = below & scorecard_kpi["engineer"].isin(list(engineers)).to_numpy()
    rows = scorecard_kpi[below & ~scorecard_kpi["engineer"].isin(low).to_numpy()]
    rows = rows.sort_values(["engineer", "kpi"])
    return [{"engineer": r.engineer, "kpi": r.kpi, "value": _number(r.value), "target": _number(r.target),
             "higher_is_better": bool(r.higher_is_better)} for r in rows.itertuples()]


def _metric_rows(facts: pd.DataFrame, metric: str, mask: np.ndarray) -> pd.DataFrame:
    rows = facts[mask]
    return pd.DataFrame({
        "source": rows["source"].to_numpy(), "ticket_id": rows["ticket_id"].to_numpy(),
        "engineer": rows["engineer"].to_numpy(), "metric": metric,
        "policy": rows[f"{metric}_policy"].to_numpy(), "due_at": rows[f"{metric}_due_at"].to_numpy(),
    })


def _records(items: pd.DataFrame) -> list[dict]:
    """Item dicts with JSON-ready values (timestamps as ISO 8601 UTC, missing as None)."""
    out = []
    for record in items.to_dict("records"):
        due = record.get("due_at")
        record["due_at"] = None if due is None or pd.isna(due) else pd.Timestamp(due).isoformat()
        out.append({k: (None if not isinstance(v, str) and v is not None and pd.isna(v) else v)
                    for k, v in record.items()})
    return out


def _number(value: float) -> float | None:
    return None if pd.isna(value) else float(value)
