"""Scoring-only LRP adapters over zennit: ``lrp-epsilon-plus-flat``, ``lrp-epsilon-gamma-box``, ``deep-taylor``.

Relevance ``R`` (input-shaped) for the target logit is summed over input channels, then
``positive`` (default) keeps ``max(R, 0)`` and maps are min-max normalised per sample to
[0, 1] (torch tensors at input resolution on the model's device).

Composites (zennit 0.5.1 ``composites.py``):

* ``lrp-epsilon-plus-flat``: Flat on the first layer, z⁺ on convolutions, ε on linear.
* ``lrp-epsilon-gamma-box``: z^B (box ``[low, high]``, images in [0, 1]) on the first layer,
  γ on convolutions, ε on linear.
* ``deep-taylor``: the z⁺ rule of Deep Taylor decomposition (Montavon et al., Pattern
  Recognition 2017), as zennit's EpsilonPlus (z⁺ on convolutions, ε on the classifier).

Canonisation (valid in eval mode only; the call runs in eval mode and restores flags):
``resnet18`` and wrapped torchvision ResNets (``resnet50``, ``xalbench.wrap``) → ``ResNetCanonizer``
(BatchNorm merged, residual ``Sum`` module);
``small-cnn`` → ``SequentialMergeBatchNorm``. Other models are **unsupported** (e.g.
DenseNet has no zennit canonizer: concatenations and functional in-place ReLUs are not
canonised) unless ``allow_unknown_models = true``, which applies only
``SequentialMergeBatchNorm`` and is approximate. A GAP + linear head is rewritten as an
``AdaptiveAvgPool`` module so the composite's pooling (Norm) rule applies to it.
zennit 0.5.1 cannot give parameter gradients of LRP maps (fixed in 1.0.0), so these are
not differentiable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from xalbench.base import ExplainableNet, Explainer
from xalbench.errors import ConfigError, UnsupportedError
from xalbench.explain.cam import PostProcess, check_targets, eval_mode, postprocess
from xalbench.explain.wrappers import MarkedNet
from xalbench.options import Options

__all__ = ["LRPExplainer", "LRPEpsilonPlusFlat", "LRPEpsilonGammaBox", "DeepTaylorExplainer", "canonizers_for"]


def canonizers_for(model: ExplainableNet, allow_unknown: bool) -> list[Any]:
    """zennit canonizers for the built-in models; UnsupportedError for unknown ones (unless allowed)."""
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.torchvision import ResNetCanonizer

    from xalbench.models.resnet import ResNetNet
    from xalbench.models.small_cnn import SmallCNNNet

    if isinstance(model, ResNetNet) or _wraps_torchvision_resnet(model):
        return [ResNetCanonizer()]
    if isinstance(model, SmallCNNNet):
        return [SequentialMergeBatchNorm()]
    if allow_unknown:
        return [SequentialMergeBatchNorm()]
    raise UnsupportedError(
        f"LRP has no canonizer for model class {type(model).__name__} (supported: small-cnn, resnet18, "
        "torchvision ResNets through xalbench.wrap); "
        "set allow_unknown_models = true for an approximate attribution, or use 'gradcam'"
    )


def _wraps_torchvision_resnet(model: ExplainableNet) -> bool:
    """A :func:`xalbench.wrap`-ped torchvision ResNet (``resnet50`` …): its blocks are zennit's canonizer targets."""
    from torchvision.models.resnet import ResNet

    from xalbench.models.wrap import WrappedNet

    return isinstance(model, WrappedNet) and isinstance(model.model, ResNet)


class LRPExplainer(Explainer):
    """Shared zennit adapter; subclasses build the composite."""

    differentiable: ClassVar[bool] = False
    from_features: ClassVar[bool] = False
    supports_3d: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(Options):
        epsilon: float = 1e-6
        gamma: float = 0.25
        low: float = 0.0
        high: float = 1.0
        positive: bool = True
        eps: float = 1e-7
        allow_unknown_models: bool = False

    def composite(self, images: Tensor, canonizers: list[Any]) -> Any:
        raise NotImplementedError

    def explain(
        self,
        model: ExplainableNet,
        images: Tensor,
        targets: Tensor | None = None,
        *,
        all_classes: bool = False,
        create_graph: bool = False,
    ) -> Tensor:
        from zennit.attribution import Gradient

        if create_graph:
            raise UnsupportedError(
                f"explainer {self.name!r} (zennit 0.5.1 LRP) is scoring-only; zennit < 1.0 gives no parameter "
                "gradients for LRP maps. Use 'gradcam', 'hirescam' or 'cam' inside losses"
            )
        if images.dim() not in (4, 5):
            raise ConfigError(f"images must be B×C×H×W or B×C×D×H×W, got {tuple(images.shape)}")
        canon = canonizers_for(model, self.options.allow_unknown_models)
        device = next(model.parameters()).device
        images = images.to(device)
        n, k = images.shape[0], model.classifier.out_features
        wrapped = MarkedNet(model, gap_module=True)
        maps = []
        with eval_mode(model), torch.enable_grad():
            if all_classes:
                target_sets = [torch.full((n,), c, dtype=torch.long, device=device) for c in range(k)]
            else:
                t = check_targets(targets, n, k, device)
                if t is None:
                    with torch.no_grad():
                        t = model(images).argmax(1)
                target_sets = [t]
            with Gradient(model=wrapped, composite=self.composite(images, canon)) as attributor:
                for t in target_sets:
                    onehot = torch.nn.functional.one_hot(t, k).to(images.dtype)
                    _, relevance = attributor(images, onehot)
                    maps.append(relevance.detach().sum(1))
        raw = torch.stack(maps, 1)
        post = PostProcess(relu=self.options.positive, resize=False, normalize="minmax", eps=self.options.eps)
        out = postprocess(raw, None, post)
        return out if all_classes else out[:, 0]


class LRPEpsilonPlusFlat(LRPExplainer):
    """LRP with zennit's EpsilonPlusFlat composite (Flat first layer, z⁺ convs, ε linear)."""

    name: ClassVar[str] = "lrp-epsilon-plus-flat"
    summary: ClassVar[str] = "LRP EpsilonPlusFlat (zennit adapter); scoring only, small-cnn/resnet18, 2D/3D"
    paper: ClassVar[str] = "Montavon et al., Layer-Wise Relevance Propagation: An Overview, 2019; zennit (Anders et al. 2021)"

    def composite(self, images: Tensor, canonizers: list[Any]) -> Any:
        from zennit.composites import EpsilonPlusFlat

        return EpsilonPlusFlat(epsilon=self.options.epsilon, canonizers=canonizers)


class LRPEpsilonGammaBox(LRPExplainer):
    """LRP with zennit's EpsilonGammaBox composite (z^B first layer in [low, high], γ convs, ε linear)."""

    name: ClassVar[str] = "lrp-epsilon-gamma-box"
    summary: ClassVar[str] = "LRP EpsilonGammaBox (zennit adapter); scoring only, small-cnn/resnet18, 2D/3D"
    paper: ClassVar[str] = "Montavon et al., Layer-Wise Relevance Propagation: An Overview, 2019; zennit (Anders et al. 2021)"

    def composite(self, images: Tensor, canonizers: list[Any]) -> Any:
        from zennit.composites import EpsilonGammaBox

        o = self.options
        return EpsilonGammaBox(low=torch.full_like(images, o.low), high=torch.full_like(images, o.high),
                               epsilon=o.epsilon, gamma=o.gamma, canonizers=canonizers)


class DeepTaylorExplainer(LRPExplainer):
    """Deep Taylor decomposition, z⁺ rule (zennit EpsilonPlus: z⁺ convs, ε classifier)."""

    name: ClassVar[str] = "deep-taylor"
    summary: ClassVar[str] = "Deep Taylor (z+ rule, zennit EpsilonPlus adapter); scoring only, small-cnn/resnet18, 2D/3D"
    paper: ClassVar[str] = "Montavon et al., Explaining nonlinear classification decisions with deep Taylor decomposition, Pattern Recognition 2017"

    def composite(self, images: Tensor, canonizers: list[Any]) -> Any:
        from zennit.composites import EpsilonPlus

        return EpsilonPlus(epsilon=self.options.epsilon, canonizers=canonizers)
