"""Analyst views over the stored tables, in SQL that runs on SQLite, PostgreSQL and DuckDB.

    v_engineer_quarter, v_engineer_month   an engineer's KPIs over all ticket types, per quarter / month
    v_team_quarter                         a team's KPIs over all ticket types, per quarter
    v_sla_breaches                         ticket_facts rows with a breached response or resolution SLA
    v_scorecard_current                    the scorecard of the latest period of each grain
    v_exemptions                           the approved exemptions with the ticket's engineer, team and verdicts
    v_breakdown_month, v_breakdown_quarter a breakdown member's KPIs (client, service, ...) over all ticket types
    v_status_time                          time in status per ticket, in hours, with the ticket's engineer, team...
    v_backlog_latest                       the backlog at the end of the latest stored day

Rates are re-aggregated from their stored numerators and denominators (``SUM(num) / NULLIF(SUM(den), 0)``),
never averaged. Means are re-aggregated exactly as ``SUM(mean * n) / SUM(n)``. A median or P90 cannot be
combined across ticket types: the rollups carry it only when a single ticket type has values in that
period, and null otherwise (compute it from ``ticket_facts`` when you need it).

``create_views(engine)`` (re)creates them in a SQL store; ``pipeline.analyst.query`` creates the same views
over the Parquet store in DuckDB. Every view column is described here once: the descriptions become
PostgreSQL column comments and the views' part of ``docs/tables.md``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, inspect

from pipeline.store.ledger import Ledger
from pipeline.store.schema import serialise_schema_changes

__all__ = [
    "VIEWS",
    "View",
    "create_view_statements",
    "create_views",
    "rollup_sql",
    "view_sql",
    "view_statements",
]

log = logging.getLogger(__name__)

_VIEWS_FINGERPRINT = "views_fingerprint"  # store_state: the statements the views were last made with

_FLOAT = "DOUBLE PRECISION"


@dataclass(frozen=True)
class View:
    """One analyst view: its name, what a row is, its SQL and its columns with their meanings."""

    name: str
    description: str
    sql: str
    columns: tuple[tuple[str, str], ...]
    based_on: tuple[str, ...]


# -- rollups of kpi_engineer / kpi_team over ticket types ------------------------------------------
_COUNTS = (
    ("opened_count", "Tickets opened (anchor opened_at)"),
    ("response_n", "Tickets with a response business time (anchor opened_at)"),
    ("response_sla_met", "Response SLA met"),
    ("response_sla_breached", "Response SLA breached"),
    ("response_sla_exempt", "Response SLA exempt by an approved exemption"),
    ("resolved_count", "Incidents and requests resolved (anchor resolved_at)"),
    ("resolution_n", "Tickets with a resolution business time (anchor resolved_at)"),
    ("resolution_sla_met", "Resolution SLA met"),
    ("resolution_sla_breached", "Resolution SLA breached"),
    ("resolution_sla_exempt", "Resolved incidents/requests whose resolution SLA is exempt"),
    ("first_fix_count", "Resolved incidents/requests fixed first time"),
    ("reopened_count", "Resolved incidents/requests that were reopened"),
    ("accuracy_assessable", "Resolved incidents/requests whose diagnosis can be assessed"),
    ("accuracy_correct", "Assessable tickets diagnosed accurately"),
    ("csat_answered", "Tickets with a satisfaction score"),
    ("csat_satisfied", "Answers scoring >= 4"),
    ("maintenance_due", "Maintenance tickets due (anchor planned_end)"),
    ("maintenance_on_time", "Due maintenance completed on time"),
    ("induced_incidents", "Incidents caused by this maintenance work"),
)
# (rate, numerator, denominator columns summed, meaning)
_RATES = (
    (
        "response_sla_rate",
        "response_sla_met",
        ("response_sla_met", "response_sla_breached"),
        "SUM(response_sla_met) / SUM(met + breached); null when none is decided",
    ),
    (
        "resolution_sla_rate",
        "resolution_sla_met",
        ("resolution_sla_met", "resolution_sla_breached"),
        "SUM(resolution_sla_met) / SUM(met + breached); null when none is decided",
    ),
    ("first_fix_rate", "first_fix_count", ("resolved_count",), "SUM(first_fix_count) / SUM(resolved_count)"),
    ("reopen_rate", "reopened_count", ("resolved_count",), "SUM(reopened_count) / SUM(resolved_count)"),
    (
        "accuracy_rate",
        "accuracy_correct",
        ("accuracy_assessable",),
        "SUM(accuracy_correct) / SUM(accuracy_assessable)",
    ),
    ("csat_rate", "csat_satisfied", ("csat_answered",), "SUM(csat_satisfied) / SUM(csat_answered)"),
    (
        "maintenance_on_time_rate",
        "maintenance_on_time",
        ("maintenance_due",),
        "SUM(maintenance_on_time) / SUM(maintenance_due)",
    ),
)
_DURATIONS = (("response", "response"), ("resolution", "resolution"))


def _sum_float(column: str) -> str:
    return f"CAST(SUM({column}) AS {_FLOAT})"


def _rate_expr(numerator: str, denominators: tuple[str, ...]) -> str:
    den = " + ".join(_sum_float(d) for d in denominators)
    return f"{_sum_float(numerator)} / NULLIF({den}, 0)"


def _single_type(metric: str, column: str) -> str:
    """The value of the only ticket-type row with values, else null (a percentile cannot be combined)."""
    with_values = f"{metric}_n > 0"
    return (
        f"CASE WHEN SUM(CASE WHEN {with_values} THEN 1 ELSE 0 END) = 1 "
        f"THEN MAX(CASE WHEN {with_values} THEN {column} END) END"
    )


def _rollup_columns(who: str, who_doc: str, with_scorecard: bool) -> tuple[tuple[str, str], ...]:
    cols: list[tuple[str, str]] = [
        ("grain", "day / week / month / quarter"),
        ("period_start", "Local date (reporting timezone) that starts the period"),
        (who, who_doc),
        ("ticket_types", "Ticket types with a row in the period"),
    ]
    for metric, _ in _DURATIONS:
        cols += [
            (f"{metric}_mean_min", f"Mean {metric} business minutes: SUM(mean x n) / SUM(n), exact"),
            (
                f"{metric}_median_min",
                f"Median {metric} business minutes, only when one ticket type has "
                "values (a median cannot be combined); else null",
            ),
            (
                f"{metric}_p90_min",
                f"P90 {metric} business minutes, only when one ticket type has values; else null",
            ),
        ]
    cols += list(_COUNTS)
    cols += [(rate, doc) for rate, _, _, doc in _RATES]
    if with_scorecard:
        cols += [
            ("low_sample", "From scorecard: resolved_count + maintenance_due < min_sample (not ranked)"),
            ("score", "From scorecard: weighted score 0..100"),
            ("rank", "From scorecard: rank within the period (1 = best); null when not ranked"),
        ]
    cols += [
        ("as_of", "Latest as-of of the rows combined (UTC)"),
        ("kpi_version", "Version of the KPI definitions"),
    ]
    return tuple(cols)


def _rollup_select(table: str, who: str, grain: str) -> str:
    exprs = ["grain", "period_start", who, "CAST(COUNT(*) AS BIGINT) AS ticket_types"]
    for metric, _ in _DURATIONS:
        exprs.append(
            f"SUM({metric}_mean_min * {metric}_n) / NULLIF({_sum_float(f'{metric}_n')}, 0) "
            f"AS {metric}_mean_min"
        )
        exprs.append(f"{_single_type(metric, f'{metric}_median_min')} AS {metric}_median_min")
        exprs.append(f"{_single_type(metric, f'{metric}_p90_min')} AS {metric}_p90_min")
    exprs += [f"CAST(SUM({name}) AS BIGINT) AS {name}" for name, _ in _COUNTS]
    exprs += [f"{_rate_expr(num, dens)} AS {rate}" for rate, num, dens, _ in _RATES]
    exprs += ["MAX(as_of) AS as_of", "MAX(kpi_version) AS kpi_version"]
    body = ",\n    ".join(exprs)
    return f"SELECT\n    {body}\nFROM {table}\nWHERE grain = '{grain}'\nGROUP BY grain, period_start, {who}"


def rollup_sql(grain: str, *, who: str = "engineer") -> str:
    """SQL of the rollup over ticket types of ``kpi_<who>`` rows of one grain (engineer rows get the scorecard).

    ``grain`` must be one of day / week / month / quarter (it is written into the SQL).
    """
    if grain not in ("day", "week", "month", "quarter") or who not in ("engineer", "team"):
        raise ValueError(f"no rollup for grain {grain!r} by {who!r}")
    inner = _rollup_select(f"kpi_{who}", who, grain)
    if who == "team":
        return inner
    names = [name for name, _ in _rollup_columns(who, "", True)]
    picked = ", ".join(f"s.{n}" if n in ("low_sample", "score", "rank") else f"k.{n}" for n in names)
    return (
        f"SELECT {picked}\nFROM (\n{inner}\n) k\nLEFT JOIN scorecard s\n"
        "  ON s.grain = k.grain AND s.period_start = k.period_start AND s.engineer = k.engineer"
    )


def _rollup_view(name: str, grain: str, who: str) -> View:
    who_doc = "Engineer credited with the tickets" if who == "engineer" else "Team credited with the tickets"
    based_on = (f"kpi_{who}", "scorecard") if who == "engineer" else (f"kpi_{who}",)
    extra = "; with the engineer's score and rank" if who == "engineer" else ""
    return View(
        name=name,
        description=(
            f"One row per ({grain}, {who}): the {who}'s KPIs over all ticket types, rates "
            f"re-aggregated from kpi_{who} numerators and denominators{extra}"
        ),
        sql=rollup_sql(grain, who=who),
        columns=_rollup_columns(who, who_doc, who == "engineer"),
        based_on=based_on,
    )


# -- SLA breaches ------------------------------------------------------------------------------
def _minutes(column: str) -> str:
    return f"CAST({column} AS {_FLOAT}) / 60"


_BREACH_COLUMNS = (
    ("source", "Source of the ticket"),
    ("ticket_id", "Ticket id"),
    ("ticket_type", "incident / request / maintenance"),
    ("priority", "Current priority"),
    ("status", "Current status"),
    ("engineer", "Engineer credited"),
    ("team", "Team credited"),
    ("opened_at", "When the problem was reported (UTC); anchors the response SLA"),
    ("response_at", "First response (UTC)"),
    ("resolved_at", "Last resolution (UTC); anchors the resolution SLA"),
    ("breach", "Which SLA is breached: response / resolution / both"),
    ("response_sla", "met / breached / in_progress"),
    ("response_priority", "Priority that selected the response SLA policy"),
    ("response_elapsed_min", "Response business minutes; null while there is no response yet"),
    ("response_target_min", "Response target, minutes"),
    ("response_over_min", "Elapsed minus target, minutes; null while there is no response yet"),
    ("resolution_sla", "met / breached / in_progress"),
    ("resolution_priority", "Priority that selected the resolution SLA policy"),
    ("resolution_elapsed_min", "Resolution business minutes less pauses; null while not resolved"),
    ("resolution_target_min", "Resolution target, minutes"),
    ("resolution_over_min", "Elapsed minus target, minutes; null while not resolved"),
    ("as_of", "The run's as-of timestamp (UTC)"),
)

_BREACHES_SQL = f"""SELECT
    source, ticket_id, ticket_type, priority, status, engineer, team,
    opened_at, response_at, resolved_at,
    CASE WHEN response_sla = 'breached' AND resolution_sla = 'breached' THEN 'both'
         WHEN response_sla = 'breached' THEN 'response' ELSE 'resolution' END AS breach,
    response_sla, response_priority,
    {_minutes("response_business_s")} AS response_elapsed_min,
    {_minutes("response_target_s")} AS response_target_min,
    {_minutes("response_business_s - response_target_s")} AS response_over_min,
    resolution_sla, resolution_priority,
    {_minutes("resolution_business_s")} AS resolution_elapsed_min,
    {_minutes("resolution_target_s")} AS resolution_target_min,
    {_minutes("resolution_business_s - resolution_target_s")} AS resolution_over_min,
    as_of
FROM ticket_facts
WHERE response_sla = 'breached' OR resolution_sla = 'breached'"""

# -- current scorecard -------------------------------------------------------------------------
_SCORECARD_CURRENT_COLUMNS = (
    ("grain", "day / week / month / quarter"),
    ("period_start", "The latest period_start of this grain in the scorecard"),
    ("engineer", "Engineer"),
    ("rank", "Rank by score within the period (1 = best); null when not ranked (low sample)"),
    ("score", "Weighted mean of the KPI scores x 100"),
    ("kpis_scored", "How many configured KPIs had a value"),
    ("weight_scored", "Sum of the weights of the KPIs that had a value"),
    ("low_sample", "Reported but not ranked: resolved_count + maintenance_due < min_sample"),
    ("as_of", "The run's as-of timestamp (UTC)"),
    ("kpi_version", "Version of the KPI definitions"),
)

_SCORECARD_CURRENT_SQL = """SELECT
    s.grain, s.period_start, s.engineer, s.rank, s.score, s.kpis_scored, s.weight_scored, s.low_sample,
    s.as_of, s.kpi_version
FROM scorecard s
JOIN (SELECT grain, MAX(period_start) AS period_start FROM scorecard GROUP BY grain) latest
  ON s.grain = latest.grain AND s.period_start = latest.period_start"""

# -- approved exemptions ---------------------------------------------------------------------------
_EXEMPTION_COLUMNS = (
    ("source", "Source of the ticket"),
    ("ticket_id", "Ticket id"),
    ("scope", "response / resolution (that SLA) / ticket (the whole ticket, out of every KPI)"),
    ("reason", "Why, as approved"),
    ("approved_by", "Who approved it"),
    ("approved_at", "When it was approved (UTC)"),
    ("applied", "The last run applied it (approved_at <= its as_of)"),
    ("file", "The approvals file it was read from"),
    ("engineer", "Engineer credited with the ticket (ticket_facts)"),
    ("team", "Team credited with the ticket"),
    ("ticket_type", "incident / request / maintenance"),
    ("priority", "Current priority"),
    ("client", "The organisation served"),
    ("opened_at", "When the ticket was opened (UTC); anchors the response SLA"),
    ("resolved_at", "Last resolution (UTC); anchors the resolution SLA"),
    ("excluded_reason", "exempt when a ticket exemption applies (cancelled and out_of_scope win)"),
    ("response_sla", "The response verdict: exempt when a response exemption applies"),
    ("resolution_sla", "The resolution verdict: exempt when a resolution exemption applies"),
    ("as_of", "The as-of of the run that last changed the approval's row (UTC)"),
)

_EXEMPTIONS_SQL = """SELECT
    a.source, a.ticket_id, a.scope, a.reason, a.approved_by, a.approved_at, a.applied, a.file,
    f.engineer, f.team, f.ticket_type, f.priority, f.client, f.opened_at, f.resolved_at, f.excluded_reason,
    f.response_sla, f.resolution_sla, a.as_of
FROM adjustments a
LEFT JOIN ticket_facts f ON f.source = a.source AND f.ticket_id = a.ticket_id"""

# -- breakdowns, time in status, the backlog (KPIS.md 4.1, 3.1, 4.2) ---------------------------------
def _breakdown_view(name: str, grain: str) -> View:
    """kpi_breakdown rolled up over ticket types per (period, dimension, member), as the engineer rollups."""
    columns = list(_rollup_columns("dimension", "What the rows are broken down by: client, service, category, "
                                                "priority or source (reporting.breakdowns)", False))
    columns.insert(3, ("member", "The tickets' value of the dimension; '(none)' when empty"))
    return View(
        name=name,
        description=(f"One row per ({grain}, dimension, member): the member's KPIs over all ticket types, rates "
                     "re-aggregated from kpi_breakdown numerators and denominators"),
        sql=_rollup_select("kpi_breakdown", "dimension, member", grain),
        columns=tuple(columns),
        based_on=("kpi_breakdown",),
    )


_STATUS_TIME_COLUMNS = (
    ("source", "Source of the ticket"),
    ("ticket_id", "Ticket id"),
    ("status", "Canonical status the ticket was in"),
    ("entries", "How many status events set this status"),
    ("calendar_h", "Hours in this status (an open last segment runs to as_of)"),
    ("business_h", "Business hours in this status, on the ticket's resolution-policy calendar"),
    ("engineer", "Engineer credited with the ticket (ticket_facts)"),
    ("team", "Team credited with the ticket"),
    ("ticket_type", "incident / request / maintenance"),
    ("priority", "Current priority"),
    ("client", "The organisation served"),
    ("service", "The service concerned"),
    ("category", "Final category"),
    ("opened_at", "When the ticket was opened (UTC)"),
    ("excluded_reason", "Why the ticket is in no KPI (null: counted); its waits are listed all the same"),
    ("as_of", "The as-of of the run that last changed the row (UTC)"),
)

_STATUS_TIME_SQL = f"""SELECT
    s.source, s.ticket_id, s.status, s.entries,
    CAST(s.calendar_s AS {_FLOAT}) / 3600 AS calendar_h,
    CAST(s.business_s AS {_FLOAT}) / 3600 AS business_h,
    f.engineer, f.team, f.ticket_type, f.priority, f.client, f.service, f.category, f.opened_at,
    f.excluded_reason, s.as_of
FROM ticket_status_time s
LEFT JOIN ticket_facts f ON f.source = s.source AND f.ticket_id = s.ticket_id"""

_BACKLOG_LATEST_COLUMNS = (
    ("day", "The latest local date in kpi_backlog: the last run's as_of date, or an earlier one when no "
            "ticket was open at the end of the later days (the table keeps only rows with open tickets)"),
    ("engineer", "Engineer assigned at the end of the day"),
    ("ticket_type", "incident / request / maintenance"),
    ("priority", "Priority at the end of the day"),
    ("open_count", "Tickets open at the end of the day"),
    ("age_lt_1d", "Open tickets opened less than 1 day before the end of the day"),
    ("age_1_3d", "Open tickets aged 1 to under 3 days"),
    ("age_3_7d", "Open tickets aged 3 to under 7 days"),
    ("age_7_30d", "Open tickets aged 7 to under 30 days"),
    ("age_ge_30d", "Open tickets aged 30 days or more"),
    ("oldest_opened_at", "opened_at of the oldest open ticket (UTC)"),
    ("overdue_count", "Open tickets whose resolution_due_at is before the end of the day"),
    ("paused_count", "Open tickets in a pause status of their policy at the end of the day"),
    ("as_of", "The as-of of the run that last changed the row (UTC)"),
)

_BACKLOG_LATEST_SQL = f"""SELECT
    {", ".join(name for name, _ in _BACKLOG_LATEST_COLUMNS)}
FROM kpi_backlog
WHERE day = (SELECT MAX(day) FROM kpi_backlog)"""

VIEWS: tuple[View, ...] = (
    _rollup_view("v_engineer_quarter", "quarter", "engineer"),
    _rollup_view("v_engineer_month", "month", "engineer"),
    _rollup_view("v_team_quarter", "quarter", "team"),
    View(
        "v_sla_breaches",
        "One row per ticket_facts row whose response or resolution SLA is breached, with elapsed vs "
        "target minutes",
        _BREACHES_SQL,
        _BREACH_COLUMNS,
        ("ticket_facts",),
    ),
    View(
        "v_scorecard_current",
        "The scorecard rows of the latest period_start of each grain; order by grain, rank",
        _SCORECARD_CURRENT_SQL,
        _SCORECARD_CURRENT_COLUMNS,
        ("scorecard",),
    ),
    View(
        "v_exemptions",
        "One row per approved exemption (adjustments) with the ticket's engineer, team and verdicts from "
        "ticket_facts: who was exempted from what, why and by whom",
        _EXEMPTIONS_SQL,
        _EXEMPTION_COLUMNS,
        ("adjustments", "ticket_facts"),
    ),
    _breakdown_view("v_breakdown_month", "month"),
    _breakdown_view("v_breakdown_quarter", "quarter"),
    View(
        "v_status_time",
        "One row per (ticket, status) of ticket_status_time, in hours, with the ticket's engineer, team, type, "
        "priority, client and service from ticket_facts: where tickets waited and for how long",
        _STATUS_TIME_SQL,
        _STATUS_TIME_COLUMNS,
        ("ticket_status_time", "ticket_facts"),
    ),
    View(
        "v_backlog_latest",
        "The kpi_backlog rows of the latest stored day, per engineer, type and priority, by age: what is open "
        "now when that day is today's (see day)",
        _BACKLOG_LATEST_SQL,
        _BACKLOG_LATEST_COLUMNS,
        ("kpi_backlog",),
    ),
)
_BY_NAME = {v.name: v for v in VIEWS}


def view_sql(name: str) -> str:
    """The SELECT behind view ``name`` (usable as a subquery where the view was not created)."""
    return _BY_NAME[name].sql


# -- creating them -----------------------------------------------------------------------------
def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _comment_statements(view: View) -> list[str]:
    statements = [f"COMMENT ON VIEW {view.name} IS {_quote_literal(view.description)}"]
    statements += [
        f"COMMENT ON COLUMN {view.name}.{col} IS {_quote_literal(doc)}" for col, doc in view.columns
    ]
    return statements


def view_statements(view: View, dialect: str) -> list[str]:
    """The statements that (re)create ``view`` on ``dialect`` (sqlite, postgresql or duckdb)."""
    statements = [f"DROP VIEW IF EXISTS {view.name}", f"CREATE VIEW {view.name} AS\n{view.sql}"]
    if dialect == "postgresql":  # SQLite has no comments; in DuckDB they would only slow `itsm-kpi query`
        statements += _comment_statements(view)
    return statements


def create_view_statements(dialect: str) -> list[str]:
    """The statements that (re)create every view on ``dialect``."""
    return [statement for view in VIEWS for statement in view_statements(view, dialect)]


def _execute_all(conn: Connection, statements: list[str]) -> None:
    for statement in statements:
        conn.exec_driver_sql(statement)


def create_views(engine: Engine) -> None:
    """(Re)create every analyst view in one transaction; call it after the tables exist. Idempotent.

    When every view exists as these statements make it (a fingerprint in ``store_state``), nothing is
    written: a process opening the stores while a run holds its write transaction does not wait for it.
    """
    statements = create_view_statements(engine.dialect.name)
    fingerprint = hashlib.sha256("\n;\n".join(statements).encode()).hexdigest()
    ledger = Ledger(engine)
    present = set(inspect(engine).get_view_names())
    if ledger.store_state(_VIEWS_FINGERPRINT) == fingerprint and present >= {v.name for v in VIEWS}:
        return
    with engine.begin() as conn:
        serialise_schema_changes(conn)
        _execute_all(conn, statements)
        ledger.set_store_state_writes(_VIEWS_FINGERPRINT, fingerprint)(conn)
    log.info("created views %s", ", ".join(v.name for v in VIEWS))
