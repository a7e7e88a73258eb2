"""Registers the built-in models through the public hook (as any third party would)."""

from __future__ import annotations

from xalbench.hookspecs import Register, hookimpl
from xalbench.models.monai_nets import MonaiDenseNet121, MonaiResNet18
from xalbench.models.resnet import ResNet18
from xalbench.models.small_cnn import SmallCNN
from xalbench.models.torchvision_nets import DenseNet121, ResNet50

BUILTIN_MODELS = (SmallCNN, ResNet18, ResNet50, DenseNet121, MonaiResNet18, MonaiDenseNet121)


@hookimpl
def register_models(register: Register) -> None:
    for cls in BUILTIN_MODELS:
        register(cls)
