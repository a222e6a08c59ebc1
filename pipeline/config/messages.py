"""Pydantic's validation errors as config problems a person can act on.

Each error's location is walked through the model's types, which drops what only pydantic needs (union
members, the routing tag of a source, ``[key]``) and finds what the message should say: the valid keys
next to a typo (``did you mean 'delimiter'?``), the description of a missing key, the kinds and layouts
a source may have. Values under secret-looking keys (``*_env``, URLs) are never repeated.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from connectors.options import ACTIVITY_DERIVED, FILE_KINDS, LAYOUTS, REST_KINDS
from pipeline.config.errors import Path, Problem, closest, did_you_mean
from pipeline.config.sources import SOURCE_MODELS

__all__ = ["problems_from"]

_TYPE_WORDS = {
    "int": "a whole number", "float": "a number", "bool": "true or false", "string": "text in quotes",
    "list": 'a list like ["a", "b"]', "tuple": 'a list like ["a", "b"]', "dict": "a table like { key = value }",
    "model": "a table like { key = value }", "model_attributes": "a table like { key = value }",
    "date": 'a date like "2026-10-01"',
}
_SECRETIVE = re.compile(r"(_env|url|password|token|secret)$")


def _strip(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    """``Annotated[X, meta...]`` -> (X, meta); anything else -> (it, ())."""
    if typing.get_origin(tp) is typing.Annotated:
        base, *meta = typing.get_args(tp)
        inner, more = _strip(base)
        return inner, (*meta, *more)
    return tp, ()


def _members(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return [m for m in typing.get_args(tp) if m is not type(None)]
    return []


class _Walk:
    """Follows a pydantic error location through the model's types."""

    def __init__(self, root: Any) -> None:
        self.tp: Any = root
        self.parent: Any = None
        self.path: list[str | int] = []
        self.is_key = False

    def _enter(self, step: str | int) -> None:
        tp, _ = _strip(self.tp)
        self.parent = tp
        self.path.append(step)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(step))
            self.tp = field.annotation if field is not None else Any
        elif origin in (list, tuple) and args:
            self.tp = args[0]
        elif origin in (dict, Mapping) and len(args) == 2:
            self.tp = args[1]
        else:
            self.tp = Any

    def follow(self, loc: tuple[str | int, ...]) -> _Walk:
        steps = list(loc)
        while steps:
            tp, meta = _strip(self.tp)
            members = _members(tp)
            step = steps[0]
            if step == "[key]":
                self.is_key = True
                steps.pop(0)
            elif members and any(type(m).__name__ == "Discriminator" for m in meta):
                tagged = [m for m in members if any(getattr(x, "tag", None) == step for x in _strip(m)[1])]
                self.tp = tagged[0] if tagged else Any
                steps.pop(0)
            elif len(members) == 1:
                self.tp = members[0]
            elif members:
                self.tp = Any  # a union member's label (int, str, ...): not a key of the file
                steps.pop(0)
            else:
                self._enter(steps.pop(0))
        return self

    def field_description(self) -> str:
        parent, _ = _strip(self.parent)
        if isinstance(parent, type) and issubclass(parent, BaseModel) and self.path:
            field = parent.model_fields.get(str(self.path[-1]))
            return (field.description or "") if field is not None else ""
        return ""

    def siblings(self) -> list[str]:
        parent, _ = _strip(self.parent)
        if isinstance(parent, type) and issubclass(parent, BaseModel):
            return list(parent.model_fields)
        return []


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _secretive(path: Path) -> bool:
    keys = [p for p in path if isinstance(p, str)]
    return bool(keys) and bool(_SECRETIVE.search(keys[-1]))


def _expected(error: Mapping[str, Any]) -> str:
    kind = str(error["type"]).rsplit("_", 1)[0]
    kind = "model_attributes" if error["type"] == "model_attributes_type" else kind
    return _TYPE_WORDS.get(kind, kind.replace("_", " "))


def _unknown_key(walk: _Walk, key: str) -> str:
    siblings = walk.siblings()
    parent, _ = _strip(walk.parent)
    if len(walk.path) == 1:
        return f"unknown section{did_you_mean(key, siblings)}"
    if parent.__name__.endswith("Columns"):
        return _unknown_column(parent.__name__, key, siblings)
    noun = "option" if parent.__name__.endswith("Options") else "key"
    if closest(key, siblings) is None and (elsewhere := _where_else(key, noun)):
        return f"unknown {noun} ({elsewhere})"
    return f"unknown {noun}{did_you_mean(key, siblings)}"


def _unknown_column(model: str, key: str, siblings: list[str]) -> str:
    if model == "ActivityColumns" and key in ACTIVITY_DERIVED:
        return (f"the activity layout derives {key} from the activities; remove it (name the columns with "
                "options.case_column, timestamp_column, resource_column, team_column)")
    if key == "source":
        return "the source column is set by the pipeline (the source's name); remove it"
    return f"is not a canonical column{did_you_mean(key, siblings)}"


def _where_else(key: str, noun: str) -> str:
    """Which other kinds or layouts take ``key`` (a key valid elsewhere is misplaced, not misspelt)."""
    tags = []
    for tag, model in SOURCE_MODELS.items():
        fields = model.model_fields
        options = _strip(fields["options"].annotation)[0].model_fields if noun == "option" else {}
        if (noun == "key" and key in fields) or (noun == "option" and key in options):
            tags.append(tag)
    if not tags:
        return ""
    layouts = sorted({t.split(":")[1] for t in tags if t.startswith("file:")})
    kinds = sorted({t for t in tags if not t.startswith("file:")})
    if noun == "option" and layouts and not kinds:
        return f"{key} is an option of layout = {' / '.join(repr(x) for x in layouts)}"
    if layouts and not kinds:
        return f"{key} is for file sources ({', '.join(FILE_KINDS)})"
    return f"{key} is for {' / '.join(kinds)} sources" + (" and file sources" if layouts else "")


def _literal(error: Mapping[str, Any], path: Path) -> str:
    expected = re.findall(r"'((?:[^'\\]|\\.)*)'", str((error.get("ctx") or {}).get("expected", "")))
    value = error.get("input")
    shown = "" if _secretive(path) else f"{value!r} "
    listed = f"; use one of {', '.join(expected)}" if len(expected) <= 12 else ""
    return f"{shown}is not one of the allowed values{did_you_mean(str(value), expected, listed=0)}{listed}".strip()


def _source_tag(error: Mapping[str, Any], path: Path) -> tuple[Path, str]:
    value = error.get("input")
    if error["type"] == "union_tag_not_found":
        if not isinstance(value, Mapping):
            return path, f"expected a table (a [[sources]] entry), not {_shown(value)}"
        return (*path, "kind"), f"is missing: say what the source is ({', '.join((*FILE_KINDS, *REST_KINDS))})"
    tag = str((error.get("ctx") or {}).get("tag", ""))
    if tag.startswith("file:"):
        layout = tag.removeprefix("file:")
        return (*path, "layout"), f"{layout!r} is not a layout{did_you_mean(layout, LAYOUTS)}"
    kinds = (*FILE_KINDS, *REST_KINDS)
    return (*path, "kind"), f"{tag!r} is not a source kind{did_you_mean(tag, kinds, listed=len(kinds))}"


def _message(error: Mapping[str, Any], walk: _Walk, path: Path) -> tuple[Path, str]:
    kind, value, ctx = str(error["type"]), error.get("input"), error.get("ctx") or {}
    secret = _secretive(path)
    if kind == "extra_forbidden":
        return path, _unknown_key(walk, str(path[-1]))
    if kind == "missing":
        description = walk.field_description()
        return path, "is missing" + (f": {description}" if description else "")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return _source_tag(error, path)
    if kind == "literal_error":
        return path, ("key " if walk.is_key else "") + _literal(error, path)
    if kind == "value_error":
        return path, str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch" and str(path[-1]).endswith("_env"):
        return path, "must be the name of an environment variable (letters, digits and _), not its value"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        sign = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        limit = next(iter(ctx.values()), "")
        return path, f"must be {sign} {limit}" + ("" if secret else f" (it is {_shown(value)})")
    if kind == "too_short":
        return path, "needs at least one entry (see config/example.toml)"
    if kind == "string_too_short":
        return path, "is empty"
    if kind.endswith(("_type", "_parsing", "_from_float")):
        return path, f"expected {_expected(error)}" + ("" if secret else f", not {_shown(value)}")
    return path, str(error["msg"])


def problems_from(error: ValidationError, root: Any, prefix: Path = ()) -> list[Problem]:
    """One problem per distinct key path of ``error`` (alternatives of a union merged)."""
    by_path: dict[Path, list[str]] = {}
    for item in error.errors(include_url=False):
        walk = _Walk(root).follow(tuple(item["loc"]))
        path, message = _message(item, walk, (*prefix, *walk.path))
        messages = by_path.setdefault(path, [])
        if message not in messages:
            messages.append(message)
    return [Problem(path, _merged(messages)) for path, messages in by_path.items()]


def _merged(messages: list[str]) -> str:
    """Alternatives of one value (``int | str``) read as one message."""
    if len(messages) == 1:
        return messages[0]
    expected = [m.removeprefix("expected ").split(", not ")[0] for m in messages if m.startswith("expected ")]
    if len(expected) == len(messages):
        tail = messages[0].split(", not ", 1)
        return "expected " + " or ".join(expected) + (f", not {tail[1]}" if len(tail) == 2 else "")
    return "; ".join(messages)
