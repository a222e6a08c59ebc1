"""The report's v2 sections on a hand-made store: per client and service, the daily backlog, time in status
per team, the tickets at risk, and the SLA policy names of the breached tickets (issues #19, #21).

Five incidents, reporting timezone Asia/Shanghai (UTC+8, so a local day D ends at D 16:00 UTC), a 24x7 default
calendar (business time = calendar time), ``as_of`` 2026-04-02 00:00 UTC. Policies, first match wins:
``vip`` (client VIP: response 30 min, resolution 24 h) and ``std`` (incidents: response 1 h, resolution 48 h).
All times below are UTC unless called local.

- A (ann, desk, VIP, Email): opened 03-31 10:00, answered 10:10, in progress. Status NEW 10:00, IN_PROGRESS 10:10.
  Resolution due 10:00 + 24 h = 04-01 10:00 (local 04-01 18:00): breached at as_of, still open.
- B (bob, net, Acme, no service): opened 03-25 00:00, answered 00:30; NEW, WAITING_CUSTOMER 03-28 00:00 (a pause),
  IN_PROGRESS 03-29 00:00, RESOLVED 03-30 12:00. Resolution due when 48 h ran: 03-27 00:00 (before the pause);
  108 business hours at resolution: breached.
- C (bob, net, no client, Email): opened 03-31 15:30, no answer, NEW. Response due 16:30 (local 04-01 00:30),
  breached at as_of; resolution due 04-02 15:30 (local 23:30).
- D (ann, desk, VIP, VPN): opened 03-31 12:00, answered 12:10, in progress, no status events; its resolution
  SLA is exempt (due 04-01 12:00 would be at risk at the end of March and breached at as_of).
- E (cat, desk, Acme, Email): opened 03-31 15:45, NEW, no events; the whole ticket is exempt (excluded).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from report_v2_helpers import write_v2_tables
from test_report import panels, rows, tiles

from kpis import compute_all
from kpis.schema import ADJUSTMENT_COLUMNS, EVENT_COLUMNS, TICKET_COLUMNS, conform
from pipeline.analyst.query import StoreQuery
from pipeline.analyst.report import build_report, parse_period, read_report_data
from pipeline.config import kpi_settings_from_mapping
from pipeline.store import Replacement, Stores

TZ = "Asia/Shanghai"
AS_OF = pd.Timestamp("2026-04-02T00:00:00Z")
SETTINGS = kpi_settings_from_mapping({
    "kpi": {"default_calendar": "24x7"},
    "reporting": {"timezone": TZ},
    "sla": [
        {"name": "vip", "client": "VIP", "response": "30m", "resolution": "24h"},
        {"name": "std", "ticket_type": "incident", "response": "1h", "resolution": "48h"},
    ],
    "scorecard": [{"kpi": "response_sla_rate", "target": 0.9, "weight": 1}],
})
BASE_TABLES = ("ticket_facts", "kpi_engineer", "kpi_team", "scorecard", "scorecard_kpi")


def _utc(text: str | None) -> pd.Timestamp | None:
    return None if text is None else pd.Timestamp(text, tz="UTC")


def _ticket(ticket_id: str, opened: str, status: str, engineer: str, team: str, client: str | None,
            service: str | None, answered: str | None = None, resolved: str | None = None) -> dict:
    return {"source": "helpdesk", "ticket_id": ticket_id, "ticket_type": "incident", "priority": "P3",
            "status": status, "opened_at": _utc(opened), "first_response_at": _utc(answered),
            "resolved_at": _utc(resolved), "assignee": engineer, "assignment_group": team,
            "client": client, "service": service}


def tiny_input() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The five tickets, their status events and the two approved exemptions."""
    tickets = pd.DataFrame([
        _ticket("A", "2026-03-31T10:00", "IN_PROGRESS", "ann", "desk", "VIP", "Email", "2026-03-31T10:10"),
        _ticket("B", "2026-03-25T00:00", "RESOLVED", "bob", "net", "Acme", None, "2026-03-25T00:30",
                "2026-03-30T12:00"),
        _ticket("C", "2026-03-31T15:30", "NEW", "bob", "net", None, "Email"),
        _ticket("D", "2026-03-31T12:00", "IN_PROGRESS", "ann", "desk", "VIP", "VPN", "2026-03-31T12:10"),
        _ticket("E", "2026-03-31T15:45", "NEW", "cat", "desk", "Acme", "Email"),
    ])
    status = [("A", "2026-03-31T10:00", "NEW"), ("A", "2026-03-31T10:10", "IN_PROGRESS"),
              ("B", "2026-03-25T00:00", "NEW"), ("B", "2026-03-28T00:00", "WAITING_CUSTOMER"),
              ("B", "2026-03-29T00:00", "IN_PROGRESS"), ("B", "2026-03-30T12:00", "RESOLVED"),
              ("C", "2026-03-31T15:30", "NEW")]
    events = pd.DataFrame([{"source": "helpdesk", "ticket_id": t, "at": _utc(at), "kind": "status", "value": v,
                            "actor": "", "seq": i} for i, (t, at, v) in enumerate(status)])
    approvals = pd.DataFrame([
        {"source": "helpdesk", "ticket_id": t, "scope": scope, "reason": "客户原因", "approved_by": "lead",
         "approved_at": _utc("2026-04-01T00:00"), "file": "approvals.csv"}
        for t, scope in (("D", "resolution"), ("E", "ticket"))
    ])
    return conform(tickets, TICKET_COLUMNS), conform(events, EVENT_COLUMNS), conform(approvals, ADJUSTMENT_COLUMNS)


def write_tiny_store(root: Path, url: str | None = None, *, v2: bool = True,
                     tickets: pd.DataFrame | None = None) -> str:
    """The base tables of the five tickets (or of ``tickets``, with the same events) committed to a Parquet
    store and a SQL store (default: SQLite beside it), then (``v2``) the v2 tables; returns the SQL URL."""
    given, events, approvals = tiny_input()
    tickets = given if tickets is None else tickets
    tables = compute_all(tickets, events, SETTINGS, AS_OF, approvals)
    url = url or f"sqlite:///{root / 'kpi.sqlite'}"
    stores = Stores(root, url)
    stores.prepare()
    frames = {"ticket_facts": tables.facts, "kpi_engineer": tables.kpi_engineer, "kpi_team": tables.kpi_team,
              "scorecard": tables.scorecard, "scorecard_kpi": tables.scorecard_kpi}
    try:
        stores.commit("tiny", [Replacement(name, frames[name]) for name in BASE_TABLES])
    finally:
        stores.close()
    if v2:
        write_v2_tables(root, url, tickets, events, tables.facts, SETTINGS, AS_OF)
    return url


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("tiny") / "store"
    return root, write_tiny_store(root)


def data_of(tiny: tuple[Path, str], engine: str, period: str = "2026-03"):
    root, url = tiny
    with StoreQuery(store_path=root, sql_url=url, engine=engine) as store:
        return read_report_data(store, parse_period(period), TZ)


def page_of(tiny: tuple[Path, str], tmp_path: Path, lang: str = "en", engine: str = "parquet") -> str:
    root, url = tiny
    out = build_report(root, url, "2026-03", lang, tmp_path / f"r-{lang}.html", engine=engine, timezone=TZ)
    return out.read_text(encoding="utf-8")


ENGINES = ["parquet", "sql"]


# -- the readers, on both engines ----------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_backlog_counts_each_local_day_by_age(tiny: tuple[Path, str], engine: str) -> None:
    backlog = data_of(tiny, engine).backlog.set_index("day")
    assert len(backlog) == 31  # every day of March; kpi_backlog runs to as_of's local date, 04-02
    columns = ["open_count", "age_lt_1d", "age_1_3d", "age_3_7d", "age_7_30d", "age_ge_30d", "overdue_count",
               "paused_count"]
    shown = {str(day): tuple(int(v) for v in r) for day, r in backlog[columns].iterrows()}
    # B, opened 03-25 00:00, is open at each day's end (D 16:00 UTC) until it is resolved 03-30 12:00.
    # Its age there: 16 h, 1 d 16 h, 2 d 16 h, 3 d 16 h, 4 d 16 h. Overdue once past its due 03-27 00:00;
    # paused at the end of 03-28 (WAITING_CUSTOMER from 03-28 00:00 to 03-29 00:00).
    assert shown["2026-03-25"] == (1, 1, 0, 0, 0, 0, 0, 0)
    assert shown["2026-03-26"] == (1, 0, 1, 0, 0, 0, 0, 0)
    assert shown["2026-03-27"] == (1, 0, 1, 0, 0, 0, 1, 0)
    assert shown["2026-03-28"] == (1, 0, 0, 1, 0, 0, 1, 1)
    assert shown["2026-03-29"] == (1, 0, 0, 1, 0, 0, 1, 0)
    assert shown["2026-03-30"] == (0,) * 8
    # 03-31 ends 16:00: A (6 h), D (4 h), C (30 min) and E (15 min; exempt tickets still count) are open;
    # none is overdue (A due 04-01 10:00, C 04-02 15:30, D 04-01 12:00, E excluded: no due time)
    assert shown["2026-03-31"] == (4, 4, 0, 0, 0, 0, 0, 0)
    assert all(shown[f"2026-03-{d:02d}"] == (0,) * 8 for d in range(1, 25))
    assert backlog.loc[pd.Timestamp("2026-03-31").date(), "oldest_opened_at"] == _utc("2026-03-31T10:00")


@pytest.mark.parametrize("engine", ENGINES)
def test_at_risk_after_a_finished_period_looks_a_day_past_its_end(tiny: tuple[Path, str], engine: str) -> None:
    risk = data_of(tiny, engine).at_risk
    # March ends 2026-04-01 00:00 local = 03-31 16:00 UTC, before as_of: the window is [03-31 16:00, 04-01 16:00)
    assert (risk.since, risk.current) == (_utc("2026-03-31T16:00"), False)
    found = risk.tickets[["engineer", "ticket_id", "response_risk", "resolution_risk"]].values.tolist()
    # A: resolution due 04-01 10:00, in the window. C: response due 03-31 16:30, not given by 16:00.
    # D's resolution (due 04-01 12:00) is exempt; E is excluded; B was resolved.
    assert found == [["ann", "A", False, True], ["bob", "C", True, False]]
    assert risk.tickets["resolution_policy"].tolist() == ["vip", "std"]


@pytest.mark.parametrize("engine", ENGINES)
def test_at_risk_in_a_current_period_looks_a_day_past_as_of(tiny: tuple[Path, str], engine: str) -> None:
    root, url = tiny
    with StoreQuery(store_path=root, sql_url=url, engine=engine) as store:
        from pipeline.analyst.report_tables import read_at_risk

        risk = read_at_risk(store, parse_period("2026-04"), AS_OF, TZ)
    # April is not over at as_of 04-02 00:00: the window is [04-02 00:00, 04-03 00:00). Only C's resolution
    # (due 04-02 15:30) falls in it; A's resolution (04-01 10:00) and C's response are already late.
    assert (risk.since, risk.current) == (AS_OF, True)
    assert risk.tickets[["ticket_id", "response_risk", "resolution_risk"]].values.tolist() == [["C", False, True]]


@pytest.mark.parametrize("engine", ENGINES)
def test_time_in_status_is_summed_per_team_of_the_tickets_opened_in_the_period(
    tiny: tuple[Path, str], engine: str
) -> None:
    frame = data_of(tiny, engine).status_time
    got = {(r.team, r.status): (r.business_s, r.tickets) for r in frame.itertuples()}
    # desk: A only (D, E have no status events): NEW 10 min = 600 s; IN_PROGRESS 03-31 10:10 to as_of
    # 04-02 00:00 = 37 h 50 min = 136 200 s.
    # net: B NEW 72 h = 259 200 s + C NEW 03-31 15:30 to as_of = 32.5 h = 117 000 s -> 376 200 s;
    # B WAITING_CUSTOMER 24 h = 86 400 s, IN_PROGRESS 36 h = 129 600 s, RESOLVED 0 s (a final status stops).
    assert got == {
        ("desk", "NEW"): (600, 1), ("desk", "IN_PROGRESS"): (136_200, 1),
        ("net", "NEW"): (376_200, 2), ("net", "WAITING_CUSTOMER"): (86_400, 2),
        ("net", "IN_PROGRESS"): (129_600, 2), ("net", "RESOLVED"): (0, 2),
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_breakdown_rows_are_the_periods_clients_and_services(tiny: tuple[Path, str], engine: str) -> None:
    frame = data_of(tiny, engine).breakdown.set_index(["dimension", "member"])
    cols = ["opened_count", "resolved_count", "response_sla_met", "response_sla_breached",
            "resolution_sla_met", "resolution_sla_breached"]
    got = {k: tuple(int(v) for v in r) for k, r in frame[cols].iterrows()}
    # E is excluded (exempt): in no KPI. A, D answered in 10 min (VIP: 30 min); B in 30 min (std: 1 h);
    # C not answered, breached at as_of. B is the only resolution in March: breached.
    assert got == {
        ("client", "VIP"): (2, 0, 2, 0, 0, 0), ("client", "Acme"): (1, 1, 1, 0, 0, 1),
        ("client", "(none)"): (1, 0, 0, 1, 0, 0),
        ("service", "Email"): (2, 0, 1, 1, 0, 0), ("service", "VPN"): (1, 0, 1, 0, 0, 0),
        ("service", "(none)"): (1, 1, 1, 0, 0, 1),
    }


# -- the page ------------------------------------------------------------------------------------
def test_the_clients_section_shows_each_client_and_service(tiny: tuple[Path, str], tmp_path: Path) -> None:
    panel = panels(page_of(tiny, tmp_path))["By client and service"]
    client, service = ([[c.text.strip() for c in tr.all("td")] for tr in t.all("tbody")[0].all("tr")]
                       for t in panel.all("table"))
    # name, opened, resolved, response met / breached / rate, resolution met / breached / rate, first fix, CSAT;
    # most resolved first, then most opened; (none) last. Judged against the targets: response SLA >= 90 %
    # (the scorecard's), first fix >= 80 % (the scheme's); resolution SLA has none here.
    assert client == [
        ["Acme", "1", "1", "1", "0", "100.0%✓", "0", "1", "0.0%", "100.0%✓", "—"],
        ["VIP", "2", "0", "2", "0", "100.0%✓", "0", "0", "—", "—", "—"],
        ["(none)", "1", "0", "0", "1", "0.0%✗", "0", "0", "—", "—", "—"],
    ]
    assert [r[:6] for r in service] == [
        ["Email", "2", "0", "1", "1", "50.0%✗"], ["VPN", "1", "0", "1", "0", "100.0%✓"],
        ["(none)", "1", "1", "1", "0", "100.0%✓"],
    ]
    assert len(panel.all("svg")) == 1  # resolution SLA per client


def test_the_backlog_section_shows_the_last_and_peak_days(tiny: tuple[Path, str], tmp_path: Path) -> None:
    panel = panels(page_of(tiny, tmp_path))["Daily backlog"]
    shown = tiles(panel)
    assert shown["Open at the end · 03-31"] == "4" and shown["Peak · 03-31"] == "4"
    assert shown["Overdue"] == "0" and shown["Paused"] == "0"
    assert shown["Oldest opened"] == "2026-03-31 18:00"  # A, 10:00 UTC
    days = rows(panel)
    assert len(days) == 31
    assert days[27] == ["2026-03-28", "1", "0", "0", "1", "0", "0", "1", "1"]  # B: 3-7 days, overdue, paused
    assert len(panel.all("svg")) == 1 and len(panel.all("svg")[0].all("rect")) == 6  # 6 days with one age each


def test_the_at_risk_section_lists_each_engineers_due_times_in_local_time(
    tiny: tuple[Path, str], tmp_path: Path
) -> None:
    page = page_of(tiny, tmp_path)
    panel = panels(page)["Tickets at risk"]
    assert "between 2026-04-01 00:00 and 2026-04-02 00:00" in panel.text
    # engineer (first row of each), ticket, type, priority, status, team, metric, due (local), policy
    assert rows(panel) == [
        ["ann (1)", "A", "incident", "P3", "In progress", "desk", "Resolution", "2026-04-01 18:00", "vip"],
        ["bob (1)", "C", "incident", "P3", "New", "net", "Response", "2026-04-01 00:30", "std"],
    ]


def test_the_breached_list_names_the_policies_and_never_an_exempt_ticket(
    tiny: tuple[Path, str], tmp_path: Path
) -> None:
    panel = panels(page_of(tiny, tmp_path))["Tickets with a breached SLA"]
    # B (resolution, resolved in March), A (resolution due 04-01 10:00, still open), C (response);
    # D's resolution is exempt and E is excluded: neither appears
    assert [r[0] for r in rows(panel)] == ["B", "A", "C"]
    policies = [[s.text for s in tr.all("small", "policy")] for tr in panel.all("tbody")[0].all("tr")]
    assert policies == [["std", "std"], ["vip", "vip"], ["std", "std"]]  # response, resolution


def test_time_in_status_shows_business_hours_per_team(tiny: tuple[Path, str], tmp_path: Path) -> None:
    panel = panels(page_of(tiny, tmp_path))["Time in status per team"]
    # team, tickets, NEW, IN_PROGRESS, WAITING_CUSTOMER, total (hours): net 104.5 + 36 + 24 = 164.5 first;
    # desk 600 s = 0.2 h, 136 200 s = 37.8 h, total 38.0
    assert rows(panel) == [["net", "2", "104.5", "36.0", "24.0", "164.5"], ["desk", "1", "0.2", "37.8", "0.0", "38.0"]]
    # the chart: the mean per ticket, net 52.25 + 18 + 12 = 82.25 h, desk 38 h; one piece per non-empty status
    assert len(panel.all("svg")[0].all("rect")) == 5


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_both_engines_render_the_same_v2_sections(tiny: tuple[Path, str], tmp_path: Path, lang: str) -> None:
    def strip_time(page: str) -> str:
        return page.split("</header>", 1)[1]

    parquet, sql = page_of(tiny, tmp_path, lang), page_of(tiny, tmp_path, lang, engine="sql")
    assert strip_time(parquet) == strip_time(sql)
    assert ("即将超时的工单" in parquet) == (lang == "zh")


def test_a_store_without_the_v2_tables_says_so(tmp_path: Path) -> None:
    root = tmp_path / "store"
    url = write_tiny_store(root, v2=False)
    page = build_report(root, url, "2026-03", "en", tmp_path / "r.html", timezone=TZ).read_text(encoding="utf-8")
    found = panels(page)
    assert "The store holds no kpi_breakdown rows" in found["By client and service"].text
    assert "The store holds no kpi_backlog rows" in found["Daily backlog"].text
    assert "The store holds no ticket_status_time rows" in found["Time in status per team"].text
    assert len(rows(found["Tickets at risk"])) == 2  # read from ticket_facts, which every store has


@pytest.mark.postgres
@pytest.mark.integration
def test_postgresql_reads_the_same_v2_numbers(tiny: tuple[Path, str], postgres_url: str, tmp_path: Path) -> None:
    root = tmp_path / "store"
    write_tiny_store(root, postgres_url)
    on_pg, on_sqlite = data_of((root, postgres_url), "sql"), data_of(tiny, "sql")
    for name in ("breakdown", "backlog", "status_time"):
        pd.testing.assert_frame_equal(
            getattr(on_pg, name).sort_values(list(getattr(on_pg, name).columns[:2])).reset_index(drop=True),
            getattr(on_sqlite, name).sort_values(list(getattr(on_sqlite, name).columns[:2])).reset_index(drop=True),
        )
    assert on_pg.at_risk.tickets["ticket_id"].tolist() == ["A", "C"]
    assert on_pg.at_risk.since == on_sqlite.at_risk.since


# -- the real demo run, its v2 tables added ------------------------------------------------------
@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store the real ``itsm-kpi demo`` wrote (its runs write the v2 tables)."""
    from pipeline.cli import main

    store = tmp_path_factory.mktemp("demo-v2") / "store"
    assert main(["-q", "demo", "--store", str(store), "--as-of", "2026-10-15T00:00:00+08:00"]) == 0
    return store


def demo_sql(store: Path, query: str) -> list[tuple]:
    with sqlite3.connect(store / "kpi.sqlite") as conn:
        return conn.execute(query).fetchall()


@pytest.mark.parametrize("engine", ENGINES)
def test_on_the_demo_the_sections_agree_with_the_stored_tables(demo_run: Path, tmp_path: Path, engine: str) -> None:
    url = f"sqlite:///{demo_run / 'kpi.sqlite'}"
    page = build_report(demo_run, url, "2026Q3", "en", tmp_path / "q3.html", engine=engine, timezone=TZ)
    found = panels(page.read_text(encoding="utf-8"))
    # every ticket has one client member, so the members' counts add up to the team's
    ((opened, resolved),) = demo_sql(
        demo_run, "SELECT SUM(opened_count), SUM(resolved_count) FROM kpi_engineer "
        "WHERE grain = 'quarter' AND period_start = '2026-07-01'")
    clients = found["By client and service"].all("table")[0].all("tbody")[0].all("tr")
    shown = [[td.text.strip() for td in tr.all("td")] for tr in clients]
    assert sum(int(r[1].replace(",", "")) for r in shown) == opened
    assert sum(int(r[2].replace(",", "")) for r in shown) == resolved
    # the last day of the quarter: the backlog summed over engineers, types and priorities
    ((open_count, overdue, paused),) = demo_sql(
        demo_run, "SELECT SUM(open_count), SUM(overdue_count), SUM(paused_count) FROM kpi_backlog "
        "WHERE day = '2026-09-30'")
    days = rows(found["Daily backlog"])
    assert len(days) == 92 and days[-1][0] == "2026-09-30"
    assert (days[-1][1], days[-1][7], days[-1][8]) == (str(open_count), str(overdue), str(paused))
    # business hours per team of the tickets opened in the quarter (local dates, UTC+8)
    expected = demo_sql(
        demo_run, "SELECT f.team, COUNT(DISTINCT f.ticket_id), SUM(s.business_s) / 3600.0 FROM ticket_status_time s "
        "JOIN ticket_facts f ON f.source = s.source AND f.ticket_id = s.ticket_id "
        "WHERE date(datetime(f.opened_at, '+8 hours')) BETWEEN '2026-07-01' AND '2026-09-30' GROUP BY f.team")
    teams = {r[0]: (r[1], r[-1]) for r in rows(found["Time in status per team"])}
    assert teams == {team: (str(n), f"{hours:.1f}") for team, n, hours in expected}


def test_on_the_demo_a_current_period_lists_the_tickets_falling_due_after_as_of(demo_run: Path, tmp_path: Path) -> None:
    page = build_report(demo_run, None, "2026Q4", "en", tmp_path / "q4.html", timezone=TZ)
    panel = panels(page.read_text(encoding="utf-8"))["Tickets at risk"]
    # as_of 2026-10-15 00:00 local = 10-14 16:00 UTC; the window runs a day from there
    due = demo_sql(
        demo_run, "SELECT ticket_id FROM ticket_facts WHERE excluded_reason IS NULL AND resolved_at IS NULL "
        "AND status NOT IN ('RESOLVED', 'CLOSED', 'CANCELLED') AND COALESCE(resolution_sla, '') <> 'exempt' "
        "AND resolution_due_at >= '2026-10-14 16:00:00' AND resolution_due_at < '2026-10-15 16:00:00' "
        "UNION ALL SELECT ticket_id FROM ticket_facts WHERE excluded_reason IS NULL AND response_at IS NULL "
        "AND COALESCE(response_sla, '') <> 'exempt' "
        "AND response_due_at >= '2026-10-14 16:00:00' AND response_due_at < '2026-10-15 16:00:00'")
    assert due  # the demo has some
    # an engineer's first row carries the engineer's cell (rowspan): the ticket is the 8th cell from the end
    assert sorted(r[-8] for r in rows(panel)) == sorted(t for (t,) in due)
    assert "The period is not over" in panel.text


def test_the_v2_sections_escape_every_value(tmp_path: Path) -> None:
    evil = '<b onmouseover="x">刘&洋</b>'
    tickets = tiny_input()[0]
    for column, value in (("client", "VIP"), ("service", "Email"), ("assignment_group", "net"), ("assignee", "bob")):
        tickets[column] = tickets[column].replace({value: evil})
    root = tmp_path / "store"
    url = write_tiny_store(root, tickets=tickets)
    page = build_report(root, url, "2026-03", "zh", tmp_path / "r.html", timezone=TZ).read_text(encoding="utf-8")
    assert evil not in page and 'onmouseover="' not in page
    found = panels(page)
    for heading in ("按客户与业务系统", "各组工单在各状态的停留时间", "即将超时的工单"):
        assert evil in found[heading].text, heading  # shown, as text
