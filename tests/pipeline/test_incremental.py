"""The nightly run is incremental and still equals a full recomputation.

Day 1: a month of tickets arrives as the first daily export and ``itsm-kpi run`` loads it. Day 2: the
next daily export (an update, a reopen, a reassignment, a late survey answer, a new ticket, an opened_at
moved across the month boundary, a ticket exported again unchanged) lands in the same folder and
``itsm-kpi run`` runs again. Every output table must then equal, but for ``as_of``, what a fresh store
computes from all the files at once; and the night must have recomputed exactly the periods the changed
tickets' old and new anchors fall in (worked out by hand in ``ops_helpers.DAY2_ANCHORS``), writing only
the rows in them whose numbers changed.

Real files, real SQLite / PostgreSQL (``sql_url``), the real CLI in this process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from ops_helpers import (
    DAY1_AS_OF,
    DAY2_ANCHORS,
    DAY2_AS_OF,
    DAY3_AS_OF,
    assert_same,
    assert_stores_agree,
    cli,
    day2_export,
    month_export,
    periods_of,
    runs,
    snapshot,
    sql_rows,
    write_config,
    write_export,
)

from kpis.schema import TABLE_KEYS


@dataclass
class TwoDays:
    nightly: Path  # config of the store that ran day 1, then day 2
    fresh: Path  # config of a store that ran once over both days' files
    day1: dict  # the nightly store after day 1, as_of included
    day2_run: pd.Series  # day 2's pipeline_runs row


@pytest.fixture(scope="module", params=[
    "sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.integration])])
def two_days(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TwoDays:
    """Built once per SQL backend: the tests below only read it (the rerun test last, adding runs only)."""
    tmp_path = tmp_path_factory.mktemp(f"two-days-{request.param}")
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / name}.sqlite" for name in ("nightly", "fresh")]
    else:
        server = request.getfixturevalue("postgres_server")
        urls = [server.create_database(), server.create_database()]
    exports = tmp_path / "exports"
    month_tickets, month_events = month_export()
    write_export(exports, "2026-07-31", month_tickets, month_events)
    nightly = write_config(tmp_path, urls[0], sources={"helpdesk": exports}, store=tmp_path / "nightly")
    assert cli("run", "--config", str(nightly), "--as-of", DAY1_AS_OF.isoformat()) == 0
    day1 = snapshot(nightly, drop=())
    write_export(exports, "2026-08-01", *day2_export(month_tickets))
    assert cli("run", "--config", str(nightly), "--as-of", DAY2_AS_OF.isoformat()) == 0
    day2_run = runs(nightly).iloc[-1]
    fresh = write_config(tmp_path, urls[1], sources={"helpdesk": exports}, store=tmp_path / "fresh")
    assert cli("run", "--config", str(fresh), "--as-of", DAY2_AS_OF.isoformat()) == 0
    return TwoDays(nightly, fresh, day1, day2_run)


def test_nightly_equals_a_full_recomputation(two_days: TwoDays) -> None:
    assert_stores_agree(two_days.nightly)
    assert_same(snapshot(two_days.nightly), snapshot(two_days.fresh))


def test_nightly_rewrites_only_changed_rows_and_only_in_the_touched_periods(two_days: TwoDays) -> None:
    nightly, day1 = two_days.nightly, two_days.day1
    expected = set().union(*(periods_of(d) for a in DAY2_ANCHORS.values() for d in a.before + a.after))
    assert two_days.day2_run["status"] == "success"
    assert two_days.day2_run["periods_written"] == len(expected)
    after = snapshot(nightly, drop=())
    for table in ("kpi_engineer", "kpi_team", "scorecard", "scorecard_kpi", "kpi_breakdown"):
        for store in ("sql", "parquet"):
            changed, kept = _row_fates(day1[(store, table)], after[(store, table)], list(TABLE_KEYS[table]))
            where = f"{store} {table}"
            assert changed, f"{where}: day 2 changed no row"
            # a row whose numbers moved, appeared or went away lies in a period a changed anchor touches,
            # and a row still there was written by day 2
            assert {(g, p) for g, p, _ in changed} <= expected, where
            assert all(as_of in (DAY2_AS_OF, None) for _, _, as_of in changed), where
            # every row whose numbers did not move was left alone, as_of included: also inside touched periods
            assert all(as_of == DAY1_AS_OF for _, _, as_of in kept), where
            assert any((g, p) in expected for g, p, _ in kept), f"{where}: every row of the touched periods was rewritten"


def _row_fates(before: pd.DataFrame, after: pd.DataFrame, key: list[str]):
    """(grain, period_start, as_of after) of the rows day 2 changed (as_of None: the row is gone), and of
    the rows it kept as they were."""
    values = [c for c in before.columns if c not in key and c != "as_of"]
    pairs = before.merge(after, on=key, how="outer", suffixes=("_1", "_2"), indicator=True)
    changed, kept = [], []
    for _, row in pairs.iterrows():
        same = row["_merge"] == "both" and all(_same_cell(row[f"{c}_1"], row[f"{c}_2"]) for c in values)
        as_of = None if row["_merge"] == "left_only" else row["as_of_2"]
        (kept if same else changed).append((row["grain"], pd.Timestamp(row["period_start"]), as_of))
    return changed, kept


def _same_cell(a, b) -> bool:
    if pd.isna(a) or pd.isna(b):
        return bool(pd.isna(a) and pd.isna(b))
    return bool(a == b)


def test_nightly_recomputes_only_the_backlog_days_its_changed_tickets_touch(two_days: TwoDays) -> None:
    """Day 2's changed tickets opened on 07-04 at the earliest (INC0003, see DAY2_ANCHORS): only days from
    then on are recomputed, and of those only the rows that moved are written; the others keep day 1's
    as_of (KPIS.md 4.2, D20)."""
    backlog = sql_rows(two_days.nightly, "kpi_backlog")
    written = backlog[backlog["as_of"] == DAY2_AS_OF]
    assert len(written) and written["day"].min() >= pd.Timestamp("2026-07-04")
    assert (backlog["as_of"] == DAY1_AS_OF).any()
    # INC0004 was reassigned from 陈静 to 刘洋 on 08-01: the backlog's day 08-01 counts it for 刘洋
    day = backlog[backlog["day"] == pd.Timestamp("2026-08-01")].set_index("engineer")["open_count"]
    assert day.get("刘洋", 0) >= 1


def test_nightly_replaces_only_the_changed_tickets_facts(two_days: TwoDays) -> None:
    facts = sql_rows(two_days.nightly, "ticket_facts")
    stamped = set(facts.loc[facts["as_of"] == DAY2_AS_OF, "ticket_id"])
    assert stamped == set(DAY2_ANCHORS)  # INC0050, exported again unchanged, keeps day 1's row


def test_reruns_without_new_files_write_no_period(two_days: TwoDays) -> None:
    """The same night again: nothing to rewrite, as_of included. A day later with no new file: no period
    and no fact moves (no fact here depends on the clock alone: every open ticket is already past its
    targets); only what the clock moves by definition is written: an open ticket's time in its current
    status runs to as_of (KPIS.md 3.1), and the backlog gains the new day (4.2)."""
    nightly = two_days.nightly
    before = snapshot(nightly, drop=())
    assert cli("run", "--config", str(nightly), "--as-of", DAY2_AS_OF.isoformat()) == 0
    last = runs(nightly).iloc[-1]
    assert (last["status"], last["periods_written"], last["rows_read"], last["rows_written"]) == ("success", 0, 0, 0)
    assert_same(snapshot(nightly, drop=()), before)

    later = DAY2_AS_OF + pd.Timedelta(days=1)
    assert cli("run", "--config", str(nightly), "--as-of", later.isoformat()) == 0
    last = runs(nightly).iloc[-1]
    assert (last["status"], last["periods_written"], last["rows_read"]) == ("success", 0, 0)
    after = snapshot(nightly, drop=())
    clock = ("ticket_status_time", "kpi_backlog")
    assert_same({k: v for k, v in after.items() if k[1] not in clock},
                {k: v for k, v in before.items() if k[1] not in clock})
    status = after[("sql", "ticket_status_time")]
    grown = status[status["as_of"] == later].merge(before[("sql", "ticket_status_time")], on=list(
        TABLE_KEYS["ticket_status_time"]), suffixes=("", "_before"))
    # one more day in the open status: 24 h * 3600 s of calendar time, the rest of the row as it was
    assert len(grown) and (grown["calendar_s"] - grown["calendar_s_before"] == 86_400).all()
    assert (grown["entries"] == grown["entries_before"]).all()
    backlog = after[("sql", "kpi_backlog")]
    new_day = backlog[backlog["as_of"] == later]
    # later is 2026-08-03 01:15 in Shanghai: only that day's rows are new; 08-02's are as the night before left them
    assert len(new_day) and set(new_day["day"]) == {pd.Timestamp("2026-08-03")}
    assert last["rows_written"] == len(grown) + len(new_day)
    assert_stores_agree(nightly)


def test_a_changed_fact_setting_recomputes_every_ticket(tmp_path: Path) -> None:
    """Stored facts are reused only under the settings they were computed with: a new P1 resolution
    target (4 h -> 2 h) with no new file still moves every P1 incident's facts and their periods."""
    exports = tmp_path / "exports"
    month_tickets, month_events = month_export()
    write_export(exports, "2026-07-31", month_tickets, month_events)
    nightly = write_config(tmp_path, f"sqlite:///{tmp_path / 'nightly.sqlite'}", sources={"helpdesk": exports},
                           store=tmp_path / "nightly")
    assert cli("run", "--config", str(nightly), "--as-of", DAY1_AS_OF.isoformat()) == 0
    before = snapshot(nightly)
    nightly.write_text(nightly.read_text(encoding="utf-8").replace('resolution = "4h"', 'resolution = "2h"', 1),
                       encoding="utf-8")
    assert cli("run", "--config", str(nightly), "--as-of", DAY2_AS_OF.isoformat()) == 0
    assert runs(nightly).iloc[-1]["rows_written"] > 0
    fresh = write_config(tmp_path, f"sqlite:///{tmp_path / 'fresh.sqlite'}", sources={"helpdesk": exports},
                         store=tmp_path / "fresh")
    fresh.write_text(nightly.read_text(encoding="utf-8").replace(str(tmp_path / "nightly"), str(tmp_path / "fresh")),
                     encoding="utf-8")
    assert cli("run", "--config", str(fresh), "--as-of", DAY2_AS_OF.isoformat()) == 0
    after = snapshot(nightly)
    assert not after[("sql", "ticket_facts")].equals(before[("sql", "ticket_facts")])
    assert_same(after, snapshot(fresh))


# --- settings that only shape the KPI tables (DECISIONS.md D125) -------------------------------------
TABLE_SETTING_CHANGES = {
    "timezone": ('[reporting]\ntimezone = "Asia/Shanghai"', '[reporting]\ntimezone = "America/Los_Angeles"'),
    "grains": ('grains = ["day", "week", "month", "quarter"]', 'grains = ["week", "month"]'),
    "min_sample": ("min_sample = 3", "min_sample = 30"),
    "breakdowns": ("min_sample = 3", 'min_sample = 3\nbreakdowns = ["priority"]'),
    "scorecard": ("target = 0.95", "target = 0.5"),
}


def _month_store(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """The month export in a folder, and a config of a store named ``name`` reading it."""
    exports = tmp_path / "exports"
    if not exports.exists():
        write_export(exports, "2026-07-31", *month_export())
    return exports, write_config(tmp_path, f"sqlite:///{tmp_path / name}.sqlite", sources={"helpdesk": exports},
                                 store=tmp_path / name)


def _changed(config: Path, change: str) -> None:
    old, new = TABLE_SETTING_CHANGES[change]
    text = config.read_text(encoding="utf-8")
    assert text.count(old) == 1, change
    config.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.parametrize("change", sorted(TABLE_SETTING_CHANGES))
def test_a_changed_table_setting_recomputes_every_period(tmp_path: Path, change: str) -> None:
    """A night with no new file after a change of the reporting timezone, the grains, min_sample, the
    breakdowns or a scorecard target: no fact moves, yet every KPI table must be what a fresh store computes
    with the new settings (rows of a grain no longer configured, or of the old timezone's periods, gone)."""
    _, nightly = _month_store(tmp_path, "nightly")
    assert cli("run", "--config", str(nightly), "--as-of", DAY1_AS_OF.isoformat()) == 0
    _changed(nightly, change)
    assert cli("run", "--config", str(nightly), "--as-of", DAY2_AS_OF.isoformat()) == 0
    assert runs(nightly).iloc[-1]["periods_written"] > 0
    _, fresh = _month_store(tmp_path, "fresh")
    _changed(fresh, change)
    assert cli("run", "--config", str(fresh), "--as-of", DAY2_AS_OF.isoformat()) == 0
    assert_same(snapshot(nightly), snapshot(fresh))
    assert_stores_agree(nightly)
    # the next night, with nothing new, is a quiet one again: the settings are recorded with the tables
    assert cli("run", "--config", str(nightly), "--as-of", DAY2_AS_OF.isoformat()) == 0
    assert runs(nightly).iloc[-1]["periods_written"] == 0


def test_periods_follow_a_changed_reporting_timezone(tmp_path: Path) -> None:
    """By hand: 王芳's incidents INC0000, INC0060 and INC0090 open on 2026-07-01 at 09:00, 13:00 and 11:30 in
    Shanghai (INC0030 at 15:30), which is 06-30 18:00, 22:00 and 20:30 in Los Angeles (PDT, UTC-7; INC0030
    07-01 00:30). No other ticket opens before 07-01 in either zone. In Shanghai no day row lies on 06-30;
    in Los Angeles 王芳's incident row of that day counts 3 openings."""
    _, nightly = _month_store(tmp_path, "nightly")
    assert cli("run", "--config", str(nightly), "--as-of", DAY1_AS_OF.isoformat()) == 0
    june_30 = pd.Timestamp("2026-06-30")
    for store in ("sql", "parquet"):
        rows = snapshot(nightly)[(store, "kpi_engineer")]
        assert not ((rows["grain"] == "day") & (rows["period_start"] == june_30)).any(), store
    _changed(nightly, "timezone")
    assert cli("run", "--config", str(nightly), "--as-of", DAY2_AS_OF.isoformat()) == 0
    for store in ("sql", "parquet"):
        rows = snapshot(nightly)[(store, "kpi_engineer")]
        day = rows[(rows["grain"] == "day") & (rows["period_start"] == june_30)]
        assert day[["engineer", "ticket_type", "opened_count"]].values.tolist() == [["王芳", "incident", 3]], store


def test_a_backfill_under_changed_settings_leaves_the_next_night_to_recompute_every_period(tmp_path: Path) -> None:
    """A backfill of 07-01..07-10 under new grains rewrites only its window's periods; the day and quarter
    rows outside it were computed under the old grains. The night after must therefore recompute every
    period, and then equal a fresh store."""
    _, nightly = _month_store(tmp_path, "nightly")
    assert cli("run", "--config", str(nightly), "--as-of", DAY1_AS_OF.isoformat()) == 0
    _changed(nightly, "grains")
    assert cli("backfill", "--config", str(nightly), "--from", "2026-07-01", "--to", "2026-07-10",
               "--as-of", DAY1_AS_OF.isoformat()) == 0
    assert cli("run", "--config", str(nightly), "--as-of", DAY2_AS_OF.isoformat()) == 0
    _, fresh = _month_store(tmp_path, "fresh")
    _changed(fresh, "grains")
    assert cli("run", "--config", str(fresh), "--as-of", DAY2_AS_OF.isoformat()) == 0
    assert_same(snapshot(nightly), snapshot(fresh))
    for store in ("sql", "parquet"):
        assert set(snapshot(nightly)[(store, "kpi_engineer")]["grain"]) == {"week", "month"}, store


# --- approved exemptions arriving on later nights (KPIS.md 1.4) --------------------------------------
APPROVALS_SECTION = """
[adjustments]
path = "{folder}/*.csv"
timezone = "Asia/Shanghai"
"""
# Read on night 2 (as_of 08-02 01:15 local): INC0010's resolution and INC0003's response apply at once;
# INC0011's ticket exemption is approved on 08-02 at 12:00, after night 2's as_of: it applies from night 3 on.
APPROVALS_CSV = """source,ticket_id,scope,reason,approved_by,approved_at
helpdesk,INC0010,resolution,客户原因,王主任,2026-07-31 10:00
helpdesk,INC0003,response,第三方原因,王主任,2026-08-01T09:00:00+08:00
helpdesk,INC0011,ticket,不可抗力,李处长,2026-08-02 12:00
helpdesk,INC0010,resolution,客户原因（复核）,李处长,2026-08-01 10:00
"""


def _with_approvals(config: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config.write_text(config.read_text(encoding="utf-8") + APPROVALS_SECTION.format(folder=folder), encoding="utf-8")
    return config


def _facts(config: Path) -> pd.DataFrame:
    return sql_rows(config, "ticket_facts").set_index("ticket_id")


def test_approvals_arriving_on_later_nights_equal_a_full_recomputation(tmp_path: Path) -> None:
    """Night 1 without approvals, night 2 reads a sheet (one approval dated in its future), night 3 reads
    nothing new but must apply that one: every table then equals a fresh store's single run at night 3."""
    exports, approvals = tmp_path / "exports", tmp_path / "approvals"
    month_tickets, month_events = month_export()
    write_export(exports, "2026-07-31", month_tickets, month_events)
    nightly = _with_approvals(write_config(tmp_path, f"sqlite:///{tmp_path / 'nightly.sqlite'}",
                                           sources={"helpdesk": exports}, store=tmp_path / "nightly"), approvals)
    assert cli("run", "--config", str(nightly), "--as-of", DAY1_AS_OF.isoformat()) == 0  # no sheet yet: a warning
    day1 = _facts(nightly)
    (approvals / "2026-08.csv").write_text(APPROVALS_CSV, encoding="utf-8")
    assert cli("run", "--config", str(nightly), "--as-of", DAY2_AS_OF.isoformat()) == 0
    day2 = _facts(nightly)
    assert (day1.loc["INC0010", "resolution_sla"], day2.loc["INC0010", "resolution_sla"]) == ("met", "exempt")
    assert day2.loc["INC0003", "response_sla"] == "exempt"
    assert pd.isna(day2.loc["INC0011", "excluded_reason"])  # approved after night 2's as_of
    assert cli("run", "--config", str(nightly), "--as-of", DAY3_AS_OF.isoformat()) == 0
    assert _facts(nightly).loc["INC0011", "excluded_reason"] == "exempt"
    assert runs(nightly).iloc[-1]["rows_read"] == 0  # night 3 read no file: the store's approvals applied
    stored = sql_rows(nightly, "adjustments").set_index("ticket_id")
    assert bool(stored.loc["INC0011", "applied"]) and len(stored) == 3  # INC0010 approved twice: one row

    fresh = _with_approvals(write_config(tmp_path, f"sqlite:///{tmp_path / 'fresh.sqlite'}",
                                         sources={"helpdesk": exports}, store=tmp_path / "fresh"), approvals)
    assert cli("run", "--config", str(fresh), "--as-of", DAY3_AS_OF.isoformat()) == 0
    assert_stores_agree(nightly)
    assert_same(snapshot(nightly), snapshot(fresh))
    key = list(TABLE_KEYS["adjustments"])
    pd.testing.assert_frame_equal(sql_rows(nightly, "adjustments").drop(columns="as_of").sort_values(key, ignore_index=True),
                                  sql_rows(fresh, "adjustments").drop(columns="as_of").sort_values(key, ignore_index=True))


def test_a_changed_sheet_replaces_its_approvals_and_a_removed_one_keeps_them(tmp_path: Path) -> None:
    """Night 2 reads a sheet; night 3 reads its corrected version (INC0010's row deleted); then the sheet is
    archived (deleted from the folder) and night 4 still applies INC0003's approval."""
    exports, approvals = tmp_path / "exports", tmp_path / "approvals"
    month_tickets, month_events = month_export()
    write_export(exports, "2026-07-31", month_tickets, month_events)
    nightly = _with_approvals(write_config(tmp_path, f"sqlite:///{tmp_path / 'nightly.sqlite'}",
                                           sources={"helpdesk": exports}, store=tmp_path / "nightly"), approvals)
    sheet = approvals / "2026-08.csv"
    sheet.write_text(APPROVALS_CSV, encoding="utf-8")
    assert cli("run", "--config", str(nightly), "--as-of", DAY2_AS_OF.isoformat()) == 0
    assert _facts(nightly).loc["INC0010", "resolution_sla"] == "exempt"
    sheet.write_text("\n".join(line for line in APPROVALS_CSV.splitlines() if "INC0010" not in line) + "\n",
                     encoding="utf-8")
    assert cli("run", "--config", str(nightly), "--as-of", DAY3_AS_OF.isoformat()) == 0
    assert _facts(nightly).loc["INC0010", "resolution_sla"] == "met"  # withdrawn with its row
    sheet.unlink()
    assert cli("run", "--config", str(nightly), "--as-of", (DAY3_AS_OF + pd.Timedelta(days=1)).isoformat()) == 0
    facts = _facts(nightly)
    assert facts.loc["INC0003", "response_sla"] == "exempt" and facts.loc["INC0011", "excluded_reason"] == "exempt"

