"""Digests of the configuration a run recorded: the whole effective config, and each source's mapping.

``config_hash`` goes into ``pipeline_runs.config_hash``: two runs with the same hash ran with the same
effective config (environment overrides applied; secrets never enter it: a database URL loses its
password, and sources name only the variables that hold theirs).

``mapping_settings`` is the part of a source's config that decides how its rows are read (columns, maps,
timezone, layout, timestamp format, options, ...): not where the rows are (path, URL), who reads them
(credentials) or how far back (start, page size). The pipeline records it per source when the source was
read whole (``store_state``: ``source_mapping:<name>``); when it differs at the next run, that source is
read again from the start (DECISIONS.md D51).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import make_url

from connectors.base import SourceConfig
from pipeline.settings import Settings

__all__ = ["MAPPING_STATE_PREFIX", "canonical", "changed_settings", "config_hash", "mapping_settings",
           "mapping_state_name", "mapping_state_value"]

MAPPING_STATE_PREFIX = "source_mapping:"
#: Source settings that say where, as whom or since when a source is read, not how its rows are read.
_NOT_MAPPING = frozenset({"name", "kind", "path", "events_path", "url", "username", "password_env", "token_env",
                          "start", "page_size"})


def canonical(value: Any) -> Any:
    """A JSON-ready form of a settings value that does not depend on set or mapping order."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (set, frozenset)):
        return sorted(str(v) for v in value)
    if isinstance(value, (tuple, list)):
        return [canonical(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_hash(settings: Settings) -> str:
    """A digest of the effective config, secrets excluded (the SQL URL's password is dropped)."""
    payload = canonical(settings)
    payload["store"]["sql_url"] = make_url(settings.store.sql_url).set(password=None).render_as_string(
        hide_password=False)
    return _digest(payload)[:16]


def mapping_settings(cfg: SourceConfig) -> dict[str, Any]:
    """The settings of ``cfg`` that decide how its rows are read, as canonical JSON values."""
    values = canonical(cfg)
    return {name: value for name, value in values.items() if name not in _NOT_MAPPING}


def mapping_state_name(source: str) -> str:
    """The ``store_state`` name under which a source's mapping settings are recorded."""
    return MAPPING_STATE_PREFIX + source


def mapping_state_value(cfg: SourceConfig) -> str:
    """What ``store_state`` records for ``cfg``: its mapping settings as JSON text."""
    return json.dumps(mapping_settings(cfg), sort_keys=True, ensure_ascii=False)


def changed_settings(recorded: str, cfg: SourceConfig) -> list[str]:
    """The mapping settings of ``cfg`` that differ from the ``recorded`` ones (``mapping_state_value``)."""
    try:
        before = json.loads(recorded)
    except ValueError:
        return ["(unreadable record)"]
    now = mapping_settings(cfg)
    return sorted(name for name in set(before) | set(now) if before.get(name) != now.get(name))
