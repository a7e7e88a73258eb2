"""``small-cnn``: a fast 4-block CNN for CPU-sized suites, 2D or 3D.

Blocks of conv3×3 → BatchNorm → ReLU (→ max-pool for the first ``n_blocks-1`` blocks);
the last block's output is the explanation layer; head = global average pool →
dropout → linear. With 32×32 inputs the explanation layer is 4×4 (2D), like ResNet's
7×7 at 224 px relative to the image.

``channels_last = true`` keeps the convolution weights and activations in the channels-last
memory layout (``torch.channels_last`` / ``channels_last_3d``): the same network and
initialisation, but oneDNN's channels-last kernels, which on a CPU run a training step of the
embedded suites about 1.3–1.5× faster (max-pooling above all). Results stay deterministic
but are not bitwise equal to the default layout's (other kernels sum in another order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from xalbench.base import ExplainableNet, Model
from xalbench.options import Options


class SmallCNNNet(ExplainableNet):
    def __init__(self, in_channels: int, num_classes: int, spatial_dims: int, width: int, n_blocks: int,
                 dropout: float, channels_last: bool = False) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        conv = nn.Conv3d if spatial_dims == 3 else nn.Conv2d
        norm = nn.BatchNorm3d if spatial_dims == 3 else nn.BatchNorm2d
        pool = nn.MaxPool3d if spatial_dims == 3 else nn.MaxPool2d
        layers: list[nn.Module] = []
        c_in = in_channels
        for i in range(n_blocks):
            c_out = width * (2 ** min(i, 3))
            layers += [conv(c_in, c_out, 3, padding=1, bias=False), norm(c_out), nn.ReLU(inplace=False)]
            if i < n_blocks - 1:
                layers.append(pool(2))
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c_in, num_classes)
        self.memory_format = (torch.channels_last_3d if spatial_dims == 3 else torch.channels_last) \
            if channels_last else None
        if self.memory_format is not None:
            self.body.to(memory_format=self.memory_format)

    def features(self, x: Tensor) -> Tensor:
        if self.memory_format is not None:
            x = x.contiguous(memory_format=self.memory_format)
        return self.body(x)


class SmallCNN(Model):
    """Fast CPU CNN (conv-BN-ReLU blocks, GAP + linear head); 2D and 3D."""

    name: ClassVar[str] = "small-cnn"
    summary: ClassVar[str] = "Fast 4-block CNN (conv-BN-ReLU, GAP + dropout + linear head); 2D and 3D"
    supports_3d: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(Options):
        width: int = 16
        n_blocks: int = 4
        dropout: float = 0.25
        channels_last: bool = False  #: channels-last memory layout (faster on CPU; module docstring)

    def build(self, in_channels: int, num_classes: int, spatial_dims: int = 2) -> ExplainableNet:
        o = self.options
        return SmallCNNNet(in_channels, num_classes, spatial_dims, o.width, o.n_blocks, o.dropout, o.channels_last)
