"""Render a results directory with a registered report format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xalbench.report.base import Report
from xalbench.report.model import build_report, load_results

__all__ = ["build_report", "load_results", "render", "render_report"]


def render(report: Report, fmt: str = "md", registry: Any = None) -> str:
    """``report`` in format ``fmt`` (a registered report format; unknown → did-you-mean error)."""
    if registry is None:
        from xalbench.plugins import PluginSelection

        registry = PluginSelection.from_env().registry()
    return registry.create("report_format", fmt).render(report)


def render_report(run_dir: str | Path, fmt: str = "md", *, test: str = "ttest", allow_mixed: bool = False) -> str:
    return render(build_report(run_dir, test=test, allow_mixed=allow_mixed, embed_plots=fmt == "html"), fmt)
