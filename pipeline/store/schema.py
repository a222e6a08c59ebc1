"""The SQL store's tables: one per ``kpis.schema.TABLE_COLUMNS`` entry plus the run ledger's own.

Every column carries its description as a SQL comment (PostgreSQL stores it with ``COMMENT ON``;
SQLite ignores it). The ledger tables are described with ``kpis.schema.Column`` too, so
``kpis.schema.conform`` fixes their dtypes when they are read back.

    ticket_facts, kpi_engineer, kpi_team,    the KPI outputs (in both stores)
    scorecard, scorecard_kpi, rejected_rows
    adjustments                              the approved exemptions, and whether the last run applied them
    kpi_breakdown, ticket_status_time,       breakdowns, time in status, the daily backlog (KPIS.md 4.1, 3.1,
    kpi_backlog                              4.2; written by pipeline/ops_tables.py and the period tables)
    pipeline_runs                            one row per run (in both stores)
    source_state, source_files               watermarks and files already read (SQL only)
    run_lock                                 the one-run-at-a-time lock (SQL only)
    run_lock_generation                      the lock's fencing token, kept across releases (SQL only)
    store_commits                            which store commits reached SQL (SQL only; see stores.py)
    store_state                              facts about the stored data, e.g. the facts' config fingerprint
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Date,
    DateTime,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    inspect,
)
from sqlalchemy import Column as SqlColumn
from sqlalchemy.types import TypeEngine

from kpis.schema import BOOL, DATE, FLOAT, INT, STR, TABLE_COLUMNS, TABLE_KEYS, TS, Column

__all__ = [
    "ADJUSTMENT_FILE_COLUMNS",
    "LEDGER_COLUMNS",
    "LEDGER_KEYS",
    "PIPELINE_RUNS_COLUMNS",
    "RUN_STATUSES",
    "SQL_COLUMNS",
    "create_all",
    "metadata",
    "sql_type",
]

RUN_STATUSES = ("running", "success", "partial", "failed")


def _cols(*cols: Column) -> dict[str, Column]:
    return {c.name: c for c in cols}

PIPELINE_RUNS_COLUMNS = _cols(
    Column("run_id", STR, "Run id: UTC start time and a random suffix, sortable"),
    Column("kind", STR, "run (nightly), backfill or demo"),
    Column("started_at", TS, "When the run started (UTC)"),
    Column("finished_at", TS, "When the run finished (UTC); null while running"),
    Column("status", STR, "running / success / partial (some sources failed) / failed"),
    Column("window_from", TS, "Start of the window of tickets pulled (UTC); null for an incremental run"),
    Column("window_to", TS, "End of the window of tickets pulled (UTC); null for an incremental run"),
    Column("as_of", TS, "The run's as-of timestamp (UTC)"),
    Column("rows_read", INT, "Ticket and event rows read from all sources"),
    Column("rows_rejected", INT, "Rows that could not be used (see rejected_rows)"),
    Column("rows_written", INT, "Rows written to the output tables"),
    Column("periods_written", INT, "(grain, period_start) periods recomputed and replaced"),
    Column("alerts_sent", INT, "Alert messages posted after the run"),
    Column("alerts_failed", INT, "Alert messages that could not be posted (after retries)"),
    Column("error", STR, "One-line reason when the run failed or was partial"),
    Column("stage_timings", STR, "Seconds per stage, JSON object"),
    Column("host", STR, "Host the run ran on"),
    Column("pid", INT, "Process id of the run"),
    Column("rows_superseded", INT, "Ticket copies read but not used because a newer copy (by updated_at) won, in "
           "the run or in the raw layer: a ticket read again is not bad input, and not in rows_rejected"),
    Column("conflicts_settled", INT, "Tickets whose newest copy shared its updated_at with a different copy; the "
           "later read (the later file, then the later line) won"),
    Column("reporting_timezone", STR, "IANA timezone the run's period_start dates are local dates of"),
    Column("config_hash", STR, "Digest of the run's effective config (secrets excluded): equal hashes, same config"),
)

SOURCE_STATE_COLUMNS = _cols(
    Column("source", STR, "Name of the configured source"),
    Column("watermark", STR, "Where the next incremental pull starts (source-specific, usually an ISO timestamp)"),
    Column("updated_at", TS, "When the watermark was last moved (UTC)"),
)

SOURCE_FILES_COLUMNS = _cols(
    Column("source", STR, "Name of the configured source"),
    Column("file_key", STR, "A file already read: its name and SHA-256 (name:sha256), so a corrected copy is "
           "read again"),
    Column("run_id", STR, "The run that read it"),
    Column("read_at", TS, "When it was read (UTC)"),
)

RUN_LOCK_COLUMNS = _cols(
    Column("name", STR, "Lock name; one row while a run holds it"),
    Column("holder", STR, "run_id of the run holding the lock"),
    Column("host", STR, "Host of the holder"),
    Column("pid", INT, "Process id of the holder"),
    Column("acquired_at", TS, "When the holder took the lock (UTC)"),
    Column("heartbeat_at", TS, "Last sign of life from the holder (UTC); older than the stale limit = taken over"),
)

# Its own table, not a run_lock column: an existing store gets it from create_all (no ALTER), and the
# counter outlives run_lock's row, which is deleted on release (or by hand, for a dead lock).
RUN_LOCK_GENERATION_COLUMNS = _cols(
    Column("name", STR, "Lock name (as in run_lock)"),
    Column("generation", INT, "Fencing token of the latest grant: +1 at every acquisition and take-over, never "
           "reset; a run commits only while it still holds the generation it was granted"),
    Column("holder", STR, "run_id of the run granted this generation"),
    Column("granted_at", TS, "When it was granted (UTC)"),
    Column("taken_from", STR, "The run whose stale lock this grant took over; null when the lock was free"),
    Column("taken_after_s", INT, "How long that run had been silent (no heartbeat) when it was taken over, seconds"),
)

STORE_COMMITS_COLUMNS = _cols(
    Column("commit_id", STR, "Id of one Stores.commit, also written to the Parquet journal"),
    Column("run_id", STR, "The run that committed"),
    Column("committed_at", TS, "When the SQL transaction committed (UTC)"),
    Column("tables", STR, "Tables replaced, comma-separated"),
)

STORE_STATE_COLUMNS = _cols(
    Column("name", STR, "What is recorded: facts_fingerprint (the settings the stored ticket_facts were "
           "computed with), facts_as_of (the as_of every stored fact was computed at), tables_fingerprint "
           "(the KPI settings the stored period tables were computed with), ops_fingerprint (the settings of "
           "ticket_status_time and kpi_backlog), kpi_settings (the KPI settings of the last run, JSON, for "
           "itsm-kpi explain), source_mapping:<source> (the mapping settings a source was last read with) or "
           "views_fingerprint (the statements the analyst views were made with)"),
    Column("value", STR, "Its value"),
    Column("updated_at", TS, "When it was last written (UTC)"),
)

#: The approvals files read (``[adjustments]``), Parquet only like the raw layer: a file is read again only
#: when its checksum changes, and its new version then replaces what it approved before.
ADJUSTMENT_FILE_COLUMNS = _cols(
    Column("file", STR, "The approvals file, as adjustments.path found it"),
    Column("sha256", STR, "SHA-256 of the version read"),
    Column("rows_read", INT, "Rows read from that version (data rows and unreadable lines)"),
    Column("rows_rejected", INT, "Of those, rows rejected (see rejected_rows, row_kind adjustment)"),
    Column("run_id", STR, "The run that read it"),
)

LEDGER_COLUMNS: dict[str, dict[str, Column]] = {
    "pipeline_runs": PIPELINE_RUNS_COLUMNS,
    "source_state": SOURCE_STATE_COLUMNS,
    "source_files": SOURCE_FILES_COLUMNS,
    "run_lock": RUN_LOCK_COLUMNS,
    "run_lock_generation": RUN_LOCK_GENERATION_COLUMNS,
    "store_commits": STORE_COMMITS_COLUMNS,
    "store_state": STORE_STATE_COLUMNS,
}
LEDGER_KEYS: dict[str, tuple[str, ...]] = {
    "pipeline_runs": ("run_id",),
    "source_state": ("source",),
    "source_files": ("source", "file_key"),
    "run_lock": ("name",),
    "run_lock_generation": ("name",),
    "store_commits": ("commit_id",),
    "store_state": ("name",),
}

#: Every SQL table's columns (the surrogate ``rejected_rows.row_id`` aside).
SQL_COLUMNS: dict[str, dict[str, Column]] = {**TABLE_COLUMNS, **LEDGER_COLUMNS}
SQL_KEYS: dict[str, tuple[str, ...]] = {**TABLE_KEYS, **LEDGER_KEYS}

TABLE_COMMENTS = {
    "ticket_facts": "One row per (source, ticket_id): the per-ticket facts (KPIS.md 3)",
    "kpi_engineer": "KPIs per (grain, period_start, engineer, ticket_type) (KPIS.md 4)",
    "kpi_team": "KPIs per (grain, period_start, team, ticket_type) (KPIS.md 4)",
    "scorecard": "Scorecard per (grain, period_start, engineer) (KPIS.md 5)",
    "scorecard_kpi": "Scorecard detail per (grain, period_start, engineer, kpi) (KPIS.md 5)",
    "rejected_rows": "One row per input row that could not be used",
    "adjustments": "One row per (source, ticket_id, scope): every valid approved exemption read (KPIS.md 1.4), "
                   "the earliest when approved twice, and whether the last run applied it",
    "kpi_breakdown": "The kpi_engineer columns per (grain, period_start, dimension, member, ticket_type), one "
                     "dimension per reporting.breakdowns entry (KPIS.md 4.1)",
    "ticket_status_time": "Time in status per (source, ticket_id, status) (KPIS.md 3.1)",
    "alerts_sent": "What each alert posted about which ticket and metric, when (a breach is posted once)",
    "kpi_backlog": "Open tickets at the end of each local day per (day, engineer, ticket_type, priority) (KPIS.md 4.2)",
    "pipeline_runs": "One row per run of the pipeline",
    "source_state": "Incremental-pull watermark per source",
    "source_files": "Files already read per file source",
    "run_lock": "The lock that keeps runs from overlapping",
    "run_lock_generation": "The run lock's fencing token: the generation of its latest grant, kept across releases",
    "store_commits": "Store commits whose SQL transaction committed (used to recover an interrupted Parquet swap)",
    "store_state": "Facts about the stored data, e.g. the settings fingerprint of the stored ticket_facts",
}

_TYPES: dict[str, type[TypeEngine]] = {
    STR: Text,
    INT: BigInteger,
    FLOAT: Double,
    BOOL: Boolean,
    DATE: Date,
}

metadata = MetaData()


def sql_type(dtype: str) -> TypeEngine:
    """The SQLAlchemy type storing a ``kpis.schema`` dtype."""
    if dtype == TS:
        return DateTime(timezone=True)
    return _TYPES[dtype]()


def _columns(columns: dict[str, Column], keys: tuple[str, ...]) -> list[SqlColumn]:
    return [
        SqlColumn(c.name, sql_type(c.dtype), primary_key=c.name in keys, nullable=c.name not in keys,
                  comment=c.description)
        for c in columns.values()
    ]


def _table(name: str, columns: dict[str, Column]) -> Table:
    cols = _columns(columns, SQL_KEYS.get(name, ()))
    if name == "rejected_rows":
        row_id = SqlColumn("row_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                           autoincrement=True, comment="Surrogate id (SQL only)")
        cols.insert(0, row_id)
    return Table(name, metadata, *cols, comment=TABLE_COMMENTS.get(name))


for _name, _columns_of in SQL_COLUMNS.items():
    _table(_name, _columns_of)

Index("ix_rejected_rows_source_ticket", metadata.tables["rejected_rows"].c.source,
      metadata.tables["rejected_rows"].c.ticket_id)
Index("ix_rejected_rows_run", metadata.tables["rejected_rows"].c.run_id)
Index("ix_pipeline_runs_started", metadata.tables["pipeline_runs"].c.started_at)


#: Ledger columns added after a release: a store made before them gets them added (nullable, no default).
ADDED_COLUMNS = {"pipeline_runs": ("rows_superseded", "conflicts_settled", "reporting_timezone", "config_hash")}


def create_all(engine: Engine) -> None:
    """Create every missing table, and add the ledger columns a store made by an older version lacks
    (``ADDED_COLUMNS``); nothing else of an existing table is changed."""
    with engine.begin() as conn:
        serialise_schema_changes(conn)
        metadata.create_all(conn, checkfirst=True)
        for name, added in ADDED_COLUMNS.items():
            present = {c["name"] for c in inspect(conn).get_columns(name)}
            for column in added:
                if column not in present:
                    _add_column(conn, name, metadata.tables[name].c[column])


def serialise_schema_changes(conn: Connection) -> None:
    """On PostgreSQL, wait for any other process changing the schema (a transaction-scoped advisory lock):
    two processes opening a new store at once would otherwise both create a table or view and one would fail
    on ``pg_type_typname_nsp_index``. SQLite serialises writers itself."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('itsm-kpi schema'))")


def _add_column(conn: Connection, table: str, column: SqlColumn) -> None:
    """``ALTER TABLE ... ADD COLUMN``, with its comment where the database keeps comments."""
    kind = column.type.compile(dialect=conn.dialect)
    conn.exec_driver_sql(f'ALTER TABLE "{table}" ADD COLUMN "{column.name}" {kind}')
    if conn.dialect.name == "postgresql" and column.comment:
        comment = column.comment.replace("'", "''")
        conn.exec_driver_sql(f'COMMENT ON COLUMN "{table}"."{column.name}" IS \'{comment}\'')
