"""One pipeline run: pull, validate, merge into the raw layer, compute, write both stores.

    pull (per source) -> validate -> merge into raw_tickets/raw_events -> facts -> KPI tables
    -> choose what to replace (changed tickets' facts, the groups or periods they touch) -> Stores.commit

Each table goes to the stores' staging (Parquet and the open SQL transaction) as soon as it is final,
so it is written while the run computes the rest; nothing is visible before ``Stores.commit``.

A source that cannot be read is skipped (its watermark stays) and the run ends ``partial``; a broken
config or store stops the run before anything is written. The stores change only in ``Stores.commit``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields

import pandas as pd
import pyarrow as pa

from connectors.base import FILE_KINDS, Batch, SourceConfig
from connectors.errors import SourceError
from connectors.registry import build_connector
from connectors.validate import validate
from kpis import KpiTables, compute_facts, kpi_tables
from kpis.aggregate import FACTS_READ
from kpis.config import facts_fingerprint
from kpis.keys import key_hits
from kpis.schema import (
    EVENT_COLUMNS,
    REJECTED_COLUMNS,
    TABLE_COLUMNS,
    TABLE_KEYS,
    TICKET_COLUMNS,
    concat_frames,
    conform,
    empty_frame,
)
from kpis.scorecard import ranked
from pipeline.changes import row_changes
from pipeline.groups import TouchedGroups, group_tables, in_groups, touched_groups
from pipeline.periods import Window, facts_in_window, periods_filter, touched_periods, window_periods
from pipeline.refresh import FACT_KEY, FactsRefresh, refresh_facts
from pipeline.settings import Settings
from pipeline.store import Replacement, Staging, Stores
from pipeline.store.parquet import to_pandas

log = logging.getLogger(__name__)

REJECT_KEY = ["source", "row_kind", "raw"]
EVENT_IDENTITY = ["source", "ticket_id", "at", "kind", "value", "actor"]
PERIOD_KEY = ["grain", "period_start"]
FACTS_FINGERPRINT = "facts_fingerprint"  # store_state: the fact settings the stored facts were computed with
PERIOD_TABLES = ("kpi_engineer", "kpi_team", "scorecard", "scorecard_kpi")


@dataclass
class RunSummary:
    """What a run did, for the ledger and the one summary line."""

    run_id: str
    kind: str
    status: str = "running"
    rows_read: int = 0
    rows_rejected: int = 0
    rows_written: int = 0
    tickets_read: int = 0
    periods_written: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    failed_sources: dict[str, str] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    rows_read_by_source: dict[str, int] = field(default_factory=dict)
    rows_rejected_by_source: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        """One line that says what happened."""
        took = time.monotonic() - self.started
        text = (f"itsm-kpi {self.kind} {self.status}: {self.tickets_read} tickets read, "
                f"{self.rows_rejected} rows rejected, {self.periods_written} periods written, "
                f"{self.rows_written} rows written in {took:.1f}s (run {self.run_id})")
        if self.failed_sources:
            text += "; failed sources: " + ", ".join(f"{k} ({v})" for k, v in self.failed_sources.items())
        return text

    def as_dict(self) -> dict[str, object]:
        """The summary as one JSON-ready object (``--json``): every counter, and the seconds taken."""
        data: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "started"}
        data["seconds"] = round(time.monotonic() - self.started, 3)
        return data


@dataclass
class Pulled:
    """Everything read from the sources in this run, validated."""

    tickets: pd.DataFrame
    events: pd.DataFrame
    rejected: pd.DataFrame
    cursors: dict[str, str]
    files: dict[str, tuple[str, ...]]


class PipelineRun:
    """One run of kind ``run`` (nightly, incremental), ``backfill`` (a window) or ``demo``."""

    def __init__(self, settings: Settings, stores: Stores, ledger, *, kind: str, as_of: pd.Timestamp,
                 window: Window | None = None, progress: Callable[[str], None] | None = None) -> None:
        self.settings, self.stores, self.ledger = settings, stores, ledger
        self.kind, self.as_of, self.window = kind, as_of, window
        self.progress = progress or (lambda stage: None)

    def execute(self, run_id: str) -> RunSummary:
        """Run every stage; the stores are written once, at the end, atomically.

        Each table is handed to ``staging`` as soon as it is final (the raw layer after the merge, the
        facts before the KPIs), so both stores are written while the run computes the rest.
        """
        summary = RunSummary(run_id=run_id, kind=self.kind)
        with self.stores.staging(run_id) as staging:
            with self._stage(summary, "pull"):
                raw = RawLayer(conform(self.stores.read("raw_tickets", keep=True), TICKET_COLUMNS),
                               conform(self.stores.read("raw_events", keep=True), EVENT_COLUMNS))
                pulled = self._pull_all(summary, raw)
            with self._stage(summary, "merge"):
                merged = raw.merge(pulled)
            raw_layer = self._raw_replacements(pulled, merged, run_id)
            staging.add(raw_layer)
            with self._stage(summary, "compute"):
                facts, tables, groups = self._compute(merged, staging)
            with self._stage(summary, "select"):
                replacements = []
                for replacement in self._replacements(tables, groups, facts, summary):
                    staging.add([replacement])  # written while the next table is selected
                    replacements.append(replacement)
            summary.status = "partial" if summary.failed_sources else "success"
            summary.rows_written = sum(len(r.rows) for r in [*raw_layer, facts, *replacements])
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
        batches, cursors, files = [], {}, {}
        for cfg in self.settings.sources:
            try:
                batch = self._pull_one(cfg)
            except SourceError as e:
                summary.failed_sources[cfg.name] = str(e)
                log.error("%s; its watermark stays, the next run retries it", e)
                continue
            batches.append(batch)
            summary.rows_read += batch.rows_read
            summary.rows_read_by_source[cfg.name] = batch.rows_read
            if batch.cursor:
                cursors[cfg.name] = batch.cursor
            files[cfg.name] = batch.files_read
        return self._validated(batches, summary, cursors, files, raw.tickets[FACT_KEY])

    def _pull_one(self, cfg: SourceConfig) -> Batch:
        since = until = None
        if self.kind == "run":
            mark = self.ledger.watermark(cfg.name)
            if mark is not None:  # re-read an overlap: records merge by key, so nothing doubles
                since = pd.Timestamp(mark) - pd.Timedelta(seconds=self.settings.run.overlap_s)
            elif cfg.start:
                since = pd.Timestamp(cfg.start)
        elif self.window is not None:
            since, until = self.window.utc_bounds(self.settings.kpi.reporting_timezone)
        if cfg.kind in FILE_KINDS:
            skip = self.ledger.seen_files(cfg.name) if self.kind == "run" else set()
            connector = build_connector(cfg, skip_files=skip)
        else:
            connector = build_connector(cfg)
        log.info("pulling source %s (%s) since %s", cfg.name, cfg.kind, since)
        return connector.pull(since=since, until=until)

    def _validated(self, batches: list[Batch], summary: RunSummary, cursors, files, known: pd.DataFrame) -> Pulled:
        tickets = concat_frames([b.tickets for b in batches], TICKET_COLUMNS)
        events = concat_frames([b.events for b in batches], EVENT_COLUMNS)
        rejected = concat_frames([b.rejected for b in batches], REJECTED_COLUMNS)
        # events may arrive after their ticket: tickets already in the raw layer are known
        tickets, events, rejected = validate(tickets, events, rejected, known_tickets=known,
                                             satisfaction_map=self.settings.kpi.satisfaction_map)
        summary.tickets_read = len(tickets) + int((rejected["row_kind"] == "ticket").sum())
        summary.rows_rejected = len(rejected)
        summary.rejected_by_reason = _reason_counts(rejected)
        summary.rows_rejected_by_source = {str(k): int(v) for k, v in rejected["source"].value_counts().items()}
        return Pulled(tickets, events, rejected, cursors, files)

    # --- compute ----------------------------------------------------------------------------
    def _compute(self, merged: Merged, staging: Staging) -> tuple[Replacement, KpiTables, TouchedGroups | None]:
        """The facts to write (handed to ``staging`` at once), the KPI tables and, for a nightly run,
        the groups they were computed for (every group otherwise)."""
        if self.kind == "run":
            refresh, groups = self._refresh_facts(merged)
            facts = Replacement("ticket_facts", refresh.changes.rows, refresh.changes.rows[FACT_KEY])
            all_facts = refresh.facts
        else:
            groups, all_facts = None, compute_facts(merged.tickets, merged.events, self.settings.kpi, self.as_of)
            in_scope = all_facts if self.window is None else facts_in_window(
                all_facts, self.window, self.settings.kpi.reporting_timezone)
            facts = Replacement("ticket_facts", in_scope, in_scope[FACT_KEY])
        staging.add([facts])
        if groups is not None:
            return facts, group_tables(all_facts, self.settings.kpi, groups), groups
        return facts, kpi_tables(all_facts, self.settings.kpi), None

    def _refresh_facts(self, merged: Merged) -> tuple[FactsRefresh, TouchedGroups]:
        """A nightly run's facts, stored ones reused where they cannot have changed (pipeline/refresh.py),
        and the groups whose KPI rows the changed facts can have moved (pipeline/groups.py)."""
        stored = self.stores.read_arrow("ticket_facts", keep=True)
        reuse = self.ledger.store_state(FACTS_FINGERPRINT) == facts_fingerprint(self.settings.kpi)
        if not reuse:
            log.info("fact settings changed or not recorded: recomputing every ticket's facts")
        refresh = refresh_facts(merged.tickets, merged.events, merged.changed_keys, stored, self.settings.kpi,
                                self.as_of, reuse=reuse, columns=FACTS_READ)
        kpi = self.settings.kpi
        return refresh, touched_groups(refresh.changes, stored, refresh.facts, kpi.grains, kpi.reporting_timezone)

    # --- select -----------------------------------------------------------------------------
    @staticmethod
    def _raw_replacements(pulled: Pulled, merged: Merged, run_id: str) -> list[Replacement]:
        """The raw layer's changes and this run's rejected rows (final once merged)."""
        rejected = pulled.rejected.assign(run_id=run_id)
        return [
            Replacement("raw_tickets", pulled.tickets, pulled.tickets[FACT_KEY]),
            Replacement("raw_events", merged.changed_events, merged.changed_keys),
            # a row read again replaces its earlier rejection: reruns never duplicate rejected rows
            Replacement("rejected_rows", rejected, rejected[REJECT_KEY].drop_duplicates()),
        ]

    def _replacements(self, tables: KpiTables, groups: TouchedGroups | None, facts: Replacement,
                      summary: RunSummary) -> Iterator[Replacement]:
        """The period tables' replacements, one by one: a nightly run's changed rows of the touched groups,
        or every period of a backfill's window (of the demo's facts)."""
        if groups is not None:
            periods = groups.periods()
            summary.periods_written = len(periods)
            for table in ("kpi_engineer", "kpi_team", "scorecard_kpi"):
                yield self._changed_group_rows(table, getattr(tables, table), groups, periods)
            yield self._changed_scorecard_rows(tables.scorecard, groups.engineer, periods)
        else:
            periods = self._window_periods(facts.rows)
            summary.periods_written = len(periods)
            for table in PERIOD_TABLES:
                yield Replacement(table, getattr(tables, table).merge(periods, on=PERIOD_KEY), periods)

    def _stored_rows(self, table: str, periods: pd.DataFrame, groups: pd.DataFrame | None = None,
                     by: str = "engineer") -> pd.DataFrame:
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
        by = "team" if table == "kpi_team" else "engineer"
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
        if self.kind == "run":
            for source, cursor in pulled.cursors.items():
                writes.append(self.ledger.set_watermark_writes(source, cursor))
            for source, names in pulled.files.items():
                writes.append(self.ledger.add_files_writes(source, names, run_id))

        def apply(conn) -> None:
            for write in writes:
                write(conn)
        return apply


@dataclass(frozen=True)
class Merged:
    """The raw layer after this run: every ticket and event, and what changed."""

    tickets: pd.DataFrame
    events: pd.DataFrame
    changed_keys: pd.DataFrame  # (source, ticket_id) with a new ticket row or new events
    changed_events: pd.DataFrame  # the whole merged history of those tickets


@dataclass(frozen=True)
class RawLayer:
    """The canonical input kept from earlier runs (Parquet ``raw_tickets`` / ``raw_events``)."""

    tickets: pd.DataFrame
    events: pd.DataFrame

    def merge(self, pulled: Pulled) -> Merged:
        """This run's tickets replace their earlier versions; their events are added to the history.

        A daily export holds only that day's events, a REST pull re-sends the whole history: the
        union, without repeats of the same event, is right for both. New events sort after the kept
        ones where time and kind tie (their ``seq`` continues after the stored ones).
        """
        ticket_keys = pulled.tickets[FACT_KEY].drop_duplicates()
        changed = pd.concat([ticket_keys, pulled.events[FACT_KEY]], ignore_index=True).drop_duplicates()
        offset = int(self.events["seq"].max()) + 1 if len(self.events) else 0
        new_events = pulled.events.assign(seq=pulled.events["seq"] + offset)
        history = pd.concat([_only(self.events, changed), new_events], ignore_index=True)
        history = history.drop_duplicates(EVENT_IDENTITY, keep="first", ignore_index=True)
        return Merged(
            tickets=pd.concat([_without(self.tickets, ticket_keys), pulled.tickets], ignore_index=True),
            events=pd.concat([_without(self.events, changed), history], ignore_index=True),
            changed_keys=changed,
            changed_events=history,
        )


def _without(frame: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    return frame[~key_hits(frame[FACT_KEY], keys[FACT_KEY])]


def _only(frame: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    return frame[key_hits(frame[FACT_KEY], keys[FACT_KEY])]


def _reason_counts(rejected: pd.DataFrame) -> dict[str, int]:
    if rejected.empty:
        return {}
    reasons = rejected["reason"].astype("str").str.replace(r"\s*'.*$", "", regex=True)
    return {str(k): int(v) for k, v in reasons.value_counts().items()}
