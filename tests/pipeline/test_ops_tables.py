"""Which backlog days and whose time in status a night recomputes (pipeline/ops_tables.py, KPIS.md 3.1 and 4.2).

After night 1 (as_of 2026-08-01 01:15 Shanghai) of the month export the store holds the backlog up to 08-01
(INC0003 and INC0004 are still open). Night 2 runs at 08-02 01:15. Real CSV files, SQLite and Parquet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from ops_helpers import (
    DAY1_AS_OF,
    DAY2_AS_OF,
    load,
    month_export,
    open_stores,
    run,
    write_config,
    write_export,
)

from pipeline.ops_tables import FACTS_FOR_OPS, OpsScope, open_last_status, ops_fingerprint, touched_days

KEY = ["source", "ticket_id"]


def _keys(*ids: str) -> pd.DataFrame:
    return pd.DataFrame({"source": "helpdesk", "ticket_id": list(ids)})


def _days(first: str, last: str) -> list[str]:
    return [str(d) for d in np.arange(np.datetime64(first), np.datetime64(last) + 1)]


def test_a_night_recomputes_the_days_from_the_changed_tickets_opening_and_the_last_stored_day(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    write_export(exports, "2026-07-31", *month_export())
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'kpi.sqlite'}", sources={"helpdesk": exports})
    run(config, "run", DAY1_AS_OF)
    settings = load(config).kpi
    stores = open_stores(config)
    try:
        facts = stores.read("ticket_facts")
        assert set(FACTS_FOR_OPS) <= set(facts.columns)
        # INC0020 (opened 07-21 13:20 Shanghai) has a new event: from 07-21 to as_of's local date 08-02
        scope = OpsScope(_keys("INC0020"), _keys("INC0020"))
        assert [str(d) for d in touched_days(stores, settings, facts, DAY2_AS_OF, scope)] == _days("2026-07-21",
                                                                                                  "2026-08-02")
        # INC0014's facts were rewritten, but none the backlog reads moved, and no raw row or event: only the
        # last stored day (08-01) and the new one
        scope = OpsScope(_keys("INC0014"), _keys())
        assert [str(d) for d in touched_days(stores, settings, facts, DAY2_AS_OF, scope)] == _days("2026-08-01",
                                                                                                  "2026-08-02")
        # the same ticket with its opened_at moved back to 07-10: from 07-10 (its new opening) on
        moved = facts.copy()
        moved.loc[moved["ticket_id"] == "INC0014", "opened_at"] = pd.Timestamp("2026-07-10T02:00:00Z")
        assert str(touched_days(stores, settings, moved, DAY2_AS_OF, scope)[0]) == "2026-07-10"
    finally:
        stores.close()


def test_the_scope_is_everything_on_a_first_night_the_demo_and_after_a_settings_change(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'kpi.sqlite'}", sources={"helpdesk": tmp_path})
    settings = load(config).kpi
    changed = _keys("A")
    for kind, recorded in (("run", None), ("demo", ops_fingerprint(settings)), ("run", "other settings")):
        scope = OpsScope.of(kind, recorded, settings, changed, changed.iloc[:0])
        assert (scope.changed, scope.raw_changed) == (None, None), kind
    night = OpsScope.of("run", ops_fingerprint(settings), settings, changed, _keys("B"))
    assert sorted(night.changed["ticket_id"]) == ["A", "B"] and list(night.raw_changed["ticket_id"]) == ["A"]
    backfill = OpsScope.of("backfill", None, settings, changed, _keys("B"))
    assert sorted(backfill.changed["ticket_id"]) == ["A", "B"] and backfill.raw_changed is None  # the whole backlog


def test_open_last_status_names_the_tickets_whose_last_segment_runs_to_as_of() -> None:
    t = pd.Timestamp
    events = pd.DataFrame({
        "source": "s", "ticket_id": ["A", "A", "B", "B", "C", "D", "D"],
        "kind": ["status", "status", "status", "status", "status", "status", "assignee"],
        "value": ["NEW", "IN_PROGRESS", "NEW", "RESOLVED", "WAITING_CUSTOMER", "NEW", "x"],
        "at": [t("2026-08-01T01:00Z"), t("2026-08-01T02:00Z"), t("2026-08-01T01:00Z"), t("2026-08-01T02:00Z"),
               t("2026-08-03T00:00Z"), t("2026-08-01T00:00Z"), t("2026-08-01T05:00Z")],
    })
    # A: last IN_PROGRESS before as_of (open); B: last RESOLVED (final); C: its only status event is after
    # as_of (a segment of length 0); D: last status NEW (the assignee event is no status)
    got = open_last_status(events, t("2026-08-02T00:00Z"))
    assert sorted(got["ticket_id"]) == ["A", "D"]
