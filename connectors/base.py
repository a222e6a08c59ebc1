"""What a connector is and what it returns.

A connector reads one configured source and returns a ``Batch``: canonical ``tickets`` and
``events`` frames (kpis.schema), the rows it could not use (``rejected``, with a reason each) and
how many rows it read, so that ``rows_read == used + rejected`` can be checked by the pipeline.
Connectors never write anything; the pipeline owns watermarks and stores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pandas as pd

from connectors.options import FILE_KINDS, REST_KINDS
from kpis.schema import empty_events, empty_rejected, empty_tickets

__all__ = ["DEFAULT_NULL_TOKENS", "FILE_KINDS", "REST_KINDS", "Batch", "Connector", "SourceConfig"]

DEFAULT_NULL_TOKENS = ("", "?", "N/A", "n/a", "NA", "null", "NULL", "None", "-")


@dataclass(frozen=True)
class SourceConfig:
    """One ``[[sources]]`` entry, validated by the pipeline's config model (``pipeline/config``).

    File sources use ``path`` (a file, a glob or a directory of daily exports) and optionally
    ``events_path``; REST sources use ``url`` and credentials named by ``password_env`` / ``token_env``
    (the secret itself is read from the environment when the connector is built, never stored here).
    ``layout`` says how a file is shaped: ``tickets`` (one row per ticket, the default), ``snapshot``
    (one row per update, each a full copy of the ticket) or ``activity`` (one row per activity).
    Anything else a connector needs lives in ``options``: the options set in the config, typed; a
    connector reads them with ``connectors.options.option``, which supplies the declared defaults.
    """

    name: str
    kind: str
    path: str | None = None
    events_path: str | None = None
    layout: str = "tickets"
    timezone: str | None = None
    encoding: str | None = None  # None: detect (UTF-8, UTF-8 with BOM, GB18030)
    sheet: str | None = None
    events_sheet: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)  # canonical -> source column
    event_columns: Mapping[str, str] = field(default_factory=dict)
    status_map: Mapping[str, str] = field(default_factory=dict)
    priority_map: Mapping[str, str] = field(default_factory=dict)
    type_map: Mapping[str, str] = field(default_factory=dict)
    event_kind_map: Mapping[str, str] = field(default_factory=dict)
    default_ticket_type: str | None = None  # used when the source has no type column
    null_tokens: tuple[str, ...] = DEFAULT_NULL_TOKENS
    timestamp_format: str | None = None  # strftime format; None: ISO 8601 / pandas inference
    dayfirst: bool = False
    url: str | None = None
    username: str | None = None
    password_env: str | None = None
    token_env: str | None = None
    start: str | None = None
    page_size: int = 500
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Batch:
    """What one pull of one source returns."""

    tickets: pd.DataFrame = field(default_factory=empty_tickets)
    events: pd.DataFrame = field(default_factory=empty_events)
    rejected: pd.DataFrame = field(default_factory=empty_rejected)
    rows_read: int = 0  # ticket rows + event rows read from the source
    cursor: str | None = None  # the source's new high-water mark (REST), None for files
    files_read: tuple[str, ...] = ()  # file sources: names+checksums consumed, for "read each file once"


class Connector(Protocol):
    """A configured source that can be pulled and checked."""

    config: SourceConfig

    def pull(self, since: datetime | None = None, until: datetime | None = None) -> Batch:
        """Read the tickets changed in ``[since, until)`` (everything when both are None)."""
        ...

    def check(self) -> list[str]:
        """Reach the source, read a page, return mapping problems found (empty: all good). Writes nothing.

        A connector may keep the page it read as ``self.sample`` (a ``Batch``): ``itsm-kpi validate`` counts
        the SLA policies its tickets match.
        """
        ...
