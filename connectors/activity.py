"""Activity-log exports (``layout = "activity"``): one row per activity, with who did it.

Process-mining logs (BPI 2013 VINST, the Italian help-desk log) record a case's life as activities:
"Take in charge ticket", "Accepted / Wait - User", ... The import turns them into canonical frames:

- each row's activity key (``activity_column``, joined with ``substatus_column`` by
  ``activity_separator`` when there is one) goes through ``activity_status_map`` to a canonical
  status; a key listed in ``ignore_activities`` (or only in ``response_activities``) sets no status;
  any other key is a data error and its row is rejected with the reason;
- events, in file order within a case: ``status`` where the mapped status changes, ``assignee`` where
  ``resource_column`` changes, ``group`` where ``team_column`` changes (an empty resource or team
  means "not recorded", never "unassigned"), and ``response`` at the first row whose activity is in
  ``response_activities``; the actor is the row's resource. Resources matching
  ``automation_resources`` (regular expressions, e.g. ``[".*-Siebel"]``) are systems: their rows name
  no assignee and give no response. With ``assignee_activities`` only those activities name the
  assignee (e.g. who takes charge and who resolves, not who files the closure);
- one ticket per case: ``opened_at`` = its first event, ``updated_at`` = its last, ``status`` = the
  last mapped status (``NEW`` when none of its activities maps to one), assignee and group = the last
  recorded, and the ticket-level attributes (priority, category, ticket type, ...) mapped by
  ``map_tickets`` from the case's last row through ``columns`` and the ``*_map`` settings. When that
  last row cannot be mapped (say an unmapped priority) the whole case is rejected, every row with
  the reason.

Options (``[sources.options]``): ``case_column`` (else ``columns.ticket_id``), ``activity_column``,
``timestamp_column``, ``resource_column``, ``team_column``, ``substatus_column``,
``activity_separator`` (default ``"/"``), ``activity_status_map`` (else ``status_map``),
``ignore_activities``, ``response_activities``, ``assignee_activities``, ``automation_resources``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from connectors.base import Batch, SourceConfig
from connectors.mapping import (
    TIMESTAMP_RANGE_TEXT,
    Timestamps,
    normalise_nulls,
    read_timestamps,
    rejected_rows,
    require_offsets_or_timezone,
)
from connectors.options import ACTIVITY_DERIVED, option
from connectors.snapshot import change_events, map_rows
from kpis.errors import ConfigError
from kpis.schema import (
    DONE_STATUSES,
    EVENT_COLUMNS,
    REJECTED_COLUMNS,
    TICKET_COLUMNS,
    concat_frames,
    conform,
)

__all__ = ["ActivityOptions", "activity_events", "activity_keys", "activity_rows", "activity_tickets", "to_batch"]

log = logging.getLogger(__name__)

ACTIVITY_FIELDS: Mapping[str, str] = {"assignee": "assignee", "group": "assignment_group", "status": "status"}
_STATUS = "__itsm_kpi_status__"  # the case's derived status, handed to map_tickets as a column
_DERIVED = ACTIVITY_DERIVED  # ticket columns the import derives from the activities


@dataclass(frozen=True)
class ActivityOptions:
    """The ``options`` of an activity-log source (checked when the config is loaded), as the import uses them."""

    case_column: str
    activity_column: str
    timestamp_column: str
    status_map: Mapping[str, str]
    resource_column: str | None = None
    team_column: str | None = None
    substatus_column: str | None = None
    separator: str = "/"
    ignore: frozenset[str] = frozenset()
    response: frozenset[str] = frozenset()
    assignee_activities: frozenset[str] | None = None  # None: every activity names an assignee
    automation: re.Pattern[str] | None = None  # resources that are systems, not engineers

    @classmethod
    def from_config(cls, cfg: SourceConfig) -> ActivityOptions:
        """The typed options of ``cfg`` (``connectors.options`` declares them and their defaults)."""
        status_map = option(cfg, "activity_status_map")
        assignee = option(cfg, "assignee_activities")
        return cls(
            case_column=_required(cfg, "case_column", cfg.columns.get("ticket_id")),
            activity_column=_required(cfg, "activity_column"),
            timestamp_column=_required(cfg, "timestamp_column"),
            status_map=dict(cfg.status_map if status_map is None else status_map),
            resource_column=option(cfg, "resource_column"),
            team_column=option(cfg, "team_column"),
            substatus_column=option(cfg, "substatus_column"),
            separator=option(cfg, "activity_separator"),
            ignore=frozenset(option(cfg, "ignore_activities")),
            response=frozenset(option(cfg, "response_activities")),
            assignee_activities=None if assignee is None else frozenset(assignee),
            automation=_automation_pattern(option(cfg, "automation_resources")),
        )

    def columns(self) -> list[str]:
        """The source columns the options name."""
        names = (self.case_column, self.activity_column, self.substatus_column, self.timestamp_column,
                 self.resource_column, self.team_column)
        return [c for c in dict.fromkeys(names) if c is not None]


def _key(cfg: SourceConfig, setting: str) -> str:
    return f"sources[{cfg.name!r}].options.{setting}"


def _automation_pattern(patterns: Any) -> re.Pattern[str] | None:
    """One pattern matching any of the ``automation_resources`` regular expressions (whole value)."""
    patterns = [str(p) for p in patterns]
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


def _required(cfg: SourceConfig, name: str, default: str | None = None) -> str:
    """A column option the import cannot do without (the config model requires it; this guards direct use)."""
    value = option(cfg, name) or default
    if not value:
        raise ConfigError(_key(cfg, name), "is missing", "name the source column, e.g. case_column = \"Case ID\"")
    return str(value)


def to_batch(raw: pd.DataFrame, cfg: SourceConfig) -> Batch:
    """Activity rows (source column names, text values) -> ``Batch`` of one ticket per case and its events.

    ``rows_read`` is ``len(raw)``; every raw row is either used or in ``rejected`` with its reason.
    """
    opts = ActivityOptions.from_config(cfg)
    _check_columns(raw, cfg, opts)
    rows, rejected = activity_rows(raw, cfg, opts)
    attributes, case_rejected = _case_attributes(raw, rows, cfg, opts)
    rows = rows[rows["ticket_id"].isin(attributes["ticket_id"])]
    events = activity_events(rows)
    tickets = activity_tickets(rows, events, attributes)
    events["source"] = cfg.name
    log.info("source %s: %d activity rows -> %d tickets, %d events, %d rejected",
             cfg.name, len(raw), len(tickets), len(events), len(rejected) + len(case_rejected))
    return Batch(tickets=conform(tickets, TICKET_COLUMNS), events=conform(events, EVENT_COLUMNS),
                 rejected=concat_frames([rejected, case_rejected], REJECTED_COLUMNS), rows_read=len(raw))


def _check_columns(raw: pd.DataFrame, cfg: SourceConfig, opts: ActivityOptions) -> None:
    for setting in ("case_column", "activity_column", "timestamp_column", "resource_column", "team_column",
                    "substatus_column"):
        name = getattr(opts, setting)
        if name is not None and name not in raw.columns:
            raise ConfigError(_key(cfg, setting), f"column {name!r} is not in the file",
                              f"name one of: {', '.join(map(str, raw.columns))}")


# --- rows --------------------------------------------------------------------------------------------

def activity_keys(norm: pd.DataFrame, opts: ActivityOptions) -> pd.Series:
    """Each row's activity key: the activity, joined with the sub-status when the source has one."""
    key = norm[opts.activity_column]
    if opts.substatus_column is None:
        return key
    sub = norm[opts.substatus_column]
    return (key + opts.separator + sub).where(sub.notna(), key)


def activity_rows(raw: pd.DataFrame, cfg: SourceConfig, opts: ActivityOptions) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw activity rows -> (good rows, rejected rows).

    Good rows come grouped by case (cases in order of first appearance, rows in file order), indexed
    by their position in ``raw``, with ``ticket_id``, ``updated_at`` (the activity's time),
    ``activity``, ``status`` (canonical, empty for ignored activities), ``assignee``,
    ``assignment_group`` and ``responds`` (a response activity).
    """
    norm = normalise_nulls(raw[opts.columns()], cfg.null_tokens).set_axis(pd.RangeIndex(len(raw)))
    stamps = read_timestamps(norm[opts.timestamp_column], cfg)
    require_offsets_or_timezone(stamps, norm[opts.timestamp_column], cfg)
    at = stamps.utc
    key = activity_keys(norm, opts)
    status = key.map(dict(opts.status_map))
    known = status.notna() | key.isin(list(opts.ignore | opts.response))
    reasons = _reasons(norm, stamps, key, known, opts)
    resource = norm[opts.resource_column] if opts.resource_column else pd.Series(None, index=norm.index, dtype="str")
    is_engineer = _is_engineer(resource, opts)
    names_assignee = is_engineer if opts.assignee_activities is None else is_engineer & key.isin(list(opts.assignee_activities))
    rows = pd.DataFrame({
        "ticket_id": norm[opts.case_column],
        "updated_at": at,
        "activity": key,
        "status": status.astype("object"),
        "assignee": resource.where(names_assignee),
        "assignment_group": norm[opts.team_column] if opts.team_column else None,
        "actor": resource,
        "responds": (key.isin(list(opts.response)) & is_engineer).to_numpy(dtype=bool),
    })
    good = reasons.isna().to_numpy()
    rejected = rejected_rows(raw.set_axis(pd.RangeIndex(len(raw))), reasons, cfg.name, norm[opts.case_column], "event")
    return _grouped(rows[good]), rejected


def _is_engineer(resource: pd.Series, opts: ActivityOptions) -> pd.Series:
    """Per row: the resource is a person (not one of ``automation_resources``); false when empty."""
    if opts.automation is None:
        return resource.notna()
    names = resource.dropna().unique()  # a few thousand names, however long the log
    systems = [name for name in names if opts.automation.fullmatch(name)]
    return resource.notna() & ~resource.isin(systems)


def _reasons(norm: pd.DataFrame, stamps: Timestamps, key: pd.Series, known: pd.Series,
             opts: ActivityOptions) -> pd.Series:
    """The first problem of each row as text (missing where the row is fine); texts built only where needed."""
    checks = [  # (mask, reason, the value quoted after the reason)
        (norm[opts.case_column].isna(), f"missing case id (column '{opts.case_column}')", None),
        (stamps.utc.isna() & ~stamps.bad, f"missing timestamp (column '{opts.timestamp_column}')", None),
        (stamps.unparseable, "unparseable timestamp", norm[opts.timestamp_column]),
        (stamps.out_of_range, f"timestamp out of range {TIMESTAMP_RANGE_TEXT}", norm[opts.timestamp_column]),
        (stamps.no_offset, "no UTC offset in timestamp (set sources.timezone)", norm[opts.timestamp_column]),
        (key.isna(), f"missing activity (column '{opts.activity_column}')", None),
        (~known, "unmapped activity", key),
    ]
    out = pd.Series(None, index=norm.index, dtype="object")
    for mask, reason, values in checks:
        new = mask.to_numpy(dtype=bool) & out.isna().to_numpy()
        if new.any():
            out[new] = reason if values is None else reason + " '" + values[new].astype("object").fillna("") + "'"
    return out


def _grouped(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows grouped by case (cases in order of first appearance), file order kept inside a case."""
    case = pd.factorize(rows["ticket_id"])[0]
    return rows.iloc[np.lexsort((np.arange(len(rows)), case))]


# --- events and tickets -----------------------------------------------------------------------------

def activity_events(rows: pd.DataFrame) -> pd.DataFrame:
    """Events of grouped activity rows: status, assignee and group changes and the first response.

    An empty status (an ignored activity), resource or team is "not recorded here": the previous
    value carries on, so it neither emits an event nor breaks a run of equal values.
    """
    return change_events(rows, actor=rows["actor"], kinds=ACTIVITY_FIELDS, empty_is_value=frozenset(),
                         responds=rows["responds"])


def _last_present(rows: pd.DataFrame, column: str) -> pd.Series:
    """Per case: the last non-empty value of ``column`` (cases without one are absent)."""
    return rows.dropna(subset=[column]).groupby("ticket_id", sort=False)[column].last()


def _resolution_times(events: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per case: (last resolution, last close) from the status events, for cases that end done.

    A resolution is a change to RESOLVED, or to CLOSED from a status that is neither (KPIS.md 3).
    """
    status = events[events["kind"] == "status"]
    previous = status.groupby("ticket_id", sort=False)["value"].shift()
    done = list(DONE_STATUSES)
    is_resolution = (status["value"] == "RESOLVED") | ((status["value"] == "CLOSED") & ~previous.isin(done))
    ends_done = status.groupby("ticket_id", sort=False)["value"].transform("last").isin(done)
    resolved = status[is_resolution & ends_done].groupby("ticket_id", sort=False)["at"].last()
    closed = status[(status["value"] == "CLOSED") & ends_done].groupby("ticket_id", sort=False)["at"].last()
    return resolved, closed


def activity_tickets(rows: pd.DataFrame, events: pd.DataFrame, attributes: pd.DataFrame) -> pd.DataFrame:
    """One ticket per case: ``attributes`` (mapped from the case's last row) completed from its history."""
    by_case = rows.groupby("ticket_id", sort=False)
    ids = attributes["ticket_id"]
    resolved, closed = _resolution_times(events)
    response = events[events["kind"] == "response"].groupby("ticket_id", sort=False)["at"].min()
    derived = {
        "opened_at": ids.map(by_case["updated_at"].min()),
        "updated_at": ids.map(by_case["updated_at"].max()),
        "status": ids.map(_last_present(rows, "status")).fillna("NEW"),
        "assignee": ids.map(_last_present(rows, "assignee")),
        "assignment_group": ids.map(_last_present(rows, "assignment_group")),
        "first_response_at": ids.map(response),
        "resolved_at": ids.map(resolved),
        "closed_at": ids.map(closed),
    }
    return attributes.assign(**{k: v.to_numpy() for k, v in derived.items()})


def _case_attributes(raw: pd.DataFrame, rows: pd.DataFrame, cfg: SourceConfig, opts: ActivityOptions
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map each case's last good row with ``map_tickets`` -> (attributes in case order, rejected rows).

    A case whose last row cannot be mapped is rejected whole: each of its rows with that reason.
    """
    last = rows[~rows["ticket_id"].duplicated(keep="last").to_numpy()]
    status = last["ticket_id"].map(_last_present(rows, "status")).fillna("NEW")
    sample = raw.iloc[last.index.to_numpy()].reset_index(drop=True)
    sample[_STATUS] = status.to_numpy(dtype=object)
    columns = {k: v for k, v in cfg.columns.items() if k not in _DERIVED}
    columns.update(ticket_id=opts.case_column, opened_at=opts.timestamp_column, status=_STATUS)
    mapped, bad = map_rows(sample, dataclasses.replace(cfg, columns=columns, status_map={}))
    mapped = mapped.sort_index()
    if bad.empty:
        return mapped, bad
    reason = rows["ticket_id"].map(dict(zip(bad["ticket_id"], "case rejected: " + bad["reason"], strict=True)))
    hit = reason.notna().to_numpy()
    positions = rows.index.to_numpy()[hit]
    rejected = rejected_rows(raw.iloc[positions].reset_index(drop=True), reason[hit].reset_index(drop=True),
                             cfg.name, rows["ticket_id"][hit].reset_index(drop=True), "event")
    return mapped, rejected
