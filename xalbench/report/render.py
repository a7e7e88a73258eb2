"""Render a results directory with a registered report format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xalbench.report.base import Report
from xalbench.report.model import build_report, load_results

__all__ = ["build_report", "load_results", "render", "render_report"]


def _registry(registry: Any) -> Any:
    if registry is None:
        from xalbench.plugins import PluginSelection

        registry = PluginSelection.from_env().registry()
    return registry


def render(report: Report, fmt: str = "md", registry: Any = None) -> str:
    """``report`` in format ``fmt`` (a registered report format; unknown → did-you-mean error)."""
    return _registry(registry).create("report_format", fmt).render(report)


def render_report(run_dir: str | Path, fmt: str = "md", *, test: str = "ttest", allow_mixed: bool = False,
                  registry: Any = None) -> str:
    """``run_dir``'s report in format ``fmt``, with the plots and findings the format asks for
    (:attr:`~xalbench.report.base.ReportFormat.embeds_plots`, ``wants_findings``)."""
    registry = _registry(registry)
    cls = registry.get("report_format", fmt)
    report = build_report(run_dir, test=test, allow_mixed=allow_mixed, embed_plots=cls.embeds_plots,
                          findings=cls.wants_findings)
    return render(report, fmt, registry)
