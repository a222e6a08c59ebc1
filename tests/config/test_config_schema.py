"""The JSON Schema of the config file: a standard validator accepts every shipped config and refuses a typo,
the shipped copy and docs/config.md are current, and every key the schema knows is documented.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pipeline.config import load_config
from pipeline.config.schema import SCHEMA_FILE, config_schema, key_paths
from pipeline.config.show import effective, to_toml
from pipeline.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted([REPO / "config" / "example.toml", REPO / "config" / "demo.toml",
                  *(REPO / "config" / "presets").glob("*.toml")])


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    name = "itsm_kpi_gen_config_doc"
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "gen_config_doc.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_the_schema_is_draft_2020_12_and_the_shipped_copy_is_current() -> None:
    assert config_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == config_schema(), (
        "pipeline/config/itsm-kpi.schema.json is out of date: run python scripts/gen_config_doc.py")


def _objects(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("type") == "object" and "properties" in node else []
        return found + [o for value in node.values() for o in _objects(value)]
    if isinstance(node, list):
        return [o for value in node for o in _objects(value)]
    return []


def test_no_table_with_named_keys_takes_unknown_keys() -> None:
    objects = _objects(config_schema())
    assert len(objects) > 20
    assert all(o.get("additionalProperties") is False for o in objects), [o.get("title") for o in objects]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_config_validates_against_the_schema(path: Path) -> None:
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(document)]
    assert not errors, errors
    assert path.read_text(encoding="utf-8").startswith("#:schema ")  # editors find the schema


@pytest.mark.parametrize(("document", "where"), [
    ({"sources": [{"name": "h", "kind": "csv", "path": "x", "options": {"delimiterr": ";"}}]}, "delimiterr"),
    ({"sources": [{"name": "h", "kind": "servicenow", "url": "https://x", "password_env": "P",
                   "options": {"tabels": []}}]}, "tabels"),
    ({"sources": [{"name": "h", "kind": "csv", "path": "x", "columns": {"resolve_at": "x"}}]}, "resolve_at"),
    ({"reporting": {"min_sample": "ten"}}, "ten"),
    ({"sources": [{"name": "h", "kind": "csv", "path": "x", "layout": "snapshoot"}]}, "sources"),
    ({"reportng": {}}, "reportng"),
    ({"sla": [{"response": "30 minutes"}]}, "30 minutes"),
])
def test_a_standard_validator_refuses_the_same_mistakes(document: dict[str, Any], where: str) -> None:
    errors = list(_validator().iter_errors(document))
    assert errors and any(where in (e.message + str(list(e.absolute_path))) for e in errors), errors


def test_docs_config_md_is_current(gen: ModuleType, tmp_path: Path) -> None:
    doc = REPO / "docs" / "config.md"
    assert doc.read_text(encoding="utf-8") == gen.render(), "run python scripts/gen_config_doc.py"
    out, schema_out = tmp_path / "config.md", tmp_path / "schema.json"
    args = ["--out", str(out), "--schema-out", str(schema_out)]
    assert gen.main(args) == 0 and gen.main(["--check", *args]) == 0
    out.write_text(out.read_text(encoding="utf-8") + "edited by hand\n", encoding="utf-8")
    assert gen.main(["--check", *args]) == 1


PATHS = key_paths()


def test_the_schema_knows_the_keys_of_every_section() -> None:
    for path in ("store.path", "reporting.breakdowns", "run.max_reject_ratio", "query.timeout", "schedule.cron",
                 "kpi.pause_statuses", "calendars.<name>.extra_workdays", "sla[].pause_statuses", "sla[].client",
                 "sources[].options.delimiter", "sources[].options.tables", "sources[].columns.resolved_at",
                 "scorecard[].weight", "adjustments.scope_map", "alerts[].url_env", "compute.workers"):
        assert path in PATHS, path


DOC_TEXT = (REPO / "docs" / "config.md").read_text(encoding="utf-8")


@given(st.sampled_from(PATHS))
def test_every_key_path_the_schema_knows_is_documented(path: str) -> None:
    """A key has its row; a section (store, sla, calendars) its heading."""
    headings = (f"## `[{path}]`", f"## `[[{path}]]`", f"## `[{path}.NAME]`")
    assert f"| `{path}` |" in DOC_TEXT or any(h in DOC_TEXT for h in headings), path


@pytest.mark.parametrize("path", [REPO / "config" / "example.toml", REPO / "config" / "presets" / "servicenow.toml"],
                         ids=lambda p: p.name)
def test_config_show_prints_a_config_that_loads_back_the_same(path: Path, tmp_path: Path) -> None:
    shown = to_toml(effective(load_config(path, {})))
    again = tmp_path / "shown.toml"
    again.write_text(shown, encoding="utf-8")
    assert not list(_validator().iter_errors(tomllib.loads(shown)))
    assert Settings.load(again, env={}) == Settings.load(path, env={})
