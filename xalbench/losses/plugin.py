"""Registers the built-in losses through the public hook (as any third party would)."""

from __future__ import annotations

from xalbench.hookspecs import Register, hookimpl
from xalbench.losses.ce import CrossEntropyLoss
from xalbench.losses.explanation import (
    CyborgLoss,
    CyborgSSIML1Loss,
    DiceLoss,
    GradiaLoss,
    HaicsLoss,
    RESLoss,
    RRRLoss,
)

BUILTIN_LOSSES = (CrossEntropyLoss, DiceLoss, RRRLoss, GradiaLoss, HaicsLoss, RESLoss, CyborgLoss, CyborgSSIML1Loss)


@hookimpl
def register_losses(register: Register) -> None:
    for cls in BUILTIN_LOSSES:
        register(cls)
