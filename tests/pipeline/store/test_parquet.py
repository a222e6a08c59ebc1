"""pipeline.store.parquet: claiming a run's staging directory against another process's orphan removal."""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
from pathlib import Path

from pipeline.store.parquet import ParquetStore


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
