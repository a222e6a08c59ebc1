"""The validated model -> the dataclasses the engine and the pipeline use (``Settings``, ``KpiSettings``,
``SourceConfig``...): durations to seconds, intervals to minutes, lists to tuples, defaults resolved.

``kpis`` and ``connectors`` never see pydantic: they get these frozen dataclasses. The one thing this
build refuses nothing: every check ran on the model.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from connectors.base import SourceConfig
from kpis.config import (
    ALWAYS_OPEN,
    LOWER_IS_BETTER_PREFIXES,
    SLA_CONDITIONS,
    WEEKDAYS,
    CalendarSpec,
    KpiSettings,
    ScorecardEntry,
    SlaPolicy,
    parse_duration,
    parse_interval,
)
from pipeline.config import model as m
from pipeline.settings import (
    AdjustmentsSettings,
    AlertSettings,
    ComputeSettings,
    QuerySettings,
    ReportingSettings,
    RunSettings,
    ScheduleSettings,
    Settings,
    StoreSettings,
)

__all__ = ["SLA_CONDITIONS", "build_settings", "sla_conditions"]



def _day_intervals(items: list[str], key: str) -> tuple[tuple[int, int], ...]:
    """A weekday's working intervals in minutes, in order (overlaps were refused at load:
    ``pipeline.config.check.calendar_hours``)."""
    return tuple(sorted(parse_interval(item, key) for item in items))


def _seconds(value: str | int) -> int:
    return parse_duration(value)


def calendar_spec(name: str, cal: m.Calendar) -> CalendarSpec:
    """One ``[calendars.NAME]`` table as the engine's calendar."""
    hours = {WEEKDAYS.index(day): _day_intervals(items, f"calendars.{name}.hours.{day}")
             for day, items in cal.hours.items()}
    return CalendarSpec(
        name=name, timezone=cal.timezone, hours=hours, holidays=frozenset(cal.holidays), country=cal.country,
        subdivision=cal.subdivision,
        extra_workdays={datetime.strptime(d, "%Y-%m-%d").date(): WEEKDAYS.index(w) for d, w in cal.extra_workdays.items()},
    )


def sla_conditions(entry: m.Sla) -> dict[str, tuple[str, ...]]:
    """The policy's conditions: condition -> the values it matches (``"*"`` and omitted ones left out)."""
    out = {}
    for name in SLA_CONDITIONS:
        values = getattr(entry, name)
        if values is not None and "*" not in values:
            out[name] = tuple(values)
    return out


def sla_policy(index: int, entry: m.Sla) -> SlaPolicy:
    """The engine's policy of ``[[sla]]`` entry ``index`` (0-based); its name defaults to ``sla_<index + 1>``."""
    return SlaPolicy(
        name=entry.name or f"sla_{index + 1}", conditions=sla_conditions(entry),
        response_s=None if entry.response is None else _seconds(entry.response),
        resolution_s=None if entry.resolution is None else _seconds(entry.resolution),
        calendar=entry.calendar,
        pause_statuses=None if entry.pause_statuses is None else tuple(entry.pause_statuses),
    )


def scorecard_entry(entry: m.ScorecardEntry) -> ScorecardEntry:
    """A scorecard entry with its direction resolved."""
    direction = entry.higher_is_better
    if direction is None:
        direction = not entry.kpi.startswith(LOWER_IS_BETTER_PREFIXES)
    return ScorecardEntry(kpi=entry.kpi, target=float(entry.target), weight=float(entry.weight),
                          higher_is_better=direction)


def kpi_settings(config: m.Config, sla: tuple[SlaPolicy, ...]) -> KpiSettings:
    """What ``kpis`` needs, from ``[kpi]``, ``[reporting]``, ``[calendars]``, ``[[sla]]`` and ``[[scorecard]]``."""
    calendars = {name: calendar_spec(name, cal) for name, cal in config.calendars.items()}
    calendars.setdefault(ALWAYS_OPEN, CalendarSpec.always(config.reporting.timezone or "UTC"))
    default = config.kpi.default_calendar
    return KpiSettings(
        calendars=calendars, default_calendar=default, sla=sla,
        pause_statuses=tuple(config.kpi.pause_statuses),
        resolution_counts_as_response=config.kpi.resolution_counts_as_response,
        failed_close_codes=frozenset(config.kpi.failed_close_codes),
        satisfaction_map={k: float(v) for k, v in config.kpi.satisfaction_map.items()},
        ticket_types=tuple(config.kpi.ticket_types),
        reporting_timezone=config.reporting.timezone or calendars[default].timezone,
        grains=tuple(config.reporting.grains), min_sample=config.reporting.min_sample,
        breakdowns=tuple(config.reporting.breakdowns),
        scorecard=tuple(scorecard_entry(e) for e in config.scorecard),
    )


def _set_columns(columns: BaseModel) -> dict[str, str]:
    return {k: v for k, v in columns.model_dump().items() if v is not None}


def source_config(entry: Any) -> SourceConfig:
    """One ``[[sources]]`` entry as the connectors' ``SourceConfig`` (options: only those set)."""
    values: dict[str, Any] = {
        "name": entry.name, "kind": entry.kind, "timezone": entry.timezone,
        "columns": _set_columns(entry.columns), "status_map": dict(entry.status_map),
        "priority_map": dict(entry.priority_map), "type_map": dict(entry.type_map),
        "default_ticket_type": entry.default_ticket_type, "null_tokens": tuple(entry.null_tokens),
        "options": entry.options.model_dump(exclude_unset=True),
    }
    if hasattr(entry, "path"):
        values.update(path=entry.path, events_path=entry.events_path, layout=entry.layout, encoding=entry.encoding,
                      sheet=entry.sheet, events_sheet=entry.events_sheet,
                      event_columns=_set_columns(entry.event_columns), event_kind_map=dict(entry.event_kind_map),
                      timestamp_format=entry.timestamp_format, dayfirst=entry.dayfirst)
    else:
        start = entry.start.isoformat() if isinstance(entry.start, datetime) else entry.start
        values.update(url=entry.url, username=entry.username, password_env=entry.password_env,
                      token_env=entry.token_env, start=start)
        if entry.page_size is not None:
            values["page_size"] = entry.page_size
    return SourceConfig(**values)


def _store(config: m.Config) -> StoreSettings:
    path = Path(config.store.path)
    return StoreSettings(path=path, sql_url=config.store.sql_url or f"sqlite:///{path / 'kpi.sqlite'}")


def _run(run: m.Run) -> RunSettings:
    return RunSettings(overlap_s=_seconds(run.overlap), lock_wait_s=_seconds(run.lock_wait),
                       stale_lock_s=_seconds(run.stale_lock), max_reject_ratio=run.max_reject_ratio,
                       metrics_file=Path(run.metrics_file) if run.metrics_file else None)


def _alert(alert: m.Alert) -> AlertSettings:
    return AlertSettings(name=alert.name, url_env=alert.url_env, format=alert.format, on=tuple(alert.on),
                         due_within_s=_seconds(alert.due_within), secret_env=alert.secret_env,
                         team=tuple(alert.team or ()), client=tuple(alert.client or ()))


def _adjustments(adj: m.Adjustments | None) -> AdjustmentsSettings | None:
    if adj is None:
        return None
    return AdjustmentsSettings(path=adj.path, timezone=adj.timezone, columns=_set_columns(adj.columns),
                               scope_map=dict(adj.scope_map))


def build_settings(config: m.Config) -> Settings:
    """``Settings`` for a valid ``config``."""
    reporting = config.reporting
    return Settings(
        store=_store(config), kpi=kpi_settings(config, tuple(sla_policy(i, e) for i, e in enumerate(config.sla))),
        sources=tuple(source_config(s) for s in config.sources),
        schedule=ScheduleSettings(cron=config.schedule.cron, timezone=config.schedule.timezone),
        run=_run(config.run),
        reporting=ReportingSettings(language=reporting.language, report_url=reporting.report_url),
        query=QuerySettings(timeout_s=_seconds(config.query.timeout)),
        adjustments=_adjustments(config.adjustments),
        alerts=tuple(_alert(a) for a in config.alerts),
        compute=ComputeSettings(engine=config.compute.engine, partitions=config.compute.partitions,
                                scheduler=config.compute.scheduler, workers=config.compute.workers),
    )
