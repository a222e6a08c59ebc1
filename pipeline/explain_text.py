"""``itsm-kpi explain`` for a person: the explanation (``pipeline.explain``) as lines of text, in zh or en.

Only formatting: every number and verdict comes from the explanation as computed. Times are local times of
the reporting timezone; durations are business time (calendar time where it says so).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["MESSAGES", "render"]

MESSAGES: dict[str, dict[str, str]] = {
    "title": {"en": "{ticket} (source {source}), as the run of {as_of} computed it ({tz})",
              "zh": "{ticket}（来源 {source}），按 {as_of} 的运行计算（{tz}）"},
    "differs": {"en": "note: the stored row differs from this recomputation in {columns}: the input or the settings "
                      "changed since; the next run brings it up to date",
                "zh": "注意：存储的结果与本次重算在 {columns} 上不同：输入或配置已变化，下次运行会更新"},
    "config_settings": {"en": "note: the store recorded no KPI settings; the config's are used",
                        "zh": "注意：存储中没有记录指标配置，使用配置文件中的配置"},
    "as_read": {"en": "As read", "zh": "原始记录"},
    "response": {"en": "Response SLA", "zh": "响应时限"},
    "resolution": {"en": "Resolution SLA", "zh": "解决时限"},
    "no_policy": {"en": "no SLA policy matches: no verdict; time on the default calendar {calendar}",
                  "zh": "没有匹配的 SLA 策略：不考核；按默认日历 {calendar} 计时"},
    "policy": {"en": "policy {name} ({conditions}), calendar {calendar}, target {target}",
               "zh": "策略 {name}（{conditions}），日历 {calendar}，目标 {target}"},
    "any_ticket": {"en": "matches every ticket", "zh": "适用所有工单"},
    "pauses": {"en": "paused in {statuses}", "zh": "暂停状态 {statuses}"},
    "stopped": {"en": "{what} {at}: {business} business time ({calendar} calendar)",
                "zh": "{what} {at}：工作时间 {business}（日历时间 {calendar}）"},
    "responded": {"en": "responded", "zh": "响应于"},
    "resolved": {"en": "resolved", "zh": "解决于"},
    "running": {"en": "not stopped yet at the as_of", "zh": "截至计算时间尚未完成"},
    "due": {"en": "due {at}", "zh": "到期 {at}"},
    "no_due": {"en": "no due time", "zh": "无到期时间"},
    "verdict": {"en": "verdict: {sla}", "zh": "结论：{sla}"},
    "timeline": {"en": "timeline (business time on calendar {calendar}):", "zh": "状态时间线（按日历 {calendar} 计工作时间）："},
    "counted": {"en": "counted {total} = resolution_business_s {seconds}", "zh": "计入 {total} = resolution_business_s {seconds}"},
    "counted_open": {"en": "counted so far {total}", "zh": "截至目前计入 {total}"},
    "first_fix": {"en": "First fix: {value} (reopened: {reopened}, reassigned: {reassigned})",
                  "zh": "一次解决：{value}（重开：{reopened}，转派：{reassigned}）"},
    "diagnosis": {"en": "Diagnosis: initial {initial}, final {final}: {value}",
                  "zh": "诊断：初步 {initial}，最终 {final}：{value}"},
    "credited": {"en": "Credited to engineer {engineer}, team {team}", "zh": "计入工程师 {engineer}，团队 {team}"},
    "events": {"en": "Events that decided:", "zh": "起决定作用的事件："},
    "exemptions": {"en": "Exemptions:", "zh": "豁免："},
    "no_exemptions": {"en": "Exemptions: none", "zh": "豁免：无"},
    "exemption": {"en": "{scope}: {reason}, approved by {by} on {at}: {applied}; {field}: {without} -> {with}",
                  "zh": "{scope}：{reason}，{by} 于 {at} 批准：{applied}；{field}：{without} -> {with}"},
    "applied": {"en": "applied", "zh": "已生效"},
    "not_applied": {"en": "not applied (approved after the as_of)", "zh": "未生效（批准时间晚于计算时间）"},
    "credits": {"en": "Counted in (period rows):", "zh": "计入的统计行："},
    "no_credits": {"en": "Counted in no KPI (excluded: {reason})", "zh": "不计入任何指标（排除原因：{reason}）"},
    "credit": {"en": "{anchor} {day} -> {engineer} / {team}, {ticket_type}{whose}: {periods}; {counts}",
               "zh": "{anchor} {day} -> {engineer} / {team}，{ticket_type}{whose}：{periods}；{counts}"},
    "whose": {"en": " (ticket {ticket})", "zh": "（工单 {ticket}）"},
    "yes": {"en": "yes", "zh": "是"}, "no": {"en": "no", "zh": "否"}, "none": {"en": "none", "zh": "无"},
    "accurate": {"en": "accurate", "zh": "准确"}, "inaccurate": {"en": "not accurate", "zh": "不准确"},
    "not_assessable": {"en": "not assessable", "zh": "不可评估"},
    "working": {"en": "working", "zh": "计时"}, "pause": {"en": "pause", "zh": "暂停"},
    "reopen gap": {"en": "reopen gap", "zh": "重开间隔"},
}
_UNITS = {"en": ("d", "h", "m", "s"), "zh": ("天", "小时", "分", "秒")}


def render(explanation: dict[str, Any], lang: str) -> list[str]:
    """The explanation as lines of text in ``lang`` (zh or en)."""
    text = _Text(lang, explanation["reporting_timezone"])
    e = explanation
    lines = [text("title", ticket=e["ticket_id"], source=e["source"], as_of=text.time(e["as_of"]),
                  tz=e["reporting_timezone"])]
    if e["settings"] == "config":
        lines.append(text("config_settings"))
    if not e["matches_stored"]:
        lines.append(text("differs", columns=", ".join(e["differences"])))
    lines.append(f"{text('as_read')}: " + ", ".join(f"{k} {text.value(v)}" for k, v in e["ticket"].items()
                                                 if k not in ("ticket_id", "source")))
    for metric in ("response", "resolution"):
        lines += _metric(text, e, metric)
    lines += _rework(text, e["facts"])
    lines += _events(text, e["events"])
    lines += _exemptions(text, e["exemptions"])
    lines += _credits(text, e)
    return lines


class _Text:
    """Messages, times and durations in one language."""

    def __init__(self, lang: str, timezone: str) -> None:
        self.lang, self.timezone = lang, timezone

    def __call__(self, message: str, **values: Any) -> str:
        return MESSAGES[message][self.lang].format(**values)

    def time(self, iso: str | None) -> str:
        if iso is None:
            return "—"
        return pd.Timestamp(iso).tz_convert(self.timezone).strftime("%Y-%m-%d %H:%M")

    def duration(self, seconds: int | None) -> str:
        if seconds is None:
            return "—"
        d, rest = divmod(int(seconds), 86400)
        h, rest = divmod(rest, 3600)
        m, s = divmod(rest, 60)
        parts = [f"{n}{unit}" for n, unit in zip((d, h, m, s), _UNITS[self.lang], strict=True) if n]
        return "".join(parts) if parts else f"0{_UNITS[self.lang][2]}"

    def value(self, value: Any) -> str:
        if isinstance(value, bool):
            return self("yes" if value else "no")
        if value is None:
            return self("none")
        if isinstance(value, str) and len(value) >= 19 and value[10] == "T":
            return self.time(value)
        return str(value)


def _metric(text: _Text, e: dict[str, Any], metric: str) -> list[str]:
    """The metric's policy (or none), when it stopped with its durations, due time and verdict; for the
    resolution, the timeline. A ticket no policy matches still has durations: they feed the time KPIs."""
    m = e["metrics"][metric]
    head = f"{text(metric)}: "
    stop = text("stopped", what=text("responded" if metric == "response" else "resolved"), at=text.time(m["stop_at"]),
                business=text.duration(m["business_s"]), calendar=text.duration(m["calendar_s"])) \
        if m["stop_at"] else text("running")
    if m["policy"] is None:
        lines = [head + text("no_policy", calendar=m["calendar"]), f"  {stop}"]
    else:
        due = text("due", at=text.time(m["due_at"])) if m["due_at"] else text("no_due")
        lines = [head + _policy(text, m, metric), f"  {stop}; {due}; {text('verdict', sla=text.value(m['sla']))}"]
    if metric == "resolution":
        lines += _timeline(text, e, m)
    return lines


def _policy(text: _Text, m: dict[str, Any], metric: str) -> str:
    conditions = ", ".join(f"{name} = {c['ticket']} ∈ {c['accepts']}" for name, c in m["conditions"].items())
    policy = text("policy", name=m["policy"], conditions=conditions or text("any_ticket"), calendar=m["calendar"],
                  target=text.duration(m["target_s"]))
    if metric == "resolution":
        policy += "; " + text("pauses", statuses=", ".join(m["pause_statuses"]) or text("none"))
    return policy


def _timeline(text: _Text, e: dict[str, Any], m: dict[str, Any]) -> list[str]:
    lines = [f"  {text('timeline', calendar=m['calendar'])}"]
    for s in e["segments"]:
        lines.append(f"    {text.time(s['start'])} -> {text.time(s['end'])}  {s['status'] or '—':<20} "
                     f"{text.duration(s['business_s']):>10}  {text(s['why'])}")
    total = sum(s["business_s"] for s in e["segments"] if s["counted"])
    if m["stop_at"] is not None and e["facts"]["resolution_business_s"] is not None:
        lines.append("  " + text("counted", total=text.duration(total), seconds=e["facts"]["resolution_business_s"]))
    else:
        lines.append("  " + text("counted_open", total=text.duration(total)))
    return lines


def _rework(text: _Text, f: dict[str, Any]) -> list[str]:
    reopened = f"{text.value(f['reopened'])} ({f['reopen_count']})"
    lines = [text("first_fix", value=text.value(f["first_fix"]), reopened=reopened,
                  reassigned=text.value(f["reassigned"]))]
    verdict = "not_assessable" if not f["diagnosis_assessable"] else ("accurate" if f["diagnosis_accurate"]
                                                                      else "inaccurate")
    lines.append(text("diagnosis", initial=text.value(f["initial_diagnosis"]), final=text.value(f["category"]),
                      value=text(verdict)))
    lines.append(text("credited", engineer=f["engineer"], team=f["team"]))
    return lines


def _events(text: _Text, events: list[dict[str, Any]]) -> list[str]:
    deciding = [ev for ev in events if ev["decides"]]
    if not deciding:
        return []
    return [text("events")] + [f"  {text.time(ev['at'])}  {ev['kind']} {text.value(ev['value'])} "
                               f"({text.value(ev['actor'])}): {', '.join(ev['decides'])}" for ev in deciding]


def _exemptions(text: _Text, exemptions: list[dict[str, Any]]) -> list[str]:
    if not exemptions:
        return [text("no_exemptions")]
    return [text("exemptions")] + [
        "  " + text("exemption", scope=x["scope"], reason=x["reason"], by=x["approved_by"], at=text.time(x["approved_at"]),
                    applied=text("applied" if x["applied"] else "not_applied"), field=x["field"],
                    without=text.value(x["without"]), **{"with": text.value(x["with"])})
        for x in exemptions]


def _credits(text: _Text, e: dict[str, Any]) -> list[str]:
    if not e["credits"]:
        return [text("no_credits", reason=text.value(e["facts"]["excluded_reason"]))]
    lines = [text("credits")]
    for c in e["credits"]:
        periods = ", ".join(f"{grain} {start}" for grain, start in c["periods"].items())
        whose = text("whose", ticket=c["ticket_id"]) if c["ticket_id"] != e["ticket_id"] else ""
        lines.append("  " + text("credit", anchor=c["anchor"], day=c["day"], engineer=c["engineer"], team=c["team"],
                                 ticket_type=c["ticket_type"], whose=whose, periods=periods,
                                 counts=", ".join(c["counts"])))
    return lines
