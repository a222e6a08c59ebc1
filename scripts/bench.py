"""Benchmark: synthetic tickets through facts, aggregates and the scorecard; wall time and peak RSS per stage.

    python scripts/bench.py                       # the issue's scenarios: 1M tickets + 5M events, 10M without events
    python scripts/bench.py --scenario small      # 100k tickets + 500k events, for a quick look

Peak RSS per stage is read from /proc/self/status (VmHWM) after resetting it through /proc/self/clear_refs.
Targets (2 cores): 1M+5M through everything <= 20 s; 10M without events <= 60 s and <= 8 GiB;
no stage under 0.5M rows/s.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from kpis import aggregate, compute_facts, compute_scorecard
from kpis.aggregate import kpi_rows
from kpis.config import KpiSettings
from kpis.schema import EVENT_COLUMNS, TICKET_COLUMNS, conform
from pipeline.config import kpi_settings_from_mapping

SCENARIOS = {"small": [(100_000, 5)], "issue": [(1_000_000, 5), (10_000_000, 0)]}
BASE = np.datetime64("2025-01-01T00:00:00", "s").astype("int64")
YEAR_S = 365 * 86400


# The benchmarks' KPI configuration (sections of the TOML); bench_nightly.py adds a store and a source.
KPI_CONFIG = {
    "reporting": {"timezone": "Asia/Shanghai"},
    "kpi": {"default_calendar": "office", "satisfaction_map": {"满意": 5, "一般": 3}},
    "calendars": {"office": {"timezone": "Asia/Shanghai", "country": "CN",
                             "hours": {d: ["09:00-12:00", "13:30-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}}},
    "sla": [{"ticket_type": "incident", "priority": "P1", "response": "30m", "resolution": "4h", "calendar": "24x7"},
            {"ticket_type": "incident", "response": "1h", "resolution": "16h"},
            {"ticket_type": "request", "response": "2h", "resolution": "3d"}],
    "scorecard": [{"kpi": "response_sla_rate", "target": 0.95, "weight": 0.4},
                  {"kpi": "first_fix_rate", "target": 0.8, "weight": 0.3},
                  {"kpi": "csat_rate", "target": 0.85, "weight": 0.3}],
}


def settings() -> KpiSettings:
    """The benchmarks' KPI settings."""
    return kpi_settings_from_mapping(KPI_CONFIG)


def _stamps(seconds: np.ndarray) -> pd.Series:
    return pd.Series(seconds.astype("datetime64[s]").astype("datetime64[us]")).dt.tz_localize("UTC")


def synthetic_tickets(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` canonical tickets over a year, 500 engineers in 40 teams, a realistic mix of outcomes."""
    opened = BASE + rng.integers(0, YEAR_S, n)
    resolved = opened + rng.exponential(8 * 3600, n).astype("int64")
    done = rng.random(n) < 0.9
    engineer = rng.integers(0, 500, n)
    types = np.array(["incident", "request", "maintenance"], dtype=object)[rng.choice(3, n, p=[0.7, 0.27, 0.03])]
    frame = pd.DataFrame({
        "ticket_id": pd.Series(np.arange(n).astype("str"), dtype="str"),
        "source": "bench",
        "ticket_type": types,
        "priority": np.array(["P1", "P2", "P3", "P4"], dtype=object)[rng.integers(0, 4, n)],
        "status": np.where(done, "CLOSED", "IN_PROGRESS"),
        "opened_at": _stamps(opened),
        "first_response_at": _stamps(opened + rng.exponential(1800, n).astype("int64")),
        "resolved_at": _stamps(np.where(done, resolved, np.datetime64("NaT").astype("int64"))),
        "assignee": np.char.add("eng", (engineer).astype("str")),
        "assignment_group": np.char.add("team", (engineer % 40).astype("str")),
        "reopen_count": rng.integers(0, 2, n) * (rng.random(n) < 0.1),
        "category": np.array(["net", "pc", "mail", "db"], dtype=object)[rng.integers(0, 4, n)],
        "satisfaction": np.where(rng.random(n) < 0.3, np.where(rng.random(n) < 0.85, "满意", "一般"), None),
        "planned_end": _stamps(np.where(types == "maintenance", opened + 86400, np.datetime64("NaT").astype("int64"))),
    })
    return conform(frame, TICKET_COLUMNS)


def synthetic_events(tickets: pd.DataFrame, per_ticket: int, rng: np.random.Generator) -> pd.DataFrame:
    """``per_ticket`` events per ticket: status changes (with pauses), a response and an assignment."""
    n = len(tickets)
    if per_ticket == 0:
        return conform(pd.DataFrame(), EVENT_COLUMNS)
    opened = tickets["opened_at"].dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype("int64")
    tix = np.repeat(np.arange(n), per_ticket)
    step = np.tile(np.arange(per_ticket), n)
    at = opened[tix] + step * rng.integers(60, 7200, n * per_ticket)
    kinds = np.array(["status", "response", "assignee", "status", "status", "priority", "category"], dtype=object)
    values = np.array(["NEW", "", "eng1", "WAITING_CUSTOMER", "RESOLVED", "P2", "net"], dtype=object)
    pick = step % len(kinds)
    frame = pd.DataFrame({
        "source": "bench",
        "ticket_id": tickets["ticket_id"].to_numpy()[tix],
        "at": _stamps(at),
        "kind": kinds[pick],
        "value": values[pick],
        "actor": "",
        "seq": np.arange(n * per_ticket),
    })
    return conform(frame, EVENT_COLUMNS)


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


_stage_peaks: list[float] = []


def stage(name: str, rows: int, fn: Callable[[], object]) -> object:
    """Run one stage, print its wall time, throughput and peak RSS (the process's, input included)."""
    gc.collect()
    _reset_peak()
    started = time.perf_counter()
    result = fn()
    took = time.perf_counter() - started
    rate = rows / took / 1e6 if took else float("inf")
    _stage_peaks.append(_peak_rss_gib())
    flag = "" if rate >= 0.5 else "  <-- below 0.5M rows/s"
    print(f"  {name:<22} {took:7.2f} s  {rate:6.2f}M rows/s  peak RSS {_peak_rss_gib():5.2f} GiB{flag}", flush=True)
    return result


def run(n_tickets: int, per_ticket: int) -> float:
    """One scenario; returns the total seconds of the engine stages."""
    rng = np.random.default_rng(7)
    print(f"{n_tickets:,} tickets, {n_tickets * per_ticket:,} events")
    tickets = synthetic_tickets(n_tickets, rng)
    events = synthetic_events(tickets, per_ticket, rng)
    cfg, as_of = settings(), pd.Timestamp("2026-01-15", tz="UTC")
    _stage_peaks.clear()
    started = time.perf_counter()
    facts = stage("facts", n_tickets + len(events), lambda: compute_facts(tickets, events, cfg, as_of))
    rows = stage("kpi rows (shared)", n_tickets, lambda: kpi_rows(facts, cfg))
    stage("kpi_engineer", n_tickets, lambda: aggregate(facts, cfg, by="engineer", rows=rows))
    stage("kpi_team", n_tickets, lambda: aggregate(facts, cfg, by="team", rows=rows))
    stage("scorecard", n_tickets, lambda: compute_scorecard(facts, cfg, rows))
    total = time.perf_counter() - started
    print(f"  {'total':<22} {total:7.2f} s  overall peak RSS {max(_stage_peaks):5.2f} GiB")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="issue")
    args = parser.parse_args()
    for n_tickets, per_ticket in SCENARIOS[args.scenario]:
        run(n_tickets, per_ticket)


if __name__ == "__main__":
    main()
