"""What each connector reads from its source's ``options`` table, declared as plain data.

The way singer-sdk taps declare ``config_jsonschema`` and dlt declares ``@configspec``: every option a
connector reads is an ``Option`` with a name, a type, a default and a one-line description, listed for
file sources (every file kind: a file's format is told by its name), per file layout and per REST
vendor. The pipeline's config model (``pipeline/config``) turns these lists into typed models, so an
unknown option, a wrong type or a bad value stops the config at load, naming the source and the key,
before anything is read. Connectors read the typed values with
``option(cfg, name)``: the value as configured, else the declared default (one place for each default).

Types are plain Python annotations: ``str``, ``int``, ``bool``, ``tuple[str, ...]`` (a TOML array),
``Mapping[str, str]`` / ``Mapping[str, int]`` (a TOML table), ``Literal[...]``, unions with ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from kpis.schema import STATUSES

if TYPE_CHECKING:
    from connectors.base import SourceConfig

__all__ = ["ACTIVITY_DERIVED", "FILE_KINDS", "LAYOUTS", "REST_KINDS", "Option", "declared_options", "option"]

FILE_KINDS = ("csv", "excel", "json", "ndjson", "parquet")
REST_KINDS = ("servicenow", "jira", "zendesk")
LAYOUTS = ("tickets", "snapshot", "activity")
#: Ticket columns the activity layout derives from the activities; its ``columns`` cannot supply them
#: (``ticket_id`` names the case column when ``options.case_column`` is not set).
ACTIVITY_DERIVED = ("ticket_id", "opened_at", "updated_at", "status", "assignee", "assignment_group",
                    "first_response_at", "resolved_at", "closed_at")


@dataclass(frozen=True)
class Option:
    """One option a connector reads: its name, type, default and what it does (one line)."""

    name: str
    type: Any
    default: Any
    description: str
    required: bool = False
    minimum: int | None = None  # for whole numbers: the smallest value allowed
    check: Callable[[Any], None] | None = None  # raises ValueError saying what is wrong with a value


def canonical_statuses(values: Any) -> None:
    """Every value (or every value of a mapping) is a canonical status."""
    items = values.values() if isinstance(values, Mapping) else values
    wrong = [v for v in items if v not in STATUSES]
    if wrong:
        raise ValueError(f"{wrong[0]!r} is not a canonical status; use one of {', '.join(STATUSES)}")


def regular_expressions(patterns: Any) -> None:
    """Every pattern compiles as a Python regular expression."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a valid regular expression ({exc}); write e.g. \".*-Siebel\"") from None


def not_empty(value: Any) -> None:
    """Text that is not empty."""
    if value == "":
        raise ValueError("is empty; leave the option out to use the default")


def one_separator(value: Any) -> None:
    """One character that can separate CSV fields: not a quote or a line break."""
    not_empty(value)
    if len(value) != 1:
        raise ValueError(f"{value!r} is {len(value)} characters; a CSV field separator is one, e.g. \";\" or \"\\t\"")
    if value in "\"\r\n":
        raise ValueError(f"{value!r} cannot separate fields (it quotes or ends them); e.g. \",\", \";\" or \"\\t\"")


def scores_1_to_5(scores: Any) -> None:
    """Every score of a rating -> score map is a whole number from 1 to 5."""
    wrong = {k: v for k, v in scores.items() if not 1 <= v <= 5}
    if wrong:
        label, score = next(iter(wrong.items()))
        raise ValueError(f"{label} = {score} is not a score from 1 to 5")


# --- file sources ---------------------------------------------------------------------------------

# Every file kind: a file's format is told by its name (.csv, .xlsx, .json...), else by the kind.
FILE_OPTIONS = (
    Option("delimiter", str | None, None, "CSV files: the field separator (default \",\"; a tab for .tsv files)",
           check=one_separator),
    Option("records_key", str | None, None,
           "JSON files holding an object: the key of its array of records, e.g. \"tickets\""),
    Option("epoch", Literal["s", "ms"] | None, None,
           "timestamps are numbers since 1970-01-01 UTC in this unit: \"s\" or \"ms\""),
    Option("header_row", int | None, None, "CSV and Excel files: the 1-based line (row) of the header (default 1); "
           "the rows above it are a banner and skipped, e.g. 3 under two lines of \"导出时间: ...\"", minimum=1),
)
LAYOUT_OPTIONS: Mapping[str, tuple[Option, ...]] = {
    "tickets": (),
    "snapshot": (
        Option("order_by", str | None, None,
               "numeric column that orders the snapshots of one update time (e.g. \"sys_mod_count\")"),
        Option("actor_column", str | None, None, "column naming who made each update (the events' actor)"),
        Option("response_statuses", tuple[str, ...], (),
               "canonical statuses whose first snapshot counts as the first response, e.g. [\"IN_PROGRESS\"]",
               check=canonical_statuses),
    ),
    "activity": (
        Option("case_column", str | None, None, "column holding the case (ticket) id (default: columns.ticket_id)"),
        Option("activity_column", str, None, "column holding the activity name", required=True),
        Option("timestamp_column", str, None, "column holding when the activity happened", required=True),
        Option("resource_column", str | None, None, "column naming who did the activity (the engineer)"),
        Option("team_column", str | None, None, "column naming the team"),
        Option("substatus_column", str | None, None, "column joined to the activity to make its key"),
        Option("activity_separator", str, "/", "text between the activity and the sub-status in the key"),
        Option("activity_status_map", Mapping[str, str] | None, None,
               "activity key -> canonical status (default: status_map)", check=canonical_statuses),
        Option("ignore_activities", tuple[str, ...], (), "activity keys that set no status"),
        Option("response_activities", tuple[str, ...], (),
               "activity keys whose first occurrence by an engineer is the first response"),
        Option("assignee_activities", tuple[str, ...] | None, None,
               "only these activity keys name the assignee (default: every activity)"),
        Option("automation_resources", tuple[str, ...], (),
               "regular expressions of resources that are systems, not engineers (e.g. \".*-Siebel\")",
               check=regular_expressions),
    ),
}

# --- REST vendors ---------------------------------------------------------------------------------

REST_OPTIONS: Mapping[str, tuple[Option, ...]] = {
    "servicenow": (
        Option("tables", tuple[str, ...], ("incident", "sc_req_item", "change_request"),
               "the Table API tables read, in this order"),
        Option("page_overlap", int | None, None,
               "rows each ticket page re-reads of the page before (default: a tenth of page_size)", minimum=0),
        Option("id_batch", int, 100, "sys_ids per documentkeyIN / taskIN / element_idIN query", minimum=1),
        Option("automation_users", tuple[str, ...], ("system", "guest"),
               "accounts whose comments are never a first response"),
    ),
    "jira": (
        Option("first_response_sla", str, "Time to first response",
               "the SLA whose first completed cycle's stop is the first response"),
        Option("jql", str | None, None, "JQL ANDed to the update filter, e.g. \"project = ITSM\""),
        Option("group_field", str | None, None, "a field holding the team, e.g. \"customfield_10001\""),
        Option("changelog_page_size", int, 1000, "changelog entries per bulk-fetch call", minimum=1),
    ),
    "zendesk": (
        Option("satisfaction_scores", Mapping[str, int], {},
               "satisfaction rating -> score 1..5, over good = 5 and bad = 1 (\"offered\" is no answer)",
               check=scores_1_to_5),
        Option("category_field", int | str | None, None, "id of the custom field holding the category"),
        Option("service_field", int | str | None, None,
               "id of the custom field holding the service (business system); its stored value (a drop-down's tag)"),
    ),
}


def declared_options(kind: str, layout: str | None = None) -> tuple[Option, ...]:
    """Every option a source of ``kind`` (and, for files, ``layout``) reads; empty for an unknown kind."""
    if kind in REST_OPTIONS:
        return REST_OPTIONS[kind]
    if kind not in FILE_KINDS:
        return ()
    return (*FILE_OPTIONS, *LAYOUT_OPTIONS.get(layout or "tickets", ()))


def option(cfg: SourceConfig, name: str) -> Any:
    """The value of option ``name`` of ``cfg``: as configured, else its declared default.

    Asking for an option the source's kind does not declare is a programming error (``KeyError``).
    """
    declared = {o.name: o for o in declared_options(cfg.kind, cfg.layout)}
    if name not in declared:
        raise KeyError(f"{cfg.kind} sources declare no option {name!r} (connectors/options.py)")
    value = cfg.options.get(name)
    return declared[name].default if value is None else value
