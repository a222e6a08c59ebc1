"""``itsm-kpi schedule``: the nightly job under APScheduler 3.x until SIGTERM/SIGINT.

``coalesce`` + ``max_instances=1`` mean missed fire times collapse into one run while the process is
up (a suspended host, a run longer than a day); and when the scheduler starts after the night's fire
time went by with no nightly run started since (the host was down, or this is a fresh install), it
runs once at start. Each source catches up from its own watermark, so nothing is lost however long
the scheduler was down. On SIGTERM the scheduler stops taking new runs and waits for the running one:
its stores are either committed or rolled back, never half-written, and the process exits 0. A second
signal while waiting does not abort the run (only SIGKILL does; the next run then takes over the lock
and the stores recover their interrupted commit).

A second scheduler (on this host or another one using the same SQL store) is harmless: its run waits
``run.lock_wait`` for the run lock, then gives up with ``LockTimeout`` and is logged as failed.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from kpis.errors import ItsmKpiError
from pipeline.settings import Settings

log = logging.getLogger(__name__)
MISFIRE_GRACE_S = 6 * 3600
JOB_ID = "nightly"


def nightly_job(settings: Settings) -> None:
    """One scheduled run; failures are logged (and recorded in pipeline_runs), the scheduler goes on."""
    from pipeline.jobs import run_job  # noqa: PLC0415

    try:
        summary = run_job(settings, kind="run", as_of=pd.Timestamp.now(tz="UTC").floor("s"))
    except ItsmKpiError as e:
        log.error("scheduled run failed: %s", e)
    except Exception:
        log.exception("scheduled run failed unexpectedly")
    else:
        (log.warning if summary.failed_sources else log.info)(summary.line())


def nightly_trigger(settings: Settings) -> CronTrigger:
    """The configured cron in the configured timezone."""
    return CronTrigger.from_crontab(settings.schedule.cron, timezone=settings.schedule.timezone)


def build_scheduler(settings: Settings, job: Callable[[], None] | None = None, trigger: BaseTrigger | None = None,
                    *, run_now: bool = False) -> BlockingScheduler:
    """A scheduler with the nightly job on the configured cron (or ``trigger``) and timezone.

    ``run_now``: also run once as soon as the scheduler starts (a missed night), then follow the trigger.
    """
    scheduler = BlockingScheduler(timezone=settings.schedule.timezone)
    extra = {"next_run_time": datetime.now(scheduler.timezone)} if run_now else {}
    scheduler.add_job(job or (lambda: nightly_job(settings)), trigger or nightly_trigger(settings), id=JOB_ID,
                      name="itsm-kpi nightly run", coalesce=True, max_instances=1,
                      misfire_grace_time=MISFIRE_GRACE_S, replace_existing=True, **extra)
    return scheduler


def last_nightly_start(settings: Settings) -> datetime | None:
    """When the latest ``run`` that ran to its end started, from pipeline_runs; None if there was none.

    A run that was killed (its row still ``running``, or ``failed`` as ``abandoned`` once another run took its
    lock over) did not: its night is still to do (docs/operations.md, Recovery), so a scheduler restarted
    after it (systemd's ``Restart=``) runs at once rather than a day later. A run that failed on its own
    error did end; the next fire time retries it.

    Raises StoreError when the SQL store cannot be read.
    """
    from pipeline.store import (
        Stores,  # noqa: PLC0415
        schema,  # noqa: PLC0415
    )
    from pipeline.store.errors import StoreError  # noqa: PLC0415
    from pipeline.store.ledger import ABANDONED  # noqa: PLC0415
    from pipeline.store.sql import sqlite_file_missing  # noqa: PLC0415

    if sqlite_file_missing(settings.store.sql_url) is not None:
        return None  # a store not written yet: no run so far (connecting would fail on its missing folder)
    stores = Stores(settings.store.path, settings.store.sql_url)
    runs = schema.metadata.tables["pipeline_runs"]
    try:
        with stores.engine.connect() as conn:
            if not inspect(conn).has_table("pipeline_runs"):
                return None
            ended = (runs.c.status != "running") & (runs.c.error.is_(None) | ~runs.c.error.startswith(ABANDONED))
            started = conn.execute(select(func.max(runs.c.started_at)).where((runs.c.kind == "run") & ended)).scalar()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read pipeline_runs: {str(getattr(exc, 'orig', exc)).splitlines()[0]}") from exc
    finally:
        stores.close()
    if started is None:
        return None
    started = pd.Timestamp(started)  # SQLite hands back naive UTC (text, for an aggregate)
    return (started.tz_localize("UTC") if started.tzinfo is None else started.tz_convert("UTC")).to_pydatetime()


def missed_night(trigger: BaseTrigger, last_start: datetime | None, now: datetime) -> bool:
    """True when ``trigger`` fired (or would have) after ``last_start`` and by ``now``, or never ran."""
    if last_start is None:
        return True
    after = last_start + timedelta(seconds=1)
    fire = trigger.get_next_fire_time(None, after)
    return fire is not None and fire <= now


def run_scheduler(settings: Settings, trigger: BaseTrigger | None = None) -> int:
    """Run until SIGTERM/SIGINT; the running job is allowed to finish. Returns the exit code."""
    trigger = trigger or nightly_trigger(settings)
    run_now = _should_catch_up(settings, trigger)
    scheduler = build_scheduler(settings, trigger=trigger, run_now=run_now)
    stopping = False

    def stop(signum: int, _frame) -> None:
        nonlocal stopping
        name = signal.Signals(signum).name
        if stopping:
            log.warning("signal %s: already stopping, still waiting for the running job "
                        "(SIGKILL aborts it; the next run recovers the stores)", name)
            return
        stopping = True
        log.info("signal %s: finishing the running job, then stopping", name)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler started: cron %r in %s%s", settings.schedule.cron, settings.schedule.timezone,
             "; running the missed night now" if run_now else "")
    scheduler.start()
    log.info("scheduler stopped")
    return 0


def _should_catch_up(settings: Settings, trigger: BaseTrigger) -> bool:
    try:
        last = last_nightly_start(settings)
    except ItsmKpiError as e:
        log.warning("cannot tell when the last nightly run was (%s); running one now", e)
        return True
    return missed_night(trigger, last, datetime.now(UTC))
