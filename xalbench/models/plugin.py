"""Registers the built-in models through the public hook (as any third party would)."""

from __future__ import annotations

from xalbench import hookimpl
from xalbench.hookspecs import Register
from xalbench.models.resnet import ResNet18
from xalbench.models.small_cnn import SmallCNN


@hookimpl
def register_models(register: Register) -> None:
    register(SmallCNN)
    register(ResNet18)
