"""The ``itsm-kpi`` console script: ``pipeline.cli``, whose imports (pandas, pyarrow, SQLAlchemy) take about
half a second. A Ctrl-C in that time ends like one a moment later, with one line and exit 130, not a trace."""

from __future__ import annotations

import sys


def main() -> int:
    """Import the command line and run it."""
    try:
        from pipeline.cli import main as cli_main  # noqa: PLC0415 (the import is what a Ctrl-C may cut short)
    except KeyboardInterrupt:
        sys.stderr.write("itsm-kpi: interrupted by SIGINT; nothing was started\n")
        return 130
    return cli_main()
