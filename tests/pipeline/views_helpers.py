"""The bundled demo data computed and committed to a store, and pandas roll-ups to check the views with.

Shared by tests/pipeline/store/test_views.py, analyst/test_query.py and analyst/test_report.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from connectors.adjustments import read_approvals
from connectors.registry import build_connector
from connectors.validate import validate
from kpis import KpiTables, compute_all
from kpis.backlog import kpi_backlog
from kpis.calendar import CalendarSet
from kpis.status_time import ticket_status_time
from pipeline.approvals import effective_approvals
from pipeline.cli import demo_settings
from pipeline.policies import resolution_calendars, resolution_pauses, ticket_policies
from pipeline.store import Replacement, Stores
from pipeline.store.views import create_views

AS_OF = pd.Timestamp("2026-10-15T00:00:00Z")
TABLES = ("ticket_facts", "kpi_engineer", "kpi_team", "scorecard", "scorecard_kpi", "adjustments", "kpi_breakdown",
          "ticket_status_time", "kpi_backlog")

COUNTS = [
    "opened_count",
    "response_n",
    "response_sla_met",
    "response_sla_breached",
    "response_sla_exempt",
    "resolved_count",
    "resolution_n",
    "resolution_sla_met",
    "resolution_sla_breached",
    "resolution_sla_exempt",
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
    """The bundled demo data (its approved exemptions included) through the connector, validation and the
    KPI engine."""
    tickets, events = demo_input(scratch)
    return compute_all(tickets, events, demo_settings(scratch).kpi, AS_OF, demo_approvals(scratch, tickets))


def demo_input(scratch: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The demo's canonical tickets and events, validated."""
    settings = demo_settings(scratch)
    batch = build_connector(settings.sources[0]).pull(since=None, until=None)
    tickets, events, _ = validate(
        batch.tickets, batch.events, batch.rejected, satisfaction_map=settings.kpi.satisfaction_map
    )
    return tickets, events


def demo_approvals(scratch: Path, tickets: pd.DataFrame) -> pd.DataFrame:
    """The demo's ``adjustments`` table at ``AS_OF``: its approvals file read as a run reads it."""
    settings = demo_settings(scratch)
    read = read_approvals(settings.adjustments, ("helpdesk",), tickets[["source", "ticket_id"]])
    return effective_approvals(read.approvals, tickets[["source", "ticket_id"]], AS_OF)


def write_store(tables: KpiTables, root: Path, sql_url: str) -> Stores:
    """Commit the tables (and the demo's approvals) to a Parquet store at ``root`` and the SQL store at ``sql_url``."""
    stores = Stores(root, sql_url)
    stores.prepare()
    scratch = root.parent / f"{root.name}-scratch"  # demo settings need a store path, not inside this one
    frames = {
        "ticket_facts": tables.facts,
        "kpi_engineer": tables.kpi_engineer,
        "kpi_team": tables.kpi_team,
        "scorecard": tables.scorecard,
        "scorecard_kpi": tables.scorecard_kpi,
        "adjustments": demo_approvals(scratch, demo_input(scratch)[0]),
        "kpi_breakdown": tables.kpi_breakdown,
        **ops_tables(tables, scratch),
    }
    stores.commit("test-run", [Replacement(name, frames[name]) for name in TABLES])
    return stores


def ops_tables(tables: KpiTables, scratch: Path) -> dict[str, pd.DataFrame]:
    """The demo's ``ticket_status_time`` and ``kpi_backlog`` at ``AS_OF`` (each ticket on its policy's calendar)."""
    tickets, events = demo_input(scratch)
    kpi = demo_settings(scratch).kpi
    policy = ticket_policies(tickets, tables.facts)
    return {
        "ticket_status_time": ticket_status_time(tickets, events, CalendarSet(dict(kpi.calendars)),
                                                 resolution_calendars(policy, kpi), AS_OF),
        "kpi_backlog": kpi_backlog(tickets, events, tables.facts, kpi, AS_OF, pauses=resolution_pauses(policy, kpi)),
    }


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
