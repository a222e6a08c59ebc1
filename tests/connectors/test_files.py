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
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from openpyxl import Workbook

from connectors.base import Batch
from connectors.errors import SourceUnreachable
from connectors.file_decode import FileRefused
from connectors.file_tables import _drop_blank_rows, _text_frame
from connectors.files import FileConnector, read_raw_table, resolve_files
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


def test_csv_values_that_look_typed_stay_as_written(tmp_path, make_source):
    # every column looks typed (all digits, all offset times): the reader must not infer and cast back
    path = tmp_path / "t.csv"
    path.write_text("ticket_id,opened_at,note,note,\n007,9999-12-31T23:00:00+08:00,a,b,c\n"
                    "010,2026-01-01T00:00:00+08:00,d,e,f\n", encoding="utf-8")
    raw = read_raw_table(path, make_source())
    assert raw.columns.tolist() == ["ticket_id", "opened_at", "note", "note.1", "Unnamed: 4"]  # as pandas names them
    assert raw["ticket_id"].tolist() == ["007", "010"]
    assert raw["opened_at"].tolist() == ["9999-12-31T23:00:00+08:00", "2026-01-01T00:00:00+08:00"]


def test_blank_rows_are_not_data(tmp_path, make_source):
    path = tmp_path / "t.csv"
    path.write_text("ticket_id,status\nA,NEW\n,\n\nB,NEW\n", encoding="utf-8")
    assert read_raw_table(path, make_source())["ticket_id"].tolist() == ["A", "B"]


CELLS = st.sampled_from([None, "", " ", "\t", "\u3000", "A", " x ", "0"])


@hsettings(max_examples=200, deadline=None)
@given(st.integers(1, 4).flatmap(lambda width: st.lists(st.lists(CELLS, min_size=width, max_size=width), max_size=12)))
def test_a_row_is_dropped_exactly_when_every_cell_is_blank(rows):
    width = len(rows[0]) if rows else 2
    frame = pd.DataFrame(rows or None, columns=[f"c{i}" for i in range(width)], dtype="str")

    kept = _drop_blank_rows(frame)

    expected = [row for row in rows if any(cell is not None and cell.strip() for cell in row)]
    assert kept.astype(object).where(kept.notna(), None).values.tolist() == expected
    assert list(kept.index) == list(range(len(expected)))


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


@pytest.mark.parametrize(("text", "records_key", "expected"), [
    ('{"export": "failed", "code": 3}', None, "t.json holds an object (keys: code, export), not an array of records"),
    ('{"count": 0}', "tickets", "t.json holds an object (keys: count), not an array of records under 'tickets'"),
    ("null", None, "t.json holds null, not an array of records"),
    ("5", None, "t.json holds a number, not an array of records"),
    # Python's own limits: nested past its recursion depth, an integer of more than 4300 digits
    ("[" * 100_000 + "]" * 100_000, None, "t.json is not valid JSON: maximum recursion depth exceeded"),
    ('[{"ticket_id": ' + "9" * 5000 + "}]", None, "t.json is not valid JSON: Exceeds the limit (4300 digits)"),
])
def test_a_json_file_without_records_a_setting_could_point_at_is_refused_alone(tmp_path, make_source, text,
                                                                               records_key, expected):
    """One day's export holding an error object, or JSON Python cannot read, refuses that file (the source's
    other files are read): no records_key could make it readable, so it is no config error."""
    path = tmp_path / "t.json"
    path.write_text(text, encoding="utf-8")
    options = {"records_key": records_key} if records_key else {}
    with pytest.raises(FileRefused) as caught:
        read_raw_table(path, make_source(kind="json", options=options))
    assert expected in str(caught.value)


def test_unreadable_ndjson_lines_are_bad_lines_not_a_crash(tmp_path, make_source):
    path = tmp_path / "t.ndjson"
    good = json.dumps(RECORDS[0], ensure_ascii=False)
    path.write_text("\n".join([good, "[" * 100_000 + "]" * 100_000, '{"n": ' + "9" * 5000 + "}"]) + "\n",
                    encoding="utf-8")
    cfg = make_source(kind="json")
    assert read_raw_table(path, cfg)["ticket_id"].tolist() == ["A"]


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


def test_check_reports_missing_column_with_the_headers_found(write_csv, make_source):
    path = write_csv("t.csv", ["ticket_id", "status", "ticket_type"], [["1", "NEW", "incident"]])
    assert FileConnector(make_source(path=str(path))).check() == [
        "source hd: `opened_at` (required; map it with columns.opened_at) not found in t.csv "
        "(headers: ticket_id, status, ticket_type)"]


def test_check_reports_naive_timestamps_without_timezone(write_csv, make_source):
    path = write_csv("t.csv", HEADER, ROWS)
    problems = FileConnector(make_source(path=str(path), timezone=None)).check()
    assert len(problems) == 1 and "timezone" in problems[0] and "is missing" in problems[0]


def test_check_reads_past_an_empty_daily_export_and_names_a_folder_of_empty_ones(write_csv, make_source, tmp_path):
    write_csv("exports/tickets-2026-03-04.csv", HEADER, [])  # a quiet day: a run reads it as 0 rows
    write_csv("exports/tickets-2026-03-05.csv", HEADER, [[*ROWS[0][:2], "Bogus", *ROWS[0][3:]]])
    connector = FileConnector(make_source(path=str(tmp_path / "exports")))
    # the problem in the second file is found: the check did not stop at the first, empty one
    assert connector.check() == ["source hd: unmapped status 'Bogus' (1 ticket row)"]
    write_csv("quiet/tickets-2026-03-04.csv", HEADER, [])
    assert FileConnector(make_source(path=str(tmp_path / "quiet"))).check() == [
        "source hd: tickets-2026-03-04.csv has no data rows"]


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


# --- bad lines: quarantined with file, line and text; the rest is read -----------------------------

GOOD = "ticket_id,ticket_type,status,opened_at\nA,incident,NEW,2026-03-05 10:00\n"
LAST = "D,incident,NEW,2026-03-05 11:00\n"


def pull_one(path, make_source, **overrides) -> Batch:
    """Pull a source made of the one file ``path``; rows read must be rows used plus rows rejected."""
    batch = FileConnector(make_source(path=str(path), **overrides)).pull()
    assert batch.rows_read == len(batch.tickets) + len(batch.events) + len(batch.rejected)
    return batch


def unread(batch: Batch) -> list[tuple]:
    """(row kind, raw JSON as a dict, reason) of each rejected row, in order."""
    return [(r.row_kind, json.loads(r.raw), r.reason) for r in batch.rejected.itertuples()]


def test_an_undecodable_byte_costs_its_line_only(tmp_path, make_source):
    # UTF-8 with Chinese names on most lines; one line carries a Latin-1 é (the byte 0xE9)
    header = b"ticket_id,ticket_type,status,opened_at,assignee\n"
    good = [f"{t},incident,NEW,2026-03-05 10:00,{name}\n".encode() for t, name in (("A", "王伟"), ("B", "李娜"))]
    path = tmp_path / "t.csv"
    path.write_bytes(header + good[0] + b"X,incident,NEW,2026-03-05 10:00,Ren\xe9\n" + good[1])
    batch = pull_one(path, make_source)
    assert batch.tickets["ticket_id"].tolist() == ["A", "B"]
    assert batch.tickets["assignee"].tolist() == ["王伟", "李娜"]
    assert unread(batch) == [("ticket", {"file": str(path), "line": 3, "text": "X,incident,NEW,2026-03-05 10:00,Ren\\xe9"},
                              "line is not valid utf-8 (set sources.encoding if the file uses another encoding)")]
    assert batch.rows_read == 3
    assert batch.files_read == (f"t.csv:{sha(path)}",)  # read, with its bad line quarantined


def test_a_utf8_file_with_one_stray_byte_is_not_read_as_gb18030(tmp_path, make_source):
    # two-character names are 6 UTF-8 bytes = 3 valid GB18030 pairs, and 0x81 'A' is one more: the
    # whole file decodes "cleanly" as GB18030, every name garbled; it is UTF-8 with one bad line
    header = b"ticket_id,ticket_type,status,opened_at,assignee\n"
    rows = [f"{t},incident,NEW,2026-03-05 10:00,{name}\n".encode() for t, name in (("A", "张伟"), ("B", "李娜"))]
    data = header + rows[0] + b"X,incident,NEW,2026-03-05 10:00,\x81A\n" + rows[1]
    data.decode("gb18030")  # the trap is real
    path = tmp_path / "t.csv"
    path.write_bytes(data)
    batch = pull_one(path, make_source)
    assert batch.tickets["assignee"].tolist() == ["张伟", "李娜"]
    assert [(raw["line"], raw["text"]) for _, raw, _ in unread(batch)] == [(3, "X,incident,NEW,2026-03-05 10:00,\\x81A")]


def test_a_gbk_file_with_one_bad_byte_is_still_gbk(tmp_path, make_source):
    text = ",".join(CN_HEADER) + "\n" + "".join(f"GD-{i},故障,处理中,2026-03-05 10:0{i},王伟,满意\n" for i in range(5))
    data = text.encode("gbk").replace(b"GD-3", b"GD-\xff")  # 0xFF is neither GBK nor UTF-8
    (tmp_path / "t.csv").write_bytes(data)
    batch = pull_one(tmp_path / "t.csv", make_source, **CN_MAPS)
    assert batch.tickets["ticket_id"].tolist() == ["GD-0", "GD-1", "GD-2", "GD-4"]
    assert batch.tickets["status"].unique().tolist() == ["IN_PROGRESS"]
    ((kind, raw, reason),) = unread(batch)
    assert raw["line"] == 5 and raw["text"].startswith("GD-\\xff,") and reason.startswith("line is not valid gb18030")


def test_a_file_in_another_encoding_is_refused_naming_the_setting(tmp_path, make_source):
    # Latin-1 accents before commas: neither UTF-8 nor GB18030 reads these lines
    rows = "".join(f"{i},incident,NEW,2026-03-05 10:00,café,\n" for i in range(4))
    path = tmp_path / "t.csv"
    path.write_bytes(("ticket_id,ticket_type,status,opened_at,note,x\n" + rows).encode("latin-1"))
    batch = pull_one(path, make_source)
    assert len(batch.tickets) == 0 and batch.files_read == ()
    ((kind, raw, reason),) = unread(batch)
    assert (kind, raw) == ("file", {"file": str(path)})
    assert reason.startswith("t.csv is neither UTF-8 nor GB18030") and "set sources.encoding" in reason


def test_an_explicit_encoding_keeps_the_lines_it_reads(tmp_path, make_source):
    path = tmp_path / "t.csv"
    path.write_bytes(GOOD.encode() + b"B,incident,\xff,2026-03-05 10:00\n" + LAST.encode())
    batch = pull_one(path, make_source, encoding="utf-8")
    assert batch.tickets["ticket_id"].tolist() == ["A", "D"]
    assert [raw["line"] for _, raw, _ in unread(batch)] == [3]


def test_an_unknown_encoding_is_a_config_error(tmp_path, make_source):
    (tmp_path / "t.csv").write_text(GOOD)
    with pytest.raises(ConfigError, match=r"sources\['hd'\]\.encoding"):
        FileConnector(make_source(path=str(tmp_path / "t.csv"), encoding="klingon")).pull()


@pytest.mark.parametrize(("line", "reason"), [
    ('"B,incident,NEW,2026-03-05 10:00', "unbalanced quote"),  # the quote opens the line
    ('B,incident,NEW,"2026-03-05 10:00', "unbalanced quote"),  # in the last field: Arrow swallowed the rest
    ("B,incident,NEW,2026-03-05 10:00,extra", "wrong number of fields (5, header has 4)"),
    ("B,incident,NEW", "wrong number of fields (3, header has 4)"),
])
def test_a_broken_csv_line_costs_its_line_only(tmp_path, make_source, line, reason):
    path = tmp_path / "t.csv"
    path.write_text(GOOD + line + "\nC,incident,NEW,2026-03-05 10:30\n" + LAST, encoding="utf-8")
    batch = pull_one(path, make_source)
    assert batch.tickets["ticket_id"].tolist() == ["A", "C", "D"]
    ((kind, raw, got),) = unread(batch)
    assert (kind, raw["line"], raw["text"]) == ("ticket", 3, line)
    assert got.startswith(reason)


def test_a_lone_carriage_return_costs_its_line(tmp_path, make_source):
    path = tmp_path / "t.csv"
    path.write_bytes((GOOD + "B,incident,N\rEW,2026-03-05 10:00\n" + LAST).encode())
    batch = pull_one(path, make_source)
    assert batch.tickets["ticket_id"].tolist() == ["A", "D"]
    assert [(raw["line"], reason) for _, raw, reason in unread(batch)] == [
        (3, "unreadable CSV line (a carriage return inside a field)")]


def test_a_header_the_config_reads_twice_refuses_the_file(tmp_path, make_source):
    """Two `status` columns (CLOSED and NEW): which one is the ticket's is a guess, so the file is refused; a
    repeated header the config does not read (two `备注`) is no question."""
    path = tmp_path / "t.csv"
    path.write_text("ticket_id,ticket_type,status,opened_at,status\nA,incident,CLOSED,2026-03-05 10:00,NEW\n",
                    encoding="utf-8")
    batch = pull_one(path, make_source)
    assert len(batch.tickets) == 0
    ((kind, _, reason),) = unread(batch)
    assert (kind, reason) == ("file", "t.csv has the header `status` 2 times and reads one of them: rename or "
                                      "remove the others")
    path.write_text("ticket_id,ticket_type,status,opened_at,备注,备注\nA,incident,CLOSED,2026-03-05 10:00,x,y\n",
                    encoding="utf-8")
    assert pull_one(path, make_source).tickets["status"].tolist() == ["CLOSED"]


def test_a_file_with_classic_mac_line_ends_is_read_as_lines(tmp_path, make_source):
    """CR alone ends every line (old Mac exports): read as the same file with LF, not a crash of the run."""
    path = tmp_path / "t.csv"
    path.write_bytes((GOOD + LAST).replace("\n", "\r").encode())
    batch = pull_one(path, make_source)
    assert batch.tickets["ticket_id"].tolist() == ["A", "D"]
    assert not unread(batch)


def test_multiline_values_are_data_also_when_the_file_is_read_line_by_line(tmp_path, make_source):
    path = tmp_path / "t.csv"
    path.write_text("ticket_id,ticket_type,status,opened_at,close_code\r\n"
                    'A,incident,NEW,2026-03-05 10:00,"first line\r\nsecond, line"\r\n'
                    "B,incident,NEW,2026-03-05 10:00,x,y\r\n"  # one field too many: the slow path
                    'C,incident,NEW,2026-03-05 10:00,"say ""hi"""\r\n', encoding="utf-8")
    batch = pull_one(path, make_source)
    assert batch.tickets["ticket_id"].tolist() == ["A", "C"]
    assert batch.tickets["close_code"].tolist() == ["first line\r\nsecond, line", 'say "hi"']
    assert [(raw["line"], reason) for _, raw, reason in unread(batch)] == [
        (4, "wrong number of fields (6, header has 5)")]


def test_a_value_longer_than_arrows_block_is_data(tmp_path, make_source):
    long = "x" * (3 << 20)  # 3 MiB in one cell
    path = tmp_path / "t.csv"
    path.write_text(f"ticket_id,ticket_type,status,opened_at,close_code\nA,incident,NEW,2026-03-05 10:00,{long}\n")
    batch = pull_one(path, make_source)
    assert batch.tickets["close_code"].tolist() == [long] and len(batch.rejected) == 0


def test_a_nul_byte_costs_its_line(tmp_path, make_source):
    path = tmp_path / "t.csv"
    path.write_text(GOOD + "B,incident,N\x00EW,2026-03-05 10:00\n" + LAST, encoding="utf-8")
    batch = pull_one(path, make_source)
    assert batch.tickets["ticket_id"].tolist() == ["A", "D"]
    assert unread(batch) == [("ticket", {"file": str(path), "line": 3, "text": "B,incident,N\\x00EW,2026-03-05 10:00"},
                              "NUL byte in line")]


def test_ndjson_bad_lines_are_quarantined_with_their_numbers(tmp_path, make_source):
    good = {"ticket_id": "A", "ticket_type": "incident", "status": "NEW", "opened_at": "2026-03-05 10:00",
            "close_code": "x\u2028y"}  # U+2028 is a line break to str.splitlines, not to NDJSON
    path = tmp_path / "t.ndjson"
    path.write_text(json.dumps(good, ensure_ascii=False) + '\n{"ticket_id": "B",\n\n[1, 2]\n'
                    + json.dumps({**good, "ticket_id": "C"}) + "\n", encoding="utf-8")
    batch = pull_one(path, make_source, kind="ndjson")
    assert batch.tickets["ticket_id"].tolist() == ["A", "C"]
    assert batch.tickets["close_code"].tolist()[0] == "x\u2028y"
    assert [(raw["line"], raw["text"], reason.split(" (")[0]) for _, raw, reason in unread(batch)] == [
        (2, '{"ticket_id": "B",', "invalid JSON"), (4, "[1, 2]", "JSON record is an array, not an object")]


def test_a_json_element_that_is_not_an_object_is_quarantined(tmp_path, make_source):
    path = tmp_path / "t.json"
    record = {"ticket_id": "A", "ticket_type": "incident", "status": "NEW", "opened_at": "2026-03-05 10:00"}
    path.write_text(json.dumps([record, 5, {**record, "ticket_id": "B"}]))
    batch = pull_one(path, make_source, kind="json")
    assert batch.tickets["ticket_id"].tolist() == ["A", "B"]
    assert unread(batch) == [("ticket", {"file": str(path), "record": 2, "text": "5"},
                              "JSON record is a number, not an object")]


def test_invalid_json_refuses_the_file(tmp_path, make_source):
    (tmp_path / "t.json").write_text('[{"ticket_id": "A"')
    batch = pull_one(tmp_path / "t.json", make_source, kind="json")
    ((kind, _, reason),) = unread(batch)
    assert kind == "file" and reason.startswith("t.json is not valid JSON")


def test_an_empty_file_is_no_rows_with_a_warning(tmp_path, make_source, caplog):
    (tmp_path / "t.csv").write_bytes(b"")
    batch = pull_one(tmp_path / "t.csv", make_source)
    assert (batch.rows_read, len(batch.rejected)) == (0, 0)
    assert batch.files_read == (f"t.csv:{sha(tmp_path / 't.csv')}",)  # read: there is nothing in it
    assert "t.csv is empty: 0 rows read" in caplog.text


def test_a_header_only_file_is_no_rows(tmp_path, make_source):
    (tmp_path / "t.csv").write_text(GOOD.splitlines()[0] + "\n")
    batch = pull_one(tmp_path / "t.csv", make_source)
    assert (batch.rows_read, len(batch.rejected), len(batch.files_read)) == (0, 0, 1)


# --- files that cannot be read: refused, the source's other files read -----------------------------

def test_broken_gz_files_are_refused_and_the_others_read(tmp_path, make_source, caplog):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "1.csv").write_text(GOOD)
    (folder / "2.csv.gz").write_bytes(gzip.compress(("ticket_id,ticket_type,status,opened_at\n" + LAST).encode())[:-12])
    (folder / "3.csv.gz").write_text(GOOD.replace("A,", "C,"))  # a plain file named .gz
    batch = pull_one(folder, make_source)
    assert batch.tickets["ticket_id"].tolist() == ["A"]
    assert batch.files_read == (f"1.csv:{sha(folder / '1.csv')}",)  # the broken ones are read again next run
    assert [(kind, raw["file"], reason) for kind, raw, reason in unread(batch)] == [
        ("file", str(folder / "2.csv.gz"),
         "2.csv.gz is truncated: its gzip stream ends early; replace it with a complete copy"),
        ("file", str(folder / "3.csv.gz"),
         "3.csv.gz is not gzip-compressed although its name ends in .gz; rename or replace it")]
    assert batch.rows_read == 3  # one row, and one per refused file
    assert "the next run reads it again" in caplog.text


def test_a_corrupt_workbook_is_refused(tmp_path, make_source):
    (tmp_path / "t.xlsx").write_bytes(b"PK\x03\x04 not really a zip")
    ((kind, _, reason),) = unread(pull_one(tmp_path / "t.xlsx", make_source, kind="excel"))
    assert kind == "file" and reason.startswith("t.xlsx is not a readable Excel workbook")


def test_an_unreadable_header_line_refuses_the_file(tmp_path, make_source):
    (tmp_path / "t.csv").write_bytes(b"ticket_id,caf\xe9\nA,x\n")
    ((kind, _, reason),) = unread(pull_one(tmp_path / "t.csv", make_source))
    assert kind == "file" and reason.startswith("t.csv line 1: the header cannot be read")


# --- headers the config names must be there ----------------------------------------------------

ZH_SOURCE = {"columns": {"ticket_id": "工单号", "ticket_type": "类型", "status": "状态", "opened_at": "创建时间",
                         "resolved_at": "解决时问"},  # 问 for 间: a typo of 解决时间
             "type_map": {"故障": "incident"}, "status_map": {"新建": "NEW"}}


def test_a_misspelt_mapped_header_refuses_the_file_with_the_closest_match(tmp_path, make_source):
    path = tmp_path / "tickets.csv"
    path.write_text("工单号,类型,状态,创建时间,解决时间\nGD-1,故障,新建,2026-03-05 10:00,\n", encoding="utf-8")
    batch = pull_one(path, make_source, **ZH_SOURCE)
    assert len(batch.tickets) == 0 and batch.files_read == ()
    assert unread(batch) == [("file", {"file": str(path)},
                              "`解决时问` (columns.resolved_at) not found in tickets.csv; did you mean `解决时间`? "
                              "(headers: 工单号, 类型, 状态, 创建时间, 解决时间)")]


def test_a_header_the_config_reads_for_another_column_is_no_guess(tmp_path, make_source):
    # closed_at is close to opened_at as text, but it is closed_at: suggesting it would mislead
    path = tmp_path / "t.csv"
    path.write_text("ticket_id,ticket_type,status,closed_at\nA,incident,NEW,2026-03-05 10:00\n")
    ((_, _, reason),) = unread(pull_one(path, make_source))
    assert reason == ("`opened_at` (required; map it with columns.opened_at) not found in t.csv "
                      "(headers: ticket_id, ticket_type, status, closed_at)")


def test_a_misspelt_event_header_refuses_the_events_file_only(tmp_path, make_source):
    tickets = tmp_path / "t.csv"
    tickets.write_text(GOOD)
    events = tmp_path / "e.csv"
    events.write_text("ticket_id,at,kind,value\nA,2026-03-05 10:05,response,\n")
    batch = pull_one(tickets, make_source, events_path=str(events), event_columns={"at": "time"})
    assert batch.tickets["ticket_id"].tolist() == ["A"] and len(batch.events) == 0
    ((kind, _, reason),) = unread(batch)
    assert reason == "`time` (event_columns.at) not found in e.csv (headers: ticket_id, at, kind, value)"
    assert [k.split(":")[0] for k in batch.files_read] == ["t.csv"]


def test_a_banner_without_header_row_refuses_the_file_listing_its_headers(tmp_path, make_source):
    path = tmp_path / "t.csv"
    path.write_text("导出时间: 2026-08-01 00:00\n" + GOOD, encoding="utf-8")
    ((_, _, reason),) = unread(pull_one(path, make_source))
    assert reason == ("none of the headers the config names (ticket_id, ticket_type, status, opened_at) is in t.csv; "
                      "is the header on another line? set options.header_row (headers: 导出时间: 2026-08-01 00:00)")


def test_header_row_skips_a_banner_and_counts_its_lines(tmp_path, make_source):
    path = tmp_path / "t.csv"
    path.write_text("导出时间: 2026-08-01 00:00\n导出人: 王伟\n" + GOOD + "B,incident\n" + LAST, encoding="utf-8")
    batch = pull_one(path, make_source, options={"header_row": 3})
    assert batch.tickets["ticket_id"].tolist() == ["A", "D"]
    assert [raw["line"] for _, raw, _ in unread(batch)] == [5]  # the file's own line number


def test_header_row_in_excel(tmp_path, make_source):
    path = tmp_path / "t.xlsx"
    write_xlsx(path, {"工单": [["导出时间: 2026-08-01"], [], HEADER, *ROWS]})
    batch = pull_one(path, make_source, kind="excel", options={"header_row": 3})
    assert batch.tickets["ticket_id"].tolist() == ["INC1", "INC2"]


@pytest.mark.parametrize("value", [0, "3", True, -1])
def test_a_bad_header_row_is_a_config_error(tmp_path, value):
    from pipeline.settings import Settings  # the option is checked where the config is loaded

    (tmp_path / "t.csv").write_text(GOOD)
    source = {"name": "hd", "kind": "csv", "path": str(tmp_path / "t.csv"), "timezone": "UTC",
              "options": {"header_row": value}}
    with pytest.raises(ConfigError, match=r"options\.header_row"):
        Settings.from_mapping({"store": {"path": str(tmp_path / "store")}, "sources": [source]})


def test_json_may_leave_out_optional_keys_but_not_required_ones(tmp_path, make_source):
    record = {"ticket_id": "A", "ticket_type": "incident", "status": "NEW", "opened_at": "2026-03-05 10:00"}
    path = tmp_path / "t.json"
    path.write_text(json.dumps([record]))
    # resolved_at is mapped but no record has the key: JSON leaves out empty values, so that is fine
    batch = pull_one(path, make_source, kind="json", columns={"resolved_at": "solved"})
    assert batch.tickets["ticket_id"].tolist() == ["A"] and len(batch.rejected) == 0
    batch = pull_one(path, make_source, kind="json", columns={"opened_at": "created"})
    ((kind, _, reason),) = unread(batch)
    assert kind == "file" and reason.startswith("`created` (columns.opened_at) not found in t.json")


# --- globs: each real file once, symlink loops walked once --------------------------------------

def test_a_symlink_loop_under_a_recursive_glob_reads_each_file_once(tmp_path, make_source):
    (tmp_path / "in" / "day1").mkdir(parents=True)
    (tmp_path / "in" / "day1" / "t.csv").write_text(GOOD)
    (tmp_path / "in" / "day1" / "back").symlink_to(tmp_path / "in")  # a loop
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "u.csv").write_text(GOOD.replace("A,", "B,"))
    (tmp_path / "in" / "linked").symlink_to(tmp_path / "elsewhere")  # a folder linked in: followed
    batch = pull_one(f"{tmp_path}/in/**/*.csv", make_source)
    assert sorted(batch.tickets["ticket_id"]) == ["A", "B"]


def test_two_paths_to_one_file_read_it_once(tmp_path, make_source):
    (tmp_path / "t.csv").write_text(GOOD)
    (tmp_path / "same.csv").symlink_to(tmp_path / "t.csv")
    batch = pull_one(f"{tmp_path}/*.csv", make_source)
    assert batch.tickets["ticket_id"].tolist() == ["A"]


def test_a_recursive_glob_matches_like_glob(tmp_path, make_source):
    for name in ("a/t1.csv", "a/b/t2.csv", "a/.hidden/t3.csv", "a/b/notes.txt.bak", "t0.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(GOOD)
    found = resolve_files(f"{tmp_path}/**/t*.csv", make_source())
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/b/t2.csv", "a/t1.csv", "t0.csv"]
