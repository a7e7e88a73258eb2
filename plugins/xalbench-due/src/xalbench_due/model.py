"""``due-resnet18-3d``: DUE's backbone, a 3D ResNet-18 (Hara et al. topology), on MONAI's ``resnet18``.

DUE trains the Hara 3D ResNet-18 from scratch: conv1 7³ with stride (1, 2, 2), max-pool, widths
64–512, Grad-CAM on ``layer4`` (a 4×4×4 grid for 64×128×128 inputs). On CPU-sized volumes
(16×32×32, 12×24×24) that topology ends at a 1×1×1 grid, where Grad-CAM cannot localise —
one of the changes that break the method. The options keep the topology and restore the grid:
``widen`` scales the widths (0.25 → 16–128), ``no_max_pool`` drops the stem's pool,
``layer4_stride = 1`` keeps ``layer4`` at ``layer3``'s resolution, and ``conv1_stride`` sets the
stem stride per axis. Defaults (width ×0.25, no max-pool, conv1 stride (1, 2, 2), layer4 stride 1)
give 4×4×4 on 16×32×32 — the original grid — and 3×3×3 on 12×24×24; ``conv1_stride = [1, 1, 1]``
gives 4×8×8 and 3×6×6. Explanation layer: ``layer4``; head: GAP → dropout → linear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from xalbench.base import ExplainableNet, Model
from xalbench.errors import ConfigError
from xalbench.options import Options

__all__ = ["DUEResNet18", "DUEResNet18Net"]


class DUEResNet18Net(ExplainableNet):
    """MONAI ResNet-18 split at ``layer4`` (explanation layer) and ``fc``."""

    def __init__(self, in_channels: int, num_classes: int, spatial_dims: int, widen: float,
                 conv1_stride: tuple[int, ...], no_max_pool: bool, layer4_stride: int, dropout: float) -> None:
        from monai.networks.nets import resnet18

        super().__init__()
        self.spatial_dims = spatial_dims
        net = resnet18(spatial_dims=spatial_dims, n_input_channels=in_channels, num_classes=num_classes,
                       conv1_t_size=7, conv1_t_stride=conv1_stride, no_max_pool=no_max_pool, widen_factor=widen,
                       act=("relu", {"inplace": False}))
        if layer4_stride == 1:
            first = net.layer4[0]
            first.conv1.stride = (1,) * spatial_dims
            if first.downsample is not None:
                first.downsample[0].stride = (1,) * spatial_dims
        self.stem = nn.Sequential(net.conv1, net.bn1, net.act, nn.Identity() if no_max_pool else net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(net.fc.in_features, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


class DUEResNet18(Model):
    """3D ResNet-18 (MONAI) with width and stride options that keep a CAM grid on small volumes."""

    name: ClassVar[str] = "due-resnet18-3d"
    summary: ClassVar[str] = ("3D ResNet-18 topology (MONAI resnet18), width-scalable, strides that keep a "
                              "4x4x4 Grad-CAM grid on 16x32x32 volumes (DUE's backbone)")
    paper: ClassVar[str] = ("Hara et al., Can Spatiotemporal 3D CNNs Retrace the History of 2D CNNs and ImageNet?, "
                            "CVPR 2018; used by Zhao et al., DUE")
    supports_3d: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(Options):
        widen: float = 0.25
        conv1_stride: tuple[int, ...] = (1, 2, 2)
        no_max_pool: bool = True
        layer4_stride: int = 1
        dropout: float = 0.0

    def build(self, in_channels: int, num_classes: int, spatial_dims: int = 3) -> ExplainableNet:
        o = self.options
        owner = f"model {self.name!r}"
        if spatial_dims not in (2, 3):
            raise ConfigError(f"{owner}: spatial_dims must be 2 or 3, got {spatial_dims}")
        stride = tuple(int(s) for s in o.conv1_stride)
        if len(stride) == 1:
            stride = stride * spatial_dims
        if len(stride) == 3 and spatial_dims == 2:
            stride = stride[1:]
        if len(stride) != spatial_dims or min(stride) < 1:
            raise ConfigError(f"{owner}: conv1_stride needs {spatial_dims} positive integers, got {list(o.conv1_stride)}")
        if o.layer4_stride not in (1, 2):
            raise ConfigError(f"{owner}: layer4_stride must be 1 or 2, got {o.layer4_stride}")
        if not 0 < o.widen <= 4 or int(64 * o.widen) < 1:
            raise ConfigError(f"{owner}: widen must lie in (0, 4] with 64*widen ≥ 1, got {o.widen}")
        return DUEResNet18Net(in_channels, num_classes, spatial_dims, float(o.widen), stride, o.no_max_pool,
                              o.layer4_stride, o.dropout)
