"""``itsm-kpi report`` (pipeline/analyst/report.py): a self-contained, escaped HTML page with the period's numbers."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from views_helpers import AS_OF, write_store

from kpis import KpiTables
from pipeline.analyst.query import StoreQuery
from pipeline.analyst.report import (
    LABELS,
    ReportError,
    build_report,
    parse_period,
    read_report_data,
    sla_by_priority,
)
from pipeline.store.errors import StoreError

TZ = "Asia/Shanghai"
EVIL = '<b onmouseover="x">刘&洋</b>'


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


# -- periods ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "grain", "start", "end"),
    [
        ("2026Q3", "quarter", date(2026, 7, 1), date(2026, 10, 1)),
        ("2026q4", "quarter", date(2026, 10, 1), date(2027, 1, 1)),
        ("2026-12", "month", date(2026, 12, 1), date(2027, 1, 1)),
        ("2026-W01", "week", date(2025, 12, 29), date(2026, 1, 5)),
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


def test_every_label_has_both_languages() -> None:
    missing = [key for key, texts in LABELS.items() if set(texts) != {"en", "zh"} or not all(texts.values())]
    assert not missing


# -- the page ---------------------------------------------------------------------------------
def test_report_is_one_self_contained_file(store: Path, tmp_path: Path) -> None:
    page = report(store, tmp_path)
    assert page.startswith("<!DOCTYPE html>")
    for forbidden in ("<script", "<link", "src=", "@import", "url(", "http://", "https://"):
        assert forbidden not in page.replace('xmlns="http://www.w3.org/2000/svg"', ""), forbidden
    assert page.count("<svg") == 8  # ranking, 4 rate trends, response time, volume, SLA by priority


def test_report_ranks_the_scorecard_and_marks_targets(
    store: Path, tmp_path: Path, demo_tables: KpiTables
) -> None:
    page = report(store, tmp_path)
    card = demo_tables.scorecard
    card = card[(card["grain"] == "quarter") & (card["period_start"] == pd.Timestamp("2026-07-01"))]
    ranked = card.dropna(subset=["rank"]).sort_values("rank")
    positions = [page.index(f"<td>{name}") for name in ranked["engineer"]]
    assert positions == sorted(positions)
    for score in ranked["score"]:
        assert f"{score:.1f}</td>" in page
    assert "≥ 80.0%" in page and "≥ 85.0%" in page and "≤ 30.0" in page  # the scheme's targets
    assert "✓" in page and "✗" in page


def test_both_languages_come_from_the_dictionary(store: Path, tmp_path: Path) -> None:
    zh, en = report(store, tmp_path, lang="zh"), report(store, tmp_path, lang="en")
    assert '<html lang="zh-CN">' in zh and "量化考核排名" in zh and "2026年第3季度" in zh
    assert '<html lang="en">' in en and "Scorecard ranking" in en and "量化考核排名" not in en


def test_low_sample_engineers_are_marked_and_not_ranked(
    store: Path, tmp_path: Path, demo_tables: KpiTables
) -> None:
    page = report(store, tmp_path, period="2026-10")
    card = demo_tables.scorecard
    october = card[(card["grain"] == "month") & (card["period_start"] == pd.Timestamp("2026-10-01"))]
    assert october["low_sample"].all()
    for name in october["engineer"]:
        assert f'<td>{name}<span class="badge">low sample</span></td>' in page
    assert "not ranked" in page


def test_sql_and_parquet_stores_give_the_same_report(store: Path, tmp_path: Path) -> None:
    def strip_time(page: str) -> str:
        return re.sub(r"Generated: [0-9: -]+", "", page)

    assert strip_time(report(store, tmp_path, engine="sql")) == strip_time(report(store, tmp_path))


def test_sla_by_priority_counts_the_facts_of_the_period(store: Path, demo_tables: KpiTables) -> None:
    with StoreQuery(store_path=store, sql_url=None, engine="parquet") as q:
        data = read_report_data(q, parse_period("2026Q3"), TZ)
    table = sla_by_priority(data.facts).set_index(["metric", "priority"])
    facts = demo_tables.facts
    opened = facts["opened_at"].dt.tz_convert(TZ)
    in_q3 = (opened >= pd.Timestamp("2026-07-01", tz=TZ)) & (opened < pd.Timestamp("2026-10-01", tz=TZ))
    p2 = facts[in_q3 & (facts["response_priority"] == "P2")]
    assert table.loc[("response", "P2"), "met"] == (p2["response_sla"] == "met").sum()
    assert table.loc[("response", "P2"), "breached"] == (p2["response_sla"] == "breached").sum()


def test_breached_tickets_are_listed(store: Path, tmp_path: Path, demo_tables: KpiTables) -> None:
    page = report(store, tmp_path)
    facts = demo_tables.facts
    opened = facts["opened_at"].dt.tz_convert(TZ)
    in_q3 = (opened >= pd.Timestamp("2026-07-01", tz=TZ)) & (opened < pd.Timestamp("2026-10-01", tz=TZ))
    for ticket in facts[in_q3 & (facts["response_sla"] == "breached")]["ticket_id"]:
        assert f"<td>{ticket}</td>" in page


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
    assert "&lt;b onmouseover=&quot;x&quot;&gt;刘&amp;洋&lt;/b&gt;" in page


def test_a_period_without_data_says_which_periods_exist(store: Path, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"2026-07-01"):
        report(store, tmp_path, period="2025Q1")


def test_a_missing_store_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no Parquet store"):
        build_report(tmp_path / "none", None, "2026Q3", "en", tmp_path / "r.html")


def test_as_of_is_shown_in_the_reporting_timezone(store: Path, tmp_path: Path) -> None:
    assert AS_OF.tz_convert(TZ).strftime("%Y-%m-%d %H:%M") in report(store, tmp_path)
