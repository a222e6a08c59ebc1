"""Write docs/tables.md: every stored table and analyst view, its key, and each column's type and meaning.

The text comes from the one place each thing is defined: ``kpis.schema`` (the KPI tables),
``pipeline.store.schema`` (the SQL tables, the ledger's included), ``pipeline.store.parquet`` (which tables
Parquet holds and how they are partitioned) and ``pipeline.store.views`` (the views).

    python scripts/gen_tables_doc.py            # rewrite docs/tables.md
    python scripts/gen_tables_doc.py --check    # exit 1 when docs/tables.md is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy import Table

from kpis.schema import BOOL, DATE, FLOAT, INT, STR, TS, Column
from pipeline.store import schema as sqlschema
from pipeline.store.parquet import PARQUET_COLUMNS, PARQUET_KEYS, PARTITION_BY
from pipeline.store.views import VIEWS, View

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "tables.md"

#: Tables only the Parquet store holds (the SQL ones are described by ``sqlschema.TABLE_COMMENTS``).
PARQUET_ONLY_COMMENTS = {
    "raw_tickets": "The raw layer: the latest canonical row of every ticket read (KPIS.md 1.1); "
    "the pipeline recomputes from it",
    "raw_events": "The raw layer: every canonical event read (KPIS.md 1.2)",
    "raw_adjustments": "The raw layer of approvals: every usable approval of every approvals file read, one per "
    "(file, source, ticket_id, scope); the adjustments table is made from it",
    "adjustment_files": "Each approvals file read ([adjustments].path) with the checksum of the version read",
}

TYPES = {  # logical type -> (Parquet / Arrow, SQLite, PostgreSQL)
    STR: ("text", "string", "TEXT", "text"),
    INT: ("integer", "int64", "BIGINT", "bigint"),
    FLOAT: ("float", "float64 (double)", "FLOAT (REAL)", "double precision"),
    BOOL: ("boolean", "bool", "BOOLEAN (0/1)", "boolean"),
    DATE: ("date", "date32", "DATE (text YYYY-MM-DD)", "date"),
    TS: ("timestamp UTC", "timestamp[us, UTC]", "DATETIME (text, UTC)", "timestamp with time zone"),
}


def table_names() -> list[str]:
    """Every stored table: the KPI outputs first, then the ledger, then the Parquet-only raw layer."""
    names = list(sqlschema.SQL_COLUMNS)
    return names + [n for n in PARQUET_COLUMNS if n not in names]


def table_comment(name: str) -> str:
    """What one row of table ``name`` is."""
    return sqlschema.TABLE_COMMENTS.get(name) or PARQUET_ONLY_COMMENTS.get(name, "")


def table_columns(name: str) -> list[tuple[str, str, str]]:
    """(column, logical type, meaning) of table ``name``, SQL-only surrogate columns included."""
    described: dict[str, Column] = sqlschema.SQL_COLUMNS.get(name) or PARQUET_COLUMNS[name]
    rows = []
    sql_table: Table | None = sqlschema.metadata.tables.get(name)
    names = [c.name for c in sql_table.columns] if sql_table is not None else list(described)
    for col in names:
        if col in described:
            rows.append((col, TYPES[described[col].dtype][0], described[col].description))
        else:  # a column only the SQL table has (rejected_rows.row_id)
            sql_col = sql_table.c[col]  # type: ignore[union-attr]
            rows.append((col, "integer", sql_col.comment or ""))
    return rows


def table_key(name: str) -> tuple[str, ...]:
    """The columns that identify a row of ``name`` (empty for an append-only table)."""
    return sqlschema.SQL_KEYS.get(name) or PARQUET_KEYS.get(name, ())


def stores_of(name: str) -> str:
    """Which stores hold ``name``."""
    in_sql, in_parquet = name in sqlschema.metadata.tables, name in PARQUET_COLUMNS
    return "Parquet + SQL" if in_sql and in_parquet else ("SQL only" if in_sql else "Parquet only")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) if names else "—"


def _overview() -> list[str]:
    lines = ["| table | stores | key | Parquet partition | one row is |", "|---|---|---|---|---|"]
    for name in table_names():
        part = PARTITION_BY.get(name) if name in PARQUET_COLUMNS else None
        lines.append(
            f"| [`{name}`](#{name}) | {stores_of(name)} | {_code(table_key(name))} | "
            f"{_code([part] if part else [])} | {_cell(table_comment(name))} |"
        )
    for view in VIEWS:
        lines.append(
            f"| [`{view.name}`](#{view.name}) | view (SQL; DuckDB in `itsm-kpi query`) | — | — | "
            f"{_cell(view.description)} |"
        )
    return lines


def _types() -> list[str]:
    lines = ["| type | Parquet (Arrow) | SQLite | PostgreSQL |", "|---|---|---|---|"]
    lines += [f"| {logical} | {arrow} | {sqlite} | {pg} |" for logical, arrow, sqlite, pg in TYPES.values()]
    return lines


def _table_section(name: str) -> list[str]:
    key = set(table_key(name))
    if name in sqlschema.metadata.tables:
        key |= {c.name for c in sqlschema.metadata.tables[name].primary_key}
    where = []
    if name in PARQUET_COLUMNS:
        part = PARTITION_BY.get(name)
        where.append(f"Parquet `<store>/{name}/" + (f"{part}=<value>/" if part else "") + "`")
    if name in sqlschema.metadata.tables:
        where.append(f"SQL table `{name}`")
    lines = [
        f"### {name}",
        "",
        table_comment(name) + ".",
        "",
        f"Key: {_code(table_key(name))}. Stored in: {'; '.join(where)}.",
        "",
        "| column | type | key | meaning |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{col}` | {typ} | {'yes' if col in key else ''} | {_cell(doc)} |"
        for col, typ, doc in table_columns(name)
    ]
    return lines + [""]


def _view_section(view: View) -> list[str]:
    lines = [
        f"### {view.name}",
        "",
        view.description + ".",
        "",
        f"Built on: {_code(view.based_on)}.",
        "",
        "| column | meaning |",
        "|---|---|",
    ]
    lines += [f"| `{col}` | {_cell(doc)} |" for col, doc in view.columns]
    return lines + [""]


def render() -> str:
    """The whole of docs/tables.md."""
    lines = [
        "# Stored tables and views",
        "",
        "<!-- Generated by scripts/gen_tables_doc.py from kpis/schema.py, pipeline/store/schema.py, "
        "pipeline/store/parquet.py and pipeline/store/views.py. Do not edit: run `python scripts/gen_tables_doc.py`. -->",
        "",
        "KPI meanings are defined in KPIS.md; this page says where each number is stored. Timestamps are UTC;",
        "`period_start` is a local date in the reporting timezone. Every rate is stored with its numerator and",
        "denominator: re-aggregate as `SUM(numerator) / NULLIF(SUM(denominator), 0)`, never average rates.",
        "",
        'Query either store with `itsm-kpi query "SQL"` (Parquet through DuckDB by default, `--engine sql`',
        "for the SQL store); the views below exist in both.",
        "",
        "## Overview",
        "",
        *_overview(),
        "",
        "## Types",
        "",
        *_types(),
        "",
        "## Tables",
        "",
    ]
    for name in table_names():
        lines += _table_section(name)
    lines += [
        "## Views",
        "",
        "Rates in the rollup views are re-aggregated from the numerators and denominators; means as",
        "`SUM(mean x n) / SUM(n)`. Medians and P90s cannot be combined across ticket types: a rollup",
        "carries them only when a single ticket type has values, else null.",
        "",
    ]
    for view in VIEWS:
        lines += _view_section(view)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) docs/tables.md; 1 when the check finds it stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file is out of date")
    parser.add_argument("--out", type=Path, default=DOC, help=f"default {DOC.relative_to(REPO)}")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run python scripts/gen_tables_doc.py", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
