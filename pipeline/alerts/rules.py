"""The alert kinds and formats (CONTRACT.md, Alerts), and what every message needs besides its items.

One ``[[alerts]]`` entry is a ``pipeline.settings.AlertSettings`` (built by the config model).
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("breached", "due_soon", "below_target", "run_failed")
FORMATS = ("json", "wecom", "dingtalk", "slack", "teams")


@dataclass(frozen=True)
class AlertContext:
    """What every message needs besides its items: when, in which language, where the report is."""

    as_of_iso: str
    language: str = "zh"
    timezone: str = "UTC"
    report_url: str | None = None
