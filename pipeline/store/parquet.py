"""The Parquet store: Hive-partitioned datasets under one root, replaced by a staging swap.

Layout under ``root``::

    <table>/<partition>=<value>/part-<i>.parquet  the live datasets (pyarrow.dataset, DuckDB read_parquet)
    .staging/<run_id>/<table>/                    a table's next version, written before the SQL commit
    .trash/<run_id>/<table>/                      the old version while the swap runs
    .journal.json                                 names the commit in flight; present only during a commit
    .commit.lock                                  flock held while committing or recovering

A table is always written whole (its new full version), so a reader sees the old or the new dataset,
never a mix. Frames cross the boundary through ``to_arrow`` / ``to_pandas``, which apply
``kpis.schema.conform`` so a frame read back equals the frame written.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from kpis.errors import first_line
from kpis.schema import (
    ADJUSTMENT_COLUMNS,
    BOOL,
    DATE,
    EVENT_COLUMNS,
    FLOAT,
    INT,
    STR,
    TABLE_COLUMNS,
    TABLE_KEYS,
    TICKET_COLUMNS,
    TS,
    Column,
    conform,
)
from pipeline.store.durable import sync_dir, sync_tree
from pipeline.store.errors import StoreError
from pipeline.store.schema import ADJUSTMENT_FILE_COLUMNS, PIPELINE_RUNS_COLUMNS
from pipeline.store.table_version import TableVersion

log = logging.getLogger(__name__)

#: Tables kept only in Parquet: the raw layer the pipeline recomputes from.
PARQUET_ONLY_COLUMNS: dict[str, dict[str, Column]] = {
    "raw_tickets": TICKET_COLUMNS, "raw_events": EVENT_COLUMNS,
    "raw_adjustments": ADJUSTMENT_COLUMNS, "adjustment_files": ADJUSTMENT_FILE_COLUMNS,
}
PARQUET_COLUMNS: dict[str, dict[str, Column]] = {
    **TABLE_COLUMNS,
    "pipeline_runs": PIPELINE_RUNS_COLUMNS,
    **PARQUET_ONLY_COLUMNS,
}
#: Rows sharing these values are one row: the last one written wins.
PARQUET_KEYS: dict[str, tuple[str, ...]] = {
    **TABLE_KEYS,
    "pipeline_runs": ("run_id",),
    "raw_tickets": ("source", "ticket_id"),
    "raw_adjustments": ("file", "source", "ticket_id", "scope"),
    "adjustment_files": ("file",),
}
PARTITION_BY: dict[str, str] = {
    "kpi_engineer": "grain",
    "kpi_team": "grain",
    "scorecard": "grain",
    "scorecard_kpi": "grain",
    "ticket_facts": "source",
    "rejected_rows": "source",
    "adjustments": "source",
    "kpi_breakdown": "grain",
    "ticket_status_time": "source",
    "raw_tickets": "source",
    "raw_events": "source",
}

_ARROW_TYPES = {
    STR: pa.string(),
    TS: pa.timestamp("us", tz="UTC"),
    INT: pa.int64(),
    FLOAT: pa.float64(),
    BOOL: pa.bool_(),
    DATE: pa.date32(),
}
_PANDAS_TYPES = {pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype(), pa.bool_(): pd.BooleanDtype()}


# Files of at most this many rows: Arrow writes (and reads) several files of a partition in parallel, so
# 1M fact rows write in about half the time of one file on two cores.
_ROWS_PER_FILE = 256 * 1024


def _write_options() -> ds.FileWriteOptions:
    # LZ4 without dictionary pages: a nightly run rereads and rewrites the big tables, and at 1M
    # ticket_facts rows LZ4 writes in 0.41 s and reads in 0.27 s where zstd takes 0.65 s and 0.55 s
    # (pyarrow 26, 2 cores). The files are ~70% larger than zstd's (69 MB instead of 41 MB).
    return ds.ParquetFileFormat().make_write_options(compression="lz4", use_dictionary=False)


def arrow_schema(columns: dict[str, Column]) -> pa.Schema:
    """The Arrow schema of a table with these columns."""
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.dtype]) for c in columns.values()])


def _arrow_column(values: pd.Series, column: Column) -> pa.Array:
    if column.dtype == DATE:
        return pa.array(values, from_pandas=True).cast(pa.timestamp("s")).cast(pa.date32())
    if column.dtype == TS:
        return pa.array(values, from_pandas=True).cast(_ARROW_TYPES[TS])
    return pa.array(values, type=_ARROW_TYPES[column.dtype], from_pandas=True)


def to_arrow(frame: pd.DataFrame, columns: dict[str, Column]) -> pa.Table:
    """``frame`` conformed to ``columns`` as an Arrow table (dates as date32, timestamps as UTC µs)."""
    frame = conform(frame, columns)
    arrays = [_arrow_column(frame[c.name], c) for c in columns.values()]
    return pa.Table.from_arrays(arrays, schema=arrow_schema(columns))


def to_pandas(table: pa.Table, columns: dict[str, Column]) -> pd.DataFrame:
    """An Arrow table as a frame conformed to ``columns`` (the inverse of ``to_arrow``)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_date32(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.timestamp("s")))
    frame = table.to_pandas(types_mapper=_PANDAS_TYPES.get)
    return conform(frame, columns)


def in_key_order(rows: pa.Table, keys: Sequence[str]) -> pa.Table:
    """``rows`` sorted by ``keys`` (texts in byte order, as SQLite's index and pandas order them; ties keep
    their order); ``rows`` itself, not a copy, when they already are."""
    if not keys or rows.num_rows < 2:
        return rows
    order = pc.sort_indices(rows, [(key, "ascending") for key in keys]).to_numpy()
    return rows if bool(np.all(order[1:] > order[:-1])) else rows.take(order)


def dedupe_last(table: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    """Keep the last row of each key, in the original order of the kept rows."""
    if not keys or table.num_rows == 0:
        return table
    numbered = table.append_column("__row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    last = numbered.group_by(list(keys), use_threads=False).aggregate([("__row", "max")])
    if last.num_rows == table.num_rows:  # every key once, as a run's rows come: no copy of the whole table
        return table
    return table.take(np.sort(last.column("__row_max").to_numpy()))  # the kept rows' own numbers, in order


def distinct(table: pa.Table) -> pa.Table:
    """Distinct rows of ``table``, rows holding a null dropped (a null matches nothing)."""
    table = table.drop_null()
    if table.num_rows == 0:
        return table
    return table.group_by(table.column_names, use_threads=False).aggregate([]).select(table.column_names)


def anti_join(table: pa.Table, scope: pa.Table) -> pa.Table:
    """Rows of ``table`` matching no row of ``scope`` on ``scope``'s columns."""
    if scope.num_rows == 0 or table.num_rows == 0:
        return table
    kept = table.join(scope, keys=scope.column_names, join_type="left anti", use_threads=True)
    return kept.select(table.column_names)


def rows_to_remove(scope: pa.Table | None, rows: pa.Table, keys: list[str]) -> list[pa.Table]:
    """What replacing ``rows`` within ``scope`` removes from a table with these ``keys``: the rows matching
    the scope and those with a new row's key; one table (one pass) when the scope is made of the keys."""
    removed = [scope] if scope is not None and scope.num_rows else []
    if not keys or rows.num_rows == 0:
        return removed
    added = rows.select(keys)
    if removed and scope_is_keys(scope, keys):
        return [distinct(pa.concat_tables([scope.select(keys), added]))]
    return [*removed, distinct(added)]


def scope_is_keys(scope: pa.Table, keys: list[str]) -> bool:
    """Whether a replacement's ``scope`` names rows by the table's key columns (and nothing else)."""
    return bool(keys) and sorted(scope.column_names) == sorted(keys)


def _identity(path: Path) -> tuple[int, int, int]:
    """What changes when a directory is replaced by another (a swap renames a new one into place)."""
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns


class ParquetStore:
    """Reads and stages the Parquet datasets under ``root`` and swaps staged versions in."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # Whole tables read with keep=True, until new_version rewrites them (a night reads and then rewrites
        # ticket_facts and raw_tickets): keyed by the table directory's identity, which a swap changes.
        self._whole: dict[str, tuple[tuple[int, int, int], pa.Table]] = {}

    # -- paths ---------------------------------------------------------------------------------
    def table_dir(self, table: str) -> Path:
        """Directory of a live dataset."""
        return self.root / table

    def staging_dir(self, run_id: str) -> Path:
        """Directory of a run's staged datasets."""
        return self.root / ".staging" / run_id

    def trash_dir(self, run_id: str) -> Path:
        """Directory holding a run's replaced datasets while the swap runs."""
        return self.root / ".trash" / run_id

    @property
    def journal_path(self) -> Path:
        """The journal of the commit in flight."""
        return self.root / ".journal.json"

    # -- reading -------------------------------------------------------------------------------
    def _dataset(self, table: str, path: Path) -> ds.Dataset:
        schema = arrow_schema(PARQUET_COLUMNS[table])
        partitioning = None
        if table in PARTITION_BY:
            part = PARTITION_BY[table]
            partitioning = ds.partitioning(pa.schema([schema.field(part)]), flavor="hive")
        return ds.dataset(path, format="parquet", schema=schema, partitioning=partitioning)

    def read_arrow(self, table: str, filter: pc.Expression | None = None, *, keep: bool = False,
                   columns: list[str] | None = None) -> pa.Table:
        """A live dataset as Arrow (empty with the right schema when it does not exist yet).

        ``keep``: read the whole table and hold on to it until ``new_version`` rewrites it (a run that reads a
        table and then rewrites it reads it once). A table held is read from memory; a read that does not
        keep one pushes ``filter`` and ``columns`` (all when None) down to the scan.
        """
        path = self.table_dir(table)
        if not path.exists():
            empty = arrow_schema(PARQUET_COLUMNS[table]).empty_table()
            return empty if columns is None else empty.select(columns)
        identity = _identity(path)
        cached = self._whole.get(table)
        if cached is not None and cached[0] == identity:
            data = cached[1]
        elif not keep:
            return self._dataset(table, path).to_table(columns=columns, filter=filter)
        else:
            data = self._dataset(table, path).to_table()
            self._whole[table] = (identity, data)
        data = data if filter is None else data.filter(filter)  # the filter may read columns not selected
        return data if columns is None else data.select(columns)

    def read_columns(self, table: str, columns: list[str]) -> pd.DataFrame:
        """Some columns of every row of a live dataset (none when it does not exist), read without the rest."""
        path = self.table_dir(table)
        if not path.exists():
            return pd.DataFrame({c: pd.Series(dtype="str") for c in columns})
        return self._dataset(table, path).to_table(columns=columns).to_pandas()

    def read(self, table: str, filters: Any = None, *, keep: bool = False) -> pd.DataFrame:
        """A live dataset as a conformed frame; ``filters`` is a pyarrow expression or DNF tuples."""
        if filters is not None and not isinstance(filters, pc.Expression):
            filters = pq.filters_to_expression(filters)
        return to_pandas(self.read_arrow(table, filters, keep=keep), PARQUET_COLUMNS[table])

    # -- writing -------------------------------------------------------------------------------
    def new_version(self, table: str, rows: pa.Table, scope: pa.Table | None) -> TableVersion:
        """The table's next full version: the live rows minus ``scope`` and ``rows``' keys, plus ``rows``.

        Kept rows keep their order and the new rows follow, sorted by key: sorting only what is new
        keeps a nightly rewrite cheap, and the result is the same for the same history.
        """
        keys = list(PARQUET_KEYS.get(table, ()))
        live = self.read_arrow(table)
        self._whole.pop(table, None)  # the run is done reading it (the version holds it until written)
        rows = in_key_order(rows, keys)
        return TableVersion.of(live, rows_to_remove(scope, rows, keys), rows)

    def has(self, table: str) -> bool:
        """Whether a live dataset exists for ``table``."""
        return self.table_dir(table).exists()

    def stage(self, run_id: str, table: str, data: pa.Table | TableVersion) -> None:
        """Write ``data`` as the staged version of ``table`` (a Hive-partitioned dataset)."""
        target = self.staging_dir(run_id) / table
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = PARTITION_BY.get(table)
        if data.num_rows == 0:
            self._write_empty(target, data.schema.empty_table())
            sync_tree(target)
            return
        partitioning = ds.partitioning(pa.schema([data.schema.field(part)]), flavor="hive") if part else None
        source = data.reader() if isinstance(data, TableVersion) else data
        # Row groups of at least 32k rows, as a first write makes them (D124): without a floor every batch handed
        # over is a row group, and a rewrite hands over what is kept of each stored group, so groups would
        # shrink night after night.
        ds.write_dataset(source, target, format="parquet", partitioning=partitioning, file_options=_write_options(),
                         basename_template="part-{i}.parquet", existing_data_behavior="error",
                         max_rows_per_file=_ROWS_PER_FILE, max_rows_per_group=_ROWS_PER_FILE,
                         min_rows_per_group=_ROWS_PER_FILE // 8)
        sync_tree(target)  # on disk before the journal names it (pipeline.store.durable)

    @staticmethod
    def _write_empty(target: Path, data: pa.Table) -> None:
        """An empty dataset still needs one file so DuckDB's glob finds the table and its columns.

        It goes at the top of the table's directory with every column, the partition column included:
        a ``part=__HIVE_DEFAULT_PARTITION__`` directory would leave plain hive discovery in pyarrow
        nothing to infer the partition type from.
        """
        target.mkdir(parents=True, exist_ok=True)
        pq.write_table(data, target / "part-0.parquet")

    # -- journal -------------------------------------------------------------------------------
    def write_journal(self, journal: dict[str, Any]) -> None:
        """Write the journal atomically (temp file, fsync, rename)."""
        tmp = self.journal_path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(journal, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.journal_path)
        sync_dir(self.root)

    def read_journal(self) -> dict[str, Any] | None:
        """The journal of an interrupted commit, or None."""
        if not self.journal_path.exists():
            return None
        try:
            journal = json.loads(self.journal_path.read_text(encoding="utf-8"))
            if not isinstance(journal, dict) or not {"run_id", "commit_id", "tables"} <= journal.keys():
                raise ValueError("not a commit journal")
        except ValueError as exc:  # written to a temporary file and renamed: never torn by a run
            raise StoreError(f"the journal {self.journal_path} of an interrupted commit is damaged ({first_line(exc)}): "
                             "compare the last pipeline_runs row with the Parquet store, then delete the journal "
                             "and rerun a backfill of that run's window") from exc
        return journal

    def delete_journal(self) -> None:
        """Remove the journal: the commit is over."""
        self.journal_path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def commit_lock(self) -> Iterator[None]:
        """Hold an exclusive flock on ``.commit.lock``; the OS releases it when the process dies."""
        with open(self.root / ".commit.lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- swap ----------------------------------------------------------------------------------
    def swap_in(self, run_id: str, tables: list[str]) -> None:
        """Move each staged table into place (old one to the trash), then empty trash and staging.

        Idempotent: after an interruption, calling it again finishes the swap.
        """
        for table in tables:
            staged = self.staging_dir(run_id) / table
            if not staged.exists():
                continue  # already swapped in
            live, trash = self.table_dir(table), self.trash_dir(run_id) / table
            if live.exists():
                if trash.exists():
                    shutil.rmtree(live)  # the old version is already in the trash
                else:
                    trash.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(live, trash)
            os.rename(staged, live)
        sync_dir(self.root)  # the renames on disk before the old versions and then the journal go
        self.discard(run_id)

    def roll_back(self, run_id: str, tables: list[str]) -> None:
        """Put back any table already moved to the trash and drop the staged versions."""
        for table in tables:
            trash = self.trash_dir(run_id) / table
            if trash.exists():
                live = self.table_dir(table)
                if live.exists():
                    shutil.rmtree(live)
                os.rename(trash, live)
        self.discard(run_id)

    def discard(self, run_id: str) -> None:
        """Delete a run's staging and trash directories."""
        shutil.rmtree(self.staging_dir(run_id), ignore_errors=True)
        shutil.rmtree(self.trash_dir(run_id), ignore_errors=True)

    @contextlib.contextmanager
    def claim_staging(self, run_id: str) -> Iterator[None]:
        """Hold an flock on the run's staging directory: while it is held, the staging is no orphan.

        A run stages tables before it commits; another process's ``prepare()`` must not take them for
        the leftovers of a killed run. The OS releases the flock when the process dies.
        """
        fd = _locked_directory(self.staging_dir(run_id))
        try:
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def remove_orphans(self) -> None:
        """Delete staging and trash left by a run killed before its commit wrote its journal
        (a staging directory a live run claims is left alone)."""
        for path in (self.root / ".staging").glob("*"):
            _remove_unclaimed(path)
        for path in (self.root / ".trash").glob("*"):
            log.warning("removing %s left by an interrupted commit", path)
            shutil.rmtree(path, ignore_errors=True)


def _locked_directory(path: Path) -> int:
    """Create ``path`` and hold an exclusive flock on it; return the descriptor.

    Another process's ``remove_orphans`` may delete the directory between its creation and the flock
    (it deletes only while holding the flock itself): then the flock is on a removed directory, and
    the claim starts again.
    """
    while True:
        path.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _same_directory(fd, path):
            return fd
        os.close(fd)


def _same_directory(fd: int, path: Path) -> bool:
    try:
        at_path = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (at_path.st_dev, at_path.st_ino) == (held.st_dev, held.st_ino)


def _remove_unclaimed(path: Path) -> None:
    """Delete a staging directory unless a live process holds ``claim_staging``'s flock on it; the
    flock is held while deleting, so a run claiming it meanwhile waits and then makes a new one."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        fd = None  # not a directory we can open: nobody can have claimed it
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        log.warning("removing %s left by an interrupted run", path)
        shutil.rmtree(path, ignore_errors=True)
    except BlockingIOError:
        return  # a live run's staging
    finally:
        if fd is not None:
            os.close(fd)
