"""Alert messages per format and language (CONTRACT.md, Alerts)."""

from __future__ import annotations

import pytest

from pipeline.alerts.messages import CHAT_ITEMS, payload
from pipeline.alerts.rules import AlertContext

ITEMS = [{"source": "hd", "ticket_id": f"T{i}", "engineer": "ann", "metric": "resolution", "policy": "p1",
          "due_at": "2026-09-10T06:00:00+00:00"} for i in range(23)]
ZH = AlertContext(as_of_iso="2026-09-10T08:00:00+00:00", language="zh", timezone="Asia/Shanghai",
                  report_url="https://kpi.example/r")
EN = AlertContext(as_of_iso="2026-09-10T08:00:00+00:00", language="en", timezone="Asia/Shanghai")


def test_json_lists_every_item() -> None:
    body = payload("json", "desk", "breached", ITEMS, EN, 3600)
    assert body == {"alert": "desk", "kind": "breached", "as_of": EN.as_of_iso, "items": ITEMS}


@pytest.mark.parametrize("fmt", ["wecom", "dingtalk", "slack", "teams"])
def test_chat_formats_show_twenty_items_and_count_the_rest(fmt: str) -> None:
    text = str(payload(fmt, "desk", "breached", ITEMS, ZH, 3600))
    assert "T19" in text and "T20" not in text  # the first 20 of 23
    assert "另有 3 条" in text
    assert "SLA 已超时：23 张工单" in text
    assert "https://kpi.example/r" in text
    assert "2026-09-10 14:00" in text  # the due time in the reporting timezone
    assert CHAT_ITEMS == 20


def test_chat_shapes_per_vendor() -> None:
    wecom = payload("wecom", "desk", "due_soon", ITEMS[:1], EN, 4 * 3600)
    assert wecom["msgtype"] == "markdown" and wecom["markdown"]["content"].startswith("**Due within 4h: 1 ticket(s)**")
    ding = payload("dingtalk", "desk", "due_soon", ITEMS[:1], EN, 5400)
    assert ding["markdown"]["title"] == "Due within 1h30m: 1 ticket(s)"
    slack = payload("slack", "desk", "breached", ITEMS[:1], EN, 0)
    assert slack["text"] == "SLA breached: 1 ticket(s)" and slack["blocks"][0]["text"]["type"] == "mrkdwn"
    assert "**" not in slack["blocks"][0]["text"]["text"]
    teams = payload("teams", "desk", "breached", ITEMS[:1], ZH, 0)
    assert teams["@type"] == "MessageCard"
    assert teams["potentialAction"][0]["targets"][0]["uri"] == "https://kpi.example/r"


def test_run_failed_and_below_target_lines() -> None:
    failed = payload("wecom", "desk", "run_failed", [{"run_id": "run-1", "status": "failed", "reason": "store full"}],
                     EN, 0)
    assert "failed: store full (run-1)" in failed["markdown"]["content"]
    partial = payload("wecom", "desk", "run_failed", [{"run_id": "run-2", "status": "partial",
                                                       "reason": "sn: timed out"}], ZH, 0)["markdown"]["content"]
    assert partial.startswith("**itsm-kpi 部分数据源读取失败（其余数据已更新）**\n- partial: sn: timed out (run-2)")


def test_below_target_lines_name_the_kpi_and_the_direction_of_its_target() -> None:
    items = [{"engineer": "ann", "kpi": "first_fix_rate", "value": 0.7, "target": 0.8, "higher_is_better": True},
             {"engineer": "ann", "kpi": "induced_incidents", "value": 1.0, "target": 0.0, "higher_is_better": False},
             {"engineer": "bo", "kpi": "response_median_min", "value": 42.25, "target": 30.0,
              "higher_is_better": False}]
    en = payload("wecom", "desk", "below_target", items, EN, 0)["markdown"]["content"].split("\n")
    assert en[1:] == ["- ann · First-fix rate 70.0% (target ≥ 80.0%)",
                      "- ann · Induced incidents 1 (target ≤ 0)",
                      "- bo · response_median_min 42.25 (target ≤ 30)"]  # no report label: the column name
    zh = payload("wecom", "desk", "below_target", items[:2], ZH, 0)["markdown"]["content"].split("\n")
    assert zh[1:3] == ["- ann · 一次解决率 70.0%（目标 ≥ 80.0%）", "- ann · 操作引发故障 1（目标 ≤ 0）"]
