"""Benchmark: synthetic tickets through facts, aggregates and the scorecard; wall time and peak RSS per stage.

    python scripts/bench.py                       # the issue's scenarios: 1M tickets + 5M events, 10M without events
    python scripts/bench.py --scenario small      # 100k tickets + 500k events, for a quick look
    python scripts/bench.py --scenario sla        # 1M + 5M with 5 clients, 8 services and 20 SLA policies (#19)

Peak RSS per stage is read from /proc/self/status (VmHWM) after resetting it through /proc/self/clear_refs;
the figure in brackets is what the stage added to the RSS it started with. The ops tables (time in status,
the daily backlog): together within +40% of the facts stage, the backlog within 1 GiB of extra RSS.
Targets (2 cores): 1M+5M through everything <= 20 s; 10M without events <= 60 s and <= 8 GiB;
no stage under 0.5M rows/s. The ``sla`` scenario (policies per client and service, own calendars and pause
statuses, due times, breakdowns): its facts stage within 1.3x, and its peak RSS within 1.2x, of the ``issue``
scenario's 1M + 5M facts stage before #19 (the same tickets and events).
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from kpis import aggregate, breakdown, compute_scorecard
from kpis.aggregate import kpi_rows, with_activity
from kpis.backlog import kpi_backlog
from kpis.calendar import CalendarSet
from kpis.config import KpiSettings
from kpis.facts import facts_and_history
from kpis.schema import EVENT_COLUMNS, TICKET_COLUMNS, conform
from kpis.status_time import ticket_status_time
from pipeline.compute.ops import aligned_facts
from pipeline.config import kpi_settings_from_mapping
from pipeline.memory import freed_memory_kept
from pipeline.policies import resolution_calendars, resolution_pauses, ticket_policies

SCENARIOS = {"small": [(100_000, 5)], "issue": [(1_000_000, 5), (10_000_000, 0)], "sla": [(1_000_000, 5)]}
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


CLIENTS = ("ACME", "Globex", "Initech", "Umbrella", "Hooli")
SERVICES = ("ERP", "MES", "CRM", "Mail", "VPN", "Printing", "HR portal", "File share")
CORE_SERVICES = list(SERVICES[:3])


def _sla_policies() -> list[dict]:
    """20 policies: per client, core systems or the rest, urgent or ordinary priorities (the first 19), then a
    default. Core systems run on 24x7 and pause only for third parties; the rest use the office calendar and the
    default pause statuses. Targets differ per client so that the first match matters."""
    kinds = [(i, client, core, urgent) for i, client in enumerate(CLIENTS) for core in (True, False)
             for urgent in (True, False)]
    return [*(_sla_policy(*kind) for kind in kinds[:19]), {"name": "default", "response": "2h", "resolution": "3d"}]


def _sla_policy(i: int, client: str, core: bool, urgent: bool) -> dict:
    hours = (1 + i % 3) * (1 if urgent else 4) * (1 if core else 2)
    policy = {"name": f"{client}-{'core' if core else 'other'}-{'P12' if urgent else 'P34'}", "client": client,
              "service": CORE_SERVICES if core else list(SERVICES[3:]), "priority": ["P1", "P2"] if urgent else
              ["P3", "P4"], "ticket_type": ["incident", "request"], "response": f"{15 * (1 + i % 4)}m",
              "resolution": f"{hours}h"}
    if core:
        policy.update(calendar="24x7", pause_statuses=["WAITING_THIRD_PARTY"])
    return policy


#: The ``sla`` scenario: KPI_CONFIG with 20 policies on client, service, priority and type, and breakdowns.
SLA_CONFIG = {**KPI_CONFIG, "sla": _sla_policies()}


def settings(config: dict | None = None) -> KpiSettings:
    """The benchmarks' KPI settings (``KPI_CONFIG`` unless another config is given)."""
    return kpi_settings_from_mapping(KPI_CONFIG if config is None else config)


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
        **_clients_and_services(n),
    })
    return conform(frame, TICKET_COLUMNS)


def _clients_and_services(n: int) -> dict[str, np.ndarray]:
    """5 clients and 8 services (5 % of tickets without each), from their own generator: the other columns
    and the events stay the same as before these columns existed, so old and new timings compare."""
    rng = np.random.default_rng([7, n])
    client = np.array(CLIENTS, dtype=object)[rng.integers(0, len(CLIENTS), n)]
    service = np.array(SERVICES, dtype=object)[rng.integers(0, len(SERVICES), n)]
    return {"client": np.where(rng.random(n) < 0.05, None, client),
            "service": np.where(rng.random(n) < 0.05, None, service)}


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


def _peak_rss_gib(field: str = "VmHWM") -> float:
    """The process's peak RSS (``VmHWM``) or current RSS (``VmRSS``), in GiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


_stage_peaks: list[float] = []


def stage(name: str, rows: int, fn: Callable[[], object]) -> object:
    """Run one stage, print its wall time, throughput and peak RSS (the process's, input included)."""
    gc.collect()
    _reset_peak()
    before = _peak_rss_gib("VmRSS")
    started = time.perf_counter()
    result = fn()
    took = time.perf_counter() - started
    rate = rows / took / 1e6 if took else float("inf")
    _stage_peaks.append(_peak_rss_gib())
    flag = "" if rate >= 0.5 else "  <-- below 0.5M rows/s"
    print(f"  {name:<22} {took:7.2f} s  {rate:6.2f}M rows/s  peak RSS {_peak_rss_gib():5.2f} GiB "
          f"(+{_peak_rss_gib() - before:4.2f}){flag}", flush=True)
    return result


def run(n_tickets: int, per_ticket: int, config: dict | None = None) -> float:
    """One scenario; returns the total seconds of the engine stages."""
    rng = np.random.default_rng(7)
    print(f"{n_tickets:,} tickets, {n_tickets * per_ticket:,} events")
    tickets = synthetic_tickets(n_tickets, rng)
    events = synthetic_events(tickets, per_ticket, rng)
    cfg, as_of = settings(config), pd.Timestamp("2026-01-15", tz="UTC")
    _stage_peaks.clear()
    started = time.perf_counter()
    facts_started = time.perf_counter()
    # as a full run on one process does (pipeline.compute.facts_with_history): the facts hand on their history
    facts, history = stage("facts", n_tickets + len(events), lambda: facts_and_history(tickets, events, cfg, as_of))
    facts_s = time.perf_counter() - facts_started
    rows = stage("kpi rows (shared)", n_tickets, lambda: kpi_rows(facts, cfg))
    # as kpis.kpi_tables does: every group for the scorecard, the table's rows those with activity
    engineer = stage("kpi_engineer", n_tickets, lambda: aggregate(facts, cfg, by="engineer", rows=rows,
                                                                  every_group=True))
    stage("kpi_engineer's rows", n_tickets, lambda: with_activity(engineer))
    stage("kpi_team", n_tickets, lambda: aggregate(facts, cfg, by="team", rows=rows))
    # as kpis.kpi_tables does: the scorecard sums the kpi_engineer rows unless it scores a duration statistic
    stage("scorecard", n_tickets, lambda: compute_scorecard(facts, cfg, rows, engineer=engineer))
    stage("kpi_breakdown", n_tickets, lambda: breakdown(facts, cfg, rows=rows))
    rows = engineer = None  # free the shared KPI rows before the ops tables (the lambdas above hold only the names)
    calendars = CalendarSet(dict(cfg.calendars))
    ops_started = time.perf_counter()
    # as a full run does (pipeline/compute/ops.py partition_ops): the facts' history and the facts in the
    # tickets' order (then each ticket's policy and facts are found by position) for both ops tables
    facts, policies = stage("ops inputs (shared)", n_tickets, lambda: _facts_and_policies(tickets, facts))
    # in partition_ops' order: the backlog (few rows, many temporary arrays) before time in status (many rows)
    stage("kpi_backlog", n_tickets + len(events), lambda: kpi_backlog(
        tickets, events, facts, cfg, as_of, pauses=resolution_pauses(policies, cfg), history=history))
    stage("ticket_status_time", n_tickets + len(events), lambda: ticket_status_time(
        tickets, events, calendars, resolution_calendars(policies, cfg), as_of, history=history))
    ops = time.perf_counter() - ops_started
    print(f"  {'ops tables together':<22} {ops:7.2f} s  = +{ops / facts_s:.0%} of the facts stage (target +40%)")
    total = time.perf_counter() - started
    print(f"  {'total':<22} {total:7.2f} s  overall peak RSS {max(_stage_peaks):5.2f} GiB")
    return total


def _facts_and_policies(tickets: pd.DataFrame, facts: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    aligned = aligned_facts(tickets, facts)
    return aligned, ticket_policies(tickets, aligned)


def memory_setting() -> str:
    """numpy's huge-page hint and the kernel's THP defrag mode: together they move the facts stage ~2x
    (docs/operations.md, "Memory: transparent huge pages")."""
    try:
        defrag = Path("/sys/kernel/mm/transparent_hugepage/defrag").read_text().strip()
    except OSError:
        defrag = "unknown"
    hint = os.environ.get("NUMPY_MADVISE_HUGEPAGE", "unset (numpy's default: on)")
    return f"NUMPY_MADVISE_HUGEPAGE={hint}; transparent_hugepage/defrag: {defrag}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="issue")
    args = parser.parse_args()
    with freed_memory_kept() as kept:  # as pipeline.jobs.run_job runs: freed pages reused (D103)
        print(f"{memory_setting()}; freed pages kept for reuse: {'yes' if kept else 'no'}")
        for n_tickets, per_ticket in SCENARIOS[args.scenario]:
            run(n_tickets, per_ticket, SLA_CONFIG if args.scenario == "sla" else None)


if __name__ == "__main__":
    main()
