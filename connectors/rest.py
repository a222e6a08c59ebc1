"""The shared base of the REST connectors: presets, credentials, the pull/check template.

A vendor connector is thin: it says how to read pages of ticket records (flattened into
``RawRecord`` dicts keyed by the vendor's own field names, values as text) and how to read their
history (``RawEvent`` rows). This base class does the rest the same way for every vendor:

* the effective mapping config = the vendor preset (``config/presets/<kind>.toml``) overlaid by the
  user's ``[[sources]]`` entry, key by key;
* the secret from the variable ``password_env`` or ``token_env`` names, or from the file its ``_FILE``
  twin names (``connectors.secrets``; ``ConfigError`` naming the variable);
* one ``HttpClient`` (retries, timeouts, redaction);
* ``pull``: records merged by ticket id (newest update wins), history for every ticket kept,
  mapping through ``connectors.mapping``, ``Batch.cursor`` = the newest update seen;
* ``check``: one page of tickets and its history mapped, problems summarised, nothing written.
"""

from __future__ import annotations

import logging
import random
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import requests

from connectors.base import Batch, SourceConfig
from connectors.http import HttpClient, RetryPolicy, basic_auth, bearer_auth
from connectors.mapping import map_events, map_tickets
from connectors.secrets import SecretFileError, env_secret
from kpis.errors import ConfigError
from kpis.schema import EVENT_COLUMNS

__all__ = ["RawEvent", "RawRecord", "RestConnector", "iso_utc", "load_preset", "read_secret", "with_preset"]

log = logging.getLogger(__name__)

RawRecord = dict[str, str | None]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PRESET_DIRS = (
    Path(__file__).resolve().parents[1] / "config" / "presets",  # a source checkout
    Path(__file__).resolve().parents[1] / "pipeline" / "_config" / "presets",  # the installed wheel
)
CHECK_SAMPLE = 25  # tickets whose history check() reads (Zendesk: one call each)
#: The maps a REST source's entry is laid over its preset's, map by map and key by key.
PRESET_MAPS = ("columns", "status_map", "priority_map", "type_map", "options")


@dataclass(frozen=True)
class RawEvent:
    """One history row before mapping: canonical kind, the source's value (and the value before).

    ``event_id`` is the source's own id of the change (unique within the ticket, the same on every
    read of the same history), or a stable name for an event the connector derives (``initial:status``).
    """

    ticket_id: str
    at: str  # ISO 8601 UTC, whole seconds
    kind: str  # status / assignee / group / priority / category / response
    value: str | None
    actor: str | None = None
    old_value: str | None = None
    event_id: str | None = None


def text(value: Any) -> str | None:
    """A JSON scalar as text (None stays None; True -> 'true')."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def iso_utc(value: Any) -> str | None:
    """Any ISO 8601 timestamp (``Z``, ``+08:00``, ``+0800``, naive = UTC) -> ``YYYY-MM-DDTHH:MM:SSZ``.

    A value that cannot be read is returned unchanged, so that the mapping rejects its row with it.
    """
    if value in (None, ""):
        return None
    try:
        when = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return str(value)
    return format_utc(when if when.tzinfo else when.replace(tzinfo=UTC))


def format_utc(when: datetime) -> str:
    """A datetime -> ``YYYY-MM-DDTHH:MM:SSZ`` (fractions dropped)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_ms_iso(ms: Any) -> str | None:
    """Milliseconds since the epoch -> ISO 8601 UTC."""
    if ms in (None, ""):
        return None
    return format_utc(datetime.fromtimestamp(int(ms) / 1000, UTC))


def parse_when(value: str | datetime | None, default: datetime = EPOCH) -> datetime:
    """A config/watermark timestamp -> aware UTC datetime (naive means UTC)."""
    if value is None:
        return default
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip())
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in consecutive lists of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def load_preset(kind: str) -> dict[str, Any]:
    """The source entry of the vendor preset ``config/presets/<kind>.toml`` (empty when there is none).

    A preset is a whole config (so it validates like any other and can be copied as a start); its
    first ``[[sources]]`` entry is the layer laid under the user's source.
    """
    for folder in _PRESET_DIRS:
        path = folder / f"{kind}.toml"
        if path.is_file():
            with path.open("rb") as fh:
                preset = tomllib.load(fh)
            return dict(preset["sources"][0]) if preset.get("sources") else preset
    log.warning("no preset found for source kind %s", kind)
    return {}


def with_preset(cfg: SourceConfig, preset: Mapping[str, Any]) -> SourceConfig:
    """``cfg`` with the preset's maps underneath (the user's keys win) and UTC timestamps.

    The connector normalises every vendor timestamp to ISO 8601 UTC before mapping, so the
    mapping needs no timezone and no custom format; events arrive with canonical column names.
    """
    merged = {name: {**dict(preset.get(name, {})), **dict(getattr(cfg, name))} for name in PRESET_MAPS}
    default_page = SourceConfig.__dataclass_fields__["page_size"].default
    page_size = int(preset.get("page_size", cfg.page_size)) if cfg.page_size == default_page else cfg.page_size
    return replace(cfg, **merged, timezone="UTC", timestamp_format=None, event_columns={}, event_kind_map={},
                   default_ticket_type=cfg.default_ticket_type or preset.get("default_ticket_type"),
                   page_size=page_size)


def read_secret(cfg: SourceConfig) -> str:
    """The source's secret from the environment variable its config names."""
    var = cfg.password_env or cfg.token_env
    if not var:
        raise ConfigError(f"sources[{cfg.name!r}].password_env", "is missing",
                          "name the environment variable holding the password (password_env) or API token (token_env)")
    key = "password_env" if cfg.password_env else "token_env"
    try:
        secret = env_secret(var)
    except SecretFileError as e:
        raise ConfigError(f"sources[{cfg.name!r}].{key}", str(e), f"mount the secret there or unset {var}_FILE") from None
    if not secret:
        raise ConfigError(f"sources[{cfg.name!r}].{key}", f"environment variable {var} is not set",
                          f"export {var}=... (or {var}_FILE=/path/to/secret) before running")
    return secret


def newest_per_ticket(records: Iterable[RawRecord], id_field: str, updated_field: str) -> list[RawRecord]:
    """One record per ticket id: the one with the newest update (the later one on a tie)."""
    best: dict[str, RawRecord] = {}
    for record in records:
        key = record.get(id_field)
        if key is None:
            best[f"\0{len(best)}"] = record  # no id: kept, the mapping rejects it with a reason
            continue
        old = best.get(key)
        if old is None or (record.get(updated_field) or "") >= (old.get(updated_field) or ""):
            best[key] = record
    return list(best.values())


def with_initial_values(events: list[RawEvent], created: Mapping[str, str | None]) -> list[RawEvent]:
    """Prepend, per ticket and kind, the value before the first change, at the ticket's creation.

    History sources record changes; the value a ticket was created with is only the "from" side
    of its first change. Without it the status timeline would start at the first change. Its
    ``event_id`` is ``initial:<kind>``: one per ticket and kind, the same on every read.
    """
    first: dict[tuple[str, str], RawEvent] = {}
    for event in sorted(events, key=lambda e: e.at):
        first.setdefault((event.ticket_id, event.kind), event)
    initial = [RawEvent(tid, min(created.get(tid) or e.at, e.at), kind, e.old_value, event_id=f"initial:{kind}")
               for (tid, kind), e in first.items() if kind != "response" and e.old_value not in (None, "")]
    return initial + events


def events_frame(events: list[RawEvent]) -> pd.DataFrame:
    """Raw events as a frame with canonical column names, ``seq`` = position in the source."""
    ordered = sorted(enumerate(events), key=lambda pair: (pair[1].ticket_id, pair[1].at))
    rows = [{"ticket_id": e.ticket_id, "at": e.at, "kind": e.kind, "value": e.value, "actor": e.actor,
             "seq": str(i), "event_id": e.event_id} for i, e in ordered]
    return pd.DataFrame(rows, columns=["ticket_id", "at", "kind", "value", "actor", "seq", "event_id"], dtype=object)


def with_event_ids(mapped: pd.DataFrame, events: list[RawEvent]) -> pd.DataFrame:
    """The mapped events with each one's ``event_id``, found by its ``seq`` (its position in ``events``).

    The shared mapping carries ``seq`` through unchanged and drops rejected rows, so ``seq`` is the
    one key that still ties a mapped event to the raw event it came from.
    """
    ids = np.array([e.event_id for e in events], dtype=object)
    out = mapped.copy()
    out["event_id"] = pd.Series(ids[mapped["seq"].to_numpy(dtype=np.int64)], index=mapped.index,
                                dtype=object).astype(EVENT_COLUMNS["event_id"].dtype)
    return out


class RestConnector:
    """Base of the vendor connectors; subclasses set ``kind`` and implement the three hooks."""

    kind: ClassVar[str] = ""
    default_policy: ClassVar[RetryPolicy] = RetryPolicy()

    def __init__(self, cfg: SourceConfig, *, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, now: Callable[[], datetime] | None = None,
                 rand: Callable[[], float] = random.random, policy: RetryPolicy | None = None) -> None:
        if not cfg.url:
            raise ConfigError(f"sources[{cfg.name!r}].url", "is missing", "give the system's base URL")
        self.config = cfg
        self.mapping = with_preset(cfg, load_preset(self.kind))
        self.options: Mapping[str, Any] = self.mapping.options
        secret = read_secret(cfg)
        self.client = HttpClient(cfg.name, cfg.url, authorization=self.authorization(cfg, secret),
                                 secrets=[secret], session=session, sleep=sleep, now=now, rand=rand,
                                 policy=policy or self.default_policy)

    # --- hooks --------------------------------------------------------------------------------

    def authorization(self, cfg: SourceConfig, secret: str) -> str:
        """The ``Authorization`` header: basic with a username, else a bearer token."""
        return basic_auth(cfg.username, secret) if cfg.username else bearer_auth(secret)

    def ticket_pages(self, since: datetime, until: datetime | None) -> Iterator[list[RawRecord]]:
        """Pages of flattened ticket records updated in ``[since, until)``, oldest update first."""
        raise NotImplementedError

    def history(self, records: list[RawRecord]) -> list[RawEvent]:
        """Every history event of the given tickets (their whole life, not just the window)."""
        raise NotImplementedError

    def extra_checks(self) -> list[str]:
        """Vendor-specific problems ``check`` should report (e.g. a field not found)."""
        return []

    # --- template -----------------------------------------------------------------------------

    @property
    def page_size(self) -> int:
        """Records per page: the entry's ``page_size``, else the preset's."""
        return self.mapping.page_size

    @property
    def id_field(self) -> str:
        return self.mapping.columns.get("ticket_id", "ticket_id")

    @property
    def updated_field(self) -> str:
        return self.mapping.columns.get("updated_at", "updated_at")

    def pull(self, since: datetime | None = None, until: datetime | None = None) -> Batch:
        """Tickets updated in ``[since, until)`` with their full history, mapped; nothing written."""
        start = parse_when(since if since is not None else self.config.start)
        log.info("source %s: pulling tickets updated since %s", self.config.name, format_utc(start))
        seen = [r for page in self.ticket_pages(start, until) for r in page]
        if until is not None:
            end = format_utc(parse_when(until))
            seen = [r for r in seen if (r.get(self.updated_field) or "") < end]
        records = newest_per_ticket(seen, self.id_field, self.updated_field)
        batch = self.to_batch(records, self.history(records))
        batch.cursor = max((u for r in seen if (u := r.get(self.updated_field))), default=None)
        log.info("source %s: %d tickets (%d records), %d events, %d rejected, %d API calls",
                 self.config.name, len(batch.tickets), len(seen), len(batch.events), len(batch.rejected),
                 self.client.calls)
        return batch

    def to_batch(self, records: list[RawRecord], events: list[RawEvent]) -> Batch:
        """Map raw records and events onto the canonical frames."""
        created_field = self.mapping.columns.get("opened_at", "opened_at")
        created = {r[self.id_field]: r.get(created_field) for r in records if r.get(self.id_field)}
        events = with_initial_values(events, created)
        if records:
            tickets, rejected = map_tickets(pd.DataFrame(records, dtype=object), self.mapping)
        else:
            tickets, rejected = Batch().tickets, Batch().rejected
        batch = Batch(tickets=tickets, rows_read=len(records) + len(events))
        if events:
            mapped, rejected_events = map_events(events_frame(events), self.mapping)
            batch.events = with_event_ids(mapped, events)
            rejected = pd.concat([rejected, rejected_events], ignore_index=True) if len(rejected_events) else rejected
        batch.rejected = rejected
        return batch

    def check(self) -> list[str]:
        """Read one page of tickets and their history; return the mapping problems found."""
        pages = self.ticket_pages(parse_when(self.config.start), None)
        try:
            records = next(pages, [])
        finally:
            pages.close()
        records = newest_per_ticket(records, self.id_field, self.updated_field)
        batch = self.to_batch(records, self.history(records[:CHECK_SAMPLE]) if records else [])
        self.sample = batch  # the page read, for validate's SLA policy counts
        problems = self.extra_checks()
        if not records:
            problems.append(f"no tickets updated since {self.config.start or 'the beginning'}: the mapping "
                            "could not be checked (is the account allowed to read them?)")
        problems += _summarise(batch.rejected)
        return problems


def _summarise(rejected: pd.DataFrame) -> list[str]:
    """One line per distinct rejection reason, most frequent first."""
    counts = Counter(zip(rejected["row_kind"], rejected["reason"], strict=True))
    return [f"{n} {kind} row(s) on the first page: {reason} (add it to the source's map)"
            if reason.startswith("unmapped") else f"{n} {kind} row(s) on the first page: {reason}"
            for (kind, reason), n in counts.most_common()]

