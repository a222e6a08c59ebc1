"""The analyst views (pipeline/views.py) on SQLite and PostgreSQL: numbers equal pandas over kpi_engineer.

The store holds the bundled demo data computed by ``kpis.compute_all`` and committed with ``Stores``.
``demo_tables`` and ``write_store`` are shared with test_query.py and test_report.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from connectors.registry import build_connector
from connectors.validate import validate
from kpis import KpiTables, compute_all
from pipeline.cli import demo_settings
from pipeline.stores import Replacement, Stores
from pipeline.views import VIEWS, create_views

AS_OF = pd.Timestamp("2026-10-15T00:00:00Z")
TABLES = ("ticket_facts", "kpi_engineer", "kpi_team", "scorecard", "scorecard_kpi")

COUNTS = [
    "opened_count",
    "response_n",
    "response_sla_met",
    "response_sla_breached",
    "resolved_count",
    "resolution_n",
    "resolution_sla_met",
    "resolution_sla_breached",
    "first_fix_count",
    "reopened_count",
    "accuracy_assessable",
    "accuracy_correct",
    "csat_answered",
    "csat_satisfied",
    "maintenance_due",
    "maintenance_on_time",
    "induced_incidents",
]
RATES = {  # rate: (numerator, denominator columns), straight from KPIS.md 4
    "response_sla_rate": ("response_sla_met", ["response_sla_met", "response_sla_breached"]),
    "resolution_sla_rate": ("resolution_sla_met", ["resolution_sla_met", "resolution_sla_breached"]),
    "first_fix_rate": ("first_fix_count", ["resolved_count"]),
    "reopen_rate": ("reopened_count", ["resolved_count"]),
    "accuracy_rate": ("accuracy_correct", ["accuracy_assessable"]),
    "csat_rate": ("csat_satisfied", ["csat_answered"]),
    "maintenance_on_time_rate": ("maintenance_on_time", ["maintenance_due"]),
}


# -- the store, shared with the other test modules -------------------------------------------------
def compute_demo_tables(scratch: Path) -> KpiTables:
    """The bundled demo data through the connector, validation and the KPI engine."""
    settings = demo_settings(scratch)
    cfg = settings.sources[0]
    batch = build_connector(cfg).pull(since=None, until=None)
    tickets, events, _ = validate(
        batch.tickets, batch.events, batch.rejected, satisfaction_map=settings.kpi.satisfaction_map
    )
    return compute_all(tickets, events, settings.kpi, AS_OF)


def write_store(tables: KpiTables, root: Path, sql_url: str) -> Stores:
    """Commit the tables to a Parquet store at ``root`` and the SQL store at ``sql_url``."""
    stores = Stores(root, sql_url)
    stores.prepare()
    frames = {
        "ticket_facts": tables.facts,
        "kpi_engineer": tables.kpi_engineer,
        "kpi_team": tables.kpi_team,
        "scorecard": tables.scorecard,
        "scorecard_kpi": tables.scorecard_kpi,
    }
    stores.commit("test-run", [Replacement(name, frames[name]) for name in TABLES])
    return stores


@pytest.fixture(scope="session")
def demo_tables(tmp_path_factory: pytest.TempPathFactory) -> KpiTables:
    return compute_demo_tables(tmp_path_factory.mktemp("demo-settings"))


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.integration]),
    ],
)
def store(
    request: pytest.FixtureRequest, demo_tables: KpiTables, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A SQL store (SQLite file, or a fresh database on the conftest's PostgreSQL server) holding the demo
    tables with the views created; one per module, since the tests only read it."""
    root = tmp_path_factory.mktemp("store")
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'kpi.sqlite'}"
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.create_database()
        request.addfinalizer(lambda: server.drop_database(url.rsplit("/", 1)[1]))
    write_store(demo_tables, root, url).close()
    engine = create_engine(url)
    create_views(engine)
    engine.dispose()
    return url


def read(url: str, sql: str) -> pd.DataFrame:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return pd.read_sql(text(sql), conn)
    finally:
        engine.dispose()


# -- the expected numbers, in pandas ------------------------------------------------------------
def expected_rollup(kpi: pd.DataFrame, who: str, grain: str) -> pd.DataFrame:
    rows = kpi[kpi["grain"] == grain].copy()
    for metric in ("response", "resolution"):
        rows[f"{metric}_total"] = rows[f"{metric}_mean_min"].astype(float) * rows[f"{metric}_n"].astype(float)
    grouped = rows.groupby(["period_start", who])
    out = grouped[COUNTS].sum().astype(float)
    out["ticket_types"] = grouped.size().astype(float)
    for rate, (num, dens) in RATES.items():
        den = sum(out[d] for d in dens)
        out[rate] = out[num] / den.where(den != 0)
    for metric in ("response", "resolution"):
        out[f"{metric}_mean_min"] = grouped[f"{metric}_total"].sum(min_count=1) / out[f"{metric}_n"].where(
            out[f"{metric}_n"] != 0
        )
        for stat in ("median", "p90"):
            out[f"{metric}_{stat}_min"] = grouped.apply(
                _single_type_value(metric, stat), include_groups=False
            )
    return out.reset_index()


def _single_type_value(metric: str, stat: str):
    def pick(group: pd.DataFrame) -> float:
        with_values = group[group[f"{metric}_n"] > 0]
        return float(with_values[f"{metric}_{stat}_min"].iloc[0]) if len(with_values) == 1 else np.nan

    return pick


def normalised(frame: pd.DataFrame, who: str) -> pd.DataFrame:
    frame = frame.copy()
    frame["period_start"] = pd.to_datetime(frame["period_start"]).dt.date
    return frame.sort_values(["period_start", who]).reset_index(drop=True)


def assert_rollup_equal(actual: pd.DataFrame, expected: pd.DataFrame, who: str) -> None:
    actual, expected = normalised(actual, who), normalised(expected, who)
    assert list(actual[who]) == list(expected[who])
    assert list(actual["period_start"]) == list(expected["period_start"])
    columns = [
        "ticket_types",
        *COUNTS,
        *RATES,
        "response_mean_min",
        "resolution_mean_min",
        "response_median_min",
        "response_p90_min",
        "resolution_median_min",
        "resolution_p90_min",
    ]
    for column in columns:
        np.testing.assert_allclose(
            actual[column].astype(float).to_numpy(),
            expected[column].astype(float).to_numpy(),
            rtol=1e-9,
            err_msg=column,
        )


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
