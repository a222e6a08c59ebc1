"""Reading a config: the file, the environment, the model, the cross-key checks -- every problem at once.

    text -> TOML -> secrets refused -> ITSM_KPI_ overrides -> model + cross checks -> environment checks

Nothing here opens a store, reads a source or records a run: a config with a problem stops before.
Each problem is placed: the file (or the variable) it came from, the key path as the user reads it
(``sources['helpdesk']``) and, for the file, the line found by ``locate.key_lines``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from connectors.options import REST_KINDS
from connectors.secrets import FILE_SUFFIX, SecretFileError, env_secret
from kpis.schema import TABLE_COLUMNS
from pipeline.config.check import cross_checks
from pipeline.config.env import Overrides, apply_overrides
from pipeline.config.errors import ConfigProblems, Problem, display_path
from pipeline.config.locate import key_lines, line_of
from pipeline.config.messages import problems_from
from pipeline.config.model import Config

__all__ = ["Loaded", "load_config", "read_toml", "validate_mapping"]

_SECRET_KEYS = ("password", "token", "api_key", "secret")
#: What makes a folder a store: the SQLite file or a table's Parquet folder (not ``adjustments``: a folder of
#: approvals files may well be called so, and a store always has its other tables beside it).
_STORE_MARKERS = ("kpi.sqlite", *(t for t in TABLE_COLUMNS if t != "adjustments"), "raw_tickets", "raw_events")


class Loaded:
    """A checked config: the model, and the merged mapping it was built from (for ``config show``)."""

    def __init__(self, config: Config, merged: dict[str, Any]) -> None:
        self.config = config
        self.merged = merged


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """The parsed file and its text; ``ConfigProblems`` naming the file for anything unreadable."""
    label = str(path)
    if path.is_dir():
        raise ConfigProblems([Problem((), f"is a folder, not a config file; pass the file inside it, e.g. "
                                      f"--config {path / 'itsm-kpi.toml'}", origin=label)])
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigProblems([Problem((), "does not exist; pass --config FILE or create itsm-kpi.toml "
                                      "(see config/example.toml)", origin=label)]) from None
    except OSError as e:
        raise ConfigProblems([Problem((), f"cannot be read ({e.strerror}); check its permissions",
                                      origin=label)]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ConfigProblems([Problem((), f"is not UTF-8 text (byte 0x{data[e.start]:02x}); save it as UTF-8 "
                                      "(in Excel/WPS/Notepad: \"UTF-8\" encoding)", origin=label, line=line)]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        found = re.search(r"\(at line (\d+), column \d+\)", str(e))
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e)) or "syntax error"
        raise ConfigProblems([Problem((), f"is not valid TOML: {reason}; fix the syntax there", origin=label,
                                      line=int(found.group(1)) if found else None)]) from None
    except RecursionError:
        raise ConfigProblems([Problem((), "is not valid TOML: nested deeper than it can be read",
                                      origin=label)]) from None
    if not raw:
        raise ConfigProblems([Problem((), "has no settings; start from config/example.toml", origin=label)])
    return raw, text


def file_secrets(raw: Mapping[str, Any]) -> list[Problem]:
    """Secrets written into the file itself: a database password, a source's password or token."""
    problems = []
    store = raw.get("store") if isinstance(raw.get("store"), Mapping) else {}
    if isinstance(store.get("sql_url"), str) and _has_password(store["sql_url"]):
        problems.append(Problem(("store", "sql_url"), "holds a database password; remove it and set "
                                "ITSM_KPI_STORE__SQL_URL (or ITSM_KPI_STORE__SQL_URL_FILE) in the environment"))
    for i, source in enumerate(raw.get("sources") if isinstance(raw.get("sources"), list) else []):
        for key in _SECRET_KEYS:
            if isinstance(source, Mapping) and key in source:
                problems.append(Problem(("sources", i, key), "secrets are not read from the config file; put it in "
                                        f"an environment variable and name it with {key.split('_')[0]}_env"))
    return problems


def _has_password(url: str) -> bool:
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return False


def _without_secrets(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping without the secret keys already reported (no second, vaguer message for them)."""
    out = dict(raw)
    if isinstance(raw.get("sources"), list):
        out["sources"] = [{k: v for k, v in s.items() if k not in _SECRET_KEYS} if isinstance(s, Mapping) else s
                          for s in raw["sources"]]
    return out


def secret_variables(config: Config, env: Mapping[str, str], *, required: bool) -> list[Problem]:
    """``NAME_FILE`` files that cannot be read; with ``required``, REST secrets that are not set at all."""
    problems = []
    named = [(("sources", i, key), getattr(s, key)) for i, s in enumerate(config.sources) if s.kind in REST_KINDS
             for key in ("password_env", "token_env") if getattr(s, key)]
    named += [(("alerts", i, key), getattr(a, key)) for i, a in enumerate(config.alerts)
              for key in ("url_env", "secret_env") if getattr(a, key)]
    for path, variable in named:
        try:
            value = env_secret(variable, env)
        except SecretFileError as e:
            problems.append(Problem(path, f"{e}; mount the secret there or unset {variable}{FILE_SUFFIX}"))
            continue
        if value is None and required and path[0] == "sources":
            problems.append(Problem(path, f"environment variable {variable} is not set; export {variable}=... "
                                    f"(or {variable}{FILE_SUFFIX}=/path/to/secret) before running"))
    return problems


def _is_store(folder: Path, own_sqlite: Path | None) -> str | None:
    """The marker that makes ``folder`` another store's (a table folder, or a ``kpi.sqlite``), else None.

    A folder that holds this config's own SQLite database keeps databases: its SQLite files do not
    make it a store folder (the Parquet tables may live in a subfolder of it).
    """
    databases_here = own_sqlite is not None and own_sqlite.parent == folder
    for marker in _STORE_MARKERS:
        if (folder / marker).exists() and not (marker == "kpi.sqlite" and databases_here):
            return marker
    return None


def _own_sqlite(sql_url: str | None) -> Path | None:
    """The SQLite file of this config's SQL store (it may sit anywhere, also beside the Parquet folder)."""
    if not sql_url or not sql_url.startswith("sqlite:///"):
        return None
    return Path(sql_url.removeprefix("sqlite:///")).resolve()


def _shown(path: Path) -> str:
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def store_nesting(config: Config) -> list[Problem]:
    """A store inside another store's folder (or holding one) mixes their tables: refused."""
    given = Path(config.store.path)
    where, own = given.resolve(), _own_sqlite(config.store.sql_url)
    for parent in where.parents:
        marker = _is_store(parent, own)
        if marker is not None:
            return [Problem(("store", "path"), f"{str(given)!r} is inside the store at {_shown(parent)!r} (it holds "
                            f"{marker}); two stores in one folder mix their tables: use a folder of its own, e.g. "
                            f"{_shown(parent) + '-' + where.name!r}")]
    if where.is_dir():
        for child in sorted(p for p in where.iterdir() if p.is_dir() and p.name not in _STORE_MARKERS):
            marker = _is_store(child, own)
            if marker is not None:
                return [Problem(("store", "path"), f"{str(given)!r} holds another store in {child.name!r} (it has "
                                f"{marker}); move that store out of it, e.g. to {str(given) + '-' + child.name!r}")]
    return []


def validate_mapping(merged: Mapping[str, Any]) -> tuple[Config | None, list[Problem]]:
    """The model of ``merged`` (None when it does not validate) and every problem found."""
    problems = cross_checks(merged)
    try:
        config = Config.model_validate(merged)
    except ValidationError as e:
        return None, problems_from(e, Config) + problems
    return config, problems


def _names(merged: Mapping[str, Any]) -> dict[tuple[str, int], str]:
    out = {}
    for section in ("sources", "sla", "alerts"):
        items = merged.get(section)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, Mapping) and isinstance(item.get("name"), str):
                out[(section, i)] = item["name"]
    return out


def _as_written(path: tuple[str | int, ...], merged: Any) -> tuple[str | int, ...]:
    """``path`` without list indexes that point into a single value (``priority = "P9"``, not ``[0]``)."""
    out: list[str | int] = []
    node = merged
    for step in path:
        if isinstance(step, int) and not isinstance(node, list):
            continue
        out.append(step)
        if isinstance(node, Mapping):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            node = None
    return tuple(out)


def place(problems: list[Problem], label: str, text: str | None, overrides: Overrides) -> list[Problem]:
    """Each problem with its origin (file or variable), readable key path and line."""
    lines = key_lines(text) if text is not None else {}
    names = _names(overrides.config)
    placed = []
    for problem in problems:
        path = _as_written(problem.path, overrides.config)
        origin = problem.origin or overrides.origin_of(path) or label
        line = problem.line or (line_of(path, lines) if origin == label else None)
        placed.append(problem.placed(origin, display_path(path, names), line))
    return placed


def _in_order(problems: list[Problem], label: str) -> list[Problem]:
    """Environment problems first, then the file's from top to bottom (those without a line last)."""
    return sorted(problems, key=lambda p: (p.origin == label, p.line is None, p.line or 0))


def load_config(path: Path | None, env: Mapping[str, str] | None, *, require_secrets: bool = False,
                raw: Mapping[str, Any] | None = None, label: str = "config") -> Loaded:
    """Read and check a config file (or ``raw``, already read); ``ConfigProblems`` with every problem."""
    env = os.environ if env is None else env
    text = None
    if raw is None:
        assert path is not None
        raw, text = read_toml(path)
        label = str(path)
    try:
        problems = file_secrets(raw)
        overrides = apply_overrides(_without_secrets(raw), env)
        config, found = validate_mapping(overrides.config)
    except RecursionError:  # tables nested thousands deep: no config holds them
        raise ConfigProblems([Problem((), "holds tables nested deeper than a config can be; fix its keys",
                                      origin=label)]) from None
    problems += overrides.problems + found
    if config is not None:
        problems += secret_variables(config, env, required=require_secrets) + store_nesting(config)
    if problems or config is None:
        raise ConfigProblems(_in_order(place(problems, label, text, overrides), label))
    return Loaded(config, overrides.config)
