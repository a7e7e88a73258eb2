"""``densenet121`` and ``resnet50``: the 2D backbones of EG-AL/GESTALT (DenseNet-121) and SAL (ResNet-50).

Each builds the torchvision architecture, sizes the first convolution for the dataset's
channels, replaces the 1000-class ImageNet classifier by ``[Dropout(p) →] Linear(·, K)`` and
splits it with :func:`xalbench.wrap` (explanation layer: ``layer4`` for ResNet, the ReLU of
DenseNet's ``norm5`` output). ``dropout = 0`` gives exactly torchvision's head.

``pretrained``: ``""`` (random init, the default), ``"imagenet"`` (torchvision's
``IMAGENET1K_V1`` file, read from the local torch hub cache only) or a local checkpoint path;
nothing is downloaded (:mod:`xalbench.models.weights`).

Deviation (documented): EG-AL trains DenseNet-121 as a prototypical network with a
512-d embedding; here ``embedding_dim = 512`` adds that ``Linear → ReLU`` embedding before
an ordinary linear classifier (no episodic training).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from xalbench.base import ExplainableNet, Model
from xalbench.errors import UnsupportedError
from xalbench.models.surgery import make_head, resize_first_conv, set_module
from xalbench.models.weights import load_backbone, resolve_pretrained
from xalbench.models.wrap import wrap
from xalbench.options import Options

__all__ = ["TorchvisionBackbone", "DenseNet121", "ResNet50"]


class TorchvisionBackbone(Model):
    """Shared factory; subclasses name the torchvision builder, weights and layer paths."""

    builder: ClassVar[str] = ""
    weights_enum: ClassVar[str] = ""
    first_conv: ClassVar[str] = "conv1"
    head: ClassVar[str] = "fc"
    for_3d: ClassVar[str] = ""

    @dataclass(frozen=True)
    class Options(Options):
        pretrained: str = ""  # "" | "imagenet" (local torch hub cache only) | path to a local state_dict
        dropout: float = 0.25  # before the final linear layer (MC-dropout strategies use it)
        embedding_dim: int = 0  # > 0: Linear(·, d) → ReLU before the classifier (EG-AL's 512-d embedding)

        def __post_init__(self) -> None:
            if not 0.0 <= self.dropout < 1.0:
                raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
            if self.embedding_dim < 0:
                raise ValueError(f"embedding_dim must be >= 0, got {self.embedding_dim}")

    def build(self, in_channels: int, num_classes: int, spatial_dims: int = 2) -> ExplainableNet:
        import torchvision.models as tvm

        if spatial_dims != 2:
            raise UnsupportedError(f"model {self.name!r} is 2D only; use {self.for_3d!r} for 3D datasets")
        o = self.options
        path = resolve_pretrained(o.pretrained, model=self.name,
                                  weights=getattr(tvm, self.weights_enum).IMAGENET1K_V1)
        net = getattr(tvm, self.builder)(weights=None)
        resize_first_conv(net, self.first_conv, in_channels)
        if path is not None:
            load_backbone(net, path, model=self.name, first_conv=self.first_conv, head_prefixes=(self.head + ".",))
        in_features = net.get_submodule(self.head).in_features
        set_module(net, self.head, make_head(in_features, num_classes, o.dropout, o.embedding_dim))
        return wrap(net)


class DenseNet121(TorchvisionBackbone):
    """torchvision DenseNet-121 (explanation layer: ReLU(norm5)); EG-AL's and GESTALT's backbone."""

    name: ClassVar[str] = "densenet121"
    summary: ClassVar[str] = "torchvision DenseNet-121 (EG-AL, GESTALT); 2D, local pretrained weights only"
    paper: ClassVar[str] = "Huang et al., Densely Connected Convolutional Networks, CVPR 2017"
    builder: ClassVar[str] = "densenet121"
    weights_enum: ClassVar[str] = "DenseNet121_Weights"
    first_conv: ClassVar[str] = "features.conv0"
    head: ClassVar[str] = "classifier"
    for_3d: ClassVar[str] = "monai-densenet121"


class ResNet50(TorchvisionBackbone):
    """torchvision ResNet-50 (explanation layer: ``layer4``); SAL's backbone."""

    name: ClassVar[str] = "resnet50"
    summary: ClassVar[str] = "torchvision ResNet-50 (SAL); 2D, local pretrained weights only"
    paper: ClassVar[str] = "He et al., Deep Residual Learning for Image Recognition, CVPR 2016"
    builder: ClassVar[str] = "resnet50"
    weights_enum: ClassVar[str] = "ResNet50_Weights"
    for_3d: ClassVar[str] = "monai-resnet18"
