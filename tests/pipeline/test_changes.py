"""pipeline.changes: which computed rows differ from the stored ones, on a hand-made period table."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_rows_recomputed_in_the_stored_order_are_compared_key_by_key() -> None:
    """A table recomputed in the order it was stored (as a backfill may): each row against its own."""
    stored = rows(("2026-07-01", "net", 3, 10.5, True), ("2026-07-01", "pc", 2, None, True),
                  ("2026-07-02", "net", 1, 7.0, True), ("2026-07-02", "pc", 4, 1.0, False), as_of=OLD_AS_OF)
    new = rows(("2026-07-01", "net", 3, 10.5, True),      # unchanged but for as_of
               ("2026-07-01", "pc", 2, 4.0, True),        # null becomes a value
               ("2026-07-02", "net", 2, 7.0, True),       # count moves
               ("2026-07-02", "pc", 4, None, False),      # value becomes null
               as_of=NEW_AS_OF)
    changes = row_changes(new, stored, KEY)
    assert list(zip(changes.rows["period_start"].dt.day, changes.rows["team"], strict=True)) == [
        (1, "pc"), (2, "net"), (2, "pc")]
    assert changes.rows["response_mean_min"].tolist()[0] == 4.0
    assert (changes.rows["as_of"] == NEW_AS_OF).all()
    assert list(zip(changes.before["opened_count"], changes.before["as_of"], strict=True)) == [
        (2, OLD_AS_OF), (1, OLD_AS_OF), (4, OLD_AS_OF)]
    assert changes.gone.empty and list(changes.gone.columns) == KEY


def test_a_key_with_a_missing_part_matches_nothing_even_in_the_same_place() -> None:
    """A missing key part matches no stored key (the join's rule), also when the rows line up: written anew,
    and the stored one gone."""
    stored = rows(("2026-07-01", None, 3, 10.5, True), as_of=OLD_AS_OF)
    new = rows(("2026-07-01", None, 3, 10.5, True), as_of=NEW_AS_OF)
    changes = row_changes(new, stored, KEY)
    assert (len(changes.rows), len(changes.before), len(changes.gone)) == (1, 0, 1)


DAYS, TEAMS = ("2026-07-01", "2026-07-02"), ("net", "pc", "db")
SPEC = st.tuples(st.integers(0, 2), st.sampled_from([None, 1.5, 2.0]))


@settings(max_examples=200, deadline=None)
@given(stored=st.dictionaries(st.tuples(st.sampled_from(DAYS), st.sampled_from(TEAMS)), SPEC, max_size=6),
       new=st.dictionaries(st.tuples(st.sampled_from(DAYS), st.sampled_from(TEAMS)), SPEC, max_size=6),
       same_keys=st.booleans())
def test_changes_are_the_rows_whose_key_is_new_or_whose_values_moved(stored: dict, new: dict, same_keys: bool) -> None:
    """Against the definition, key by key; half the examples give both sides the same keys in the same order,
    the others any keys in any order."""
    if same_keys:
        new = {key: new.get(key, value) for key, value in stored.items()}
    stored_rows = rows(*[(d, t, n, m, True) for (d, t), (n, m) in stored.items()], as_of=OLD_AS_OF)
    new_rows = rows(*[(d, t, n, m, True) for (d, t), (n, m) in new.items()], as_of=NEW_AS_OF)
    changes = row_changes(new_rows, stored_rows, KEY)

    def keys(frame: pd.DataFrame) -> list:
        return [(str(p.date()), t) for p, t in zip(frame["period_start"], frame["team"], strict=True)]

    assert keys(changes.rows) == [key for key, value in new.items() if stored.get(key) != value]
    assert keys(changes.before) == [key for key, value in stored.items() if key in new and new[key] != value]
    assert sorted(keys(changes.gone)) == sorted(key for key in stored if key not in new)
