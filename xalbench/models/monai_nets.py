"""``monai-resnet18`` and ``monai-densenet121``: MONAI's dimension-generic backbones, 3D (and 2D).

``monai-resnet18`` is MONAI's ResNet-18 (the 3D ResNet family of Hara et al.), DUE's 3D
backbone; ``monai-densenet121`` is MONAI's DenseNet-121, the 3D counterpart of
``densenet121``. Both take ``spatial_dims`` from the dataset (2 or 3), any number of input
channels and classes; the classifier is ``[Dropout(p) →] Linear(·, K)`` and the net is split
with :func:`xalbench.wrap` (explanation layer: ``layer4`` / the ReLU of ``norm5``).

``pretrained`` is ``""`` or a local checkpoint path (e.g. MedicalNet's ResNet-18, which
needs ``shortcut_type = "A"``); nothing is downloaded (MONAI's own ``pretrained=True``
would fetch weights, so it is never used).

Deviation (documented): MONAI's ResNet defaults to a stride-1 first convolution; here
``conv1_t_stride = 2`` (as in torchvision, MedicalNet and DUE's 7×7/stride-2 stem) keeps
3D CPU runs affordable. Set it to 1 for MONAI's default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from xalbench.base import ExplainableNet, Model
from xalbench.errors import UnsupportedError
from xalbench.models.surgery import make_head, set_module
from xalbench.models.weights import load_backbone, resolve_pretrained
from xalbench.models.wrap import wrap
from xalbench.options import Options

__all__ = ["MonaiResNet18", "MonaiDenseNet121"]


def _check_dims(name: str, spatial_dims: int) -> None:
    if spatial_dims not in (2, 3):
        raise UnsupportedError(f"model {name!r} needs 2D or 3D images, got spatial_dims = {spatial_dims}")


def _check_dropout(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


class MonaiResNet18(Model):
    """MONAI ResNet-18, 2D/3D (explanation layer ``layer4``); DUE's 3D backbone."""

    name: ClassVar[str] = "monai-resnet18"
    summary: ClassVar[str] = "MONAI ResNet-18 (DUE's 3D backbone); 2D and 3D, local pretrained weights only"
    paper: ClassVar[str] = "Hara et al., Can Spatiotemporal 3D CNNs Retrace the History of 2D CNNs and ImageNet?, CVPR 2018"
    supports_3d: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(Options):
        pretrained: str = ""  # "" | path to a local state_dict
        dropout: float = 0.25
        widen_factor: float = 1.0
        conv1_t_size: int = 7
        conv1_t_stride: int = 2
        no_max_pool: bool = False
        shortcut_type: Literal["A", "B"] = "B"

        def __post_init__(self) -> None:
            _check_dropout(self.dropout)
            if self.widen_factor <= 0 or self.conv1_t_size < 1 or self.conv1_t_stride < 1:
                raise ValueError("widen_factor must be > 0 and conv1_t_size, conv1_t_stride >= 1")

    def build(self, in_channels: int, num_classes: int, spatial_dims: int = 2) -> ExplainableNet:
        from monai.networks.nets import resnet18

        _check_dims(self.name, spatial_dims)
        o = self.options
        path = resolve_pretrained(o.pretrained, model=self.name)
        net = resnet18(pretrained=False, spatial_dims=spatial_dims, n_input_channels=in_channels,
                       num_classes=num_classes, widen_factor=o.widen_factor, conv1_t_size=o.conv1_t_size,
                       conv1_t_stride=o.conv1_t_stride, no_max_pool=o.no_max_pool, shortcut_type=o.shortcut_type)
        if path is not None:
            load_backbone(net, path, model=self.name, first_conv="conv1", head_prefixes=("fc.",))
        set_module(net, "fc", make_head(net.fc.in_features, num_classes, o.dropout))
        return wrap(net)


class MonaiDenseNet121(Model):
    """MONAI DenseNet-121, 2D/3D (explanation layer: ReLU of ``norm5``)."""

    name: ClassVar[str] = "monai-densenet121"
    summary: ClassVar[str] = "MONAI DenseNet-121 (3D counterpart of densenet121); 2D and 3D, local pretrained weights only"
    paper: ClassVar[str] = "Huang et al., Densely Connected Convolutional Networks, CVPR 2017"
    supports_3d: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(Options):
        pretrained: str = ""  # "" | path to a local state_dict
        dropout: float = 0.25  # before the final linear layer
        init_features: int = 64
        growth_rate: int = 32
        bn_size: int = 4
        dropout_prob: float = 0.0  # inside the dense layers (MONAI's option)

        def __post_init__(self) -> None:
            _check_dropout(self.dropout)
            _check_dropout(self.dropout_prob)
            if min(self.init_features, self.growth_rate, self.bn_size) < 1:
                raise ValueError("init_features, growth_rate and bn_size must be >= 1")

    def build(self, in_channels: int, num_classes: int, spatial_dims: int = 2) -> ExplainableNet:
        from monai.networks.nets import DenseNet121

        _check_dims(self.name, spatial_dims)
        o = self.options
        path = resolve_pretrained(o.pretrained, model=self.name)
        net = DenseNet121(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=num_classes,
                          init_features=o.init_features, growth_rate=o.growth_rate, bn_size=o.bn_size,
                          dropout_prob=o.dropout_prob)
        if path is not None:
            load_backbone(net, path, model=self.name, first_conv="features.conv0", head_prefixes=("class_layers.out.",))
        out = net.class_layers.out
        set_module(net, "class_layers.out", make_head(out.in_features, num_classes, o.dropout))
        return wrap(net)
