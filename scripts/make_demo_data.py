"""Generate the bundled demo data: a quarter of an on-site IT team's tickets with their history.

    python scripts/make_demo_data.py            # writes pipeline/demo_data/{tickets,events}.csv

Seeded, so the files only change when this script does. The tickets are canonical (KPIS.md 1.1/1.2)
with local +08:00 timestamps and Chinese survey answers, like an export from a Chinese help desk.
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "pipeline" / "demo_data"
TZ = timezone(timedelta(hours=8))
START = datetime(2026, 7, 1, tzinfo=TZ)
DAYS = 92
ENGINEERS = {"网络组": ["张伟", "李娜"], "桌面组": ["王强", "刘洋", "陈静"], "系统组": ["赵磊", "孙悦"]}
CATEGORIES = {"网络组": ["网络故障", "VPN"], "桌面组": ["打印机", "电脑故障", "邮件"], "系统组": ["服务器", "数据库"]}
SURVEY = ["满意", "满意", "满意", "较满意", "较满意", "一般", "较不满意", "不满意"]
PRIORITY_WEIGHTS = {"P1": 0.05, "P2": 0.2, "P3": 0.5, "P4": 0.25}
RESOLVE_MINUTES = {"P1": 180, "P2": 480, "P3": 960, "P4": 2400}


def ts(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def working_moment(rng: random.Random) -> datetime:
    day = START + timedelta(days=rng.randrange(DAYS))
    while day.weekday() >= 5 and rng.random() < 0.85:
        day += timedelta(days=1)
    return day.replace(hour=rng.choice([9, 10, 11, 14, 15, 16, 17]), minute=rng.randrange(60))


class Generator:
    def __init__(self, seed: int = 20260701) -> None:
        self.rng = random.Random(seed)
        self.tickets: list[dict[str, str]] = []
        self.events: list[dict[str, str]] = []

    def event(self, ticket_id: str, at: datetime, kind: str, value: str = "", actor: str = "") -> None:
        self.events.append({"ticket_id": ticket_id, "at": ts(at), "kind": kind, "value": value, "actor": actor})

    def incident_or_request(self, n: int, ticket_type: str | None = None) -> None:
        rng = self.rng
        ticket_type = ticket_type or ("incident" if rng.random() < 0.75 else "request")
        team = rng.choice(list(ENGINEERS))
        engineer = rng.choice(ENGINEERS[team])
        priority = rng.choices(list(PRIORITY_WEIGHTS), weights=list(PRIORITY_WEIGHTS.values()))[0]
        ticket_id = f"{'INC' if ticket_type == 'incident' else 'REQ'}{n:05d}"
        opened = working_moment(rng)
        category = rng.choice(CATEGORIES[team])
        status = self.history(ticket_id, opened, team, engineer, priority, category)
        diagnosed = category if rng.random() < 0.85 else rng.choice(sum(CATEGORIES.values(), []))
        answered = status in ("RESOLVED", "CLOSED") and rng.random() < 0.6
        self.tickets.append({
            "ticket_id": ticket_id, "ticket_type": ticket_type, "priority": priority, "status": status,
            "opened_at": ts(opened), "assignee": engineer, "assignment_group": team, "category": category,
            "diagnosed_category": diagnosed, "satisfaction": rng.choice(SURVEY) if answered else "",
            "satisfaction_at": ts(opened + timedelta(days=rng.randint(1, 4))) if answered else "",
        })

    def history(self, ticket_id, opened, team, engineer, priority, category) -> str:
        rng = self.rng
        self.event(ticket_id, opened, "status", "NEW", "系统")
        at = opened + timedelta(minutes=rng.randint(1, 25))
        self.event(ticket_id, at, "group", team, "调度")
        self.event(ticket_id, at, "assignee", engineer, "调度")
        self.event(ticket_id, at, "category", category, engineer)
        at += timedelta(minutes=rng.choice([3, 8, 15, 25, 40, 70]))
        self.event(ticket_id, at, "response", "", engineer)
        self.event(ticket_id, at, "status", "IN_PROGRESS", engineer)
        if rng.random() < 0.15:
            at += timedelta(minutes=rng.randint(30, 600))
            self.event(ticket_id, at, "status", "WAITING_CUSTOMER", engineer)
            at += timedelta(minutes=rng.randint(30, 1440))
            self.event(ticket_id, at, "status", "IN_PROGRESS", engineer)
        if rng.random() < 0.1:
            at += timedelta(minutes=rng.randint(10, 120))
            other = rng.choice([e for e in ENGINEERS[team] if e != engineer] or [engineer])
            self.event(ticket_id, at, "assignee", other, "调度")
        if rng.random() < 0.06:
            return "IN_PROGRESS"
        at += timedelta(minutes=int(rng.expovariate(1 / RESOLVE_MINUTES[priority])) + 5)
        self.event(ticket_id, at, "status", "RESOLVED", engineer)
        if rng.random() < 0.07:
            at += timedelta(hours=rng.randint(2, 30))
            self.event(ticket_id, at, "status", "IN_PROGRESS", "用户")
            at += timedelta(minutes=rng.randint(30, 600))
            self.event(ticket_id, at, "status", "RESOLVED", engineer)
        if rng.random() < 0.8:
            self.event(ticket_id, at + timedelta(days=3), "status", "CLOSED", "系统")
            return "CLOSED"
        return "RESOLVED"

    def maintenance(self, n: int) -> str:
        rng = self.rng
        team = rng.choice(list(ENGINEERS))
        engineer = rng.choice(ENGINEERS[team])
        ticket_id = f"CHG{n:05d}"
        planned_start = working_moment(rng).replace(hour=20, minute=0)
        planned_end = planned_start + timedelta(hours=rng.choice([2, 4, 6]))
        outcome = rng.random()
        actual_end = planned_end - timedelta(minutes=rng.randint(5, 90)) if outcome < 0.8 \
            else planned_end + timedelta(minutes=rng.randint(10, 180))
        close_code = "rolled_back" if outcome > 0.95 else "successful"
        self.tickets.append({
            "ticket_id": ticket_id, "ticket_type": "maintenance", "priority": "P3", "status": "CLOSED",
            "opened_at": ts(planned_start - timedelta(days=3)), "assignee": engineer, "assignment_group": team,
            "category": rng.choice(["系统升级", "数据备份", "容灾演练", "补丁"]), "close_code": close_code,
            "planned_start": ts(planned_start), "planned_end": ts(planned_end), "actual_end": ts(actual_end),
            "resolved_at": ts(actual_end), "closed_at": ts(actual_end + timedelta(hours=1)),
        })
        return ticket_id

    def induced_incident(self, n: int, change_id: str) -> None:
        self.incident_or_request(n, "incident")
        self.tickets[-1]["caused_by"] = change_id


def write(rows: list[dict[str, str]], path: Path, columns: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})


def main() -> None:
    gen = Generator()
    changes = [gen.maintenance(n) for n in range(1, 25)]
    for n in range(1, 321):
        gen.incident_or_request(n)
    for n, change in zip(range(900, 904), gen.rng.sample(changes, 4), strict=True):
        gen.induced_incident(n, change)
    gen.tickets.append({"ticket_id": "INC00990", "ticket_type": "incident", "priority": "P4",
                        "status": "CANCELLED", "opened_at": ts(START + timedelta(days=10, hours=3))})
    OUT.mkdir(parents=True, exist_ok=True)
    ticket_columns = ["ticket_id", "ticket_type", "priority", "status", "opened_at", "resolved_at", "closed_at",
                      "assignee", "assignment_group", "category", "diagnosed_category", "close_code", "satisfaction",
                      "satisfaction_at", "planned_start", "planned_end", "actual_end", "caused_by"]
    write(gen.tickets, OUT / "tickets.csv", ticket_columns)
    write(gen.events, OUT / "events.csv", ["ticket_id", "at", "kind", "value", "actor"])
    write(APPROVALS, OUT / "exemptions.csv", list(APPROVALS[0]))
    print(f"wrote {len(gen.tickets)} tickets, {len(gen.events)} events and {len(APPROVALS)} approvals to {OUT}")


def _approval(ticket: str, scope: str, reason: str, by: str, at: str) -> dict[str, str]:
    return {"工单号": ticket, "豁免范围": scope, "原因": reason, "审批人": by, "审批时间": at}


# The client's signed-off exemptions of the quarter (docs/disputes.md), as a manager keeps them in a sheet:
# Chinese headers, the scope as 响应 / 解决 / 整单, local times without an offset. INC00089 was approved twice.
APPROVALS = [
    _approval("INC00004", "响应", "第三方原因：门禁故障，无法进入机房", "王主任", "2026-07-10 09:00"),
    _approval("INC00034", "解决", "第三方原因：运营商线路故障", "王主任", "2026-08-20 15:30"),
    _approval("INC00089", "解决", "客户原因：等待客户提供备件", "李处长", "2026-08-20 15:30"),
    _approval("INC00089", "解决", "客户原因：等待客户提供备件", "李处长", "2026-08-25 09:00"),
    _approval("INC00095", "整单", "不可抗力：台风导致机房停电", "王主任", "2026-09-20 11:00"),
    _approval("INC00031", "解决", "客户原因：客户要求次日上门", "王主任", "2026-09-28 10:00"),
]


if __name__ == "__main__":
    main()
