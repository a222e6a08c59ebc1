"""``itsm-kpi query`` (pipeline/analyst/query.py) over the Parquet store (DuckDB) and the SQL stores."""

from __future__ import annotations

import csv
import io
import json
import shutil
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from views_helpers import expected_rollup, write_store

from kpis import KpiTables
from kpis.schema import KPI_ENGINEER_COLUMNS
from pipeline.analyst.query import StoreQuery, run_query
from pipeline.store.views import VIEWS, create_views


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


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.integration]),
    ],
)
def store(
    request: pytest.FixtureRequest,
    demo_tables: KpiTables,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, str]:
    """Like ``local``, and again with a fresh database on the conftest's PostgreSQL server."""
    if request.param == "sqlite":
        return request.getfixturevalue("local")
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    request.addfinalizer(lambda: server.drop_database(url.rsplit("/", 1)[1]))
    return _write(demo_tables, tmp_path_factory.mktemp("store"), url)


def query(store: tuple[Path, str], sql: str, engine: str, fmt: str = "text") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_query(sql, store_path=store[0], sql_url=store[1], engine=engine, fmt=fmt, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def jsonl(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines()]


ROLLUP = (
    "SELECT engineer, opened_count, resolved_count, first_fix_rate, csat_rate, response_mean_min "
    "FROM v_engineer_quarter WHERE period_start = '2026-07-01' ORDER BY engineer"
)


@pytest.mark.parametrize("engine", ["parquet", "sql"])
def test_rollup_query_returns_the_pandas_numbers(
    store: tuple[Path, str],
    demo_tables: KpiTables,
    engine: str,
) -> None:
    code, out, err = query(store, ROLLUP, engine, "json")
    assert (code, err) == (0, "")
    rows = pd.DataFrame(jsonl(out))
    expected = expected_rollup(demo_tables.kpi_engineer, "engineer", "quarter")
    expected = expected[expected["period_start"] == pd.Timestamp("2026-07-01")].sort_values("engineer")
    assert list(rows["engineer"]) == list(expected["engineer"])
    for column in ("opened_count", "resolved_count", "first_fix_rate", "csat_rate", "response_mean_min"):
        pd.testing.assert_series_equal(
            rows[column].astype(float).reset_index(drop=True),
            expected[column].astype(float).reset_index(drop=True),
            check_names=False,
            rtol=1e-9,
        )


def test_json_output_is_json_also_for_infinities_and_nan(local: tuple[Path, str]) -> None:
    """JSON has no Infinity or NaN: both are written null (``json.loads`` with ``parse_constant`` refusing them
    proves the line is strict JSON)."""
    code, out, err = query(local, "SELECT 'inf'::DOUBLE AS up, '-inf'::DOUBLE AS down, 'nan'::DOUBLE AS n, 1.5 AS x",
                           "parquet", "json")
    assert (code, err) == (0, "")

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    assert json.loads(out, parse_constant=refuse) == {"up": None, "down": None, "n": None, "x": 1.5}


def test_parquet_and_sql_stores_answer_alike(store: tuple[Path, str]) -> None:
    _, parquet, _ = query(store, ROLLUP, "parquet", "csv")
    _, sql, _ = query(store, ROLLUP, "sql", "csv")
    a, b = list(csv.reader(io.StringIO(parquet))), list(csv.reader(io.StringIO(sql)))
    assert a[0] == b[0]
    assert [r[:3] for r in a] == [r[:3] for r in b]
    for x, y in zip(a[1:], b[1:], strict=True):
        for u, v in zip(x[3:], y[3:], strict=True):
            assert (u == v == "") or float(u) == pytest.approx(float(v), rel=1e-12)


def test_every_table_and_view_is_queryable_over_parquet(local: tuple[Path, str]) -> None:
    with StoreQuery(store_path=local[0], sql_url=None, engine="parquet") as q:
        for name in [
            "ticket_facts",
            "kpi_engineer",
            "kpi_team",
            "scorecard",
            "scorecard_kpi",
            *[v.name for v in VIEWS],
        ]:
            assert q.result(f"SELECT COUNT(*) AS n FROM {name}").rows[0][0] > 0, name


@pytest.mark.parametrize("engine", ["parquet", "sql"])
def test_a_table_nothing_has_written_yet_answers_no_rows(local: tuple[Path, str], engine: str,
                                                         tmp_path: Path) -> None:
    """No alert has posted into this store: ``alerts_sent`` is an empty dataset since its first commit. A store
    written before that rule has no folder for it at all, and answers the same."""
    older = tmp_path / "older"
    shutil.copytree(local[0], older)
    shutil.rmtree(older / "alerts_sent")
    for store in (local, (older, f"sqlite:///{older / 'kpi.sqlite'}")):
        code, out, err = query(store, "SELECT alert, kind, posted_at FROM alerts_sent", engine, "csv")
        assert (code, err, out.splitlines()) == (0, "", ["alert,kind,posted_at"])


def test_parquet_tables_keep_the_schema_column_order(local: tuple[Path, str]) -> None:
    code, out, _ = query(
        local, "SELECT * FROM kpi_engineer WHERE grain = 'quarter' LIMIT 1", "parquet", "csv"
    )
    assert code == 0
    assert next(csv.reader(io.StringIO(out))) == list(KPI_ENGINEER_COLUMNS)


def test_text_output_is_an_aligned_table_with_a_row_count(local: tuple[Path, str]) -> None:
    code, out, _ = query(local, ROLLUP, "parquet")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split(" | ")[0].strip() == "engineer"
    assert set(lines[1]) <= {"-", "+"}
    assert lines[-1] == f"({len(lines) - 3} rows)"

    def width(s: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)

    # every row's separators sit at the same display columns (names are Chinese: double-width)
    def bars(line: str) -> list[int]:
        return [width(line[:i]) for i, c in enumerate(line) if c == "|"]

    assert len({tuple(bars(line)) for line in [lines[0], *lines[2:-1]]}) == 1


def test_csv_output_has_a_header_and_empty_nulls(local: tuple[Path, str]) -> None:
    code, out, _ = query(local, "SELECT 'a' AS x, NULL AS y, 1.5 AS z", "parquet", "csv")
    assert code == 0
    assert out == "x,y,z\na,,1.5\n"


def test_bad_sql_is_one_line_and_exit_2(store: tuple[Path, str]) -> None:
    for engine in ("parquet", "sql"):
        code, out, err = query(store, "SELECT * FROM no_such_table", engine)
        assert code == 2
        assert out == ""
        assert err.startswith("itsm-kpi: query failed: ") and err.count("\n") == 1


def test_missing_stores_are_one_line_and_exit_4(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run_query(
        "SELECT 1",
        store_path=tmp_path / "nowhere",
        sql_url=None,
        engine="parquet",
        fmt="text",
        out=out,
        err=err,
    )
    assert code == 4 and "no Parquet store" in err.getvalue() and err.getvalue().count("\n") == 1
    err = io.StringIO()
    code = run_query(
        "SELECT 1",
        store_path=tmp_path,
        sql_url=f"sqlite:///{tmp_path / 'none.sqlite'}",
        engine="sql",
        fmt="text",
        out=out,
        err=err,
    )
    assert code == 4 and "no SQLite store" in err.getvalue()
    assert not (tmp_path / "none.sqlite").exists()
    assert out.getvalue() == ""


def test_unknown_format_or_engine_is_refused(local: tuple[Path, str]) -> None:
    assert query(local, "SELECT 1", "parquet", "xml")[0] == 2
    assert query(local, "SELECT 1", "oracle")[0] == 2


def test_query_never_writes_the_sql_store(store: tuple[Path, str]) -> None:
    code, _, err = query(store, "DELETE FROM scorecard", "sql")
    assert code == 2 and err
    engine = create_engine(store[1])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM scorecard")).scalar() > 0
    engine.dispose()


def test_store_query_gives_frames_for_code(local: tuple[Path, str]) -> None:
    with StoreQuery(store_path=local[0], sql_url=None, engine="parquet") as q:
        frame = q.frame("SELECT grain, COUNT(*) AS n FROM v_scorecard_current GROUP BY grain ORDER BY grain")
    assert list(frame["grain"]) == ["day", "month", "quarter", "week"]


# -- CSV never hands a spreadsheet a formula (CONTRACT.md, Analyst SQL; DECISIONS.md) ---------------------
FORMULAS = {  # text as stored -> as the CSV writes it
    "=1+1": "'=1+1",
    "+41": "'+41",
    "-3": "'-3",
    "@SUM(A1)": "'@SUM(A1)",
    "\tx": "'\tx",
    "\rx": "'\rx",
    "a=b": "a=b",
    "": "",
}


@pytest.mark.parametrize("engine", ["parquet", "sql"])
def test_csv_prefixes_text_that_starts_like_a_formula(local: tuple[Path, str], engine: str) -> None:
    chr_ = "chr" if engine == "parquet" else "char"
    texts = {"\t": f"{chr_}(9) || 'x'", "\r": f"{chr_}(13) || 'x'"}
    columns = ", ".join(
        f"{texts.get(t[:1], repr(t)) if t[:1] in texts else repr(t)} AS c{i}" for i, t in enumerate(FORMULAS)
    )
    code, out, err = query(local, f"SELECT {columns}", engine, "csv")
    assert (code, err) == (0, "")
    assert next(csv.reader(io.StringIO(out.split("\n", 1)[1]))) == list(FORMULAS.values())


@pytest.mark.parametrize("engine", ["parquet", "sql"])
def test_csv_writes_negative_numbers_as_numbers(local: tuple[Path, str], engine: str) -> None:
    code, out, _ = query(local, "SELECT -3 AS n, -2.5 AS x, CAST(-7.25 AS DECIMAL(6, 2)) AS d", engine, "csv")
    assert code == 0
    assert out == "n,x,d\n-3,-2.5,-7.25\n"


def test_csv_decides_per_cell_so_a_sqlite_text_cell_is_prefixed_beside_a_number(local: tuple[Path, str]) -> None:
    code, out, _ = query(local, "SELECT -3 AS v UNION ALL SELECT '-3' ORDER BY 1", "sql", "csv")
    assert code == 0
    assert out == "v\n-3\n'-3\n"  # SQLite orders numbers before text


def test_csv_prefixes_a_header_that_starts_like_a_formula(local: tuple[Path, str]) -> None:
    code, out, _ = query(local, 'SELECT 1 AS "=cmd"', "parquet", "csv")
    assert (code, out) == (0, "'=cmd\n1\n")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_only_csv_is_escaped_the_values_stay_as_they_came(local: tuple[Path, str], fmt: str) -> None:
    code, out, _ = query(local, "SELECT '=1+1' AS f, -3 AS n", "parquet", fmt)
    assert code == 0
    assert "=1+1" in out and "'=1+1" not in out


def test_csv_of_the_stored_tables_keeps_numbers_and_text(local: tuple[Path, str]) -> None:
    code, out, _ = query(local, "SELECT engineer, score FROM scorecard ORDER BY engineer LIMIT 3", "parquet", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and rows[0] == ["engineer", "score"]
    assert all(not r[0].startswith("'") and float(r[1]) >= 0 for r in rows[1:] if r[1])


def test_csv_quotes_a_carriage_return_inside_a_field(local: tuple[Path, str]) -> None:
    code, out, _ = query(local, "SELECT 'a' || chr(13) || 'b' AS x, 'c' || chr(10) || 'd' AS y", "parquet", "csv")
    assert (code, out) == (0, 'x,y\n"a\rb","c\nd"\n')
