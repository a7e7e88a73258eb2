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

from xalbench.base import ExplainableNet
from xalbench.errors import UnsupportedError
from xalbench.explain.adapter import ScoringAdapter
from xalbench.explain.cam import PostProcess, postprocess
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


class LRPExplainer(ScoringAdapter):
    """Shared zennit adapter; subclasses build the composite."""

    library: ClassVar[str] = "zennit 0.5.1 LRP"
    why_scoring_only: ClassVar[str] = "(zennit < 1.0 gives no parameter gradients for LRP maps)"
    gap_module: ClassVar[bool] = True

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

    def check_model(self, model: ExplainableNet) -> None:
        canonizers_for(model, self.options.allow_unknown_models)

    def attribute(self, model: ExplainableNet, wrapped: MarkedNet, images: Tensor,
                  sets: list[Tensor]) -> list[Tensor]:
        from zennit.attribution import Gradient

        k = model.classifier.out_features
        composite = self.composite(images, canonizers_for(model, self.options.allow_unknown_models))
        maps = []
        try:
            with torch.enable_grad(), Gradient(model=wrapped, composite=composite) as attributor:
                for t in sets:
                    _, relevance = attributor(images, torch.nn.functional.one_hot(t, k).to(images.dtype))
                    maps.append(relevance.detach().sum(1))
        except RuntimeError as exc:  # zennit's rules fail on structures they cannot canonise (e.g. DenseNet)
            raise UnsupportedError(
                f"LRP ({self.name}) cannot attribute model class {type(model).__name__} even approximately "
                f"({str(exc).splitlines()[0][:120]}); use 'gradcam' or a Captum explainer") from exc
        return maps

    def normalise(self, maps: Tensor) -> Tensor:
        """``max(R, 0)`` if ``positive``, then per-sample min-max."""
        post = PostProcess(relu=self.options.positive, resize=False, normalize="minmax", eps=self.options.eps)
        return postprocess(maps, None, post)


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
