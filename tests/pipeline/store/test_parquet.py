"""pipeline.store.parquet: claiming a run's staging directory against another process's orphan removal; the
row groups a rewrite writes."""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.store.parquet import ParquetStore
from pipeline.store.table_version import TableVersion


def _claimed_by_someone(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_claim_racing_an_orphan_removal_ends_up_holding_a_live_directory(tmp_path: Path) -> None:
    """remove_orphans deletes a staging directory while it holds its flock; a run claiming the same
    directory in that moment waits, finds it gone, and claims a new one (the flake CI once showed)."""
    store = ParquetStore(tmp_path)
    staging = store.staging_dir("run-1")
    staging.mkdir(parents=True)
    remover = os.open(staging, os.O_RDONLY)  # what remove_orphans holds while it deletes
    fcntl.flock(remover, fcntl.LOCK_EX)
    claimed, release = threading.Event(), threading.Event()

    def run() -> None:
        with store.claim_staging("run-1"):
            claimed.set()
            release.wait(10)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.3)  # the claim opened the directory and waits for the flock
    assert not claimed.is_set()
    shutil.rmtree(staging)
    os.close(remover)
    assert claimed.wait(10)
    assert staging.is_dir() and _claimed_by_someone(staging)
    store.remove_orphans()
    assert staging.is_dir()  # a claimed staging is no orphan
    release.set()
    thread.join(10)
    store.remove_orphans()
    assert not staging.exists()  # unclaimed now: removed


def test_a_rewrite_writes_full_row_groups_not_the_pieces_its_filter_leaves(tmp_path: Path) -> None:
    # 300k stored rows in groups of 10k; the night removes every 100th key (3,000) and adds none. Each
    # stored group keeps 9,900 rows, which written as they come would be 30 groups that shrink again the
    # next night. Instead the writer gathers the pieces until it holds 32,768 rows (an eighth of a file of
    # 262,144): 4 pieces, 39,600 rows. 6 such groups (237,600 rows) leave the file room for 24,544 rows, its
    # last group; the second file holds the rest, 297,000 - 262,144 = 34,856 rows, in one group.
    n = 300_000
    live = pa.Table.from_pydict({"source": ["s"] * n, "ticket_id": [str(i) for i in range(n)],
                                 "value": list(range(n))})
    live = pa.Table.from_batches(live.to_batches(max_chunksize=10_000))
    removed = live.select(["source", "ticket_id"]).take(list(range(0, n, 100)))
    ParquetStore(tmp_path).stage("run-1", "some_table", TableVersion.of(live, [removed], live.slice(0, 0)))
    files = sorted((tmp_path / ".staging" / "run-1" / "some_table").glob("*.parquet"))
    groups = sorted([meta.row_group(i).num_rows for meta in (pq.read_metadata(f) for f in files)
                     for i in range(meta.num_row_groups)])
    assert groups == [24_544, 34_856, *[39_600] * 6]
    written = ds.dataset(files, format="parquet").to_table()
    assert sorted(written.column("value").to_pylist()) == [i for i in range(n) if i % 100]
