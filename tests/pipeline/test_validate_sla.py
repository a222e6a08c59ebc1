"""``itsm-kpi validate`` counts, per source, the tickets each ``[[sla]]`` policy matches and names the ones
that match nothing; a client/service condition no ticket can meet is a warning there and in the run summary.

The month export (ops_helpers) without INC0999 (an unmapped status): 99 tickets = 72 incidents P2-P4,
24 requests, INC0900 an incident P1, two maintenance tickets. Policies, first match wins:
acme (client = ACME), sla_2 (incident P1), sla_3 (incident), sla_4 (request); no ticket has a client.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ops_helpers import DAY1_AS_OF, cli, month_export, run, write_config, write_export

ACME = '[[sla]]\nname = "acme"\nclient = "ACME"\nresponse = "15m"\nresolution = "2h"\n\n'


def _config(tmp_path: Path) -> Path:
    tickets, events = month_export()
    tickets = [t for t in tickets if t["ticket_id"] != "INC0999"]  # no mapping problem: only the warning
    write_export(tmp_path / "exports", "2026-07-31", tickets, events)
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'kpi.sqlite'}", sources={"helpdesk": tmp_path / "exports"})
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[[sla]]\n", ACME + "[[sla]]\n", 1), encoding="utf-8")
    return config


def test_validate_counts_the_tickets_each_policy_matches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    capsys.readouterr()
    assert cli("validate", "--config", str(config), "--json") == 0  # a warning is no failure
    report = json.loads(capsys.readouterr().out)
    (source,) = report["sources"]
    assert (report["ok"], source["ok"], source["problems"]) == (True, True, [])
    # 1 + 72 + 24 matched, the 2 maintenance tickets match none: 99 in all; acme matches nothing
    assert source["sla"] == {"tickets": 99, "policies": {"acme": 0, "sla_2": 1, "sla_3": 72, "sla_4": 24},
                             "no_policy": 2, "unused": ["acme"]}
    assert len(source["warnings"]) == 1 and "acme" in source["warnings"][0] and "client" in source["warnings"][0]

    assert cli("validate", "--config", str(config)) == 0
    out = capsys.readouterr().out
    assert "SLA policies on 99 tickets read: acme 0, sla_2 1, sla_3 72, sla_4 24; no policy 2" in out
    assert "policies matching no ticket read: acme" in out
    assert "warning: [[sla]] acme: condition client matches no ticket" in out


def test_the_run_summary_warns_of_a_client_condition_no_ticket_can_meet(tmp_path: Path) -> None:
    summary = run(_config(tmp_path), "run", DAY1_AS_OF)
    assert summary.status == "success"
    assert len(summary.warnings) == 1 and "[[sla]] acme: condition client matches no ticket" in summary.line()


def test_no_warning_without_a_client_condition(tmp_path: Path) -> None:
    write_export(tmp_path / "exports", "2026-07-31", *month_export())
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'kpi.sqlite'}", sources={"helpdesk": tmp_path / "exports"})
    summary = run(config, "run", DAY1_AS_OF)
    assert summary.warnings == [] and "warning" not in summary.line()


def test_validate_names_the_rows_a_run_would_quarantine_after_mapping(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tickets, events = month_export()
    tickets = [t for t in tickets if t["ticket_id"] != "INC0999"]
    by_id = {t["ticket_id"]: t for t in tickets}
    by_id["INC0001"]["satisfaction"] = "非常好"  # not in the config's satisfaction_map
    by_id["INC0002"]["ticket_id"] = ""  # maps, then misses the key every ticket needs
    events.append(dict(ticket_id="INC0005", at=by_id["INC0005"]["opened_at"], kind="comment", value="hi", actor="x"))
    events.append(dict(ticket_id="INC7777", at=by_id["INC0005"]["opened_at"], kind="status", value="NEW", actor="x"))
    write_export(tmp_path / "exports", "2026-07-31", tickets, events)
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'kpi.sqlite'}", sources={"helpdesk": tmp_path / "exports"})
    capsys.readouterr()
    assert cli("validate", "--config", str(config), "--json") == 3  # a run would reject these rows
    (source,) = json.loads(capsys.readouterr().out)["sources"]
    assert sorted(source["problems"]) == [
        "source helpdesk: missing ticket_id (1 ticket row)",
        "source helpdesk: unknown event kind 'comment' (1 event row)",
        "source helpdesk: unmappable satisfaction '非常好' (1 ticket row)",
    ]  # INC7777's event is not named: a page cannot tell a later page's ticket from an unknown one


def test_validate_does_not_warn_of_events_whose_ticket_is_on_a_later_page(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 1001 tickets: the check reads the first 1000 rows of each file, and the events come newest ticket first
    opened = "2026-07-01T09:00:00+08:00"
    tickets = [dict(ticket_id=f"T{i:04d}", ticket_type="incident", priority="P3", status="NEW", opened_at=opened,
                    updated_at=opened) for i in range(1001)]
    events = [dict(ticket_id=f"T{i:04d}", at=opened, kind="status", value="NEW", actor="x") for i in reversed(range(1001))]
    write_export(tmp_path / "exports", "2026-07-01", tickets, events)
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'kpi.sqlite'}", sources={"helpdesk": tmp_path / "exports"})
    capsys.readouterr()
    assert cli("validate", "--config", str(config)) == 0
    assert "quarantined" not in capsys.readouterr().err  # T1000's event is fine: its ticket is row 1001
