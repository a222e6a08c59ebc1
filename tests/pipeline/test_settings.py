"""The configuration as a user writes it: a TOML file, ``ITSM_KPI_`` environment overrides, secrets only from
the environment, mistyped keys refused by name, durations and timezones checked once at start.
"""

from __future__ import annotations

from pathlib import Path

import e2e_helpers as h
import pytest

from kpis.errors import ConfigError
from pipeline.settings import Settings

BASE = """
[store]
path = "kpi-store"

[reporting]
timezone = "Asia/Shanghai"
grains = ["day", "week", "month", "quarter"]
min_sample = 10

[kpi]
default_calendar = "office"
satisfaction_map = { "满意" = 5, "一般" = 3 }

[calendars.office]
timezone = "Asia/Shanghai"
hours = { mon = ["09:00-12:00", "13:30-18:00"] }

[[sla]]
ticket_type = "incident"
priority = "P1"
response = "30m"
resolution = "4h"
calendar = "24x7"

[[sla]]
ticket_type = "incident"
response = "1h30m"
resolution = "90s"

[[scorecard]]
kpi = "first_fix_rate"
target = 0.8
weight = 1

[run]
overlap = "2h"

[schedule]
cron = "15 1 * * *"
timezone = "Asia/Shanghai"

[[sources]]
name = "helpdesk"
kind = "csv"
path = "exports/tickets.csv"
timezone = "Asia/Shanghai"
"""


def _load(tmp_path: Path, text: str = BASE, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "itsm-kpi.toml"
    path.write_text(text, encoding="utf-8")
    return Settings.load(path, env=env or {})


def _refused(tmp_path: Path, text: str = BASE, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text, env)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_file_as_written(tmp_path: Path) -> None:
    settings = _load(tmp_path)
    assert settings.store.path == Path("kpi-store")
    assert settings.store.sql_url == "sqlite:///kpi-store/kpi.sqlite"  # the default sits beside the Parquet
    assert settings.kpi.reporting_timezone == "Asia/Shanghai"
    assert settings.kpi.min_sample == 10
    assert settings.sources[0].path == "exports/tickets.csv"
    assert settings.schedule.timezone == "Asia/Shanghai"


def test_environment_overrides_strings_numbers_booleans_and_arrays(tmp_path: Path) -> None:
    env = {
        "ITSM_KPI_SOURCES__0__PATH": "/data/today/tickets.csv",
        "ITSM_KPI_REPORTING__MIN_SAMPLE": "3",
        "ITSM_KPI_REPORTING__GRAINS": '["month", "quarter"]',
        "ITSM_KPI_REPORTING__TIMEZONE": "Europe/Berlin",
        "ITSM_KPI_KPI__RESOLUTION_COUNTS_AS_RESPONSE": "false",
        "ITSM_KPI_KPI__FAILED_CLOSE_CODES": '["failed", "aborted"]',
        "ITSM_KPI_STORE__SQL_URL": "postgresql+psycopg://kpi:s3cret@db.internal/kpi",
        "ITSM_KPI_RUN__OVERLAP": "45m",
        "ITSM_KPI_SCORECARD__0__TARGET": "0.9",
        "ITSM_KPI_SLA__1__RESPONSE": "2h",
        "OTHER_TOOL_STORE__PATH": "/not/ours",
    }
    settings = _load(tmp_path, env=env)
    assert settings.sources[0].path == "/data/today/tickets.csv"
    assert settings.sources[0].name == "helpdesk"  # the rest of the entry stays
    assert settings.kpi.min_sample == 3
    assert settings.kpi.grains == ("month", "quarter")
    assert settings.kpi.reporting_timezone == "Europe/Berlin"
    assert settings.kpi.resolution_counts_as_response is False
    assert settings.kpi.failed_close_codes == frozenset({"failed", "aborted"})
    assert settings.store.sql_url == "postgresql+psycopg://kpi:s3cret@db.internal/kpi"  # a secret from env is fine
    assert settings.store.path == Path("kpi-store")
    assert settings.run.overlap_s == 45 * 60
    assert settings.kpi.scorecard[0].target == 0.9
    assert settings.kpi.sla[1].response_s == 2 * 3600


def test_an_environment_override_can_add_a_key_the_file_lacks(tmp_path: Path) -> None:
    settings = _load(tmp_path, env={"ITSM_KPI_SOURCES__0__EVENTS_PATH": "exports/events.csv",
                                    "ITSM_KPI_CALENDARS__OFFICE__HOLIDAYS": '["2026-10-01"]'})
    assert settings.sources[0].events_path == "exports/events.csv"
    assert [str(d) for d in settings.kpi.calendars["office"].holidays] == ["2026-10-01"]


def test_an_environment_override_for_a_source_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, env={"ITSM_KPI_SOURCES__2__PATH": "x.csv"})
    assert message.startswith("ITSM_KPI_SOURCES__2__PATH: sources[2]: there is no entry 2")


@pytest.mark.parametrize(("key", "value"), [
    ("ITSM_KPI_STORE__PATH", "2026"),                   # a folder named after the year
    ("ITSM_KPI_SOURCES__0__PATH", "2026-07-01"),        # a daily export folder
    ("ITSM_KPI_SOURCES__0__NAME", "1"),
])
def test_an_environment_value_for_a_text_setting_stays_text(tmp_path: Path, key: str, value: str) -> None:
    """``2026`` reads as a TOML integer and ``2026-07-01`` as a TOML date, but these settings are text."""
    settings = _load(tmp_path, env={key: value})
    got = {"ITSM_KPI_STORE__PATH": settings.store.path, "ITSM_KPI_SOURCES__0__PATH": settings.sources[0].path,
           "ITSM_KPI_SOURCES__0__NAME": settings.sources[0].name}[key]
    assert isinstance(got, str | Path) and str(got) == value


def test_a_password_in_the_file_is_refused_naming_the_environment_variable(tmp_path: Path) -> None:
    text = BASE.replace('path = "kpi-store"', 'path = "kpi-store"\nsql_url = "postgresql+psycopg://kpi:hunter2@db/kpi"')
    message = _refused(tmp_path, text)
    assert "store.sql_url" in message and "ITSM_KPI_STORE__SQL_URL" in message
    assert "hunter2" not in message


def test_a_password_in_the_file_stops_the_cli_with_one_line(tmp_path: Path) -> None:
    text = BASE.replace('path = "kpi-store"', 'path = "kpi-store"\nsql_url = "postgresql+psycopg://kpi:hunter2@db/kpi"')
    (tmp_path / "itsm-kpi.toml").write_text(text, encoding="utf-8")
    result = h.cli("backfill", "--quarter", "2026Q3", "--config", str(tmp_path / "itsm-kpi.toml"))
    assert result.code == 2
    (line,) = result.reason_lines()
    assert "ITSM_KPI_STORE__SQL_URL" in line and "hunter2" not in line


def test_a_source_secret_in_the_file_is_refused(tmp_path: Path) -> None:
    text = BASE + 'token = "abc123"\n'
    message = _refused(tmp_path, text)
    assert "sources['helpdesk'].token" in message and "token_env" in message and "abc123" not in message


def test_a_user_without_password_in_the_file_is_fine(tmp_path: Path) -> None:
    text = BASE.replace('path = "kpi-store"', 'path = "kpi-store"\nsql_url = "postgresql+psycopg://kpi@db/kpi"')
    assert _load(tmp_path, text).store.sql_url == "postgresql+psycopg://kpi@db/kpi"


@pytest.mark.parametrize(("anchor", "typo", "named"), [
    ("[store]\n", 'pth = "x"\n', "store.pth"),
    ("[reporting]\n", 'timezon = "UTC"\n', "reporting.timezon"),
    ("[kpi]\n", "pause_status = []\n", "kpi.pause_status"),
    ("[calendars.office]\n", 'holiday = ["2026-10-01"]\n', "calendars.office.holiday"),
    ('[[sla]]\nticket_type = "incident"\npriority = "P1"\n', 'responce = "1h"\n', "sla[0].responce"),
    ('kpi = "first_fix_rate"\n', "wieght = 2\n", "scorecard[0].wieght"),
    ("[run]\n", 'overlap_s = "1h"\n', "run.overlap_s"),
    ("[schedule]\n", 'crontab = "* * * * *"\n', "schedule.crontab"),
    ('name = "helpdesk"\n', 'colums = { ticket_id = "Number" }\n', "sources['helpdesk'].colums"),
])
def test_a_mistyped_key_is_refused_naming_it(tmp_path: Path, anchor: str, typo: str, named: str) -> None:
    assert anchor in BASE
    message = _refused(tmp_path, BASE.replace(anchor, anchor + typo, 1))
    assert named in message


def test_an_unknown_section_is_refused_naming_it(tmp_path: Path) -> None:
    message = _refused(tmp_path, BASE + "\n[reportng]\ntimezone = \"UTC\"\n")
    assert "reportng" in message


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("4h", 14400), ("1h30m", 5400), ("90s", 90),
                                               ("2d", 172800), ("1h0m30s", 3630)])
def test_durations(tmp_path: Path, text: str, seconds: int) -> None:
    settings = _load(tmp_path, BASE.replace('response = "30m"', f'response = "{text}"'))
    assert settings.kpi.sla[0].response_s == seconds
    assert (settings.kpi.sla[0].resolution_s, settings.kpi.sla[1].response_s) == (4 * 3600, 90 * 60)
    assert settings.kpi.sla[1].resolution_s == 90
    assert settings.run.overlap_s == 2 * 3600


@pytest.mark.parametrize("bad", ["30 minutes", "1.5h", "h", "", "30M30"])
def test_a_bad_duration_is_refused_naming_the_key(tmp_path: Path, bad: str) -> None:
    message = _refused(tmp_path, BASE.replace('response = "30m"', f'response = "{bad}"'))
    assert "sla[0].response" in message


@pytest.mark.parametrize(("old", "new", "named"), [
    ('[reporting]\ntimezone = "Asia/Shanghai"', '[reporting]\ntimezone = "Asia/Shangai"', "reporting.timezone"),
    ('[calendars.office]\ntimezone = "Asia/Shanghai"', '[calendars.office]\ntimezone = "Beijing"',
     "calendars.office.timezone"),
    ('[schedule]\ncron = "15 1 * * *"\ntimezone = "Asia/Shanghai"',
     '[schedule]\ncron = "15 1 * * *"\ntimezone = "UTC+8"', "schedule.timezone"),
    ('path = "exports/tickets.csv"\ntimezone = "Asia/Shanghai"',
     'path = "exports/tickets.csv"\ntimezone = "China Standard Time"', "sources['helpdesk'].timezone"),
])
def test_a_bad_timezone_is_refused_naming_the_key(tmp_path: Path, old: str, new: str, named: str) -> None:
    assert old in BASE
    message = _refused(tmp_path, BASE.replace(old, new))
    assert named in message and "IANA" in message


def test_a_bad_timezone_from_the_environment_is_refused_too(tmp_path: Path) -> None:
    message = _refused(tmp_path, env={"ITSM_KPI_REPORTING__TIMEZONE": "Mars/Olympus_Mons"})
    assert "reporting.timezone" in message and "Mars/Olympus_Mons" in message
