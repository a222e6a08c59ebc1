"""Environment overrides: ``ITSM_KPI_<SECTION>__<KEY>=value`` laid over the file, checked by the same model.

``__`` separates levels and a number addresses an array entry (``ITSM_KPI_SOURCES__0__PATH``); names are
lower-cased. A variable without ``__`` is not an override (``ITSM_KPI_PG_BINDIR`` belongs to the test
tools). A value is read as a TOML value (numbers, booleans, arrays) unless the key takes only text, so
``ITSM_KPI_STORE__PATH=2026`` stays a folder name. ``ITSM_KPI_STORE__SQL_URL_FILE`` names a file holding
the SQL URL (a Docker/Kubernetes secret) when ``ITSM_KPI_STORE__SQL_URL`` is unset. Every override
remembers its variable, so a problem in its value names the variable rather than the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.secrets import SecretFileError, env_secret
from pipeline.config.errors import Path, Problem, did_you_mean
from pipeline.config.model import SECTIONS
from pipeline.config.schema import accepts_only_text

__all__ = ["ENV_PREFIX", "SQL_URL_VAR", "Overrides", "apply_overrides"]

ENV_PREFIX = "ITSM_KPI_"
SQL_URL_VAR = "ITSM_KPI_STORE__SQL_URL"


@dataclass
class Overrides:
    """The merged config, which variable set which key path, and the problems met on the way."""

    config: dict[str, Any]
    origins: dict[Path, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def origin_of(self, path: Path) -> str | None:
        """The variable that set ``path`` or one of its enclosing keys."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.origins:
                return self.origins[path[:end]]
        return None


def apply_overrides(raw: Mapping[str, Any], env: Mapping[str, str]) -> Overrides:
    """A copy of ``raw`` with every ``ITSM_KPI_A__B__C=value`` applied at ``a.b.c``."""
    result = Overrides(_deep_copy(raw))
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or "__" not in name[len(ENV_PREFIX):]:
            continue
        if name == SQL_URL_VAR + "_FILE":
            _sql_url_file(result, env)
            continue
        _apply(result, name, env[name])
    return result


def _sql_url_file(result: Overrides, env: Mapping[str, str]) -> None:
    """``ITSM_KPI_STORE__SQL_URL_FILE``: the URL from a file, when the variable itself is unset."""
    if env.get(SQL_URL_VAR):
        return
    try:
        url = env_secret(SQL_URL_VAR, env)
    except SecretFileError as e:
        result.problems.append(Problem(("store", "sql_url"), f"{e}; mount the secret there or unset it",
                                       origin=SQL_URL_VAR + "_FILE"))
        return
    if url:
        result.config.setdefault("store", {})["sql_url"] = url
        result.origins[("store", "sql_url")] = SQL_URL_VAR + "_FILE"


def _apply(result: Overrides, name: str, value: str) -> None:
    parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
    path: Path = tuple(int(p) if p.isdigit() else p for p in parts)
    if not path or path[0] not in SECTIONS:
        result.problems.append(Problem(path[:1], f"unknown section{did_you_mean(str(path[0] if path else ''), SECTIONS)}",
                                       origin=name))
        return
    target: Any = result.config
    for depth, step in enumerate(path[:-1]):
        target = _step_into(target, step, path[depth + 1])
        if target is None:
            result.problems.append(Problem(path[:depth + 1], f"there is no entry {step} to override; add the "
                                           "entry to the config file first", origin=name))
            return
    _set(target, path[-1], _typed(value, path))
    result.origins[path] = name


def _step_into(target: Any, step: str | int, following: str | int) -> Any:
    """The container at ``step`` (created as a table when missing); None when an array has no such entry."""
    if isinstance(target, list):
        return target[step] if isinstance(step, int) and step < len(target) else None
    if not isinstance(target, dict):
        return None
    key = str(step)
    if key not in target:
        target[key] = [] if isinstance(following, int) else {}
    return target[key]


def _set(target: Any, step: str | int, value: Any) -> None:
    if isinstance(target, list) and isinstance(step, int) and step < len(target):
        target[step] = value
    elif isinstance(target, dict):
        target[str(step)] = value


def _typed(text: str, path: Path) -> Any:
    """An environment value as TOML (numbers, booleans, arrays), except where the key takes only text."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    if isinstance(value, str) or accepts_only_text(path):
        return text
    return value


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
