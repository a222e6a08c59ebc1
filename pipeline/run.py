"""One pipeline run: pull, validate, merge into the raw layer, compute, write both stores.

    pull (per source) -> validate -> merge into raw_tickets/raw_events -> facts -> KPI tables
    -> choose what to replace (changed tickets' facts, the groups or periods they touch) -> Stores.commit

Each table goes to the stores' staging (Parquet and the open SQL transaction) as soon as it is final,
so it is written while the run computes the rest; nothing is visible before ``Stores.commit``.

A source that cannot be read is skipped (its watermark stays) and the run ends ``partial``; a broken
config or store stops the run before anything is written. A source whose rejected share of rows exceeds
``[run].max_reject_ratio`` fails the run: only ``rejected_rows`` and the run's ledger row are written
(``RejectRatioExceeded``, exit 6). The stores change only in ``Stores.commit``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from functools import partial

import pandas as pd
import pyarrow as pa

from connectors.base import FILE_KINDS, Batch, SourceConfig
from connectors.errors import SourceError
from connectors.registry import build_connector
from kpis import KpiTables, kpi_tables
from kpis.aggregate import FACTS_READ
from kpis.config import facts_fingerprint, settings_to_json, tables_fingerprint
from kpis.schema import (
    EVENT_COLUMNS,
    GRAINS,
    TABLE_COLUMNS,
    TABLE_KEYS,
    TICKET_COLUMNS,
    concat_frames,
    conform,
    empty_frame,
)
from kpis.scorecard import ranked
from kpis.status_time import CodedHistory
from pipeline.approvals import run_approvals
from pipeline.changes import row_changes
from pipeline.compute import facts_engine, facts_with_history, ops_engine
from pipeline.errors import RejectRatioExceeded
from pipeline.fingerprints import changed_settings, mapping_state_name, mapping_state_value
from pipeline.groups import BREAKDOWN_BY, TouchedGroups, group_tables, in_groups, touched_groups
from pipeline.ops_tables import FACTS_FOR_OPS, OPS_FINGERPRINT, OpsScope, ops_fingerprint, ops_replacements
from pipeline.periods import Window, facts_in_window, periods_filter, touched_periods, window_periods
from pipeline.pull import Pulled, SourceReading, rejected_tickets, stacked, validated
from pipeline.raw import KEY, Merged, RawLayer
from pipeline.refresh import FACT_KEY, FactsRefresh, refresh_facts
from pipeline.settings import Settings
from pipeline.sla_check import condition_warnings
from pipeline.store import Replacement, Staging, Stores
from pipeline.store.parquet import to_pandas
from pipeline.store.recompute import KPI_SETTINGS

log = logging.getLogger(__name__)

REJECT_KEY = ["source", "row_kind", "raw"]
PERIOD_KEY = ["grain", "period_start"]
FACTS_FINGERPRINT = "facts_fingerprint"  # store_state: the fact settings the stored facts were computed with
FACTS_AS_OF = "facts_as_of"  # store_state: the as_of every stored fact was computed at (none after a backfill)
#: store_state: the KPI settings every stored row of the period tables was computed with (``tables_fingerprint``)
TABLES_FINGERPRINT = "tables_fingerprint"
PERIOD_TABLES = ("kpi_engineer", "kpi_team", "scorecard", "scorecard_kpi", "kpi_breakdown")
GROUPED_BY = {"kpi_engineer": "engineer", "kpi_team": "team", "scorecard_kpi": "engineer", "kpi_breakdown": BREAKDOWN_BY}


@dataclass
class RunSummary:
    """What a run did, for the ledger and the one summary line.

    Ticket copies read = used (written to the raw layer) + superseded (a newer or equal copy won) +
    rejected (no usable copy of that ticket in the run); ``rows_*`` count every row read, events included.
    """

    run_id: str
    kind: str
    status: str = "running"
    rows_read: int = 0
    rows_rejected: int = 0
    rows_written: int = 0
    tickets_read: int = 0
    tickets_used: int = 0
    tickets_superseded: int = 0
    tickets_rejected: int = 0
    conflicts_settled: int = 0
    periods_written: int = 0
    error: str | None = None
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    failed_sources: dict[str, str] = field(default_factory=dict)
    remapped: dict[str, list[str]] = field(default_factory=dict)  # source -> mapping settings that changed
    stage_seconds: dict[str, float] = field(default_factory=dict)
    rows_read_by_source: dict[str, int] = field(default_factory=dict)
    rows_rejected_by_source: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # e.g. an SLA condition no ticket can meet (sla_check.py)
    started: float = field(default_factory=time.monotonic)

    def _split(self) -> str:
        """`` (3000 used, 6000 superseded, 0 rejected, 2 conflicts settled)``; empty when every ticket read was used."""
        if self.tickets_used == self.tickets_read and not self.conflicts_settled:
            return ""
        conflicts = f", {self.conflicts_settled} conflicts settled" if self.conflicts_settled else ""
        return (f" ({self.tickets_used} used, {self.tickets_superseded} superseded, {self.tickets_rejected} rejected"
                f"{conflicts})")

    @property
    def rows_superseded(self) -> int:
        """Ticket copies superseded by a newer one (``pipeline_runs.rows_superseded``)."""
        return self.tickets_superseded

    def line(self) -> str:
        """One line that says what happened; how the tickets read split up when not all were used."""
        took = time.monotonic() - self.started
        text = (f"itsm-kpi {self.kind} {self.status}: {self.tickets_read} tickets read{self._split()}, "
                f"{self.rows_rejected} rows rejected, {self.periods_written} periods written, "
                f"{self.rows_written} rows written in {took:.1f}s (run {self.run_id})")
        if self.remapped:
            text += "; read again from the start: " + ", ".join(
                f"{k} ({', '.join(v)} changed)" for k, v in self.remapped.items())
        if self.warnings:
            text += "; warning: " + "; ".join(self.warnings)
        if self.failed_sources:
            text += "; failed sources: " + ", ".join(f"{k} ({v})" for k, v in self.failed_sources.items())
        return text

    def as_dict(self) -> dict[str, object]:
        """The summary as one JSON-ready object (``--json``): every counter, and the seconds taken."""
        data: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "started"}
        data["seconds"] = round(time.monotonic() - self.started, 3)
        return data


@dataclass
class Computed:
    """What the compute stage hands on to the next stages."""

    facts: Replacement  # the facts to write (already handed to the staging)
    all_facts: pd.DataFrame  # every ticket's facts after the run
    tables: KpiTables
    groups: TouchedGroups | None  # a nightly run's groups the tables were computed for (None: every group)
    history: CodedHistory | None  # the tickets' history when the facts of all of them were computed in one piece


class PipelineRun:
    """One run of kind ``run`` (nightly, incremental), ``backfill`` (a window) or ``demo``."""

    def __init__(self, settings: Settings, stores: Stores, ledger, *, kind: str, as_of: pd.Timestamp,
                 window: Window | None = None, progress: Callable[[str], None] | None = None) -> None:
        self.settings, self.stores, self.ledger = settings, stores, ledger
        self.kind, self.as_of, self.window = kind, as_of, window
        self.progress = progress or (lambda stage: None)
        self._recorded: dict[str, str | None] = {}  # store_state values read when the run starts

    def execute(self, run_id: str) -> RunSummary:
        """Run every stage; the stores are written once, at the end, atomically.

        Each table is handed to ``staging`` as soon as it is final (the raw layer after the merge, the
        facts before the KPIs), so both stores are written while the run computes the rest.
        """
        summary = RunSummary(run_id=run_id, kind=self.kind)
        # Read before the first staged write: on SQLite that write's open transaction can hold the database
        # locked (once its pages spill) until the commit, and a read on another connection would wait for it.
        self._recorded = {name: self.ledger.store_state(name) for name in (FACTS_FINGERPRINT, FACTS_AS_OF,
                                                                            OPS_FINGERPRINT, TABLES_FINGERPRINT)}
        with self.stores.staging(run_id) as staging:
            with self._stage(summary, "pull"):
                raw = RawLayer(conform(self.stores.read("raw_tickets", keep=True), TICKET_COLUMNS),
                               conform(self.stores.read("raw_events", keep=True), EVENT_COLUMNS))
                pulled = self._pull_all(summary, raw)
            failure = self._reject_ratio_failure(pulled)
            if failure is not None:
                self._fail_with_rejections(run_id, pulled, summary, staging, failure)
            with self._stage(summary, "merge"):
                merged = raw.merge(pulled.tickets, pulled.events, pulled.remapped())
            _count_tickets(summary, pulled, merged)
            summary.warnings += condition_warnings(merged.tickets, self.settings.kpi, "the stored tickets")
            approvals = run_approvals(self.settings, self.stores, self.as_of, merged, pulled, summary, run_id)
            raw_layer = self._raw_replacements(pulled, merged, run_id) + approvals.replacements
            staging.add(raw_layer)
            widened = approvals.widened(merged)
            with self._stage(summary, "compute"):
                computed = self._compute(widened, staging, approvals.approvals)
            with self._stage(summary, "select"):
                replacements = []
                for replacement in self._replacements(computed.tables, computed.groups, computed.facts, summary):
                    staging.add([replacement])  # written while the next table is selected
                    replacements.append(replacement)
            with self._stage(summary, "status_time_backlog"):
                for replacement in self._ops_replacements(widened, computed):
                    staging.add([replacement])
                    replacements.append(replacement)
                computed.history = None  # not held through the write
            summary.status = "partial" if summary.failed_sources else "success"
            summary.rows_written = sum(len(r.rows) for r in [*raw_layer, computed.facts, *replacements])
            with self._stage(summary, "write"):
                self.stores.commit(run_id, [], ledger_writes=self._ledger_writes(run_id, pulled, summary),
                                   staging=staging)
        return summary

    @contextmanager
    def _stage(self, summary: RunSummary, name: str) -> Iterator[None]:
        self.progress(name)
        started = time.monotonic()
        yield
        summary.stage_seconds[name] = round(time.monotonic() - started, 3)
        log.info("stage %s done in %.2fs", name, summary.stage_seconds[name])

    # --- pull -------------------------------------------------------------------------------
    def _pull_all(self, summary: RunSummary, raw: RawLayer) -> Pulled:
        """Every source's reads, stacked and validated; a source that fails is skipped (``partial``)."""
        batches: list[Batch] = []
        sources = Pulled.empty()
        for cfg in self.settings.sources:
            reading = self._reading(cfg)
            try:
                reads = self._pull_one(cfg, reading)
            except SourceError as e:
                summary.failed_sources[cfg.name] = str(e)
                log.error("%s; its watermark stays, the next run retries it", e)
                continue
            batches += reads
            sources.add_source(reading, reads)
        summary.rows_read = sum(sources.rows_read.values())
        summary.rows_read_by_source = dict(sources.rows_read)
        summary.remapped = {name: list(r.remapped) for name, r in sources.readings.items() if r.remapped}
        tickets, events, rejected = stacked(batches)
        # events may arrive after their ticket: tickets already in the raw layer are known
        pulled = sources.with_rows(*validated(tickets, events, rejected, known=raw.tickets[KEY],
                                              satisfaction_map=self.settings.kpi.satisfaction_map))
        summary.rows_rejected = len(pulled.rejected)
        summary.rows_rejected_by_source = {str(k): int(v) for k, v in
                                           pulled.rejected["source"].value_counts().items()}
        summary.rejected_by_reason = _reason_counts(pulled.rejected)
        return pulled

    def _reading(self, cfg: SourceConfig) -> SourceReading:
        """How ``cfg`` is read this run: again from the start when its mapping settings changed."""
        recorded, current = self.ledger.store_state(mapping_state_name(cfg.name)), mapping_state_value(cfg)
        remapped = tuple(changed_settings(recorded, cfg)) if recorded is not None else ()
        if remapped:
            log.warning("source %s: %s changed since its stored rows were read: reading it again from the start, "
                        "its new reading replaces the stored one", cfg.name, ", ".join(remapped))
        whole = bool(remapped) or self._reads_everything(cfg)
        record = current if recorded != current and (whole or recorded is None) else None
        return SourceReading(cfg.name, remapped, whole, record)

    def _reads_everything(self, cfg: SourceConfig) -> bool:
        """Whether this run reads all of ``cfg`` anyway: a first run, the demo, a backfill of files."""
        if self.kind == "run":
            if cfg.kind in FILE_KINDS:
                return not self.ledger.seen_files(cfg.name)
            return self.ledger.watermark(cfg.name) is None
        return self.kind == "demo" or cfg.kind in FILE_KINDS

    def _pull_one(self, cfg: SourceConfig, reading: SourceReading) -> list[Batch]:
        """The reads of one source: one per file not read before (every file when read whole), or one pull."""
        since = until = None
        if self.kind == "run":
            mark = None if reading.remapped else self.ledger.watermark(cfg.name)
            if mark is not None:  # re-read an overlap: records merge by key, so nothing doubles
                since = pd.Timestamp(mark) - pd.Timedelta(seconds=self.settings.run.overlap_s)
            elif cfg.start:
                since = pd.Timestamp(cfg.start)
        elif self.window is not None:
            since, until = self.window.utc_bounds(self.settings.kpi.reporting_timezone)
        log.info("pulling source %s (%s) since %s", cfg.name, cfg.kind, since)
        if cfg.kind in FILE_KINDS:
            skip = self.ledger.seen_files(cfg.name) if self.kind == "run" and not reading.remapped else set()
            return list(build_connector(cfg, skip_files=skip).pull_each(since=since, until=until))
        return [build_connector(cfg).pull(since=since, until=until)]

    def _reject_ratio_failure(self, pulled: Pulled) -> str | None:
        """One line naming the first source whose rejected share of rows exceeds ``run.max_reject_ratio``."""
        limit = self.settings.run.max_reject_ratio
        rejected = pulled.rejected["source"].value_counts()
        for source, read in pulled.rows_read.items():  # one per configured source
            n = int(rejected.get(source, 0))
            if read and n / read > limit:
                reasons = pulled.rejected.loc[(pulled.rejected["source"] == source).to_numpy(), "reason"]
                top = ", ".join(f"{reason}: {count}" for reason, count in reasons.value_counts().head(3).items())
                return (f"source {source}: {n} of {read} rows rejected ({n / read:.0%}, more than run.max_reject_ratio "
                        f"{limit:g}): {top}; the KPI tables were left as they were (see rejected_rows): fix the "
                        "mapping or the export and run again")
        return None

    def _fail_with_rejections(self, run_id: str, pulled: Pulled, summary: RunSummary, staging: Staging,
                              failure: str) -> None:
        """Write only ``rejected_rows`` and the failed run's ledger row, then raise ``RejectRatioExceeded``."""
        summary.status, summary.error = "failed", failure
        self.stores.commit(run_id, [self._rejections(pulled, run_id)],
                           ledger_writes=self.ledger.finish_run_writes(run_id, summary), staging=staging)
        raise RejectRatioExceeded(failure)

    # --- compute ----------------------------------------------------------------------------
    def _compute(self, merged: Merged, staging: Staging, approvals: pd.DataFrame) -> Computed:
        """The facts (handed to ``staging`` at once) and the KPI tables; for a nightly run only the tables of
        the groups its changes touch. ``approvals``: the approved exemptions."""
        if self.kind == "run":
            refresh, groups = self._refresh_facts(merged, approvals)
            facts = Replacement("ticket_facts", refresh.changes.rows, refresh.changes.rows[FACT_KEY])
            all_facts, history = refresh.facts, refresh.history
        else:
            groups = None
            all_facts, history = facts_with_history(self.settings.compute, merged.tickets, merged.events,
                                                    self.settings.kpi, self.as_of, approvals)
            in_scope = all_facts if self.window is None else facts_in_window(
                all_facts, self.window, self.settings.kpi.reporting_timezone)
            facts = Replacement("ticket_facts", in_scope, in_scope[FACT_KEY])
        staging.add([facts])
        tables = (kpi_tables(all_facts, self.settings.kpi) if groups is None
                  else group_tables(all_facts, self.settings.kpi, groups))
        return Computed(facts, all_facts, tables, groups, history)

    def _refresh_facts(self, merged: Merged, approvals: pd.DataFrame) -> tuple[FactsRefresh, TouchedGroups | None]:
        """A nightly run's facts, stored ones reused where they cannot have changed (pipeline/refresh.py),
        and the groups whose KPI rows the changed facts can have moved (pipeline/groups.py); None (every
        period) when the stored KPI tables were computed with other KPI settings."""
        stored = self.stores.read_arrow("ticket_facts", keep=True)
        reuse = self._recorded[FACTS_FINGERPRINT] == facts_fingerprint(self.settings.kpi)
        if not reuse:
            log.info("fact settings changed or not recorded: recomputing every ticket's facts")
        refresh = refresh_facts(merged.tickets, merged.events, merged.changed_keys, stored, self.settings.kpi,
                                self.as_of, reuse=reuse, columns=(*FACTS_READ, *FACTS_FOR_OPS), approvals=approvals,
                                facts_of=facts_engine(self.settings.compute),
                                whole_facts_of=partial(facts_with_history, self.settings.compute),
                                stored_as_of=_timestamp(self._recorded[FACTS_AS_OF]))
        kpi = self.settings.kpi
        if self._recorded[TABLES_FINGERPRINT] != tables_fingerprint(kpi):
            log.info("KPI settings changed since the stored KPI tables were computed (or not recorded): "
                     "recomputing every period")
            return refresh, None
        return refresh, touched_groups(refresh.changes, stored, refresh.facts, kpi.grains, kpi.reporting_timezone,
                                       kpi.breakdowns)

    def _ops_replacements(self, merged: Merged, computed: Computed) -> Iterator[Replacement]:
        """``ticket_status_time`` and ``kpi_backlog``: what changed tickets touch, or all (pipeline/ops_tables.py)."""
        scope = OpsScope.of(self.kind, self._recorded[OPS_FINGERPRINT], self.settings.kpi,
                            merged.changed_keys, computed.facts.rows, merged.previous)
        return ops_replacements(self.stores, self.settings.kpi, merged.tickets, merged.events, computed.all_facts,
                                self.as_of, scope, ops_engine(self.settings.compute), computed.history)

    # --- select -----------------------------------------------------------------------------
    def _raw_replacements(self, pulled: Pulled, merged: Merged, run_id: str) -> list[Replacement]:
        """The raw layer's changes and this run's rejected rows (final once merged)."""
        used = merged.ticket_merge.used
        return [
            Replacement("raw_tickets", used, used[FACT_KEY]),
            Replacement("raw_events", merged.changed_events, merged.changed_keys),
            self._rejections(pulled, run_id),
        ]

    def _rejections(self, pulled: Pulled, run_id: str) -> Replacement:
        """This run's rejected rows. A row read again replaces its earlier rejection (reruns never duplicate
        rejected rows); a source read whole replaces all of its earlier ones, so a row a fixed mapping now
        reads is no longer listed as rejected."""
        rejected = pulled.rejected.assign(run_id=run_id)
        scope = [rejected[REJECT_KEY]]
        whole = pulled.whole()
        if whole:
            scope.append(self.stores.read("rejected_rows", [("source", "in", whole)])[REJECT_KEY])
        return Replacement("rejected_rows", rejected, pd.concat(scope, ignore_index=True).drop_duplicates())

    def _replacements(self, tables: KpiTables, groups: TouchedGroups | None, facts: Replacement,
                      summary: RunSummary) -> Iterator[Replacement]:
        """The period tables' replacements, one by one: a nightly run's changed rows of the touched groups,
        or every period of a backfill's window (of the demo's facts)."""
        if groups is not None:
            periods = groups.periods()
            summary.periods_written = len(periods)
            for table in ("kpi_engineer", "kpi_team", "scorecard_kpi", "kpi_breakdown"):
                yield self._changed_group_rows(table, getattr(tables, table), groups, periods)
            yield self._changed_scorecard_rows(tables.scorecard, groups.engineer, periods)
        elif self.kind == "run":
            yield from self._every_period(tables, summary)
        else:
            periods = self._window_periods(facts.rows)
            summary.periods_written = len(periods)
            for table in PERIOD_TABLES:
                yield Replacement(table, getattr(tables, table).merge(periods, on=PERIOD_KEY), periods)

    def _every_period(self, tables: KpiTables, summary: RunSummary) -> Iterator[Replacement]:
        """Every row of the period tables, replacing every stored row of every grain: those of a grain no
        longer configured, or of periods in another reporting timezone, go too."""
        summary.periods_written = len(pd.concat([getattr(tables, table)[PERIOD_KEY] for table in PERIOD_TABLES],
                                                ignore_index=True).drop_duplicates())
        every_grain = pd.DataFrame({"grain": list(GRAINS)})
        for table in PERIOD_TABLES:
            yield Replacement(table, getattr(tables, table), every_grain)

    def _stored_rows(self, table: str, periods: pd.DataFrame, groups: pd.DataFrame | None = None,
                     by: str | tuple[str, ...] = "engineer") -> pd.DataFrame:
        """The stored rows of ``periods`` (and of ``groups`` only, when given; filtered before pandas)."""
        if periods.empty:  # a night that touched nothing: the table need not be read
            return empty_frame(TABLE_COLUMNS[table])
        rows = self.stores.read_arrow(table, periods_filter(periods), keep=True)
        if groups is not None:
            rows = rows.filter(pa.array(in_groups(rows, groups, by)))
        return to_pandas(rows, TABLE_COLUMNS[table])

    def _changed_group_rows(self, table: str, computed: pd.DataFrame, groups: TouchedGroups,
                            periods: pd.DataFrame) -> Replacement:
        """The touched groups' rows that differ from the stored ones; their stored rows now gone are deleted."""
        by = GROUPED_BY[table]
        stored = self._stored_rows(table, periods, groups.of(by), by)
        changes = row_changes(computed, stored, list(TABLE_KEYS[table]))
        return Replacement(table, changes.rows, changes.gone)

    def _changed_scorecard_rows(self, computed: pd.DataFrame, touched: pd.DataFrame,
                                periods: pd.DataFrame) -> Replacement:
        """Scorecard rows of the touched periods that differ from the stored ones: the touched engineers'
        rows, and every row whose rank moved with their scores (ranks are among all of a period's engineers)."""
        stored = self._stored_rows("scorecard", periods)
        untouched = stored[~in_groups(stored, touched, "engineer")]
        as_of = computed["as_of"].iloc[0] if len(computed) else pd.Timestamp(self.as_of)
        scorecard = ranked(concat_frames([untouched, computed], TABLE_COLUMNS["scorecard"])).assign(as_of=as_of)
        changes = row_changes(conform(scorecard, TABLE_COLUMNS["scorecard"]), stored, list(TABLE_KEYS["scorecard"]))
        return Replacement("scorecard", changes.rows, changes.gone)

    def _window_periods(self, facts: pd.DataFrame) -> pd.DataFrame:
        """A backfill: every period of the window (whole weeks at its edges); the demo: every period of its facts."""
        tz, grains = self.settings.kpi.reporting_timezone, self.settings.kpi.grains
        if self.window is None:
            return touched_periods(facts, facts, grains, tz)
        return window_periods(self.window, grains)

    # --- ledger -----------------------------------------------------------------------------
    def _ledger_writes(self, run_id: str, pulled: Pulled, summary: RunSummary):
        writes = [self.ledger.finish_run_writes(run_id, summary)]
        # A backfill writes the facts of its window only: the next nightly run recomputes them all.
        fingerprint = None if self.kind == "backfill" else facts_fingerprint(self.settings.kpi)
        writes.append(self.ledger.set_store_state_writes(FACTS_FINGERPRINT, fingerprint))
        writes.append(self.ledger.set_store_state_writes(FACTS_AS_OF, fingerprint and self.as_of.isoformat()))
        writes.append(self.ledger.set_store_state_writes(OPS_FINGERPRINT, fingerprint and ops_fingerprint(self.settings.kpi)))
        writes.append(self.ledger.set_store_state_writes(TABLES_FINGERPRINT, self._tables_fingerprint_after()))
        writes.append(self.ledger.set_store_state_writes(KPI_SETTINGS, settings_to_json(self.settings.kpi)))
        if self.kind == "run":
            for source, cursor in pulled.cursors.items():
                writes.append(self.ledger.set_watermark_writes(source, cursor))
            for source, names in pulled.files.items():
                writes.append(self.ledger.add_files_writes(source, names, run_id))
        for source, reading in pulled.readings.items():  # the mapping its stored rows were read with
            if reading.record is not None:
                writes.append(self.ledger.set_store_state_writes(mapping_state_name(source), reading.record))

        def apply(conn) -> None:
            for write in writes:
                write(conn)
        return apply

    def _tables_fingerprint_after(self) -> str | None:
        """The settings every stored period row was computed with after this run: this run's, unless it is a
        backfill under settings other than those of the rows outside its window (None: unknown)."""
        current = tables_fingerprint(self.settings.kpi)
        if self.kind == "backfill" and self._recorded[TABLES_FINGERPRINT] != current:
            return None
        return current


def _count_tickets(summary: RunSummary, pulled: Pulled, merged: Merged) -> None:
    """Ticket copies read = used + superseded (in the run, or by the stored copy) + rejected."""
    tickets = merged.ticket_merge
    summary.tickets_used = len(tickets.used)
    summary.tickets_superseded = len(pulled.superseded) + len(tickets.superseded)
    summary.tickets_rejected = rejected_tickets(pulled.rejected, pulled.tickets)
    summary.tickets_read = summary.tickets_used + summary.tickets_superseded + summary.tickets_rejected
    in_run = pulled.superseded.loc[pulled.superseded["conflict"].to_numpy(dtype=bool), KEY]
    summary.conflicts_settled = len(pd.concat([in_run, tickets.conflicts], ignore_index=True).drop_duplicates())
    if summary.conflicts_settled:
        log.warning("%d tickets had copies with the same updated_at and different content: the later read won",
                    summary.conflicts_settled)


def _reason_counts(rejected: pd.DataFrame) -> dict[str, int]:
    if rejected.empty:
        return {}
    reasons = rejected["reason"].astype("str").str.replace(r"\s*'.*$", "", regex=True)
    return {str(k): int(v) for k, v in reasons.value_counts().items()}


def _timestamp(recorded: str | None) -> pd.Timestamp | None:
    """A recorded instant (``store_state``), None when none or unreadable (the caller then assumes nothing)."""
    if recorded is None:
        return None
    try:
        return pd.Timestamp(recorded).tz_convert("UTC")
    except (ValueError, TypeError):
        log.warning("store_state %s = %r is not an instant: treating it as unknown", FACTS_AS_OF, recorded)
        return None
