"""The JSON Schema (draft 2020-12) of the config file, exported from the model, and lookups in it.

``config_schema()`` is what ``itsm-kpi config schema`` prints and what ships as
``pipeline/config/itsm-kpi.schema.json`` for editors (Taplo / Even Better TOML: put
``#:schema ./itsm-kpi.schema.json`` on the first line of the TOML file). ``accepts_only_text`` tells the
environment overrides which values stay text (``ITSM_KPI_STORE__PATH=2026`` is a folder, not a number).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.config.model import Config

__all__ = ["SCHEMA_FILE", "accepts_only_text", "config_schema", "key_paths", "schema_text"]

SCHEMA_FILE = Path(__file__).with_name("itsm-kpi.schema.json")
DIALECT = "https://json-schema.org/draft/2020-12/schema"


@cache
def config_schema() -> dict[str, Any]:
    """The schema of the whole file: every key with type, default and description; no unknown keys."""
    schema = Config.model_json_schema()
    _drop_property_titles(schema)
    return {"$schema": DIALECT, "title": "itsm-kpi config", **{k: v for k, v in schema.items() if k != "title"}}


def schema_text() -> str:
    """The schema as the shipped file holds it (sorted keys, two-space indent, final newline)."""
    return json.dumps(config_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def _drop_property_titles(node: Any) -> None:
    """Pydantic titles every property with its own name; they say nothing an editor does not show."""
    if isinstance(node, dict):
        for prop in (node.get("properties") or {}).values():
            if isinstance(prop, dict):
                prop.pop("title", None)
        for value in node.values():
            _drop_property_titles(value)
    elif isinstance(node, list):
        for value in node:
            _drop_property_titles(value)


def _expand(node: dict[str, Any], root: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The node itself, with ``$ref`` followed and ``anyOf`` / ``oneOf`` / ``allOf`` opened up."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        yield from _expand(root["$defs"][name], root)
        return
    branches = [b for key in ("anyOf", "oneOf", "allOf") for b in node.get(key, [])]
    if branches:
        for branch in branches:
            yield from _expand(branch, root)
    else:
        yield node


def _children(node: dict[str, Any], step: str | int, root: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for option in _expand(node, root):
        if isinstance(step, int) or (isinstance(step, str) and step.isdigit() and "items" in option):
            if isinstance(option.get("items"), dict):
                yield option["items"]
        elif step in option.get("properties", {}):
            yield option["properties"][step]
        elif isinstance(option.get("additionalProperties"), dict):
            yield option["additionalProperties"]


def _types(node: dict[str, Any], root: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for option in _expand(node, root):
        if "type" in option:
            found |= {option["type"]} if isinstance(option["type"], str) else set(option["type"])
        elif "const" in option or "enum" in option:
            values = [option["const"]] if "const" in option else option["enum"]
            found |= {"string" if isinstance(v, str) else "other" for v in values}
        else:
            found.add("any")
    return found


def accepts_only_text(path: tuple[str | int, ...]) -> bool:
    """True when every schema the key path can reach takes a string and nothing else."""
    root = config_schema()
    nodes = [root]
    for step in path:
        nodes = [child for node in nodes for child in _children(node, step, root)]
    types = set().union(*(_types(n, root) for n in nodes)) if nodes else set()
    return types == {"string"}


def key_paths(schema: dict[str, Any] | None = None) -> list[str]:
    """Every key the schema names, as ``section.key``, ``sla[].name``, ``sources[].options.delimiter``."""
    root = schema or config_schema()
    found: dict[str, None] = {}
    _walk_keys(root, root, "", found, set())
    return list(found)


def _walk_keys(node: dict[str, Any], root: dict[str, Any], prefix: str, found: dict[str, None],
               seen: set[tuple[str, str]]) -> None:
    for option in _expand(node, root):
        for name, child in option.get("properties", {}).items():
            path = f"{prefix}.{name}" if prefix else name
            found.setdefault(path, None)
            marker = (path, json.dumps(child, sort_keys=True))
            if marker not in seen:
                seen.add(marker)
                _walk_keys(child, root, path, found, seen)
        if isinstance(option.get("items"), dict):
            _walk_keys(option["items"], root, prefix + "[]", found, seen)
        if isinstance(option.get("additionalProperties"), dict) and prefix:
            _walk_keys(option["additionalProperties"], root, prefix + ".<name>", found, seen)
