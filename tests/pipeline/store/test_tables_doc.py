"""docs/tables.md is generated, complete and current: every column of every table and view has a meaning."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from kpis.schema import TABLE_COLUMNS
from pipeline.store import schema as sqlschema
from pipeline.store.parquet import PARQUET_COLUMNS
from pipeline.store.views import VIEWS

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    name = "itsm_kpi_gen_tables_doc"
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "gen_tables_doc.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _blank(text: str | None) -> bool:
    return not (text or "").strip()


def test_every_schema_column_has_a_description() -> None:
    tables = {**TABLE_COLUMNS, **sqlschema.LEDGER_COLUMNS, **PARQUET_COLUMNS}
    missing = [f"{t}.{c.name}" for t, cols in tables.items() for c in cols.values() if _blank(c.description)]
    assert not missing, f"columns without a description: {missing}"


def test_every_sql_column_and_table_has_a_comment() -> None:
    missing = [
        f"{t.name}.{c.name}"
        for t in sqlschema.metadata.tables.values()
        for c in t.columns
        if _blank(c.comment)
    ]
    missing += [t.name for t in sqlschema.metadata.tables.values() if _blank(t.comment)]
    assert not missing, f"SQL tables/columns without a comment: {missing}"


def test_every_view_column_has_a_description() -> None:
    missing = [f"{v.name}.{col}" for v in VIEWS for col, doc in v.columns if _blank(doc)]
    missing += [v.name for v in VIEWS if _blank(v.description)]
    assert not missing


def test_every_table_is_documented_with_every_column(gen: ModuleType) -> None:
    names = gen.table_names()
    assert set(sqlschema.metadata.tables) | set(PARQUET_COLUMNS) == set(names)
    for name in names:
        assert not _blank(gen.table_comment(name)), f"table {name} has no comment"
        for column, typ, meaning in gen.table_columns(name):
            assert not _blank(meaning), f"{name}.{column} has no meaning"
            assert not _blank(typ), f"{name}.{column} has no type"
    text = gen.render()
    for name in names:
        assert f"### {name}\n" in text
        for column, _, _ in gen.table_columns(name):
            assert f"| `{column}` |" in text


def test_docs_tables_md_is_current(gen: ModuleType) -> None:
    doc = REPO / "docs" / "tables.md"
    assert doc.exists(), "docs/tables.md is missing: run python scripts/gen_tables_doc.py"
    assert doc.read_text(encoding="utf-8") == gen.render(), (
        "docs/tables.md is out of date: run python scripts/gen_tables_doc.py"
    )


def test_check_mode_reports_a_stale_file(gen: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "tables.md"
    assert gen.main(["--out", str(out)]) == 0
    assert gen.main(["--check", "--out", str(out)]) == 0
    out.write_text(out.read_text(encoding="utf-8") + "edited by hand\n", encoding="utf-8")
    assert gen.main(["--check", "--out", str(out)]) == 1
