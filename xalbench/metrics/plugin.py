"""Registers the built-in metrics through the public hook (as any third party would)."""

from __future__ import annotations

from xalbench.hookspecs import Register, hookimpl
from xalbench.metrics.builtin import BUILTIN_METRICS
from xalbench.metrics.faithfulness import FAITHFULNESS_METRICS


@hookimpl
def register_metrics(register: Register) -> None:
    for cls in (*BUILTIN_METRICS, *FAITHFULNESS_METRICS):
        register(cls)
