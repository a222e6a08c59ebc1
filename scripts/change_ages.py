"""How old are the tickets a day changes? Measured on the real ServiceNow log (../shared/datasets).

    python scripts/change_ages.py

For every day of the UCI incident event log, the incidents updated that day and their age then (days
since they were opened). The shares of old ones are what ``scripts/bench_nightly.py``'s ``recent``
spread models: a nightly run that touches a ticket opened months ago touches that month's and that
quarter's KPI rows, so how often that happens decides which periods a night recomputes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

LOG = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "uci_incident_event_log" / "incident_event_log.csv.gz"
AGES = (1, 7, 30, 45, 90, 180)
STAMP = "%d/%m/%Y %H:%M"


def changed_per_day(log: pd.DataFrame) -> pd.DataFrame:
    """One row per (day, incident) updated that day, with the incident's age in whole days."""
    opened = pd.to_datetime(log["opened_at"], format=STAMP, errors="coerce")
    updated = pd.to_datetime(log["sys_updated_at"], format=STAMP, errors="coerce")
    frame = pd.DataFrame({"number": log["number"], "opened": opened, "day": updated.dt.floor("D")}).dropna()
    changed = frame.groupby(["day", "number"], as_index=False)["opened"].min()
    changed["age_days"] = (changed["day"] - changed["opened"].dt.floor("D")).dt.days
    return changed


def main() -> int:
    if not LOG.exists():
        print(f"{LOG} is absent: this script reads the shared real datasets", file=sys.stderr)
        return 1
    changed = changed_per_day(pd.read_csv(LOG, usecols=["number", "opened_at", "sys_updated_at"]))
    print(f"{len(changed):,} (day, incident) changes over {changed['day'].nunique()} days")
    for age in AGES:
        print(f"  opened more than {age:>3} days before the change: {(changed['age_days'] > age).mean():6.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
