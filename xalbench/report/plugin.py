"""Registers the built-in report formats and the core's generic finding through the public hooks."""

from __future__ import annotations

from xalbench.hookspecs import Register, hookimpl
from xalbench.report.formats import BUILTIN_FORMATS


@hookimpl
def register_report_formats(register: Register) -> None:
    for cls in BUILTIN_FORMATS:
        register(cls)


@hookimpl
def register_findings(register: Register) -> None:
    from xalbench.report.supervision import ExplanationSupervision

    register(ExplanationSupervision)
