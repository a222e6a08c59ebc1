"""Every TOML file shipped in config/ is a valid configuration (or a valid source preset)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pipeline.settings import Settings

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
FULL_CONFIGS = sorted(p for p in CONFIG_DIR.rglob("*.toml") if "sources" in tomllib.loads(p.read_text("utf-8")))


@pytest.mark.parametrize("path", FULL_CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_shipped_config_loads(path: Path) -> None:
    settings = Settings.load(path, env={})
    assert settings.sources, f"{path} defines no source"
    for entry in settings.kpi.scorecard:
        assert entry.weight > 0


def test_demo_and_example_are_among_the_checked_files() -> None:
    names = {p.name for p in FULL_CONFIGS}
    assert {"demo.toml", "example.toml"} <= names
