"""What the alerts read from a real store (Parquet + SQLite): the month's roster of a team-scoped alert."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.alerts.data import read_alert_data
from pipeline.store import Replacement, Stores


def test_the_roster_is_who_opened_or_resolved_tickets_in_the_local_month(tmp_path: Path) -> None:
    stores = Stores(tmp_path / "store", f"sqlite:///{tmp_path / 'kpi.sqlite'}")
    stores.prepare()
    utc = pd.Timestamp  # every time below is UTC (Z); the month is September in Shanghai (+08:00)
    facts = pd.DataFrame({
        "source": "hd", "ticket_id": ["in", "late", "resolved-in", "before", "after"],
        "engineer": ["ann", "bo", "cy", "dee", "eve"], "team": ["desk", "net", "desk", "desk", "net"],
        "client": "ACME", "ticket_type": "incident", "status": "CLOSED",
        # 08-31 16:00Z is 09-01 00:00 in Shanghai: in; 09-30 15:59Z is 23:59 local: in; 16:00Z is October
        "opened_at": [utc("2026-08-31T16:00:00Z"), utc("2026-09-30T15:59:00Z"), utc("2026-08-20T00:00:00Z"),
                      utc("2026-08-31T15:59:00Z"), utc("2026-09-30T16:00:00Z")],
        "resolved_at": [None, None, utc("2026-09-02T00:00:00Z"), utc("2026-08-31T15:59:59Z"), None],
    })
    facts["resolved_at"] = pd.to_datetime(facts["resolved_at"], utc=True)
    stores.commit("r1", [Replacement("ticket_facts", facts, facts[["source", "ticket_id"]])])
    data = read_alert_data(stores, pd.Timestamp("2026-09-15T02:00:00Z"), "Asia/Shanghai")
    roster = data.roster.sort_values("engineer").reset_index(drop=True)
    assert roster.to_dict("records") == [{"engineer": "ann", "team": "desk", "client": "ACME"},
                                         {"engineer": "bo", "team": "net", "client": "ACME"},
                                         {"engineer": "cy", "team": "desk", "client": "ACME"}]
    stores.close()
