"""The value types of the config model: each checks one kind of value and says how to write it.

Values keep the form they were written in (``"30m"`` stays ``"30m"``) so that ``config show`` prints
them back as written; ``pipeline/config/build.py`` turns them into seconds, minutes and dates. Types that
accept one value or a list, durations and dates validate in one step (a ``PlainValidator``) so that a
bad value gets one message, not one per alternative; their JSON Schema is written out beside them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    WithJsonSchema,
)

from kpis.config import BREAKDOWN_DIMENSIONS, WEEKDAYS, parse_duration, parse_interval, parse_timezone
from kpis.errors import ConfigError
from kpis.schema import EVENT_KINDS, GRAINS, PRIORITIES, STATUSES, TICKET_TYPES


class Section(BaseModel):
    """Base of every table of the config: unknown keys are errors, values are taken as written (strict)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


DURATION_PATTERN = r"^(?=.)([0-9]+[dD])?([0-9]+[hH])?([0-9]+[mM])?([0-9]+[sS])?$"
INTERVAL_PATTERN = r"^[0-9]{1,2}:[0-9]{2}-[0-9]{1,2}:[0-9]{2}$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

Status = Literal[STATUSES]
TicketType = Literal[TICKET_TYPES]
Priority = Literal[PRIORITIES]
Grain = Literal[GRAINS]
Weekday = Literal[WEEKDAYS]
EventKind = Literal[EVENT_KINDS]
Breakdown = Literal[BREAKDOWN_DIMENSIONS]


def _reason(error: ConfigError) -> str:
    """A ``ConfigError`` of a shared parse helper as the text of a validation message."""
    return f"{error.problem}; {error.fix}" if error.fix else error.problem


#: The longest duration a setting may hold (100 years): longer ones overflow the time arithmetic.
LONGEST_DURATION_S = 100 * 365 * 86_400


def _duration(value: Any) -> str | int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{value!r} is not a duration; write it like \"30m\", \"4h\" or \"1h30m\"")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative; a duration is a number of seconds >= 0 or like \"30m\"")
    elif not re.match(DURATION_PATTERN, value):
        raise ValueError(f"{value!r} is not a duration; write it like \"30m\", \"4h\", \"1h30m\" or \"2d\"")
    if parse_duration(value) > LONGEST_DURATION_S:
        raise ValueError(f"{value!r} is longer than 100 years")
    return value


Duration = Annotated[str | int, PlainValidator(_duration), WithJsonSchema({
    "anyOf": [{"type": "string", "pattern": DURATION_PATTERN}, {"type": "integer", "minimum": 0}],
    "description": 'a duration like "30m", "4h", "1h30m", "90s", "2d", or a number of seconds'})]


def _timezone(value: str) -> str:
    try:
        return parse_timezone(value, "timezone")
    except ConfigError as e:
        raise ValueError(_reason(e)) from None


Timezone = Annotated[str, AfterValidator(_timezone)]


def _interval(value: str) -> str:
    try:
        parse_interval(value, "hours")
    except ConfigError as e:
        raise ValueError(_reason(e)) from None
    return value


Interval = Annotated[str, AfterValidator(_interval), WithJsonSchema(
    {"type": "string", "pattern": INTERVAL_PATTERN, "description": 'local working hours like "09:00-12:00"'})]


def _date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.match(DATE_PATTERN, value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date; write it like \"2026-10-01\"")


DateText = Annotated[date, PlainValidator(_date), WithJsonSchema(
    {"type": "string", "pattern": DATE_PATTERN, "format": "date", "description": 'a date like "2026-10-01"'})]


def _date_key(value: str) -> str:
    _date(value)
    return value


DateKey = Annotated[str, AfterValidator(_date_key), WithJsonSchema(
    {"type": "string", "pattern": DATE_PATTERN, "description": 'a date like "2026-10-01"'})]
Score = Annotated[float, Field(ge=1, le=5)]


def _timestamp(value: Any) -> str | datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value.strip())
            return value
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not an ISO 8601 timestamp; write it like \"2026-01-01T00:00:00Z\"")


Timestamp = Annotated[str | datetime, PlainValidator(_timestamp), WithJsonSchema(
    {"type": "string", "description": 'an ISO 8601 timestamp like "2026-01-01T00:00:00Z"'})]


def _web_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("is not an http(s) URL; write it like \"https://example.service-now.com\"")
    return value


WebUrl = Annotated[str, AfterValidator(_web_url)]


def _sql_url(value: str) -> str:
    from sqlalchemy.engine import make_url  # noqa: PLC0415 (only when a URL is configured)
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError('is not a SQLAlchemy URL; write e.g. "sqlite:///kpi-store/kpi.sqlite" or '
                         '"postgresql+psycopg://user@host/db"') from None
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise ValueError('is an in-memory SQLite database, which keeps nothing after the run; name a file, e.g. '
                         '"sqlite:///kpi-store/kpi.sqlite"')
    return value


SqlUrl = Annotated[str, AfterValidator(_sql_url)]


def _encoding(value: str) -> str:
    try:
        "a".encode(value).decode(value)  # also refuses codecs that are not text encodings (base64, rot13)
    except LookupError:
        raise ValueError(f"{value!r} is not a text encoding Python knows; e.g. \"gb18030\", \"utf-8\"") from None
    return value


Encoding = Annotated[str, AfterValidator(_encoding)]


def _timestamp_format(value: str) -> str:
    import pandas as pd  # noqa: PLC0415 (only when a format is configured)

    try:  # as the connectors parse with it (connectors/mapping.py): a bad directive raises, a mismatch does not
        pd.to_datetime(pd.Series(["2026-01-01 00:00:00"]), format=value, errors="coerce")
    except ValueError as e:
        raise ValueError(f"{value!r} is not a strftime format: {e}; e.g. \"%Y/%m/%d %H:%M\"") from None
    return value


TimestampFormat = Annotated[str, Field(min_length=1), AfterValidator(_timestamp_format)]
Text = Annotated[str, Field(min_length=1)]
EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN)]


def _cron(value: str) -> str:
    from apscheduler.triggers.cron import CronTrigger  # noqa: PLC0415 (only when a cron is configured)

    fields = value.split()
    if len(fields) != 5:
        raise ValueError(f"{value!r} has {len(fields)} fields, not 5 (minute hour day month weekday), "
                         "e.g. \"15 1 * * *\"")
    for name, text in zip(("minute", "hour", "day", "month", "day_of_week"), fields, strict=True):
        try:
            CronTrigger(**{name: text})
        except ValueError as e:
            raise ValueError(f"the {name} field {text!r} of {value!r} is not valid ({e})") from None
    try:
        trigger = CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as e:
        raise ValueError(f"{value!r} is not a valid cron expression ({e})") from None
    if trigger.get_next_fire_time(None, datetime.now(UTC)) is None:  # e.g. "0 1 30 2 *": 30 February
        raise ValueError(f"{value!r} never fires (no such date); e.g. \"15 1 * * *\"")
    return value


Cron = Annotated[str, AfterValidator(_cron)]


def _listed(value: Any) -> Any:
    """One value as a list of one (``priority = "P1"`` is ``priority = ["P1"]``)."""
    return value if isinstance(value, list) else [value]


def one_or_many(item: Any, description: str, *, non_empty: bool = False) -> Any:
    """``item`` or a list of ``item``, validated as a list (one message for a bad value). ``non_empty``: an
    empty list is refused (an SLA condition that lists nothing would match nothing)."""
    item_schema = TypeAdapter(item).json_schema()
    array: dict[str, Any] = {"type": "array", "items": item_schema, **({"minItems": 1} if non_empty else {})}
    schema = {"anyOf": [item_schema, array], "description": description}
    return Annotated[list[item], BeforeValidator(_listed), Field(min_length=1 if non_empty else 0),
                     WithJsonSchema(schema)]


def _each_once(values: list[Any]) -> list[Any]:
    repeated = [v for i, v in enumerate(values) if v in values[:i]]
    if repeated:
        raise ValueError(f"{repeated[0]!r} is listed twice; list each once")
    return values


def each_once(item: Any) -> Any:
    """A list of ``item`` in which no value repeats."""
    return Annotated[list[item], AfterValidator(_each_once), WithJsonSchema(
        {"type": "array", "items": TypeAdapter(item).json_schema(), "uniqueItems": True})]
