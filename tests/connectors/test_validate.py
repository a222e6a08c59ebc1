"""connectors.validate: every quarantine rule, the rows-in = rows-out + rejected invariant, and a
bad-input corpus read from real CSV files through FileConnector."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from connectors.files import FileConnector
from connectors.validate import validate, validate_batch
from kpis.schema import EVENT_COLUMNS, REJECTED_COLUMNS, TICKET_COLUMNS, conform, empty_events, empty_rejected

SAT = {"满意": 5, "较满意": 4, "一般": 3, "较不满意": 2, "不满意": 1}


def ts(text: str | None) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC") if text else pd.NaT


def tickets(*rows: dict) -> pd.DataFrame:
    base = {"source": "hd", "ticket_type": "incident", "status": "NEW", "opened_at": ts("2026-03-05 02:00")}
    return conform(pd.DataFrame([{**base, **r} for r in rows]), TICKET_COLUMNS)


def events(*rows: dict) -> pd.DataFrame:
    base = {"source": "hd", "at": ts("2026-03-05 03:00"), "kind": "status", "value": "IN_PROGRESS"}
    frame = pd.DataFrame([{**base, "seq": i, **r} for i, r in enumerate(rows)])
    return conform(frame, EVENT_COLUMNS)


def run(t: pd.DataFrame, e: pd.DataFrame | None = None, **kw):
    return validate(t, empty_events() if e is None else e, empty_rejected(), satisfaction_map=SAT, **kw)


def reasons(rejected: pd.DataFrame) -> dict[str, str]:
    return dict(zip(rejected["ticket_id"], rejected["reason"], strict=True))


def test_good_rows_pass_unchanged():
    t = tickets({"ticket_id": "A", "satisfaction": "满意"}, {"ticket_id": "B", "satisfaction": "4"})
    e = events({"ticket_id": "A"}, {"ticket_id": "B", "kind": "response", "value": None})
    out_t, out_e, rej = run(t, e)
    assert out_t["ticket_id"].tolist() == ["A", "B"]
    assert out_e["ticket_id"].tolist() == ["A", "B"]
    assert len(rej) == 0
    assert list(out_t.columns) == list(TICKET_COLUMNS) and list(out_e.columns) == list(EVENT_COLUMNS)


@pytest.mark.parametrize(("row", "reason"), [
    ({"ticket_id": None}, "missing ticket_id"),
    ({"ticket_id": "X", "opened_at": pd.NaT}, "missing opened_at"),
    ({"ticket_id": "X", "status": "  "}, "missing status"),
    ({"ticket_id": "X", "ticket_type": None}, "missing ticket_type"),
    ({"ticket_id": "X", "status": "Open"}, "non-canonical status 'Open'"),
    ({"ticket_id": "X", "priority": "High"}, "non-canonical priority 'High'"),
    ({"ticket_id": "X", "ticket_type": "bug"}, "non-canonical ticket_type 'bug'"),
    ({"ticket_id": "X", "satisfaction": "meh"}, "unmappable satisfaction 'meh'"),
    ({"ticket_id": "X", "satisfaction": "7"}, "unmappable satisfaction '7'"),
    ({"ticket_id": "X", "ticket_type": "maintenance", "planned_start": ts("2026-03-06 10:00"),
      "planned_end": ts("2026-03-06 09:00")}, "planned_end before planned_start"),
])
def test_ticket_rules(row, reason):
    out_t, _, rej = run(tickets({"ticket_id": "OK"}, row))
    assert out_t["ticket_id"].tolist() == ["OK"]
    assert rej["reason"].tolist() == [reason]
    assert rej["row_kind"].tolist() == ["ticket"] and rej["source"].tolist() == ["hd"]


def test_missing_required_column_rejects_every_row():
    frame = pd.DataFrame({"ticket_id": ["A", "B"], "source": "hd", "ticket_type": "incident", "status": "NEW"})
    out_t, _, rej = run(frame)
    assert len(out_t) == 0
    assert rej["reason"].tolist() == ["missing column 'opened_at'"] * 2


def test_a_ticket_read_twice_keeps_its_newest_copy_and_the_others_are_superseded_not_rejected():
    t = tickets(
        {"ticket_id": "A", "updated_at": ts("2026-03-05 05:00"), "status": "CLOSED"},
        {"ticket_id": "A", "updated_at": ts("2026-03-05 04:00"), "status": "IN_PROGRESS"},
        {"ticket_id": "A", "updated_at": None, "status": "NEW"},
        {"ticket_id": "A", "source": "other"},  # same id in another source is another ticket
    )
    out = validate_batch(t, empty_events(), empty_rejected(), satisfaction_map=SAT)
    assert out.tickets[["source", "ticket_id", "status"]].values.tolist() == [["hd", "A", "CLOSED"],
                                                                              ["other", "A", "NEW"]]
    assert len(out.rejected) == 0  # CONTRACT.md rejected_rows: a ticket read again is not bad input
    assert out.superseded.values.tolist() == [["hd", "A", False], ["hd", "A", False]]  # older: no conflict


def test_copies_with_the_same_update_are_a_conflict_only_when_they_differ():
    t = tickets({"ticket_id": "A", "updated_at": ts("2026-03-05 05:00"), "status": "NEW"},
                {"ticket_id": "A", "updated_at": ts("2026-03-05 05:00"), "status": "CLOSED"},
                {"ticket_id": "A", "updated_at": ts("2026-03-05 05:00"), "status": "CLOSED"},
                {"ticket_id": "B"}, {"ticket_id": "B"})  # no update time at all: the same copy twice
    out = validate_batch(t, empty_events(), empty_rejected(), satisfaction_map=SAT)
    assert out.tickets[["ticket_id", "status"]].values.tolist() == [["A", "CLOSED"], ["B", "NEW"]]  # the later row
    # A's first copy (NEW) differs from the winner: a conflict; its second CLOSED copy and B's are the same copy
    assert out.superseded.values.tolist() == [["hd", "A", True], ["hd", "A", False], ["hd", "B", False]]


def test_duplicate_ids_with_equal_updates_keep_the_last_row():
    t = tickets({"ticket_id": "A", "status": "NEW"}, {"ticket_id": "A", "status": "IN_PROGRESS"})
    out_t, _, _ = run(t)
    assert out_t["status"].tolist() == ["IN_PROGRESS"]


def test_a_broken_duplicate_does_not_knock_out_the_good_one():
    t = tickets({"ticket_id": "A", "updated_at": ts("2026-03-05 05:00"), "satisfaction": "meh"},
                {"ticket_id": "A", "updated_at": ts("2026-03-05 04:00")})
    out_t, _, rej = run(t)
    assert out_t["updated_at"].tolist() == [ts("2026-03-05 04:00")]
    assert rej["reason"].tolist() == ["unmappable satisfaction 'meh'"]


@pytest.mark.parametrize(("row", "reason"), [
    ({"ticket_id": "Z"}, "event for unknown ticket"),
    ({"ticket_id": "BAD"}, "event for unknown ticket"),  # its ticket was just rejected
    ({"ticket_id": None}, "missing ticket_id"),
    ({"at": None}, "missing at"),
    ({"kind": "comment", "value": "hi"}, "unknown event kind 'comment'"),
    ({"kind": "status", "value": "Open"}, "non-canonical status value 'Open'"),
    ({"kind": "status", "value": None}, "missing status value"),
    ({"kind": "priority", "value": "5"}, "non-canonical priority value '5'"),
])
def test_event_rules(row, reason):
    t = tickets({"ticket_id": "A"}, {"ticket_id": "BAD", "status": "Open"})
    e = events({"ticket_id": "A"}, {"ticket_id": "A", **row})
    _, out_e, rej = run(t, e)
    assert out_e["seq"].tolist() == [0]
    event_rej = rej[rej["row_kind"] == "event"]
    assert event_rej["reason"].tolist() == [reason]


def test_known_tickets_let_events_of_earlier_tickets_through():
    e = events({"ticket_id": "OLD"}, {"ticket_id": "NEW1"})
    known = pd.DataFrame({"source": ["hd"], "ticket_id": ["OLD"]})
    _, out_e, rej = run(tickets({"ticket_id": "T"}), e, known_tickets=known)
    assert out_e["ticket_id"].tolist() == ["OLD"]
    assert rej["reason"].tolist() == ["event for unknown ticket"]


def test_events_of_known_and_unknown_tickets_in_any_order():
    """Events grouped by ticket or interleaved, a ticket read twice (one copy superseded), a ticket known from
    the raw layer, in another source: each event is kept exactly when its (source, ticket_id) is known."""
    t = tickets({"ticket_id": "A", "updated_at": ts("2026-03-05 01:00")}, {"ticket_id": "B"},
                {"ticket_id": "A", "updated_at": ts("2026-03-05 02:00")})
    e = events({"ticket_id": "A"}, {"ticket_id": "A"}, {"ticket_id": "Z"}, {"ticket_id": "B"}, {"ticket_id": "A"},
               {"ticket_id": "OLD"}, {"ticket_id": "OLD", "source": "other"}, {"ticket_id": "Z"}, {"ticket_id": "B"})
    known = pd.DataFrame({"source": ["hd", "hd"], "ticket_id": ["OLD", "A"]})
    _, out_e, rej = run(t, e, known_tickets=known)
    assert out_e["seq"].tolist() == [0, 1, 3, 4, 5, 8]
    assert rej[["ticket_id", "reason"]].values.tolist() == [["Z", "event for unknown ticket"],
                                                            ["OLD", "event for unknown ticket"],
                                                            ["Z", "event for unknown ticket"]]


def test_incoming_rejected_rows_are_kept_and_counts_add_up():
    incoming = conform(pd.DataFrame({"source": ["hd"], "ticket_id": ["M"], "row_kind": ["ticket"],
                                     "raw": ["{}"], "reason": ["unmapped status 'Foo'"]}), REJECTED_COLUMNS)
    t = tickets({"ticket_id": "A"}, {"ticket_id": "A"}, {"ticket_id": None}, {"ticket_id": "B"})
    e = events({"ticket_id": "A"}, {"ticket_id": "M"}, {"ticket_id": "B", "kind": "x"})
    out = validate_batch(t, e, incoming, satisfaction_map=SAT)
    out_t, out_e, rej = out.tickets, out.events, out.rejected
    # 4 = 2 kept + 1 superseded (A again) + 1 rejected (+ the incoming one)
    assert len(t) == len(out_t) + len(out.superseded) + (rej["row_kind"] == "ticket").sum() - 1
    assert len(e) == len(out_e) + (rej["row_kind"] == "event").sum()  # 3 = 1 + 2
    assert rej["reason"].tolist()[0] == "unmapped status 'Foo'"
    assert str(rej["raw"].dtype) == "str" and rej["run_id"].isna().all()


def test_rejected_raw_is_the_canonical_row_as_json():
    t = tickets({"ticket_id": "A", "satisfaction": "meh", "reopen_count": 2})
    _, _, rej = run(t)
    raw = json.loads(rej["raw"][0])
    assert raw["ticket_id"] == "A" and raw["reopen_count"] == 2
    assert raw["opened_at"] == "2026-03-05T02:00:00Z" and raw["closed_at"] is None


# --- the bad-input corpus -------------------------------------------------------------------------

TICKET_HEADER = ["编号", "类型", "优先级", "状态", "创建时间", "更新时间", "重开次数", "满意度", "计划开始", "计划结束"]
# Each row but the good ones breaks one rule; "expect" is the reason written out by hand.
CORPUS = [
    # id, type, priority, status, opened, updated, reopens, satisfaction, planned_start, planned_end -> reason
    (["G1", "故障", "高", "处理中", "2026-03-05 10:00", "2026-03-05 12:00", "0", "满意", "", ""], None),
    (["G2", "变更", "中", "已关闭", "2026-03-05 10:00", "", "", "", "2026-03-06 22:00", "2026-03-07 02:00"], None),
    (["B01", "故障", "高", "处理中", "2026-02-30 10:00", "", "", "", "", ""], "unparseable opened_at '2026-02-30 10:00'"),
    (["B02", "故障", "高", "搁置", "2026-03-05 10:00", "", "", "", "", ""], "unmapped status '搁置'"),
    (["B03", "故障", "紧急", "处理中", "2026-03-05 10:00", "", "", "", "", ""], "unmapped priority '紧急'"),
    (["B04", "咨询", "高", "处理中", "2026-03-05 10:00", "", "", "", "", ""], "unmapped type '咨询'"),
    (["", "故障", "高", "处理中", "2026-03-05 10:00", "", "", "", "", ""], "missing ticket_id"),
    (["B06", "故障", "高", "处理中", "N/A", "", "", "", "", ""], "missing opened_at"),
    (["B07", "故障", "高", "处理中", "2026-03-05 10:00", "2026-03-05 11:00", "", "", "", ""], None),  # superseded
    (["B07", "故障", "高", "已关闭", "2026-03-05 10:00", "2026-03-05 15:00", "", "", "", ""], None),
    (["B08", "故障", "高", "处理中", "2026-03-05 10:00", "", "", "还行吧", "", ""], "unmappable satisfaction '还行吧'"),
    (["B09", "故障", "高", "处理中", "2026-03-05 10:00", "", "两次", "", "", ""], "bad integer reopen_count '两次'"),
    (["B10", "变更", "中", "处理中", "2026-03-05 10:00", "", "", "", "2026-03-07 02:00", "2026-03-06 22:00"],
     "planned_end before planned_start"),
    (["B11", "故障", "高", "处理中", "2026-03-05 10:00", "yesterday", "", "", "", ""], "unparseable updated_at 'yesterday'"),
    (["B12", "故障", "", "?", "2026-03-05 10:00", "", "", "", "", ""], "missing status"),
]
EVENT_HEADER = ["编号", "时间", "字段", "新值"]
EVENT_CORPUS = [
    (["G1", "2026-03-05 10:05", "状态", "处理中"], None),
    (["G1", "2026-03-05 10:01", "首次响应", ""], None),
    (["G404", "2026-03-05 10:05", "状态", "处理中"], "event for unknown ticket"),
    (["B02", "2026-03-05 10:05", "状态", "处理中"], "event for unknown ticket"),  # its ticket was rejected
    (["G1", "2026-03-05 10:05", "备注", "打电话"], "unknown event kind '备注'"),
    (["G1", "下午三点", "状态", "处理中"], "unparseable at '下午三点'"),
    (["G1", "", "状态", "处理中"], "missing at"),
    (["G1", "2026-03-05 10:06", "状态", "暂停"], "unmapped status '暂停'"),
    (["G1", "2026-03-05 10:07", "优先级", "P9"], "unmapped priority 'P9'"),
]


def corpus_source(make_source, write_csv):
    ticket_path = write_csv("corpus/tickets.csv", TICKET_HEADER, [r for r, _ in CORPUS], encoding="gbk")
    events_path = write_csv("corpus/events.csv", EVENT_HEADER, [r for r, _ in EVENT_CORPUS], encoding="utf-8-sig")
    return make_source(
        path=str(ticket_path), events_path=str(events_path),
        columns={"ticket_id": "编号", "ticket_type": "类型", "priority": "优先级", "status": "状态",
                 "opened_at": "创建时间", "updated_at": "更新时间", "reopen_count": "重开次数",
                 "satisfaction": "满意度", "planned_start": "计划开始", "planned_end": "计划结束"},
        event_columns={"ticket_id": "编号", "at": "时间", "kind": "字段", "value": "新值"},
        status_map={"处理中": "IN_PROGRESS", "已关闭": "CLOSED"},
        priority_map={"高": "P1", "中": "P2"},
        type_map={"故障": "incident", "变更": "maintenance"},
        event_kind_map={"状态": "status", "优先级": "priority", "首次响应": "response"},
    )


def test_bad_input_corpus(make_source, write_csv):
    batch = FileConnector(corpus_source(make_source, write_csv)).pull()
    out = validate_batch(batch.tickets, batch.events, batch.rejected, satisfaction_map=SAT)
    out_t, out_e, rej = out.tickets, out.events, out.rejected

    assert out_t["ticket_id"].tolist() == ["G1", "G2", "B07"]
    assert out_t.set_index("ticket_id").loc["B07", "status"] == "CLOSED"  # the newer of the two
    assert out_e["kind"].tolist() == ["status", "response"]
    assert out_e["seq"].tolist() == [0, 1]

    ticket_rej = rej[rej["row_kind"] == "ticket"]
    got = sorted(zip(ticket_rej["ticket_id"].fillna(""), ticket_rej["reason"], strict=True))
    want = sorted((r[0], reason) for r, reason in CORPUS if reason)
    assert got == want
    event_rej = rej[rej["row_kind"] == "event"]
    got = sorted(zip(event_rej["ticket_id"], event_rej["reason"], strict=True))
    want = sorted((r[0], reason) for r, reason in EVENT_CORPUS if reason)
    assert got == want
    kinds = {r.split(" '")[0] for r in rej["reason"]}
    assert len(kinds) >= 12

    # read = used + superseded + rejected, for tickets and events separately and together
    assert out.superseded[["ticket_id", "conflict"]].values.tolist() == [["B07", False]]  # the older B07
    assert len(CORPUS) == len(out_t) + len(out.superseded) + len(ticket_rej)
    assert len(EVENT_CORPUS) == len(out_e) + len(event_rej)
    assert batch.rows_read == len(CORPUS) + len(EVENT_CORPUS) == len(out_t) + len(out.superseded) + len(out_e) + len(rej)
    assert rej["source"].eq("hd").all()
    # raw holds the source row (mapping) or the canonical row (validate), always JSON
    b02 = json.loads(rej.set_index("reason").loc["unmapped status '搁置'", "raw"])
    assert b02["状态"] == "搁置"
