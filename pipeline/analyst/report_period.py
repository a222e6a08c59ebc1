"""The report's period (``2026Q3``, ``2026-08``, ``2026-W33``, ``2026-08-15``) and its error.

``ReportError`` lives here, the bottom of the report's modules, so that every one of them can raise it;
``pipeline.analyst.report`` re-exports it, which is where callers import it from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from kpis.calendar import local_midnight
from kpis.errors import BadRequest

__all__ = ["Period", "ReportError", "parse_period"]


class ReportError(BadRequest):
    """The report cannot be built (unknown period, no data for it, unwritable output)."""


@dataclass(frozen=True)
class Period:
    """A reporting period: local dates ``[start, end)`` of one grain."""

    grain: str
    start: date
    end: date
    text: str

    @property
    def trend_grain(self) -> str:
        """The grain of the trend charts: weeks inside a month or quarter, days inside a week or day."""
        return "week" if self.grain in ("month", "quarter") else "day"

    @property
    def last_day(self) -> date:
        """The period's last local date (``end`` is exclusive)."""
        return self.end - timedelta(days=1)

    def utc_bounds(self, timezone: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The instants (UTC) of the local midnights that start and end the period in ``timezone``."""
        return local_midnight(self.start, timezone), local_midnight(self.end, timezone)

    def title(self, lang: str) -> str:
        """``2026Q3`` as the reader says it."""
        if lang != "zh":
            return self.text
        if self.grain == "quarter":
            return f"{self.start.year}年第{(self.start.month - 1) // 3 + 1}季度"
        if self.grain == "month":
            return f"{self.start.year}年{self.start.month}月"
        if self.grain == "week":
            year, week, _ = self.start.isocalendar()
            return f"{year}年第{week}周"
        return f"{self.start.year}年{self.start.month}月{self.start.day}日"


_PATTERNS = {
    "quarter": re.compile(r"^(\d{4})Q([1-4])$"),
    "month": re.compile(r"^(\d{4})-(\d{2})$"),
    "week": re.compile(r"^(\d{4})-?W(\d{2})$"),  # 2026-W38 (ISO 8601) or 2026W38 (CONTRACT.md)
    "day": re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"),
}


def _bounds(grain: str, parts: tuple[int, ...]) -> tuple[date, date]:
    """``[start, end)`` of the period of ``grain`` named by the matched numbers ``parts``."""
    if grain == "quarter":
        start = date(parts[0], 3 * parts[1] - 2, 1)
        return start, date(parts[0] + (parts[1] == 4), 1 if parts[1] == 4 else 3 * parts[1] + 1, 1)
    if grain == "month":
        start = date(parts[0], parts[1], 1)
        return start, date(parts[0] + (parts[1] == 12), 1 if parts[1] == 12 else parts[1] + 1, 1)
    if grain == "week":
        start = date.fromisocalendar(parts[0], parts[1], 1)
        return start, start + timedelta(days=7)
    start = date(*parts)
    return start, start + timedelta(days=1)


def parse_period(text: str, grain: str | None = None) -> Period:
    """``2026Q3`` (quarter), ``2026-08`` (month), ``2026-W33`` (ISO week) or ``2026-08-15`` (day).

    ``grain`` is inferred from the text when None; when given it must agree with it.
    """
    text = text.strip().upper()
    for found, pattern in _PATTERNS.items():
        match = pattern.match(text)
        if match is None:
            continue
        if grain is not None and grain != found:
            raise ReportError(f"period {text!r} is a {found}, not a {grain}; e.g. --grain {found}")
        try:
            start, end = _bounds(found, tuple(int(g) for g in match.groups()))
        except ValueError as exc:
            raise ReportError(f"period {text!r} is not a real {found}: {exc}") from None
        return Period(found, start, end, text)
    raise ReportError(f"period {text!r} is not understood; write 2026Q3, 2026-08, 2026-W33 or 2026-08-15")
