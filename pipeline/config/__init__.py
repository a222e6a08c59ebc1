"""The config file at the door: one typed model of every section, checked once, before anything runs.

    load_settings(path, env)   -> Settings (the dataclasses the pipeline runs with)
    load_config(path, env)     -> Loaded (the validated model, for ``config show``)
    config_schema()            -> the JSON Schema (draft 2020-12) of the file

Every problem is reported at once as a ``ConfigProblems`` (a ``ConfigError``: exit 2), each problem one
line naming the file or environment variable, the key path, the line where the scan finds it, and what
to do. Modules: ``model`` and ``sources`` (the pydantic model; connector options come from
``connectors/options.py``), ``types`` (value types), ``messages`` (errors in words), ``check`` (across
keys), ``env`` (``ITSM_KPI_`` overrides), ``locate`` (line numbers), ``load``, ``build`` (the model ->
``Settings``), ``schema`` (JSON Schema), ``show`` (the effective config).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kpis.config import CalendarSpec, KpiSettings
from pipeline.config.build import build_settings, kpi_settings, sla_policy
from pipeline.config.check import cross_checks
from pipeline.config.env import Overrides
from pipeline.config.errors import ConfigProblems, Problem
from pipeline.config.load import Loaded, load_config, place
from pipeline.config.messages import problems_from
from pipeline.config.model import KpiConfig
from pipeline.config.schema import config_schema
from pipeline.settings import Settings

__all__ = ["ConfigProblems", "Loaded", "Problem", "calendar_from_mapping", "config_schema", "kpi_settings_from_mapping",
           "load_config", "load_settings", "settings_from_mapping"]


def load_settings(path: Path, env: Mapping[str, str] | None = None, *, require_secrets: bool = False) -> Settings:
    """The settings of the config file ``path`` with ``env``'s overrides (default ``os.environ``)."""
    return build_settings(load_config(path, env, require_secrets=require_secrets).config)


def kpi_settings_from_mapping(raw: Mapping[str, Any]) -> KpiSettings:
    """``KpiSettings`` from a mapping with only the KPI sections (``[kpi]``, ``[reporting]``,
    ``[calendars.*]``, ``[[sla]]``, ``[[scorecard]]``): for code and tests that run the engine alone."""
    problems = cross_checks(raw)
    try:
        config = KpiConfig.model_validate(raw)
    except ValidationError as e:
        problems = problems_from(e, KpiConfig) + problems
        config = None
    if problems or config is None:
        raise ConfigProblems(place(problems, "config", None, Overrides(dict(raw))))
    return kpi_settings(config, tuple(sla_policy(i, entry) for i, entry in enumerate(config.sla)))


def calendar_from_mapping(name: str, raw: Mapping[str, Any]) -> CalendarSpec:
    """One calendar from its ``[calendars.NAME]`` table."""
    return kpi_settings_from_mapping({"calendars": {name: raw}}).calendars[name]


def settings_from_mapping(raw: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """The settings of an already-read config mapping."""
    return build_settings(load_config(None, env if env is not None else {}, raw=raw).config)
