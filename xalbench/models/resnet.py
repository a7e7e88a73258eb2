"""``resnet18``: torchvision's ResNet-18 split at ``layer4`` (explanation layer) and ``fc``.

``pretrained = true`` loads torchvision's ImageNet weights **only if they are already in
the local torch hub cache** (nothing is downloaded at run time); otherwise it raises
:class:`PretrainedWeightsError` saying how to fetch them. For ``in_channels != 3`` the
first conv is replaced (pretrained: its weights are averaged over RGB and repeated).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from xalbench.base import ExplainableNet, Model
from xalbench.errors import PretrainedWeightsError, UnsupportedError
from xalbench.options import Options


class ResNetNet(ExplainableNet):
    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.stem = nn.Sequential(backbone.conv1, backbone.bn1, backbone.relu, backbone.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4,
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(backbone.fc.in_features, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


def _cached_weights_path(weights: object) -> str:
    url = weights.url  # type: ignore[attr-defined]
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))


class ResNet18(Model):
    """torchvision ResNet-18 (explanation layer ``layer4``); optional cached ImageNet weights."""

    name: ClassVar[str] = "resnet18"
    summary: ClassVar[str] = "torchvision ResNet-18 (explanation layer layer4, GAP + linear head)"
    paper: ClassVar[str] = "He et al., Deep Residual Learning for Image Recognition, CVPR 2016"

    @dataclass(frozen=True)
    class Options(Options):
        pretrained: bool = False
        dropout: float = 0.25

    def build(self, in_channels: int, num_classes: int, spatial_dims: int = 2) -> ExplainableNet:
        from torchvision.models import ResNet18_Weights, resnet18

        if spatial_dims != 2:
            raise UnsupportedError("model 'resnet18' is 2D only; use 'small-cnn' for 3D datasets")
        backbone = resnet18(weights=None)
        if self.options.pretrained:
            weights = ResNet18_Weights.IMAGENET1K_V1
            path = _cached_weights_path(weights)
            if not os.path.exists(path):
                raise PretrainedWeightsError(
                    f"resnet18 pretrained weights are not in the local torch cache ({path}); "
                    "fetch them once on a machine with internet via "
                    "`python -c 'import torchvision; torchvision.models.resnet18(weights=\"IMAGENET1K_V1\")'` "
                    "and copy the file there, or set pretrained = false"
                )
            backbone.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        if in_channels != 3:
            old = backbone.conv1
            new = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            if self.options.pretrained:
                with torch.no_grad():
                    new.weight.copy_(old.weight.mean(1, keepdim=True).repeat(1, in_channels, 1, 1))
            backbone.conv1 = new
        return ResNetNet(backbone, num_classes, self.options.dropout)
