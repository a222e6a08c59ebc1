"""The analyst-SQL sandbox (CONTRACT.md, *Analyst SQL*) on real DuckDB, real SQLite files and real PostgreSQL.

Every refusal is checked three ways: exit 2, one line naming what is not allowed, and nothing created or
changed afterwards (no new or touched file under the working directory, ``tmp_path`` or the store; the
SQLite file's bytes and mtime as before; the PostgreSQL tables and their rows as before).
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from views_helpers import TABLES, write_store

from kpis import KpiTables
from pipeline.analyst.query import QueryError, QueryRefused, StoreQuery, run_query
from pipeline.store.views import VIEWS, create_views

NAMES = [*TABLES, *(v.name for v in VIEWS)]
DUCKDB_ALLOWED = "(only one SELECT, WITH, VALUES, DESCRIBE, SHOW or EXPLAIN statement)"
SQLITE_ALLOWED = "(only one SELECT, WITH, VALUES or EXPLAIN statement, or a read-only PRAGMA)"
POSTGRES_ALLOWED = "(only one SELECT, WITH, VALUES, TABLE, SHOW or EXPLAIN statement)"


# -- stores and what "nothing changed" means ------------------------------------------------------------
def _write(demo_tables: KpiTables, root: Path, url: str) -> tuple[Path, str]:
    write_store(demo_tables, root, url).close()
    engine = create_engine(url)
    create_views(engine)
    engine.dispose()
    return root, url


@pytest.fixture(scope="module")
def local(demo_tables: KpiTables, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(Parquet root, SQLite URL) holding the demo tables, views created in SQLite."""
    root = tmp_path_factory.mktemp("store")
    return _write(demo_tables, root, f"sqlite:///{root / 'kpi.sqlite'}")


@pytest.fixture(scope="module")
def pg(
    request: pytest.FixtureRequest, demo_tables: KpiTables, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """(Parquet root, PostgreSQL URL): the demo tables in a fresh database on the conftest's server."""
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    request.addfinalizer(lambda: server.drop_database(url.rsplit("/", 1)[1]))
    return _write(demo_tables, tmp_path_factory.mktemp("store"), url)


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test runs in ``tmp_path``, which also holds a readable file outside the store."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outside.csv").write_text("secret\nhunter2\n", encoding="utf-8")
    return tmp_path


def files(*roots: Path) -> dict[str, tuple[int, int, str]]:
    """Every path under ``roots``: (size, mtime in ns, sha256) for files, a marker for directories."""
    found: dict[str, tuple[int, int, str]] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_dir():
                found[str(path)] = (0, 0, "dir")
            elif path.is_file():
                stat = path.stat()
                found[str(path)] = (stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
            else:  # a FIFO or socket a test made
                found[str(path)] = (0, 0, "special")
    return found


def pg_state(url: str) -> dict[str, object]:
    """The PostgreSQL store as a reader sees it: its relations, and every table's rows as a checksum."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            relations = conn.exec_driver_sql(
                "SELECT table_name, table_type FROM information_schema.tables "
                "WHERE table_schema = 'public' ORDER BY table_name"
            ).all()
            state: dict[str, object] = {"relations": relations}
            for name, kind in relations:
                if kind == "BASE TABLE":
                    state[name] = conn.exec_driver_sql(
                        f"SELECT COUNT(*), md5(COALESCE(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {name} t"
                    ).one()
            return state
    finally:
        engine.dispose()


def query(store: tuple[Path, str], sql: str, engine: str, fmt: str = "text", timeout_s: float = 60) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_query(
        sql, store_path=store[0], sql_url=store[1], engine=engine, fmt=fmt, out=out, err=err, timeout_s=timeout_s
    )
    return code, out.getvalue(), err.getvalue()


def assert_refused(result: tuple[int, str, str], what: str | None, allowed: str) -> None:
    """Exit 2, no output, one line naming ``what`` is not allowed (any refusal when ``what`` is None)."""
    code, out, err = result
    assert (code, out) == (2, ""), err
    if what is None:
        assert err.startswith("itsm-kpi: query refused: ") and err.count("\n") == 1, err
    else:
        assert err == f"itsm-kpi: query refused: {what} is not allowed {allowed}\n"


# -- DuckDB over the Parquet store ------------------------------------------------------------------------
DUCKDB_REFUSED = [
    # the write is named, not the WITH before it (WITH is allowed)
    ("WITH a AS (SELECT 1) INSERT INTO ticket_facts SELECT * FROM ticket_facts", "a WITH that writes (INSERT)"),
    ("COPY (SELECT 1 AS a) TO 'out.csv'", "COPY"),
    ("COPY (SELECT 1 AS a) TO '{store}/out.csv'", "COPY"),
    ("COPY kpi_team TO 'team.parquet' (FORMAT parquet)", "COPY"),
    ("ATTACH 'x.db'", "ATTACH"),
    ("ATTACH '{store}/x.db' AS x", "ATTACH"),
    ("DETACH memory", "DETACH"),
    ("INSTALL httpfs", "INSTALL"),
    ("LOAD httpfs", "LOAD"),
    ("SET threads = 1", "SET"),
    ("RESET threads", "RESET"),
    ("SET enable_external_access = true", "SET"),
    ("PRAGMA enable_profiling", "PRAGMA"),
    ("CALL pragma_version()", "CALL"),
    ("EXPORT DATABASE 'exported'", "EXPORT"),
    ("IMPORT DATABASE '/etc'", None),  # DuckDB 2 refuses IMPORT, 1.x expands it: a file outside the store
    ("CREATE TABLE t(a int)", "CREATE"),
    ("CREATE VIEW v AS SELECT 1", "CREATE"),
    ("CREATE SECRET (TYPE s3, KEY_ID 'k', SECRET 's')", "CREATE"),
    ("DROP VIEW v_sla_breaches", "DROP"),
    ("DELETE FROM kpi_team", "DELETE"),
    ("BEGIN TRANSACTION", "BEGIN"),
    ("CHECKPOINT", "CHECKPOINT"),
    ("SELECT 1; CREATE TABLE t(a int)", "more than one statement"),
    ("SELECT 1; SELECT 2", "more than one statement"),
    ("EXPLAIN ANALYZE COPY (SELECT 1 AS a) TO 'explained.csv'", "COPY"),
    ("EXPLAIN ANALYZE COPY (SELECT 1 AS a) TO '{store}/explained.csv'", "COPY"),
    ("EXPLAIN (FORMAT json) CREATE TABLE t AS SELECT 1", "CREATE"),
    ("/* a comment first */ EXPLAIN ANALYSE COPY (SELECT 1 AS a) TO 'y.csv'", "COPY"),
    ("   ", "an empty statement"),
]


@pytest.mark.parametrize(("sql", "what"), DUCKDB_REFUSED, ids=[s for s, _ in DUCKDB_REFUSED])
def test_duckdb_refuses_what_is_not_a_query(local: tuple[Path, str], cwd: Path, sql: str, what: str | None) -> None:
    before = files(cwd, local[0])
    result = query(local, sql.replace("{store}", str(local[0])), "parquet")
    assert_refused(result, what, DUCKDB_ALLOWED)
    assert files(cwd, local[0]) == before


DUCKDB_OUTSIDE = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_parquet('/etc/passwd')",
    "SELECT * FROM read_csv('{cwd}/outside.csv')",
    "SELECT * FROM read_text('outside.csv')",
    "SELECT * FROM 'outside.csv'",
    "SELECT * FROM sniff_csv('{cwd}/outside.csv')",
    "SELECT * FROM read_text('{store}/../outside.csv')",
    "SELECT * FROM glob('{store}/../*')",
    "SELECT * FROM read_text('{store}x/secret')",
    "EXPLAIN ANALYZE SELECT * FROM read_text('{cwd}/outside.csv')",
]


@pytest.mark.parametrize("sql", DUCKDB_OUTSIDE)
def test_duckdb_reads_no_file_outside_the_store(local: tuple[Path, str], cwd: Path, sql: str) -> None:
    before = files(cwd, local[0])
    code, out, err = query(local, sql.replace("{store}", str(local[0])).replace("{cwd}", str(cwd)), "parquet")
    assert (code, out) == (2, "")
    assert err.startswith("itsm-kpi: query refused: Permission Error: ") and err.count("\n") == 1
    assert f"only the store's files under {local[0].resolve()}/ can be read" in err
    assert "hunter2" not in err
    assert files(cwd, local[0]) == before


def test_duckdb_refuses_a_path_outside_the_store_without_opening_it(local: tuple[Path, str], cwd: Path) -> None:
    """A FIFO blocks whoever opens it for reading until a writer comes: a refusal must come first."""
    fifo = cwd / "pipe"
    os.mkfifo(fifo)
    done: list[tuple[int, str, str]] = []
    reader = threading.Thread(target=lambda: done.append(query(local, f"SELECT * FROM read_text('{fifo}')", "parquet")))
    reader.start()
    reader.join(5)
    if reader.is_alive():  # DuckDB opened the FIFO and waits: release it, then fail
        with open(fifo, "w"):
            pass
        reader.join(5)
        pytest.fail("DuckDB opened a file outside the store")
    code, _, err = done[0]
    assert code == 2 and err.startswith("itsm-kpi: query refused: Permission Error: ")


def test_the_store_views_still_read_parquet_after_the_lock_down(local: tuple[Path, str]) -> None:
    with StoreQuery(store_path=local[0], sql_url=None, engine="parquet") as q:
        settings = dict(q.result(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('enable_external_access', 'lock_configuration', 'allowed_directories', 'temp_directory')"
        ).rows)
        assert q.result("SELECT COUNT(*) FROM read_parquet("
                        f"'{local[0].resolve()}/kpi_team/**/*.parquet')").rows[0][0] > 0
    assert settings["enable_external_access"] == "false"
    assert settings["lock_configuration"] == "true"
    assert settings["allowed_directories"] == f"[{local[0].resolve()}/]"
    assert settings["temp_directory"] == ""


@pytest.mark.parametrize("name", NAMES)
def test_duckdb_allows_every_kind_of_query_over_every_table_and_view(local: tuple[Path, str], cwd: Path, name: str) -> None:
    before = files(cwd, local[0])
    with StoreQuery(store_path=local[0], sql_url=None, engine="parquet") as q:
        assert q.result(f"SELECT COUNT(*) AS n FROM {name}").rows[0][0] > 0
        assert q.result(f"WITH x AS (SELECT * FROM {name}) SELECT COUNT(*) FROM x").rows[0][0] > 0
        assert q.result(f"FROM {name} LIMIT 1").rows
        assert q.result("VALUES (1, 'a'), (2, 'b')").rows == [(1, "a"), (2, "b")]
        assert len(q.result(f"DESCRIBE {name}").rows) > 2
        assert name in [row[0] for row in q.result("SHOW TABLES").rows]
        assert q.result(f"SHOW {name}").rows
        assert q.result(f"SUMMARIZE {name}").rows
        assert q.result(f"EXPLAIN SELECT * FROM {name}").rows
        assert q.result(f"EXPLAIN ANALYZE SELECT COUNT(*) FROM {name}").rows
    assert files(cwd, local[0]) == before


# -- SQLite ---------------------------------------------------------------------------------------------
SQLITE_REFUSED = [
    ("ATTACH DATABASE 'new.db' AS n", "ATTACH (or VACUUM, which attaches a database)"),
    ("ATTACH DATABASE '{store}/new.db' AS n", "ATTACH (or VACUUM, which attaches a database)"),
    ("DETACH DATABASE main", "DETACH"),
    ("VACUUM", "ATTACH (or VACUUM, which attaches a database)"),
    ("VACUUM INTO 'copy.db'", "ATTACH (or VACUUM, which attaches a database)"),
    ("PRAGMA writable_schema = ON", "PRAGMA writable_schema"),
    ("PRAGMA query_only = OFF", "PRAGMA query_only"),
    ("PRAGMA user_version = 7", "PRAGMA user_version"),
    ("PRAGMA journal_mode = WAL", "PRAGMA journal_mode"),
    ("PRAGMA optimize", "PRAGMA optimize"),
    ("PRAGMA temp_store_directory = '.'", "PRAGMA temp_store_directory"),
    ("SELECT * FROM pragma_user_version", "UPDATE of the schema"),
    ("DELETE FROM scorecard", "DELETE"),
    ("UPDATE scorecard SET score = 0", "UPDATE"),
    ("INSERT INTO scorecard (grain) VALUES ('x')", "INSERT"),
    ("CREATE TABLE t (a INTEGER)", "CREATE"),
    ("CREATE TEMP TABLE t (a INTEGER)", "CREATE"),
    ("DROP VIEW v_sla_breaches", "DROP"),
    ("ALTER TABLE scorecard RENAME TO sc", "ALTER TABLE"),
    ("ANALYZE", "CREATE"),  # SQLite first asks to create sqlite_stat1
    ("REINDEX", "REINDEX"),
    ("BEGIN IMMEDIATE", "BEGIN"),
    ("SAVEPOINT s", "SAVEPOINT"),
    ("EXPLAIN DELETE FROM scorecard", "DELETE"),
    ("SELECT 1; DELETE FROM scorecard", "more than one statement"),
    ("SELECT 1; SELECT 2", "more than one statement"),
    ("  -- only a comment", "an empty statement"),
]


@pytest.mark.parametrize(("sql", "what"), SQLITE_REFUSED, ids=[s for s, _ in SQLITE_REFUSED])
def test_sqlite_refuses_what_does_not_only_read(local: tuple[Path, str], cwd: Path, sql: str, what: str) -> None:
    before = files(cwd, local[0])
    result = query(local, sql.replace("{store}", str(local[0])), "sql")
    assert_refused(result, what, SQLITE_ALLOWED)
    assert files(cwd, local[0]) == before  # the SQLite file's bytes and mtime included


@pytest.mark.parametrize("name", NAMES)
def test_sqlite_allows_every_kind_of_query_over_every_table_and_view(
    local: tuple[Path, str], cwd: Path, name: str
) -> None:
    before = files(cwd, local[0])
    with StoreQuery(store_path=None, sql_url=local[1], engine="sql") as q:
        assert q.dialect == "sqlite"
        assert q.result(f"SELECT COUNT(*) AS n FROM {name}").rows[0][0] > 0
        assert q.result(f"WITH x AS (SELECT * FROM {name}) SELECT COUNT(*) FROM x").rows[0][0] > 0
        assert q.result("WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 3) "
                        "SELECT COUNT(*) FROM r").rows == [(3,)]
        assert q.result("VALUES (1, 'a'), (2, 'b')").rows == [(1, "a"), (2, "b")]
        assert len(q.result(f"PRAGMA table_info({name})").rows) > 2
        assert name in [row[1] for row in q.result("PRAGMA table_list").rows]
        assert q.result(f"EXPLAIN QUERY PLAN SELECT * FROM {name}").rows
        assert q.result(f"EXPLAIN SELECT * FROM {name}").rows
        assert q.result("PRAGMA user_version").rows == [(0,)]
    assert files(cwd, local[0]) == before


# -- PostgreSQL -------------------------------------------------------------------------------------------
POSTGRES_REFUSED = [
    ("COMMIT; DELETE FROM scorecard", "more than one statement"),
    ("SELECT 1; SELECT 2", "more than one statement"),
    ("DELETE FROM scorecard", "DELETE"),
    ("INSERT INTO scorecard (grain) VALUES ('x')", "INSERT"),
    ("UPDATE scorecard SET score = 0", "UPDATE"),
    ("CREATE TABLE t (a int)", "CREATE"),
    ("DROP VIEW v_sla_breaches", "DROP"),
    ("ALTER TABLE scorecard RENAME TO sc", "ALTER"),
    ("TRUNCATE scorecard", "TRUNCATE"),
    ("COPY (SELECT 1) TO '{server_file}'", "COPY"),
    ("COPY scorecard TO STDOUT", "COPY"),
    ("SET statement_timeout = 0", "SET"),
    ("RESET ALL", "RESET"),
    ("BEGIN", "BEGIN"),
    ("COMMIT", "COMMIT"),
    ("SELECT * INTO scorecard_copy FROM scorecard", "SELECT INTO"),
    ("WITH gone AS (DELETE FROM scorecard RETURNING *) SELECT COUNT(*) FROM gone", "a WITH that writes (DELETE)"),
    ("EXPLAIN ANALYZE DELETE FROM scorecard", "EXPLAIN of DELETE"),
    ("EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1", "EXPLAIN of CREATE TABLE AS"),
    ("DO $$ BEGIN DELETE FROM scorecard; END $$", "DO"),
    ("VACUUM scorecard", "VACUUM"),
    ("LISTEN channel", "LISTEN"),
    ("PREPARE p AS SELECT 1", "PREPARE"),
    ("   ", "an empty statement"),
]


@pytest.mark.postgres
@pytest.mark.integration
@pytest.mark.parametrize(("sql", "what"), POSTGRES_REFUSED, ids=[s for s, _ in POSTGRES_REFUSED])
def test_postgres_refuses_what_is_not_a_query(pg: tuple[Path, str], cwd: Path, sql: str, what: str) -> None:
    server_file = Path(f"/tmp/itsm-kpi-sandbox-{uuid.uuid4().hex}.csv")  # where the server could write
    before, tables = files(cwd), pg_state(pg[1])
    try:
        result = query(pg, sql.replace("{server_file}", str(server_file)), "sql")
        assert not server_file.exists()
    finally:
        server_file.unlink(missing_ok=True)
    assert_refused(result, what, POSTGRES_ALLOWED)
    assert pg_state(pg[1]) == tables
    assert files(cwd) == before


@pytest.mark.postgres
@pytest.mark.integration
def test_postgres_refuses_a_write_the_parser_lets_through(pg: tuple[Path, str]) -> None:
    """A SELECT that writes through a function: the READ ONLY transaction refuses it."""
    tables = pg_state(pg[1])
    code, out, err = query(pg, "SELECT * FROM scorecard FOR UPDATE", "sql")
    assert (code, out) == (2, "")
    assert err == ("itsm-kpi: query refused: cannot execute SELECT FOR UPDATE in a read-only transaction "
                   "(only reading is allowed)\n")
    assert pg_state(pg[1]) == tables


@pytest.mark.postgres
@pytest.mark.integration
@pytest.mark.parametrize("name", NAMES)
def test_postgres_allows_every_kind_of_query_over_every_table_and_view(pg: tuple[Path, str], name: str) -> None:
    tables = pg_state(pg[1])
    with StoreQuery(store_path=None, sql_url=pg[1], engine="sql") as q:
        assert q.dialect == "postgresql"
        assert q.result(f"SELECT COUNT(*) AS n FROM {name}").rows[0][0] > 0
        assert q.result(f"WITH x AS (SELECT * FROM {name}) SELECT COUNT(*) FROM x").rows[0][0] > 0
        assert q.result(f"TABLE {name} LIMIT 1").rows
        assert q.result("VALUES (1, 'a'), (2, 'b')").rows == [(1, "a"), (2, "b")]
        assert q.result("SHOW TimeZone").rows
        assert q.result(f"EXPLAIN SELECT * FROM {name}").rows
        assert q.result(f"EXPLAIN ANALYZE SELECT COUNT(*) FROM {name}").rows
        assert q.result(f"SELECT '100%' AS pct, COUNT(*) FROM {name} WHERE '%' LIKE '%%'").rows[0][0] == "100%"
        assert q.result("SHOW transaction_read_only").rows == [("on",)]
        assert q.result("SHOW statement_timeout").rows == [("1min",)]
    assert pg_state(pg[1]) == tables


# -- every engine: timeout, one sandbox for every user ----------------------------------------------------
SLOW = {  # each takes well over the 0.5 s timeout, but ends: a broken timeout fails the test, never hangs it
    "parquet": "SELECT SUM(hash(i)) FROM range(3000000000) t(i)",
    "sqlite": "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 30000000) SELECT COUNT(*) FROM r",
    "postgresql": "SELECT pg_sleep(20)",
}


@pytest.mark.parametrize(
    "kind",
    ["parquet", "sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.integration])],
)
def test_a_statement_longer_than_the_timeout_is_stopped(
    request: pytest.FixtureRequest, local: tuple[Path, str], kind: str
) -> None:
    store = request.getfixturevalue("pg") if kind == "postgresql" else local
    code, out, err = query(store, SLOW[kind], "parquet" if kind == "parquet" else "sql", timeout_s=0.5)
    assert (code, out) == (2, "")
    assert err == "itsm-kpi: query failed: the statement ran longer than [query].timeout (0.5s) and was stopped\n"


@pytest.mark.parametrize(
    ("engine", "sql"),
    [("parquet", "COPY (SELECT 1) TO 'x.csv'"), ("sql", "ATTACH 'x.db' AS x"), ("sql", "PRAGMA writable_schema = 1")],
)
def test_store_query_applies_the_sandbox_for_every_caller(
    local: tuple[Path, str], cwd: Path, engine: str, sql: str
) -> None:
    """The report and any other code reach the stores through StoreQuery: the same refusals apply."""
    with StoreQuery(store_path=local[0], sql_url=local[1], engine=engine) as q:
        with pytest.raises(QueryRefused) as refused:
            q.result(sql)
        assert refused.value.exit_code == 2
        assert q.result("SELECT COUNT(*) FROM scorecard").rows[0][0] > 0  # still usable after a refusal
    assert not list(cwd.glob("x.*"))


_KILLED_WRITER = """
import os, signal, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size = 1")  # spill the changed pages into the file before the commit
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE ticket_facts SET reopen_count = reopen_count + 1000")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_transaction_a_killed_writer_left_is_rolled_back_before_the_read_only_open(
        demo_tables: KpiTables, tmp_path: Path) -> None:
    """A run SIGKILLed inside its SQL commit leaves a hot journal; a ``mode=ro`` connection cannot roll it
    back and failed ("attempt to write a readonly database") until the next run opened the store."""
    database = tmp_path / "kpi.sqlite"
    store = _write(demo_tables, tmp_path, f"sqlite:///{database}")
    count_sql = "SELECT COUNT(*), SUM(reopen_count) FROM ticket_facts"
    code, committed, _ = query(store, count_sql, "sql", fmt="csv")
    assert code == 0
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(database)], capture_output=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    journal = tmp_path / "kpi.sqlite-journal"
    assert journal.stat().st_size > 0  # hot: the dead transaction's pages are in the file

    assert query(store, count_sql, "sql", fmt="csv") == (0, committed, "")  # the last commit, not the dead writes
    assert not journal.exists()


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    code, _, err = query((tmp_path, f"sqlite:///{tmp_path / 'none.sqlite'}"), "SELECT 1", "sql")
    assert code == 4 and "no SQLite store" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.postgres
@pytest.mark.integration
def test_the_documented_reader_role_reads_the_store_and_nothing_else(pg: tuple[Path, str]) -> None:
    """docs/query.md's CREATE ROLE block, as written, on the real server (the pipeline's role: postgres)."""
    block = (Path(__file__).resolve().parents[3] / "docs" / "query.md").read_text(encoding="utf-8")
    sql = block.split("```sql\n", 1)[1].split("```", 1)[0]
    database = pg[1].rsplit("/", 1)[1]
    sql = sql.replace("DATABASE kpi ", f"DATABASE {database} ").replace("FOR ROLE kpi ", "FOR ROLE postgres ")
    admin = create_engine(pg[1], isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for statement in (s for s in sql.split(";\n") if s.strip()):
                conn.exec_driver_sql(statement)
        reader = pg[1].replace("postgres@", "kpi_reader:change-me@")
        with StoreQuery(store_path=None, sql_url=reader, engine="sql") as q:
            assert q.result("SELECT COUNT(*) FROM v_scorecard_current").rows[0][0] > 0
            assert q.result("SHOW default_transaction_read_only").rows == [("on",)]
            with pytest.raises(QueryError, match="permission denied for function pg_read_file"):
                q.result("SELECT pg_read_file('/etc/hostname')")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql("DROP OWNED BY kpi_reader")
            conn.exec_driver_sql("DROP ROLE kpi_reader")
        admin.dispose()
