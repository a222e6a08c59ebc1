"""Broken rows among good ones, through the real CLI: each broken row lands in ``rejected_rows`` (SQL and
Parquet) with its reason and the run id, nothing is lost (rows read = used + superseded + rejected), the
good rows give exactly the facts of a run on the good rows alone, and the console names the reasons. An
older copy of a ticket is not a broken row: it is superseded (CONTRACT.md, ``rejected_rows``).
"""

from __future__ import annotations

import json
from pathlib import Path

import e2e_helpers as h
import pytest

# (row as overrides of a good ticket, expected ticket id in rejected_rows, expected reason prefix)
_GOOD = dict(ticket_type="incident", priority="P3", status="RESOLVED", opened_at="2026-07-14T09:00:00+08:00",
             updated_at="2026-07-14T12:00:00+08:00", resolved_at="2026-07-14T11:00:00+08:00", assignee="王强",
             assignment_group="系统组")
BAD_TICKETS = [
    (dict(ticket_id="BAD01", opened_at="not a date"), "BAD01", "unparseable opened_at 'not a date'"),
    (dict(ticket_id="BAD02", status="Pending Vendor"), "BAD02", "unmapped status 'Pending Vendor'"),
    (dict(ticket_id="BAD03", priority="P9"), "BAD03", "unmapped priority 'P9'"),
    (dict(ticket_id="BAD04", ticket_type="problem"), "BAD04", "unmapped type 'problem'"),
    (dict(ticket_id=""), None, "missing ticket_id"),
    (dict(ticket_id="BAD06", opened_at=""), "BAD06", "missing opened_at"),
    (dict(ticket_id="BAD08", satisfaction="非常好", satisfaction_at="2026-07-15T09:00:00+08:00"), "BAD08",
     "unmappable satisfaction '非常好'"),
    (dict(ticket_id="BAD09", reopen_count="two"), "BAD09", "bad integer reopen_count 'two'"),
    (dict(ticket_id="BAD10", ticket_type="maintenance", planned_start="2026-07-20T20:00:00+08:00",
          planned_end="2026-07-20T18:00:00+08:00"), "BAD10", "planned_end before planned_start"),
    (dict(ticket_id="BAD11", resolved_at="2026-13-45T25:00:00+08:00"), "BAD11",
     "unparseable resolved_at '2026-13-45T25:00:00+08:00'"),
    (dict(ticket_id="BAD12", reassignment_count="-1"), "BAD12", "bad integer reassignment_count '-1'"),
]
# INC001 again with an older updated_at and another engineer, *after* the newer row in the file: the
# newest by updated_at is kept, this one is superseded (neither used nor rejected)
OLDER_COPY = dict(ticket_id="INC001", updated_at="2026-07-01T12:00:00+08:00", assignee="王强")
BAD_EVENTS = [
    (("GHOST1", "2026-07-03T14:00:00+08:00", "status", "NEW", "系统"), "GHOST1", "event for unknown ticket"),
    (("BAD02", "2026-07-14T09:00:00+08:00", "status", "NEW", "系统"), "BAD02", "event for unknown ticket"),
    (("INC003", "2026-07-03T14:30:00+08:00", "comment", "looked at it", "李娜"), "INC003",
     "unknown event kind 'comment'"),
    (("INC003", "yesterday", "status", "IN_PROGRESS", "李娜"), "INC003", "unparseable at 'yesterday'"),
    (("INC006", "2026-07-13T11:00:00+08:00", "status", "Pending Vendor", "李娜"), "INC006",
     "unmapped status 'Pending Vendor'"),
    (("", "2026-07-13T11:00:00+08:00", "status", "NEW", "李娜"), None, "missing ticket_id"),
]


def _write_bad_export(folder: Path) -> dict:
    """The canonical CSV export with the broken rows mixed in among the good ones."""
    good = h.export_canonical_csv(folder)
    tickets = list(h.read_csv_rows(Path(good["path"])))
    events = list(h.read_csv_rows(Path(good["events_path"])))
    empty = dict.fromkeys(tickets[0])
    for i, (row, _, _) in enumerate(BAD_TICKETS):
        tickets.insert(2 * i + 1, {**empty, **_GOOD, **row})  # after INC001, after the next, ...
    tickets.insert(2 * len(BAD_TICKETS) + 1, {**empty, **_GOOD, **OLDER_COPY})
    for i, (values, _, _) in enumerate(BAD_EVENTS):
        events.insert(3 * i + 1, dict(zip(h.EVENT_FIELDS, values, strict=True)))
    h.write_csv(folder / "tickets.csv", tickets, h.TICKET_FIELDS)
    h.write_csv(folder / "events.csv", events, h.EVENT_FIELDS)
    return good


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The good rows alone, and the good rows with the broken ones, each backfilled into SQLite."""
    out = {}
    for name, export in (("good", h.export_canonical_csv), ("mixed", _write_bad_export)):
        folder = tmp_path_factory.mktemp(name)
        store = folder / "store"
        config = h.write_config(folder / "itsm-kpi.toml", store, export(folder))
        result = h.backfill(config)
        url = f"sqlite:///{store / 'kpi.sqlite'}"
        out[name] = {"result": result, "store": store, "url": url, "folder": folder}
    return out


def test_the_export_really_mixes_bad_rows_among_good_ones(runs) -> None:
    folder = runs["mixed"]["folder"]
    ticket_ids = [r["ticket_id"] for r in h.read_csv_rows(folder / "tickets.csv")]
    assert ticket_ids[0] == "INC001" and ticket_ids[-1] == "CHG005"
    assert len(ticket_ids) == 21 + len(BAD_TICKETS) + 1  # and the older copy of INC001
    assert len(list(h.read_csv_rows(folder / "events.csv"))) == 22 + len(BAD_EVENTS)
    assert len({reason.split(" '")[0] for _, _, reason in BAD_TICKETS + BAD_EVENTS}) >= 12


def test_every_broken_row_is_rejected_with_its_reason_and_the_run_id(runs) -> None:
    mixed = runs["mixed"]
    rejected = h.table_rows(mixed["store"], mixed["url"], "rejected_rows")  # SQL == pyarrow == DuckDB
    (run,) = h.run_rows(mixed["url"])
    names = list(h.PARQUET_COLUMNS["rejected_rows"])
    got = sorted(((r[names.index("ticket_id")], r[names.index("row_kind")], r[names.index("reason")])
                  for r in rejected), key=str)
    expected = sorted([(tid, "ticket", reason) for _, tid, reason in BAD_TICKETS]
                      + [(tid, "event", reason) for _, tid, reason in BAD_EVENTS], key=str)
    assert got == expected
    assert {r[names.index("run_id")] for r in rejected} == {run["run_id"]}
    assert {r[names.index("source")] for r in rejected} == {h.SOURCE}
    # the raw row comes along, readable
    raws = {r[names.index("reason")]: json.loads(r[names.index("raw")]) for r in rejected}
    assert "非常好" in json.dumps(raws["unmappable satisfaction '非常好'"], ensure_ascii=False)
    assert "yesterday" in json.dumps(raws["unparseable at 'yesterday'"])


def test_rows_read_are_rows_used_plus_superseded_plus_rejected(runs) -> None:
    mixed = runs["mixed"]
    (run,) = h.run_rows(mixed["url"])
    n_rejected = len(BAD_TICKETS) + len(BAD_EVENTS)
    used_tickets = len(h.parquet_only(mixed["store"], "raw_tickets"))
    used_events = len(h.parquet_only(mixed["store"], "raw_events"))
    assert (used_tickets, used_events) == (21, 22)
    assert run["rows_read"] == 21 + len(BAD_TICKETS) + 1 + 22 + len(BAD_EVENTS)  # every line of both files
    assert (run["rows_rejected"], run["rows_superseded"], run["conflicts_settled"]) == (n_rejected, 1, 0)
    assert run["rows_read"] == used_tickets + used_events + run["rows_superseded"] + run["rows_rejected"]
    assert run["status"] == "success"
    # and the Parquet copy of the ledger says the same
    (parquet_run,) = [dict(zip(h.PARQUET_COLUMNS["pipeline_runs"], r, strict=True))
                      for r in h.parquet_only(mixed["store"], "pipeline_runs")]
    assert (parquet_run["rows_read"], parquet_run["rows_rejected"]) == (run["rows_read"], n_rejected)


def test_good_rows_give_exactly_the_tables_of_a_run_on_the_good_rows_alone(runs) -> None:
    good, mixed = runs["good"], runs["mixed"]
    for table in h.OUTPUT_TABLES:
        assert h.table_rows(mixed["store"], mixed["url"], table) == h.table_rows(good["store"], good["url"], table), table
    # the duplicate's older row (assignee 王强) lost to the newer one (张伟)
    facts = h.table_rows(mixed["store"], mixed["url"], "ticket_facts")
    assert h.by_key("ticket_facts", facts, ticket_id="INC001")["engineer"] == "张伟"


def test_the_console_summary_names_the_reasons(runs) -> None:
    out = runs["mixed"]["result"].out
    # 21 used + 1 superseded (INC001's older copy) + 11 rejected (the broken ticket rows)
    assert f"33 tickets read (21 used, 1 superseded, 11 rejected), {len(BAD_TICKETS) + len(BAD_EVENTS)} rows rejected" in out
    (line,) = [line for line in out.splitlines() if "rejected rows" in line]
    assert "duplicate" not in line
    for reason, count in (("event for unknown ticket", 2), ("missing ticket_id", 2),
                          ("unmapped status", 2), ("planned_end before planned_start", 1),
                          ("unknown event kind", 1), ("unparseable at", 1), ("bad integer reopen_count", 1)):
        assert f"{count} {reason}" in line, (reason, line)
