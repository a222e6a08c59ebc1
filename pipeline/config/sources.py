"""``[[sources]]`` entries: one model per file kind and layout and per REST vendor, built from the
connectors' own option declarations (``connectors/options.py``).

An entry is routed to its model by ``kind`` (and, for files, ``layout``), so each accepts exactly the
keys and options its connector reads: ``order_by`` on a snapshot export, ``tables`` on ServiceNow.
``columns`` and ``event_columns`` are models too: their keys are the canonical columns of
``kpis.schema`` (the activity layout derives some of them and refuses those).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, Discriminator, Field, Tag, create_model

from connectors.base import DEFAULT_NULL_TOKENS
from connectors.options import (
    ACTIVITY_DERIVED,
    FILE_KINDS,
    LAYOUTS,
    REST_KINDS,
    Option,
    declared_options,
)
from kpis.schema import EVENT_COLUMNS, TICKET_COLUMNS
from pipeline.config.types import (
    Encoding,
    EnvName,
    EventKind,
    Priority,
    Section,
    Status,
    Text,
    TicketType,
    Timestamp,
    TimestampFormat,
    Timezone,
    WebUrl,
)

__all__ = ["SOURCE_MODELS", "Source", "source_tag"]


# --- columns ---------------------------------------------------------------------------------------

def _columns_model(name: str, columns: Mapping[str, Any], doc: str, skip: tuple[str, ...] = ()) -> type[BaseModel]:
    fields: dict[str, Any] = {
        col: (Text | None, Field(None, description=f"source column holding {col}: {c.description}"))
        for col, c in columns.items() if col != "source" and col not in skip}
    return create_model(name, __base__=Section, __doc__=doc, **fields)


TicketColumns = _columns_model("TicketColumns", TICKET_COLUMNS, "canonical ticket column -> the source's column "
                               "(identity when omitted)")
ActivityColumns = _columns_model("ActivityColumns", TICKET_COLUMNS, "canonical ticket column -> the column of the "
                                 "case's last row; the activity layout derives the others from the activities",
                                 skip=tuple(c for c in ACTIVITY_DERIVED if c != "ticket_id"))
EventColumns = _columns_model("EventColumns", EVENT_COLUMNS, "canonical event column -> the events file's column "
                              "(identity when omitted)")


# --- options: the connectors' declarations as models ------------------------------------------------

def _pydantic_type(tp: Any) -> Any:
    """A declared option type as the model's type: arrays are lists (TOML), kept as tuples."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return Annotated[tuple[_pydantic_type(args[0]), ...], BeforeValidator(_as_tuple)]
    if origin is Mapping or origin is dict:
        return dict[_pydantic_type(args[0]), _pydantic_type(args[1])]
    if origin in (Union, types.UnionType):
        return Union[tuple(_pydantic_type(a) for a in args)]  # noqa: UP007 (built from a tuple)
    return tp


def _as_tuple(value: Any) -> Any:
    """A TOML array (a list) as the tuple the option is declared as."""
    return tuple(value) if isinstance(value, list) else value


def _option_field(opt: Option) -> tuple[Any, Any]:
    tp = _pydantic_type(opt.type)
    if opt.check is not None:
        tp = Annotated[tp, AfterValidator(_checked(opt.check))]
    default = ... if opt.required else opt.default
    return tp, Field(default, description=opt.description, ge=opt.minimum)


def _checked(check: Any) -> Any:
    def run(value: Any) -> Any:
        if value is not None:
            check(value)
        return value
    return run


def _options_model(title: str, options: tuple[Option, ...]) -> type[BaseModel]:
    fields = {o.name: _option_field(o) for o in options}
    return create_model(f"{title}Options", __base__=Section, __doc__=f"options of a {title} source", **fields)


# --- the entries ------------------------------------------------------------------------------------

class SourceBase(Section):
    """Keys every source has."""

    name: Text = Field(description="unique; becomes the source column of every row")
    timezone: Timezone | None = Field(None, description="IANA timezone of timestamps without an offset "
                                      "(required when the source has such timestamps)")
    status_map: dict[str, Status] = Field({}, description="source status -> canonical status")
    priority_map: dict[str, Priority] = Field({}, description="source priority -> P1..P4")
    type_map: dict[str, TicketType] = Field({}, description="source type -> incident, request or maintenance")
    default_ticket_type: Text | None = Field(None, description="type of tickets without one (a ticket type or "
                                             "a type_map key)")
    null_tokens: list[str] = Field(list(DEFAULT_NULL_TOKENS), description="values read as missing")


class FileSourceBase(SourceBase):
    """Keys of a file source (csv, excel, json, ndjson, parquet)."""

    path: Text = Field(description="a file, a glob or a folder of daily exports (each file read once)")
    events_path: Text | None = Field(None, description="optional history: ticket_id, at, kind, value, actor")
    encoding: Encoding | None = Field(None, description="text encoding (default: detect UTF-8, UTF-8 BOM, GB18030)")
    sheet: Text | None = Field(None, description="Excel: the sheet of tickets (default: the first)")
    events_sheet: Text | None = Field(None, description="Excel: the sheet of events")
    event_columns: EventColumns = Field(default_factory=EventColumns, description="canonical event column -> "
                                        "the events file's column")
    event_kind_map: dict[str, EventKind] = Field({}, description="source event kind -> canonical kind")
    timestamp_format: TimestampFormat | None = Field(None, description="strftime format of timestamps (default: ISO 8601 "
                                          "or inferred)")
    dayfirst: bool = Field(False, description="ambiguous dates are day first (01/02 = 1 February)")


class RestSourceBase(SourceBase):
    """Keys of a REST source; its preset (config/presets/<kind>.toml) lies underneath."""

    url: WebUrl = Field(description="the system's base URL")
    username: Text | None = Field(None, description="user (or agent e-mail) for basic authentication")
    password_env: EnvName | None = Field(None, description="environment variable holding the password "
                                         "(or NAME_FILE naming a file)")
    token_env: EnvName | None = Field(None, description="environment variable holding an API token "
                                      "(or NAME_FILE naming a file)")
    start: Timestamp | None = Field(None, description="where the first pull begins (ISO 8601)")
    page_size: int | None = Field(None, ge=1, description="records per page (default: the preset's)")


def _title(*parts: str) -> str:
    return "".join(p.capitalize() for p in parts)


def _file_model(layout: str) -> type[BaseModel]:
    options = declared_options(FILE_KINDS[0], layout)
    options_model = _options_model(f"{_title(layout)}File", options)
    required = [o.name for o in options if o.required]
    columns = ActivityColumns if layout == "activity" else TicketColumns
    return create_model(
        f"{_title(layout)}FileSource", __base__=FileSourceBase,
        __doc__=f"a file source (csv, excel, json, ndjson, parquet) with layout = \"{layout}\"",
        kind=(Literal[FILE_KINDS], Field(description="csv | excel | json | ndjson | parquet (files); "
                                         "servicenow | jira | zendesk (REST)")),
        layout=(Literal[layout], Field("tickets", description="tickets (one row per ticket) | snapshot (audit "
                                       "snapshots) | activity (activity log)") if layout == "tickets"
                else Field(description="tickets | snapshot (audit snapshots) | activity (activity log)")),
        columns=(columns, Field(default_factory=columns, description="canonical ticket column -> the source's column")),
        options=(options_model, Field(description=f"what this layout reads besides (required: {', '.join(required)})")
                 if required else Field(default_factory=options_model, description="what file sources read besides")),
    )


def _rest_model(kind: str) -> type[BaseModel]:
    options_model = _options_model(_title(kind), declared_options(kind))
    return create_model(
        f"{_title(kind)}Source", __base__=RestSourceBase, __doc__=f"a {kind} REST source",
        kind=(Literal[kind], Field(description="csv | excel | json | ndjson | parquet (files); "
                                   "servicenow | jira | zendesk (REST)")),
        columns=(TicketColumns, Field(default_factory=TicketColumns, description="canonical ticket column -> the "
                                      "vendor field (laid over the preset's)")),
        options=(options_model, Field(default_factory=options_model, description="what this vendor reads besides")),
    )


def source_tag(value: Any) -> str | None:
    """Which model an entry is: ``file:tickets``, ``file:activity``, ``servicenow``... (None: not a table)."""
    if isinstance(value, BaseModel):
        value = {"kind": getattr(value, "kind", None), "layout": getattr(value, "layout", None)}
    if not isinstance(value, Mapping) or "kind" not in value:
        return None
    kind = value["kind"]
    if kind in FILE_KINDS:
        return f"file:{value.get('layout') or 'tickets'}"
    return str(kind)


#: tag -> model, for every kind and layout.
SOURCE_MODELS: dict[str, type[BaseModel]] = {
    **{f"file:{layout}": _file_model(layout) for layout in LAYOUTS},
    **{kind: _rest_model(kind) for kind in REST_KINDS},
}

Source = Annotated[
    Union[tuple(Annotated[model, Tag(tag)] for tag, model in SOURCE_MODELS.items())],  # noqa: UP007
    Discriminator(source_tag),
]
