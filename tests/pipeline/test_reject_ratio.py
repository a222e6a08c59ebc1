"""``[run].max_reject_ratio`` (issue #20): a run that rejects more than that share of a source's rows fails
with exit 6, writes ``rejected_rows`` and a ``failed`` ``pipeline_runs`` row naming the top reasons, and
leaves the KPI tables and the raw layer as they were. Real CSV exports, SQLite + Parquet, the CLI.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from ops_helpers import (
    DAY1_AS_OF,
    DAY2_AS_OF,
    DAY3_AS_OF,
    TICKET_FIELDS,
    assert_same,
    cli,
    month_export,
    runs,
    snapshot,
    sql_rows,
    write_config,
    write_export,
)

EXIT_REJECTED = 6


def _without_opened_at(tickets: list[dict]) -> list[dict]:
    return [{k: v for k, v in t.items() if k != "opened_at"} for t in tickets]


def _statuses_unknown(tickets: list[dict]) -> list[dict]:
    return [{**t, "status": "搁置"} for t in tickets]


def _write_tickets_only(folder: Path, name: str, tickets: list[dict]) -> None:
    """A tickets export with the columns its rows have (an export that lost a column) and no events."""
    fields = [f for f in TICKET_FIELDS if f in tickets[0]]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(tickets)
    (folder / "tickets" / f"{name}.csv").write_text(buffer.getvalue(), encoding="utf-8")


# A file without a required column is refused whole (one rejected row of kind "file", docs/bad-input.md);
# a file whose every status is unmapped rejects each of its 40 rows.
@pytest.mark.parametrize(("broken", "reason", "n"), [
    (_without_opened_at, "`opened_at` (required; map it with columns.opened_at) not found in 2026-08-01.csv", 1),
    (_statuses_unknown, "unmapped status '搁置'", 40),
])
def test_a_night_whose_rows_are_all_rejected_fails_with_exit_6_and_leaves_the_kpis(
        broken, reason: str, n: int, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    exports = tmp_path / "exports"
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'kpi.sqlite'}", sources={"helpdesk": exports})
    month, events = month_export()
    write_export(exports, "2026-07-31", month, events)
    assert cli("run", "--config", str(config), "--as-of", DAY1_AS_OF.isoformat()) == 0
    before = snapshot(config, drop=())
    good_rejections = len(sql_rows(config, "rejected_rows"))  # month_export holds one bad row

    new = [{**t, "ticket_id": f"NEW{i:03d}"} for i, t in enumerate(month[:40])]
    _write_tickets_only(exports, "2026-08-01", broken(new))
    capsys.readouterr()
    code = cli("run", "--config", str(config), "--as-of", DAY2_AS_OF.isoformat())

    assert code == EXIT_REJECTED
    assert_same(snapshot(config, drop=()), before)  # KPI tables and raw layer, as_of included
    rejected = sql_rows(config, "rejected_rows")
    assert len(rejected) == good_rejections + n
    assert rejected["reason"].str.startswith(reason).sum() == n
    run = runs(config).iloc[-1]
    assert run["status"] == "failed"
    assert run["error"].startswith(f"source helpdesk: {n} of {n} rows rejected")
    assert reason in run["error"] and f": {n};" in run["error"]
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("itsm-kpi:")]
    assert len(err) == 1 and f"{n} of {n} rows rejected" in err[0]
    # the file was not marked as read: the next night tries it again, and fails again until it is fixed
    assert cli("run", "--config", str(config), "--as-of", DAY3_AS_OF.isoformat()) == EXIT_REJECTED

