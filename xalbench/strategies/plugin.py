"""Registers the built-in strategies through the public hook (as any third party would)."""

from __future__ import annotations

from xalbench.hookspecs import Register, hookimpl
from xalbench.strategies.bayesian import BALD, MCDropoutEntropy
from xalbench.strategies.diversity import BADGE, CoreSet
from xalbench.strategies.uncertainty import EntropySampling, LeastConfidence, MarginSampling, RandomSampling

BUILTIN_STRATEGIES = (
    RandomSampling,
    EntropySampling,
    MarginSampling,
    LeastConfidence,
    MCDropoutEntropy,
    BALD,
    CoreSet,
    BADGE,
)


@hookimpl
def register_strategies(register: Register) -> None:
    for cls in BUILTIN_STRATEGIES:
        register(cls)
