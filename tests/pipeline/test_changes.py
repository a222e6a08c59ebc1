"""pipeline.changes: which computed rows differ from the stored ones, on a hand-made period table."""

from __future__ import annotations

import pandas as pd

from kpis.schema import KPI_TEAM_COLUMNS, conform
from pipeline.changes import row_changes

KEY = ["grain", "period_start", "team", "ticket_type"]
OLD_AS_OF, NEW_AS_OF = pd.Timestamp("2026-07-01", tz="UTC"), pd.Timestamp("2026-07-02", tz="UTC")


def rows(*specs: tuple, as_of: pd.Timestamp) -> pd.DataFrame:
    """(period_start, team, opened_count, response_mean_min, low_sample) rows of the day grain."""
    frame = pd.DataFrame([{"grain": "day", "period_start": pd.Timestamp(day), "team": team, "ticket_type": "incident",
                           "opened_count": opened, "response_mean_min": mean, "low_sample": low}
                          for day, team, opened, mean, low in specs])
    return conform(frame.assign(as_of=as_of), KPI_TEAM_COLUMNS)


def test_only_new_changed_and_gone_rows_come_out() -> None:
    stored = rows(("2026-07-01", "net", 3, 10.5, True),   # unchanged but for as_of
                  ("2026-07-01", "pc", 2, None, True),      # null stays null: unchanged
                  ("2026-07-02", "net", 1, 7.0, True),      # count moves
                  ("2026-07-02", "pc", 4, None, False),     # null becomes a value
                  ("2026-07-03", "db", 1, 1.0, True),       # gone
                  as_of=OLD_AS_OF)
    new = rows(("2026-07-02", "pc", 4, 2.25, False),
               ("2026-07-01", "pc", 2, None, True),
               ("2026-07-04", "db", 1, 3.0, True),          # new
               ("2026-07-02", "net", 2, 7.0, True),
               ("2026-07-01", "net", 3, 10.5, True),
               as_of=NEW_AS_OF)
    changes = row_changes(new, stored, KEY)
    written = sorted(zip(changes.rows["period_start"].dt.day, changes.rows["team"], strict=True))
    assert written == [(2, "net"), (2, "pc"), (4, "db")]
    assert (changes.rows["as_of"] == NEW_AS_OF).all()
    assert sorted(zip(changes.before["period_start"].dt.day, changes.before["team"], strict=True)) == [
        (2, "net"), (2, "pc")]
    assert changes.gone.to_dict("records") == [
        {"grain": "day", "period_start": pd.Timestamp("2026-07-03"), "team": "db", "ticket_type": "incident"}]


def test_the_same_rows_in_another_order_change_nothing() -> None:
    stored = rows(("2026-07-01", "net", 3, 10.5, True), ("2026-07-02", "pc", 1, None, False), as_of=OLD_AS_OF)
    new = stored.iloc[::-1].reset_index(drop=True).assign(as_of=NEW_AS_OF)
    changes = row_changes(new, stored, KEY)
    assert (len(changes.rows), len(changes.before), len(changes.gone)) == (0, 0, 0)


def test_a_value_becoming_null_is_a_change() -> None:
    stored = rows(("2026-07-01", "net", 3, 10.5, True), as_of=OLD_AS_OF)
    new = rows(("2026-07-01", "net", 3, None, True), as_of=NEW_AS_OF)
    assert len(row_changes(new, stored, KEY).rows) == 1


def test_everything_is_new_when_nothing_is_stored() -> None:
    new = rows(("2026-07-01", "net", 3, 10.5, True), ("2026-07-01", "pc", 1, 1.0, True), as_of=NEW_AS_OF)
    changes = row_changes(new, rows(as_of=OLD_AS_OF), KEY)
    assert (len(changes.rows), len(changes.gone)) == (2, 0)
