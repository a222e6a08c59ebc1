"""A corpus of bad input, one kind per case, each through the real CLI (``itsm-kpi run``) on a fresh store.

Every case starts from the same good export (corpus_helpers: 21 tickets in two daily CSV files, 22
events) and adds ONE bad row, line or file among the good ones, or writes the same tickets another way
(GBK, BOM, CRLF, ...). For each kind the test checks the exit status, the one rejection it must cause
(its reason and row kind) or the one line it must print, that the good rows all arrive, and that
rows read = rows used + rows rejected, from ``pipeline_runs``, ``ticket_facts``, ``raw_events`` and
``rejected_rows``. docs/bad-input.md is the same table, for people.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import corpus_helpers as c
import e2e_helpers as h
import pytest

BANNER = "导出时间: 2026-08-01 00:00:00\n".encode()
FORMULA = '=HYPERLINK("http://example.com/x","点我")'
LONG = "长" * (600 * 1024)  # 1.8 MB of UTF-8 in one cell: longer than Arrow's 1 MiB block
WIDTH = len(c.FIELDS)


@dataclass(frozen=True)
class Outcome:
    """What a run left behind, read back from the stores."""

    result: h.Result
    store: Path
    url: str
    facts: list[dict]
    events: int
    rejected: list[dict]
    run: dict
    files_read: set[str]


@dataclass(frozen=True)
class Case:
    """One kind of bad input and what must come of it."""

    build: Callable[[c.Export], None]
    reason: str | None = None  # the one rejected row's reason starts with this (None: nothing rejected)
    row_kind: str = "ticket"
    exit: int = 0
    message: str | None = None  # exit != 0: the one line printed contains this
    tickets: int = c.GOOD_TICKETS  # ticket rows used
    events: int = c.GOOD_EVENTS  # event rows used
    at: tuple[str, int] | None = None  # a quarantined line: (file name, line number)
    check: Callable[[Outcome], None] | None = None


# --- how each case breaks the good export ------------------------------------------------------------

def row(**overrides) -> Callable[[c.Export], None]:
    """One more ticket row, at the end of tickets-2.csv, with ``overrides`` over a good ticket."""
    return lambda ex: ex.add_to_day2(c.bad_ticket_line(**overrides))


def event(*values) -> Callable[[c.Export], None]:
    return lambda ex: ex.add_event(c.bad_event_line(*values))


def line(data: bytes, at: int | None = None) -> Callable[[c.Export], None]:
    """One more physical line in tickets-2.csv (by default at its end: line 12)."""
    return lambda ex: ex.add_to_day2(data, at)


def third_file(name: str, data: bytes) -> Callable[[c.Export], None]:
    return lambda ex: ex.add_file(name, data)


def reencode(encoding: str, bom: bytes = b"", newline: str = "\n") -> Callable[[c.Export], None]:
    def build(ex: c.Export) -> None:
        tickets = c.ticket_rows()
        ex.day1 = bom + c.csv_text(tickets[:c.FIRST_DAY], c.FIELDS, newline=newline).encode(encoding)
        ex.day2 = bom + c.csv_text(tickets[c.FIRST_DAY:], c.FIELDS, newline=newline).encode(encoding)
        ex.events = bom + c.csv_text(c.event_rows(), list(h.EVENT_FIELDS), newline=newline).encode(encoding)
    return build


def banner_everywhere(ex: c.Export) -> None:
    ex.day1, ex.day2, ex.events = BANNER + ex.day1, BANNER + ex.day2, BANNER + ex.events
    ex.source["options"] = {"header_row": 2}


def header_renamed(ex: c.Export) -> None:
    """The good files call resolved_at 解决时间 (mapped); a third day's file has the typo 解决时问."""
    for name in ("day1", "day2"):
        setattr(ex, name, getattr(ex, name).replace(b"resolved_at", "解决时间".encode(), 1))
    ex.source["columns"] = {"resolved_at": "解决时间"}
    ex.add_file("tickets-3.csv", c.extra_ticket_file().replace(b"resolved_at", "解决时问".encode(), 1))


def without_column(name: str) -> bytes:
    text = c.extra_ticket_file().decode()
    header, data = text.splitlines()[:2]
    keep = [i for i, h_ in enumerate(header.split(",")) if h_ != name]
    return "\n".join(",".join(v for i, v in enumerate(r.split(",")) if i in keep) for r in (header, data)).encode() + b"\n"


def naive_column(ex: c.Export) -> None:
    """opened_at without its offset in every row (and no sources.timezone)."""
    for name in ("day1", "day2"):
        lines = getattr(ex, name).decode().split("\n")
        setattr(ex, name, "\n".join([lines[0]] + [_naive_opened(x) for x in lines[1:]]).encode())


def _naive_opened(text: str) -> str:
    cells = text.split(",")
    if len(cells) > 4:
        cells[4] = cells[4].replace("T", " ").removesuffix("+08:00")
    return ",".join(cells)


def symlink_loop(ex: c.Export) -> None:
    (ex.tickets_dir / "loop").symlink_to(ex.tickets_dir)  # tickets/loop/loop/... is tickets again
    ex.source["path"] = f"{ex.tickets_dir}/**/*.csv"


def latin1_file() -> bytes:
    """Three tickets assigned to José in Latin-1: é then a comma is neither UTF-8 nor GB18030."""
    rows = [{**dict.fromkeys(c.FIELDS), **c.GOOD_EXTRA, "ticket_id": f"LAT{i}", "assignee": "José",
             "assignment_group": "Ops"} for i in range(3)]
    return c.csv_text(rows, c.FIELDS).encode("latin-1")


def ndjson_with_bad_line(ex: c.Export) -> None:
    day2 = c.as_ndjson(c.ticket_rows()[c.FIRST_DAY:])
    c.write_json_source(ex, day2 + b'{"ticket_id": "BAD01", "status": \n', kind="ndjson", suffix="ndjson")


def json_with_a_number(ex: c.Export) -> None:
    c.write_json_source(ex, json.dumps([*c.ticket_rows()[c.FIRST_DAY:], 5]).encode(), kind="json", suffix="json")


def corrupt_workbook(ex: c.Export) -> None:
    """An Excel source: one good workbook of every ticket, and a second that is not a workbook."""
    import pandas as pd

    ex.day1 = ex.day2 = None
    ex.source["kind"] = "excel"
    pd.DataFrame(c.ticket_rows(), columns=c.FIELDS).to_excel(ex.tickets_dir / "tickets-1.xlsx", index=False)
    ex.add_file("tickets-2.xlsx", b"PK\x03\x04 cut off in the middle of the copy")


# --- the corpus ------------------------------------------------------------------------------------

OUT_OF_RANGE = "opened_at out of range 1970..2099"
CASES: dict[str, Case] = {
    # rows the mapping or the validation cannot use (handled before; kept so they stay handled)
    "unparseable timestamp": Case(row(opened_at="not a date"), "unparseable opened_at 'not a date'"),
    "unmapped status": Case(row(status="Pending Vendor"), "unmapped status 'Pending Vendor'"),
    "unmapped priority": Case(row(priority="P9"), "unmapped priority 'P9'"),
    "unmapped type": Case(row(ticket_type="problem"), "unmapped type 'problem'"),
    "bad integer": Case(row(reopen_count="two"), "bad integer reopen_count 'two'"),
    "missing required value": Case(row(ticket_id=""), "missing ticket_id"),
    "unmappable satisfaction": Case(row(satisfaction="非常好", satisfaction_at="2026-07-15T09:00:00+08:00"),
                                    "unmappable satisfaction '非常好'"),
    "planned_end before planned_start": Case(row(ticket_type="maintenance", planned_start="2026-07-20T20:00:00+08:00",
                                                 planned_end="2026-07-20T18:00:00+08:00"),
                                             "planned_end before planned_start"),
    "event for unknown ticket": Case(event("GHOST1", "2026-07-03T14:00:00+08:00", "status", "NEW"),
                                     "event for unknown ticket", "event"),
    "non-canonical event kind": Case(event("INC003", "2026-07-03T14:30:00+08:00", "comment", "看过了"),
                                     "unknown event kind 'comment'", "event"),
    "unparseable event time": Case(event("INC003", "yesterday", "status", "IN_PROGRESS"),
                                   "unparseable at 'yesterday'", "event"),
    # timestamps that parse but are no time, or lost their offset
    "year 9999": Case(row(opened_at="9999-12-31T23:00:00+08:00"), f"{OUT_OF_RANGE} '9999-12-31T23:00:00+08:00'"),
    "year 1900": Case(row(opened_at="1900-01-01T00:00:00+08:00"), f"{OUT_OF_RANGE} '1900-01-01T00:00:00+08:00'"),
    "event in year 9999": Case(event("INC003", "9999-01-01T00:00:00+08:00", "status", "IN_PROGRESS"),
                               "at out of range 1970..2099 '9999-01-01T00:00:00+08:00'", "event"),
    "naive timestamp among offsets, no timezone": Case(
        row(opened_at="2026-07-14 09:00:00"), "no UTC offset in opened_at (set sources.timezone) '2026-07-14 09:00:00'"),
    "naive column, no timezone": Case(
        naive_column, exit=2,
        message="sources['helpdesk'].timezone: is missing and the source has timestamps without a UTC offset "
                "(e.g. '2026-07-01 09:10:00')"),
    # lines that are not rows: quarantined with file and line, the rest of the file read
    "Latin-1 byte in a UTF-8 file": Case(line(c.bad_ticket_line(assignee="X").replace(b",X,", b",Ren\xe9,")),
                                         "line is not valid utf-8", at=("tickets-2.csv", 12)),
    "NUL byte": Case(line(c.bad_ticket_line(assignee="王\x00强")), "NUL byte in line", at=("tickets-2.csv", 12)),
    "unbalanced quote opening a line": Case(line(b'"' + c.bad_ticket_line(), at=3), "unbalanced quote",
                                            at=("tickets-2.csv", 5)),
    "unbalanced quote in the last field": Case(line(c.bad_ticket_line().rstrip(b"\n") + b'"', at=3),
                                               "unbalanced quote", at=("tickets-2.csv", 5)),
    "one field too many": Case(line(c.bad_ticket_line().rstrip(b"\n") + b",extra"),
                               f"wrong number of fields ({WIDTH + 1}, header has {WIDTH})", at=("tickets-2.csv", 12)),
    "NDJSON bad line": Case(ndjson_with_bad_line, "invalid JSON", at=("tickets-2.ndjson", 11)),
    "JSON record that is not an object": Case(json_with_a_number, "JSON record is a number, not an object"),
    # files that cannot be read: refused, one rejected row; the source's other files read
    "truncated .csv.gz": Case(third_file("tickets-3.csv.gz", c.gz_truncated(c.extra_ticket_file())),
                              "tickets-3.csv.gz is truncated", "file"),
    ".gz name on a plain file": Case(third_file("tickets-3.csv.gz", c.extra_ticket_file()),
                                     "tickets-3.csv.gz is not gzip-compressed", "file"),
    "neither UTF-8 nor GB18030": Case(third_file("tickets-3.csv", latin1_file()),
                                      "tickets-3.csv is neither UTF-8 nor GB18030", "file"),
    "banner row without header_row": Case(third_file("tickets-3.csv", BANNER + c.extra_ticket_file()),
                                          "none of the headers the config names", "file"),
    "misspelt mapped header": Case(header_renamed, "`解决时间` (columns.resolved_at) not found in tickets-3.csv; "
                                                   "did you mean `解决时问`?", "file"),
    "missing required column": Case(third_file("tickets-3.csv", without_column("opened_at")),
                                    "`opened_at` (required; map it with columns.opened_at) not found in tickets-3.csv "
                                    "(headers: ticket_id,", "file"),
    "corrupt workbook": Case(corrupt_workbook, "tickets-2.xlsx is not a readable Excel workbook", "file"),
    # read as data, nothing rejected
    "empty file": Case(third_file("tickets-3.csv", b"")),
    "header-only file": Case(third_file("tickets-3.csv", c.extra_ticket_file().split(b"\n")[0] + b"\n")),
    "banner row with header_row": Case(banner_everywhere),
    "blank line": Case(line(b"", at=3)),
    "BOM": Case(reencode("utf-8", bom=codecs.BOM_UTF8)),
    "GBK file": Case(reencode("gbk")),
    "CRLF line ends": Case(reencode("utf-8", newline="\r\n")),
    "formula-looking name": Case(row(ticket_id="NEW01", assignee=FORMULA), tickets=c.GOOD_TICKETS + 1),
    "very long field": Case(row(ticket_id="NEW01", close_code=LONG), tickets=c.GOOD_TICKETS + 1),
    "symlink loop under **": Case(symlink_loop),
}


# --- what each kind must leave behind ---------------------------------------------------------------

def _only_the_empty_file_warned(out: Outcome) -> None:
    assert "tickets-3.csv is empty: 0 rows read" in out.result.err


def _formula_kept(out: Outcome) -> None:
    (fact,) = [f for f in out.facts if f["ticket_id"] == "NEW01"]
    assert fact["engineer"] == FORMULA  # the stores keep the value as it came (CONTRACT.md)


def _long_value_kept(out: Outcome) -> None:
    names = list(h.PARQUET_COLUMNS["raw_tickets"])
    raw = {r[names.index("ticket_id")]: r for r in h.parquet_only(out.store, "raw_tickets")}
    assert raw["NEW01"][names.index("close_code")] == LONG


def _one_copy_each(out: Outcome) -> None:
    assert out.run["rows_read"] == c.GOOD_TICKETS + c.GOOD_EVENTS  # the loop read nothing twice


CHECKS = {"empty file": _only_the_empty_file_warned, "formula-looking name": _formula_kept,
          "very long field": _long_value_kept, "symlink loop under **": _one_copy_each}


def run_case(case: Case, folder: Path) -> Outcome | h.Result:
    export = c.Export(folder / "export")
    case.build(export)
    store = folder / "store"
    config = folder / "itsm-kpi.toml"
    config.write_text(h.config_text(store, export.write()).replace(  # one grain: the input is what is tested
        'grains = ["day", "week", "month", "quarter"]', 'grains = ["month"]'), encoding="utf-8")
    result = h.cli("run", "--config", str(config), "--as-of", h.AS_OF)
    if result.code:
        return result
    url = f"sqlite:///{store / 'kpi.sqlite'}"
    (run,) = h.run_rows(url)
    return Outcome(result, store, url, h.read_sql(url, "ticket_facts").to_dict("records"),
                   len(h.parquet_only(store, "raw_events")), h.read_sql(url, "rejected_rows").to_dict("records"),
                   run, set(h.read_sql(url, "source_files")["file_key"].str.split(":").str[0]))


def test_the_corpus_is_wide() -> None:
    assert len(CASES) >= 34
    assert len({case.reason.split(" '")[0] for case in CASES.values() if case.reason}) >= 25


@pytest.mark.parametrize("kind", list(CASES))
def test_bad_input(kind: str, tmp_path: Path) -> None:
    case = CASES[kind]
    out = run_case(case, tmp_path)
    result = out if isinstance(out, h.Result) else out.result
    assert "Traceback" not in result.err
    assert result.code == case.exit, result.reason_lines()[-3:]
    if case.exit:
        assert isinstance(out, h.Result)
        (message,) = [x for x in result.reason_lines() if x.startswith("itsm-kpi:")]
        assert case.message in message
        return
    assert isinstance(out, Outcome)
    # the good rows all arrive, the bad one is quarantined once, and nothing is lost on the way
    assert (len(out.facts), out.events) == (case.tickets, case.events)
    assert out.run["rows_rejected"] == len(out.rejected) == (1 if case.reason else 0), out.rejected
    assert out.run["rows_read"] == len(out.facts) + out.events + len(out.rejected)
    assert out.run["status"] == "success"
    if case.reason:
        (rejected,) = out.rejected
        assert rejected["reason"].startswith(case.reason), rejected["reason"]
        assert (rejected["row_kind"], rejected["source"]) == (case.row_kind, h.SOURCE)
        _check_where(case, rejected, out)
    if kind in CHECKS:
        CHECKS[kind](out)


def _check_where(case: Case, rejected: dict, out: Outcome) -> None:
    """A quarantined line names its file and line; a refused file is not recorded as read."""
    raw = json.loads(rejected["raw"])
    if case.at is not None:
        assert (Path(raw["file"]).name, raw["line"]) == case.at
        assert raw["text"]  # the line as read, kept for whoever fixes the export
    if case.row_kind == "file":
        refused = Path(raw["file"]).name
        assert raw == {"file": raw["file"]} and refused in rejected["reason"]
        assert refused not in out.files_read  # a fixed copy is read by a later run
        assert out.files_read  # and the source's other files were read and recorded
