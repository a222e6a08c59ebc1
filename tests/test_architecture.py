"""The one-way flow (STYLE.md, ARCHITECTURE.md): every import of our own packages points downward.

    connectors -> kpis                        (connectors know the canonical schema, nothing else)
    pipeline.store -> kpis                    (storage knows the tables, not who writes or reads them)
    pipeline.analyst -> pipeline.store, kpis  (query, views' users, report)
    pipeline (orchestration) -> everything
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = ("kpis", "connectors", "pipeline")

# package (longest prefix wins) -> the packages it may import from
ALLOWED = {
    "kpis": ("kpis",),
    "connectors": ("connectors", "kpis"),
    "pipeline.store": ("pipeline.store", "kpis"),
    "pipeline.analyst": ("pipeline.analyst", "pipeline.store", "kpis"),
    "pipeline": ("pipeline", "connectors", "kpis"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return [name for name in found if name.split(".")[0] in OURS]


def _room(module: str) -> str:
    return max((room for room in ALLOWED if module == room or module.startswith(room + ".")), key=len)


def _allowed(importer: str, imported: str) -> bool:
    return any(imported == ok or imported.startswith(ok + ".") for ok in ALLOWED[_room(importer)])


SOURCES = sorted(p for package in OURS for p in (REPO / package).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_downward(path: Path) -> None:
    importer = _module_name(path)
    wrong = [name for name in _imports(path) if not _allowed(importer, name)]
    assert not wrong, f"{importer} imports {wrong}; allowed: {ALLOWED[_room(importer)]}"


def test_the_rule_catches_an_upward_import() -> None:
    assert not _allowed("pipeline.store.stores", "pipeline.run")
    assert not _allowed("pipeline.store.views", "pipeline.analyst.query")
    assert not _allowed("kpis.facts", "connectors.mapping")
    assert _allowed("pipeline.analyst.report", "pipeline.store.errors")
    assert _allowed("pipeline.run", "pipeline.analyst.query")
