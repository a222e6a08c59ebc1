"""``itsm-kpi schedule``: the nightly job under APScheduler 3.x until SIGTERM/SIGINT.

``coalesce`` + ``max_instances=1`` mean missed nights collapse into one run; each source catches up
from its own watermark, so nothing is lost however long the scheduler was down. On SIGTERM the
scheduler stops taking new runs and waits for the running one: its stores are either committed or
rolled back, never half-written.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable

import pandas as pd
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from kpis.errors import ItsmKpiError
from pipeline.settings import Settings

log = logging.getLogger(__name__)
MISFIRE_GRACE_S = 6 * 3600


def nightly_job(settings: Settings) -> None:
    """One scheduled run; failures are logged (and recorded in pipeline_runs), the scheduler goes on."""
    from pipeline.jobs import run_job  # noqa: PLC0415

    try:
        summary = run_job(settings, kind="run", as_of=pd.Timestamp.now(tz="UTC").floor("s"))
        log.info(summary.line())
    except ItsmKpiError as e:
        log.error("scheduled run failed: %s", e)
    except Exception:
        log.exception("scheduled run failed unexpectedly")


def build_scheduler(settings: Settings, job: Callable[[], None] | None = None,
                    trigger=None) -> BlockingScheduler:
    """A scheduler with the nightly job on the configured cron (or ``trigger``) and timezone."""
    scheduler = BlockingScheduler(timezone=settings.schedule.timezone)
    trigger = trigger or CronTrigger.from_crontab(settings.schedule.cron, timezone=settings.schedule.timezone)
    scheduler.add_job(job or (lambda: nightly_job(settings)), trigger, id="nightly", coalesce=True,
                      max_instances=1, misfire_grace_time=MISFIRE_GRACE_S, replace_existing=True)
    return scheduler


def run_scheduler(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; the running job is allowed to finish. Returns the exit code."""
    scheduler = build_scheduler(settings)

    def stop(signum: int, _frame) -> None:
        log.info("signal %s: finishing the running job, then stopping", signal.Signals(signum).name)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler started: cron %r in %s", settings.schedule.cron, settings.schedule.timezone)
    scheduler.start()
    log.info("scheduler stopped")
    return 0
