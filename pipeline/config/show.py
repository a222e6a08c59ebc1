"""``itsm-kpi config show``: the effective config as TOML -- defaults filled, overrides applied, secrets
redacted. The output is itself a valid config (a test loads it back).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from connectors.rest import PRESET_MAPS, load_preset
from pipeline.config.load import Loaded
from pipeline.config.sources import REST_KINDS

__all__ = ["effective", "redact_url", "to_toml"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
MASK = "***"


def redact_url(url: str) -> str:
    """A URL with its password replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{MASK}@{host}"))


def effective(loaded: Loaded) -> dict[str, Any]:
    """Every setting with its value in force (defaults included), secrets redacted."""
    data = loaded.config.model_dump(mode="python", exclude_none=True)
    store = data["store"]
    store.setdefault("sql_url", f"sqlite:///{store['path'].rstrip('/')}/kpi.sqlite")
    store["sql_url"] = redact_url(store["sql_url"])
    data["sources"] = [_first(_over_preset(source), ("name", "kind", "layout")) for source in data["sources"]]
    for source in data["sources"]:
        if "url" in source:
            source["url"] = redact_url(source["url"])
    calendars = data.get("calendars") or {}
    default = data["kpi"]["default_calendar"]
    if "timezone" not in data["reporting"] and default in calendars:
        data["reporting"]["timezone"] = calendars[default]["timezone"]
    return data


def _over_preset(source: dict[str, Any]) -> dict[str, Any]:
    """A REST source as the connector reads it: laid over its vendor preset's maps (its keys win), page size
    and default ticket type; a file source as it is."""
    if source.get("kind") not in REST_KINDS:
        return source
    preset = load_preset(source["kind"])
    out = dict(source)
    for name in PRESET_MAPS:
        merged = {**dict(preset.get(name, {})), **dict(source.get(name) or {})}
        if merged:
            out[name] = merged
    for key in ("page_size", "default_ticket_type"):
        if out.get(key) is None and preset.get(key) is not None:
            out[key] = preset[key]
    return out


def _first(table: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The same table with ``keys`` first (a source reads best from its name and kind)."""
    return {**{k: table[k] for k in keys if k in table}, **{k: v for k, v in table.items() if k not in keys}}


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime | date):  # written as text, as the examples and the schema have them
        return json.dumps(value.isoformat())
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items() if v is not None)
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _body(table: Mapping[str, Any]) -> list[str]:
    return [f"{_key(k)} = {_value(v)}" for k, v in table.items() if v is not None]


def to_toml(data: Mapping[str, Any]) -> str:
    """A config mapping as TOML: a ``[section]`` per table, ``[[section]]`` per array entry, nested
    tables inline."""
    lines: list[str] = []
    for section, value in data.items():
        if section == "calendars" and isinstance(value, Mapping):
            for name, calendar in value.items():
                lines += ["", f"[calendars.{_key(name)}]", *_body(calendar)]
        elif _is_table_list(value):
            for item in value:
                lines += ["", f"[[{section}]]", *_body(item)]
        elif isinstance(value, Mapping):
            lines += ["", f"[{section}]", *_body(value)]
        elif value not in (None, [], {}):
            lines.insert(0, f"{_key(section)} = {_value(value)}")
    return "\n".join(lines).lstrip("\n") + "\n"
