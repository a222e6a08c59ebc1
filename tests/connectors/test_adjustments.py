"""connectors.adjustments: approvals files (KPIS.md 1.4) in Excel, CSV and JSON, read like a source's files.

Real files in tmp_path. The approvals name tickets of one source ``hd`` (INC1, INC2; INC9 is unknown);
times without an offset are Asia/Shanghai (UTC+8) wall-clock times.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook

from connectors.adjustments import read_approvals
from connectors.errors import AdjustmentsError

HEADERS = ["工单号", "豁免范围", "原因", "审批人", "审批时间"]
COLUMNS = {"ticket_id": "工单号", "scope": "豁免范围", "reason": "原因", "approved_by": "审批人", "approved_at": "审批时间"}
SCOPES = {"响应": "response", "解决": "resolution", "整单": "ticket"}
KNOWN = pd.DataFrame({"source": ["hd", "hd", "other"], "ticket_id": ["INC1", "INC2", "INC1"]})


@dataclass
class Approvals:
    """An [adjustments] section as the pipeline's settings hold it."""

    path: str
    timezone: str | None = "Asia/Shanghai"
    columns: dict = field(default_factory=lambda: dict(COLUMNS))
    scope_map: dict = field(default_factory=lambda: dict(SCOPES))


def workbook(path: Path, rows: list[list], headers: list[str] = HEADERS) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(headers)
    for r in rows:
        sheet.append(r)
    book.save(path)
    return path


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_an_excel_sheet_with_chinese_headers_and_its_scope_labels(tmp_path: Path) -> None:
    import datetime as dt

    workbook(tmp_path / "2026-08.xlsx", [
        ["INC1", "响应", "客户原因", "王主任", dt.datetime(2026, 8, 20, 15, 30)],  # a date cell: 07:30Z
        ["INC2", "整单", "不可抗力", "王主任", "2026-08-21 09:00"],  # text without offset: 01:00Z
        ["INC2", "resolution", "第三方原因", "李处长", "2026-08-22T10:00:00+08:00"],  # canonical scope, offset: 02:00Z
    ])
    read = read_approvals(Approvals(str(tmp_path / "*.xlsx")), ("hd",), KNOWN)
    got = read.approvals[["source", "ticket_id", "scope", "reason", "approved_by", "approved_at"]].values.tolist()
    assert got == [["hd", "INC1", "response", "客户原因", "王主任", utc("2026-08-20 07:30")],
                   ["hd", "INC2", "ticket", "不可抗力", "王主任", utc("2026-08-21 01:00")],
                   ["hd", "INC2", "resolution", "第三方原因", "李处长", utc("2026-08-22 02:00")]]
    assert read.rejected.empty
    assert [(f.file, f.rows_read, f.rows_rejected) for f in read.files] == [(str(tmp_path / "2026-08.xlsx"), 3, 0)]


def test_bad_rows_are_rejected_with_their_reason_and_never_kept(tmp_path: Path) -> None:
    workbook(tmp_path / "a.xlsx", [
        ["INC1", "整体", "客户原因", "王主任", "2026-08-20 15:30"],  # a scope neither mapped nor canonical
        ["INC1", "解决", None, "王主任", "2026-08-20 15:30"],  # no reason
        ["INC1", "解决", "客户原因", None, "2026-08-20 15:30"],  # no approver
        ["INC1", "解决", "客户原因", "王主任", "八月二十日"],  # a time that cannot be read
        ["INC9", "解决", "客户原因", "王主任", "2026-08-20 15:30"],  # a ticket the raw layer does not hold
        ["INC2", "解决", "客户原因", "王主任", "2026-08-20 15:30"],  # the one good row
    ])
    read = read_approvals(Approvals(str(tmp_path / "a.xlsx")), ("hd",), KNOWN)
    assert read.rejected["reason"].tolist() == ["unknown scope '整体'", "missing reason", "missing approved_by",
                                                "unparseable approved_at '八月二十日'", "unknown ticket 'INC9'"]
    assert set(read.rejected["row_kind"]) == {"adjustment"} and set(read.rejected["source"]) == {"adjustments"}
    raw = json.loads(read.rejected["raw"].iloc[0])
    assert raw["file"] == str(tmp_path / "a.xlsx") and raw["豁免范围"] == "整体"  # the row as read, and its file
    assert read.approvals["ticket_id"].tolist() == ["INC2"]
    assert (read.files[0].rows_read, read.files[0].rows_rejected) == (6, 5)  # read = used + rejected


def test_the_same_approval_twice_in_a_file_is_kept_once_the_earliest(tmp_path: Path) -> None:
    workbook(tmp_path / "a.xlsx", [["INC1", "解决", "later", "王主任", "2026-08-25 09:00"],
                                   ["INC1", "解决", "earlier", "李处长", "2026-08-20 15:30"]])
    read = read_approvals(Approvals(str(tmp_path / "a.xlsx")), ("hd",), KNOWN)
    assert read.approvals[["reason", "approved_at"]].values.tolist() == [["earlier", utc("2026-08-20 07:30")]]
    assert read.rejected.empty  # a repeated approval is not bad input


def test_several_sources_need_the_source_column(tmp_path: Path) -> None:
    workbook(tmp_path / "a.xlsx", [["INC1", "解决", "客户原因", "王主任", "2026-08-20 15:30"]])
    with pytest.raises(AdjustmentsError, match=r"a\.xlsx.*`source` \(adjustments\.columns\.source\) not found"):
        read_approvals(Approvals(str(tmp_path / "a.xlsx")), ("hd", "other"), KNOWN)
    workbook(tmp_path / "b.xlsx", [["other", "INC1", "解决", "客户原因", "王主任", "2026-08-20 15:30"],
                                   ["nowhere", "INC1", "解决", "客户原因", "王主任", "2026-08-20 15:30"],
                                   [None, "INC1", "解决", "客户原因", "王主任", "2026-08-20 15:30"]],
             headers=["来源", *HEADERS])
    cfg = Approvals(str(tmp_path / "b.xlsx"), columns={**COLUMNS, "source": "来源"})
    read = read_approvals(cfg, ("hd", "other"), KNOWN)
    assert read.approvals[["source", "ticket_id"]].values.tolist() == [["other", "INC1"]]
    assert read.rejected["reason"].tolist() == ["unknown source 'nowhere'", "missing source"]


def test_a_file_that_cannot_be_read_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(AdjustmentsError) as caught:
        read_approvals(Approvals(str(tmp_path / "*.xlsx")), ("hd",), KNOWN)
    assert str(tmp_path / "broken.xlsx") in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_column_stops_naming_the_file_and_the_setting(tmp_path: Path) -> None:
    workbook(tmp_path / "a.xlsx", [["INC1", "解决", "王主任", "2026-08-20 15:30"]],
             headers=["工单号", "豁免范围", "审批人", "审批时间"])
    with pytest.raises(AdjustmentsError, match=r"a\.xlsx.*`原因` \(adjustments\.columns\.reason\) not found"):
        read_approvals(Approvals(str(tmp_path / "a.xlsx")), ("hd",), KNOWN)


def test_times_without_offset_need_the_timezone(tmp_path: Path) -> None:
    workbook(tmp_path / "a.xlsx", [["INC1", "解决", "客户原因", "王主任", "2026-08-20 15:30"]])
    with pytest.raises(AdjustmentsError, match="adjustments.timezone"):
        read_approvals(Approvals(str(tmp_path / "a.xlsx"), timezone=None), ("hd",), KNOWN)


def test_csv_in_gbk_and_json_are_read_too(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(("工单号,豁免范围,原因,审批人,审批时间\n"
                                      "INC1,解决,客户原因,王主任,2026-08-20 15:30\n").encode("gbk"))
    (tmp_path / "b.json").write_text(json.dumps([{"工单号": "INC2", "豁免范围": "响应", "原因": "第三方原因",
                                                  "审批人": "李处长", "审批时间": "2026-08-21T09:00:00+08:00"}],
                                                ensure_ascii=False), encoding="utf-8")
    read = read_approvals(Approvals(str(tmp_path)), ("hd",), KNOWN)  # a folder: every CSV, Excel and JSON file
    assert read.approvals[["ticket_id", "scope", "reason", "approved_at"]].values.tolist() == [
        ["INC1", "resolution", "客户原因", utc("2026-08-20 07:30")],
        ["INC2", "response", "第三方原因", utc("2026-08-21 01:00")]]


def test_files_already_read_are_skipped_by_path_and_checksum(tmp_path: Path) -> None:
    path = workbook(tmp_path / "a.xlsx", [["INC1", "解决", "客户原因", "王主任", "2026-08-20 15:30"]])
    first = read_approvals(Approvals(str(path)), ("hd",), KNOWN)
    again = read_approvals(Approvals(str(path)), ("hd",), KNOWN, skip={f.key for f in first.files})
    assert again.approvals.empty and again.files == []
    workbook(path, [["INC1", "响应", "客户原因", "王主任", "2026-08-20 15:30"]])  # changed: a new version
    changed = read_approvals(Approvals(str(path)), ("hd",), KNOWN, skip={f.key for f in first.files})
    assert changed.approvals["scope"].tolist() == ["response"]


def test_a_glob_with_no_files_yet_is_no_approvals_and_a_warning(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="connectors.adjustments"):
        read = read_approvals(Approvals(str(tmp_path / "exemptions" / "*.xlsx")), ("hd",), KNOWN)
    assert read.approvals.empty and read.files == []
    assert [r.levelname for r in caplog.records] == ["WARNING"]
