"""The canonical frames and every stored table's columns, in one place.

Connectors produce ``tickets`` and ``events`` frames with the columns of KPIS.md 1.1 / 1.2;
``kpis`` turns them into ``ticket_facts``, ``kpi_engineer``, ``kpi_team``, ``kpi_breakdown`` and ``scorecard``.
Approved exemptions (KPIS.md 1.4) arrive as an ``adjustments`` frame (``ADJUSTMENT_COLUMNS``).
Each column carries its dtype and the one-line meaning that becomes its SQL column comment and
its row in ``docs/tables.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

KPI_VERSION = "v2"

STATUSES = (
    "NEW",
    "IN_PROGRESS",
    "WAITING_CUSTOMER",
    "WAITING_THIRD_PARTY",
    "ON_HOLD",
    "RESOLVED",
    "CLOSED",
    "CANCELLED",
)
DONE_STATUSES = frozenset({"RESOLVED", "CLOSED"})
TICKET_TYPES = ("incident", "request", "maintenance")
PRIORITIES = ("P1", "P2", "P3", "P4")
# The tie-break order of events sharing one timestamp (KPIS.md 1.2).
EVENT_KINDS = ("response", "assignee", "group", "priority", "category", "status")
GRAINS = ("day", "week", "month", "quarter")
#: What an approved exemption exempts (KPIS.md 1.4): that SLA, or the whole ticket.
EXEMPTION_SCOPES = ("response", "resolution", "ticket")
EXEMPT = "exempt"  # the SLA verdict of an exempted metric, and the excluded_reason of an exempted ticket
UNASSIGNED = "unassigned"
NO_PRIORITY = "(none)"  # the backlog's priority of a ticket without one
#: The texts a history for the ops tables codes first (``kpis.backlog`` looks its pause states up in a table over
#: the statuses' codes, so they must be small): the facts code them first too, so their history can be shared.
HISTORY_SEED = (*STATUSES, UNASSIGNED, NO_PRIORITY)

# Dtype names used below.
STR = "str"
TS = "datetime64[us, UTC]"
INT = "Int64"
FLOAT = "Float64"
BOOL = "boolean"
DATE = "date32"  # stored as a calendar date; in pandas a datetime64[s] at midnight, see to_date_column


@dataclass(frozen=True)
class Column:
    """A column of a canonical frame or a stored table."""

    name: str
    dtype: str
    description: str
    required: bool = False


def _cols(*cols: Column) -> dict[str, Column]:
    return {c.name: c for c in cols}


TICKET_COLUMNS = _cols(
    Column("ticket_id", STR, "Ticket id, unique within its source", required=True),
    Column("source", STR, "Name of the configured source the ticket came from", required=True),
    Column("ticket_type", STR, "incident / request / maintenance (planned O&M work)", required=True),
    Column("priority", STR, "Current priority P1..P4, mapped from the source's scale"),
    Column("status", STR, "Current canonical status", required=True),
    Column("opened_at", TS, "When the problem was reported (UTC)", required=True),
    Column("updated_at", TS, "Last change in the source (UTC), used for incremental pulls"),
    Column("first_response_at", TS, "First response or acknowledgement by an engineer (UTC)"),
    Column("resolved_at", TS, "Final resolution as the source reports it (UTC)"),
    Column("closed_at", TS, "When the ticket was closed (UTC)"),
    Column("assignee", STR, "Engineer assigned now (or at resolution)"),
    Column("assignment_group", STR, "Team assigned now"),
    Column("reopen_count", INT, "Reopens as counted by the source"),
    Column("reassignment_count", INT, "Group or assignee changes after the first assignment, per the source"),
    Column("category", STR, "Final category / configuration item / fault code"),
    Column("diagnosed_category", STR, "The category the engineer first diagnosed"),
    Column("close_code", STR, "Close code"),
    Column("satisfaction", STR, "Survey answer as given; mapped to 1..5 by kpi.satisfaction_map"),
    Column("satisfaction_at", TS, "When the survey was answered (UTC)"),
    Column("planned_start", TS, "Start of the planned maintenance window (UTC)"),
    Column("planned_end", TS, "End of the planned maintenance window (UTC)"),
    Column("actual_end", TS, "When the maintenance work really ended (UTC)"),
    Column("caused_by", STR, "ticket_id of the maintenance ticket whose work caused this incident"),
    Column("client", STR, "The organisation served (客户): ServiceNow company, JSM organization, Zendesk organization name"),
    Column("service", STR, "The business system or service affected (业务系统)"),
)

EVENT_COLUMNS = _cols(
    Column("source", STR, "Name of the configured source", required=True),
    Column("ticket_id", STR, "The ticket this event belongs to", required=True),
    Column("at", TS, "When the change happened (UTC)", required=True),
    Column("kind", STR, "status / assignee / group / priority / category / response", required=True),
    Column("value", STR, "New value (canonical status, P1..P4, ...); empty for response"),
    Column("actor", STR, "Who made the change (may be empty)"),
    Column("seq", INT, "Position of the event in its source, the last tie-breaker", required=True),
    Column("event_id", STR, "The source's own id of this change (audit / changelog / snapshot key), when it has one"),
)

REJECTED_COLUMNS = _cols(
    Column("run_id", STR, "The run that read the row"),
    Column("source", STR, "Source the row came from"),
    Column("ticket_id", STR, "Ticket id of the row, when it could be read"),
    Column("row_kind", STR, "ticket, event, file (a file that could not be read) or adjustment (an approval)"),
    Column("raw", STR, "The row as read, JSON"),
    Column("reason", STR, "Why the row could not be used"),
)

#: One approved exemption as read (KPIS.md 1.4), with the file it came from.
ADJUSTMENT_COLUMNS = _cols(
    Column("source", STR, "The ticket's source (the only configured source when the file has no source column)",
           required=True),
    Column("ticket_id", STR, "The exempted ticket", required=True),
    Column("scope", STR, "response or resolution (that SLA is exempt) or ticket (the whole ticket, out of every KPI)",
           required=True),
    Column("reason", STR, "Why, as approved (e.g. 客户原因, 第三方原因, 不可抗力)", required=True),
    Column("approved_by", STR, "Who approved it", required=True),
    Column("approved_at", TS, "When it was approved (UTC); it applies to runs whose as_of is at or after it",
           required=True),
    Column("file", STR, "The approvals file it was read from (adjustments.path)"),
)

#: The ``adjustments`` table: every valid approval, one per (source, ticket_id, scope), and whether it applied.
STORED_ADJUSTMENT_COLUMNS = _cols(
    *ADJUSTMENT_COLUMNS.values(),
    Column("applied", BOOL, "The last run applied it: approved_at <= that run's as_of and the ticket exists"),
    Column("as_of", TS, "The as-of of the run that last changed this row (UTC)"),
)

TICKET_FACT_COLUMNS = _cols(
    Column("source", STR, "Source of the ticket"),
    Column("ticket_id", STR, "Ticket id"),
    Column("ticket_type", STR, "incident / request / maintenance"),
    Column("priority", STR, "Current priority"),
    Column("status", STR, "Current status: the last status event, else the status column"),
    Column("category", STR, "Final category: the last category event, else the category column"),
    Column("client", STR, "The organisation served (client contract); null when empty"),
    Column("service", STR, "The business system or service affected; null when empty"),
    Column("opened_at", TS, "When the problem was reported (UTC)"),
    Column("closed_at", TS, "When the ticket was closed (UTC)"),
    Column("planned_end", TS, "End of the planned maintenance window (UTC)"),
    Column("satisfaction_at", TS, "When the survey was answered (UTC)"),
    Column("caused_by", STR, "Maintenance ticket whose work caused this incident"),
    Column("excluded_reason", STR, "Why the ticket is in no KPI (cancelled, out_of_scope, exempt: an approved "
                                   "ticket exemption); null when included"),
    Column("engineer", STR, "Engineer credited: last assignee at or before resolution, else assignee, else 'unassigned'"),
    Column("team", STR, "Team credited: last group at or before resolution, else assignment_group, else 'unassigned'"),
    Column("first_resolved_at", TS, "First resolution (UTC); null while not resolved"),
    Column("resolved_at", TS, "Last resolution (UTC); null while not resolved"),
    Column("response_at", TS, "First response: response event, else first_response_at, else first resolution"),
    Column("reopen_count", INT, "Changes from RESOLVED/CLOSED back to work"),
    Column("reopened", BOOL, "reopen_count > 0"),
    Column("reassigned", BOOL, "Assignee or group changed from one engineer/team to another"),
    Column("response_priority", STR, "Priority in effect at the response (selects the response SLA policy)"),
    Column("resolution_priority", STR, "Priority in effect at the resolution (selects the resolution SLA policy)"),
    Column("response_policy", STR, "Name of the SLA policy governing the response (first match in config order)"),
    Column("resolution_policy", STR, "Name of the SLA policy governing the resolution (first match in config order)"),
    Column("response_target_s", INT, "Response target of the matching SLA policy, seconds"),
    Column("resolution_target_s", INT, "Resolution target of the matching SLA policy, seconds"),
    Column("response_calendar_s", INT, "response_at - opened_at, seconds"),
    Column("response_business_s", INT, "Business seconds from opened_at to response_at on the policy calendar"),
    Column("resolution_calendar_s", INT, "resolved_at - opened_at, seconds"),
    Column("resolution_business_s", INT, "Business seconds from opened_at to resolved_at minus pauses"),
    Column("dq_flag", STR, "Data-quality flag: negative_response or negative_resolution"),
    Column("response_sla", STR, "met / breached / in_progress against the response target; exempt by an approved "
                                "response exemption"),
    Column("resolution_sla", STR, "met / breached / in_progress against the resolution target; exempt by an "
                                  "approved resolution exemption"),
    Column("response_due_at", TS, "When the response business time reaches its target (UTC); null without one"),
    Column("resolution_due_at", TS, "When the resolution business time, pauses taken off, reaches its target "
                                    "(UTC); null without one or when the clock stops in a pause before it"),
    Column("first_fix", BOOL, "Resolved incident/request neither reopened nor reassigned"),
    Column("initial_diagnosis", STR, "diagnosed_category, else the category in effect at the response"),
    Column("diagnosis_assessable", BOOL, "Resolved incident/request with an initial diagnosis and a final category"),
    Column("diagnosis_accurate", BOOL, "Assessable, final category == initial diagnosis and not reopened"),
    Column("csat_score", FLOAT, "Satisfaction mapped to 1..5"),
    Column("csat_satisfied", BOOL, "csat_score >= 4 (satisfied + fairly satisfied)"),
    Column("maintenance_on_time", BOOL, "Maintenance completed, not failed, ended by planned_end; null while not due"),
    Column("induced_incident", BOOL, "Incident caused by a maintenance ticket of the same source"),
    Column("as_of", TS, "The run's as-of timestamp (UTC)"),
    Column("kpi_version", STR, "Version of the KPI definitions"),
)


def _kpi_columns(*who: Column) -> dict[str, Column]:
    """The KPIS.md 4 columns, keyed by grain, period_start, ``who`` (the credited columns) and ticket_type."""
    return _cols(
        Column("grain", STR, "day / week / month / quarter"),
        Column("period_start", DATE, "Local date (reporting timezone) that starts the period"),
        *who,
        Column("ticket_type", STR, "incident / request / maintenance"),
        Column("opened_count", INT, "Tickets opened (anchor opened_at)"),
        Column("response_n", INT, "Tickets with a response business time (anchor opened_at)"),
        Column("response_mean_min", FLOAT, "Mean response business minutes"),
        Column("response_median_min", FLOAT, "Median response business minutes (percentile_cont 0.5)"),
        Column("response_p90_min", FLOAT, "P90 response business minutes (percentile_cont 0.9)"),
        Column("response_sla_met", INT, "Response SLA met (anchor opened_at)"),
        Column("response_sla_breached", INT, "Response SLA breached (anchor opened_at)"),
        Column("response_sla_rate", FLOAT, "response_sla_met / (met + breached); in_progress and exempt left out"),
        Column("response_sla_exempt", INT, "Response SLA exempt by an approved exemption (anchor opened_at)"),
        Column("resolved_count", INT, "Incidents and requests resolved (anchor resolved_at)"),
        Column("resolution_n", INT, "Tickets with a resolution business time (anchor resolved_at)"),
        Column("resolution_mean_min", FLOAT, "Mean resolution business minutes"),
        Column("resolution_median_min", FLOAT, "Median resolution business minutes (percentile_cont 0.5)"),
        Column("resolution_p90_min", FLOAT, "P90 resolution business minutes (percentile_cont 0.9)"),
        Column("resolution_sla_met", INT, "Resolution SLA met (anchor resolved_at)"),
        Column("resolution_sla_breached", INT, "Resolution SLA breached (anchor resolved_at)"),
        Column("resolution_sla_rate", FLOAT, "resolution_sla_met / (met + breached); in_progress and exempt left out"),
        Column("resolution_sla_exempt", INT, "Resolved incidents/requests whose resolution SLA is exempt (anchor resolved_at)"),
        Column("first_fix_count", INT, "Resolved incidents/requests fixed first time"),
        Column("first_fix_rate", FLOAT, "first_fix_count / resolved_count"),
        Column("reopened_count", INT, "Resolved incidents/requests that were reopened"),
        Column("reopen_rate", FLOAT, "reopened_count / resolved_count"),
        Column("accuracy_assessable", INT, "Resolved incidents/requests whose diagnosis can be assessed"),
        Column("accuracy_correct", INT, "Assessable tickets diagnosed accurately"),
        Column("accuracy_rate", FLOAT, "accuracy_correct / accuracy_assessable"),
        Column("csat_answered", INT, "Tickets with a satisfaction score (anchor satisfaction_at, else resolved_at)"),
        Column("csat_satisfied", INT, "Answers scoring >= 4"),
        Column("csat_rate", FLOAT, "csat_satisfied / csat_answered"),
        Column("maintenance_due", INT, "Maintenance tickets due (anchor planned_end)"),
        Column("maintenance_on_time", INT, "Due maintenance completed on time"),
        Column("maintenance_on_time_rate", FLOAT, "maintenance_on_time / maintenance_due"),
        Column("induced_incidents", INT, "Incidents caused by this maintenance work (anchor: incident opened_at)"),
        Column("low_sample", BOOL, "resolved_count + maintenance_due < reporting.min_sample"),
        Column("as_of", TS, "The run's as-of timestamp (UTC)"),
        Column("kpi_version", STR, "Version of the KPI definitions"),
    )


KPI_ENGINEER_COLUMNS = _kpi_columns(Column("engineer", STR, "Engineer credited with the tickets"))
KPI_TEAM_COLUMNS = _kpi_columns(Column("team", STR, "Team credited with the tickets"))
KPI_BREAKDOWN_COLUMNS = _kpi_columns(
    Column("dimension", STR, "What the rows are broken down by: client, service, category, priority (reporting.breakdowns)"),
    Column("member", STR, "The tickets' value of the dimension (final category, current priority); '(none)' when empty"),
)
KPI_BREAKDOWN_KEYS = ("grain", "period_start", "dimension", "member", "ticket_type")

SCORECARD_COLUMNS = _cols(
    Column("grain", STR, "day / week / month / quarter"),
    Column("period_start", DATE, "Local date (reporting timezone) that starts the period"),
    Column("engineer", STR, "Engineer"),
    Column("score", FLOAT, "Weighted mean of the KPI scores x 100, over the KPIs that have a value"),
    Column("kpis_scored", INT, "How many configured KPIs had a value"),
    Column("weight_scored", FLOAT, "Sum of the weights of the KPIs that had a value"),
    Column("low_sample", BOOL, "Reported but not ranked: resolved_count + maintenance_due < min_sample"),
    Column("rank", INT, "Rank by score within grain and period (1 = best); null when not ranked"),
    Column("as_of", TS, "The run's as-of timestamp (UTC)"),
    Column("kpi_version", STR, "Version of the KPI definitions"),
)

SCORECARD_KPI_COLUMNS = _cols(
    Column("grain", STR, "day / week / month / quarter"),
    Column("period_start", DATE, "Local date (reporting timezone) that starts the period"),
    Column("engineer", STR, "Engineer"),
    Column("kpi", STR, "KPI name (a kpi_engineer column)"),
    Column("value", FLOAT, "The engineer's value over all ticket types in the period"),
    Column("target", FLOAT, "Configured target"),
    Column("weight", FLOAT, "Configured weight"),
    Column("higher_is_better", BOOL, "Direction of the KPI"),
    Column("attainment", FLOAT, "value / target (target / value when lower is better)"),
    Column("score", FLOAT, "Attainment capped at 1 (induced_incidents: 1 at 0, else 0)"),
    Column("as_of", TS, "The run's as-of timestamp (UTC)"),
    Column("kpi_version", STR, "Version of the KPI definitions"),
)

STATUS_TIME_COLUMNS = _cols(
    Column("source", STR, "Source of the ticket"),
    Column("ticket_id", STR, "Ticket id"),
    Column("status", STR, "Canonical status the ticket was in"),
    Column("entries", INT, "How many status events set this status"),
    Column("calendar_s", INT, "Seconds spent in this status (the open last segment runs to as_of)"),
    Column("business_s", INT, "Business seconds in this status, on the ticket's resolution-policy calendar "
                              "(else the default calendar)"),
    Column("as_of", TS, "The run's as-of timestamp (UTC)"),
    Column("kpi_version", STR, "Version of the KPI definitions"),
)

BACKLOG_COLUMNS = _cols(
    Column("day", DATE, "Local date (reporting timezone); the backlog is taken at the end of this day"),
    Column("engineer", STR, "Engineer assigned at the end of the day (last assignee event before it, else the "
                            "assignee column, else 'unassigned')"),
    Column("ticket_type", STR, "incident / request / maintenance"),
    Column("priority", STR, "Priority at the end of the day (last priority event before it, else the ticket's "
                            "priority, else '(none)')"),
    Column("open_count", INT, "Tickets open at the end of the day"),
    Column("age_lt_1d", INT, "Open tickets opened less than 1 day before the end of the day"),
    Column("age_1_3d", INT, "Open tickets aged 1 to under 3 days"),
    Column("age_3_7d", INT, "Open tickets aged 3 to under 7 days"),
    Column("age_7_30d", INT, "Open tickets aged 7 to under 30 days"),
    Column("age_ge_30d", INT, "Open tickets aged 30 days or more"),
    Column("oldest_opened_at", TS, "opened_at of the oldest open ticket (UTC)"),
    Column("overdue_count", INT, "Open tickets whose resolution_due_at is before the end of the day"),
    Column("paused_count", INT, "Open tickets whose status at the end of the day is a pause status"),
    Column("as_of", TS, "The run's as-of timestamp (UTC)"),
    Column("kpi_version", STR, "Version of the KPI definitions"),
)

ALERTS_SENT_COLUMNS = _cols(
    Column("alert", STR, "Name of the [[alerts]] entry that posted"),
    Column("kind", STR, "breached or due_soon"),
    Column("source", STR, "Source of the ticket"),
    Column("ticket_id", STR, "Ticket id"),
    Column("metric", STR, "response or resolution"),
    Column("posted_at", TS, "When it was last posted (UTC)"),
    Column("run_id", STR, "The run after which it was posted"),
)

TABLE_COLUMNS: dict[str, dict[str, Column]] = {
    "ticket_facts": TICKET_FACT_COLUMNS,
    "kpi_engineer": KPI_ENGINEER_COLUMNS,
    "kpi_team": KPI_TEAM_COLUMNS,
    "scorecard": SCORECARD_COLUMNS,
    "scorecard_kpi": SCORECARD_KPI_COLUMNS,
    "rejected_rows": REJECTED_COLUMNS,
    "adjustments": STORED_ADJUSTMENT_COLUMNS,
    "kpi_breakdown": KPI_BREAKDOWN_COLUMNS,
    "ticket_status_time": STATUS_TIME_COLUMNS,
    "kpi_backlog": BACKLOG_COLUMNS,
    "alerts_sent": ALERTS_SENT_COLUMNS,
}

TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "ticket_facts": ("source", "ticket_id"),
    "kpi_engineer": ("grain", "period_start", "engineer", "ticket_type"),
    "kpi_team": ("grain", "period_start", "team", "ticket_type"),
    "scorecard": ("grain", "period_start", "engineer"),
    "scorecard_kpi": ("grain", "period_start", "engineer", "kpi"),
    "adjustments": ("source", "ticket_id", "scope"),
    "kpi_breakdown": KPI_BREAKDOWN_KEYS,
    "ticket_status_time": ("source", "ticket_id", "status"),
    "kpi_backlog": ("day", "engineer", "ticket_type", "priority"),
    "alerts_sent": ("alert", "kind", "source", "ticket_id", "metric"),
}


def to_date_column(values: pd.Series) -> pd.Series:
    """Date columns travel in pandas as ``datetime64[s]`` at local midnight (no timezone)."""
    return pd.to_datetime(values).astype("datetime64[s]")


def _pandas_dtype(dtype: str) -> str:
    return "datetime64[s]" if dtype == DATE else dtype


def empty_frame(columns: dict[str, Column]) -> pd.DataFrame:
    """An empty frame with the given columns and dtypes."""
    return pd.DataFrame({c.name: pd.Series(dtype=_pandas_dtype(c.dtype)) for c in columns.values()})


def conform(frame: pd.DataFrame, columns: dict[str, Column]) -> pd.DataFrame:
    """Return ``frame`` with exactly ``columns`` in order and dtype; missing optional columns are null.

    Values must already be of the right kind (timestamps tz-aware, strings as strings); this only
    fixes the container dtypes and the column set.
    """
    out = {}
    n = len(frame)
    for col in columns.values():
        dtype = _pandas_dtype(col.dtype)
        if col.name in frame.columns:
            out[col.name] = _as_dtype(frame[col.name], dtype).reset_index(drop=True)
        else:
            out[col.name] = pd.Series(index=pd.RangeIndex(n), dtype=dtype)
    return pd.DataFrame(out, copy=False)


def _as_dtype(s: pd.Series, dtype: str) -> pd.Series:
    if str(s.dtype) == dtype and not (dtype == STR and s.dtype.na_value is not np.nan):
        return s
    if dtype == TS:
        return pd.to_datetime(s, utc=True).astype(TS)
    if dtype == STR:
        return s.astype("object").where(s.notna(), None).astype(STR)
    return s.astype(dtype)


def stamp_run(frame: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Set ``frame``'s ``as_of`` (the run's, in UTC) and ``kpi_version`` on every row, in place; returns it.

    Both columns are built from one value each (numpy and Arrow), not from a Python object per row.
    """
    n = len(frame)
    at = np.datetime64(pd.Timestamp(as_of).tz_convert("UTC").tz_localize(None), "us")
    frame["as_of"] = pd.DatetimeIndex(np.full(n, at)).tz_localize("UTC").array
    frame["kpi_version"] = repeated_text(KPI_VERSION, n)
    return frame


def repeated_text(text: str | None, n: int) -> pd.api.extensions.ExtensionArray:
    """A ``str`` column of ``n`` rows that all hold ``text`` (missing when None), built by Arrow from one
    value, not from a Python object per row."""
    if text is None:
        values = pa.nulls(n, pa.large_string())
    else:
        codes = pa.array(np.zeros(n, dtype="int32"))
        values = pa.DictionaryArray.from_arrays(codes, pa.array([text], pa.large_string())).cast(pa.large_string())
    return pd.array(values, dtype=pd.StringDtype("pyarrow", na_value=np.nan))


def rows_where(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """``frame[mask]`` (a boolean numpy mask; the rows keep their index labels), column by column: an Arrow
    column is filtered chunk by chunk, where pandas takes it by positions, which first joins its chunks. A
    stored 10M-ticket layer read from Parquet has ~300 chunks per text column; taking all but 1% of its rows
    took ~2x as long as filtering them."""
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"rows_where takes a boolean mask, not {mask.dtype} (positions: use frame.take)")
    if mask.all():  # as pandas: every row kept is the frame itself (copy on write), not a copy of it
        return frame.copy(deep=False)
    if frame.columns.has_duplicates:  # a column name must pick one column
        return frame[mask]
    columns = {name: frame[name].array[mask] for name in frame.columns}
    return pd.DataFrame(columns, index=frame.index[mask], columns=frame.columns, copy=False)


def concat_frames(frames, columns: dict[str, Column]) -> pd.DataFrame:
    """Stack frames of one table; the result has exactly ``columns`` (typed and empty when there are none)."""
    frames = [f for f in frames if len(f)]
    return conform(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(), columns)


def empty_tickets() -> pd.DataFrame:
    """An empty canonical ``tickets`` frame."""
    return empty_frame(TICKET_COLUMNS)


def empty_events() -> pd.DataFrame:
    """An empty canonical ``events`` frame."""
    return empty_frame(EVENT_COLUMNS)


def empty_rejected() -> pd.DataFrame:
    """An empty ``rejected_rows`` frame."""
    return empty_frame(REJECTED_COLUMNS)


def empty_adjustments() -> pd.DataFrame:
    """An empty ``adjustments`` frame (no approved exemption)."""
    return empty_frame(ADJUSTMENT_COLUMNS)
