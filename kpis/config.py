"""Typed KPI settings, built once from the plain config mapping (the TOML's sections).

``KpiSettings.from_config(cfg)`` reads the ``[kpi]``, ``[reporting]``, ``[calendars.*]``, ``[[sla]]``
and ``[[scorecard]]`` sections and fails with a ``ConfigError`` naming the key and the fix.
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
from kpis.schema import GRAINS, KPI_ENGINEER_COLUMNS, KPI_VERSION, PRIORITIES, STATUSES, TICKET_TYPES

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


def check_keys(section: str, cfg: Mapping[str, Any], allowed: set[str] | frozenset[str]) -> None:
    """Refuse a key the section does not know, naming it: a typo must not silently fall back to a default."""
    for key in cfg:
        if key not in allowed:
            raise ConfigError(f"{section}.{key}", "is not a setting", f"use one of {', '.join(sorted(allowed))}")


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


def _parse_date(text: Any, key: str) -> date:
    try:
        return text if isinstance(text, date) else date.fromisoformat(str(text))
    except ValueError:
        raise ConfigError(key, f"{text!r} is not a date", 'write dates as "2026-10-01"') from None


def _parse_interval(text: str, key: str) -> tuple[int, int]:
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

    @classmethod
    def from_config(cls, name: str, cfg: Mapping[str, Any]) -> CalendarSpec:
        key = f"calendars.{name}"
        check_keys(key, cfg, {"timezone", "hours", "holidays", "country", "subdivision", "extra_workdays"})
        if "timezone" not in cfg:
            raise ConfigError(f"{key}.timezone", "is missing", "every calendar needs an IANA timezone")
        hours: dict[int, tuple[tuple[int, int], ...]] = {}
        for day, intervals in dict(cfg.get("hours", {})).items():
            if day not in WEEKDAYS:
                raise ConfigError(f"{key}.hours.{day}", "is not a weekday", f"use one of {', '.join(WEEKDAYS)}")
            items = [intervals] if isinstance(intervals, str) else list(intervals)
            hours[WEEKDAYS.index(day)] = tuple(sorted(_parse_interval(i, f"{key}.hours.{day}") for i in items))
        extra = {}
        for d, weekday in dict(cfg.get("extra_workdays", {})).items():
            if weekday not in WEEKDAYS:
                raise ConfigError(f"{key}.extra_workdays.{d}", f"{weekday!r} is not a weekday",
                                  f"name the weekday whose hours apply: {', '.join(WEEKDAYS)}")
            extra[_parse_date(d, f"{key}.extra_workdays")] = WEEKDAYS.index(weekday)
        return cls(
            name=name,
            timezone=parse_timezone(cfg["timezone"], f"{key}.timezone"),
            hours=hours,
            holidays=frozenset(_parse_date(d, f"{key}.holidays") for d in cfg.get("holidays", [])),
            country=cfg.get("country"),
            subdivision=cfg.get("subdivision"),
            extra_workdays=extra,
        )


#: The ticket values an ``[[sla]]`` policy may name (KPIS.md 3, SLA policy): ``category`` is the final category,
#: ``team`` the credited team, the others the ticket's own columns (``priority``: the one in effect at the stop).
SLA_CONDITIONS = ("ticket_type", "priority", "client", "service", "category", "team", "source")
_SLA_SETTINGS = frozenset({"name", "response", "resolution", "calendar", "pause_statuses", *SLA_CONDITIONS})
#: Values a condition's text must come from, where the canonical frames fix them.
_CONDITION_DOMAINS = {"ticket_type": TICKET_TYPES, "priority": PRIORITIES}
ANY = "*"  # a condition written "*" matches every ticket, as one that is omitted (v1 configs, DECISIONS.md D12)


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

    @classmethod
    def from_config(cls, i: int, cfg: Mapping[str, Any]) -> SlaPolicy:
        """Entry ``i`` (0-based) of ``[[sla]]``; its name defaults to ``sla_<i + 1>``."""
        name = cfg.get("name", f"sla_{i + 1}")
        key = f"sla[{i}]"
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{key}.name", f"{name!r} is not a policy name", 'name it like "acme-core-P1"')
        for k in cfg:
            if k not in _SLA_SETTINGS:
                raise ConfigError(f"{key}.{k}", f"is not a setting of SLA policy {name!r}",
                                  f"use one of {', '.join(sorted(_SLA_SETTINGS))}")
        response, resolution, pauses = cfg.get("response"), cfg.get("resolution"), cfg.get("pause_statuses")
        return cls(
            name=name,
            conditions=_conditions(cfg, key, name),
            response_s=None if response is None else parse_duration(response, f"{key}.response"),
            resolution_s=None if resolution is None else parse_duration(resolution, f"{key}.resolution"),
            calendar=cfg.get("calendar"),
            pause_statuses=None if pauses is None else _parse_statuses(pauses, f"{key}.pause_statuses"),
        )


def _conditions(cfg: Mapping[str, Any], key: str, policy: str) -> dict[str, tuple[str, ...]]:
    """The conditions an ``[[sla]]`` entry names, in ``SLA_CONDITIONS`` order (``"*"`` ones left out)."""
    conditions = {}
    for condition in SLA_CONDITIONS:
        if condition in cfg:
            values = _condition_values(cfg[condition], f"{key}.{condition}", policy, condition)
            if values is not None:
                conditions[condition] = values
    return conditions


def _condition_values(raw: Any, key: str, policy: str, condition: str) -> tuple[str, ...] | None:
    """One value or a list of values -> a tuple of texts; None for ``"*"`` (any value)."""
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list | tuple) or not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise ConfigError(key, f"{raw!r} is not a value or a list of values (SLA policy {policy!r})",
                          f'write {condition} = "..." or {condition} = ["...", "..."]')
    if ANY in values:
        return None
    domain = _CONDITION_DOMAINS.get(condition)
    for v in values:
        if domain is not None and v not in domain:
            raise ConfigError(key, f"{v!r} is unknown (SLA policy {policy!r})", f"use one of {', '.join(domain)}")
    return tuple(dict.fromkeys(values))


def _parse_sla(policies: Any, calendars: Mapping[str, CalendarSpec]) -> tuple[SlaPolicy, ...]:
    """Every ``[[sla]]`` entry, in config order: names unique, calendars defined."""
    sla = tuple(SlaPolicy.from_config(i, p) for i, p in enumerate(policies))
    first_with: dict[str, int] = {}
    for i, p in enumerate(sla):
        if p.name in first_with:
            raise ConfigError(f"sla[{i}].name", f"{p.name!r} is already the name of sla[{first_with[p.name]}]",
                              "give every SLA policy its own name")
        first_with[p.name] = i
        if p.calendar is not None and p.calendar not in calendars:
            raise ConfigError(f"sla[{i}].calendar", f"{p.calendar!r} is not defined (SLA policy {p.name!r})",
                              f"add [calendars.{p.calendar}] or use one of {', '.join(calendars)}")
    return sla


@dataclass(frozen=True)
class ScorecardEntry:
    """One ``[[scorecard]]`` entry: a kpi_engineer column with its target and weight."""

    kpi: str
    target: float
    weight: float
    higher_is_better: bool

    @classmethod
    def from_config(cls, i: int, cfg: Mapping[str, Any], known_kpis: set[str]) -> ScorecardEntry:
        key = f"scorecard[{i}]"
        check_keys(key, cfg, {"kpi", "target", "weight", "higher_is_better"})
        kpi = cfg.get("kpi")
        if kpi not in known_kpis:
            raise ConfigError(f"{key}.kpi", f"{kpi!r} is not a KPI", "name a kpi_engineer column, e.g. first_fix_rate")
        for k in ("target", "weight"):
            if not isinstance(cfg.get(k), int | float) or isinstance(cfg.get(k), bool):
                raise ConfigError(f"{key}.{k}", "is missing or not a number", f"give the {k} as a number")
        if cfg["weight"] <= 0:
            raise ConfigError(f"{key}.weight", "must be above 0", "drop the entry instead of weighting it 0")
        default_direction = not kpi.startswith(LOWER_IS_BETTER_PREFIXES)
        return cls(kpi=kpi, target=float(cfg["target"]), weight=float(cfg["weight"]),
                   higher_is_better=bool(cfg.get("higher_is_better", default_direction)))


def _parse_satisfaction_map(raw: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for label, score in dict(raw).items():
        if not isinstance(score, int | float) or isinstance(score, bool) or not 1 <= score <= 5:
            raise ConfigError(f"kpi.satisfaction_map.{label}", f"{score!r} is not a score from 1 to 5",
                              "map every survey answer to a number from 1 to 5")
        out[str(label)] = float(score)
    return out


def _parse_statuses(values: Any, key: str) -> tuple[str, ...]:
    values = tuple(values)
    for v in values:
        if v not in STATUSES:
            raise ConfigError(key, f"{v!r} is not a canonical status", f"use one of {', '.join(STATUSES)}")
    return values


def _parse_breakdowns(values: Any) -> tuple[str, ...]:
    """``[reporting].breakdowns``: known dimensions, each once."""
    values = [values] if isinstance(values, str) else list(values)
    for i, v in enumerate(values):
        if v not in BREAKDOWN_DIMENSIONS:
            raise ConfigError("reporting.breakdowns", f"{v!r} is not a dimension",
                              f"use {', '.join(BREAKDOWN_DIMENSIONS)}")
        if v in values[:i]:
            raise ConfigError("reporting.breakdowns", f"{v!r} is listed twice", "list each dimension once")
    return tuple(values)


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

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> KpiSettings:
        """Build the settings from the whole config mapping (TOML sections)."""
        kpi = dict(cfg.get("kpi", {}))
        reporting = dict(cfg.get("reporting", {}))
        check_keys("kpi", kpi, {"default_calendar", "pause_statuses", "resolution_counts_as_response",
                                "failed_close_codes", "satisfaction_map", "ticket_types"})
        check_keys("reporting", reporting, {"timezone", "grains", "min_sample", "breakdowns"})
        calendars = {name: CalendarSpec.from_config(name, c) for name, c in dict(cfg.get("calendars", {})).items()}
        default_calendar = kpi.get("default_calendar", ALWAYS_OPEN)
        calendars.setdefault(ALWAYS_OPEN, CalendarSpec.always(reporting.get("timezone", "UTC")))
        if default_calendar not in calendars:
            raise ConfigError("kpi.default_calendar", f"{default_calendar!r} is not defined",
                              f"add [calendars.{default_calendar}] or use one of {', '.join(calendars)}")
        sla = _parse_sla(cfg.get("sla", []), calendars)
        grains = tuple(reporting.get("grains", GRAINS))
        for g in grains:
            if g not in GRAINS:
                raise ConfigError("reporting.grains", f"{g!r} is not a grain", f"use {', '.join(GRAINS)}")
        ticket_types = tuple(kpi.get("ticket_types", TICKET_TYPES))
        for t in ticket_types:
            if t not in TICKET_TYPES:
                raise ConfigError("kpi.ticket_types", f"{t!r} is not a ticket type", f"use {', '.join(TICKET_TYPES)}")
        min_sample = reporting.get("min_sample", 10)
        if not isinstance(min_sample, int) or isinstance(min_sample, bool) or min_sample < 0:
            raise ConfigError("reporting.min_sample", f"{min_sample!r} is not a whole number >= 0", "e.g. min_sample = 10")
        known = {c.name for c in KPI_ENGINEER_COLUMNS.values() if c.dtype in ("Int64", "Float64")}
        return cls(
            calendars=calendars,
            default_calendar=default_calendar,
            sla=sla,
            pause_statuses=_parse_statuses(kpi.get("pause_statuses", DEFAULT_PAUSE_STATUSES), "kpi.pause_statuses"),
            resolution_counts_as_response=bool(kpi.get("resolution_counts_as_response", True)),
            failed_close_codes=frozenset(str(c) for c in kpi.get("failed_close_codes", DEFAULT_FAILED_CLOSE_CODES)),
            satisfaction_map=_parse_satisfaction_map(kpi.get("satisfaction_map", {})),
            ticket_types=ticket_types,
            reporting_timezone=parse_timezone(
                reporting.get("timezone", calendars[default_calendar].timezone), "reporting.timezone"),
            grains=grains,
            min_sample=min_sample,
            breakdowns=_parse_breakdowns(reporting.get("breakdowns", DEFAULT_BREAKDOWNS)),
            scorecard=tuple(ScorecardEntry.from_config(i, e, known) for i, e in enumerate(cfg.get("scorecard", []))),
        )


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
