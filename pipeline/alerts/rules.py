"""What one ``[[alerts]]`` entry asks for (CONTRACT.md, Alerts), as the alerts package reads it."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("breached", "due_soon", "below_target", "run_failed")
FORMATS = ("json", "wecom", "dingtalk", "slack", "teams")
DEFAULT_DUE_WITHIN_S = 4 * 3600


@dataclass(frozen=True)
class AlertRule:
    """One webhook: where it posts (the URL comes from the environment only), how, and about what."""

    name: str
    url_env: str
    format: str = "json"
    on: tuple[str, ...] = KINDS
    due_within_s: int = DEFAULT_DUE_WITHIN_S
    secret_env: str | None = None  # DingTalk signing secret
    team: tuple[str, ...] = ()  # only these credited teams' tickets (empty: every team)
    client: tuple[str, ...] = ()  # only these clients' tickets (empty: every client)


@dataclass(frozen=True)
class AlertContext:
    """What every message needs besides its items: when, in which language, where the report is."""

    as_of_iso: str
    language: str = "zh"
    timezone: str = "UTC"
    report_url: str | None = None
