"""Typed KPI settings: what ``kpis`` needs, as plain frozen dataclasses.

The config file is read and checked by ``pipeline/config`` (one typed model of every section), which
builds these dataclasses; ``kpis`` itself never parses a config. The parse helpers below (durations,
timezones, dates, working intervals) are shared with that model and raise ``ConfigError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kpis.errors import ConfigError
from kpis.schema import GRAINS, KPI_VERSION, TICKET_TYPES

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALWAYS_OPEN = "24x7"
DEFAULT_PAUSE_STATUSES = ("WAITING_CUSTOMER", "WAITING_THIRD_PARTY")
DEFAULT_FAILED_CLOSE_CODES = ("failed", "rolled_back")
#: What ``kpi_breakdown`` may break the KPIs down by: ticket_facts columns saying what a ticket is about.
BREAKDOWN_DIMENSIONS = ("client", "service", "category", "priority", "source")
DEFAULT_BREAKDOWNS = ("client", "service", "category", "priority")

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_INTERVAL = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")

# KPIs where a smaller value is better; every other kpi_engineer value column is higher-is-better.
LOWER_IS_BETTER_PREFIXES = ("response_mean", "response_median", "response_p90", "resolution_mean",
                            "resolution_median", "resolution_p90", "reopen", "induced")


def parse_duration(text: str | int | float, key: str = "duration") -> int:
    """``30m``, ``4h``, ``90s``, ``1h30m``, ``2d`` (or a number of seconds) -> whole seconds."""
    if isinstance(text, bool):
        raise ConfigError(key, f"{text!r} is not a duration", 'write it like "30m", "4h" or "1h30m"')
    if isinstance(text, int | float):
        return int(text)
    m = _DURATION.match(str(text).strip().lower())
    if not m or not any(m.groups()):
        raise ConfigError(key, f"{text!r} is not a duration", 'write it like "30m", "4h" or "1h30m"')
    d, h, mi, s = (int(g or 0) for g in m.groups())
    return ((d * 24 + h) * 60 + mi) * 60 + s


def parse_timezone(name: Any, key: str) -> str:
    """Check that ``name`` is an IANA timezone and return it."""
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(key, f"{name!r} is not an IANA timezone", 'use a name like "Asia/Shanghai" or "UTC"') from None
    return str(name)


def parse_date(text: Any, key: str) -> date:
    """A date object or ``YYYY-MM-DD`` text -> the date."""
    try:
        return text if isinstance(text, date) else date.fromisoformat(str(text))
    except ValueError:
        raise ConfigError(key, f"{text!r} is not a date", 'write dates as "2026-10-01"') from None


def parse_interval(text: str, key: str) -> tuple[int, int]:
    """``09:00-12:00`` -> (start, end) in minutes after local midnight; ``24:00`` may end a day."""
    m = _INTERVAL.match(str(text).strip())
    if not m:
        raise ConfigError(key, f"{text!r} is not a working interval", 'write "09:00-12:00"')
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if not (0 <= start < end <= 24 * 60 and m1 < 60 and m2 < 60):
        raise ConfigError(key, f"{text!r} must end after it starts, within one day",
                          'split a night shift into "22:00-24:00" and "00:00-06:00"')
    return start, end


@dataclass(frozen=True)
class CalendarSpec:
    """A business calendar: working minutes per weekday, holidays and make-up days, in one timezone."""

    name: str
    timezone: str
    hours: Mapping[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)  # weekday -> minutes
    holidays: frozenset[date] = frozenset()
    country: str | None = None
    subdivision: str | None = None
    extra_workdays: Mapping[date, int] = field(default_factory=dict)  # date -> weekday whose hours apply
    always_open: bool = False

    @classmethod
    def always(cls, timezone: str = "UTC") -> CalendarSpec:
        """The built-in ``24x7`` calendar: business time equals calendar time."""
        return cls(name=ALWAYS_OPEN, timezone=timezone, always_open=True)


#: The ticket values an ``[[sla]]`` policy may name (KPIS.md 3, SLA policy): ``category`` is the final category,
#: ``team`` the credited team, the others the ticket's own columns (``priority``: the one in effect at the stop).
SLA_CONDITIONS = ("ticket_type", "priority", "client", "service", "category", "team", "source")


@dataclass(frozen=True)
class SlaPolicy:
    """One ``[[sla]]`` entry: a name, the values each named condition accepts, targets, calendar and pauses.

    ``conditions`` holds only the conditions the entry names (an omitted or ``"*"`` one matches every ticket);
    ``calendar`` None = the default calendar; ``pause_statuses`` None = ``[kpi].pause_statuses``.
    """

    name: str
    conditions: Mapping[str, tuple[str, ...]]
    response_s: int | None
    resolution_s: int | None
    calendar: str | None = None
    pause_statuses: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ScorecardEntry:
    """One ``[[scorecard]]`` entry: a kpi_engineer column with its target and weight."""

    kpi: str
    target: float
    weight: float
    higher_is_better: bool


@dataclass(frozen=True)
class KpiSettings:
    """Everything ``kpis`` needs to turn canonical frames into facts and aggregates."""

    calendars: Mapping[str, CalendarSpec] = field(default_factory=lambda: {ALWAYS_OPEN: CalendarSpec.always()})
    default_calendar: str = ALWAYS_OPEN
    sla: tuple[SlaPolicy, ...] = ()
    pause_statuses: tuple[str, ...] = DEFAULT_PAUSE_STATUSES
    resolution_counts_as_response: bool = True
    failed_close_codes: frozenset[str] = frozenset(DEFAULT_FAILED_CLOSE_CODES)
    satisfaction_map: Mapping[str, float] = field(default_factory=dict)
    ticket_types: tuple[str, ...] = TICKET_TYPES
    reporting_timezone: str = "UTC"
    grains: tuple[str, ...] = GRAINS
    min_sample: int = 10
    breakdowns: tuple[str, ...] = DEFAULT_BREAKDOWNS
    scorecard: tuple[ScorecardEntry, ...] = ()

    def calendar_for(self, name: str | None) -> CalendarSpec:
        """The named calendar, or the default one when ``name`` is None."""
        return self.calendars[name or self.default_calendar]


#: The settings that per-ticket facts depend on; the others only shape the aggregates.
_FACT_SETTINGS = ("calendars", "default_calendar", "sla", "pause_statuses", "resolution_counts_as_response",
                  "failed_close_codes", "satisfaction_map", "ticket_types")


def facts_fingerprint(settings: KpiSettings) -> str:
    """A digest of everything ``compute_facts`` reads from the settings, plus the KPI definitions' version.

    Equal fingerprints mean stored facts of a ticket whose input did not change are still right, so a
    nightly run may recompute only the changed ones (pipeline/refresh.py).
    """
    payload = {name: _canonical(getattr(settings, name)) for name in _FACT_SETTINGS}
    payload["kpi_version"] = KPI_VERSION
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tables_fingerprint(settings: KpiSettings) -> str:
    """A digest of every KPI setting, also those that only shape the KPI tables (the reporting timezone,
    grains, ``min_sample``, breakdowns, the scorecard), plus the KPI definitions' version.

    Equal fingerprints mean the stored KPI tables were computed with these settings, so a nightly run may
    recompute only the groups its changes touch (pipeline/groups.py); else it recomputes every period.
    """
    return hashlib.sha256(settings_to_json(settings).encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    """A JSON-ready form of a settings value that does not depend on set or dict order."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return sorted([str(k), _canonical(v)] for k, v in value.items())
    if isinstance(value, (set, frozenset)):
        return sorted(str(v) for v in value)
    if isinstance(value, (tuple, list)):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def settings_to_json(settings: KpiSettings) -> str:
    """``settings`` as JSON text that ``settings_from_json`` reads back into equal settings (same fingerprint).

    A run stores it with its results (``store_state``), so that ``itsm-kpi explain`` recomputes a ticket with
    the settings the run used, from the store alone.
    """
    payload = {f.name: _canonical(getattr(settings, f.name)) for f in dataclasses.fields(settings)}
    payload["kpi_version"] = KPI_VERSION
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def settings_from_json(text: str) -> KpiSettings:
    """The settings ``settings_to_json`` wrote (``ValueError`` for text it did not write)."""
    data = json.loads(text)
    try:
        return KpiSettings(
            calendars={name: _calendar(spec) for name, spec in data["calendars"]},
            default_calendar=data["default_calendar"],
            sla=tuple(_policy(p) for p in data["sla"]),
            pause_statuses=tuple(data["pause_statuses"]),
            resolution_counts_as_response=bool(data["resolution_counts_as_response"]),
            failed_close_codes=frozenset(data["failed_close_codes"]),
            satisfaction_map={k: float(v) for k, v in data["satisfaction_map"]},
            ticket_types=tuple(data["ticket_types"]),
            reporting_timezone=data["reporting_timezone"],
            grains=tuple(data["grains"]),
            min_sample=int(data["min_sample"]),
            breakdowns=tuple(data["breakdowns"]),
            scorecard=tuple(ScorecardEntry(**e) for e in data["scorecard"]),
        )
    except (KeyError, TypeError) as e:
        raise ValueError(f"not stored KPI settings: {e}") from None


def _calendar(spec: Mapping[str, Any]) -> CalendarSpec:
    return CalendarSpec(
        name=spec["name"], timezone=spec["timezone"],
        hours={int(day): tuple(tuple(i) for i in intervals) for day, intervals in spec["hours"]},
        holidays=frozenset(date.fromisoformat(d) for d in spec["holidays"]),
        country=spec["country"], subdivision=spec["subdivision"],
        extra_workdays={date.fromisoformat(d): int(w) for d, w in spec["extra_workdays"]},
        always_open=bool(spec["always_open"]),
    )


def _policy(policy: Mapping[str, Any]) -> SlaPolicy:
    pauses = policy["pause_statuses"]
    return SlaPolicy(name=policy["name"], conditions={k: tuple(v) for k, v in policy["conditions"]},
                     response_s=policy["response_s"], resolution_s=policy["resolution_s"],
                     calendar=policy["calendar"], pause_statuses=None if pauses is None else tuple(pauses))
