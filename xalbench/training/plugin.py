"""Registers the built-in trainer and mask sources through the public hooks."""

from __future__ import annotations

from xalbench.hookspecs import Register, hookimpl
from xalbench.training.masks import HumanMasks, ModelCamMasks, NoMasks
from xalbench.training.standard import StandardTrainer


@hookimpl
def register_trainers(register: Register) -> None:
    register(StandardTrainer)


@hookimpl
def register_mask_sources(register: Register) -> None:
    for cls in (NoMasks, HumanMasks, ModelCamMasks):
        register(cls)
