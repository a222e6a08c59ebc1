"""What a report section is: a data-preparation function, a template, and the messages the template uses.

A section's ``prepare(context)`` returns a small view (a dataclass) of the numbers it shows; its template
``templates/sections/<name>.html.j2`` receives that view as ``view`` and draws one panel. The base layout
(``templates/report.html.j2``) draws the sections in the order of ``pipeline.analyst.report.SECTIONS``.
See docs/report.md, "Adding a section".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.analyst.report_data import ReportData
from pipeline.analyst.report_format import Target

__all__ = ["ReportContext", "Section"]


@dataclass(frozen=True)
class ReportContext:
    """What every section's preparation gets: the period's data, the KPI targets, the language's texts."""

    data: ReportData
    targets: Mapping[str, Target]
    t: Callable[[str], str]


@dataclass(frozen=True)
class Section:
    """One panel of the report: ``prepare`` makes its view, ``templates/sections/<name>.html.j2`` draws it."""

    name: str
    prepare: Callable[[ReportContext], Any]

    @property
    def template(self) -> str:
        """The section's template, relative to ``pipeline/analyst/templates``."""
        return f"sections/{self.name}.html.j2"
