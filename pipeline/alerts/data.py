"""The alerts' reads and writes in the stores: the facts and scorecard they talk about, and ``alerts_sent``."""

from __future__ import annotations

import pandas as pd
import pyarrow.compute as pc

from kpis.aggregate import local_days, period_starts
from kpis.schema import TABLE_COLUMNS, TABLE_KEYS
from pipeline.alerts.deliver import AlertData, Outcome
from pipeline.alerts.items import FACT_COLUMNS, FINAL_STATUSES
from pipeline.store import Ledger, Replacement, Stores

ALERTS_SENT = "alerts_sent"


def read_alert_data(stores: Stores, as_of: pd.Timestamp, timezone: str, run: dict | None = None, *,
                    roster: bool = True) -> AlertData:
    """The stored facts an alert can list (breached, or open), what was posted, and this month's scorecard;
    ``roster``: also who worked whose tickets this month (only a team- or client-scoped ``below_target`` reads it)."""
    breached = (pc.field("response_sla") == "breached") | (pc.field("resolution_sla") == "breached")
    still_open = pc.field("excluded_reason").is_null() & ~pc.field("status").isin(list(FINAL_STATUSES))
    facts = stores.read("ticket_facts", breached | still_open)[list(FACT_COLUMNS)]
    month = pd.Timestamp(period_starts(local_days(pd.Series([as_of]), timezone), "month")[0])
    this_month = (pc.field("grain") == "month") & (pc.field("period_start") == month.date())
    return AlertData(facts=facts.reset_index(drop=True), posted=stores.read(ALERTS_SENT),
                     scorecard_kpi=stores.read("scorecard_kpi", this_month),
                     scorecard=stores.read("scorecard", this_month), run=run,
                     roster=_roster(stores, month, timezone) if roster else pd.DataFrame())


def _roster(stores: Stores, month: pd.Timestamp, timezone: str) -> pd.DataFrame:
    """(engineer, team, client) of the tickets opened or resolved in the local ``month``: who worked whose."""
    start = month.tz_localize(timezone).tz_convert("UTC")
    end = (month + pd.offsets.MonthBegin(1)).tz_localize(timezone).tz_convert("UTC")
    in_month = _within("opened_at", start, end) | _within("resolved_at", start, end)
    rows = stores.read_arrow("ticket_facts", in_month, columns=["engineer", "team", "client"]).to_pandas()
    return rows.drop_duplicates().reset_index(drop=True)


def _within(column: str, start: pd.Timestamp, end: pd.Timestamp) -> pc.Expression:
    return (pc.field(column) >= start) & (pc.field(column) < end)


def record_posts(stores: Stores, ledger: Ledger, run_id: str, outcome: Outcome, posted_at: pd.Timestamp) -> None:
    """Remember what was posted (``alerts_sent``, both stores) and the counts in ``pipeline_runs``, at once."""
    rows = pd.DataFrame(outcome.posted_items, columns=["alert", "kind", "source", "ticket_id", "metric"])
    rows = rows.assign(posted_at=posted_at, run_id=run_id)
    scope = rows[list(TABLE_KEYS[ALERTS_SENT])]
    stores.commit(f"{run_id}.alerts", [Replacement(ALERTS_SENT, rows.reindex(columns=list(TABLE_COLUMNS[ALERTS_SENT])),
                                                   scope)],
                  ledger_writes=ledger.alert_counts_writes(run_id, outcome.sent, outcome.failed))
