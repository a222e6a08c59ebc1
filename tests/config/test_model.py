"""The config model at the door: every key typed, every problem found at once, each one line naming the
file (or variable), the key path, the line and what to do. Written as a user would write the mistakes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connectors.options import declared_options, option
from connectors.secrets import env_secret
from kpis.errors import ConfigError
from pipeline.config import ConfigProblems, load_settings
from pipeline.config.locate import key_lines, line_of
from pipeline.settings import Settings

GOOD = """\
[store]
path = "store"

[reporting]
timezone = "Asia/Shanghai"
min_sample = 10

[kpi]
default_calendar = "office"

[calendars.office]
timezone = "Asia/Shanghai"
hours = { mon = ["09:00-12:00", "13:30-18:00"] }

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
path = "exports/tickets.csv"
timezone = "Asia/Shanghai"
options = { delimiter = ";" }
columns = { ticket_id = "工单号", resolved_at = "解决时间" }

[[sources]]
name = "sn"
kind = "servicenow"
url = "https://example.service-now.com"
username = "kpi_reader"
password_env = "SN_PASSWORD"
options = { tables = ["incident"] }
"""

HELPDESK_TAIL = 'options = { delimiter = ";" }\ncolumns = { ticket_id = "工单号", resolved_at = "解决时间" }'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "itsm-kpi.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigProblems) as caught:
        load_settings(_write(tmp_path, text), env or {})
    lines = caught.value.lines()
    assert all("\n" not in line for line in lines)
    return lines


def _one(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    lines = _problems(tmp_path, text, env)
    assert len(lines) == 1, lines
    return lines[0]


def test_the_good_config_loads_with_typed_options(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, GOOD), {})
    helpdesk, sn = settings.sources
    assert helpdesk.options == {"delimiter": ";"}  # only what was set: REST presets lie underneath
    assert option(helpdesk, "delimiter") == ";" and option(helpdesk, "epoch") is None
    assert option(sn, "tables") == ("incident",)  # a TOML array, typed as the declared tuple
    assert option(sn, "id_batch") == 100  # the declared default, from the one declaration
    assert helpdesk.columns == {"ticket_id": "工单号", "resolved_at": "解决时间"}
    assert settings.kpi.sla[0].response_s == 1800


def test_reading_an_undeclared_option_is_a_programming_error(tmp_path: Path) -> None:
    helpdesk = load_settings(_write(tmp_path, GOOD), {}).sources[0]
    with pytest.raises(KeyError, match="declare no option 'delimiterr'"):
        option(helpdesk, "delimiterr")


def test_every_declared_option_has_a_type_default_and_one_line_description() -> None:
    for kind, layout in [("csv", "tickets"), ("csv", "snapshot"), ("excel", "activity"), ("servicenow", None),
                         ("jira", None), ("zendesk", None)]:
        for declared in declared_options(kind, layout):
            assert declared.type is not None and declared.description and "\n" not in declared.description


@pytest.mark.parametrize(("old", "new", "expected"), [
    # a misspelt option of a file source, in an inline table
    ('options = { delimiter = ";" }', 'options = { delimiterr = ";" }',
     "itsm-kpi.toml: sources['helpdesk'].options.delimiterr: unknown option (did you mean 'delimiter'?) (line 31)"),
    # a misspelt option of a REST source
    ('options = { tables = ["incident"] }', 'options = { tabels = ["incident"] }',
     "sources['sn'].options.tabels: unknown option (did you mean 'tables'?) (line 40)"),
    # an option of another layout
    ('options = { delimiter = ";" }', 'options = { order_by = "sys_mod_count" }',
     "sources['helpdesk'].options.order_by: unknown option (order_by is an option of layout = 'snapshot')"),
    # a misspelt key
    ('timezone = "Asia/Shanghai"\nmin_sample', 'timezon = "Asia/Shanghai"\nmin_sample',
     "reporting.timezon: unknown key (did you mean 'timezone'?) (line 5)"),
    # a misspelt canonical column
    ('resolved_at = "解决时间"', 'resolve_at = "解决时间"',
     "sources['helpdesk'].columns.resolve_at: is not a canonical column (did you mean 'resolved_at'?)"),
    # wrong type
    ("min_sample = 10", 'min_sample = "ten"', "reporting.min_sample: expected a whole number, not the text 'ten'"),
    # unknown enum values
    ('kind = "csv"', 'kind = "csv"\nlayout = "snapshoot"', "sources['helpdesk'].layout: 'snapshoot' is not a layout "
     "(did you mean 'snapshot'?)"),
    ('kind = "csv"', 'kind = "cvs"', "sources['helpdesk'].kind: 'cvs' is not a source kind (did you mean 'csv'?)"),
    ('ticket_type = "incident"', 'ticket_type = "incidnt"', "sla[0].ticket_type: 'incidnt' is not one of the "
     "allowed values (did you mean 'incident'?)"),
    # an SLA duration that does not parse
    ('response = "30m"', 'response = "30 min"', "sla[0].response: '30 min' is not a duration"),
    # a calendar window that ends before it starts
    ('"13:30-18:00"', '"13:30-12:00"', "calendars.office.hours.mon[1]: '13:30-12:00' must end after it starts"),
    # a timezone that is not an IANA name
    ('[calendars.office]\ntimezone = "Asia/Shanghai"', '[calendars.office]\ntimezone = "Beijing"',
     "calendars.office.timezone: 'Beijing' is not an IANA timezone"),
    # a source name used twice
    ('name = "sn"', 'name = "helpdesk"', "'helpdesk' is already the name of sources[0]"),
    # a negative scorecard weight
    ("weight = 1", "weight = -0.3", "scorecard[0].weight: must be > 0.0 (it is -0.3)"),
    # an undefined calendar
    ('default_calendar = "office"', 'default_calendar = "offce"', "kpi.default_calendar: calendar 'offce' is not "
     "defined (did you mean 'office'?)"),
    # a cron field out of range names the field
    ("[kpi]", '[schedule]\ncron = "15 25 * * *"\n\n[kpi]', "schedule.cron: the hour field '25'"),
    # options whose checks moved from the connectors to the load
    ('options = { delimiter = ";" }', 'layout = "snapshot"\noptions = { response_statuses = ["Active"] }',
     "sources['helpdesk'].options.response_statuses: 'Active' is not a canonical status"),
    (HELPDESK_TAIL, 'layout = "activity"\noptions = { case_column = "c", activity_column = "a", timestamp_column = '
     '"t", automation_resources = ["("] }', "sources['helpdesk'].options.automation_resources: '(' is not a valid "
     "regular expression"),
    (HELPDESK_TAIL, 'layout = "activity"\noptions = { case_column = "c", activity_column = "a", timestamp_column = '
     '"t", activity_status_map = { "Closed" = "DONE" } }', "'DONE' is not a canonical status"),
    (HELPDESK_TAIL, 'layout = "activity"\noptions = { case_column = "c", activity_column = "a" }',
     "sources['helpdesk'].options.timestamp_column: is missing"),
    (HELPDESK_TAIL, 'layout = "activity"\ncolumns = { opened_at = "x" }'
     '\noptions = { activity_column = "a", timestamp_column = "t", case_column = "c" }',
     "sources['helpdesk'].columns.opened_at: the activity layout derives opened_at from the activities"),
    # [compute]: a scheduler that is no address; workers without the dask engine
    ("[kpi]", '[compute]\nengine = "dask"\nscheduler = "http://sched:8786/x y"\n\n[kpi]',
     "compute.scheduler: 'http://sched:8786/x y' is not a scheduler address"),
    ("[kpi]", '[compute]\nworkers = 2\n\n[kpi]', 'compute.workers: only applies with engine = "dask"'),
    ("[kpi]", '[compute]\npartitions = 0\n\n[kpi]', "compute.partitions: must be >= 1"),
    # a grain listed twice would compute its rows twice (two rows of one key in kpi_engineer)
    ("[reporting]", '[reporting]\ngrains = ["day", "month", "day"]', "reporting.grains: 'day' is listed twice"),
    # values that passed the load and then stopped every run with exit 1, or emptied the scorecard
    ("[reporting]", "[reporting]\ngrains = []", "reporting.grains: needs at least one entry"),
    ('options = { delimiter = ";" }', 'options = { delimiter = ";;" }',
     "sources['helpdesk'].options.delimiter: ';;' is 2 characters; a CSV field separator is one"),
    ('options = { delimiter = ";" }', 'options = { delimiter = "\\"" }',
     "sources['helpdesk'].options.delimiter: '\"' cannot separate fields"),
    ('kind = "csv"', 'kind = "csv"\nencoding = "base64"', "sources['helpdesk'].encoding: 'base64' is not a text encoding"),
    ('kind = "csv"', 'kind = "csv"\ntimestamp_format = "%Y-%Q"',
     "sources['helpdesk'].timestamp_format: '%Y-%Q' is not a strftime format"),
    ("weight = 1", "weight = inf", "scorecard[0].weight: Input should be a finite number"),
    ("weight = 1", "weight = 1e308", "scorecard[0].weight: must be <= 1000000.0"),
    ("target = 0.8", "target = nan", "scorecard[0].target: Input should be a finite number"),
    ('response = "30m"', 'response = "99999999999999h"', "sla[0].response: '99999999999999h' is longer than 100 years"),
    ("[kpi]", '[schedule]\ncron = "0 1 30 2 *"\n\n[kpi]', "schedule.cron: '0 1 30 2 *' never fires"),
    ('path = "store"\n', 'path = "store"\nsql_url = "sqlite://"\n', "store.sql_url: is an in-memory SQLite database"),
])
def test_a_mistake_is_one_line_naming_the_file_the_key_and_what_to_do(tmp_path: Path, old: str, new: str,
                                                                       expected: str) -> None:
    assert old in GOOD
    line = _one(tmp_path, GOOD.replace(old, new, 1))
    assert str(tmp_path / "itsm-kpi.toml") in line
    assert expected in line


@pytest.mark.parametrize(("hours", "expected"), [
    # no working minute at all: business time never passes, so no SLA on the calendar could be breached
    ("{}", "calendars.office.hours: no weekday has working hours"),
    ("{ mon = [] }", "calendars.office.hours: no weekday has working hours"),
    # 11:00-12:00 would be in two intervals: counted once or twice?
    ('{ mon = ["09:00-12:00", "11:00-18:00"] }', "calendars.office.hours.mon: working intervals overlap (09:00-12:00 and from 11:00)"),
])
def test_a_calendar_without_working_time_or_with_overlapping_hours_is_refused(tmp_path: Path, hours: str,
                                                                             expected: str) -> None:
    old = 'hours = { mon = ["09:00-12:00", "13:30-18:00"] }'
    assert old in GOOD
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_settings(_write(tmp_path, GOOD.replace(old, f"hours = {hours}")), {})


def test_a_calendar_that_gives_no_hours_works_no_minute_and_is_refused(tmp_path: Path) -> None:
    old = 'hours = { mon = ["09:00-12:00", "13:30-18:00"] }\n'
    assert old in GOOD
    with pytest.raises(ConfigError, match=re.escape("calendars.office.hours: no weekday has working hours")):
        load_settings(_write(tmp_path, GOOD.replace(old, "")), {})


def test_calendar_hours_problems_come_with_the_others_each_with_its_line(tmp_path: Path) -> None:
    old = 'hours = { mon = ["09:00-12:00", "13:30-18:00"] }'
    text = GOOD.replace("min_sample = 10", 'min_sample = "ten"').replace(
        old, 'hours = { mon = ["09:00-12:00", "11:00-18:00"], tue = ["09:00-10:00", "09:30-11:00"] }')
    lines = _problems(tmp_path, text)
    hours_line = text.splitlines().index(next(x for x in text.splitlines() if x.startswith("hours = "))) + 1
    assert [line.split(": ")[1] for line in lines] == [
        "reporting.min_sample", "calendars.office.hours.mon", "calendars.office.hours.tue"]  # all three, one pass
    assert lines[2].endswith(f"(line {hours_line})") and "(09:00-10:00 and from 09:30)" in lines[2]


def test_every_problem_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = (GOOD.replace("min_sample = 10", 'min_sample = "ten"').replace('response = "30m"', 'response = "soon"')
            .replace('options = { delimiter = ";" }', 'options = { delimiterr = ";" }').replace("weight = 1", "weight = 0"))
    lines = _problems(tmp_path, text)
    keys = ["reporting.min_sample", "sla[0].response", "scorecard[0].weight", "sources['helpdesk'].options.delimiterr"]
    assert len(lines) == 4 and all(key in line for key, line in zip(keys, lines, strict=True)), lines
    numbers = [int(line.rsplit("(line ", 1)[1].rstrip(")")) for line in lines]
    assert numbers == sorted(numbers)


def test_a_secret_in_the_file_is_refused_without_repeating_it(tmp_path: Path) -> None:
    text = GOOD.replace('path = "store"', 'path = "store"\nsql_url = "postgresql+psycopg://kpi:hunter2@db/kpi"')
    text = text.replace('password_env = "SN_PASSWORD"', 'password_env = "SN_PASSWORD"\npassword = "s3cret!"')
    lines = _problems(tmp_path, text)
    assert len(lines) == 2 and "ITSM_KPI_STORE__SQL_URL" in lines[0] and "password_env" in lines[1]
    assert not any("hunter2" in line or "s3cret" in line for line in lines)


def test_an_environment_override_is_checked_and_names_its_variable(tmp_path: Path) -> None:
    line = _one(tmp_path, GOOD, env={"ITSM_KPI_REPORTING__MIN_SAMPLE": "-1"})
    assert line.startswith("ITSM_KPI_REPORTING__MIN_SAMPLE: reporting.min_sample: must be >= 0")
    line = _one(tmp_path, GOOD, env={"ITSM_KPI_SOURCES__0__OPTIONS__DELIMITERR": ";"})
    assert "sources['helpdesk'].options.delimiterr: unknown option (did you mean 'delimiter'?)" in line
    line = _one(tmp_path, GOOD, env={"ITSM_KPI_REPORTNG__TIMEZONE": "UTC"})
    assert "unknown section (did you mean 'reporting'?)" in line


def test_a_variable_without_a_double_underscore_is_not_an_override(tmp_path: Path) -> None:
    assert load_settings(_write(tmp_path, GOOD), {"ITSM_KPI_PG_BINDIR": "/usr/lib/postgresql/17/bin"})


def test_secrets_may_come_from_a_file_named_by_NAME_FILE(tmp_path: Path) -> None:
    secret = tmp_path / "sn_password"
    secret.write_text("pa55word\n", encoding="utf-8")
    assert env_secret("SN_PASSWORD", {"SN_PASSWORD_FILE": str(secret)}) == "pa55word"
    assert env_secret("SN_PASSWORD", {"SN_PASSWORD": "direct", "SN_PASSWORD_FILE": str(secret)}) == "direct"
    assert load_settings(_write(tmp_path, GOOD), {"SN_PASSWORD_FILE": str(secret)}, require_secrets=True)
    url_file = tmp_path / "sql_url"
    url_file.write_text("postgresql+psycopg://kpi:pw@db/kpi\n", encoding="utf-8")
    settings = load_settings(_write(tmp_path, GOOD), {"ITSM_KPI_STORE__SQL_URL_FILE": str(url_file)})
    assert settings.store.sql_url == "postgresql+psycopg://kpi:pw@db/kpi"


def test_a_secret_file_that_cannot_be_read_and_a_missing_secret_are_config_problems(tmp_path: Path) -> None:
    line = _one(tmp_path, GOOD, env={"SN_PASSWORD_FILE": str(tmp_path / "absent")})
    assert "sources['sn'].password_env: SN_PASSWORD_FILE names a file that cannot be read" in line
    assert load_settings(_write(tmp_path, GOOD), {})  # commands that do not pull need no secret
    with pytest.raises(ConfigProblems, match="environment variable SN_PASSWORD is not set"):
        load_settings(_write(tmp_path, GOOD), {}, require_secrets=True)


def test_a_store_inside_another_stores_folder_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kpi-store").mkdir()
    (tmp_path / "kpi-store" / "kpi.sqlite").write_bytes(b"")
    line = _one(tmp_path, GOOD.replace('path = "store"', 'path = "kpi-store/uci_servicenow"'))
    assert "store.path: 'kpi-store/uci_servicenow' is inside the store at 'kpi-store' (it holds kpi.sqlite)" in line
    assert "'kpi-store-uci_servicenow'" in line
    (tmp_path / "kpi-store" / "uci").mkdir()
    (tmp_path / "kpi-store" / "uci" / "ticket_facts").mkdir()
    line = _one(tmp_path, GOOD.replace('path = "store"', 'path = "kpi-store"'))
    assert "store.path: 'kpi-store' holds another store in 'uci'" in line
    assert load_settings(_write(tmp_path, GOOD.replace('path = "store"', 'path = "kpi-store-uci"')), {})


def test_every_sla_condition_reaches_the_engine(tmp_path: Path) -> None:
    text = GOOD.replace('priority = "P1"', 'priority = ["P1", "P2"]\nclient = "ACME"\npause_statuses = []')
    (policy,) = load_settings(_write(tmp_path, text), {}).kpi.sla
    assert policy.conditions["client"] == ("ACME",) and policy.conditions["priority"] == ("P1", "P2")
    assert policy.pause_statuses == () and policy.name == "sla_1"


def test_settings_from_mapping_checks_the_same_way() -> None:
    with pytest.raises(ConfigProblems, match=r"config: store\.pth: unknown key \(did you mean 'path'\?\)"):
        Settings.from_mapping({"store": {"pth": "x"}})


def test_key_lines_follow_headers_arrays_dotted_and_inline_keys() -> None:
    text = ('[store]\npath = "x"  # { a = 1 }\n\n[[sources]]\nname = "a#b"\n'
            'options = { delimiter = ";", sub = { x = 1 } }\n\n[[sources]]\n[sources.options]\n"满意" = 5\na.b = 1\n')
    lines = key_lines(text)
    assert lines[("store", "path")] == 2 and ("store", "path", "a") not in lines
    assert lines[("sources", 0, "options", "delimiter")] == 6
    assert lines[("sources", 0, "options", "sub", "x")] == 6
    assert lines[("sources", 1, "options", "满意")] == 10 and lines[("sources", 1, "options", "a", "b")] == 11
    assert line_of(("sources", 1, "options", "nope"), lines) == 9


ADJUSTMENTS = '\n[adjustments]\npath = "{path}"\ntimezone = "Asia/Shanghai"\nscope_map = {{ "整单" = "ticket" }}\n'


def test_an_approvals_file_that_does_not_exist_is_refused_at_the_door(tmp_path: Path) -> None:
    line = _one(tmp_path, GOOD + ADJUSTMENTS.format(path=tmp_path / "豁免.xlsx"))
    assert "adjustments.path" in line and "does not exist" in line and "(line " in line


def test_a_glob_or_a_folder_of_approvals_may_hold_none_yet(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, GOOD + ADJUSTMENTS.format(path=tmp_path / "exemptions" / "*.xlsx")), {})
    assert settings.adjustments.path.endswith("*.xlsx") and settings.adjustments.scope_map == {"整单": "ticket"}
    (tmp_path / "exemptions").mkdir()
    assert load_settings(_write(tmp_path, GOOD + ADJUSTMENTS.format(path=tmp_path / "exemptions")), {}).adjustments
    line = _one(tmp_path, GOOD + ADJUSTMENTS.format(path=tmp_path / "exemptions").replace('"ticket"', '"tickets"'))
    assert "adjustments.scope_map" in line  # a scope must be one of response, resolution, ticket


@pytest.mark.parametrize("address", ["tcp://dask-scheduler:8786", "tls://10.0.0.5:8786", "dask-scheduler:8786",
                                     "tcp://[::1]:8786"])
def test_a_scheduler_address_is_accepted(tmp_path: Path, address: str) -> None:
    settings = load_settings(_write(tmp_path, GOOD.replace("[kpi]", f'[compute]\nengine = "dask"\nscheduler = '
                                                           f'"{address}"\npartitions = 8\n\n[kpi]', 1)), {})
    assert (settings.compute.engine, settings.compute.scheduler, settings.compute.partitions) == ("dask", address, 8)
