"""End to end through the real ``itsm-kpi`` command: one hand-made ticket set (tests/pipeline/e2e_helpers.py)
exported as canonical CSV, GBK CSV with Chinese headers and statuses, Excel, JSON and NDJSON, each
backfilled for July 2026 into SQLite and into PostgreSQL. Every table read back from SQL, from Parquet
through pyarrow.dataset and through DuckDB must be the same rows, and the same for every format. A few
numbers are worked out by hand. Then the exit codes and the one-line reasons of the usual mistakes.
"""

from __future__ import annotations

from pathlib import Path

import e2e_helpers as h
import pyarrow.dataset as ds
import pytest


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The canonical CSV backfilled into SQLite: the tables every other run must equal."""
    folder = tmp_path_factory.mktemp("reference")
    store = folder / "store"
    config = h.write_config(folder / "itsm-kpi.toml", store, h.export_canonical_csv(folder))
    result = h.backfill(config)
    url = f"sqlite:///{store / 'kpi.sqlite'}"
    return {"tables": h.snapshot(store, url), "store": store, "url": url, "out": result.out}


@pytest.mark.parametrize("fmt", list(h.EXPORTS))
def test_every_format_and_database_gives_the_same_tables(fmt: str, sql_url: str, tmp_path: Path, reference) -> None:
    source = h.EXPORTS[fmt](tmp_path)
    store = tmp_path / "store"
    # the file names SQLite; the environment points the run at the database under test
    config = h.write_config(tmp_path / "itsm-kpi.toml", store, source)
    result = h.backfill(config, sql_url=sql_url)

    assert "backfill success: 21 tickets read, 0 rows rejected" in result.out
    tables = h.snapshot(store, sql_url)  # asserts SQL == pyarrow.dataset == DuckDB, table by table
    assert len(tables["ticket_facts"]) == 21
    for table, rows in reference["tables"].items():
        assert tables[table] == rows, f"{fmt} into {sql_url.split(':')[0]}: {table} differs from the canonical CSV"


def test_hand_worked_numbers_for_one_engineer_in_july(reference) -> None:
    kpi = reference["tables"]["kpi_engineer"]

    def row(ticket_type: str) -> dict:
        return h.by_key("kpi_engineer", kpi, grain="month", period_start="2026-07-01", engineer="张伟",
                        ticket_type=ticket_type)

    # 张伟's July incidents: INC001, INC002, INC003 (credited: last assignee before the resolution),
    # INC005 is cancelled -> excluded.  opened 3, resolved 3.
    # first fix: INC001 yes; INC002 reopened (reopen_count 1); INC003 reassigned 李娜 -> 张伟 => 1 / 3.
    # CSAT: INC001 满意 (5) satisfied, INC002 一般 (3) not => 2 answered, 1 satisfied.
    # response SLA: INC001 10 min, INC002 30 min (office, 1h) and INC003 20 min (24x7, 30m) => 3 met.
    # diagnosis: INC001 打印机 -> 打印机 correct, INC002 打印机 -> 网络 wrong, INC003 has none => 2 / 1.
    incidents = row("incident")
    assert (incidents["opened_count"], incidents["resolved_count"], incidents["first_fix_count"]) == (3, 3, 1)
    assert incidents["first_fix_rate"] == pytest.approx(1 / 3, abs=1e-15)
    assert (incidents["csat_answered"], incidents["csat_satisfied"], incidents["csat_rate"]) == (2, 1, 0.5)
    assert (incidents["response_sla_met"], incidents["response_sla_breached"]) == (3, 0)
    assert (incidents["accuracy_assessable"], incidents["accuracy_correct"]) == (2, 1)
    assert incidents["low_sample"] is False  # 3 resolved >= min_sample 2

    # requests: REQ001 (resolved, first fix, 较满意 = 4) and REQ002 (still in progress)
    requests = row("request")
    assert (requests["opened_count"], requests["resolved_count"], requests["first_fix_rate"]) == (2, 1, 1.0)
    assert (requests["csat_answered"], requests["csat_satisfied"]) == (1, 1)

    # maintenance: CHG001 ended 01:30 before its planned 02:00 -> on time; INC004 was caused by it
    maintenance = row("maintenance")
    assert (maintenance["maintenance_due"], maintenance["maintenance_on_time"]) == (1, 1)
    assert maintenance["induced_incidents"] == 1
    assert maintenance["resolved_count"] == 0  # resolved_count counts incidents and requests only


def test_hand_worked_ticket_facts(reference) -> None:
    facts = reference["tables"]["ticket_facts"]

    def fact(ticket_id: str) -> dict:
        return h.by_key("ticket_facts", facts, ticket_id=ticket_id)

    # INC003, P1 on 24x7: opened 14:00, response event 14:20 (1200 s <= 30 min: met),
    # RESOLVED 19:00 (18000 s > 4 h: breached); 李娜/网络组 until 15:00, then 张伟/桌面组.
    inc003 = fact("INC003")
    assert (inc003["engineer"], inc003["team"], inc003["reassigned"]) == ("张伟", "桌面组", True)
    assert (inc003["response_business_s"], inc003["response_sla"]) == (1200, "met")
    assert (inc003["resolution_business_s"], inc003["resolution_sla"]) == (18000, "breached")
    assert inc003["first_fix"] is False
    # INC006, office hours Monday 2026-07-13: [09:00, 16:00) is 3 h + 2.5 h of work, less the
    # WAITING_CUSTOMER pause [10:00, 14:00) = 2 h + 0.5 h of work => 3 h = 10800 s; response 09:30 = 1800 s.
    inc006 = fact("INC006")
    assert (inc006["response_business_s"], inc006["resolution_business_s"]) == (1800, 10800)
    assert inc006["csat_score"] == 4.0
    # INC009: RESOLVED Mon 11:00, reopened Tue 09:00, RESOLVED Tue 10:00: 2 h + 1 h of work (the
    # resolved night is not counted); no response recorded -> the first resolution (2 h) answers it.
    inc009 = fact("INC009")
    assert (inc009["reopen_count"], inc009["reopened"], inc009["first_fix"]) == (1, True, False)
    assert (inc009["resolution_business_s"], inc009["response_business_s"]) == (10800, 7200)
    assert inc009["response_sla"] == "breached"  # 2 h > 1 h
    # INC004 opened and answered on Saturday: 0 business seconds; it was caused by CHG001
    assert (fact("INC004")["response_business_s"], fact("INC004")["induced_incident"]) == (0, True)
    assert fact("INC005")["excluded_reason"] == "cancelled"
    # REQ005, a request without a priority: the request policy names no priority, so it governs it (KPIS.md 3,
    # DECISIONS.md D12). Answered by its resolution Fri 15:00: 10:00-12:00 + 13:30-15:00 = 3.5 h > 2 h: breached;
    # resolution 3.5 h <= 3 d: met.
    req005 = fact("REQ005")
    assert (req005["engineer"], req005["response_policy"], req005["response_sla"]) == ("unassigned", "sla_3", "breached")
    assert (req005["resolution_business_s"], req005["resolution_sla"]) == (12600, "met")
    # maintenance: on time, 1 h 30 late, failed code, overdue and not done, not due at as_of
    on_time = [fact(t)["maintenance_on_time"] for t in ("CHG001", "CHG002", "CHG003", "CHG004", "CHG005")]
    assert on_time == [True, False, False, False, None]
    # every stored timestamp is UTC: opened 2026-07-03 14:00 in Shanghai
    assert inc003["opened_at"] == "2026-07-03T06:00:00+00:00"
    assert inc003["as_of"] == "2026-07-31T16:00:00+00:00"


def test_hand_worked_scorecard(reference) -> None:
    card = reference["tables"]["scorecard"]
    zhang = h.by_key("scorecard", card, grain="month", period_start="2026-07-01", engineer="张伟")
    # over all of 张伟's July tickets: response SLA 5 met / 5 (INC001-003, REQ001-002) -> 1 (capped);
    # first fix 2 / 4 -> 0.5 / 0.8 = 0.625; CSAT 2 / 3 -> (2/3) / 0.85; 1 induced incident -> 0.
    expected = (0.3 * 1 + 0.3 * 0.625 + 0.2 * (2 / 3) / 0.85 + 0.2 * 0) / 1.0 * 100
    assert zhang["score"] == pytest.approx(expected, rel=1e-12)
    assert (zhang["kpis_scored"], zhang["low_sample"]) == (4, False)
    # REQ005 alone: 1 resolved < min_sample 2 -> reported, not ranked
    unassigned = h.by_key("scorecard", card, grain="month", period_start="2026-07-01", engineer="unassigned")
    assert (unassigned["low_sample"], unassigned["rank"]) == (True, None)
    # 李娜: response SLA 3 / 4 (INC011 answered after 60 min; INC010 was opened in June) -> 0.75 / 0.95;
    # first fix 4 / 5 (REQ003 was reassigned) -> 1; CSAT 2 / 2 -> 1 (capped); no induced incident -> 1.
    li = h.by_key("scorecard", card, grain="month", period_start="2026-07-01", engineer="李娜")
    assert li["score"] == pytest.approx((0.3 * 0.75 / 0.95 + 0.3 + 0.2 + 0.2) * 100, rel=1e-12)
    # 王强: response SLA 1 / 4 (INC007 never answered, INC009 and REQ004 answered by their resolution, late);
    # first fix 2 / 3 (INC009 reopened); CSAT 1 / 2 (INC008 不满意); no induced incident.
    wang = h.by_key("scorecard", card, grain="month", period_start="2026-07-01", engineer="王强")
    assert wang["score"] == pytest.approx(
        (0.3 * 0.25 / 0.95 + 0.3 * (2 / 3) / 0.8 + 0.2 * 0.5 / 0.85 + 0.2) * 100, rel=1e-12)
    assert (li["rank"], wang["rank"], zhang["rank"]) == (1, 2, 3)  # 93.7 > 64.66 > 64.44


def test_a_july_backfill_writes_julys_periods_and_the_edge_week_whole(reference) -> None:
    kpi = reference["tables"]["kpi_engineer"]
    periods = {(r[0], r[1]) for r in kpi}
    # 2026-07-01 is a Wednesday: the week of Monday 2026-06-29 is in, recomputed whole
    assert {p for g, p in periods if g == "week"} <= {"2026-06-29", "2026-07-06", "2026-07-13", "2026-07-20",
                                                     "2026-07-27"}
    assert ("week", "2026-06-29") in periods
    assert {p for g, p in periods if g in ("month", "quarter")} == {"2026-07-01"}
    assert all("2026-07-01" <= p <= "2026-07-31" for g, p in periods if g == "day")
    # INC010 opened Tue 2026-06-30 (outside July) and resolved 2026-07-01: its facts are in, it is counted
    # in the edge week as opened and resolved, but no June day or month is written
    li_week = h.by_key("kpi_engineer", kpi, grain="week", period_start="2026-06-29", engineer="李娜",
                       ticket_type="incident")
    assert (li_week["opened_count"], li_week["resolved_count"]) == (1, 1)
    assert ("day", "2026-06-30") not in periods
    assert any(r[1] == "INC010" for r in reference["tables"]["ticket_facts"])


def test_every_table_opens_with_plain_hive_discovery(reference) -> None:
    """CONTRACT: each table is a Hive-partitioned dataset readable by pyarrow.dataset, as an analyst opens it."""
    store = reference["store"]
    for table in (*h.OUTPUT_TABLES, "rejected_rows", "pipeline_runs"):
        dataset = ds.dataset(str(store / table), format="parquet", partitioning="hive")
        assert dataset.count_rows() == len(h.read_sql(reference["url"], table)), table


def test_demo_on_a_fresh_directory(tmp_path: Path) -> None:
    store = tmp_path / "fresh" / "kpi-store"
    result = h.cli("demo", "--store", str(store), "--as-of", "2026-10-01T00:00:00+08:00")

    assert result.code == 0, result.err
    assert "demo success" in result.out
    assert f"Parquet under {store}/" in result.out and str(store / "kpi.sqlite") in result.out
    assert "read_parquet(" in result.out  # and how to query it
    url = f"sqlite:///{store / 'kpi.sqlite'}"
    scorecard = h.table_rows(store, url, "scorecard")
    assert any(r[0] == "quarter" and r[1] == "2026-07-01" for r in scorecard)
    runs = h.run_rows(url)
    assert [(r["kind"], r["status"]) for r in runs] == [("demo", "success")]


# --- the usual mistakes: exit code and one line on stderr, as the console script runs -----------------
def _one_reason(result: h.Result) -> str:
    lines = result.reason_lines()
    assert len(lines) == 1, f"expected one line for the user on stderr, got {lines!r}"
    assert lines[0].startswith("itsm-kpi"), lines
    return lines[0]


def test_missing_config_file_exit_2(tmp_path: Path) -> None:
    result = h.cli_process("backfill", *h.JULY, "--config", str(tmp_path / "nope.toml"), "--as-of", h.AS_OF)
    assert result.code == 2
    assert "nope.toml does not exist" in _one_reason(result)


def test_bad_key_exit_2_names_the_key(tmp_path: Path) -> None:
    source = h.export_canonical_csv(tmp_path)
    # a typo: "timezon" for "timezone" would silently report in UTC
    config = h.write_config(tmp_path / "c.toml", tmp_path / "store", source,
                            extra='\n[schedule]\ncron = "15 1 * * *"\ntimezon = "Asia/Shanghai"\n')
    result = h.cli_process("backfill", *h.JULY, "--config", str(config), "--as-of", h.AS_OF)
    assert result.code == 2, result.err
    assert "schedule.timezon" in _one_reason(result)
    assert not (tmp_path / "store" / "ticket_facts").exists()


def test_unreachable_postgresql_exit_4(tmp_path: Path) -> None:
    source = h.export_canonical_csv(tmp_path)
    config = h.write_config(tmp_path / "c.toml", tmp_path / "store", source)
    nobody = "postgresql+psycopg://kpi@127.0.0.1:1/kpi"  # port 1: connection refused at once
    result = h.cli_process("backfill", *h.JULY, "--config", str(config), "--as-of", h.AS_OF,
                           env={"ITSM_KPI_STORE__SQL_URL": nobody})
    assert result.code == 4
    line = _one_reason(result)
    assert "127.0.0.1:1" in line and "store.sql_url" in line


def test_missing_source_file_exit_3(tmp_path: Path) -> None:
    source = {"kind": "csv", "path": str(tmp_path / "exports" / "tickets.csv")}
    config = h.write_config(tmp_path / "c.toml", tmp_path / "store", source)
    result = h.cli_process("backfill", *h.JULY, "--config", str(config), "--as-of", h.AS_OF)
    assert result.code == 3, result.err
    line = _one_reason(result)
    assert "helpdesk" in line and "tickets.csv" in line
    runs = h.run_rows(f"sqlite:///{tmp_path / 'store' / 'kpi.sqlite'}")
    assert [r["status"] for r in runs] == ["partial"]
    assert "tickets.csv" in runs[0]["error"]


def test_as_of_without_offset_exit_2(tmp_path: Path) -> None:
    source = h.export_canonical_csv(tmp_path)
    config = h.write_config(tmp_path / "c.toml", tmp_path / "store", source)
    result = h.cli_process("backfill", *h.JULY, "--config", str(config), "--as-of", "2026-08-01T00:00:00")
    assert result.code == 2
    assert "no offset" in _one_reason(result)
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(("window", "named"), [
    (("--from", "2026-07-01"), "--to"),                               # --to forgotten
    (("--from", "2026-07-31", "--to", "2026-07-01"), "--to"),         # dates swapped
    (("--from", "2026-07-01", "--to", "2026-07-32"), "2026-07-32"),   # no such date
    (("--quarter", "2026Q5"), "2026Q5"),
])
def test_a_bad_window_exit_2(tmp_path: Path, window: tuple[str, ...], named: str) -> None:
    config = h.write_config(tmp_path / "c.toml", tmp_path / "store", h.export_canonical_csv(tmp_path))
    result = h.cli("backfill", *window, "--config", str(config), "--as-of", h.AS_OF)
    assert result.code == 2
    assert named in result.reason_lines()[-1]
    assert not (tmp_path / "store").exists()
