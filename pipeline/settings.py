"""The typed configuration the pipeline runs with: frozen dataclasses, one per config section.

They are built once, at start, by ``pipeline/config`` (one typed model of the whole file, environment
overrides included, every problem reported at once). ``Settings.load`` reads a TOML file;
``Settings.from_mapping`` takes an already-read mapping (the demo's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.base import SourceConfig
from kpis.config import KpiSettings

DEFAULT_CONFIG = Path("itsm-kpi.toml")


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
    """How runs behave: overlap of incremental pulls, the run lock, rejected rows, metrics."""

    overlap_s: int = 3600
    lock_wait_s: int = 600
    stale_lock_s: int = 900
    max_reject_ratio: float = 0.5
    metrics_file: Path | None = None


@dataclass(frozen=True)
class ReportingSettings:
    """What the report and the alerts need beyond the KPI settings (``breakdowns`` are in ``KpiSettings``)."""

    language: str = "zh"
    report_url: str | None = None


@dataclass(frozen=True)
class QuerySettings:
    """Analyst SQL."""

    timeout_s: int = 60


@dataclass(frozen=True)
class AdjustmentsSettings:
    """Where approved exemptions are read from (KPIS.md 1.4)."""

    path: str
    timezone: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    scope_map: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertSettings:
    """One ``[[alerts]]`` webhook; its URL is read from ``url_env`` when it is posted, never stored."""

    name: str
    url_env: str
    format: str = "json"
    on: tuple[str, ...] = ("breached", "due_soon", "below_target", "run_failed")
    due_within_s: int = 4 * 3600
    secret_env: str | None = None
    team: tuple[str, ...] = ()
    client: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComputeSettings:
    """Where the computation runs."""

    engine: str = "local"
    partitions: int = 1
    scheduler: str | None = None
    workers: int | None = None


@dataclass(frozen=True)
class Settings:
    """The whole validated configuration."""

    store: StoreSettings
    kpi: KpiSettings
    sources: tuple[SourceConfig, ...]
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    run: RunSettings = field(default_factory=RunSettings)
    reporting: ReportingSettings = field(default_factory=ReportingSettings)
    query: QuerySettings = field(default_factory=QuerySettings)
    adjustments: AdjustmentsSettings | None = None
    alerts: tuple[AlertSettings, ...] = ()
    compute: ComputeSettings = field(default_factory=ComputeSettings)

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None, *,
             require_secrets: bool = False) -> Settings:
        """Read ``path`` (default ``./itsm-kpi.toml``), apply environment overrides, check everything.

        Raises ``ConfigProblems`` (a ``ConfigError``) listing every problem. With ``require_secrets`` the
        variables REST sources take their secrets from must be set (commands that pull).
        """
        from pipeline.config import load_settings  # noqa: PLC0415 (pipeline.config builds these classes)

        return load_settings(path or DEFAULT_CONFIG, env, require_secrets=require_secrets)

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
        """Check and build an already-read config mapping (no file, no line numbers)."""
        from pipeline.config import settings_from_mapping  # noqa: PLC0415

        return settings_from_mapping(cfg, env if env is not None else {})
