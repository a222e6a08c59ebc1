"""Checks that look across keys: names used twice, a calendar or source that a key names but nobody
defines, credentials a REST source cannot run without, settings that only apply to another choice.

Each check reads the merged config as written (plain dicts and lists) and skips what has the wrong
shape: the model reports that by itself, so every problem is found in one pass.
"""

from __future__ import annotations

import glob
import importlib.util
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from connectors.options import REST_KINDS
from kpis.config import ALWAYS_OPEN, parse_interval
from kpis.errors import ConfigError
from kpis.schema import TICKET_TYPES
from pipeline.config.errors import Problem, did_you_mean

__all__ = ["CHECKS", "cross_checks"]


def _entries(raw: Mapping[str, Any], section: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(index, table) of an array of tables, skipping entries that are not tables."""
    items = raw.get(section)
    for i, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, Mapping):
            yield i, item


def _table(raw: Mapping[str, Any], section: str) -> Mapping[str, Any]:
    value = raw.get(section)
    return value if isinstance(value, Mapping) else {}


def _duplicates(raw: Mapping[str, Any], section: str, names: Callable[[int, Mapping[str, Any]], Any]) -> list[Problem]:
    seen: dict[str, int] = {}
    problems = []
    for i, item in _entries(raw, section):
        name = names(i, item)
        if not isinstance(name, str):
            continue
        if name in seen:
            problems.append(Problem((section, i, "name"), f"{name!r} is already the name of {section}[{seen[name]}]; "
                                    f"give every [[{section}]] entry its own name"))
        seen.setdefault(name, i)
    return problems


def unique_names(raw: Mapping[str, Any]) -> list[Problem]:
    """Sources, SLA policies (``sla_N`` by default) and alerts each need a name of their own."""
    return (_duplicates(raw, "sources", lambda i, s: s.get("name"))
            + _duplicates(raw, "sla", lambda i, p: p.get("name", f"sla_{i + 1}"))
            + _duplicates(raw, "alerts", lambda i, a: a.get("name")))


def calendars_defined(raw: Mapping[str, Any]) -> list[Problem]:
    """``kpi.default_calendar`` and every ``sla[].calendar`` name a calendar that exists."""
    known = [*_table(raw, "calendars"), ALWAYS_OPEN]
    wanted = [(("kpi", "default_calendar"), _table(raw, "kpi").get("default_calendar"))]
    wanted += [(("sla", i, "calendar"), p.get("calendar")) for i, p in _entries(raw, "sla")]
    return [Problem(path, f"calendar {name!r} is not defined{did_you_mean(name, known)}; add [calendars.{name}]")
            for path, name in wanted if isinstance(name, str) and name not in known]


def sla_sources_configured(raw: Mapping[str, Any]) -> list[Problem]:
    """An SLA ``source`` condition names configured sources (else it can never match); a mapping without any
    ``[[sources]]`` (the KPI sections alone, as the engine's tests use them) has none to check against."""
    if "sources" not in raw:
        return []
    names = [s.get("name") for _, s in _entries(raw, "sources") if isinstance(s.get("name"), str)]
    problems = []
    for i, policy in _entries(raw, "sla"):
        wanted = policy.get("source")
        for name in wanted if isinstance(wanted, list) else [wanted]:
            if isinstance(name, str) and name != "*" and name not in names:
                problems.append(Problem(("sla", i, "source"), f"{name!r} is not a configured source"
                                        f"{did_you_mean(name, names)}"))
    return problems


def default_ticket_types(raw: Mapping[str, Any]) -> list[Problem]:
    """``default_ticket_type`` is a ticket type, or a ``type_map`` label that maps to one."""
    problems = []
    for i, source in _entries(raw, "sources"):
        value = source.get("default_ticket_type")
        type_map = source.get("type_map") if isinstance(source.get("type_map"), Mapping) else {}
        if isinstance(value, str) and value not in TICKET_TYPES and value not in type_map:
            problems.append(Problem(("sources", i, "default_ticket_type"), f"{value!r} is not a ticket type"
                                    f"{did_you_mean(value, TICKET_TYPES)}; use one of {', '.join(TICKET_TYPES)} "
                                    "or a type_map label"))
    return problems


def rest_credentials(raw: Mapping[str, Any]) -> list[Problem]:
    """A REST source names exactly one variable for its secret: ``password_env`` or ``token_env``."""
    problems = []
    for i, source in _entries(raw, "sources"):
        if source.get("kind") not in REST_KINDS:
            continue
        named = [k for k in ("password_env", "token_env") if source.get(k)]
        if not named:
            problems.append(Problem(("sources", i, "password_env"), "is missing: name the environment variable "
                                    "holding the password (password_env) or the API token (token_env)"))
        elif len(named) == 2:
            problems.append(Problem(("sources", i, "token_env"), "is set together with password_env; keep the one "
                                    "this account authenticates with"))
    return problems


def activity_case_column(raw: Mapping[str, Any]) -> list[Problem]:
    """An activity log needs its case column: ``options.case_column``, else ``columns.ticket_id``."""
    problems = []
    for i, source in _entries(raw, "sources"):
        if source.get("layout") != "activity":
            continue
        options = source.get("options") if isinstance(source.get("options"), Mapping) else {}
        columns = source.get("columns") if isinstance(source.get("columns"), Mapping) else {}
        if not options.get("case_column") and not columns.get("ticket_id"):
            problems.append(Problem(("sources", i, "options", "case_column"), "is missing: name the column holding "
                                    'the case id, e.g. case_column = "Case ID" (or set columns.ticket_id)'))
    return problems


SCHEDULER_ADDRESS = re.compile(r"^((tcp|tls|ucx|ws|wss|inproc)://)?(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+)(:\d{1,5})?/?$")


def compute_engine(raw: Mapping[str, Any]) -> list[Problem]:
    """``scheduler`` and ``workers`` only mean something with ``engine = "dask"``; that engine needs Dask
    installed (the ``dask`` extra) and a ``scheduler`` that reads as an address."""
    compute = _table(raw, "compute")
    if compute.get("engine", "local") == "dask":
        problems = []
        if importlib.util.find_spec("distributed") is None:  # found, not imported: the local engine needs no Dask
            problems.append(Problem(("compute", "engine"), '"dask" needs Dask: pip install "itsm-kpi[dask]" '
                                    '(or set engine = "local")'))
        scheduler = compute.get("scheduler")
        if isinstance(scheduler, str) and not SCHEDULER_ADDRESS.match(scheduler):
            problems.append(Problem(("compute", "scheduler"), f"{scheduler!r} is not a scheduler address: write "
                                    'e.g. "tcp://dask-scheduler:8786" (or omit it to start a LocalCluster)'))
        return problems
    return [Problem(("compute", key), f"only applies with engine = \"dask\" (engine is {compute.get('engine', 'local')!r}); "
                    "set engine = \"dask\" or remove it") for key in ("scheduler", "workers") if key in compute]


def calendar_hours(raw: Mapping[str, Any]) -> list[Problem]:
    """A calendar's working intervals do not overlap, and some weekday has them (KPIS.md 2.1; D126)."""
    problems = []
    for name, calendar in _table(raw, "calendars").items():
        hours = calendar.get("hours", {}) if isinstance(calendar, Mapping) else None  # none given: none worked
        if not isinstance(hours, Mapping):
            continue
        days = {day: _intervals(items) for day, items in hours.items()}
        problems += [Problem(("calendars", name, "hours", day), message) for day, intervals in days.items()
                     if (message := _overlap(intervals))]
        if all(intervals == [] for intervals in days.values()):
            problems.append(Problem(("calendars", name, "hours"), "no weekday has working hours, so no business "
                                    "time would ever pass and no SLA on this calendar could be breached; give e.g. "
                                    'mon = ["09:00-12:00", "13:30-18:00"], or use the built-in "24x7"'))
    return problems


def _intervals(items: Any) -> list[tuple[int, int]] | None:
    """A day's intervals in minutes, in order; None when one is malformed (the model reports that)."""
    if not isinstance(items, list):
        return None
    try:
        return sorted(parse_interval(item, "") for item in items)
    except ConfigError:
        return None


def _overlap(intervals: list[tuple[int, int]] | None) -> str | None:
    for (start, end), (next_start, _) in zip(intervals or [], (intervals or [])[1:], strict=False):
        if next_start < end:
            return (f"working intervals overlap ({_hhmm(start)}-{_hhmm(end)} and from {_hhmm(next_start)}); "
                    'write each minute once, e.g. ["09:00-12:00", "13:30-18:00"]')
    return None


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def calendar_countries(raw: Mapping[str, Any]) -> list[Problem]:
    """A calendar's ``country`` (and ``subdivision``) is one the holidays package knows."""
    problems = []
    for name, calendar in _table(raw, "calendars").items():
        if not isinstance(calendar, Mapping):
            continue
        country, subdivision = calendar.get("country"), calendar.get("subdivision")
        if subdivision is not None and country is None:
            problems.append(Problem(("calendars", name, "subdivision"), "needs a country; add country = \"CN\" (say)"))
        if not isinstance(country, str):
            continue
        supported = _supported_countries()
        if country not in supported:
            problems.append(Problem(("calendars", name, "country"), f"{country!r} is not a country code of the "
                                    f"holidays package{did_you_mean(country, supported, listed=0)}; e.g. \"CN\""))
        elif isinstance(subdivision, str) and subdivision not in supported[country]:
            problems.append(Problem(("calendars", name, "subdivision"), f"{subdivision!r} is not a subdivision of "
                                    f"{country}{did_you_mean(subdivision, supported[country], listed=40)}"))
    return problems


def _supported_countries() -> dict[str, list[str]]:
    import holidays  # noqa: PLC0415 (only for calendars with a country)

    return {code: list(subdivisions) for code, subdivisions in holidays.list_supported_countries().items()}


def adjustments_path(raw: Mapping[str, Any]) -> list[Problem]:
    """An ``[adjustments].path`` naming one file (no glob, not a folder) names a file that exists: approvals
    that silently go missing would change the KPIs. A glob or folder with no files yet is fine (a warning
    when a run reads it)."""
    path = _table(raw, "adjustments").get("path")
    if not isinstance(path, str) or not path or glob.has_magic(path) or Path(path).exists():
        return []
    return [Problem(("adjustments", "path"), f"{path!r} does not exist; create the approvals file, or name a folder "
                    "or a glob (e.g. \"exemptions/*.xlsx\") that may hold none yet (relative paths start at the "
                    "working directory)")]


CHECKS: tuple[Callable[[Mapping[str, Any]], list[Problem]], ...] = (
    unique_names, calendars_defined, sla_sources_configured, default_ticket_types, rest_credentials,
    activity_case_column, compute_engine, calendar_hours, calendar_countries, adjustments_path,
)


def cross_checks(raw: Mapping[str, Any]) -> list[Problem]:
    """Every cross-key problem of the merged config."""
    return [problem for check in CHECKS for problem in check(raw)]
