"""Registers the built-in report formats through the public hook."""

from __future__ import annotations

from xalbench.hookspecs import Register, hookimpl
from xalbench.report.formats import BUILTIN_FORMATS


@hookimpl
def register_report_formats(register: Register) -> None:
    for cls in BUILTIN_FORMATS:
        register(cls)
