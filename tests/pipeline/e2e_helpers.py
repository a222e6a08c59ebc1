"""Shared pieces of the end-to-end tests: one small hand-made ticket set, its exports in every file
format, a config writer, the real CLI run in-process or as a subprocess, and readers that bring a table
back from SQL, from Parquet through ``pyarrow.dataset`` and through DuckDB as plain comparable rows.

The ticket set (local times in Asia/Shanghai, July 2026; 2026-07-01 is a Wednesday) is written out
below with what each ticket is there to show. The expected numbers are worked out by hand in the tests.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
from sqlalchemy import create_engine, text

from kpis.schema import BOOL, DATE, FLOAT, INT, STR, TABLE_KEYS, TICKET_COLUMNS, TS
from pipeline.store.parquet import PARQUET_COLUMNS, PARTITION_BY

REPO = Path(__file__).resolve().parents[2]
SOURCE = "helpdesk"
AS_OF = "2026-08-01T00:00:00+08:00"
JULY = ("--from", "2026-07-01", "--to", "2026-07-31")
OUTPUT_TABLES = ("ticket_facts", "kpi_engineer", "kpi_team", "scorecard", "scorecard_kpi")
EVENT_FIELDS = ("ticket_id", "at", "kind", "value", "actor")

# --- the canonical ticket set ---------------------------------------------------------------------
# Each ticket as (fields); timestamps are local wall-clock times "YYYY-MM-DD HH:MM" in Asia/Shanghai.
_T = [
    # 张伟: first-fixed P2 incident, satisfied (满意 = 5)
    dict(ticket_id="INC001", ticket_type="incident", priority="P2", status="CLOSED", opened_at="2026-07-01 09:10",
         updated_at="2026-07-02 10:00", first_response_at="2026-07-01 09:20", resolved_at="2026-07-01 11:00",
         closed_at="2026-07-02 09:00", assignee="张伟", assignment_group="桌面组", reopen_count=0, reassignment_count=0,
         category="打印机", diagnosed_category="打印机", close_code="solved", satisfaction="满意",
         satisfaction_at="2026-07-02 10:00"),
    # 张伟: reopened once (column), diagnosis wrong, 一般 (= 3, not satisfied)
    dict(ticket_id="INC002", ticket_type="incident", priority="P3", status="CLOSED", opened_at="2026-07-02 10:00",
         updated_at="2026-07-04 10:00", first_response_at="2026-07-02 10:30", resolved_at="2026-07-03 15:00",
         closed_at="2026-07-04 09:00", assignee="张伟", assignment_group="桌面组", reopen_count=1, reassignment_count=0,
         category="网络", diagnosed_category="打印机", close_code="solved", satisfaction="一般",
         satisfaction_at="2026-07-04 10:00"),
    # P1 on 24x7 with a full history (events): 李娜/网络组 first, then 张伟/桌面组, who resolves it.
    dict(ticket_id="INC003", ticket_type="incident", priority="P1", status="CLOSED", opened_at="2026-07-03 14:00",
         updated_at="2026-07-04 10:00", resolved_at="2026-07-03 19:00", closed_at="2026-07-04 10:00",
         assignee="张伟", assignment_group="桌面组", category="服务器", close_code="solved"),
    # incident induced by 张伟's maintenance CHG001
    dict(ticket_id="INC004", ticket_type="incident", priority="P2", status="RESOLVED", opened_at="2026-07-11 08:30",
         updated_at="2026-07-11 12:00", first_response_at="2026-07-11 08:40", resolved_at="2026-07-11 12:00",
         assignee="李娜", assignment_group="网络组", reopen_count=0, category="网络", diagnosed_category="网络",
         caused_by="CHG001"),
    # cancelled: in ticket_facts, in no KPI
    dict(ticket_id="INC005", ticket_type="incident", priority="P3", status="CANCELLED", opened_at="2026-07-08 09:00",
         updated_at="2026-07-08 09:30", closed_at="2026-07-08 09:30", assignee="张伟", assignment_group="桌面组"),
    # office calendar with a WAITING_CUSTOMER pause (Monday 2026-07-13), events only
    dict(ticket_id="INC006", ticket_type="incident", priority="P3", status="RESOLVED", opened_at="2026-07-13 09:00",
         updated_at="2026-07-13 16:00", resolved_at="2026-07-13 16:00", assignee="李娜", assignment_group="网络组",
         category="邮件", diagnosed_category="邮件", satisfaction="较满意", satisfaction_at="2026-07-14 09:00"),
    # still open at as_of, never answered
    dict(ticket_id="INC007", ticket_type="incident", priority="P4", status="IN_PROGRESS", opened_at="2026-07-28 10:00",
         updated_at="2026-07-28 10:00", assignee="王强", assignment_group="系统组"),
    dict(ticket_id="INC008", ticket_type="incident", priority="P2", status="CLOSED", opened_at="2026-07-15 09:00",
         updated_at="2026-07-16 09:00", first_response_at="2026-07-15 09:10", resolved_at="2026-07-15 10:00",
         closed_at="2026-07-15 12:00", assignee="王强", assignment_group="系统组", category="账号",
         diagnosed_category="账号", satisfaction="不满意", satisfaction_at="2026-07-16 09:00"),
    # reopened through its status events
    dict(ticket_id="INC009", ticket_type="incident", priority="P3", status="CLOSED", opened_at="2026-07-20 09:00",
         updated_at="2026-07-22 10:00", resolved_at="2026-07-21 10:00", closed_at="2026-07-22 10:00",
         assignee="王强", assignment_group="系统组", category="存储"),
    # opened in June (outside the window), resolved in July: in the backfill through its resolution
    dict(ticket_id="INC010", ticket_type="incident", priority="P3", status="RESOLVED", opened_at="2026-06-30 23:00",
         updated_at="2026-07-01 10:00", first_response_at="2026-07-01 09:05", resolved_at="2026-07-01 10:00",
         assignee="李娜", assignment_group="网络组"),
    # P1 on 24x7: response 60 min (breached), resolution 3 h (met); satisfaction as a number
    dict(ticket_id="INC011", ticket_type="incident", priority="P1", status="CLOSED", opened_at="2026-07-17 02:00",
         updated_at="2026-07-18 09:00", first_response_at="2026-07-17 03:00", resolved_at="2026-07-17 05:00",
         closed_at="2026-07-17 09:00", assignee="李娜", assignment_group="网络组", satisfaction="4",
         satisfaction_at="2026-07-18 09:00"),
    dict(ticket_id="REQ001", ticket_type="request", priority="P4", status="RESOLVED", opened_at="2026-07-06 09:00",
         updated_at="2026-07-07 12:00", first_response_at="2026-07-06 09:30", resolved_at="2026-07-07 10:00",
         assignee="张伟", assignment_group="桌面组", satisfaction="较满意", satisfaction_at="2026-07-07 12:00"),
    dict(ticket_id="REQ002", ticket_type="request", priority="P3", status="IN_PROGRESS", opened_at="2026-07-20 14:00",
         updated_at="2026-07-20 15:00", first_response_at="2026-07-20 15:00", assignee="张伟", assignment_group="桌面组"),
    # reassigned per the source's count: not a first fix
    dict(ticket_id="REQ003", ticket_type="request", priority="P3", status="CLOSED", opened_at="2026-07-09 10:00",
         updated_at="2026-07-09 12:00", resolved_at="2026-07-09 11:00", closed_at="2026-07-09 12:00",
         assignee="李娜", assignment_group="网络组", reassignment_count=2),
    dict(ticket_id="REQ004", ticket_type="request", priority="P4", status="CLOSED", opened_at="2026-07-22 09:00",
         updated_at="2026-07-23 11:00", resolved_at="2026-07-23 09:00", closed_at="2026-07-23 10:00",
         assignee="王强", assignment_group="系统组", satisfaction="满意", satisfaction_at="2026-07-23 11:00"),
    # no priority, nobody assigned
    dict(ticket_id="REQ005", ticket_type="request", status="RESOLVED", opened_at="2026-07-24 10:00",
         updated_at="2026-07-24 15:00", resolved_at="2026-07-24 15:00"),
    # maintenance: on time (张伟), late (王强), failed (王强), overdue and not done (李娜), not due yet (李娜)
    dict(ticket_id="CHG001", ticket_type="maintenance", priority="P3", status="CLOSED", opened_at="2026-07-06 10:00",
         updated_at="2026-07-11 09:00", resolved_at="2026-07-11 01:30", closed_at="2026-07-11 09:00",
         assignee="张伟", assignment_group="系统组", close_code="successful", planned_start="2026-07-10 20:00",
         planned_end="2026-07-11 02:00", actual_end="2026-07-11 01:30"),
    dict(ticket_id="CHG002", ticket_type="maintenance", priority="P3", status="CLOSED", opened_at="2026-07-13 10:00",
         updated_at="2026-07-16 09:00", resolved_at="2026-07-16 00:30", closed_at="2026-07-16 09:00",
         assignee="王强", assignment_group="系统组", close_code="successful", planned_start="2026-07-15 20:00",
         planned_end="2026-07-15 23:00", actual_end="2026-07-16 00:30"),
    dict(ticket_id="CHG003", ticket_type="maintenance", priority="P3", status="CLOSED", opened_at="2026-07-20 10:00",
         updated_at="2026-07-25 09:00", resolved_at="2026-07-24 22:00", closed_at="2026-07-25 09:00",
         assignee="王强", assignment_group="系统组", close_code="failed", planned_start="2026-07-24 20:00",
         planned_end="2026-07-24 23:00", actual_end="2026-07-24 22:00"),
    dict(ticket_id="CHG004", ticket_type="maintenance", priority="P3", status="NEW", opened_at="2026-07-27 10:00",
         updated_at="2026-07-27 10:00", assignee="李娜", assignment_group="网络组", planned_start="2026-07-30 20:00",
         planned_end="2026-07-30 23:00"),
    dict(ticket_id="CHG005", ticket_type="maintenance", priority="P4", status="NEW", opened_at="2026-07-28 10:00",
         updated_at="2026-07-28 10:00", assignee="李娜", assignment_group="网络组", planned_start="2026-08-05 20:00",
         planned_end="2026-08-05 23:00"),
]

# (ticket_id, local time, kind, value, actor); events of one ticket in time order
_E = [
    ("INC003", "2026-07-03 14:00", "status", "NEW", "系统"),
    ("INC003", "2026-07-03 14:05", "group", "网络组", "调度"),
    ("INC003", "2026-07-03 14:05", "assignee", "李娜", "调度"),
    ("INC003", "2026-07-03 14:20", "response", None, "李娜"),
    ("INC003", "2026-07-03 14:20", "status", "IN_PROGRESS", "李娜"),
    ("INC003", "2026-07-03 15:00", "assignee", "张伟", "调度"),
    ("INC003", "2026-07-03 15:00", "group", "桌面组", "调度"),
    ("INC003", "2026-07-03 19:00", "status", "RESOLVED", "张伟"),
    ("INC003", "2026-07-04 10:00", "status", "CLOSED", "系统"),
    ("INC006", "2026-07-13 09:00", "status", "NEW", "系统"),
    ("INC006", "2026-07-13 09:00", "assignee", "李娜", "调度"),
    ("INC006", "2026-07-13 09:30", "response", None, "李娜"),
    ("INC006", "2026-07-13 09:30", "status", "IN_PROGRESS", "李娜"),
    ("INC006", "2026-07-13 10:00", "status", "WAITING_CUSTOMER", "李娜"),
    ("INC006", "2026-07-13 14:00", "status", "IN_PROGRESS", "李娜"),
    ("INC006", "2026-07-13 16:00", "status", "RESOLVED", "李娜"),
    ("INC009", "2026-07-20 09:00", "status", "NEW", "系统"),
    ("INC009", "2026-07-20 09:15", "status", "IN_PROGRESS", "王强"),
    ("INC009", "2026-07-20 11:00", "status", "RESOLVED", "王强"),
    ("INC009", "2026-07-21 09:00", "status", "IN_PROGRESS", "用户"),
    ("INC009", "2026-07-21 10:00", "status", "RESOLVED", "王强"),
    ("INC009", "2026-07-22 10:00", "status", "CLOSED", "系统"),
]

TICKET_FIELDS = tuple(c for c in TICKET_COLUMNS if c != "source")
_TS_FIELDS = {c.name for c in TICKET_COLUMNS.values() if c.dtype == TS}
_INT_FIELDS = {c.name for c in TICKET_COLUMNS.values() if c.dtype == INT}


# The same export a day later: INC001 was handed to 李娜 and a new incident came in.
_V2_CHANGES = {"INC001": dict(assignee="李娜", assignment_group="网络组", updated_at="2026-07-31 18:00")}
_V2_NEW = [dict(ticket_id="INC012", ticket_type="incident", priority="P2", status="RESOLVED",
                opened_at="2026-07-29 09:00", updated_at="2026-07-29 11:00", first_response_at="2026-07-29 09:05",
                resolved_at="2026-07-29 11:00", assignee="王强", assignment_group="系统组")]


def tickets(v2: bool = False) -> list[dict[str, Any]]:
    """The canonical ticket set, every canonical field present (None when empty); ``v2``: a day later."""
    source = [{**t, **_V2_CHANGES.get(t["ticket_id"], {})} for t in _T] + _V2_NEW if v2 else _T
    return [{f: t.get(f) for f in TICKET_FIELDS} for t in source]


def events() -> list[dict[str, Any]]:
    return [dict(zip(EVENT_FIELDS, e, strict=True)) for e in _E]


def local(text: str) -> pd.Timestamp:
    """A local Asia/Shanghai wall-clock time as a UTC timestamp."""
    return pd.Timestamp(text).tz_localize("Asia/Shanghai").tz_convert("UTC")


def _iso_offset(value: str | None) -> str | None:
    return None if value is None else pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%S+08:00")


def _iso_utc(value: str | None) -> str | None:
    return None if value is None else local(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _naive(value: str | None) -> str | None:
    return None if value is None else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def _rows(records: list[dict], timestamps: set[str], fmt) -> list[dict]:
    return [{k: (fmt(v) if k in timestamps else v) for k, v in r.items()} for r in records]


def write_csv(path: Path, rows: list[dict], fields: tuple[str, ...] | list[str], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# --- one export per format: (files written, the [[sources]] entry) ---------------------------------
def export_canonical_csv(folder: Path, *, v2: bool = False) -> dict[str, Any]:
    """UTF-8 CSV with canonical column names and ISO timestamps carrying +08:00."""
    write_csv(folder / "tickets.csv", _rows(tickets(v2), _TS_FIELDS, _iso_offset), TICKET_FIELDS)
    write_csv(folder / "events.csv", _rows(events(), {"at"}, _iso_offset), EVENT_FIELDS)
    return {"kind": "csv", "path": str(folder / "tickets.csv"), "events_path": str(folder / "events.csv")}


ZH_COLUMNS = {
    "ticket_id": "工单号", "ticket_type": "工单类型", "priority": "优先级", "status": "状态",
    "opened_at": "创建时间", "updated_at": "更新时间", "first_response_at": "首次响应时间", "resolved_at": "解决时间",
    "closed_at": "关闭时间", "assignee": "处理人", "assignment_group": "处理组", "reopen_count": "重开次数",
    "reassignment_count": "转派次数", "category": "分类", "diagnosed_category": "初步诊断", "close_code": "关闭代码",
    "satisfaction": "满意度", "satisfaction_at": "评价时间", "planned_start": "计划开始", "planned_end": "计划结束",
    "actual_end": "实际结束", "caused_by": "引发变更", "client": "客户", "service": "业务系统",
}
ZH_EVENT_COLUMNS = {"ticket_id": "工单号", "at": "时间", "kind": "变更类型", "value": "新值", "actor": "操作人"}
ZH_STATUS = {"新建": "NEW", "处理中": "IN_PROGRESS", "等待客户": "WAITING_CUSTOMER", "已解决": "RESOLVED",
             "已关闭": "CLOSED", "已取消": "CANCELLED"}
ZH_TYPE = {"故障": "incident", "服务请求": "request", "运维任务": "maintenance"}
ZH_PRIORITY = {"紧急": "P1", "高": "P2", "中": "P3", "低": "P4"}
ZH_KIND = {"状态": "status", "处理人": "assignee", "处理组": "group", "响应": "response", "分类": "category"}


def _reverse(mapping: dict[str, str]) -> dict[str, str]:
    return {v: k for k, v in mapping.items()}


def export_gbk_csv(folder: Path) -> dict[str, Any]:
    """GBK CSV as Chinese Excel/WPS writes it: Chinese headers, statuses, types and priorities, and
    naive local timestamps (the source declares its timezone)."""
    status, kind = _reverse(ZH_STATUS), _reverse(ZH_KIND)
    ticket_type, priority = _reverse(ZH_TYPE), _reverse(ZH_PRIORITY)
    rows = []
    for t in _rows(tickets(), _TS_FIELDS, _naive):
        t = dict(t, status=status[t["status"]], ticket_type=ticket_type[t["ticket_type"]],
                 priority=priority.get(t["priority"]))
        rows.append({ZH_COLUMNS[k]: v for k, v in t.items()})
    write_csv(folder / "工单.csv", rows, list(ZH_COLUMNS.values()), encoding="gbk")
    ev = []
    for e in _rows(events(), {"at"}, _naive):
        value = status[e["value"]] if e["kind"] == "status" else e["value"]
        ev.append({ZH_EVENT_COLUMNS[k]: v for k, v in dict(e, kind=kind[e["kind"]], value=value).items()})
    write_csv(folder / "历史.csv", ev, list(ZH_EVENT_COLUMNS.values()), encoding="gbk")
    return {"kind": "csv", "path": str(folder / "工单.csv"), "events_path": str(folder / "历史.csv"),
            "timezone": "Asia/Shanghai", "columns": ZH_COLUMNS, "event_columns": ZH_EVENT_COLUMNS,
            "status_map": ZH_STATUS, "type_map": ZH_TYPE, "priority_map": ZH_PRIORITY, "event_kind_map": ZH_KIND}


def export_xlsx(folder: Path) -> dict[str, Any]:
    """One workbook: sheet 工单 with real datetime and integer cells, sheet 历史 with the events."""
    def as_datetime(value: str | None) -> datetime | None:
        return None if value is None else pd.Timestamp(value).to_pydatetime()

    ticket_frame = pd.DataFrame(_rows(tickets(), _TS_FIELDS, as_datetime), columns=list(TICKET_FIELDS), dtype=object)
    event_frame = pd.DataFrame(_rows(events(), {"at"}, as_datetime), columns=list(EVENT_FIELDS), dtype=object)
    path = folder / "tickets.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        ticket_frame.to_excel(writer, sheet_name="工单", index=False)
        event_frame.to_excel(writer, sheet_name="历史", index=False)
    return {"kind": "excel", "path": str(path), "sheet": "工单", "events_sheet": "历史", "timezone": "Asia/Shanghai"}


def export_json(folder: Path) -> dict[str, Any]:
    """A JSON array per file; timestamps in UTC with ``Z``, counts and numeric survey answers as JSON
    numbers, empty as null."""
    records = [dict(t, satisfaction=int(t["satisfaction"])) if str(t["satisfaction"]).isdigit() else t
               for t in _rows(tickets(), _TS_FIELDS, _iso_utc)]
    (folder / "tickets.json").write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    (folder / "events.json").write_text(
        json.dumps(_rows(events(), {"at"}, _iso_utc), ensure_ascii=False), encoding="utf-8")
    return {"kind": "json", "path": str(folder / "tickets.json"), "events_path": str(folder / "events.json")}


def export_ndjson(folder: Path) -> dict[str, Any]:
    """One JSON object per line; +08:00 timestamps; keys with no value left out."""
    def lines(rows: list[dict]) -> str:
        return "".join(json.dumps({k: v for k, v in r.items() if v is not None}, ensure_ascii=False) + "\n"
                       for r in rows)

    (folder / "tickets.ndjson").write_text(lines(_rows(tickets(), _TS_FIELDS, _iso_offset)), encoding="utf-8")
    (folder / "events.ndjson").write_text(lines(_rows(events(), {"at"}, _iso_offset)), encoding="utf-8")
    return {"kind": "ndjson", "path": str(folder / "tickets.ndjson"), "events_path": str(folder / "events.ndjson")}


EXPORTS = {"csv": export_canonical_csv, "gbk": export_gbk_csv, "xlsx": export_xlsx, "json": export_json,
           "ndjson": export_ndjson}


# --- config ------------------------------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def config_text(store: Path, source: dict[str, Any] | None, *, sql_url: str | None = None, extra: str = "") -> str:
    """A complete config: Shanghai reporting, an office calendar (no public holidays, so the numbers
    can be worked out by hand), P1 incidents on 24x7, a scorecard, and ``source`` as the one source."""
    lines = [
        "[store]",
        f"path = {_toml_value(str(store))}",
        f"sql_url = {_toml_value(sql_url or 'sqlite:///' + str(store / 'kpi.sqlite'))}",
        "",
        "[reporting]",
        'timezone = "Asia/Shanghai"',
        'grains = ["day", "week", "month", "quarter"]',
        "min_sample = 2",
        "",
        "[kpi]",
        'default_calendar = "office"',
        'satisfaction_map = { "满意" = 5, "较满意" = 4, "一般" = 3, "较不满意" = 2, "不满意" = 1 }',
        "",
        "[calendars.office]",
        'timezone = "Asia/Shanghai"',
        "hours = { " + ", ".join(f'{d} = ["09:00-12:00", "13:30-18:00"]' for d in ("mon", "tue", "wed", "thu", "fri")) + " }",
        "",
        '[[sla]]\nticket_type = "incident"\npriority = "P1"\nresponse = "30m"\nresolution = "4h"\ncalendar = "24x7"\n',
        '[[sla]]\nticket_type = "incident"\nresponse = "1h"\nresolution = "16h"\n',
        '[[sla]]\nticket_type = "request"\nresponse = "2h"\nresolution = "3d"\n',
        '[[scorecard]]\nkpi = "response_sla_rate"\ntarget = 0.95\nweight = 0.3\n',
        '[[scorecard]]\nkpi = "first_fix_rate"\ntarget = 0.8\nweight = 0.3\n',
        '[[scorecard]]\nkpi = "csat_rate"\ntarget = 0.85\nweight = 0.2\n',
        '[[scorecard]]\nkpi = "induced_incidents"\ntarget = 0\nweight = 0.2\n',
    ]
    if source is not None:
        lines.append("[[sources]]")
        lines.append(f"name = {_toml_value(SOURCE)}")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in source.items())
    return "\n".join(lines) + "\n" + extra


def write_config(path: Path, store: Path, source: dict[str, Any] | None, **kwargs: Any) -> Path:
    path.write_text(config_text(store, source, **kwargs), encoding="utf-8")
    return path


# --- running the CLI -------------------------------------------------------------------------------
@dataclass
class Result:
    code: int
    out: str
    err: str

    def reason_lines(self) -> list[str]:
        """stderr without the JSON log records: what a person is told."""
        return [line for line in self.err.splitlines() if line.strip() and not line.startswith('{"time"')]


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """``itsm-kpi ARGS`` in this process (``pipeline.cli.main``), stdout/stderr captured."""
    from pipeline.cli import main

    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env or {}), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse
            code = int(e.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


def cli_process(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120) -> Result:
    """``itsm-kpi ARGS`` as its own process, the way a scheduler runs it."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ITSM_KPI_")}
    full_env.update(env or {})
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)
    return Result(done.returncode, done.stdout, done.stderr)


def backfill(config: Path, *, sql_url: str | None = None, as_of: str = AS_OF, window=JULY) -> Result:
    env = {"ITSM_KPI_STORE__SQL_URL": sql_url} if sql_url else None
    result = cli("backfill", *window, "--config", str(config), "--as-of", as_of, env=env)
    assert result.code == 0, result.err + result.out
    return result


# --- reading the stores back as comparable rows ----------------------------------------------------
def _value(value: Any, dtype: str) -> Any:
    """One stored value as a plain Python value, whatever store it came from."""
    if value is None or value is pd.NaT or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if dtype == TS:
        ts = pd.Timestamp(value)
        return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).isoformat()
    if dtype == DATE:
        return value.isoformat() if isinstance(value, date) and not isinstance(value, datetime) else \
            pd.Timestamp(value).date().isoformat()
    if dtype == BOOL:
        return bool(value)
    if dtype == INT:
        return int(value)
    if dtype == FLOAT:
        return float(value)
    assert dtype == STR
    return str(value)


def rows(frame: pd.DataFrame, table: str, drop: tuple[str, ...] = ()) -> list[tuple]:
    """The frame's rows as sorted tuples of plain values, in the table's column order."""
    columns = [c for c in PARQUET_COLUMNS[table].values() if c.name not in drop]
    records = frame.to_dict("records")
    out = [tuple(_value(r[c.name], c.dtype) for c in columns) for r in records]
    return sorted(out, key=lambda t: tuple((v is None, str(v)) for v in t))


def frame_of(table: str, data: list[tuple], drop: tuple[str, ...] = ()) -> pd.DataFrame:
    columns = [c for c in PARQUET_COLUMNS[table] if c not in drop]
    return pd.DataFrame(data, columns=columns)


def read_sql(url: str, table: str) -> pd.DataFrame:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return pd.read_sql(text(f'SELECT * FROM "{table}"'), conn)
    finally:
        engine.dispose()


def read_pyarrow(store: Path, table: str) -> pd.DataFrame:
    part = PARTITION_BY.get(table)
    partitioning = ds.partitioning(pa.schema([(part, pa.string())]), flavor="hive") if part else None
    data = ds.dataset(str(store / table), format="parquet", partitioning=partitioning).to_table()
    return pd.DataFrame({name: data.column(name).to_pylist() for name in data.column_names})


def read_duckdb(store: Path, table: str) -> pd.DataFrame:
    glob = str(store / table / "**" / "*.parquet")
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        query = f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true, hive_types_autocast = false)"
        data = con.sql(query).to_arrow_table()  # Arrow: timestamps stay UTC instants (no pytz needed)
    return pd.DataFrame({name: data.column(name).to_pylist() for name in data.column_names})


def table_rows(store: Path, url: str, table: str, drop: tuple[str, ...] = ()) -> list[tuple]:
    """The table's rows, asserted equal in SQL, pyarrow.dataset and DuckDB; returned once."""
    from_sql = rows(read_sql(url, table), table, drop)
    from_arrow = rows(read_pyarrow(store, table), table, drop)
    from_duckdb = rows(read_duckdb(store, table), table, drop)
    assert from_sql == from_arrow, f"{table}: SQL and Parquet (pyarrow) differ"
    assert from_sql == from_duckdb, f"{table}: SQL and Parquet (DuckDB) differ"
    keys = TABLE_KEYS.get(table)
    if keys:
        names = [c for c in PARQUET_COLUMNS[table] if c not in drop]
        key_values = [tuple(r[names.index(k)] for k in keys) for r in from_sql]
        assert len(key_values) == len(set(key_values)), f"{table}: a key appears twice"
    return from_sql


def snapshot(store: Path, url: str, tables=(*OUTPUT_TABLES, "rejected_rows"), drop=()) -> dict[str, list[tuple]]:
    """Every output table, read back from both stores (which must agree)."""
    return {t: table_rows(store, url, t, drop) for t in tables}


def parquet_only(store: Path, table: str) -> list[tuple]:
    return rows(read_pyarrow(store, table), table)


def by_key(table: str, data: list[tuple], **key: Any) -> dict[str, Any]:
    """The one row of ``data`` whose columns equal ``key``, as a dict."""
    names = list(PARQUET_COLUMNS[table])
    hits = [dict(zip(names, r, strict=True)) for r in data
            if all(r[names.index(k)] == v for k, v in key.items())]
    assert len(hits) == 1, f"{table}: {len(hits)} rows match {key}"
    return hits[0]


def run_rows(url: str) -> list[dict[str, Any]]:
    frame = read_sql(url, "pipeline_runs").sort_values(["started_at", "run_id"])
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in frame.to_dict("records")]

