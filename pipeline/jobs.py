"""A run as a job: open the stores, take the run lock, record the run, execute it, always close the ledger.

Every run leaves a ``pipeline_runs`` row: ``success``/``partial`` (written in the same transaction as
the data) or ``failed`` with the one-line reason (written on its own after the data transaction rolled back,
or, for a run stopped by too many rejected rows, in the transaction that wrote those rows).
A run whose lock was taken over (it stalled past ``run.stale_lock``) commits nothing: its commit checks the
lock's fencing token (``Ledger.fence_writes``) and raises LockLost; once the heartbeat finds the lock
lost, the run already stops at its next stage.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pandas as pd

from kpis.errors import first_line
from pipeline.errors import RejectRatioExceeded, interrupted_reason
from pipeline.fingerprints import config_hash
from pipeline.memory import freed_memory_kept
from pipeline.notify import after_run, before_run_failed
from pipeline.periods import Window
from pipeline.run import PipelineRun, RunSummary
from pipeline.settings import Settings
from pipeline.store import Stores
from pipeline.store.errors import LockLost, StoreError
from pipeline.store.ledger import Ledger

log = logging.getLogger(__name__)
HEARTBEAT_S = 30.0


def new_run_id(kind: str, as_of: pd.Timestamp) -> str:
    """A sortable, unique run id: ``<kind>-<as_of UTC>-<random>``."""
    return f"{kind}-{as_of.tz_convert('UTC'):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def run_job(settings: Settings, *, kind: str, as_of: pd.Timestamp, window: Window | None = None,
            progress: Callable[[str], None] | None = None, fault: Callable[[str], None] | None = None) -> RunSummary:
    """Execute one run of ``kind`` under the run lock; raise on failure after recording it.

    Pages the run frees are kept for its next arrays, and released when it ends (``pipeline.memory``)."""
    with freed_memory_kept():
        return _locked_run(settings, kind=kind, as_of=as_of, window=window, progress=progress, fault=fault)


def _locked_run(settings: Settings, *, kind: str, as_of: pd.Timestamp, window: Window | None,
                progress: Callable[[str], None] | None, fault: Callable[[str], None] | None) -> RunSummary:
    stores = Stores(settings.store.path, settings.store.sql_url, fault=fault)
    ledger = Ledger(stores.engine)
    run_id = new_run_id(kind, as_of)
    with _reported_if_unrecorded(settings, run_id, as_of):  # no store, or another run's lock
        stores.prepare()
        ledger.acquire_lock(run_id, wait_s=settings.run.lock_wait_s, stale_after_s=settings.run.stale_lock_s)
    lost = threading.Event()
    stop_heartbeat = _start_heartbeat(ledger, run_id, lost)
    try:
        _record_start(settings, ledger, run_id, kind, as_of, window)
        try:
            summary = PipelineRun(settings, stores, ledger, kind=kind, as_of=as_of, window=window,
                                  progress=_stop_if_lost(ledger, run_id, lost, progress)).execute(run_id)
        except RejectRatioExceeded as e:
            after_run(settings, stores, ledger, run_id, as_of, error=str(e))
            raise  # its failure was committed with its rejected rows
        except (Exception, KeyboardInterrupt) as e:  # Ctrl-C and SIGTERM (pipeline.errors.Interrupted) too
            reason = _failure_reason(e)
            ledger.fail_run(run_id, reason)
            after_run(settings, stores, ledger, run_id, as_of, error=reason)
            raise
        after_run(settings, stores, ledger, run_id, as_of, summary=summary)
        return summary
    finally:
        stop_heartbeat()
        ledger.release_lock(run_id)


@contextmanager
def _reported_if_unrecorded(settings: Settings, run_id: str, as_of: pd.Timestamp) -> Iterator[None]:
    """A StoreError before the run has its ledger row leaves it unrecorded: monitoring (``run_failed``, the
    metrics file) must still hear of it."""
    try:
        yield
    except StoreError as e:
        before_run_failed(settings, run_id, as_of, _failure_reason(e))
        raise


def _record_start(settings: Settings, ledger: Ledger, run_id: str, kind: str, as_of: pd.Timestamp,
                  window: Window | None) -> None:
    """The run's ``running`` row; a store that refuses it (disk full, a read-only file) leaves the run
    unrecorded, as one refused before it took the lock."""
    window_bounds = window.utc_bounds(settings.kpi.reporting_timezone) if window else (None, None)
    with _reported_if_unrecorded(settings, run_id, as_of):
        ledger.start_run(kind, *window_bounds, as_of, run_id=run_id,
                         reporting_timezone=settings.kpi.reporting_timezone, config_hash=config_hash(settings))
    log.info("run %s started (as_of %s)", run_id, as_of.isoformat())


def _failure_reason(error: BaseException) -> str:
    """The one line a failed run records: the error's type and first line, or the signal that stopped it."""
    if isinstance(error, KeyboardInterrupt):
        return interrupted_reason(error)
    return f"{type(error).__name__}: {first_line(error)}"


def _stop_if_lost(ledger: Ledger, run_id: str, lost: threading.Event,
                  progress: Callable[[str], None] | None) -> Callable[[str], None]:
    """The run's progress callback, raising LockLost at the next stage once the heartbeat found the lock lost."""
    def stage(name: str) -> None:
        if lost.is_set():
            ledger.check_lock(run_id)
        if progress is not None:
            progress(name)
    return stage


def _start_heartbeat(ledger: Ledger, run_id: str, lost: threading.Event) -> Callable[[], None]:
    """Refresh the lock's heartbeat in the background so a long run is not taken for a dead one;
    set ``lost`` (and stop beating) when the lock was taken over."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                ledger.heartbeat(run_id)
            except LockLost as e:
                log.error("%s", e)
                lost.set()
                return
            except StoreError as e:  # e.g. SQLite locked by the run's own long write: the next beat retries
                log.warning("lock heartbeat not recorded, retrying in %.0f s: %s", HEARTBEAT_S, e)
            except Exception:  # a missed heartbeat must not kill the run; the next one retries
                log.warning("lock heartbeat failed", exc_info=True)

    thread = threading.Thread(target=beat, name="itsm-kpi-heartbeat", daemon=True)
    thread.start()

    def stop_beating() -> None:
        stop.set()
        thread.join(timeout=5)
    return stop_beating

