"""The good export every bad-input case starts from, and the pieces a case breaks it with.

The good export is the hand-made ticket set of ``e2e_helpers`` (21 tickets, 22 events, timestamps with
``+08:00``) as a folder of daily CSV files and one history file:

    tickets/tickets-1.csv   the first 11 tickets
    tickets/tickets-2.csv   the other 10
    events.csv              the 22 events

The source has no ``timezone`` (every value carries its offset). A case adds one bad row, line or
file to it (or writes the same tickets another way) and says what must come of it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import e2e_helpers as h

GOOD_TICKETS, GOOD_EVENTS = 21, 22
FIRST_DAY = 11  # tickets in tickets-1.csv
FIELDS = list(h.TICKET_FIELDS)
_TS = {c for c in FIELDS if c.endswith("_at") or c in ("planned_start", "planned_end", "actual_end")}
# a good ticket of its own, to be broken one field at a time (KPIS.md 1.1); ids BAD.. are not in the set
GOOD_EXTRA = dict(ticket_id="BAD01", ticket_type="incident", priority="P3", status="RESOLVED",
                  opened_at="2026-07-14T09:00:00+08:00", updated_at="2026-07-14T12:00:00+08:00",
                  resolved_at="2026-07-14T11:00:00+08:00", assignee="王强", assignment_group="系统组")


def ticket_rows() -> list[dict[str, Any]]:
    """The 21 good tickets, timestamps as ISO 8601 with ``+08:00``."""
    return [{k: (_offset(v) if k in _TS else v) for k, v in t.items()} for t in h.tickets()]


def event_rows() -> list[dict[str, Any]]:
    return [dict(e, at=_offset(e["at"])) for e in h.events()]


def _offset(value: str | None) -> str | None:
    return None if value is None else value.replace(" ", "T") + ":00+08:00"


def csv_text(rows: list[dict[str, Any]], fields: list[str], *, header: bool = True, newline: str = "\n") -> str:
    """CSV as Python's ``csv`` module writes it (quoted where needed), empty cells for None."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator=newline)
    if header:
        writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    return out.getvalue()


def bad_ticket_line(**overrides: Any) -> bytes:
    """One CSV line (UTF-8): ``GOOD_EXTRA`` with ``overrides``, the other fields empty."""
    return csv_text([{**dict.fromkeys(FIELDS), **GOOD_EXTRA, **overrides}], FIELDS, header=False).encode()


def bad_event_line(ticket_id: str, at: str, kind: str, value: str | None, actor: str = "李娜") -> bytes:
    row = dict(zip(h.EVENT_FIELDS, (ticket_id, at, kind, value, actor), strict=True))
    return csv_text([row], list(h.EVENT_FIELDS), header=False).encode()


class Export:
    """The good export in ``folder``, and the ways a case changes it before the run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.tickets_dir = folder / "tickets"
        self.tickets_dir.mkdir(parents=True)
        self.events_path = folder / "events.csv"
        tickets = ticket_rows()
        self.day1: bytes | None = csv_text(tickets[:FIRST_DAY], FIELDS).encode()
        self.day2: bytes | None = csv_text(tickets[FIRST_DAY:], FIELDS).encode()
        self.events = csv_text(event_rows(), list(h.EVENT_FIELDS)).encode()
        self.source: dict[str, Any] = {"kind": "csv", "path": str(self.tickets_dir),
                                       "events_path": str(self.events_path)}
        self.extra_files: dict[str, bytes] = {}

    def add_to_day2(self, line: bytes, at: int | None = None) -> None:
        """Add a line to tickets-2.csv: at its end, or before its data line ``at`` (0-based)."""
        assert self.day2 is not None
        lines = self.day2.split(b"\n")
        lines.insert(len(lines) - 1 if at is None else at + 1, line.rstrip(b"\n"))
        self.day2 = b"\n".join(lines)

    def add_event(self, line: bytes) -> None:
        self.events += line

    def add_file(self, name: str, data: bytes) -> None:
        """A third daily file in the tickets folder."""
        self.extra_files[name] = data

    def write(self) -> dict[str, Any]:
        """Write every file; the ``[[sources]]`` entry (without its name)."""
        for name, data in (("tickets-1.csv", self.day1), ("tickets-2.csv", self.day2)):
            if data is not None:
                (self.tickets_dir / name).write_bytes(data)
        for name, data in self.extra_files.items():
            (self.tickets_dir / name).write_bytes(data)
        self.events_path.write_bytes(self.events)
        return self.source


def extra_ticket_file(ticket_id: str = "NEW01", **overrides: Any) -> bytes:
    """A whole daily CSV file with one good ticket that is not in the set."""
    return csv_text([{**dict.fromkeys(FIELDS), **GOOD_EXTRA, "ticket_id": ticket_id, **overrides}], FIELDS).encode()


def gz_truncated(data: bytes) -> bytes:
    whole = gzip.compress(data)
    return whole[: len(whole) - 12]  # the end marker and some data cut off, as an interrupted copy does


def as_ndjson(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps({k: v for k, v in r.items() if v is not None}, ensure_ascii=False) + "\n"
                   for r in rows).encode()


def write_json_source(ex: Export, day2: bytes, *, kind: str, suffix: str) -> None:
    """Replace the CSV ticket files with JSON / NDJSON ones: day 1 good, day 2 as given."""
    tickets = ticket_rows()
    ex.day1 = ex.day2 = None
    ex.source["kind"] = kind
    (ex.tickets_dir / f"tickets-1.{suffix}").write_bytes(
        as_ndjson(tickets[:FIRST_DAY]) if suffix == "ndjson" else json.dumps(tickets[:FIRST_DAY]).encode())
    (ex.tickets_dir / f"tickets-2.{suffix}").write_bytes(day2)
