"""The README's two-client service-level example is a working config: run on three tickets, it gives the
policies and due times the README promises, worked out by hand below."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.pipeline.e2e_helpers import cli, read_pyarrow, write_csv

REPO = Path(__file__).resolve().parents[1]
FIELDS = ("ticket_id", "ticket_type", "priority", "status", "opened_at", "assignee", "assignment_group",
          "client", "service")


def _two_clients_config() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- two-clients:[^>]*-->\s*```toml\n(.*?)```", text, re.S)
    assert found, "README.md lost its two-client example (the <!-- two-clients --> marker)"
    return found.group(1)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the example's paths are relative: to the working directory, as a cron job's
    (tmp_path / "itsm-kpi.toml").write_text(_two_clients_config(), encoding="utf-8")
    # Tuesday 2026-09-15, 11:50 in Shanghai: ten minutes before lunch (12:00-13:30); no holiday that week
    opened = "2026-09-15T11:50:00+08:00"
    rows = [
        dict(ticket_id="E1", client="ACME", service="ERP"),
        dict(ticket_id="P1", client="Globex", service="Printer"),
        dict(ticket_id="M1", client="ACME", service="Email"),
    ]
    common = dict(ticket_type="incident", priority="P2", status="IN_PROGRESS", opened_at=opened,
                  assignee="张伟", assignment_group="桌面组")
    (tmp_path / "exports").mkdir()
    write_csv(tmp_path / "exports" / "tickets.csv", [{**common, **r} for r in rows], FIELDS)
    result = cli("backfill", "--config", str(tmp_path / "itsm-kpi.toml"), "--from", "2026-09-01",
                 "--to", "2026-09-30", "--as-of", "2026-09-15T04:00:00Z")  # 12:00 local
    assert result.code == 0, result.err
    return tmp_path / "kpi-store"


def test_each_client_gets_its_contracts_policy_and_due_times(store: Path) -> None:
    facts = read_pyarrow(store, "ticket_facts").set_index("ticket_id")
    local = {c: facts[c].dt.tz_convert("Asia/Shanghai").dt.strftime("%m-%d %H:%M")
             for c in ("response_due_at", "resolution_due_at")}
    # E1: ACME's ERP, acme-erp on 24x7: 11:50 + 15 min = 12:05; 11:50 + 2 h = 13:50
    assert facts.loc["E1", "response_policy"] == facts.loc["E1", "resolution_policy"] == "acme-erp"
    assert (local["response_due_at"]["E1"], local["resolution_due_at"]["E1"]) == ("09-15 12:05", "09-15 13:50")
    # P1: Globex, office hours. Response 1 h: 10 min before lunch, 50 min after 13:30 -> 14:20.
    # Resolution 8 h: Tue 10 min + 4 h 30 (13:30-18:00) = 4 h 40; Wed 09:00-12:00 = 3 h -> 7 h 40;
    # the last 20 min after Wed's lunch -> Wed 13:50.
    assert facts.loc["P1", "resolution_policy"] == "globex"
    assert (local["response_due_at"]["P1"], local["resolution_due_at"]["P1"]) == ("09-15 14:20", "09-16 13:50")
    # M1: ACME but e-mail, so not acme-erp (service ERP) nor globex: standard-incident on the office calendar.
    # Response 30 min: 10 min + 20 min after lunch -> 13:50. Resolution 16 h: Tue 4 h 40 + Wed 7 h 30
    # = 12 h 10; Thu 09:00-12:00 = 3 h -> 15 h 10; the last 50 min after Thu's lunch -> Thu 14:20.
    assert facts.loc["M1", "resolution_policy"] == "standard-incident"
    assert (local["response_due_at"]["M1"], local["resolution_due_at"]["M1"]) == ("09-15 13:50", "09-17 14:20")


def test_validate_accepts_it(store: Path) -> None:
    result = cli("validate", "--config", str(store.parent / "itsm-kpi.toml"))
    assert result.code == 0, result.err
    assert "1 source(s) checked, no problem" in result.out
