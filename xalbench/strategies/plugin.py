"""Registers the built-in strategies through the public hook (as any third party would)."""

from __future__ import annotations

from xalbench import hookimpl
from xalbench.hookspecs import Register
from xalbench.strategies.uncertainty import EntropySampling, LeastConfidence, MarginSampling, RandomSampling


@hookimpl
def register_strategies(register: Register) -> None:
    for cls in (RandomSampling, EntropySampling, MarginSampling, LeastConfidence):
        register(cls)
