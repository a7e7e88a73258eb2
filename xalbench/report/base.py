"""The report model every format renders, and the ``ReportFormat`` contract.

:class:`Report` holds one shared table (displayed strings *and* raw numbers) built once from a
results directory; each registered :class:`ReportFormat` only renders it, so formats cannot
drift: markdown and HTML show the displayed columns, CSV and JSON the same displayed columns
plus raw numeric columns.
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from xalbench.base import Component

__all__ = ["Column", "Report", "ReportFormat"]


@dataclasses.dataclass(frozen=True)
class Column:
    """A displayed column: ``key`` in :attr:`Report.rows`, its ``header`` and a one-line ``note``."""

    key: str
    header: str
    note: str = ""


@dataclasses.dataclass
class Report:
    """Everything a report shows (see the module docstring)."""

    run_dir: str
    header: dict[str, Any]
    datasets: list[dict[str, Any]]
    columns: list[Column]
    rows: list[dict[str, str]]
    raw: pd.DataFrame
    problems: pd.DataFrame
    notes: list[str] = dataclasses.field(default_factory=list)
    methods: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    plots: dict[str, bytes] = dataclasses.field(default_factory=dict)
    plot_paths: list[Path] = dataclasses.field(default_factory=list)
    damaged: list[Path] = dataclasses.field(default_factory=list)
    damaged_reasons: dict[Path, str] = dataclasses.field(default_factory=dict)
    findings: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def dataset_rows(self, dataset: str) -> list[dict[str, str]]:
        """The displayed rows of one dataset's table."""
        return [r for r in self.rows if r["dataset"] == dataset]


class ReportFormat(Component, abc.ABC):
    """Renders a :class:`Report` to text (``xalbench report --format NAME``)."""

    kind: ClassVar[str] = "report_format"
    suffix: ClassVar[str] = ".txt"

    @abc.abstractmethod
    def render(self, report: Report) -> str:
        """The whole report as text."""
