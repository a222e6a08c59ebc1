"""What a run recomputes of time in status and the backlog (pipeline/ops_tables.py, KPIS.md 3.1 and 4.2);
which backlog days a night recomputes: test_backlog_days.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from ops_helpers import load, write_config

from pipeline.ops_tables import OpsScope, open_last_status, ops_fingerprint
from pipeline.raw import RawLayer


def _keys(*ids: str) -> pd.DataFrame:
    return pd.DataFrame({"source": "helpdesk", "ticket_id": list(ids)})


def test_the_scope_is_everything_on_a_first_night_the_demo_and_after_a_settings_change(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'kpi.sqlite'}", sources={"helpdesk": tmp_path})
    settings = load(config).kpi
    changed, previous = _keys("A"), RawLayer(pd.DataFrame(), pd.DataFrame())
    for kind, recorded in (("run", None), ("demo", ops_fingerprint(settings)), ("run", "other settings")):
        scope = OpsScope.of(kind, recorded, settings, changed, changed.iloc[:0], previous)
        assert (scope.changed, scope.previous) == (None, None), kind
    night = OpsScope.of("run", ops_fingerprint(settings), settings, changed, _keys("B"), previous)
    assert sorted(night.changed["ticket_id"]) == ["A", "B"] and night.previous is previous  # the days they move
    backfill = OpsScope.of("backfill", None, settings, changed, _keys("B"), previous)
    assert sorted(backfill.changed["ticket_id"]) == ["A", "B"] and backfill.previous is None  # the whole backlog


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
    tickets = pd.DataFrame({"source": "s", "ticket_id": ["A", "B", "C", "D", "E"]})  # E: no status event
    got = open_last_status(tickets, events, t("2026-08-02T00:00Z"))
    assert sorted(got["ticket_id"]) == ["A", "D"]
