"""connectors.files: real files of every format in tmp_path, read to text, mapped, read once."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import sys
import types

import pandas as pd
import pytest
from openpyxl import Workbook

from connectors.base import Batch
from connectors.errors import SourceUnreachable
from connectors.files import FileConnector, _text_frame, read_raw_table
from kpis.errors import ConfigError
from kpis.schema import TICKET_COLUMNS, conform

HEADER = ["ticket_id", "ticket_type", "status", "opened_at"]
ROWS = [["INC1", "incident", "NEW", "2026-03-05 10:00:00"], ["INC2", "request", "CLOSED", "2026-03-06 09:30:00"]]
# Asia/Shanghai is UTC+8: 10:00 -> 02:00Z, 09:30 -> 01:30Z
OPENED_UTC = [pd.Timestamp("2026-03-05 02:00", tz="UTC"), pd.Timestamp("2026-03-06 01:30", tz="UTC")]

CN_HEADER = ["工单号", "类型", "状态", "报障时间", "处理人", "满意度"]
CN_ROWS = [["GD-001", "故障", "处理中", "2026-03-05 10:00", "王伟", "满意"],
           ["GD-002", "服务请求", "已关闭", "2026-03-05 11:15", "李娜", "较满意"]]
CN_MAPS = {
    "columns": {"ticket_id": "工单号", "ticket_type": "类型", "status": "状态", "opened_at": "报障时间",
                "assignee": "处理人", "satisfaction": "满意度"},
    "status_map": {"处理中": "IN_PROGRESS", "已关闭": "CLOSED"},
    "type_map": {"故障": "incident", "服务请求": "request"},
}


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- read_raw_table: CSV encodings -------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_encodings_are_detected(write_csv, make_source, encoding):
    path = write_csv("t.csv", CN_HEADER, CN_ROWS, encoding=encoding)
    raw = read_raw_table(path, make_source(**CN_MAPS))
    assert list(raw.columns) == CN_HEADER  # no BOM left on the first header
    assert raw["处理人"].tolist() == ["王伟", "李娜"]
    assert raw["满意度"].tolist() == ["满意", "较满意"]


def test_csv_explicit_encoding(write_csv, make_source):
    path = write_csv("t.csv", CN_HEADER, CN_ROWS, encoding="gbk")
    raw = read_raw_table(path, make_source(encoding="gb18030"))
    assert raw["状态"].tolist() == ["处理中", "已关闭"]


def test_gbk_export_maps_to_canonical_tickets(write_csv, make_source, tmp_path):
    path = write_csv("导出.csv", CN_HEADER, CN_ROWS, encoding="gbk")
    batch = FileConnector(make_source(path=str(path), **CN_MAPS)).pull()
    assert batch.tickets["ticket_id"].tolist() == ["GD-001", "GD-002"]
    assert batch.tickets["status"].tolist() == ["IN_PROGRESS", "CLOSED"]
    assert batch.tickets["ticket_type"].tolist() == ["incident", "request"]
    assert batch.tickets["assignee"].tolist() == ["王伟", "李娜"]
    assert batch.tickets["opened_at"].tolist() == [pd.Timestamp("2026-03-05 02:00", tz="UTC"),
                                                   pd.Timestamp("2026-03-05 03:15", tz="UTC")]
    assert batch.rows_read == 2 and len(batch.rejected) == 0


def test_client_and_service_columns_flow_through_the_columns_map(write_csv, make_source):
    # KPIS.md 1.1 client / service: a mapped source column (客户, 业务系统) and an empty cell (-> null)
    path = write_csv("t.csv", [*CN_HEADER, "客户", "业务系统"],
                     [[*CN_ROWS[0], "ACME", "ERP"], [*CN_ROWS[1], "", "邮件"]])
    maps = dict(CN_MAPS, columns={**CN_MAPS["columns"], "client": "客户", "service": "业务系统"})
    batch = FileConnector(make_source(path=str(path), **maps)).pull()
    assert batch.tickets["client"].tolist()[0] == "ACME" and pd.isna(batch.tickets["client"].tolist()[1])
    assert batch.tickets["service"].tolist() == ["ERP", "邮件"]


def test_csv_values_stay_text_and_empty_cells_survive(write_csv, make_source):
    path = write_csv("t.csv", ["ticket_id", "reopen_count", "close_code"], [["007", "1", ""], ["NA", "", "None"]])
    raw = read_raw_table(path, make_source())
    assert raw["ticket_id"].tolist() == ["007", "NA"]  # no number or NA guessing at read time
    assert raw["close_code"].tolist() == ["", "None"]


def test_blank_rows_are_not_data(tmp_path, make_source):
    path = tmp_path / "t.csv"
    path.write_text("ticket_id,status\nA,NEW\n,\n\nB,NEW\n", encoding="utf-8")
    assert read_raw_table(path, make_source())["ticket_id"].tolist() == ["A", "B"]


def test_gzip_csv(tmp_path, make_source):
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(("\ufeff" + "ticket_id,status\nA,NEW\n").encode("utf-8")))
    raw = read_raw_table(path, make_source())
    assert raw.to_dict("list") == {"ticket_id": ["A"], "status": ["NEW"]}


def test_delimiter_option(tmp_path, make_source):
    path = tmp_path / "t.csv"
    path.write_text("ticket_id;status\nA;NEW\n", encoding="utf-8")
    assert read_raw_table(path, make_source(options={"delimiter": ";"}))["status"].tolist() == ["NEW"]


# --- Excel ---------------------------------------------------------------------------------------

def write_xlsx(path, sheets: dict[str, list[list]]) -> None:
    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    wb.save(path)


def test_excel_cells_become_text(tmp_path, make_source):
    path = tmp_path / "t.xlsx"
    write_xlsx(path, {"工单": [
        ["工单号", "报障时间", "重开次数", "评分", "备注"],
        ["GD-1", dt.datetime(2026, 3, 5, 10, 0), 2, 4.5, None],
        ["GD-2", dt.datetime(2026, 3, 5, 9, 59, 59, 999_998), 0, 5.0, "ok"],
        [None, None, None, None, None],
    ]})
    raw = read_raw_table(path, make_source(kind="excel", sheet="工单"))
    assert raw["工单号"].tolist() == ["GD-1", "GD-2"]
    # day-fraction noise is rounded to the millisecond
    assert raw["报障时间"].tolist() == ["2026-03-05T10:00:00", "2026-03-05T10:00:00"]
    assert raw["重开次数"].tolist() == ["2", "0"]
    assert raw["评分"].tolist() == ["4.5", "5"]
    assert pd.isna(raw["备注"][0]) and raw["备注"][1] == "ok"


def test_excel_tickets_and_events_sheets(tmp_path, make_source):
    path = tmp_path / "export.xlsx"
    write_xlsx(path, {
        "tickets": [HEADER, *ROWS],
        "history": [["ticket_id", "at", "kind", "value"],
                    ["INC1", dt.datetime(2026, 3, 5, 10, 30), "status", "IN_PROGRESS"]],
    })
    cfg = make_source(kind="excel", path=str(path), sheet="tickets", events_sheet="history")
    batch = FileConnector(cfg).pull()
    assert batch.tickets["opened_at"].tolist() == OPENED_UTC
    assert batch.events["at"].tolist() == [pd.Timestamp("2026-03-05 02:30", tz="UTC")]
    assert batch.rows_read == 3
    assert batch.files_read == (f"export.xlsx:{sha(path)}",)


def test_excel_missing_sheet_names_the_setting(tmp_path, make_source):
    path = tmp_path / "t.xlsx"
    write_xlsx(path, {"a": [["x"], ["1"]]})
    with pytest.raises(ConfigError, match=r"sheet.*use one of a"):
        read_raw_table(path, make_source(kind="excel", sheet="b"))


# --- JSON, NDJSON, Parquet ------------------------------------------------------------------------

RECORDS = [
    {"ticket_id": "A", "status": "NEW", "reopen_count": 2, "closed": False, "tags": ["vpn", "网络"], "x": None},
    {"ticket_id": "B", "status": "CLOSED", "reopen_count": 0.0, "closed": True, "extra": {"k": 1}},
]


def test_json_array(tmp_path, make_source):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(RECORDS, ensure_ascii=False), encoding="utf-8")
    raw = read_raw_table(path, make_source(kind="json"))
    assert raw["reopen_count"].tolist() == ["2", "0"]
    assert raw["closed"].tolist() == ["false", "true"]
    assert raw["tags"][0] == '["vpn","网络"]'
    assert raw["extra"][1] == '{"k":1}' and pd.isna(raw["extra"][0])
    assert pd.isna(raw["x"][0])


def test_json_object_with_records_key_gzipped(tmp_path, make_source):
    path = tmp_path / "t.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"count": 2, "tickets": RECORDS}).encode("utf-8")))
    raw = read_raw_table(path, make_source(kind="json", options={"records_key": "tickets"}))
    assert raw["ticket_id"].tolist() == ["A", "B"]


def test_json_object_without_records_key_is_a_config_error(tmp_path, make_source):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"count": 2, "tickets": RECORDS}), encoding="utf-8")
    with pytest.raises(ConfigError, match="records_key.*count, tickets"):
        read_raw_table(path, make_source(kind="json"))


@pytest.mark.parametrize("name", ["t.ndjson", "t.jsonl"])
def test_ndjson(tmp_path, make_source, name):
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in RECORDS) + "\n\n", encoding="utf-8")
    raw = read_raw_table(path, make_source(kind="json"))
    assert raw["ticket_id"].tolist() == ["A", "B"]
    assert raw["tags"][0] == '["vpn","网络"]'


def test_parquet_values_become_text(tmp_path, make_source):
    path = tmp_path / "t.parquet"
    pd.DataFrame({
        "ticket_id": ["A", "B"],
        "opened_at": pd.to_datetime(["2026-03-05 10:00", None]),
        "closed_at": pd.to_datetime(["2026-03-05T02:00:00Z", "2026-03-06T03:00:00Z"]),
        "reopen_count": pd.array([1, None], dtype="Int64"),
        "score": [4.5, 5.0],
    }).to_parquet(path)
    raw = read_raw_table(path, make_source(kind="parquet"))
    assert raw["opened_at"][0] == "2026-03-05T10:00:00" and pd.isna(raw["opened_at"][1])
    assert raw["closed_at"].tolist() == ["2026-03-05T02:00:00+00:00", "2026-03-06T03:00:00+00:00"]
    assert raw["reopen_count"][0] == "1" and pd.isna(raw["reopen_count"][1])
    assert raw["score"].tolist() == ["4.5", "5"]


def test_missing_file_is_unreachable(tmp_path, make_source):
    with pytest.raises(SourceUnreachable, match="does not exist"):
        read_raw_table(tmp_path / "nope.csv", make_source())


# --- FileConnector: folders of daily files, read once -------------------------------------------

def test_directory_of_daily_files_is_read_once_by_checksum(write_csv, make_source, tmp_path):
    day1 = write_csv("exports/tickets-2026-03-05.csv", HEADER, ROWS[:1])
    day2 = write_csv("exports/tickets-2026-03-06.csv", HEADER, ROWS[1:])
    (tmp_path / "exports" / "README.md").write_text("not an export")
    cfg = make_source(path=str(tmp_path / "exports"))

    first = FileConnector(cfg).pull()
    assert first.tickets["ticket_id"].tolist() == ["INC1", "INC2"]  # sorted by name
    assert first.files_read == (f"tickets-2026-03-05.csv:{sha(day1)}", f"tickets-2026-03-06.csv:{sha(day2)}")
    assert first.rows_read == 2

    again = FileConnector(cfg, skip_files=set(first.files_read)).pull()
    assert again.rows_read == 0 and len(again.tickets) == 0 and again.files_read == ()

    write_csv("exports/tickets-2026-03-07.csv", HEADER, [["INC3", "incident", "NEW", "2026-03-07 08:00:00"]])
    third = FileConnector(cfg, skip_files=set(first.files_read)).pull()
    assert third.tickets["ticket_id"].tolist() == ["INC3"]
    assert [k.split(":")[0] for k in third.files_read] == ["tickets-2026-03-07.csv"]


def test_a_changed_file_is_read_again(write_csv, make_source):
    path = write_csv("t.csv", HEADER, ROWS[:1])
    cfg = make_source(path=str(path))
    seen = set(FileConnector(cfg).pull().files_read)
    write_csv("t.csv", HEADER, ROWS)
    batch = FileConnector(cfg, skip_files=seen).pull()
    assert batch.rows_read == 2


def test_glob_with_events_path(write_csv, make_source, tmp_path):
    write_csv("in/a_tickets.csv", HEADER, ROWS[:1])
    write_csv("in/b_tickets.csv", HEADER, ROWS[1:])
    write_csv("in/events.csv", ["ticket_id", "at", "kind", "value"],
              [["INC1", "2026-03-05 10:10:00", "response", ""], ["INC2", "2026-03-06 09:40", "status", "CLOSED"]])
    cfg = make_source(path=str(tmp_path / "in" / "*_tickets.csv"), events_path=str(tmp_path / "in" / "events.csv"))
    batch = FileConnector(cfg).pull()
    assert batch.tickets["opened_at"].tolist() == OPENED_UTC
    assert batch.events["kind"].tolist() == ["response", "status"]
    assert batch.events["seq"].tolist() == [0, 1]
    assert batch.rows_read == 4
    assert len(batch.files_read) == 3


@pytest.mark.parametrize("setting", ["path", "events_path"])
def test_missing_path_is_unreachable_with_the_setting_named(write_csv, make_source, tmp_path, setting):
    good = write_csv("t.csv", HEADER, ROWS)
    paths = {"path": str(good), "events_path": None, setting: str(tmp_path / "missing" / "*.csv")}
    with pytest.raises(SourceUnreachable, match=rf"source hd: {setting} .*no file matches it; check sources\.{setting}"):
        FileConnector(make_source(**paths)).pull()


def test_empty_directory_is_unreachable(tmp_path, make_source):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceUnreachable, match="folder has no export files"):
        FileConnector(make_source(path=str(tmp_path / "empty"))).pull()


def test_layout_dispatch_imports_the_importer_lazily(write_csv, make_source, monkeypatch):
    path = write_csv("activity.csv", ["ticket_id", "what"], [["A", "x"], ["A", "y"], ["B", "z"]])
    seen = {}

    def to_batch(raw, cfg):
        seen["rows"] = raw["what"].tolist()
        tickets = conform(pd.DataFrame({"ticket_id": ["A", "B"], "source": ["hd", "hd"]}), TICKET_COLUMNS)
        return Batch(tickets=tickets)

    monkeypatch.setitem(sys.modules, "connectors.activity", types.SimpleNamespace(to_batch=to_batch))
    batch = FileConnector(make_source(path=str(path), layout="activity")).pull()
    assert seen["rows"] == ["x", "y", "z"]
    assert batch.tickets["ticket_id"].tolist() == ["A", "B"]
    assert batch.rows_read == 3  # the importer did not count: every data row read
    assert batch.files_read == (f"activity.csv:{sha(path)}",)


def test_unknown_layout_is_a_config_error(write_csv, make_source):
    path = write_csv("t.csv", HEADER, ROWS)
    with pytest.raises(ConfigError, match="layout"):
        FileConnector(make_source(path=str(path), layout="wide")).pull()


# --- check ---------------------------------------------------------------------------------------

def test_check_reports_unmapped_values_with_counts_and_writes_nothing(write_csv, make_source, tmp_path):
    path = write_csv("t.csv", ["Number", "State", "ticket_type", "opened_at"], [
        ["1", "Active", "incident", "2026-03-05 10:00"],
        ["2", "Pending", "incident", "2026-03-05 10:00"],
        ["3", "Pending", "incident", "2026-03-05 10:00"],
        ["4", "Held", "incident", "2026-03-05 10:00"],
    ])
    cfg = make_source(path=str(path), columns={"ticket_id": "Number", "status": "State"},
                      status_map={"Active": "IN_PROGRESS"})
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert FileConnector(cfg).check() == [
        "source hd: unmapped status 'Pending' (2 ticket rows)",
        "source hd: unmapped status 'Held' (1 ticket row)",
    ]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_check_reports_missing_column(write_csv, make_source):
    path = write_csv("t.csv", ["ticket_id", "status", "ticket_type"], [["1", "NEW", "incident"]])
    assert FileConnector(make_source(path=str(path))).check() == [
        "source hd: missing column 'opened_at' (source column 'opened_at') (1 ticket row)"]


def test_check_reports_naive_timestamps_without_timezone(write_csv, make_source):
    path = write_csv("t.csv", HEADER, ROWS)
    problems = FileConnector(make_source(path=str(path), timezone=None)).check()
    assert len(problems) == 1 and "timezone" in problems[0] and "is missing" in problems[0]


def test_check_reports_missing_file(make_source, tmp_path):
    problems = FileConnector(make_source(path=str(tmp_path / "nope.csv"))).check()
    assert len(problems) == 1 and "no file matches" in problems[0]


def test_check_of_a_good_source_is_empty(write_csv, make_source):
    path = write_csv("t.csv", HEADER, ROWS)
    assert FileConnector(make_source(path=str(path))).check() == []


def test_typed_timestamps_become_the_text_strftime_wrote() -> None:
    """Parquet/Excel timestamps go to text by Arrow: the same text, seconds floored (before 1970 too)."""
    naive = pd.Series(pd.to_datetime(["2026-03-01 08:00:59.999999", "1969-12-31 23:59:59.5", None,
                                      "1901-01-01 00:00:00.0", "2099-12-31 23:59:59.0"]), dtype="datetime64[us]")
    aware = naive.dt.tz_localize("Asia/Shanghai")
    frame = _text_frame(pd.DataFrame({"naive": naive, "aware": aware}))
    expected_naive = naive.dt.strftime("%Y-%m-%dT%H:%M:%S")
    expected_aware = aware.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S") + "+00:00"
    assert frame["naive"].tolist()[:2] == ["2026-03-01T08:00:59", "1969-12-31T23:59:59"]
    assert frame["naive"].fillna("-").tolist() == expected_naive.fillna("-").tolist()
    assert frame["aware"].fillna("-").tolist() == expected_aware.fillna("-").tolist()
    assert frame["aware"].tolist()[0] == "2026-03-01T00:00:59+00:00" and frame["aware"].isna().tolist()[2]
