"""Alert messages in each webhook format (CONTRACT.md, Alerts): ``json`` lists every item; the chat formats
(WeCom and DingTalk robot markdown, Slack blocks, a Teams message card) show the first 20 with a count of
the rest and the report link, in Chinese or English."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from pipeline.alerts.rules import AlertContext
from pipeline.analyst.report_messages import translator

CHAT_ITEMS = 20

#: message id -> (zh, en)
TEXT: dict[str, tuple[str, str]] = {
    "breached": ("SLA 已超时：{n} 张工单", "SLA breached: {n} ticket(s)"),
    "due_soon": ("即将超时（{within} 内到期）：{n} 张工单", "Due within {within}: {n} ticket(s)"),
    "below_target": ("本月未达标：{n} 项指标", "Below target this month: {n} KPI(s)"),
    "run_failed": ("itsm-kpi 运行失败", "itsm-kpi run failed"),
    "run_partial": ("itsm-kpi 部分数据源读取失败（其余数据已更新）", "itsm-kpi run partial: a source could not be read"),
    "response": ("响应", "response"),
    "resolution": ("解决", "resolution"),
    "due": ("到期 {at}", "due {at}"),
    "more": ("……另有 {n} 条", "... and {n} more"),
    "report": ("查看报告", "Open the report"),
    "no_policy": ("无策略", "no policy"),
    "target": ("（目标 {sign} {target}）", " (target {sign} {target})"),
}


def text(message_id: str, language: str, **values: Any) -> str:
    """One message in ``language`` (zh or en), with ``values`` filled in."""
    zh, en = TEXT[message_id]
    return (zh if language == "zh" else en).format(**values)


def title(kind: str, items: list[dict], context: AlertContext, due_within_s: int) -> str:
    """The headline of one message."""
    if kind == "run_failed" and items and items[0].get("status") == "partial":
        kind = "run_partial"
    return text(kind, context.language, n=len(items), within=_duration(due_within_s))


def item_line(kind: str, item: dict, context: AlertContext) -> str:
    """One item as a line of a chat message."""
    lang = context.language
    if kind == "below_target":
        return _below_target_line(item, lang)
    if kind == "run_failed":
        return f"{item['status']}: {item['reason']} ({item['run_id']})"
    policy = item.get("policy") or text("no_policy", lang)
    due = text("due", lang, at=_local(item.get("due_at"), context.timezone)) if item.get("due_at") else ""
    return f"{item['ticket_id']} · {item['engineer']} · {text(item['metric'], lang)} ({policy}) {due}".rstrip()


def _below_target_line(item: dict, lang: str) -> str:
    """``赵磊 · 一次解决率 76.9%（目标 ≥ 80.0%）``: the KPI by its report label, the target's direction."""
    kpi = item["kpi"]
    label = translator(lang)(kpi, fallback=kpi)
    sign = "≥" if item.get("higher_is_better", True) else "≤"
    target = text("target", lang, sign=sign, target=_figure(item["target"], kpi))
    return f"{item['engineer']} · {label} {_figure(item['value'], kpi)}{target}"


def json_payload(alert: str, kind: str, items: list[dict], context: AlertContext) -> dict:
    """``{"alert", "kind", "as_of", "items"}`` with every item."""
    return {"alert": alert, "kind": kind, "as_of": context.as_of_iso, "items": items}


def markdown(kind: str, items: list[dict], context: AlertContext, due_within_s: int,
             link: Callable[[str, str], str] = lambda label, url: f"[{label}]({url})", bullet: str = "- ") -> str:
    """The chat body: a bold title, the first 20 items, how many more, and the report link."""
    lines = [f"**{title(kind, items, context, due_within_s)}**"]
    lines += [bullet + item_line(kind, item, context) for item in items[:CHAT_ITEMS]]
    if len(items) > CHAT_ITEMS:
        lines.append(text("more", context.language, n=len(items) - CHAT_ITEMS))
    if context.report_url:
        lines.append(link(text("report", context.language), context.report_url))
    return "\n".join(lines)


def payload(fmt: str, alert: str, kind: str, items: list[dict], context: AlertContext, due_within_s: int) -> dict:
    """The JSON body to post for one kind's items in webhook format ``fmt``."""
    if fmt == "json":
        return json_payload(alert, kind, items, context)
    head = title(kind, items, context, due_within_s)
    if fmt == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": markdown(kind, items, context, due_within_s)}}
    if fmt == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": head, "text": markdown(kind, items, context, due_within_s)}}
    if fmt == "slack":
        body = markdown(kind, items, context, due_within_s, link=lambda label, url: f"<{url}|{label}>", bullet="• ")
        body = body.replace("**", "*")  # Slack mrkdwn bolds with single asterisks
        return {"text": head, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body}}]}
    if fmt == "teams":
        return _teams_card(head, kind, items, context, due_within_s)
    raise ValueError(f"unknown alert format {fmt!r}")


def _teams_card(head: str, kind: str, items: list[dict], context: AlertContext, due_within_s: int) -> dict:
    body = markdown(kind, items, context, due_within_s, link=lambda label, url: "").strip()
    card: dict[str, Any] = {"@type": "MessageCard", "@context": "https://schema.org/extensions", "summary": head,
                            "title": head, "text": body.split("\n", 1)[1].replace("\n", "  \n") if "\n" in body else ""}
    if context.report_url:
        card["potentialAction"] = [{"@type": "OpenUri", "name": text("report", context.language),
                                    "targets": [{"os": "default", "uri": context.report_url}]}]
    return card


def _local(iso: str | None, timezone: str) -> str:
    return pd.Timestamp(iso).tz_convert(timezone).strftime("%Y-%m-%d %H:%M") if iso else ""


def _duration(seconds: int) -> str:
    hours, rest = divmod(int(seconds), 3600)
    minutes = rest // 60
    return f"{hours}h{minutes:02d}m" if hours and minutes else f"{hours}h" if hours else f"{minutes}m"


def _figure(value: float | None, kpi: str) -> str:
    """A KPI's value as the report writes it: rates as percentages, others with four significant digits."""
    if value is None:
        return "-"
    return f"{value * 100:.1f}%" if kpi.endswith("_rate") else f"{value:.4g}"
