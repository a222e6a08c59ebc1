"""Shared helpers for connector tests: source configs and real files written to tmp_path."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from connectors.base import SourceConfig


def _source(**overrides: Any) -> SourceConfig:
    values: dict[str, Any] = {"name": "hd", "kind": "csv", "path": "unused.csv", "timezone": "Asia/Shanghai"}
    values.update(overrides)
    return SourceConfig(**values)


@pytest.fixture
def make_source() -> Callable[..., SourceConfig]:
    """make_source(**fields) -> a CSV source named ``hd`` in Asia/Shanghai with those fields overridden."""
    return _source


def csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """CSV text with the given header and rows (quoted as needed, LF line ends)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """write_csv(name, header, rows, encoding="utf-8") -> the path of a real CSV file."""

    def write(name: str, header: Sequence[str], rows: Sequence[Sequence[str]], encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(csv_text(header, rows).encode(encoding))
        return path

    return write
