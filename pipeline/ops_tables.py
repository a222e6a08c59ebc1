"""Time in status (KPIS.md 3.1, ``ticket_status_time``) and the daily backlog (4.2, ``kpi_backlog``) in every run.

Both are computed from the raw layer after the merge (every ticket and event) and the run's facts (each
ticket's resolution policy names its calendar and pause statuses, ``pipeline/policies.py``). What a run
recomputes (DECISIONS.md D83, D95):

- the demo, a first night, a night after a backfill or after a change of the settings these tables read
  (``ops_fingerprint``): everything;
- a night: status time of the *changed* tickets (new ticket copy or event, an approval, changed facts) and
  of every ticket whose last status segment is open (it runs to ``as_of``, so it grows every night); the
  backlog's rows (day and group) in which the changed tickets' old and new versions count differently,
  and every row of the last stored day and of each later one up to ``as_of``'s local date
  (``pipeline/backlog_days.py``, D95). No other row can have moved;
- a backfill: status time of its window's tickets and of the open ones; the whole backlog.

The recomputed rows are compared with the stored ones of the same scope (``pipeline.changes.row_changes``):
only rows that differ are written, stored rows now gone are deleted, a row that did not move keeps its
``as_of`` (D20). So after any sequence of nights both tables hold what one full computation at the last
``as_of`` would write.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kpis.backlog_scope import BacklogScope
from kpis.calendar import epoch_seconds
from kpis.config import KpiSettings, facts_fingerprint
from kpis.keys import key_hits, ticket_positions
from kpis.schema import TABLE_COLUMNS, TABLE_KEYS, conform, empty_frame
from kpis.status_time import CodedHistory, LastStatus
from pipeline.backlog_days import backlog_scope
from pipeline.changes import row_changes
from pipeline.compute import OpsFunction
from pipeline.compute.ops import OpsRequest, local_ops
from pipeline.raw import RawLayer
from pipeline.store import Replacement, Stores
from pipeline.store.parquet import to_pandas

log = logging.getLogger(__name__)

KEY = ["source", "ticket_id"]
#: store_state: the settings the stored ops tables were computed with (None after a backfill).
OPS_FINGERPRINT = "ops_fingerprint"
#: ticket_facts columns these tables read besides ``kpis.aggregate.FACTS_READ``.
FACTS_FOR_OPS = ("resolution_policy", "resolution_due_at")


def ops_fingerprint(settings: KpiSettings) -> str:
    """A digest of the settings the two tables read: the fact settings and the reporting timezone."""
    text = f"{facts_fingerprint(settings)}|{settings.reporting_timezone}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class OpsScope:
    """What a run recomputes: the ``changed`` tickets' status time (None: every ticket's; a ticket may be
    named more than once), and the backlog's rows in which their version before the run (``previous``, the
    raw layer then) and after it count differently (``previous`` None: every row)."""

    changed: pd.DataFrame | None
    previous: RawLayer | None

    @classmethod
    def of(cls, kind: str, recorded: str | None, settings: KpiSettings, raw_changed: pd.DataFrame,
           facts_written: pd.DataFrame, previous: RawLayer) -> OpsScope:
        """The scope of a run of ``kind`` whose store recorded ``recorded`` (``OPS_FINGERPRINT``).

        ``raw_changed``: the tickets with a new raw copy, event or approval; ``facts_written``: the facts rows
        the run writes (a night: those that changed; a backfill: its window's); ``previous``: the raw layer
        before the run.
        """
        if kind == "demo" or (kind == "run" and recorded != ops_fingerprint(settings)):
            return cls(None, None)
        raw = raw_changed[KEY].astype("str")
        # a ticket may be named twice (a new raw copy and its facts): the lookups by these keys do not mind
        changed = pd.concat([raw, facts_written[KEY].astype("str")], ignore_index=True)
        return cls(changed, previous if kind == "run" else None)


def ops_replacements(stores: Stores, settings: KpiSettings, tickets: pd.DataFrame, events: pd.DataFrame,
                     facts: pd.DataFrame, as_of: pd.Timestamp, scope: OpsScope,
                     ops_of: OpsFunction = local_ops, history: CodedHistory | None = None) -> Iterator[Replacement]:
    """The ``ticket_status_time`` and ``kpi_backlog`` replacements of a run (see the module docstring).

    ``tickets``/``events``: the raw layer after the merge; ``facts``: every ticket's facts after the run
    (``FACTS_FOR_OPS`` and ``excluded_reason`` at least); ``ops_of``: the ``[compute]`` engine's
    (``pipeline.compute.ops_engine``); ``history``: the history of ``tickets`` the facts built, if they did
    (``OpsRequest.history``).
    """
    tickets = tickets.reset_index(drop=True)
    status_keys = None
    if scope.changed is not None:
        keys = pd.concat([scope.changed, open_last_status(tickets, events, as_of)], ignore_index=True)
        status_keys = tickets.loc[key_hits(tickets[KEY], keys), KEY].reset_index(drop=True)  # each ticket once
    backlog = None if scope.previous is None else backlog_scope(stores, settings, RawLayer(tickets, events),
                                                                 scope.previous, facts, as_of, scope.changed)
    days = None if backlog is None else backlog.days
    rows = ops_of(tickets, events, facts, OpsRequest(settings, as_of, status_keys, days, backlog, history))
    yield _status_time_changes(stores, rows.status_time, status_keys)
    yield _backlog_changes(stores, rows.backlog, backlog)


# --- time in status ------------------------------------------------------------------------------
def _status_time_changes(stores: Stores, rows: pd.DataFrame, keys: pd.DataFrame | None) -> Replacement:
    """The recomputed status rows of ``keys``' tickets (every ticket when None) against the stored ones."""
    stored = _stored_of_tickets(stores, keys)
    changes = row_changes(rows, stored, list(TABLE_KEYS["ticket_status_time"]))
    log.info("ticket_status_time: %s tickets recomputed, %d rows changed, %d gone",
             "all" if keys is None else len(keys), len(changes.rows), len(changes.gone))
    return Replacement("ticket_status_time", changes.rows, changes.gone)


def open_last_status(tickets: pd.DataFrame, events: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """(source, ticket_id) of the ``tickets`` whose last status event (any of them when several share its
    time) sets an open status before ``as_of``: their last segment runs to ``as_of``."""
    status = events[(events["kind"] == "status").to_numpy(dtype=bool, na_value=False)]
    tix = ticket_positions(tickets, status)
    known = tix >= 0
    last = LastStatus.of(tix[known], epoch_seconds(status["at"])[known], status["value"][known], len(tickets))
    still = last.open & (last.latest_at < pd.Timestamp(as_of).timestamp())
    return tickets.loc[still, KEY].astype("str").reset_index(drop=True)


def _stored_of_tickets(stores: Stores, keys: pd.DataFrame | None) -> pd.DataFrame:
    """The stored ``ticket_status_time`` rows of ``keys`` (every row when None)."""
    columns = TABLE_COLUMNS["ticket_status_time"]
    if keys is not None and keys.empty:
        return empty_frame(columns)
    wanted = None if keys is None else pc.field("ticket_id").isin(
        pa.array(keys["ticket_id"].astype("str").unique(), type=pa.string()))
    rows = stores.read_arrow("ticket_status_time", wanted, keep=True)
    if keys is not None and rows.num_rows:
        rows = rows.filter(pa.array(key_hits(rows.select(KEY), keys.astype("str"))))
    return to_pandas(rows, columns)


# --- the daily backlog ---------------------------------------------------------------------------
def _backlog_changes(stores: Stores, rows: pd.DataFrame, scope: BacklogScope | None) -> Replacement:
    """The recomputed backlog rows of ``scope`` (every row when None) against the stored ones."""
    if scope is not None and not len(scope.days):
        return Replacement("kpi_backlog", empty_frame(TABLE_COLUMNS["kpi_backlog"]))
    stored = _stored_backlog(stores, scope)
    rows = rows if scope is None else rows[scope.holds(rows)]
    changes = row_changes(rows, stored, list(TABLE_KEYS["kpi_backlog"]))
    log.info("kpi_backlog: %s, %d rows changed, %d gone",
             "all days recomputed" if scope is None else f"{len(scope.days)} days recomputed, "
             f"{len(stored)} stored rows compared", len(changes.rows), len(changes.gone))
    return Replacement("kpi_backlog", changes.rows, changes.gone)


def _stored_backlog(stores: Stores, scope: BacklogScope | None) -> pd.DataFrame:
    """The stored backlog rows of ``scope`` (every row when None)."""
    columns = TABLE_COLUMNS["kpi_backlog"]
    if scope is None:
        return conform(to_pandas(stores.read_arrow("kpi_backlog", keep=True), columns), columns)
    days = pc.field("day").isin(pa.array(scope.days.astype("datetime64[D]"), type=pa.date32()))
    rows = stores.read_arrow("kpi_backlog", days, keep=True)
    return conform(to_pandas(rows.filter(pa.array(scope.holds(rows))), columns), columns)
