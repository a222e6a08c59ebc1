"""glibc's malloc told to keep the pages a run frees, so that its next arrays reuse them (D103).

A run allocates and frees arrays of millions of rows all the time. glibc serves each allocation over
32 MiB (4M int64s) with its own ``mmap`` and hands it back to the kernel when freed, so the next array
of that size faults every 4 KiB page in again, and the kernel zeroes each one. At 10M tickets that was
close to half a run's time (kernel time in page faults, ``minflt`` in ``getrusage``). With ``mmap`` off
(``M_MMAP_MAX`` = 0) and trimming off (``M_TRIM_THRESHOLD`` = -1) every array comes from malloc's heap, and
freed pages stay mapped for the next one. Arrow's buffers (the text columns) go through malloc as well, by
Arrow's system pool instead of its bundled mimalloc, which maps and unmaps big buffers the same way: at 10M
tickets the facts' text columns took 5.2 s to build from their codes with mimalloc and 1.2 s with malloc.
That covers what pyarrow allocates; Arrow's C++ readers, writers and joins keep the pool the process chose at
start (``ARROW_DEFAULT_MEMORY_POOL``, DECISIONS.md D121).
After the run, glibc's defaults and Arrow's pool are set back and ``malloc_trim(0)`` gives the free pages
back, so a long-lived ``itsm-kpi schedule`` does not hold a night's peak until the next night.

It is skipped where the C library is not glibc, and where the user tunes malloc themselves
(``MALLOC_MMAP_MAX_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_`` or
``GLIBC_TUNABLES`` in the environment) or turns it off with ``ITSM_KPI_KEEP_FREED_MEMORY=0``; Arrow's pool
is left alone where ``ARROW_DEFAULT_MEMORY_POOL`` names one. A setting the process's launcher put there
(``launcher_tuning``: a Dask nanny gives every worker ``MALLOC_TRIM_THRESHOLD_=65536``) is not the user's:
within the block it yields too, and after it the launcher's trim threshold is back (D113).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType

import pyarrow as pa

log = logging.getLogger(__name__)

#: ``mallopt`` parameters (glibc's malloc.h), and glibc's defaults for them.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
#: The environment variables through which a user tunes glibc's malloc: theirs to set, ours to respect.
USER_TUNING = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
               "GLIBC_TUNABLES")
SWITCH, OFF = "ITSM_KPI_KEEP_FREED_MEMORY", ("0", "false", "no", "off")
ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
TRIM_THRESHOLD_VARIABLE = "MALLOC_TRIM_THRESHOLD_"
_NO_LAUNCHER_TUNING: Mapping[str, str] = MappingProxyType({})


@cache
def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    try:
        libc = ctypes.CDLL(None)  # the symbols the process has loaded: its C library's among them
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except (OSError, AttributeError):
        return None


def _users_tuning(launcher_tuning: Mapping[str, str]) -> list[str]:
    """The malloc variables in the environment that the user set: those not holding the launcher's value."""
    return [name for name in USER_TUNING if name in os.environ and os.environ[name] != launcher_tuning.get(name)]


def keep_freed_memory(launcher_tuning: Mapping[str, str] = _NO_LAUNCHER_TUNING) -> bool:
    """Tell glibc's malloc to serve big arrays from its heap and keep freed pages; True when it now does.

    Arrow's buffers (pandas' text columns) then come from malloc too, through Arrow's system pool, unless
    ``ARROW_DEFAULT_MEMORY_POOL`` chooses a pool. ``launcher_tuning``: malloc variables (name -> value) the
    process's launcher sets; holding that value, they are not the user's tuning and do not stop it."""
    if os.environ.get(SWITCH, "").strip().lower() in OFF or _users_tuning(launcher_tuning):
        log.debug("malloc left as configured (%s=0 or the user's own MALLOC_* settings)", SWITCH)
        return False
    libc = _glibc()
    if libc is None:
        return False
    if not (libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, -1)):
        release_freed_memory()  # one setting refused: none at all
        return False
    if ARROW_POOL_VARIABLE not in os.environ:
        pa.set_memory_pool(pa.system_memory_pool())
    return True


def release_freed_memory(arrow_pool: pa.MemoryPool | None = None) -> None:
    """Set glibc's defaults (and Arrow's pool, when given) back and give the pages malloc holds free to the
    kernel (``malloc_trim(0)``). The trim threshold goes back to the environment's
    ``MALLOC_TRIM_THRESHOLD_`` when that holds one (glibc read it at start), else to glibc's default."""
    if arrow_pool is not None:
        pa.set_memory_pool(arrow_pool)
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, _starting_trim_threshold())
        libc.malloc_trim(0)


def _starting_trim_threshold() -> int:
    value = os.environ.get(TRIM_THRESHOLD_VARIABLE, "").strip()
    return int(value) if value.isdigit() else DEFAULT_TRIM_THRESHOLD


@dataclass
class _Blocks:
    """The ``freed_memory_kept`` blocks open in this process (runs in threads may overlap): the first one in
    tunes malloc, the last one out sets it back, to the Arrow pool in use before the first."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    depth: int = 0
    kept: bool = False
    arrow_pool: pa.MemoryPool | None = None


_blocks = _Blocks()


@contextmanager
def freed_memory_kept(launcher_tuning: Mapping[str, str] = _NO_LAUNCHER_TUNING) -> Iterator[bool]:
    """Within the block, freed pages are kept for reuse (``keep_freed_memory``, given ``launcher_tuning``);
    after it (after the last of overlapping blocks), malloc and Arrow's pool are as before and the pages
    still free are released. Yields whether they are kept."""
    with _blocks.lock:
        if _blocks.depth == 0:
            _blocks.arrow_pool = pa.default_memory_pool()
            _blocks.kept = keep_freed_memory(launcher_tuning)
        _blocks.depth += 1
        kept = _blocks.kept
    try:
        yield kept
    finally:
        with _blocks.lock:
            _blocks.depth -= 1
            if _blocks.depth == 0 and _blocks.kept:
                gc.collect()  # arrays only reference cycles hold are freed before the pages go back, not after
                release_freed_memory(_blocks.arrow_pool)
