"""pipeline/store/durable.py and its place in a commit: what the journal names is on disk before it.

A power loss cannot be staged in a test; what can be checked is the order of the fsyncs a real commit
makes (recorded by wrapping ``os.fsync``, which still syncs): every staged file before the journal, the
journal's directory entry before the SQL commit, and the swap's renames before the journal is deleted.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from test_stores import sample

from pipeline.store import Replacement, Stores
from pipeline.store.durable import sync_tree


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every fsync this process makes, in order."""
    paths: list[str] = []
    real = os.fsync

    def recording(fd: int) -> None:
        paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return paths


def test_sync_tree_syncs_every_file_then_the_directories_bottom_up(tmp_path: Path, synced: list[str]) -> None:
    root = tmp_path / "table"
    (root / "part=a").mkdir(parents=True)
    (root / "part=a" / "part-0.parquet").write_bytes(b"x")
    (root / "top.parquet").write_bytes(b"y")
    sync_tree(root)
    order = {path: synced.index(path) for path in synced}
    assert order[str(root / "part=a" / "part-0.parquet")] < order[str(root / "part=a")] < order[str(root)]
    assert order[str(root / "top.parquet")] < order[str(root)]  # a directory after what it holds
    assert synced[-1] == str(tmp_path)  # the table's own entry last
    assert set(synced) == {str(p) for p in (root / "part=a" / "part-0.parquet", root / "top.parquet",
                                            root / "part=a", root, tmp_path)}


def test_a_commit_syncs_its_staged_files_before_the_journal_and_its_renames_before_the_journal_goes(
        tmp_path: Path, synced: list[str]) -> None:
    stores = Stores(tmp_path / "store", f"sqlite:///{tmp_path / 'store' / 'kpi.sqlite'}")
    stores.prepare()
    facts = sample("ticket_facts", 40)
    synced.clear()
    stores.commit("run-1", [Replacement("ticket_facts", facts, pd.DataFrame())])
    stores.close()

    root = tmp_path / "store"
    journal = synced.index(str(root / ".journal.tmp"))
    staged = [i for i, p in enumerate(synced) if p.endswith(".parquet") and "/.staging/run-1/ticket_facts/" in p]
    live = list((root / "ticket_facts").rglob("*.parquet"))
    assert len(staged) == len(live) > 0 and max(staged) < journal  # every file the journal names, before it
    root_syncs = [i for i, p in enumerate(synced) if p == str(root)]
    assert len(root_syncs) >= 2
    assert root_syncs[0] > journal  # the journal's rename into place
    assert root_syncs[-1] > root_syncs[0]  # the swap's renames, before the journal is deleted
    assert not (root / ".journal.json").exists()
