"""Data and comparisons for the compute-engine tests: a generated set with induced incidents across
partitions, reopens and two sources; the store's every table read back for cell-by-cell comparison."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from bench import KPI_CONFIG, SLA_CONFIG, synthetic_events, synthetic_tickets  # noqa: E402, F401 (SLA_CONFIG: for the tests)
from bench import settings as bench_settings  # noqa: E402, F401  (re-exported for the tests)
from e2e_helpers import read_sql  # noqa: E402

from kpis.schema import EVENT_COLUMNS, TABLE_COLUMNS, TICKET_COLUMNS, conform  # noqa: E402
from pipeline.settings import ComputeSettings, Settings  # noqa: E402
from pipeline.store import Stores  # noqa: E402

AS_OF = pd.Timestamp("2026-01-15T00:00:00Z")


def generated(n: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` tickets from scripts/bench.py's generators over two sources, with 6 events each (statuses
    with reopens: RESOLVED then NEW again), and a quarter of the incidents' ``caused_by`` naming a ticket of
    their source: mostly maintenance tickets (induced incidents, usually in another partition), some
    requests and some unknown ids (not induced)."""
    rng = np.random.default_rng(seed)
    tickets = synthetic_tickets(n, rng)
    tickets["source"] = np.where(np.arange(n) % 3 == 0, "other", "bench")
    events = synthetic_events(tickets, 6, rng)  # step 5 is a priority event; make some a reopen instead
    events["source"] = tickets["source"].to_numpy()[np.repeat(np.arange(n), 6)]
    reopen = (events["seq"].to_numpy() % 6 == 5) & (rng.random(len(events)) < 0.3)
    events.loc[reopen, "kind"], events.loc[reopen, "value"] = "status", "NEW"
    tickets["caused_by"] = _causes(tickets, rng)
    return conform(tickets, TICKET_COLUMNS), conform(events, EVENT_COLUMNS)


def _causes(tickets: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    n = len(tickets)
    causes = np.full(n, None, dtype=object)
    incident = (tickets["ticket_type"] == "incident").to_numpy() & (rng.random(n) < 0.25)
    for source in ("bench", "other"):
        mine = (tickets["source"] == source).to_numpy()
        maintenance = tickets.loc[mine & (tickets["ticket_type"] == "maintenance").to_numpy(), "ticket_id"].to_numpy()
        requests = tickets.loc[mine & (tickets["ticket_type"] == "request").to_numpy(), "ticket_id"].to_numpy()
        rows = np.flatnonzero(incident & mine)
        if not len(maintenance) or not len(requests):
            continue
        pick = rng.random(len(rows))
        causes[rows] = np.where(pick < 0.8, rng.choice(maintenance, len(rows)),
                                np.where(pick < 0.9, rng.choice(requests, len(rows)), "no-such-ticket"))
    return causes


def export(tickets: pd.DataFrame, events: pd.DataFrame, root: Path) -> Path:
    """The set as a Parquet export under ``root/exports``."""
    for name, frame in (("tickets", tickets), ("events", events)):
        (root / "exports" / name).mkdir(parents=True, exist_ok=True)
        frame.to_parquet(root / "exports" / name / "part-0.parquet", index=False)
    return root / "exports"


def file_settings(root: Path, exports: Path, compute: ComputeSettings) -> Settings:
    """scripts/bench.py's KPI settings, one Parquet source reading ``exports``, stores under ``root``."""
    return Settings.from_mapping({
        **KPI_CONFIG,
        "store": {"path": str(root / "store"), "sql_url": f"sqlite:///{root / 'store' / 'kpi.sqlite'}"},
        "sources": [{"name": "bench", "kind": "parquet", "path": str(exports / "tickets"),
                     "events_path": str(exports / "events"), "timezone": "UTC"}],
        "compute": {k: v for k, v in vars(compute).items() if v is not None},
    })


def with_compute(settings: Settings, root: Path, **compute: object) -> Settings:
    """``settings`` with its stores under ``root`` and ``[compute]`` as given."""
    store = replace(settings.store, path=root, sql_url=f"sqlite:///{root / 'kpi.sqlite'}")
    return replace(settings, store=store, compute=ComputeSettings(**compute))


def store_tables(settings: Settings) -> dict[str, pd.DataFrame]:
    """Every data table of both stores (the raw layer too), rows sorted, the run ids left out: Parquet as
    ``parquet:<table>``, SQL as ``sql:<table>``."""
    stores = Stores(settings.store.path, settings.store.sql_url)
    out = {}
    for table in [*TABLE_COLUMNS, "raw_tickets", "raw_events"]:
        out[f"parquet:{table}"] = _sorted(stores.read(table))
        if table in TABLE_COLUMNS:
            out[f"sql:{table}"] = _sorted(read_sql(settings.store.sql_url, table))
    return out


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.drop(columns=[c for c in ("run_id", "row_id") if c in frame.columns])
    return frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)


def assert_same_stores(a: Settings, b: Settings) -> None:
    """Every table of the two stores equal, cell by cell (dtypes too); none of the KPI tables empty."""
    left, right = store_tables(a), store_tables(b)
    assert left.keys() == right.keys()
    for table in left:
        pd.testing.assert_frame_equal(left[table], right[table], check_exact=True, obj=table)
    for table in ("ticket_facts", "kpi_engineer", "kpi_team", "scorecard", "scorecard_kpi", "ticket_status_time",
                  "kpi_backlog"):
        assert len(left[f"parquet:{table}"]) > 0, table
