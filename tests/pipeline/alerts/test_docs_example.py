"""docs/alerts.md's example config, as written, on two hand-made tickets: its due_soon window and team filter.

The example: alert ``desk`` (WeCom, ``due_within = "2h"``, team 桌面组) and ``managers`` (DingTalk, signed).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import e2e_helpers as h
import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "alerts.md"
FIELDS = ("ticket_id", "ticket_type", "priority", "status", "opened_at", "updated_at", "assignee", "assignment_group")


def _example() -> str:
    found = re.search(r"<!-- alerts-example:[^>]*-->\s*```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert found, "docs/alerts.md lost its example (the <!-- alerts-example --> marker)"
    return re.sub(r"(?m)^ {3}", "", found.group(1))  # the block is indented under a list item


@pytest.fixture
def config(tmp_path: Path) -> Path:
    # Tuesday 2026-09-29 08:45 in Shanghai, nobody has responded: the helper config's incident policy gives
    # 1 h of response on the office calendar (09:00-12:00, 13:30-18:00), so the response is due 10:00.
    common = dict(ticket_type="incident", priority="P2", status="NEW", opened_at="2026-09-29T08:45:00+08:00",
                  updated_at="2026-09-29T08:45:00+08:00", assignee="张伟")
    h.write_csv(tmp_path / "tickets.csv", [{**common, "ticket_id": "D1", "assignment_group": "桌面组"},
                                           {**common, "ticket_id": "N1", "assignment_group": "网络组"}], FIELDS)
    reporting, alerts = _example().split("[[alerts]]", 1)
    text = h.config_text(tmp_path / "store", {"kind": "csv", "path": str(tmp_path / "tickets.csv")},
                         extra="[[alerts]]" + alerts)
    # one [reporting] table: the example's keys join the helper's (Shanghai, four grains)
    text = text.replace("[reporting]\n", reporting.strip() + "\n", 1)
    path = tmp_path / "itsm-kpi.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_lists_its_teams_ticket_due_within_two_hours(config: Path) -> None:
    env = {"DESK_HOOK": "http://127.0.0.1:9/hook", "MANAGERS_HOOK": "http://127.0.0.1:9/m",
           "MANAGERS_SECRET": "SEC0"}
    run = h.cli("backfill", "--config", str(config), "--from", "2026-09-01", "--to", "2026-09-30",
                "--as-of", "2026-09-29T08:50:00+08:00", env={"DESK_HOOK": "", "MANAGERS_HOOK": ""})
    assert run.code == 0, run.err
    at_nine = h.cli("alerts", "--dry-run", "--config", str(config), "--as-of", "2026-09-29T09:00:00+08:00", env=env)
    assert at_nine.code == 0, at_nine.err
    (desk,) = [json.loads(line) for line in at_nine.out.splitlines() if '"due_soon"' in line]
    # D1's response is due 10:00 (in 09:00-11:00]; its resolution (16 h) is days away; N1 is another team's
    assert desk["alert"] == "desk"
    assert desk["body"]["markdown"]["content"] == "**即将超时（2h 内到期）：1 张工单**\n- D1 · 张伟 · 响应 (sla_2) 到期 2026-09-29 10:00\n[查看报告](https://kpi.example.com/2026Q3.html)"
    at_ten = h.cli("alerts", "--dry-run", "--config", str(config), "--as-of", "2026-09-29T10:00:00+08:00", env=env)
    assert '"due_soon"' not in at_ten.out  # due exactly at as_of: no longer in (as_of, as_of + 2h]


def test_the_dry_run_leaves_out_an_alert_whose_url_is_not_set_as_a_run_would(config: Path) -> None:
    run = h.cli("backfill", "--config", str(config), "--from", "2026-09-01", "--to", "2026-09-30",
                "--as-of", "2026-09-29T08:50:00+08:00", env={"DESK_HOOK": "", "MANAGERS_HOOK": ""})
    assert run.code == 0, run.err
    dry = h.cli("alerts", "--dry-run", "--config", str(config), "--as-of", "2026-09-29T09:00:00+08:00",
                env={"DESK_HOOK": "", "MANAGERS_HOOK": "http://127.0.0.1:9/m"})
    assert dry.code == 0, dry.err
    assert '"desk"' not in dry.out  # D1 is due within 2 h, but desk has no URL: a run would post nothing
    assert "alert desk is disabled" in dry.err and "DESK_HOOK" in dry.err
    assert "would be posted by 1 alert(s)" in dry.err
