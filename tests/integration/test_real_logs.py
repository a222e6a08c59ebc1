"""The three real ticket logs under ../shared/datasets, imported through their presets.

For each log: every distinct ticket id of the file ends up as a canonical ticket or in rejected (the
expected ids are counted here independently, with the csv module), every row is accounted for, the
known garbage rows are rejected with their reason, and the pipeline's own quarantine finds nothing
more to reject. Skipped when the datasets are not next to the repository.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import time
from pathlib import Path

import pytest

from connectors.base import Batch, SourceConfig
from connectors.files import FileConnector
from connectors.validate import validate
from pipeline.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"

# preset -> (id column, encoding, expected distinct ids, rows, {reason: rejected rows})
LOGS = {
    "uci_servicenow": ("number", "utf-8", 24_918, 141_712, {"unmapped status '-100'": 5}),
    "bpic2013_vinst": ("SR Number", "utf-8-sig", 7_554, 65_533, {"unmapped activity 'Unmatched/Unmatched'": 5}),
    "helpdesk_italian": ("Case ID", "utf-8", 4_580, 21_348, {}),
}


def _source(preset: str) -> SourceConfig:
    settings = Settings.load(REPO / "config" / "presets" / f"{preset}.toml", env={})
    # Preset paths are relative to the repository root (where `itsm-kpi run` is started).
    return dataclasses.replace(settings.sources[0], path=str(REPO / settings.sources[0].path))


def _ids_in_file(path: Path, column: str, encoding: str) -> tuple[set[str], int]:
    """The distinct values of ``column`` and the number of data rows, read with the csv module."""
    with gzip.open(path, "rt", encoding=encoding, newline="") as f:
        reader = csv.DictReader(f)
        ids, rows = set(), 0
        for row in reader:
            ids.add(row[column].strip())
            rows += 1
    return ids, rows


@pytest.fixture(scope="module", params=sorted(LOGS))
def imported(request: pytest.FixtureRequest) -> tuple[str, SourceConfig, Batch]:
    if not DATASETS.is_dir():
        pytest.skip(f"real datasets not found at {DATASETS} (expected ../shared/datasets next to the repo)")
    source = _source(request.param)
    started = time.perf_counter()
    batch = FileConnector(source).pull()
    print(f"{request.param}: imported in {time.perf_counter() - started:.1f}s")
    return request.param, source, batch


def test_every_ticket_id_is_a_ticket_or_rejected(imported: tuple[str, SourceConfig, Batch]) -> None:
    preset, source, batch = imported
    column, encoding, expected_count, expected_rows, _ = LOGS[preset]
    ids, rows = _ids_in_file(Path(source.path), column, encoding)
    assert (len(ids), rows) == (expected_count, expected_rows)  # the file is the one SOURCE.md describes

    tickets = set(batch.tickets["ticket_id"])
    rejected_only = set(batch.rejected["ticket_id"]) - tickets
    assert len(tickets) == len(batch.tickets)  # one row per ticket
    assert len(tickets) + len(rejected_only) == len(ids)
    assert tickets | rejected_only == ids
    assert batch.rows_read == rows


def test_known_garbage_is_rejected_with_its_reason(imported: tuple[str, SourceConfig, Batch]) -> None:
    preset, _, batch = imported
    assert batch.rejected["reason"].value_counts().to_dict() == LOGS[preset][4]


def test_nothing_more_is_quarantined_downstream(imported: tuple[str, SourceConfig, Batch]) -> None:
    _, _, batch = imported
    tickets, events, rejected = validate(batch.tickets, batch.events, batch.rejected, satisfaction_map={})
    assert (len(tickets), len(events), len(rejected)) == (len(batch.tickets), len(batch.events), len(batch.rejected))
    assert set(events["ticket_id"]) <= set(tickets["ticket_id"])
    assert events["at"].notna().all() and tickets["opened_at"].notna().all()
