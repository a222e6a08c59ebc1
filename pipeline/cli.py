"""The ``itsm-kpi`` command line (CONTRACT.md): parse, call, print one summary line, exit with a code.

Exit codes: 0 success; 1 unexpected error; 2 bad config or arguments (also an approvals file that cannot be
read, a ticket ``explain`` cannot find); 3 a source could not be read (the others' data went through: the run
is ``partial``); 4 a store cannot be written (or read: ``explain`` before any run); 5 another run holds the
lock, or this run lost it (nothing of this run was committed); 6 a source's rejected share of rows exceeded
``[run].max_reject_ratio`` (the KPI tables were left as they were); 130 / 143 stopped by Ctrl-C / SIGTERM (a
run in progress rolled back and recorded as failed). A config is checked whole when a command
loads it, before any source is read, store opened or run recorded: every problem is printed, one line each
(``file: key.path: what (line N)``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

import pandas as pd

from connectors.errors import AdjustmentsError, SourceError
from connectors.mapping import TIMESTAMP_RANGE, TIMESTAMP_RANGE_TEXT
from kpis.config import parse_timezone
from kpis.errors import BadRequest, ConfigError, ItsmKpiError
from kpis.schema import KPI_VERSION
from pipeline import logs
from pipeline.errors import Interrupted, RejectRatioExceeded, interrupted_reason, interrupting_signal
from pipeline.periods import Window, dates_window, quarter_window
from pipeline.progress import StageProgress
from pipeline.settings import DEFAULT_CONFIG, Settings
from pipeline.store.errors import LockLost, LockTimeout, StoreError

log = logging.getLogger(__name__)
EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_SOURCE, EXIT_STORE, EXIT_LOCKED, EXIT_REJECTED = 0, 1, 2, 3, 4, 5, 6


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``itsm-kpi`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    logs.configure(args.verbose - args.quiet)
    try:
        with _sigterm_interrupts():
            return args.handler(args)
    except ConfigError as e:
        return _config_failed(e)
    except AdjustmentsError as e:
        return _fail(EXIT_CONFIG, str(e))
    except (LockTimeout, LockLost) as e:
        return _fail(EXIT_LOCKED, str(e))
    except StoreError as e:
        return _fail(EXIT_STORE, str(e))
    except SourceError as e:
        return _fail(EXIT_SOURCE, str(e))
    except RejectRatioExceeded as e:
        return _fail(EXIT_REJECTED, str(e))
    except BadRequest as e:
        return _fail(EXIT_CONFIG, str(e))
    except ItsmKpiError as e:
        return _fail(EXIT_ERROR, str(e))
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (Interrupted): exit 128 + the signal's number
        return _fail(128 + interrupting_signal(e), f"{interrupted_reason(e)}; the stores were left as they were")
    except BrokenPipeError:  # e.g. `itsm-kpi demo | head`: the reader left, nothing is wrong
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (silences the flush at exit)
        return EXIT_OK
    except Exception as e:  # the last line of defence: one line for the user, the trace in the log
        log.debug("unexpected error", exc_info=True)
        return _fail(EXIT_ERROR, f"unexpected {type(e).__name__}: {e} (run with -v for the trace)")


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """While a command runs, SIGTERM (``systemctl stop``, ``kill``, ``timeout``) stops it as Ctrl-C does: a run
    rolls back and records its failure instead of dying where it stands. ``schedule`` sets its own handler."""
    def stop(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    if threading.current_thread() is not threading.main_thread():  # handlers can only be set there
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fail(code: int, message: str) -> int:
    print(f"itsm-kpi: {message.splitlines()[0] if message else 'failed'}", file=sys.stderr)
    return code


def _config_failed(error: ConfigError) -> int:
    """Every problem of a config, one ``itsm-kpi: file: key: what`` line each."""
    lines = getattr(error, "lines", None)
    for line in lines() if lines is not None else [str(error)]:
        _fail(EXIT_CONFIG, line)
    return EXIT_CONFIG


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        package = version("itsm-kpi")
    except PackageNotFoundError:
        package = "unknown (not installed)"
    return f"itsm-kpi {package} (KPI definitions {KPI_VERSION})"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_CONFIG, f"itsm-kpi: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="itsm-kpi", description="IT-service KPIs from ticketing data.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="less log output")
    parser.add_argument("--version", action="version", version=_version(), help="the package and KPI versions")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    demo = sub.add_parser("demo", help="run the whole pipeline on the bundled sample data")
    demo.add_argument("--store", type=Path, default=Path("kpi-store"), help="where to write (default ./kpi-store)")
    demo.add_argument("--as-of", type=_timestamp, default=None, help="ISO 8601 timestamp with an offset")
    demo.set_defaults(handler=_demo)

    run = sub.add_parser("run", help="the nightly job: pull what changed, recompute the periods it touches")
    _config_args(run, as_of=True, json_out=True)
    run.set_defaults(handler=_run)

    backfill = sub.add_parser("backfill", help="recompute a past window's periods in both stores")
    group = backfill.add_mutually_exclusive_group(required=True)
    group.add_argument("--quarter", type=_quarter, help="e.g. 2026Q3")
    group.add_argument("--from", dest="date_from", type=_date, help="first local date, e.g. 2026-07-01")
    backfill.add_argument("--to", dest="date_to", type=_date, help="last local date (included); required with --from")
    _config_args(backfill, as_of=True, json_out=True)
    backfill.set_defaults(handler=_backfill)

    schedule = sub.add_parser("schedule", help="run the nightly job on the configured cron until stopped")
    _config_args(schedule, as_of=False)
    schedule.set_defaults(handler=_schedule)

    validate = sub.add_parser("validate", help="check the config and reach every source; writes nothing")
    _config_args(validate, as_of=False, json_out=True)
    validate.set_defaults(handler=_validate)

    alerts = sub.add_parser("alerts", help="print the messages [[alerts]] would post now; posts and writes nothing")
    alerts.add_argument("--dry-run", action="store_true", help="required: runs and backfills post the alerts")
    _config_args(alerts, as_of=True)
    alerts.set_defaults(handler=_alerts)
    _analyst_commands(sub)
    _config_commands(sub)
    return parser


def _config_commands(sub) -> None:
    config = sub.add_parser("config", help="the config file: its JSON Schema, the effective config")
    what = config.add_subparsers(dest="config_command", required=True, metavar="WHAT", parser_class=_Parser)
    schema = what.add_parser("schema", help="print the JSON Schema (draft 2020-12) of the config file")
    schema.set_defaults(handler=_config_schema)
    show = what.add_parser("show", help="print the effective config: defaults filled, environment applied, "
                           "secrets redacted")
    show.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="config file (default ./itsm-kpi.toml)")
    show.set_defaults(handler=_config_show)


def _analyst_commands(sub) -> None:
    query = sub.add_parser("query", help="read-only SQL over the Parquet store (DuckDB) or the SQL store")
    query.add_argument("sql", help='e.g. "SELECT * FROM v_scorecard_current ORDER BY grain, rank"')
    _store_args(query)
    fmt = query.add_mutually_exclusive_group()
    fmt.add_argument("--csv", dest="format", action="store_const", const="csv", help="CSV with a header row")
    fmt.add_argument("--json", dest="format", action="store_const", const="json", help="JSON lines, one per row")
    query.set_defaults(handler=_query, format="text")

    report = sub.add_parser("report", help="write the HTML scorecard report of one period")
    report.add_argument("--period", required=True, help="2026Q3, 2026-08, 2026-W33 (or 2026W33) or 2026-08-15")
    report.add_argument("--grain", choices=["day", "week", "month", "quarter"], default=None,
                        help="must agree with --period (default: taken from it)")
    report.add_argument("--lang", choices=["zh", "en"], default="zh", help="zh (default) or en")
    report.add_argument("--out", type=Path, default=None, help="default ./report-<period>-<lang>.html")
    report.add_argument("--timezone", default=None,
                        help="reporting timezone (default: reporting.timezone of --config; with --store, the one "
                        "its last run recorded)")
    _store_args(report)
    report.set_defaults(handler=_report)

    explain = sub.add_parser("explain", help="why one ticket's numbers are what they are, as the last run computed them")
    explain.add_argument("ticket_id", metavar="TICKET_ID", help="the ticket's id in its source")
    explain.add_argument("--source", default=None, help="the ticket's source (needed when several hold the id)")
    where = explain.add_mutually_exclusive_group()
    where.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="config file (default ./itsm-kpi.toml)")
    where.add_argument("--store", type=Path, default=None,
                       help="a store directory as `itsm-kpi demo` writes it (Parquet tables + kpi.sqlite)")
    explain.add_argument("--json", action="store_true", help="one JSON object (docs/disputes.md) instead of text")
    explain.add_argument("--lang", choices=["zh", "en"], default=None,
                         help="language of the text (default: reporting.language of --config; zh with --store)")
    explain.set_defaults(handler=_explain)


def _store_args(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="config file (default ./itsm-kpi.toml)")
    where.add_argument("--store", type=Path, default=None,
                       help="a store directory as `itsm-kpi demo` writes it (Parquet tables + kpi.sqlite)")
    parser.add_argument("--engine", choices=["parquet", "sql"], default="parquet",
                        help="parquet: the Parquet store through DuckDB (default); sql: the SQL store")


@dataclass(frozen=True)
class _StoreLocation:
    """Where ``query`` and ``report`` read: from ``--store``, or from the config."""

    path: Path
    sql_url: str
    timezone: str | None  # None: the one the store recorded (--store)
    timeout_s: float


def _store_location(args: argparse.Namespace) -> _StoreLocation:
    """The Parquet root, SQL URL, reporting timezone and ``[query].timeout`` from --store or the config, the
    stores settled for reading (``_settled``)."""
    from pipeline.analyst.query import DEFAULT_TIMEOUT_S  # noqa: PLC0415

    if args.store is not None:
        where = _StoreLocation(args.store, f"sqlite:///{args.store / 'kpi.sqlite'}", None, DEFAULT_TIMEOUT_S)
    else:
        settings = Settings.load(args.config)
        where = _StoreLocation(settings.store.path, settings.store.sql_url, settings.kpi.reporting_timezone,
                               settings.query.timeout_s)
    _settled(where.path, where.sql_url)
    return where


def _settled(path: Path, sql_url: str) -> None:
    """Finish (or undo) the commit a killed run left, before a reader opens the stores: Parquet and SQL then
    show the same commit (docs/operations.md, Recovery)."""
    from pipeline.store import Stores  # noqa: PLC0415
    from pipeline.store.parquet import ParquetStore  # noqa: PLC0415

    if not ParquetStore(path).journal_path.exists():  # the usual case: no engine built, nothing opened
        return
    stores = Stores(path, sql_url)
    try:
        stores.settle_for_reading()
    finally:
        stores.close()


def _query(args: argparse.Namespace) -> int:
    from pipeline.analyst.query import run_query  # noqa: PLC0415

    where = _store_location(args)
    return run_query(args.sql, store_path=where.path, sql_url=where.sql_url, engine=args.engine, fmt=args.format,
                     out=sys.stdout, timeout_s=where.timeout_s)


def _report(args: argparse.Namespace) -> int:
    from pipeline.analyst.report import ReportError, build_report, parse_period  # noqa: PLC0415

    try:
        parse_period(args.period, args.grain)
    except ReportError as e:
        raise ConfigError("--period", str(e)) from None
    if args.timezone is not None:
        parse_timezone(args.timezone, "--timezone")
    where = _store_location(args)
    out = build_report(where.path, where.sql_url, args.period, args.lang,
                       args.out or Path(f"report-{args.period}-{args.lang}.html"), grain=args.grain,
                       engine=args.engine, timezone=args.timezone or where.timezone, timeout_s=where.timeout_s)
    print(f"report written to {out}")
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    from pipeline.explain import Where, explain_ticket  # noqa: PLC0415
    from pipeline.explain_text import render  # noqa: PLC0415

    if args.store is not None:
        where, lang = Where(args.store, f"sqlite:///{args.store / 'kpi.sqlite'}"), "zh"
    else:
        settings = Settings.load(args.config)
        where, lang = Where(settings.store.path, settings.store.sql_url, settings.kpi), settings.reporting.language
    _settled(where.root, where.sql_url)
    explanation = explain_ticket(where, args.ticket_id, args.source)
    if args.json:
        print(json.dumps(explanation, ensure_ascii=False))
    else:
        print("\n".join(render(explanation, args.lang or lang)))
    return EXIT_OK


def _config_args(parser: argparse.ArgumentParser, *, as_of: bool, json_out: bool = False) -> None:
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="config file (default ./itsm-kpi.toml)")
    if as_of:
        parser.add_argument("--as-of", type=_timestamp, default=None, help="ISO 8601 timestamp with an offset")
    if json_out:
        parser.add_argument("--json", action="store_true", help="one JSON object on stdout instead of the summary")


def _timestamp(text: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 timestamp") from None
    if ts.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no offset; write it like 2026-10-01T00:00:00+08:00")
    ts = ts.tz_convert("UTC").floor("s")
    if not TIMESTAMP_RANGE[0] <= ts < TIMESTAMP_RANGE[1]:  # the range a ticket's times are read in (bad-input.md)
        raise argparse.ArgumentTypeError(f"{text!r} is out of range {TIMESTAMP_RANGE_TEXT}")
    return ts


def _date(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-07-01") from None
    return _in_range(day, text)


def _in_range(day: date, text: str) -> date:
    """``day`` when its year lies in the range a ticket's times are read in (docs/bad-input.md)."""
    if not TIMESTAMP_RANGE[0].year <= day.year < TIMESTAMP_RANGE[1].year:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range {TIMESTAMP_RANGE_TEXT}")
    return day


def _quarter(text: str) -> Window:
    try:
        window = quarter_window(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    _in_range(window.first, text)
    return window


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").floor("s")


def _execute(settings: Settings, kind: str, as_of: pd.Timestamp | None, window: Window | None = None,
             *, as_json: bool = False) -> int:
    from pipeline.jobs import run_job  # noqa: PLC0415 (keeps `itsm-kpi --help` fast)

    with StageProgress(enabled=sys.stderr.isatty()) as progress:
        summary = run_job(settings, kind=kind, as_of=as_of or _now(), window=window, progress=progress.stage)
    if as_json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False, default=str))
    else:
        print(summary.line())
    if summary.rejected_by_reason and not as_json:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.rejected_by_reason.items()))
        print(f"  rejected rows (see table rejected_rows): {reasons}")
    if summary.failed_sources:
        first, *others = summary.failed_sources.values()
        more = f" (+{len(others)} more source(s) failed)" if others else ""
        return _fail(EXIT_SOURCE, f"{first}{more}; the other sources' data were written, the next run retries")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    return _execute(Settings.load(args.config, require_secrets=True), "run", args.as_of, as_json=args.json)


def _backfill(args: argparse.Namespace) -> int:
    if args.quarter is not None:
        window = args.quarter
    else:
        if args.date_to is None:
            raise ConfigError("--to", "is missing", "give --from DATE --to DATE, or --quarter 2026Q3")
        try:
            window = dates_window(args.date_from, args.date_to)
        except ValueError as e:
            raise ConfigError("--to", str(e), "swap the dates") from None
    return _execute(Settings.load(args.config, require_secrets=True), "backfill", args.as_of, window,
                    as_json=args.json)


def demo_settings(store: Path) -> Settings:
    """The bundled demo config with its source pointed at the sample data shipped in the package."""
    import tomllib  # noqa: PLC0415

    raw = tomllib.loads(_bundled("config", "demo.toml").read_text(encoding="utf-8"))
    data_dir = resources.files("pipeline") / "demo_data"
    raw["store"] = {"path": str(store), "sql_url": f"sqlite:///{store / 'kpi.sqlite'}"}
    for source in raw["sources"]:
        source["path"] = str(data_dir / "tickets.csv")
        source["events_path"] = str(data_dir / "events.csv")
    if "adjustments" in raw:
        raw["adjustments"]["path"] = str(data_dir / "exemptions.csv")
    return Settings.from_mapping(raw)


def _bundled(folder: str, name: str):
    """A file of ``config/``: inside the installed package, or in the source checkout."""
    packaged = resources.files("pipeline") / "_config" / name
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[1] / folder / name


def _demo(args: argparse.Namespace) -> int:
    settings = demo_settings(args.store)
    code = _execute(settings, "demo", args.as_of)
    print(f"results: Parquet under {settings.store.path}/<table>/, SQLite at {settings.store.path / 'kpi.sqlite'}")
    print(f"  sqlite3 {settings.store.path / 'kpi.sqlite'} \"SELECT engineer, score, rank FROM scorecard "
          "WHERE grain='quarter' ORDER BY rank\"")
    print(f"  duckdb -c \"SELECT * FROM read_parquet('{settings.store.path}/kpi_engineer/**/*.parquet', "
          "hive_partitioning=true) WHERE grain='month'\"")
    print(f"  itsm-kpi query --store {settings.store.path} \"SELECT * FROM v_scorecard_current ORDER BY grain, rank\"")
    print(f"  itsm-kpi report --store {settings.store.path} --period 2026Q3 --lang en")
    return code


def _alerts(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from pipeline.alerts.data import read_alert_data  # noqa: PLC0415
    from pipeline.alerts.deliver import enabled, messages, needs_roster  # noqa: PLC0415
    from pipeline.notify import alert_context  # noqa: PLC0415
    from pipeline.store import Stores  # noqa: PLC0415

    if not args.dry_run:
        raise ConfigError("alerts", "only --dry-run is supported", "runs and backfills post the alerts themselves")
    settings = Settings.load(args.config)
    as_of = args.as_of or _now()
    rules = enabled(list(settings.alerts), os.environ)  # as a run would: an alert without its URL posts nothing
    _settled(settings.store.path, settings.store.sql_url)
    stores = Stores(settings.store.path, settings.store.sql_url)  # read only: no prepare(), no lock
    try:
        data = read_alert_data(stores, as_of, settings.kpi.reporting_timezone, roster=needs_roster(rules))
    finally:
        stores.close()
    found = messages(rules, data, alert_context(settings, as_of), as_of)
    for message in found:
        print(json.dumps({"alert": message.alert, "kind": message.kind, "body": message.body}, ensure_ascii=False))
    print(f"{len(found)} message(s) would be posted by {len(rules)} alert(s) at {as_of.isoformat()}, from the facts "
          "and verdicts the last run stored; nothing was posted", file=sys.stderr)
    return EXIT_OK


def _schedule(args: argparse.Namespace) -> int:
    from pipeline.schedule import run_scheduler  # noqa: PLC0415

    return run_scheduler(Settings.load(args.config, require_secrets=True))


def _validate(args: argparse.Namespace) -> int:
    """Check the config (exit 2), then reach every source and map a page of it (exit 3 on any problem)."""
    from pipeline.config import ConfigProblems  # noqa: PLC0415

    report: dict = {"config": str(args.config), "ok": False, "problems": [], "sources": []}
    try:
        settings = Settings.load(args.config, require_secrets=True)
    except ConfigProblems as e:
        if args.json:
            report["problems"] = [p.as_dict() for p in e.problems]
            print(json.dumps(report, ensure_ascii=False))
        raise
    report["sources"] = [_check_source(cfg, settings) for cfg in settings.sources]
    failing = [s for s in report["sources"] if not s["ok"]]
    report["ok"] = not failing
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        for source in report["sources"]:
            found = source["problems"]
            print(f"source {source['name']} ({source['kind']}): " + ("ok" if not found else f"{len(found)} problem(s)"))
            for problem in found:
                print(f"  - {problem}")
            _print_sla(source)
        print(f"config {args.config}: " + (f"ok; {len(settings.sources)} source(s) checked, no problem" if not failing
              else f"valid, but {len(failing)} of {len(settings.sources)} source(s) failed their check"))
    return EXIT_OK if not failing else EXIT_SOURCE


def _check_source(cfg, settings: Settings) -> dict:
    """Reach one source and map a page of it: ``{"name", "kind", "ok", "problems", "sla", "warnings"}``;
    ``sla``: how many tickets of the page each ``[[sla]]`` policy matches (pipeline/sla_check.py). Writes nothing."""
    from connectors.registry import build_connector  # noqa: PLC0415

    connector = None
    try:  # a REST connector refuses a missing url or secret when built: that source's problem, not the run's
        connector = build_connector(cfg)
        found = connector.check()
    except (SourceError, ConfigError) as e:
        found = [str(e).splitlines()[0]]
    report = {"name": cfg.name, "kind": cfg.kind, "ok": not found, "problems": found, "sla": None, "warnings": []}
    sample = getattr(connector, "sample", None)
    if sample is not None:
        report.update(_page_report(cfg.name, sample, settings))
        report["problems"] = found + report.pop("unusable")
        report["ok"] = not report["problems"]
    return report


def _page_report(source: str, sample, settings: Settings) -> dict:
    """What the run's quarantine (``connectors.validate``) would reject on the page, its SLA policy counts and
    the conditions none of its tickets can meet."""
    from connectors.file_tables import CHECK_PROBLEMS  # noqa: PLC0415
    from connectors.validate import describe_rejections, validate  # noqa: PLC0415
    from pipeline.sla_check import condition_warnings, source_policy_counts  # noqa: PLC0415

    # a page's events may belong to tickets of a later page: only those of its own tickets are checked
    key = ["source", "ticket_id"]
    on_page = pd.MultiIndex.from_frame(sample.events[key]).isin(pd.MultiIndex.from_frame(sample.tickets[key]))
    tickets, events, rejected = validate(sample.tickets, sample.events[on_page], sample.rejected,
                                         satisfaction_map=settings.kpi.satisfaction_map)
    quarantined = rejected.iloc[len(sample.rejected):]
    # the events of a ticket rejected above follow it: named once, by the ticket's reason
    quarantined = quarantined[quarantined["reason"].ne("event for unknown ticket").to_numpy()]
    as_of = pd.Timestamp.now(tz="UTC")
    return {"unusable": describe_rejections(source, quarantined, CHECK_PROBLEMS),
            "sla": source_policy_counts(tickets, events, settings.kpi, as_of),
            "warnings": condition_warnings(tickets, settings.kpi, "the tickets read")}


def _print_sla(source: dict) -> None:
    """``  SLA policies on 40 tickets read: p1 12, std 20; no policy 8``, then the unused ones and warnings."""
    sla = source.get("sla")
    if sla and sla["policies"]:
        counts = ", ".join(f"{name} {n}" for name, n in sla["policies"].items())
        print(f"  SLA policies on {sla['tickets']} tickets read: {counts}; no policy {sla['no_policy']}")
        if sla["unused"]:
            print(f"  - policies matching no ticket read: {', '.join(sla['unused'])}")
    for warning in source.get("warnings", []):
        print(f"  - warning: {warning}")


def _config_schema(args: argparse.Namespace) -> int:
    from pipeline.config.schema import schema_text  # noqa: PLC0415

    sys.stdout.write(schema_text())
    return EXIT_OK


def _config_show(args: argparse.Namespace) -> int:
    from pipeline.config import load_config  # noqa: PLC0415
    from pipeline.config.show import effective, to_toml  # noqa: PLC0415

    Settings.load(args.config)  # every check, the engine's included
    sys.stdout.write(to_toml(effective(load_config(args.config, None))))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
