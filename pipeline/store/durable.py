"""Making what the Parquet store wrote survive a power loss before the SQL commit makes it authoritative.

A written file sits in the page cache until the kernel writes it back; a rename is a directory entry that
may not be on disk yet either. The commit (``pipeline.store.stores``) relies on their order: the staged
files before the journal that names them, the journal before the SQL commit, the swap's renames before the
journal is deleted. So each step is made durable before the next: every staged file and directory is
fsynced (in the staging thread, while the run computes), then the directory a rename or a new journal
changed.
"""

from __future__ import annotations

import os
from pathlib import Path


def sync_tree(root: Path) -> None:
    """fsync every file under ``root``, then each directory bottom-up and ``root``'s parent (its entry)."""
    for directory, _, names in os.walk(root, topdown=False):
        for name in names:
            _sync(os.path.join(directory, name), os.O_RDONLY)
        sync_dir(Path(directory))
    sync_dir(root.parent)


def sync_dir(directory: Path) -> None:
    """fsync a directory: the entries created, renamed or removed in it are then on disk."""
    _sync(str(directory), os.O_RDONLY | os.O_DIRECTORY)


def _sync(path: str, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
