"""Benchmark: the scale-out engines (issue #23) on scripts/bench.py's synthetic tickets.

    python scripts/bench_scale.py                          # 100k and 1M tickets (5 events each)
    python scripts/bench_scale.py --sizes 10000000         # 10M tickets, no events (as the issue's curve)
    python scripts/bench_scale.py --sizes 100000 --partitions 4

For each size, each configuration runs in a fresh process (so peak RSS is its own): the facts (the
``[compute]`` engine's part), the KPI tables from them on the driver (``kpi_tables``), then time in status
and the daily backlog (the engine's too, D91):

- local, partitions 1 (one process, as before #23) and partitions N (one partition at a time);
- dask on a LocalCluster of 1 and of 2 single-threaded worker processes, partitions N, the cluster started
  before the clock (its start-up is printed apart).

Printed: wall seconds of facts and tables, rows/s (tickets + events), the driver's peak RSS and, on Dask,
the largest worker's. The tables of every configuration are checked equal to the first's. No asserts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _peak_rss_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def one(n: int, per_ticket: int, engine: str, partitions: int, workers: int) -> dict:
    """One configuration, in this process: times, peaks and a digest of the tables."""
    import numpy as np
    import pandas as pd
    from bench import settings, synthetic_events, synthetic_tickets

    from kpis import kpi_tables
    from pipeline.compute import facts_engine, ops_engine
    from pipeline.compute.ops import OpsRequest
    from pipeline.memory import keep_freed_memory
    from pipeline.settings import ComputeSettings

    keep_freed_memory()  # as pipeline.jobs.run_job does for a run (D103); this process ends with the run
    rng = np.random.default_rng(7)
    tickets = synthetic_tickets(n, rng)
    events = synthetic_events(tickets, per_ticket, rng)
    kpi, as_of = settings(), pd.Timestamp("2026-01-15", tz="UTC")
    cluster, started_s, scheduler = None, 0.0, None
    if engine == "dask":
        from distributed import LocalCluster
        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
        started_s, scheduler = time.perf_counter() - t0, cluster.scheduler_address
    compute = ComputeSettings(engine, partitions, scheduler, None)
    _reset_peak()
    t0 = time.perf_counter()
    facts = facts_engine(compute)(tickets, events, kpi, as_of, None)
    facts_s = time.perf_counter() - t0
    tables = kpi_tables(facts, kpi)
    tables_s = time.perf_counter() - t0 - facts_s
    t1 = time.perf_counter()
    ops = ops_engine(compute)(tickets, events, facts, OpsRequest(kpi, as_of, None, None))
    ops_s = time.perf_counter() - t1
    worker_peak = 0.0
    if cluster is not None:
        from distributed import Client
        with Client(cluster) as client:
            worker_peak = max(client.run(_peak_rss_gib).values())
        cluster.close()
    digest = {t: int(pd.util.hash_pandas_object(getattr(tables, t).sort_values(list(getattr(tables, t).columns[:4]))
                                                .reset_index(drop=True), index=False).sum())
              for t in ("facts", "kpi_engineer", "kpi_team", "scorecard", "scorecard_kpi", "kpi_breakdown")}
    digest |= {t: int(pd.util.hash_pandas_object(getattr(ops, t), index=False).sum()) for t in ("status_time", "backlog")}
    return {"rows": n + len(events), "facts_s": facts_s, "tables_s": tables_s, "ops_s": ops_s,
            "driver_peak_gib": _peak_rss_gib(),
            "worker_peak_gib": worker_peak, "cluster_start_s": started_s, "digest": digest}


def _in_process(n: int, per_ticket: int, engine: str, partitions: int, workers: int) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
            f"from bench_scale import one; print(json.dumps(one({n}, {per_ticket}, {engine!r}, {partitions}, "
            f"{workers})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--no-dask", action="store_true", help="the local engine only")
    args = parser.parse_args()
    from bench import memory_setting

    print(memory_setting(), flush=True)
    for n in args.sizes:
        per_ticket = 5 if n <= 1_000_000 else 0
        print(f"{n:,} tickets, {n * per_ticket:,} events", flush=True)
        configs = [("local", 1, 0), ("local", args.partitions, 0)]
        if not args.no_dask:
            configs += [("dask", args.partitions, 1), ("dask", args.partitions, 2)]
        first = None
        for engine, partitions, workers in configs:
            r = _in_process(n, per_ticket, engine, partitions, workers)
            same = "" if first is None else ("  tables identical" if r["digest"] == first else "  TABLES DIFFER")
            first = first or r["digest"]
            name = f"{engine} p={partitions}" + (f" w={workers}" if workers else "")
            extra = (f"  worker peak {r['worker_peak_gib']:5.2f} GiB  (cluster start {r['cluster_start_s']:.1f} s)"
                     if workers else "")
            print(f"  {name:<18} facts {r['facts_s']:7.2f} s ({r['rows'] / r['facts_s'] / 1e6:5.2f}M rows/s)  "
                  f"tables {r['tables_s']:6.2f} s  status time + backlog {r['ops_s']:6.2f} s  driver peak {r['driver_peak_gib']:5.2f} GiB{extra}{same}", flush=True)


if __name__ == "__main__":
    main()
