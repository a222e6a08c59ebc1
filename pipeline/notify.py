"""After a run: post the alerts and rewrite the metrics file. Nothing here can fail the run.

A committed run posts ``breached``, ``due_soon`` and ``below_target`` messages from the stored tables and
records what it posted (``alerts_sent`` and the counts in ``pipeline_runs``, in one store commit); a failed
run posts ``run_failed``, and so does a ``partial`` one (a source could not be read: its data is stale) besides
its other kinds. Then ``[run].metrics_file`` is rewritten for monitoring. A run that stopped before it was
recorded (a store it cannot open, the lock another run holds) posts ``run_failed`` and rewrites the metrics
file too (``before_run_failed``): it has no ledger row to count its posts in.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime

import pandas as pd

from kpis.errors import first_line
from pipeline.alerts.data import read_alert_data, record_posts
from pipeline.alerts.deliver import AlertData, Outcome, deliver, enabled, messages, needs_roster
from pipeline.alerts.rules import AlertContext
from pipeline.metrics import RunMetrics, last_success_in, write_metrics
from pipeline.run import RunSummary
from pipeline.settings import AlertSettings, Settings
from pipeline.store import Ledger, Stores

log = logging.getLogger(__name__)


def after_run(settings: Settings, stores: Stores, ledger: Ledger, run_id: str, as_of: pd.Timestamp, *,
              summary: RunSummary | None = None, error: str | None = None,
              env: Mapping[str, str] | None = None) -> Outcome:
    """Alerts, then metrics, for the run that just committed (``summary``) or failed (``error``)."""
    outcome = Outcome()
    try:
        outcome = _alerts(settings, stores, ledger, run_id, as_of, summary, error, os.environ if env is None else env)
    except Exception:  # an alert must never fail the run it reports on
        log.exception("alerts after run %s failed; the run itself is unaffected", run_id)
    _metrics(settings, ledger.last_success, summary, outcome)
    return outcome


def before_run_failed(settings: Settings, run_id: str, as_of: pd.Timestamp, error: str,
                      env: Mapping[str, str] | None = None) -> Outcome:
    """``run_failed`` and the metrics file of a run that failed before it was recorded: monitoring must not go
    on reading the last night's ``success``. The last success is the one the metrics file named (the ledger
    may be out of reach)."""
    outcome = Outcome()
    try:
        outcome = _failure_alerts(settings, run_id, as_of, error, os.environ if env is None else env)
    except Exception:  # an alert must never hide the run's own error
        log.exception("alerts after run %s failed", run_id)
    _metrics(settings, lambda: last_success_in(settings.run.metrics_file), None, outcome)
    return outcome


def alert_context(settings: Settings, as_of: pd.Timestamp) -> AlertContext:
    """Language, timezone and report link of the messages."""
    return AlertContext(as_of_iso=as_of.isoformat(), language=settings.reporting.language,
                        timezone=settings.kpi.reporting_timezone, report_url=settings.reporting.report_url)


def _alerts(settings: Settings, stores: Stores, ledger: Ledger, run_id: str, as_of: pd.Timestamp,
            summary: RunSummary | None, error: str | None, env: Mapping[str, str]) -> Outcome:
    if not settings.alerts:
        return Outcome()
    if summary is None:
        outcome = _failure_alerts(settings, run_id, as_of, error or "", env)
        if outcome.sent or outcome.failed:
            ledger.record_alert_counts(run_id, outcome.sent, outcome.failed)
        return outcome
    rules = enabled(list(settings.alerts), env)
    if not rules:  # every alert disabled: nothing to read, post or record
        return Outcome()
    data = read_alert_data(stores, as_of, settings.kpi.reporting_timezone, run=_partial(run_id, summary),
                           roster=needs_roster(rules))
    outcome = deliver(rules, messages(rules, data, alert_context(settings, as_of), as_of), env)
    record_posts(stores, ledger, run_id, outcome, pd.Timestamp.now(tz="UTC").floor("s"))
    return outcome


def _failure_alerts(settings: Settings, run_id: str, as_of: pd.Timestamp, error: str,
                    env: Mapping[str, str]) -> Outcome:
    """Post the ``run_failed`` message of a failed run (its other kinds have nothing new to say)."""
    rules = [_kinds(rule, failed=True) for rule in enabled(list(settings.alerts), env)]
    if not rules:
        return Outcome()
    data = AlertData(*[pd.DataFrame()] * 4, run={"run_id": run_id, "status": "failed", "reason": error})
    return deliver(rules, messages(rules, data, alert_context(settings, as_of), as_of), env)


def _kinds(rule: AlertSettings, failed: bool) -> AlertSettings:
    """The kinds a rule posts now: only ``run_failed`` after a failure; after a commit, every kind (``run_failed``
    has something to say only when the run was ``partial``)."""
    return replace(rule, on=tuple(k for k in rule.on if k == "run_failed" or not failed))


def _partial(run_id: str, summary: RunSummary) -> dict | None:
    """The ``run_failed`` item of a committed run whose sources did not all read, else None."""
    if summary.status != "partial":
        return None
    reason = "; ".join(f"{source}: {why}" for source, why in summary.failed_sources.items())
    return {"run_id": run_id, "status": "partial", "reason": reason}


def _metrics(settings: Settings, last_success: Callable[[], datetime | None], summary: RunSummary | None,
             outcome: Outcome) -> None:
    """Rewrite ``[run].metrics_file`` (when set; ``last_success`` is asked only then). A file that cannot be
    written is logged in one line; it never fails the run."""
    path = settings.run.metrics_file
    if path is None:
        return
    try:
        write_metrics(path, RunMetrics(
            status="failed" if summary is None else summary.status, last_success=last_success(),
            stage_seconds=summary.stage_seconds if summary else {},
            rows_read=summary.rows_read_by_source if summary else {},
            rows_rejected=summary.rows_rejected_by_source if summary else {},
            rows_written=summary.rows_written if summary else 0,
            alerts_sent=outcome.sent, alerts_failed=outcome.failed,
            sources=tuple(source.name for source in settings.sources)))
    except OSError as exc:
        log.error("could not write the metrics file %s: %s (check [run].metrics_file)", path, first_line(exc))
    except Exception:
        log.exception("could not write the metrics file %s", path)
