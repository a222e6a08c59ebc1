"""Run the three real logs end to end and print what came in and the headline KPIs, as Markdown.

    python scripts/real_data_report.py > /tmp/real-data-numbers.md

Each preset runs as `itsm-kpi backfill` in a child process into a temporary store; wall time and the
child's peak RSS are measured around it. Needs ../shared/datasets next to the repository.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = {
    "uci_servicenow": ("2016-01-01", "2017-03-31", "2017-03-01T00:00:00Z"),
    "bpic2013_vinst": ("2010-01-01", "2012-12-31", "2012-06-01T00:00:00Z"),
    "helpdesk_italian": ("2010-01-01", "2014-12-31", "2014-02-01T00:00:00Z"),
}

PRIORITY_SQL = """
SELECT priority, count(*) AS tickets,
       round(avg(response_sla = 'met') FILTER (WHERE response_sla IN ('met', 'breached')), 3) AS response_sla,
       round(avg(resolution_sla = 'met') FILTER (WHERE resolution_sla IN ('met', 'breached')), 3) AS resolution_sla,
       round(avg(first_fix), 3) AS first_fix,
       round(avg(resolution_business_s) / 3600.0, 1) AS mean_resolution_business_h
FROM ticket_facts WHERE excluded_reason IS NULL GROUP BY priority ORDER BY priority
"""
ENGINEER_SQL = """
SELECT engineer, sum(resolved_count) AS resolved,
       round(1.0 * sum(first_fix_count) / nullif(sum(resolved_count), 0), 3) AS first_fix_rate,
       round(1.0 * sum(resolution_sla_met) / nullif(sum(resolution_sla_met + resolution_sla_breached), 0), 3)
           AS resolution_sla_rate
FROM kpi_engineer WHERE grain = 'quarter' AND engineer <> 'unassigned'
GROUP BY engineer ORDER BY resolved DESC LIMIT 5
"""


def run(preset: str, store: Path) -> tuple[float, float, str]:
    first, last, as_of = RUNS[preset]
    env = {**os.environ, "ITSM_KPI_STORE__PATH": str(store), "ITSM_KPI_STORE__SQL_URL": f"sqlite:///{store}/kpi.sqlite"}
    command = [sys.executable, "-m", "pipeline.cli", "-q", "backfill", "--from", first, "--to", last,
               "--as-of", as_of, "--config", f"config/presets/{preset}.toml"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=True)
    took = time.perf_counter() - started
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    return took, peak_gib, done.stdout.strip().splitlines()[0]


def table(db: sqlite3.Connection, sql: str) -> str:
    cursor = db.execute(sql)
    names = [d[0] for d in cursor.description]
    rows = [" | ".join("" if v is None else str(v) for v in row) for row in cursor.fetchall()]
    return "\n".join([" | ".join(names), " | ".join("---" for _ in names), *rows])


def main() -> None:
    for preset in RUNS:
        with tempfile.TemporaryDirectory() as tmp:
            store = Path(tmp) / "store"
            took, peak, line = run(preset, store)
            db = sqlite3.connect(store / "kpi.sqlite")
            read, rejected = db.execute("SELECT rows_read, rows_rejected FROM pipeline_runs").fetchone()
            reasons = db.execute("SELECT reason, count(*) FROM rejected_rows GROUP BY reason").fetchall()
            print(f"### {preset}\n\n`{line}`\n")
            print(f"- wall time {took:.1f} s, peak RSS {peak:.2f} GiB (largest child so far)")
            print(f"- rows read {read}, rejected {rejected}: {reasons or 'none'}\n")
            print("Per priority (ticket_facts):\n\n" + table(db, PRIORITY_SQL) + "\n")
            print("Top engineers by resolved tickets (all quarters):\n\n" + table(db, ENGINEER_SQL) + "\n")


if __name__ == "__main__":
    main()
