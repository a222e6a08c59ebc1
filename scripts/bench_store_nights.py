"""Benchmark: a store's raw tickets rewritten night after night, 1% of the rows replaced each time.

    python scripts/bench_store_nights.py                    # 1M tickets, 200 nights, a line every 50
    python scripts/bench_store_nights.py --tickets 100000 --nights 20 --every 5

Each night goes through the store's own rewrite (``ParquetStore.new_version``, ``stage``, ``swap_in``) with
1% of the stored tickets replaced (the same rows again, so the table's size stays put). What it shows: the
row groups the table is stored in, the time of the night's rewrite and of reading the table back into
pandas. A store whose row groups shrink night after night (DECISIONS.md D124) gets slower by itself; the
target is that nothing here grows with the nights.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from bench import synthetic_tickets

from kpis.schema import TICKET_COLUMNS
from pipeline.store.parquet import ParquetStore, to_arrow

TABLE = "raw_tickets"


def stored_tickets(n: int) -> pa.Table:
    """``n`` synthetic tickets as the raw layer stores them."""
    return to_arrow(synthetic_tickets(n, np.random.default_rng(7)), TICKET_COLUMNS)  # (to_arrow conforms)


def rewrite(store: ParquetStore, run_id: str, rows: pa.Table) -> float:
    """One night's rewrite of the table with ``rows`` replacing the stored rows of their keys; seconds taken."""
    started = time.perf_counter()
    store.stage(run_id, TABLE, store.new_version(TABLE, rows, None))
    store.swap_in(run_id, [TABLE])
    return time.perf_counter() - started


def row_groups(store: ParquetStore) -> list[int]:
    """The rows of every row group of the stored table."""
    files = sorted(store.table_dir(TABLE).rglob("*.parquet"))
    return [meta.row_group(i).num_rows for meta in map(pq.read_metadata, files) for i in range(meta.num_row_groups)]


def read_seconds(store: ParquetStore) -> float:
    """Seconds to read the stored table into pandas, as a run reads the raw layer."""
    started = time.perf_counter()
    store.read(TABLE)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--nights", type=int, default=200)
    parser.add_argument("--every", type=int, default=50, help="print a line every this many nights")
    args = parser.parse_args()
    rng = np.random.default_rng(11)
    with tempfile.TemporaryDirectory(prefix="bench-store-nights-") as tmp:
        store = ParquetStore(Path(tmp))
        tickets = stored_tickets(args.tickets)
        first = rewrite(store, "night-0", tickets)
        print(f"{args.tickets:,} tickets, 1% replaced a night; first write {first:.2f} s", flush=True)
        written: list[float] = []
        for night in range(1, args.nights + 1):
            replaced = tickets.take(rng.choice(tickets.num_rows, tickets.num_rows // 100, replace=False))
            written.append(rewrite(store, f"night-{night}", replaced))
            if night % args.every == 0 or night == args.nights:
                groups = row_groups(store)
                recent = written[-args.every:]
                print(f"  night {night:>4}: {len(groups):>5} row groups (median {statistics.median(groups):>9,.0f} "
                      f"rows)  rewrite {statistics.median(recent):.2f} s (median of the last {len(recent)})  "
                      f"read {read_seconds(store):.2f} s", flush=True)


if __name__ == "__main__":
    main()
