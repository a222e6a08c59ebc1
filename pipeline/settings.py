"""The typed configuration: a TOML file plus ``ITSM_KPI_`` environment overrides, validated once.

Every value can come from the environment: ``ITSM_KPI_<SECTION>__<KEY>`` (``__`` separates levels,
``ITSM_KPI_SOURCES__0__PATH`` addresses the first source). Values are read as TOML scalars when they
parse as such (numbers, booleans, arrays), else as strings. Secrets (passwords, tokens, database URLs
with passwords) must come from the environment: a config *file* that holds one is refused.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from connectors.base import SourceConfig
from kpis.config import KpiSettings, check_keys, parse_duration, parse_timezone
from kpis.errors import ConfigError

ENV_PREFIX = "ITSM_KPI_"
DEFAULT_CONFIG = Path("itsm-kpi.toml")
_SECTIONS = ("store", "reporting", "schedule", "kpi", "calendars", "sla", "sources", "scorecard", "run")


@dataclass(frozen=True)
class StoreSettings:
    """Where the results go."""

    path: Path
    sql_url: str


@dataclass(frozen=True)
class ScheduleSettings:
    """When the nightly job runs."""

    cron: str = "15 1 * * *"
    timezone: str = "UTC"


@dataclass(frozen=True)
class RunSettings:
    """How runs behave: overlap of incremental pulls, waiting for the run lock, the share of a source's
    rows that may be rejected before the run fails (exit 6)."""

    overlap_s: int = 3600
    lock_wait_s: int = 600
    stale_lock_s: int = 900
    max_reject_ratio: float = 0.5


@dataclass(frozen=True)
class Settings:
    """The whole validated configuration."""

    store: StoreSettings
    kpi: KpiSettings
    sources: tuple[SourceConfig, ...]
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    run: RunSettings = field(default_factory=RunSettings)

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``path`` (default ``./itsm-kpi.toml``), apply environment overrides, validate."""
        env = os.environ if env is None else env
        path = path or DEFAULT_CONFIG
        raw = _read_toml(path)
        _refuse_file_secrets(raw, path)
        return cls.from_mapping(apply_env_overrides(raw, env))

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> Settings:
        """Validate an already-merged config mapping."""
        for key in cfg:
            if key not in _SECTIONS:
                raise ConfigError(key, "is not a config section", f"use {', '.join(_SECTIONS)}")
        sources = tuple(SourceConfig.from_config(i, s) for i, s in enumerate(cfg.get("sources", [])))
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ConfigError("sources", "two sources share a name", "give every [[sources]] a unique name")
        return cls(store=_store(cfg.get("store", {})), kpi=KpiSettings.from_config(cfg), sources=sources,
                   schedule=_schedule(cfg.get("schedule", {})), run=_run(cfg.get("run", {})))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError("--config", f"{path} does not exist",
                          "pass --config FILE or create itsm-kpi.toml (see config/example.toml)") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("--config", f"{path} is not valid TOML: {e}", "fix the syntax at that line") from None


def _refuse_file_secrets(raw: Mapping[str, Any], path: Path) -> None:
    url = str(raw.get("store", {}).get("sql_url", ""))
    if urlsplit(url).password:
        raise ConfigError("store.sql_url", f"{path} holds a database password",
                          "remove it and set ITSM_KPI_STORE__SQL_URL in the environment instead")
    for i, source in enumerate(raw.get("sources", [])):
        for key in ("password", "token", "api_key", "secret"):
            if key in source:
                raise ConfigError(f"sources[{i}].{key}", "secrets are not read from the config file",
                                  f"put it in an environment variable and name it with {key.split('_')[0]}_env")


def apply_env_overrides(raw: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with every ``ITSM_KPI_A__B__C=value`` applied at ``a.b.c``."""
    merged: dict[str, Any] = _deep_copy(raw)
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
        if path and path[0] in _SECTIONS:
            _set_path(merged, path, env[name])
    return merged


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _set_path(target: Any, path: list[str], value: Any) -> None:
    key = ".".join(path)
    for i, part in enumerate(path[:-1]):
        nxt: Any = [] if path[i + 1].isdigit() else {}
        if isinstance(target, list):
            index = int(part)
            if index >= len(target):
                raise ConfigError(key, f"there is no entry {index}", "add the entry to the config file first")
            target = target[index]
        else:
            target = target.setdefault(part, nxt)
    key_name = path[-1]
    if isinstance(target, list):
        index = int(key_name)
        target[index] = _typed(value, target[index] if index < len(target) else None, key_name)
    else:
        target[key_name] = _typed(value, target.get(key_name), key_name)


# Settings that are always text, whatever an environment value for them looks like.
_TEXT_KEYS = frozenset({"path", "events_path", "sql_url", "name", "kind", "url", "username", "password_env",
                        "token_env", "timezone", "cron", "layout", "encoding", "sheet", "events_sheet",
                        "timestamp_format", "default_calendar", "default_ticket_type", "start", "calendar",
                        "ticket_type", "priority", "response", "resolution", "overlap", "lock_wait", "stale_lock"})


def _typed(text: str, current: Any, key: str) -> Any:
    """An environment value as the setting it replaces: text stays text; else read as a TOML value."""
    if isinstance(current, str) or key in _TEXT_KEYS:
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _store(cfg: Mapping[str, Any]) -> StoreSettings:
    check_keys("store", cfg, {"path", "sql_url"})
    path = Path(cfg.get("path", "kpi-store"))
    sql_url = str(cfg.get("sql_url", f"sqlite:///{path / 'kpi.sqlite'}"))
    if "://" not in sql_url:
        raise ConfigError("store.sql_url", f"{sql_url!r} is not a SQLAlchemy URL",
                          'e.g. "sqlite:///kpi-store/kpi.sqlite" or "postgresql+psycopg://user@host/db"')
    return StoreSettings(path=path, sql_url=sql_url)


def _schedule(cfg: Mapping[str, Any]) -> ScheduleSettings:
    check_keys("schedule", cfg, {"cron", "timezone"})
    cron = str(cfg.get("cron", ScheduleSettings.cron))
    if len(cron.split()) != 5:
        raise ConfigError("schedule.cron", f"{cron!r} is not a 5-field cron expression", 'e.g. "15 1 * * *"')
    return ScheduleSettings(cron=cron, timezone=parse_timezone(cfg.get("timezone", "UTC"), "schedule.timezone"))


def _run(cfg: Mapping[str, Any]) -> RunSettings:
    check_keys("run", cfg, {"overlap", "lock_wait", "stale_lock", "max_reject_ratio"})
    return RunSettings(
        overlap_s=parse_duration(cfg.get("overlap", "1h"), "run.overlap"),
        lock_wait_s=parse_duration(cfg.get("lock_wait", "10m"), "run.lock_wait"),
        stale_lock_s=parse_duration(cfg.get("stale_lock", "15m"), "run.stale_lock"),
        max_reject_ratio=_ratio(cfg.get("max_reject_ratio", RunSettings.max_reject_ratio), "run.max_reject_ratio"),
    )


def _ratio(value: Any, key: str) -> float:
    """A share from 0 to 1."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(key, f"{value!r} is not a share from 0 to 1", "e.g. 0.5: fail when over half the rows are rejected")
    return float(value)
