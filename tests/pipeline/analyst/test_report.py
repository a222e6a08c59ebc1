"""``itsm-kpi report`` (pipeline/analyst/report*.py and its templates): a self-contained, escaped HTML page
with the period's numbers.

The page is read back as a reader sees it (panels, tiles, table rows, chart labels) and its numbers are
checked against the SQL store, queried here on its own: SQLite keeps timestamps in UTC, and Asia/Shanghai
(UTC+8, no daylight saving) places them in local dates with ``datetime(ts, '+8 hours')``.
"""

from __future__ import annotations

import re
import sqlite3
import tomllib
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
from views_helpers import AS_OF, write_store

from kpis import KpiTables
from pipeline.analyst.query import StoreQuery
from pipeline.analyst.report import (
    SECTIONS,
    ReportError,
    build_report,
    parse_period,
    read_report_data,
    sla_by_priority,
)
from pipeline.analyst.report_messages import translator
from pipeline.store.errors import StoreError

TZ = "Asia/Shanghai"
EVIL = '<b onmouseover="x">刘&洋</b>'
Q3 = ("2026-07-01", "2026-09-30")  # first and last local day
HEADINGS = {
    "en": [
        "Team overview",
        "Scorecard ranking",
        "Engineer KPIs against targets",
        "Weekly trends",
        "SLA compliance by priority",
        "By client and service",
        "Daily backlog",
        "Time in status per team",
        "Tickets with a breached SLA",
        "Tickets at risk",
        "Approved exemptions",
    ],
    "zh": [
        "团队总览",
        "量化考核排名",
        "人员指标与考核目标对比",
        "周趋势",
        "按优先级的 SLA 达标率",
        "按客户与业务系统",
        "每日积压工单",
        "各组工单在各状态的停留时间",
        "SLA 超时工单",
        "即将超时的工单",
        "已批准的豁免",
    ],
}


@pytest.fixture(scope="module")
def store(demo_tables: KpiTables, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    write_store(demo_tables, root, f"sqlite:///{root / 'kpi.sqlite'}").close()
    return root


def report(
    store: Path, tmp_path: Path, period: str = "2026Q3", lang: str = "en", engine: str = "parquet"
) -> str:
    out = build_report(
        store,
        f"sqlite:///{store / 'kpi.sqlite'}",
        period,
        lang,
        tmp_path / f"r-{lang}.html",
        engine=engine,
        timezone=TZ,
    )
    return out.read_text(encoding="utf-8")


def sql(store: Path, query: str, *params: object) -> list[tuple]:
    """Rows of ``query`` on the store's SQLite file."""
    with sqlite3.connect(store / "kpi.sqlite") as conn:
        return conn.execute(query, params).fetchall()


def local_day(column: str) -> str:
    return f"date(datetime({column}, '+8 hours'))"


# -- the page as a reader sees it -------------------------------------------------------------
@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def all(self, tag: str, cls: str | None = None) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag and (cls is None or cls in child.attrs.get("class", "").split()):
                    found.append(child)
                found += child.all(tag, cls)
        return found


class _Tree(HTMLParser):
    VOID = {"meta", "br", "img", "input", "link", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        while len(self.stack) > 1 and self.stack.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def panels(page: str) -> dict[str, Node]:
    """Each panel of the page by its heading (a count in brackets dropped), in page order."""
    tree = _Tree()
    tree.feed(page)
    found = {}
    for section in tree.root.all("section", "panel"):
        heading = section.all("h2")[0].text
        found[re.sub(r" \(\d+\)$", "", heading)] = section
    return found


def rows(panel: Node) -> list[list[str]]:
    """The body rows of the panel's table, each cell's text stripped."""
    return [[td.text.strip() for td in tr.all("td")] for tr in panel.all("tbody")[0].all("tr")]


def tiles(panel: Node) -> dict[str, str]:
    return {t.all("div", "label")[0].text: t.all("div", "value")[0].text for t in panel.all("div", "tile")}


def pct(num: float, den: float) -> str:
    return f"{num / den * 100:.1f}%"


# -- periods ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "grain", "start", "end"),
    [
        ("2026Q3", "quarter", date(2026, 7, 1), date(2026, 10, 1)),
        ("2026q4", "quarter", date(2026, 10, 1), date(2027, 1, 1)),
        ("2026-12", "month", date(2026, 12, 1), date(2027, 1, 1)),
        ("2026-W01", "week", date(2025, 12, 29), date(2026, 1, 5)),
        # CONTRACT.md's spelling; week 1 starts on 2025-12-29 (day -2 of 2026), 37 weeks later is day 257: 09-14
        ("2026W38", "week", date(2026, 9, 14), date(2026, 9, 21)),
        ("2026-08-15", "day", date(2026, 8, 15), date(2026, 8, 16)),
    ],
)
def test_periods_parse_to_local_date_ranges(text: str, grain: str, start: date, end: date) -> None:
    period = parse_period(text)
    assert (period.grain, period.start, period.end) == (grain, start, end)


@pytest.mark.parametrize(
    ("text", "grain"), [("2026Q5", None), ("2026-13", None), ("Q3", None), ("2026Q3", "month")]
)
def test_bad_periods_are_refused(text: str, grain: str | None) -> None:
    with pytest.raises(ReportError):
        parse_period(text, grain)


# -- the message table and the templates ------------------------------------------------------
def test_every_message_has_both_languages() -> None:
    table = (resources.files("pipeline.analyst") / "templates" / "messages.toml").read_text(encoding="utf-8")
    messages = tomllib.loads(table)
    assert len(messages) > 50
    missing = [
        key for key, texts in messages.items() if set(texts) != {"en", "zh"} or not all(texts.values())
    ]
    assert not missing


def test_a_message_missing_from_the_table_is_an_error_unless_the_data_gives_a_fallback() -> None:
    t = translator("zh")
    assert t("ranking") == "量化考核排名"
    with pytest.raises(KeyError, match="no_such_message"):
        t("no_such_message")
    assert t("problem", "problem") == "problem"  # e.g. a ticket type the table does not name


def test_every_section_has_its_template_in_the_package() -> None:
    templates = resources.files("pipeline.analyst") / "templates"
    assert (templates / "report.html.j2").is_file()
    for section in SECTIONS:
        assert (templates / section.template).is_file(), section.template


# -- the page ---------------------------------------------------------------------------------
def test_report_is_one_self_contained_file(store: Path, tmp_path: Path) -> None:
    page = report(store, tmp_path)
    assert page.startswith("<!DOCTYPE html>")
    for forbidden in ("<script", "<link", "src=", "@import", "url(", "http://", "https://"):
        assert forbidden not in page.replace('xmlns="http://www.w3.org/2000/svg"', ""), forbidden
    # ranking, 4 rate trends, response time, volume, SLA by priority; clients, backlog, time in status
    assert page.count("<svg") == 11
    assert "--accent: #1f4e79" in page  # the stylesheet is inlined


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_section_is_there_in_order(store: Path, tmp_path: Path, lang: str) -> None:
    assert list(panels(report(store, tmp_path, lang=lang))) == HEADINGS[lang]


def test_both_languages_come_from_the_message_table(store: Path, tmp_path: Path) -> None:
    zh, en = report(store, tmp_path, lang="zh"), report(store, tmp_path, lang="en")
    assert '<html lang="zh-CN">' in zh and "量化考核排名" in zh and "2026年第3季度" in zh
    assert '<html lang="en">' in en and "Scorecard ranking" in en and "量化考核排名" not in en


def test_the_overview_tiles_are_the_teams_totals(store: Path, tmp_path: Path) -> None:
    ((opened, resolved, met, breached, first_fix),) = sql(
        store,
        "SELECT SUM(opened_count), SUM(resolved_count), SUM(response_sla_met), SUM(response_sla_breached), "
        "SUM(first_fix_count) FROM kpi_engineer WHERE grain = 'quarter' AND period_start = ?",
        Q3[0],
    )
    shown = tiles(panels(report(store, tmp_path))["Team overview"])
    assert shown["Opened"] == f"{opened:,}" and shown["Resolved"] == f"{resolved:,}"
    assert shown["Response SLA"] == pct(met, met + breached)
    assert shown["First-fix rate"] == pct(first_fix, resolved)


def test_report_ranks_the_scorecard_and_marks_targets(store: Path, tmp_path: Path) -> None:
    ranked = sql(
        store,
        "SELECT rank, engineer, score FROM scorecard WHERE grain = 'quarter' AND period_start = ? "
        "AND rank IS NOT NULL ORDER BY rank",
        Q3[0],
    )
    page = report(store, tmp_path)
    table = rows(panels(page)["Scorecard ranking"])
    assert [tuple(r[:3]) for r in table[: len(ranked)]] == [(f"{k:.0f}", e, f"{s:.1f}") for k, e, s in ranked]
    assert "≥ 80.0%" in page and "≥ 85.0%" in page and "≤ 30.0" in page  # the scheme's targets
    assert "✓" in page and "✗" in page


def test_the_engineer_table_counts_each_engineers_tickets(store: Path, tmp_path: Path) -> None:
    counts = sql(
        store,
        "SELECT engineer, SUM(opened_count), SUM(resolved_count) FROM kpi_engineer "
        "WHERE grain = 'quarter' AND period_start = ? GROUP BY engineer",
        Q3[0],
    )
    table = rows(panels(report(store, tmp_path))["Engineer KPIs against targets"])
    assert sorted(tuple(r[:3]) for r in table) == sorted((e, f"{o:,}", f"{r:,}") for e, o, r in counts)


def test_low_sample_engineers_are_marked_and_not_ranked(store: Path, tmp_path: Path) -> None:
    october = sql(
        store,
        "SELECT engineer, low_sample FROM scorecard WHERE grain = 'month' AND period_start = ?",
        "2026-10-01",
    )
    assert october and all(low for _, low in october)
    page = report(store, tmp_path, period="2026-10")
    for name, _ in october:
        assert f'<td>{name}<span class="badge">low sample</span></td>' in page
    assert "not ranked" in page


def test_trends_show_each_week_with_its_target(store: Path, tmp_path: Path) -> None:
    ((target,),) = sql(
        store,
        "SELECT DISTINCT target FROM scorecard_kpi WHERE kpi = 'response_sla_rate' "
        "AND grain = 'quarter' AND period_start = ?",
        Q3[0],
    )
    trends = panels(report(store, tmp_path))["Weekly trends"]
    captions = [c.text for c in trends.all("figcaption")]
    assert f"Response SLA (target ≥ {target * 100:.1f}%)" in captions
    assert len(trends.all("svg")) == 6
    x_labels = [t.text for t in trends.all("svg")[0].all("text") if re.fullmatch(r"\d\d-\d\d", t.text)]
    assert x_labels[0] == "07-01"  # the week holding Wed 1 July, cut at the quarter's start; every other labelled
    assert x_labels[-1] == "09-21"


def test_weekly_trends_cut_the_edge_weeks_so_that_they_add_up_to_the_period(store: Path) -> None:
    from pipeline.analyst.query import StoreQuery
    from pipeline.analyst.report_data import read_report_data
    from pipeline.analyst.report_period import parse_period

    with StoreQuery(store_path=store, sql_url=None, engine="parquet") as query:
        trend = read_report_data(query, parse_period("2026Q3", None), TZ).trend.set_index("period_start")
    ((opened, resolved),) = sql(store, "SELECT SUM(opened_count), SUM(resolved_count) FROM kpi_engineer "
                                "WHERE grain = 'quarter' AND period_start = ?", Q3[0])
    assert (trend["opened_count"].sum(), trend["resolved_count"].sum()) == (opened, resolved)
    # the first week is Wed 1 - Sun 5 July (not Mon 29 June on), the last Mon 28 - Wed 30 September
    ((first,),) = sql(store, "SELECT SUM(opened_count) FROM kpi_engineer WHERE grain = 'day' "
                      "AND period_start BETWEEN '2026-07-01' AND '2026-07-05'")
    ((last,),) = sql(store, "SELECT SUM(resolved_count) FROM kpi_engineer WHERE grain = 'day' "
                     "AND period_start BETWEEN '2026-09-28' AND '2026-09-30'")
    assert (trend.index[0], trend["opened_count"].iloc[0]) == (date(2026, 7, 1), first)
    assert (trend.index[-1], trend["resolved_count"].iloc[-1]) == (date(2026, 9, 28), last)
    assert len(trend) == 14  # 1 July, then the 13 Mondays from 6 July to 28 September


def test_a_days_trend_shows_its_ticket_volume(store: Path, tmp_path: Path) -> None:
    ((day, opened, resolved),) = sql(
        store,
        "SELECT period_start, SUM(opened_count), SUM(resolved_count) FROM kpi_engineer WHERE grain = 'day' "
        "GROUP BY period_start ORDER BY SUM(opened_count) DESC, period_start LIMIT 1",
    )
    trends = panels(report(store, tmp_path, period=day))["Daily trends"]
    volume = trends.all("svg")[-1]
    assert [t.text for t in volume.all("text")][-2:] == [str(opened), str(resolved)]


def test_sla_by_priority_counts_the_facts_of_the_period(store: Path, tmp_path: Path) -> None:
    expected = {}
    for metric, anchor in (("response", "opened_at"), ("resolution", "resolved_at")):
        for priority, met, breached in sql(
            store,
            f"SELECT {metric}_priority, SUM({metric}_sla = 'met'), SUM({metric}_sla = 'breached') "
            f"FROM ticket_facts WHERE {metric}_sla IN ('met', 'breached') "
            f"AND {local_day(anchor)} BETWEEN ? AND ? GROUP BY {metric}_priority",
            *Q3,
        ):
            expected.setdefault(priority, []).extend([str(met), str(breached), pct(met, met + breached)])
    table = rows(panels(report(store, tmp_path))["SLA compliance by priority"])
    shown = {r[0]: [re.sub("[✓✗]", "", c) for c in r[1:]] for r in table}
    assert shown == expected


def test_sla_by_priority_shows_zero_counts_where_a_metric_has_no_verdict(store: Path, tmp_path: Path) -> None:
    day = "2026-07-01"
    resolved = sql(store, f"SELECT DISTINCT resolution_priority FROM ticket_facts WHERE resolution_sla IN "
                   f"('met', 'breached') AND {local_day('resolved_at')} = ?", day)
    table = {r[0]: [re.sub("[✓✗]", "", c) for c in r[1:]]
             for r in rows(panels(report(store, tmp_path, period=day))["SLA compliance by priority"])}
    without = sorted(set(table) - {p for (p,) in resolved})
    assert without  # tickets of these priorities were opened on 1 July, none of them was resolved that day
    for priority_name in without:  # resolution met, breached, compliance: counted zero, no rate (was — — —)
        assert table[priority_name][3:] == ["0", "0", "—"], priority_name


def test_sla_by_priority_frame_matches_the_facts(store: Path, demo_tables: KpiTables) -> None:
    with StoreQuery(store_path=store, sql_url=None, engine="parquet") as q:
        data = read_report_data(q, parse_period("2026Q3"), TZ)
    table = sla_by_priority(data.facts).set_index(["metric", "priority"])
    facts = demo_tables.facts
    opened = facts["opened_at"].dt.tz_convert(TZ)
    in_q3 = (opened >= pd.Timestamp("2026-07-01", tz=TZ)) & (opened < pd.Timestamp("2026-10-01", tz=TZ))
    p2 = facts[in_q3 & (facts["response_priority"] == "P2")]
    assert table.loc[("response", "P2"), "met"] == (p2["response_sla"] == "met").sum()
    assert table.loc[("response", "P2"), "breached"] == (p2["response_sla"] == "breached").sum()


def test_breached_tickets_are_listed_and_counted(store: Path, tmp_path: Path) -> None:
    opened, resolved = local_day("opened_at"), local_day("resolved_at")
    expected = sql(
        store,
        f"SELECT ticket_id FROM ticket_facts "
        f"WHERE (response_sla = 'breached' AND {opened} BETWEEN ?1 AND ?2) "
        f"OR (resolution_sla = 'breached' AND ({resolved} BETWEEN ?1 AND ?2 "
        f"OR (resolved_at IS NULL AND {opened} <= ?2)))",
        *Q3,
    )
    page = report(store, tmp_path)
    listed = [r[0] for r in rows(panels(page)["Tickets with a breached SLA"])]
    assert sorted(listed) == sorted(t for (t,) in expected)
    assert f"Tickets with a breached SLA ({len(expected)})" in page
    assert tiles(panels(page)["Team overview"])["SLA breaches"] == str(len(expected))


def test_a_breached_tickets_badge_names_the_breaches_of_the_period(store: Path, tmp_path: Path) -> None:
    opened, resolved = local_day("opened_at"), local_day("resolved_at")
    expected = dict(sql(
        store,
        f"SELECT ticket_id, CASE WHEN r AND s THEN 'Both' WHEN r THEN 'Response' ELSE 'Resolution' END FROM ("
        f"SELECT ticket_id, response_sla = 'breached' AND {opened} BETWEEN ?1 AND ?2 AS r, "
        f"resolution_sla = 'breached' AND ({resolved} BETWEEN ?1 AND ?2 OR (resolved_at IS NULL AND {opened} <= ?2)) "
        "AS s FROM ticket_facts) WHERE r OR s",
        "2026-08-01", "2026-08-31",
    ))
    listed = rows(panels(report(store, tmp_path, period="2026-08"))["Tickets with a breached SLA"])
    shown = {r[0]: r[6].replace("Open", "").strip() for r in listed}
    assert shown == {t: expected[t] for t in shown}
    # INC00120, opened 1 July (its response breach is July's) and still open in August: August's is resolution
    assert shown["INC00120"] == "Resolution"


def test_sql_and_parquet_stores_give_the_same_report(store: Path, tmp_path: Path) -> None:
    def strip_time(page: str) -> str:
        return re.sub(r"Generated: [0-9: -]+", "", page)

    assert strip_time(report(store, tmp_path, engine="sql")) == strip_time(report(store, tmp_path))


def test_all_data_is_escaped(demo_tables: KpiTables, tmp_path: Path) -> None:
    def evil(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for column in ("engineer", "ticket_id", "team"):
            if column in frame:
                frame[column] = frame[column].replace({"刘洋": EVIL, "INC00146": EVIL, "桌面组": EVIL})
        return frame

    tables = KpiTables(
        *(
            evil(getattr(demo_tables, f))
            for f in ("facts", "kpi_engineer", "kpi_team", "scorecard", "scorecard_kpi")
        )
    )
    root = tmp_path / "store"
    write_store(tables, root, f"sqlite:///{root / 'kpi.sqlite'}").close()
    page = report(root, tmp_path)
    assert EVIL not in page
    assert "&lt;b onmouseover=&#34;x&#34;&gt;刘&amp;洋&lt;/b&gt;" in page
    assert 'onmouseover="' not in page


def test_a_period_without_data_says_which_periods_exist(store: Path, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"2026-07-01"):
        report(store, tmp_path, period="2025Q1")


def test_an_unknown_language_is_refused(store: Path, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="use zh or en"):
        report(store, tmp_path, lang="fr")


def test_a_missing_store_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no Parquet store"):
        build_report(tmp_path / "none", None, "2026Q3", "en", tmp_path / "r.html")


def test_as_of_is_shown_in_the_reporting_timezone(store: Path, tmp_path: Path) -> None:
    assert AS_OF.tz_convert(TZ).strftime("%Y-%m-%d %H:%M") in report(store, tmp_path)


def test_the_exemptions_panel_counts_each_engineers_approvals_of_the_period(store: Path, tmp_path: Path) -> None:
    opened, resolved = local_day("f.opened_at"), local_day("f.resolved_at")
    expected = sql(
        store,
        "SELECT f.engineer, SUM(a.scope = 'response'), SUM(a.scope = 'resolution'), SUM(a.scope = 'ticket'), "
        "COUNT(*), GROUP_CONCAT(DISTINCT a.approved_by) FROM adjustments a JOIN ticket_facts f "
        "ON f.source = a.source AND f.ticket_id = a.ticket_id WHERE a.applied "
        f"AND CASE WHEN a.scope = 'resolution' THEN {resolved} ELSE {opened} END BETWEEN ? AND ? "
        "GROUP BY f.engineer ORDER BY COUNT(*) DESC, f.engineer",
        *Q3,
    )
    assert expected  # the demo's sheet: 5 approvals in Q3
    table = rows(panels(report(store, tmp_path))["Approved exemptions"])
    # engineer, response, resolution, whole ticket, total | reasons | approvers | tickets
    assert [r[:5] for r in table] == [[e, str(a), str(b), str(c), str(n)] for e, a, b, c, n, _ in expected]
    assert [sorted(r[6].split(", ")) for r in table] == [sorted(approvers.split(",")) for *_, approvers in expected]
    assert "客户原因：等待客户提供备件" in "".join(r[5] for r in table)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store the real ``itsm-kpi demo`` wrote: raw layer and recorded settings included."""
    from pipeline.cli import main

    store = tmp_path_factory.mktemp("demo-run") / "store"
    assert main(["-q", "demo", "--store", str(store), "--as-of", "2026-10-15T00:00:00+08:00"]) == 0
    return store


def test_a_report_from_a_store_alone_is_in_the_timezone_its_runs_recorded(demo_run: Path, tmp_path: Path) -> None:
    from pipeline.cli import main

    def page(*timezone: str) -> str:
        out = tmp_path / f"august{len(timezone)}.html"
        args = ["-q", "report", "--store", str(demo_run), "--period", "2026-08", "--lang", "en", "--out", str(out)]
        assert main([*args, *timezone]) == 0
        return re.sub(r"Generated: [0-9: -]+", "", out.read_text(encoding="utf-8"))

    alone = page()
    assert "Time zone: Asia/Shanghai" in alone  # the demo's runs recorded Shanghai; UTC was used before
    assert alone == page("--timezone", "Asia/Shanghai")
    assert "Time zone: UTC" in page("--timezone", "UTC")


def test_each_breached_ticket_has_its_timeline_from_the_explain_segments(demo_run: Path, tmp_path: Path) -> None:
    from pipeline.explain import Where, explain_ticket

    page = report(demo_run, tmp_path)
    breached = panels(page)["Tickets with a breached SLA"]
    listed = breached.all("tbody")[0].all("tr")
    assert listed and all(len(tr.all("svg", "timeline")) == 1 for tr in listed)
    for tr in listed[:5]:  # one bar per segment explain shows, the counted ones dark blue
        ticket = tr.all("td")[0].text.strip()
        segments = explain_ticket(Where(demo_run, f"sqlite:///{demo_run / 'kpi.sqlite'}"), ticket)["segments"]
        bars = tr.all("svg", "timeline")[0].all("rect")
        assert len(bars) == len(segments), ticket
        assert [b.attrs["fill"] == "#1f4e79" for b in bars] == [s["counted"] for s in segments], ticket
    assert page.count('class="chart"') == 11  # 8 v1 charts and 3 v2 (clients, backlog, time in status); the timelines are not charts of their own

