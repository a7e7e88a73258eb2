"""Registers this distribution's components with xalbench (through the ``xalbench`` entry point)."""

from __future__ import annotations

from collections.abc import Callable

import xalbench

from xalbench_plugin_template.strategy import TemplateLeastConfident


@xalbench.hookimpl
def register_strategies(register: Callable[..., None]) -> None:
    register(TemplateLeastConfident)
