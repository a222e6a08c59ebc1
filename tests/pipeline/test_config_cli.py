"""Bad config at the door, through the real command line: one line per problem naming the file, the key
and what to do; exit 2 in every command; nothing recorded, no store created, no server contacted (a real
HTTP server on 127.0.0.1 stands in for ServiceNow and fails the test if it is asked anything).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import e2e_helpers as h
import pytest
from jsonschema import Draft202012Validator
from pytest_httpserver import HTTPServer

from kpis.schema import KPI_VERSION

REPO = Path(__file__).resolve().parents[2]

CONFIG = """\
[store]
path = "{store}"

[reporting]
timezone = "Asia/Shanghai"
min_sample = 10

[[sla]]
ticket_type = "incident"
priority = "P1"
response = "30m"
resolution = "4h"

[[scorecard]]
kpi = "first_fix_rate"
target = 0.8
weight = 1

[[sources]]
name = "helpdesk"
kind = "csv"
path = "{export}"
timezone = "Asia/Shanghai"
options = {{ delimiter = "," }}

[[sources]]
name = "sn"
kind = "servicenow"
url = "{url}"
username = "kpi_reader"
password_env = "SN_PASSWORD"
options = {{ tables = ["incident"] }}
"""

BAD = {  # what the user wrote instead -> what the one line must say
    "misspelt file option": ('delimiter = ","', 'delimiterr = ","',
                             "sources['helpdesk'].options.delimiterr: unknown option (did you mean 'delimiter'?)"),
    "misspelt REST option": ('tables = ["incident"]', 'tabels = ["incident"]',
                             "sources['sn'].options.tabels: unknown option (did you mean 'tables'?)"),
    "misspelt key": ("min_sample = 10", "min_sampel = 10", "reporting.min_sampel: unknown key (did you mean 'min_sample'?)"),
    "misspelt columns entry": ('options = {{ delimiter = "," }}', 'columns = {{ resolve_at = "解决时间" }}',
                               "sources['helpdesk'].columns.resolve_at: is not a canonical column (did you mean "
                               "'resolved_at'?)"),
    "wrong type": ("min_sample = 10", 'min_sample = "ten"', "reporting.min_sample: expected a whole number"),
    "unknown layout": ('kind = "csv"', 'kind = "csv"\nlayout = "snapshoot"', "'snapshoot' is not a layout"),
    "unknown kind": ('kind = "csv"', 'kind = "cvs"', "sources['helpdesk'].kind: 'cvs' is not a source kind"),
    "unknown ticket_type": ('ticket_type = "incident"', 'ticket_type = "incidnt"', "sla[0].ticket_type: 'incidnt'"),
    "bad SLA duration": ('response = "30m"', 'response = "half an hour"', "sla[0].response: 'half an hour' is not "
                         "a duration"),
    "calendar window backwards": ("[[sla]]", '[calendars.office]\ntimezone = "Asia/Shanghai"\nhours = {{ mon = '
                                  '"18:00-09:00" }}\n\n[[sla]]', "calendars.office.hours.mon: '18:00-09:00' must "
                                  "end after it starts"),
    "timezone not IANA": ('timezone = "Asia/Shanghai"\nmin_sample', 'timezone = "UTC+8"\nmin_sample',
                          "reporting.timezone: 'UTC+8' is not an IANA timezone"),
    "source name twice": ('name = "sn"', 'name = "helpdesk"', "'helpdesk' is already the name of sources[0]"),
    "negative weight": ("weight = 1", "weight = -1", "scorecard[0].weight: must be > 0.0"),
}


@pytest.fixture
def server(httpserver: HTTPServer) -> HTTPServer:
    """A ServiceNow stand-in that must never be reached: every request fails the test (and is logged)."""
    httpserver.expect_request("").respond_with_data("config problems must stop before any request", status=500)
    yield httpserver
    assert not httpserver.log, f"the server was contacted: {[r.path for r, _ in httpserver.log]}"


def _config(tmp_path: Path, server: HTTPServer, old: str = "", new: str = "") -> Path:
    export = h.export_canonical_csv(tmp_path)["path"]
    text = CONFIG.replace(old, new, 1) if old else CONFIG
    path = tmp_path / "itsm-kpi.toml"
    path.write_text(text.format(store=tmp_path / "store", export=export, url=server.url_for("")), encoding="utf-8")
    return path


@pytest.mark.parametrize("command", [("validate",), ("run", "--as-of", h.AS_OF), ("backfill", *h.JULY, "--as-of", h.AS_OF),
                                     ("config", "show")], ids=lambda c: c[0])
@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_config_stops_every_command_before_anything_happens(tmp_path: Path, server: HTTPServer, case: str,
                                                                  command: tuple[str, ...]) -> None:
    old, new, expected = BAD[case]
    config = _config(tmp_path, server, old, new)
    result = h.cli(*command, "--config", str(config), env={"SN_PASSWORD": "not-a-real-secret"})
    assert result.code == 2, result.err + result.out
    (line,) = result.reason_lines()
    assert line.startswith(f"itsm-kpi: {config}: ") and expected in line, line
    assert "ok" not in result.out
    assert not (tmp_path / "store").exists()  # no store created, no run recorded


def test_several_problems_are_all_reported_at_once(tmp_path: Path, server: HTTPServer) -> None:
    config = _config(tmp_path, server, "min_sample = 10", 'min_sample = "ten"')
    config.write_text(config.read_text(encoding="utf-8").replace('tables = ["incident"]', 'tabels = []')
                      .replace('response = "30m"', 'response = "soon"'), encoding="utf-8")
    result = h.cli("validate", "--config", str(config), "--json", env={"SN_PASSWORD": "x"})
    assert result.code == 2
    lines = result.reason_lines()
    assert [line.split(": ")[2] for line in lines] == ["reporting.min_sample", "sla[0].response",
                                                       "sources['sn'].options.tabels"]
    report = json.loads(result.out)
    assert report["ok"] is False and [p["key"] for p in report["problems"]] == [
        "reporting.min_sample", "sla[0].response", "sources['sn'].options.tabels"]
    assert all(p["line"] for p in report["problems"])


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "has no settings"),
    (b"# only a comment\n", "has no settings"),
    ("[store]\npath = \"仓库\"\n".encode("gb18030"), "is not UTF-8 text"),
    (b"[store\npath = 1\n", "is not valid TOML"),
    # nested past Python's recursion: in an array, and in a table's dotted name
    (b"a = " + b"[" * 50_000 + b"]" * 50_000 + b"\n", "is not valid TOML: nested deeper than it can be read"),
    (b"[" + b".".join([b"a"] * 20_000) + b"]\nb = 1\n", "holds tables nested deeper than a config can be"),
])
def test_an_empty_unreadable_or_broken_file_is_one_line_exit_2(tmp_path: Path, content: bytes, expected: str) -> None:
    config = tmp_path / "itsm-kpi.toml"
    config.write_bytes(content)
    for command in (("validate",), ("run",), ("query", "SELECT 1"), ("report", "--period", "2026Q3")):
        result = h.cli(*command, "--config", str(config))
        assert result.code == 2, (command, result.err)
        (line,) = result.reason_lines()
        assert f"{config} {expected}" in line


def test_a_config_path_that_is_a_folder_is_a_config_error(tmp_path: Path) -> None:
    result = h.cli("validate", "--config", str(tmp_path))
    assert result.code == 2
    assert f"{tmp_path} is a folder, not a config file" in result.reason_lines()[0]


def test_a_missing_secret_stops_the_pulling_commands_only(tmp_path: Path, server: HTTPServer) -> None:
    config = _config(tmp_path, server)
    result = h.cli("validate", "--config", str(config))
    assert result.code == 2 and "environment variable SN_PASSWORD is not set" in result.reason_lines()[0]
    shown = h.cli("config", "show", "--config", str(config))
    assert shown.code == 0 and 'password_env = "SN_PASSWORD"' in shown.out


def test_report_with_a_malformed_period_exits_2(tmp_path: Path) -> None:
    result = h.cli("report", "--period", "2026-8", "--store", str(tmp_path / "store"))
    assert result.code == 2
    assert "2026-8" in result.reason_lines()[0]
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("args", [("run", "--as-of", "9999-12-31T00:00:00Z"), ("run", "--as-of", "1969-12-31T23:59:59Z"),
                                  ("alerts", "--as-of", "2100-01-01T00:00:00Z"),
                                  ("backfill", "--from", "2026-07-01", "--to", "9999-12-31")])
def test_times_outside_the_range_tickets_are_read_in_exit_2_before_anything_runs(args, tmp_path: Path) -> None:
    """1970..2099, as a ticket's timestamps (docs/bad-input.md): a year-9999 as_of overflowed the calendars
    (exit 1), and 2100 wrote a backlog row set for every day until then."""
    result = h.cli(*args, "--config", str(tmp_path / "none.toml"))
    assert result.code == 2 and "out of range 1970..2099" in result.err


def test_report_with_an_unknown_timezone_exits_2_before_reading_a_store(tmp_path: Path) -> None:
    result = h.cli("report", "--period", "2026Q3", "--timezone", "Mars/Olympus", "--store", str(tmp_path / "store"))
    assert result.code == 2
    assert "--timezone" in result.reason_lines()[0] and "Mars/Olympus" in result.reason_lines()[0]


def test_report_of_a_period_the_store_has_no_data_for_exits_2(tmp_path: Path) -> None:
    """Asking for a period without data is the user's to change (exit 2), not a bug (exit 1); the message
    names the periods there are (the demo's tickets are of 2026)."""
    assert h.cli("demo", "--store", str(tmp_path / "store")).code == 0
    result = h.cli("report", "--period", "2020Q1", "--store", str(tmp_path / "store"), "--out", str(tmp_path / "r.html"))
    assert result.code == 2
    assert "2020Q1" in result.reason_lines()[0] and "2026" in result.reason_lines()[0]
    assert not (tmp_path / "r.html").exists()


def test_version_names_the_package_and_the_kpi_definitions() -> None:
    result = h.cli("--version")
    assert result.code == 0 and result.out.startswith("itsm-kpi ") and f"KPI definitions {KPI_VERSION}" in result.out


def test_config_schema_prints_a_draft_2020_12_schema() -> None:
    result = h.cli("config", "schema")
    schema = json.loads(result.out)
    Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False and "sources" in schema["properties"]


def test_config_show_fills_defaults_applies_overrides_and_redacts_secrets(tmp_path: Path, server: HTTPServer) -> None:
    config = _config(tmp_path, server)
    env = {"ITSM_KPI_STORE__SQL_URL": "postgresql+psycopg://kpi:hunter2@db.example/kpi",
           "ITSM_KPI_REPORTING__MIN_SAMPLE": "5"}
    result = h.cli("config", "show", "--config", str(config), env=env)
    assert result.code == 0, result.err
    assert 'sql_url = "postgresql+psycopg://kpi:***@db.example/kpi"' in result.out and "hunter2" not in result.out
    assert "min_sample = 5" in result.out and 'lock_wait = "10m"' in result.out  # override, default


def test_validate_says_ok_only_when_every_source_passes(tmp_path: Path, server: HTTPServer) -> None:
    export = h.export_canonical_csv(tmp_path)["path"]
    config = tmp_path / "ok.toml"
    # the export's satisfaction answers need the map: without it a run rejects those rows, and validate says so
    config.write_text(f'[store]\npath = "{tmp_path / "store"}"\n\n[kpi]\nsatisfaction_map = {{ "满意" = 5, "较满意" = 4, '
                      f'"一般" = 3, "较不满意" = 2, "不满意" = 1 }}\n\n[[sources]]\nname = "helpdesk"\nkind = "csv"\n'
                      f'path = "{export}"\ntimezone = "Asia/Shanghai"\n', encoding="utf-8")
    good = h.cli("validate", "--config", str(config))
    assert good.code == 0 and good.out.splitlines()[-1].startswith(f"config {config}: ok")
    config.write_text(config.read_text(encoding="utf-8").replace(str(export), str(tmp_path / "gone.csv")),
                      encoding="utf-8")
    bad = h.cli("validate", "--config", str(config), "--json")
    report = json.loads(bad.out)
    assert bad.code == 3 and report["ok"] is False and report["sources"][0]["problems"]
    text = h.cli("validate", "--config", str(config))
    assert text.code == 3 and ": ok" not in text.out.splitlines()[-1]


def test_run_json_prints_the_summary_as_one_object(tmp_path: Path) -> None:
    export = h.export_canonical_csv(tmp_path)["path"]
    config = tmp_path / "ok.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "store"}"\n\n[[sources]]\nname = "helpdesk"\nkind = "csv"\n'
                      f'path = "{export}"\ntimezone = "Asia/Shanghai"\n', encoding="utf-8")
    result = h.cli("backfill", *h.JULY, "--config", str(config), "--as-of", h.AS_OF, "--json")
    assert result.code == 0, result.err
    (line,) = result.out.splitlines()
    summary = json.loads(line)
    assert summary["kind"] == "backfill" and summary["status"] == "success" and summary["tickets_read"] > 0


def test_config_show_lays_a_rest_source_over_its_vendor_preset(tmp_path: Path) -> None:
    """The effective config of a REST source is what its connector reads: the preset's maps under the entry's."""
    config = tmp_path / "itsm-kpi.toml"
    config.write_text('[[sources]]\nname = "sn"\nkind = "servicenow"\nurl = "https://example.service-now.com"\n'
                      'username = "kpi_reader"\npassword_env = "SN_PASSWORD"\nstatus_map = { "3" = "WAITING_CUSTOMER" }\n',
                      encoding="utf-8")
    result = h.cli("config", "show", "--config", str(config), env={"SN_PASSWORD": "pw-5e3"})
    assert result.code == 0, result.err
    (source,) = tomllib.loads(result.out)["sources"]
    preset = tomllib.loads((REPO / "config" / "presets" / "servicenow.toml").read_text(encoding="utf-8"))["sources"][0]
    assert source["status_map"] == {**preset["status_map"], "3": "WAITING_CUSTOMER"}  # the entry's "3" wins
    assert source["columns"] == preset["columns"] and source["page_size"] == preset["page_size"]
    assert "pw-5e3" not in result.out
    shown = tmp_path / "shown.toml"
    shown.write_text(result.out, encoding="utf-8")
    again = h.cli("config", "show", "--config", str(shown), env={"SN_PASSWORD": "pw-5e3"})
    assert tomllib.loads(again.out) == tomllib.loads(result.out)  # what it shows loads back to the same
