"""Approved exemptions and ``explain`` end to end, through the real ``itsm-kpi`` command (KPIS.md 1.4, 3, 4;
CONTRACT.md [adjustments], the adjustments table, explain).

The hand-made ticket set of tests/pipeline/e2e_helpers.py (July 2026, Asia/Shanghai; as_of 2026-08-01 00:00
+08:00) with a manager's approvals sheet in Excel with Chinese headers:

    INC011  响应  approved 07-20 10:00 and again 07-25 (one exemption, the earliest kept)
            P1 on 24x7: response 60 min > 30 min (breached) -> exempt
    INC006  解决  approved 07-15: 09:00-16:00 is 5.5 h of working time, 2.5 h of it waiting for the customer:
            3 h of 16 h (met) -> exempt
    INC007  整单  approved 07-29: open since 07-28, both SLAs breached -> out of every KPI (excluded exempt)
    INC009  响应  approved 08-05, after the as_of: not applied (its response, 2 h > 1 h, stays breached)
    INC999  unknown ticket; INC002 with the scope 整体; INC002 without an approver: rejected
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import e2e_helpers as h
import pandas as pd
import pytest
from openpyxl import Workbook

HEADERS = ["工单号", "豁免范围", "原因", "审批人", "审批时间"]
APPROVALS = [
    ["INC011", "响应", "第三方原因：运营商线路故障", "王主任", dt.datetime(2026, 7, 20, 10, 0)],
    ["INC011", "响应", "第三方原因：运营商线路故障（复核）", "李处长", dt.datetime(2026, 7, 25, 9, 0)],
    ["INC006", "解决", "客户原因：客户要求延后处理", "王主任", "2026-07-15 16:00"],
    ["INC007", "整单", "不可抗力：台风停电", "王主任", "2026-07-29 11:00"],
    ["INC009", "响应", "客户原因：联系不上报障人", "王主任", "2026-08-05 09:00"],
    ["INC999", "解决", "客户原因", "王主任", "2026-07-20 10:00"],
    ["INC002", "整体", "客户原因", "王主任", "2026-07-20 10:00"],
    ["INC002", "解决", "客户原因", None, "2026-07-20 10:00"],
]
ADJUSTMENTS = """
[adjustments]
path = {path}
timezone = "Asia/Shanghai"
columns = {{ ticket_id = "工单号", scope = "豁免范围", reason = "原因", approved_by = "审批人", approved_at = "审批时间" }}
scope_map = {{ "响应" = "response", "解决" = "resolution", "整单" = "ticket" }}
"""


def sheet(path: Path, rows: list[list]) -> Path:
    """An approvals workbook as a manager keeps it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    book = Workbook()
    book.active.title = "豁免审批"
    book.active.append(HEADERS)
    for r in rows:
        book.active.append(r)
    book.save(path)
    return path


def setup(folder: Path, rows: list[list] = APPROVALS) -> tuple[Path, Path, str]:
    """(config, store, SQL URL) of a store over the canonical CSV export with the approvals folder."""
    store = folder / "store"
    if rows is not None:
        sheet(folder / "exemptions" / "2026-07.xlsx", rows)
    extra = ADJUSTMENTS.format(path=json.dumps(str(folder / "exemptions" / "*.xlsx")))
    config = h.write_config(folder / "itsm-kpi.toml", store, h.export_canonical_csv(folder), extra=extra)
    return config, store, f"sqlite:///{store / 'kpi.sqlite'}"


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("approvals")
    config, store, url = setup(folder)
    result = h.cli("run", "--config", str(config), "--as-of", h.AS_OF)
    assert result.code == 0, result.err
    return {"config": config, "store": store, "url": url, "out": result.out, "folder": folder}


def test_the_valid_approvals_are_stored_with_whether_they_applied(ran: dict) -> None:
    rows = h.table_rows(ran["store"], ran["url"], "adjustments")  # SQL == pyarrow == DuckDB
    got = [(r["ticket_id"], r["scope"], r["approved_by"], r["approved_at"], r["applied"])
           for r in (dict(zip(h.frame_of("adjustments", []).columns, row, strict=True)) for row in rows)]
    assert sorted(got) == [
        ("INC006", "resolution", "王主任", "2026-07-15T08:00:00+00:00", True),
        ("INC007", "ticket", "王主任", "2026-07-29T03:00:00+00:00", True),
        ("INC009", "response", "王主任", "2026-08-05T01:00:00+00:00", False),  # after the as_of (07-31T16:00Z)
        ("INC011", "response", "王主任", "2026-07-20T02:00:00+00:00", True),  # the earlier of the two
    ]


def test_bad_approvals_are_rejected_with_their_reasons_and_counted(ran: dict) -> None:
    rejected = [r for r in h.table_rows(ran["store"], ran["url"], "rejected_rows") if r[3] == "adjustment"]
    assert sorted(r[5] for r in rejected) == ["missing approved_by", "unknown scope '整体'", "unknown ticket 'INC999'"]
    run = h.run_rows(ran["url"])[-1]
    assert run["rows_rejected"] == 3
    assert run["rows_read"] == 21 + 22 + 8  # 21 tickets, 22 events (INC003: 9, INC006: 7, INC009: 6), 8 approvals


def test_the_facts_show_the_exemptions(ran: dict) -> None:
    facts = h.table_rows(ran["store"], ran["url"], "ticket_facts")

    def fact(ticket_id: str) -> dict:
        return h.by_key("ticket_facts", facts, ticket_id=ticket_id)

    assert fact("INC011")["response_sla"] == "exempt" and fact("INC011")["response_business_s"] == 3600
    assert fact("INC006")["resolution_sla"] == "exempt" and fact("INC006")["resolution_business_s"] == 10800
    assert (fact("INC007")["excluded_reason"], fact("INC007")["response_sla"]) == ("exempt", None)
    assert fact("INC009")["response_sla"] == "breached"


def test_the_exempt_counts_per_engineer(ran: dict) -> None:
    kpi = h.table_rows(ran["store"], ran["url"], "kpi_engineer")

    def july(engineer: str) -> dict:
        return h.by_key("kpi_engineer", kpi, grain="month", period_start="2026-07-01", engineer=engineer,
                        ticket_type="incident")

    # 李娜's July incidents (INC010 opened in June): INC004 (10 min) and INC006 (30 min) met, INC011 exempt;
    # resolved in July: INC004, INC010, INC011 met, INC006 exempt
    li = july("李娜")
    assert (li["response_sla_met"], li["response_sla_breached"], li["response_sla_exempt"]) == (2, 0, 1)
    assert li["response_sla_rate"] == 1.0
    assert (li["resolution_sla_met"], li["resolution_sla_breached"], li["resolution_sla_exempt"]) == (3, 0, 1)
    # 王强: INC007 is out of every KPI; INC008 (10 min) met, INC009 (2 h > 1 h) breached: its approval is dated
    # after the as_of
    wang = july("王强")
    assert (wang["opened_count"], wang["response_sla_met"], wang["response_sla_breached"]) == (2, 1, 1)
    assert wang["response_sla_exempt"] == 0


def explain(ran: dict, *args: str) -> h.Result:
    return h.cli("explain", *args, "--config", str(ran["config"]))


def test_explain_json_holds_the_stored_row_and_the_timeline(ran: dict) -> None:
    result = explain(ran, "INC006", "--json")
    assert result.code == 0, result.err
    out = json.loads(result.out)
    stored = h.by_key("ticket_facts", h.table_rows(ran["store"], ran["url"], "ticket_facts"), ticket_id="INC006")
    assert out["facts"] == stored and out["matches_stored"] is True
    # INC006 (office calendar, Mon 2026-07-13): NEW 09:00, IN_PROGRESS 09:30, WAITING_CUSTOMER 10:00,
    # IN_PROGRESS 14:00, RESOLVED 16:00: 30 + 30 min, a 4 h wait (10:00-12:00 and 13:30-14:00 of working
    # time: 2.5 h), 2 h
    assert [(s["status"], s["business_s"], s["why"]) for s in out["segments"]] == [
        ("NEW", 1800, "working"), ("IN_PROGRESS", 1800, "working"),
        ("WAITING_CUSTOMER", 9000, "pause"), ("IN_PROGRESS", 7200, "working")]
    assert sum(s["business_s"] for s in out["segments"] if s["counted"]) == stored["resolution_business_s"]
    assert out["segments"][0]["start"] == "2026-07-13T01:00:00+00:00"
    exemption = out["exemptions"][0]
    assert (exemption["scope"], exemption["applied"], exemption["without"], exemption["with"]) == (
        "resolution", True, "met", "exempt")
    assert {c["anchor"] for c in out["credits"]} == {"opened_at", "resolved_at", "satisfaction_at"}


def test_explain_recomputes_every_stored_row_exactly(ran: dict) -> None:
    facts = h.table_rows(ran["store"], ran["url"], "ticket_facts")
    for row in facts:
        ticket_id = row[1]
        result = explain(ran, ticket_id, "--json")
        assert result.code == 0, (ticket_id, result.err)
        out = json.loads(result.out)
        assert out["matches_stored"] is True, (ticket_id, out["differences"])
        counted = sum(s["business_s"] for s in out["segments"] if s["counted"])
        if out["facts"]["resolution_business_s"] is not None:
            assert counted == out["facts"]["resolution_business_s"], ticket_id


def test_explain_for_a_person_in_both_languages(ran: dict) -> None:
    en = explain(ran, "INC011", "--lang", "en")
    assert en.code == 0, en.err
    assert "Response SLA" in en.out and "response_sla: breached -> exempt" in en.out
    zh = explain(ran, "INC007", "--lang", "zh")
    assert "不计入任何指标（排除原因：exempt）" in zh.out and "不可抗力：台风停电" in zh.out


def test_explain_shows_the_times_and_timeline_of_a_ticket_no_policy_matches(ran: dict) -> None:
    lines = explain(ran, "CHG001", "--lang", "en").out.splitlines()
    i = lines.index("Resolution SLA: no SLA policy matches: no verdict; time on the default calendar office")
    # no maintenance policy; no status events: one piece, opened Mon 07-06 10:00 to resolved Sat 07-11 01:30.
    # Office hours (09:00-12:00, 13:30-18:00, no holidays): Mon 2 h + 4 h 30; Tue-Fri 4 x 7 h 30 = 30 h;
    # 36 h 30 = 131400 s, written 1d12h30m; calendar time 4 days 15 h 30
    assert lines[i + 1] == "  resolved 2026-07-11 01:30: 1d12h30m business time (4d15h30m calendar)"
    assert lines[i + 3].split() == ["2026-07-06", "10:00", "->", "2026-07-11", "01:30", "—", "1d12h30m", "working"]
    assert lines[i + 4] == "  counted 1d12h30m = resolution_business_s 131400"


def test_explain_an_unknown_ticket_names_the_closest(ran: dict) -> None:
    result = explain(ran, "INC0111")
    assert result.code == 2
    assert result.reason_lines() == ["itsm-kpi: no ticket INC0111 in any source (helpdesk); did you mean "
                                      "INC001, INC010, INC011?"]
    assert explain(ran, "INC011", "--source", "nope").reason_lines()[0].startswith("itsm-kpi: no source 'nope'")


def test_explain_before_any_run_says_so(tmp_path: Path) -> None:
    result = h.cli("explain", "INC001", "--store", str(tmp_path / "empty"))
    assert result.code == 4
    assert "holds no ticket_facts yet: run `itsm-kpi run`" in result.reason_lines()[0]


def test_an_unreadable_approvals_file_fails_the_run_and_leaves_the_stores_alone(ran: dict, tmp_path: Path) -> None:
    folder = tmp_path
    config, store, url = setup(folder)
    assert h.cli("run", "--config", str(config), "--as-of", h.AS_OF).code == 0
    before = h.snapshot(store, url, tables=(*h.OUTPUT_TABLES, "rejected_rows", "adjustments"))
    (folder / "exemptions" / "2026-08.xlsx").write_bytes(b"PK\x03\x04 a workbook cut short")
    result = h.cli("run", "--config", str(config), "--as-of", "2026-08-02T00:00:00+08:00")
    assert result.code == 2
    assert len(result.reason_lines()) == 1 and "2026-08.xlsx" in result.reason_lines()[0]
    assert h.snapshot(store, url, tables=(*h.OUTPUT_TABLES, "rejected_rows", "adjustments")) == before
    assert h.run_rows(url)[-1]["status"] == "failed"


def test_a_missing_approvals_file_is_a_config_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    extra = ADJUSTMENTS.format(path=json.dumps(str(tmp_path / "豁免.xlsx")))
    config = h.write_config(tmp_path / "itsm-kpi.toml", store, h.export_canonical_csv(tmp_path), extra=extra)
    result = h.cli("run", "--config", str(config), "--as-of", h.AS_OF)
    assert result.code == 2
    assert "adjustments.path" in result.reason_lines()[0] and "does not exist" in result.reason_lines()[0]
    assert not (store / "kpi.sqlite").exists()


def test_a_backfill_at_an_earlier_as_of_reproduces_the_earlier_figures(tmp_path: Path) -> None:
    """Night 1 (as_of 08-01) does not know INC009's exemption, approved 08-05; night 2 (08-06) applies it; a
    backfill of July at 08-01 then gives night 1's July figures again."""
    config, store, url = setup(tmp_path)
    assert h.cli("run", "--config", str(config), "--as-of", h.AS_OF).code == 0
    night1 = _july(store, url)
    assert h.cli("run", "--config", str(config), "--as-of", "2026-08-06T00:00:00+08:00").code == 0
    night2 = _july(store, url)
    assert h.by_key("ticket_facts", h.table_rows(store, url, "ticket_facts"), ticket_id="INC009")["response_sla"] \
        == "exempt"
    assert night2["kpi_engineer"] != night1["kpi_engineer"]
    h.backfill(config)  # July, as_of 08-01
    assert _july(store, url) == night1


def _july(store: Path, url: str) -> dict:
    """ticket_facts and the July month rows, without as_of (August rows come from night 2's later clock:
    CHG005 falls due on 08-05; a backfill of July leaves them)."""
    tables = h.snapshot(store, url, tables=("ticket_facts", "kpi_engineer", "kpi_team"), drop=("as_of",))
    return {"ticket_facts": tables["ticket_facts"],
            **{t: [r for r in tables[t] if r[0] == "month" and r[1] == "2026-07-01"] for t in ("kpi_engineer", "kpi_team")}}


def test_the_demo_applies_its_approvals(tmp_path: Path) -> None:
    assert h.cli("demo", "--store", str(tmp_path / "demo"), "--as-of", "2026-10-15T00:00:00+08:00").code == 0
    result = h.cli("query", "--store", str(tmp_path / "demo"), "SELECT ticket_id, scope, applied FROM v_exemptions "
                   "ORDER BY ticket_id", "--json")
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert [(r["ticket_id"], r["scope"]) for r in rows] == [
        ("INC00004", "response"), ("INC00031", "resolution"), ("INC00034", "resolution"),
        ("INC00089", "resolution"), ("INC00095", "ticket")]
    assert all(r["applied"] for r in rows)
    frame = pd.DataFrame(rows)
    assert len(frame) == 5  # INC00089 was approved twice: one exemption
