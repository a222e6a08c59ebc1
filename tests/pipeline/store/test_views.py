"""The analyst views (pipeline/store/views.py) on SQLite and PostgreSQL: numbers equal pandas over kpi_engineer.

The store holds the bundled demo data computed by ``kpis.compute_all`` and committed with ``Stores``
(tests/pipeline/views_helpers.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine
from views_helpers import (
    assert_rollup_equal,
    expected_rollup,
    normalised,
    read,
    write_store,
)

from kpis import KpiTables
from pipeline.store import Stores
from pipeline.store.views import VIEWS, create_views


# -- tests ----------------------------------------------------------------------------------------
def test_views_exist_with_their_documented_columns_and_can_be_recreated(store: str) -> None:
    engine = create_engine(store)
    create_views(engine)  # a second time: idempotent
    engine.dispose()
    for view in VIEWS:
        frame = read(store, f"SELECT * FROM {view.name}")
        assert list(frame.columns) == [name for name, _ in view.columns], view.name
        assert len(frame) > 0, view.name


@pytest.mark.parametrize(
    ("view", "grain"), [("v_engineer_quarter", "quarter"), ("v_engineer_month", "month")]
)
def test_engineer_rollups_equal_pandas_over_kpi_engineer(
    store: str, demo_tables: KpiTables, view: str, grain: str
) -> None:
    actual = read(store, f"SELECT * FROM {view}")
    assert (actual["grain"] == grain).all()
    assert_rollup_equal(actual, expected_rollup(demo_tables.kpi_engineer, "engineer", grain), "engineer")


def test_team_rollup_equals_pandas_over_kpi_team(store: str, demo_tables: KpiTables) -> None:
    actual = read(store, "SELECT * FROM v_team_quarter")
    assert_rollup_equal(actual, expected_rollup(demo_tables.kpi_team, "team", "quarter"), "team")


def test_engineer_rates_agree_with_the_scorecard_values(store: str, demo_tables: KpiTables) -> None:
    """The scorecard computes its values from the facts; the view re-aggregates kpi_engineer: same numbers."""
    view = normalised(read(store, "SELECT * FROM v_engineer_quarter"), "engineer")
    parts = demo_tables.scorecard_kpi[demo_tables.scorecard_kpi["grain"] == "quarter"].copy()
    parts["period_start"] = parts["period_start"].dt.date
    merged = parts.merge(view, on=["period_start", "engineer"], suffixes=("", "_view"))
    assert len(merged) == len(parts) > 0
    for kpi, group in merged.groupby("kpi"):
        np.testing.assert_allclose(
            group["value"].astype(float), group[kpi].astype(float), rtol=1e-9, err_msg=kpi
        )


def test_engineer_rollup_carries_score_rank_and_low_sample(store: str, demo_tables: KpiTables) -> None:
    view = normalised(
        read(store, "SELECT engineer, period_start, score, rank, low_sample FROM v_engineer_quarter"),
        "engineer",
    )
    card = demo_tables.scorecard[demo_tables.scorecard["grain"] == "quarter"].copy()
    card["period_start"] = card["period_start"].dt.date
    merged = view.merge(card, on=["period_start", "engineer"], suffixes=("", "_card"))
    assert len(merged) == len(view)
    np.testing.assert_allclose(merged["score"].astype(float), merged["score_card"].astype(float), rtol=1e-9)
    assert list(merged["rank"].astype("Int64")) == list(merged["rank_card"])
    assert list(merged["low_sample"].astype(bool)) == list(merged["low_sample_card"].astype(bool))


def test_sla_breaches_are_the_breached_facts_with_minutes(store: str, demo_tables: KpiTables) -> None:
    facts = demo_tables.facts
    breached = facts[(facts["response_sla"] == "breached") | (facts["resolution_sla"] == "breached")]
    view = read(store, "SELECT * FROM v_sla_breaches").sort_values("ticket_id").reset_index(drop=True)
    breached = breached.sort_values("ticket_id").reset_index(drop=True)
    assert list(view["ticket_id"]) == list(breached["ticket_id"])
    assert list(view["engineer"]) == list(breached["engineer"])
    both = (breached["response_sla"] == "breached") & (breached["resolution_sla"] == "breached")
    kind = np.where(both, "both", np.where(breached["response_sla"] == "breached", "response", "resolution"))
    assert list(view["breach"]) == list(kind)
    for metric in ("response", "resolution"):
        elapsed = breached[f"{metric}_business_s"].astype(float) / 60
        target = breached[f"{metric}_target_s"].astype(float) / 60
        np.testing.assert_allclose(view[f"{metric}_elapsed_min"].astype(float), elapsed, rtol=1e-12)
        np.testing.assert_allclose(view[f"{metric}_target_min"].astype(float), target, rtol=1e-12)
        np.testing.assert_allclose(view[f"{metric}_over_min"].astype(float), elapsed - target, rtol=1e-12)


def test_scorecard_current_is_the_latest_period_of_each_grain(store: str, demo_tables: KpiTables) -> None:
    card = demo_tables.scorecard
    latest = card[card["period_start"] == card.groupby("grain")["period_start"].transform("max")]
    view = read(store, "SELECT * FROM v_scorecard_current")
    key = ["grain", "engineer"]
    assert sorted(map(tuple, view[key].to_numpy())) == sorted(map(tuple, latest[key].to_numpy()))
    quarter = view[view["grain"] == "quarter"]
    assert set(pd.to_datetime(quarter["period_start"]).dt.date) == {pd.Timestamp("2026-10-01").date()}


@pytest.mark.integration
@pytest.mark.postgres
def test_postgres_views_carry_column_comments(
    demo_tables: KpiTables, postgres_url: str, tmp_path: Path
) -> None:
    write_store(demo_tables, tmp_path / "store", postgres_url).close()
    engine = create_engine(postgres_url)
    create_views(engine)
    engine.dispose()
    comments = read(
        postgres_url,
        """
        SELECT c.relname AS view, a.attname AS column, col_description(c.oid, a.attnum) AS comment
        FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE c.relkind = 'v' AND c.relname LIKE 'v\\_%' AND a.attnum > 0""",
    )
    expected = {(v.name, col): doc for v in VIEWS for col, doc in v.columns}
    found = {(r.view, r.column): r.comment for r in comments.itertuples()}
    assert found == expected


def test_views_already_current_are_left_alone_and_a_dropped_one_comes_back(tmp_path: Path) -> None:
    """Opening the stores while a run holds SQLite's write lock must not wait for it; a view someone
    dropped is made again."""
    url = f"sqlite:///{tmp_path / 'kpi.sqlite'}"
    Stores(tmp_path / "store", url).prepare()
    writer = create_engine(url).connect()
    writer.exec_driver_sql("BEGIN IMMEDIATE")  # what a run's open transaction holds
    impatient = create_engine(url, connect_args={"timeout": 0.1})
    try:
        create_views(impatient)  # would raise "database is locked" if it wrote
    finally:
        writer.exec_driver_sql("ROLLBACK")
        writer.close()
    with impatient.begin() as conn:
        conn.exec_driver_sql(f"DROP VIEW {VIEWS[0].name}")
    create_views(impatient)
    assert len(read(url, f"SELECT * FROM {VIEWS[0].name}").columns) == len(VIEWS[0].columns)
    impatient.dispose()
