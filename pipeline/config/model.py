"""The typed model of the whole config file (CONTRACT.md v2): one pydantic model per section.

Every section forbids unknown keys, so a typo is an error naming the key and the closest valid one.
Values keep their written form (``"30m"``); ``build.py`` turns the model into the dataclasses the
engine uses. Sections whose features come later (``[query]``, ``[[alerts]]``, ``[adjustments]``,
``[compute]``, parts of ``[reporting]`` and ``[run]``) are specified here already, so a config written
for them is checked the same way. Sources are in ``sources.py``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, create_model

from kpis.config import ALWAYS_OPEN, DEFAULT_BREAKDOWNS, DEFAULT_FAILED_CLOSE_CODES, DEFAULT_PAUSE_STATUSES
from kpis.schema import GRAINS, KPI_ENGINEER_COLUMNS, PRIORITIES, TICKET_TYPES
from pipeline.config.sources import Source
from pipeline.config.types import (
    Breakdown,
    Cron,
    DateKey,
    DateText,
    Duration,
    EnvName,
    Grain,
    Interval,
    Score,
    Section,
    SqlUrl,
    Status,
    Text,
    TicketType,
    Timezone,
    WebUrl,
    Weekday,
    each_once,
    one_or_many,
)

__all__ = ["KPI_SECTIONS", "SCORECARD_KPIS", "SECTIONS", "Config", "KpiConfig"]

#: kpi_engineer columns a scorecard entry may name: every number.
SCORECARD_KPIS = tuple(c.name for c in KPI_ENGINEER_COLUMNS.values() if c.dtype in ("Int64", "Float64"))


class Store(Section):
    """Where the results go: Parquet datasets under `path`, and a SQL database."""

    path: Text = Field("kpi-store", description="folder of the Parquet datasets (<path>/<table>/); "
                       "not inside another store's folder")
    sql_url: SqlUrl | None = Field(None, description="SQLAlchemy URL of the SQL store (default: "
                                   "sqlite:///<path>/kpi.sqlite); a password only from ITSM_KPI_STORE__SQL_URL")


class Reporting(Section):
    """How periods, breakdowns and reports are made."""

    timezone: Timezone | None = Field(None, description="IANA timezone whose local dates make the periods "
                                      "(default: the default calendar's)")
    # each once: a repeated grain would give each of its rows twice
    grains: each_once(Grain) = Field(list(GRAINS), min_length=1,  # type: ignore[valid-type]
                                     description="period grains computed: day, week (ISO), month, quarter")
    min_sample: int = Field(10, ge=0, description="rows with resolved_count + maintenance_due below this are "
                            "low_sample (reported, not ranked)")
    breakdowns: each_once(Breakdown) = Field(list(DEFAULT_BREAKDOWNS),  # type: ignore[valid-type]
                                             description="dimensions of kpi_breakdown (KPIS.md 4.1): client, "
                                             "service, category, priority, source")
    language: Literal["zh", "en"] = Field("zh", description="language of the report and the alerts")
    report_url: WebUrl | None = Field(None, description="where the report is published; alerts link to it")


class Run(Section):
    """How runs behave."""

    overlap: Duration = Field("1h", description="incremental pulls start this long before the watermark")
    lock_wait: Duration = Field("10m", description="how long a run waits for another run's lock (then exit 5)")
    stale_lock: Duration = Field("15m", description="a lock without a heartbeat for this long is taken over")
    max_reject_ratio: float = Field(0.5, ge=0, le=1, description="a source with a larger share of rejected rows "
                                    "fails the run (exit 6)")
    metrics_file: Text | None = Field(None, description="a Prometheus text file rewritten by every run "
                                      "(node_exporter textfile collector)")


class Query(Section):
    """Analyst SQL (`itsm-kpi query`, the report)."""

    timeout: Duration = Field("60s", description="statement timeout of one analyst statement")


class Schedule(Section):
    """When `itsm-kpi schedule` runs the nightly job."""

    cron: Cron = Field("15 1 * * *", description="5-field cron: minute hour day month weekday")
    timezone: Timezone = Field("UTC", description="IANA timezone the cron is read in")


class Kpi(Section):
    """KPI rules shared by every ticket (KPIS.md 2-3)."""

    default_calendar: Text = Field(ALWAYS_OPEN, description='calendar of policies that name none ("24x7" is '
                                   "built in)")
    pause_statuses: list[Status] = Field(list(DEFAULT_PAUSE_STATUSES), description="statuses not counted in "
                                         "resolution time")
    resolution_counts_as_response: bool = Field(True, description="with no response recorded, the first "
                                                "resolution is the response")
    failed_close_codes: list[str] = Field(list(DEFAULT_FAILED_CLOSE_CODES), description="maintenance closed "
                                          "with these codes is not on time")
    satisfaction_map: dict[str, Score] = Field({}, description="survey answer -> score 1..5 (numbers 1..5 "
                                               "pass through)")
    ticket_types: list[TicketType] = Field(list(TICKET_TYPES), description="types in scope; others get "
                                           "excluded_reason = out_of_scope")


class Calendar(Section):
    """A business calendar (KPIS.md 2.1): working hours per weekday, holidays, make-up days."""

    timezone: Timezone = Field(description="IANA timezone of the working hours")
    hours: dict[Weekday, one_or_many(Interval, "working intervals of the day")] = Field(  # type: ignore[valid-type]
        {}, description='weekday (mon..sun) -> local working intervals, e.g. ["09:00-12:00", "13:30-18:00"]; '
        "a weekday without an entry is not worked")
    holidays: list[DateText] = Field([], description="whole local dates off")
    country: Text | None = Field(None, description="add this country's public holidays and make-up days "
                                 "(ISO code of the holidays package, e.g. CN)")
    subdivision: Text | None = Field(None, description="the country's subdivision, e.g. GD")
    extra_workdays: dict[DateKey, Weekday] = Field({}, description='make-up working day -> the weekday whose '
                                               'hours it works, e.g. { "2026-09-27" = "mon" }',
                                               json_schema_extra={"additionalProperties": False})


_Condition = one_or_many(Text, "one value or a list of values", non_empty=True)


class Sla(Section):
    """An SLA policy (KPIS.md 3): the first policy whose conditions all match a ticket applies."""

    name: Text | None = Field(None, description="stored in ticket_facts.response_policy / resolution_policy "
                              "(default sla_N, N its position from 1)")
    ticket_type: one_or_many(Literal[(*TICKET_TYPES, "*")], "incident, request, maintenance; \"*\" = any", non_empty=True) | None = \
        Field(None, description="condition: ticket type(s); omitted or \"*\" matches any")  # type: ignore[valid-type]
    priority: one_or_many(Literal[(*PRIORITIES, "*")], "P1..P4; \"*\" = any", non_empty=True) | None = \
        Field(None, description="condition: priority(ies); omitted or \"*\" matches any")  # type: ignore[valid-type]
    client: _Condition | None = Field(None, description="condition: client(s)")  # type: ignore[valid-type]
    service: _Condition | None = Field(None, description="condition: service(s)")  # type: ignore[valid-type]
    category: _Condition | None = Field(None, description="condition: final category(ies)")  # type: ignore[valid-type]
    team: _Condition | None = Field(None, description="condition: credited team(s)")  # type: ignore[valid-type]
    source: _Condition | None = Field(None, description="condition: configured source name(s)")  # type: ignore[valid-type]
    response: Duration | None = Field(None, description="response target in business time")
    resolution: Duration | None = Field(None, description="resolution target in business time")
    calendar: Text | None = Field(None, description="calendar of this policy (default: kpi.default_calendar)")
    pause_statuses: list[Status] | None = Field(None, description="replace kpi.pause_statuses for these tickets")


class ScorecardEntry(Section):
    """A scorecard KPI with its target and weight (KPIS.md 5)."""

    kpi: Literal[SCORECARD_KPIS] = Field(description="a kpi_engineer column, e.g. first_fix_rate")  # type: ignore[valid-type]
    target: float = Field(allow_inf_nan=False, description="the value that scores 100 %")
    weight: float = Field(gt=0, le=1_000_000, allow_inf_nan=False,
                          description="weight in the engineer's score (relative to the others); above 0")
    higher_is_better: bool | None = Field(None, description="default: false for durations, reopen_rate and "
                                          "induced_incidents, else true")


class AdjustmentColumns(Section):
    """Which column of the approvals file holds each field (identity when omitted)."""

    source: Text | None = Field(None, description="the ticket's source (needed with several sources)")
    ticket_id: Text | None = Field(None, description="the ticket id")
    scope: Text | None = Field(None, description="response, resolution or ticket")
    reason: Text | None = Field(None, description="why, as approved")
    approved_by: Text | None = Field(None, description="who approved it")
    approved_at: Text | None = Field(None, description="when it was approved")


class Adjustments(Section):
    """Approved SLA exemptions (KPIS.md 1.4): files of approvals, each read once (docs/disputes.md)."""

    path: Text = Field(description="csv, excel or json by extension: a file (which must exist), a glob or a folder; "
                       "a changed file replaces what its earlier version approved")
    timezone: Timezone | None = Field(None, description="for approved_at values without an offset")
    columns: AdjustmentColumns = Field(default_factory=AdjustmentColumns, description="field -> column of the file")
    scope_map: dict[str, Literal["response", "resolution", "ticket"]] = Field(
        {}, description="the file's scope labels -> response, resolution or ticket")


class Alert(Section):
    """One webhook that is posted after each run."""

    name: Text = Field(description="unique; named in logs instead of the URL")
    url_env: EnvName = Field(description="environment variable holding the webhook URL (or NAME_FILE)")
    format: Literal["json", "wecom", "dingtalk", "slack", "teams"] = Field("json", description="message format")
    on: list[Literal["breached", "due_soon", "below_target", "run_failed"]] = Field(
        ["breached", "due_soon", "below_target", "run_failed"], description="kinds of message posted")
    due_within: Duration = Field("4h", description="due_soon: due in (as_of, as_of + due_within]")
    secret_env: EnvName | None = Field(None, description="environment variable holding a DingTalk signing secret")
    team: _Condition | None = Field(None, description="only these teams' tickets (below_target: the engineers "
                                    "credited with one this month)")  # type: ignore[valid-type]
    client: _Condition | None = Field(None, description="only these clients' tickets (below_target: the "
                                      "engineers credited with one this month)")  # type: ignore[valid-type]


class Compute(Section):
    """Where the computation runs (CONTRACT.md, Compute)."""

    engine: Literal["local", "dask"] = Field("local", description="local: this process; dask: a Dask cluster")
    partitions: int = Field(1, ge=1, description="tickets split by a stable hash of (source, ticket_id); "
                            "dask: at least twice the cluster's workers")
    scheduler: Text | None = Field(None, description="dask: address of an existing scheduler, "
                                   "e.g. tcp://dask-scheduler:8786")
    workers: int | None = Field(None, ge=1, description="dask without a scheduler: LocalCluster worker processes "
                                "(default: one per CPU core)")


class Config(Section):
    """The itsm-kpi config file (CONTRACT.md v2). Every value can be overridden by ITSM_KPI_<SECTION>__<KEY>."""

    store: Store = Field(default_factory=Store, description="where the results go")
    reporting: Reporting = Field(default_factory=Reporting, description="periods, breakdowns, report language")
    run: Run = Field(default_factory=Run, description="how runs behave")
    query: Query = Field(default_factory=Query, description="analyst SQL")
    schedule: Schedule = Field(default_factory=Schedule, description="the nightly job's cron")
    kpi: Kpi = Field(default_factory=Kpi, description="KPI rules")
    calendars: dict[str, Calendar] = Field({}, description="business calendars by name")
    sla: list[Sla] = Field([], description="SLA policies, first match wins")
    sources: list[Source] = Field([], description="where the tickets come from")  # type: ignore[valid-type]
    scorecard: list[ScorecardEntry] = Field([], description="the scorecard's KPIs, targets and weights")
    adjustments: Adjustments | None = Field(None, description="approved SLA exemptions")
    alerts: list[Alert] = Field([], description="webhooks posted after each run")
    compute: Compute = Field(default_factory=Compute, description="where the computation runs")


#: Top-level sections in file order.
SECTIONS = tuple(Config.model_fields)
#: The sections the KPI engine reads.
KPI_SECTIONS = ("reporting", "kpi", "calendars", "sla", "scorecard")

KpiConfig = create_model(
    "KpiConfig", __base__=Section, __doc__="The sections the KPI engine reads (to build KpiSettings alone).",
    **{name: (Config.model_fields[name].annotation, Config.model_fields[name]) for name in KPI_SECTIONS},
)
