"""What the operations tests share: a month of hand-made tickets as daily CSV exports, a config pointing
at them, the CLI run in-process or as a real process, and both stores read back for comparison.

The data (reporting timezone Asia/Shanghai, all timestamps written with +08:00):

- ``month_export()``: 96 tickets opened in July 2026, all resolved or already past every SLA target at the
  nightly as-of times used here, so no fact changes through time alone between two nights (an open
  ticket's SLA status would otherwise flip with ``as_of`` and widen the set of periods a night rewrites).
- ``day2_export()``: the changes of 2026-08-01 as the next daily file: an update (resolved), a reopen,
  a reassignment, a late satisfaction answer, a new ticket, an opened_at corrected across the month
  boundary, and a ticket exported again unchanged. ``DAY2_ANCHORS`` lists every changed ticket's old and
  new anchor dates, written out by hand.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from kpis.schema import TABLE_KEYS
from pipeline.settings import Settings
from pipeline.store import Stores

TZ = "Asia/Shanghai"
DAY1_AS_OF = pd.Timestamp("2026-08-01T01:15:00+08:00").tz_convert("UTC")
DAY2_AS_OF = pd.Timestamp("2026-08-02T01:15:00+08:00").tz_convert("UTC")
DAY3_AS_OF = pd.Timestamp("2026-08-03T01:15:00+08:00").tz_convert("UTC")

OUTPUT_TABLES = ("ticket_facts", "kpi_engineer", "kpi_team", "scorecard", "scorecard_kpi", "kpi_breakdown",
                 "ticket_status_time", "kpi_backlog")
RAW_KEYS = {"raw_tickets": ("source", "ticket_id"), "raw_events": ("source", "ticket_id", "at", "kind", "value")}
PERIOD_TABLES = ("kpi_engineer", "kpi_team", "scorecard", "scorecard_kpi")

TICKET_FIELDS = ["ticket_id", "ticket_type", "priority", "status", "opened_at", "updated_at", "first_response_at",
                 "resolved_at", "closed_at", "assignee", "assignment_group", "reopen_count", "category",
                 "diagnosed_category", "close_code", "satisfaction", "satisfaction_at", "planned_start",
                 "planned_end", "actual_end", "caused_by"]
EVENT_FIELDS = ["ticket_id", "at", "kind", "value", "actor"]
ENGINEERS = {"王芳": "桌面组", "李娜": "桌面组", "张伟": "网络组", "刘洋": "网络组", "陈静": "系统组", "赵磊": "系统组"}


def at(day: date | str, hhmm: str) -> str:
    """A local Shanghai timestamp as the exports write it."""
    return f"{day}T{hhmm}:00+08:00"


# --- the data ------------------------------------------------------------------------------------

def _ticket(tid: str, opened: str, **fields: str) -> dict[str, str]:
    row = dict.fromkeys(TICKET_FIELDS, "")
    row.update(ticket_id=tid, ticket_type="incident", priority="P3", status="CLOSED", opened_at=opened,
               updated_at=opened, reopen_count="0", category="网络")
    row.update(fields)
    return row


def month_export() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Tickets and events of July 2026 as the first daily export holds them (see the module docstring)."""
    tickets, events = [], []
    names = list(ENGINEERS)
    for i in range(96):
        day = date(2026, 7, 1) + timedelta(days=i % 30)
        engineer = names[i % len(names)]
        opened = at(day, f"{9 + i % 8:02d}:{(7 * i) % 60:02d}")
        t0 = pd.Timestamp(opened)
        response = (t0 + pd.Timedelta(minutes=10 + i % 50)).isoformat()
        resolved = (t0 + pd.Timedelta(hours=1 + i % 30)).isoformat()
        kind = "request" if i % 4 == 1 else "incident"
        ticket = _ticket(f"INC{i:04d}", opened, ticket_type=kind, priority=f"P{2 + i % 3}",
                         first_response_at=response, resolved_at=resolved, closed_at=resolved,
                         updated_at=resolved, assignee=engineer, assignment_group=ENGINEERS[engineer],
                         category=("网络", "打印机", "邮件")[i % 3], diagnosed_category=("网络", "打印机", "账号")[i % 3],
                         satisfaction=("满意", "一般", "", "较满意")[i % 4],
                         satisfaction_at=resolved if i % 4 != 2 else "")
        tickets.append(ticket)
        events += [
            dict(ticket_id=ticket["ticket_id"], at=opened, kind="status", value="NEW", actor="系统"),
            dict(ticket_id=ticket["ticket_id"], at=opened, kind="assignee", value=engineer, actor="调度"),
            dict(ticket_id=ticket["ticket_id"], at=response, kind="status", value="IN_PROGRESS", actor=engineer),
            dict(ticket_id=ticket["ticket_id"], at=resolved, kind="status", value="RESOLVED", actor=engineer),
            dict(ticket_id=ticket["ticket_id"], at=resolved, kind="status", value="CLOSED", actor=engineer),
        ]
    # two tickets still open on the night of day 1 (responded to, long past their resolution target)
    for tid in ("INC0003", "INC0004"):
        ticket = next(t for t in tickets if t["ticket_id"] == tid)
        ticket.update(status="IN_PROGRESS", resolved_at="", closed_at="", satisfaction="", satisfaction_at="",
                      updated_at=ticket["first_response_at"])
        events[:] = [e for e in events if not (e["ticket_id"] == tid and e["value"] in ("RESOLVED", "CLOSED"))]
    # the last ticket of July, opened late on the 31st (its opened_at is corrected on day 2)
    tickets.append(_ticket("INC0900", at("2026-07-31", "23:30"), first_response_at=at("2026-08-01", "00:20"),
                           resolved_at=at("2026-08-01", "00:40"), closed_at=at("2026-08-01", "00:40"),
                           updated_at=at("2026-08-01", "00:40"), assignee="张伟", assignment_group="网络组",
                           priority="P1"))
    events += [dict(ticket_id="INC0900", at=at("2026-07-31", "23:30"), kind="status", value="NEW", actor="系统"),
               dict(ticket_id="INC0900", at=at("2026-08-01", "00:40"), kind="status", value="RESOLVED", actor="张伟")]
    # maintenance work, planned and done in July, one of whose changes caused an incident
    for j, day in enumerate(("2026-07-08", "2026-07-22")):
        start, end = at(day, "20:00"), at(day, "22:00")
        tickets.append(_ticket(f"CHG{j:04d}", at(day, "10:00"), ticket_type="maintenance", category="补丁",
                               first_response_at=at(day, "10:30"), resolved_at=at(day, "21:30"),
                               closed_at=at(day, "21:30"), updated_at=at(day, "21:30"), assignee="陈静",
                               assignment_group="系统组", close_code="successful", planned_start=start,
                               planned_end=end, actual_end=at(day, "21:30")))
    tickets[10]["caused_by"] = "CHG0000"
    # one row the pipeline cannot use (an unknown status), to see rejected_rows across reruns
    tickets.append(_ticket("INC0999", at("2026-07-15", "11:00"), status="ON_HOLD?"))
    return tickets, events


@dataclass(frozen=True)
class Anchors:
    """A changed ticket's anchor dates (local) before and after the change, written out by hand."""

    before: tuple[str, ...]
    after: tuple[str, ...]


# Old anchors from month_export(), new ones from day2_export(): opened_at, resolved_at, satisfaction_at
# (planned_end only on maintenance tickets, none of which changes).
DAY2_ANCHORS = {
    # INC0003 (opened 2026-07-04) resolved on 08-01
    "INC0003": Anchors(before=("2026-07-04",), after=("2026-07-04", "2026-08-01")),
    # INC0020 (opened 07-21 13:20, resolved 07-22 10:20, answered 07-22) reopened on 08-01 09:00 and
    # resolved again at 15:00; the survey answer keeps its date
    "INC0020": Anchors(before=("2026-07-21", "2026-07-22"), after=("2026-07-21", "2026-07-22", "2026-08-01")),
    # INC0004 (opened 07-05, open) reassigned from 陈静 (系统组) to 刘洋 (网络组) on 08-01: the opened_at
    # periods, which now count the ticket for the new engineer and team
    "INC0004": Anchors(before=("2026-07-05",), after=("2026-07-05",)),
    # INC0014 (opened 07-15 15:38, resolved 07-16 06:38, no answer) answered 满意 late, on 08-01
    "INC0014": Anchors(before=("2026-07-15", "2026-07-16"), after=("2026-07-15", "2026-07-16", "2026-08-01")),
    # INC1000 new: opened and resolved 08-01
    "INC1000": Anchors(before=(), after=("2026-08-01",)),
    # INC0900 opened 07-31 23:30 corrected to 08-01 00:10 (answered 00:20, resolved 00:40 either way)
    "INC0900": Anchors(before=("2026-07-31", "2026-08-01"), after=("2026-08-01",)),
}
# INC0050 is exported again on day 2 without any change: it must not rewrite a period.


def day2_export(month: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The export of 2026-08-01: only the tickets that changed that day, and that day's events."""
    by_id = {t["ticket_id"]: dict(t) for t in month}
    d = "2026-08-01"
    tickets = [
        {**by_id["INC0003"], "status": "RESOLVED", "resolved_at": at(d, "10:00"), "updated_at": at(d, "10:00")},
        {**by_id["INC0020"], "status": "RESOLVED", "reopen_count": "1", "resolved_at": at(d, "15:00"),
         "closed_at": "", "updated_at": at(d, "15:00")},
        {**by_id["INC0004"], "assignee": "刘洋", "assignment_group": "网络组", "updated_at": at(d, "09:30")},
        {**by_id["INC0014"], "satisfaction": "满意", "satisfaction_at": at(d, "08:00"), "updated_at": at(d, "08:00")},
        _ticket("INC1000", at(d, "09:00"), first_response_at=at(d, "09:05"), resolved_at=at(d, "11:00"),
                closed_at=at(d, "11:00"), updated_at=at(d, "11:00"), assignee="王芳", assignment_group="桌面组",
                satisfaction="满意", satisfaction_at=at(d, "12:00")),
        {**by_id["INC0900"], "opened_at": at(d, "00:10"), "updated_at": at(d, "01:00")},
        dict(by_id["INC0050"]),
    ]
    events = [
        dict(ticket_id="INC0003", at=at(d, "10:00"), kind="status", value="RESOLVED", actor="刘洋"),
        dict(ticket_id="INC0020", at=at(d, "09:00"), kind="status", value="IN_PROGRESS", actor="客户"),
        dict(ticket_id="INC0020", at=at(d, "15:00"), kind="status", value="RESOLVED", actor="李娜"),
        dict(ticket_id="INC0004", at=at(d, "09:30"), kind="assignee", value="刘洋", actor="调度"),
        dict(ticket_id="INC0004", at=at(d, "09:30"), kind="group", value="网络组", actor="调度"),
        dict(ticket_id="INC1000", at=at(d, "09:00"), kind="status", value="NEW", actor="系统"),
        dict(ticket_id="INC1000", at=at(d, "09:05"), kind="status", value="IN_PROGRESS", actor="王芳"),
        dict(ticket_id="INC1000", at=at(d, "11:00"), kind="status", value="RESOLVED", actor="王芳"),
    ]
    return tickets, events


def new_tickets(prefix: str, day: str, n: int, engineer: str = "赵磊") -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """An export of ``n`` tickets opened and resolved on ``day`` (nothing already known changes)."""
    tickets = [_ticket(f"{prefix}{i:03d}", at(day, f"{9 + i:02d}:00"), first_response_at=at(day, f"{9 + i:02d}:10"),
                       resolved_at=at(day, f"{10 + i:02d}:00"), closed_at=at(day, f"{10 + i:02d}:00"),
                       updated_at=at(day, f"{10 + i:02d}:00"), assignee=engineer,
                       assignment_group=ENGINEERS[engineer])
               for i in range(n)]
    events = [dict(ticket_id=t["ticket_id"], at=t["opened_at"], kind="status", value="NEW", actor="系统")
              for t in tickets]
    return tickets, events


def write_export(folder: Path, name: str, tickets: list[dict[str, str]], events: list[dict[str, str]]) -> None:
    """``folder/tickets/<name>.csv`` and ``folder/events/<name>.csv``, as a ticketing system exports them."""
    for sub, rows, fields in (("tickets", tickets, TICKET_FIELDS), ("events", events, EVENT_FIELDS)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        (folder / sub / f"{name}.csv").write_text(buffer.getvalue(), encoding="utf-8")


# --- the config ----------------------------------------------------------------------------------

def write_config(tmp: Path, sql_url: str, *, sources: dict[str, Path], store: Path | None = None,
                 lock_wait: str = "2s", stale_lock: str = "15m", cron: str = "15 1 * * *") -> Path:
    """An ``itsm-kpi.toml`` with one csv source per ``sources`` entry (its folder of daily exports)."""
    store = store or tmp / "store"
    entries = "\n".join(
        f'[[sources]]\nname = "{name}"\nkind = "csv"\npath = "{folder / "tickets"}"\n'
        f'events_path = "{folder / "events"}"\ntimezone = "{TZ}"\n'
        for name, folder in sources.items())
    text = f"""
[store]
path = "{store}"
sql_url = "{sql_url}"

[reporting]
timezone = "{TZ}"
grains = ["day", "week", "month", "quarter"]
min_sample = 3

[schedule]
cron = "{cron}"
timezone = "{TZ}"

[run]
overlap = "1h"
lock_wait = "{lock_wait}"
stale_lock = "{stale_lock}"

[kpi]
default_calendar = "office"
pause_statuses = ["WAITING_CUSTOMER", "WAITING_THIRD_PARTY"]
failed_close_codes = ["failed", "rolled_back"]
satisfaction_map = {{ "满意" = 5, "较满意" = 4, "一般" = 3, "较不满意" = 2, "不满意" = 1 }}

[calendars.office]
timezone = "{TZ}"
hours = {{ mon = ["09:00-12:00", "13:30-18:00"], tue = ["09:00-12:00", "13:30-18:00"], wed = ["09:00-12:00", "13:30-18:00"], thu = ["09:00-12:00", "13:30-18:00"], fri = ["09:00-12:00", "13:30-18:00"] }}

[[sla]]
ticket_type = "incident"
priority = "P1"
response = "30m"
resolution = "4h"
calendar = "24x7"

[[sla]]
ticket_type = "incident"
response = "1h"
resolution = "16h"

[[sla]]
ticket_type = "request"
response = "2h"
resolution = "3d"

{entries}
[[scorecard]]
kpi = "response_sla_rate"
target = 0.95
weight = 0.5

[[scorecard]]
kpi = "csat_rate"
target = 0.85
weight = 0.5
"""
    path = tmp / f"itsm-kpi-{store.name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(config: Path) -> Settings:
    return Settings.load(config, env={})


# --- running -------------------------------------------------------------------------------------

def run(config: Path, kind: str, as_of: pd.Timestamp, window=None):
    """One run through ``pipeline.jobs.run_job`` (what the CLI and the scheduler call)."""
    from pipeline.jobs import run_job

    return run_job(load(config), kind=kind, as_of=as_of, window=window)


@contextlib.contextmanager
def _root_logging_kept() -> Iterator[None]:
    """``cli.main`` configures logging for a terminal; give pytest its handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {n: logging.getLogger(n).level for n in ("pipeline", "connectors", "kpis")}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, lvl in levels.items():
            logging.getLogger(name).setLevel(lvl)


def cli(*args: str) -> int:
    """``itsm-kpi ARGS`` in this process; returns the exit code."""
    from pipeline.cli import main

    with _root_logging_kept():
        return main(["-q", *args])


def spawn(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    """``itsm-kpi ARGS`` as a real process, stderr (JSON log lines) piped for ``wait_for_line``."""
    exe = Path(sys.executable).with_name("itsm-kpi")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env = {k: v for k, v in env.items() if not k.startswith("ITSM_KPI_")}
    return subprocess.Popen([str(exe), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_line(proc: subprocess.Popen, text: str, timeout: float = 60.0) -> list[str]:
    """Read ``proc``'s stderr until a line contains ``text``; return the lines read. Fails on timeout/exit."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.2)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no line with {text!r} within {timeout} s (exit {proc.poll()}); stderr:\n{''.join(lines)}")


# --- reading back --------------------------------------------------------------------------------

def open_stores(config: Path) -> Stores:
    settings = load(config)
    stores = Stores(settings.store.path, settings.store.sql_url)
    stores.prepare()
    return stores


def runs(config: Path) -> pd.DataFrame:
    """``pipeline_runs`` from SQL, oldest first."""
    stores = open_stores(config)
    try:
        return stores.read_sql("pipeline_runs").sort_values("started_at", ignore_index=True)
    finally:
        stores.close()


def sql_rows(config: Path, table: str) -> pd.DataFrame:
    stores = open_stores(config)
    try:
        return stores.read_sql(table)
    finally:
        stores.close()


def _sorted(frame: pd.DataFrame, keys: tuple[str, ...], drop: tuple[str, ...]) -> pd.DataFrame:
    frame = frame.drop(columns=[c for c in drop if c in frame.columns])
    return frame.sort_values(list(keys), ignore_index=True, kind="stable")


def snapshot(config: Path, *, drop: tuple[str, ...] = ("as_of",), raw: bool = True) -> dict[str, pd.DataFrame]:
    """Every output table (and the raw layer) from both stores, sorted by key, ``drop`` columns removed.

    Keys are ``("sql", table)`` and ``("parquet", table)``; the raw layer is in Parquet only. Events are
    compared without ``seq`` (a position in the file that delivered them, not a property of the event).
    """
    stores = open_stores(config)
    out: dict = {}
    try:
        for table in OUTPUT_TABLES:
            keys = TABLE_KEYS[table]
            out[("sql", table)] = _sorted(stores.read_sql(table), keys, drop)
            out[("parquet", table)] = _sorted(stores.read(table), keys, drop)
        if raw:
            for table, keys in RAW_KEYS.items():
                out[("parquet", table)] = _sorted(stores.read(table), keys, (*drop, "seq"))
    finally:
        stores.close()
    return out


def assert_same(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    """Every table of ``left`` equals the same table of ``right``."""
    assert left.keys() == right.keys()
    for key in left:
        try:
            pd.testing.assert_frame_equal(left[key], right[key], check_exact=False, rtol=1e-12)
        except AssertionError as e:
            raise AssertionError(f"{key}: {e}\nleft:\n{_diff(left[key], right[key])}") from None


def _diff(a: pd.DataFrame, b: pd.DataFrame) -> str:
    both = a.astype("str").merge(b.astype("str"), how="outer", indicator=True)
    return both[both["_merge"] != "both"].head(20).to_string()


def assert_stores_agree(config: Path) -> None:
    """Parquet and SQL hold the same rows in every output table."""
    snap = snapshot(config, drop=(), raw=False)
    for table in OUTPUT_TABLES:
        pd.testing.assert_frame_equal(snap[("sql", table)], snap[("parquet", table)], check_exact=False, rtol=1e-12)


# --- periods, by hand ----------------------------------------------------------------------------

def periods_of(day: str) -> set[tuple[str, pd.Timestamp]]:
    """The (grain, period_start) a local date falls in: its day, its ISO week (Monday), month, quarter."""
    d = date.fromisoformat(day)
    monday = d - timedelta(days=d.weekday())
    quarter = date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    return {("day", pd.Timestamp(d)), ("week", pd.Timestamp(monday)), ("month", pd.Timestamp(d.replace(day=1))),
            ("quarter", pd.Timestamp(quarter))}
