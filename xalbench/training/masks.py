"""Built-in mask sources: ``none`` (default), ``human`` and ``model-cam``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from torch import Tensor

from xalbench.base import ExplainableNet, Explainer
from xalbench.explain.cam import PostProcess, explain_images
from xalbench.explain.core import CoreCAMExplainer
from xalbench.options import Options
from xalbench.training.base import MaskRequest, MaskSource

__all__ = ["HumanMasks", "ModelCamMasks", "NoMasks", "cam_masks"]


class NoMasks(MaskSource):
    """Samples labelled beyond the human-mask budget get no mask (the protocol as published)."""

    name: ClassVar[str] = "none"
    summary: ClassVar[str] = "No mask beyond the human-mask budget (default)"

    def generate(self, request: MaskRequest) -> Tensor | None:
        return None


class HumanMasks(MaskSource):
    """Every labelled sample gets the expert's mask; the protocol's mask budget is ignored
    (SAL's B2 baseline: saliency for every sample)."""

    name: ClassVar[str] = "human"
    summary: ClassVar[str] = "Expert masks for every labelled sample (ignores the mask budget)"
    ignores_budget: ClassVar[bool] = True

    def generate(self, request: MaskRequest) -> Tensor | None:
        return None


def cam_masks(maps: Tensor, threshold: float) -> Tensor:
    """Binary masks from maps: per-sample min-max normalisation, then ``> threshold`` (SAL Alg. 1)."""
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.amin(1, keepdim=True)
    hi = flat.amax(1, keepdim=True)
    norm = (flat - lo) / (hi - lo).clamp_min(1e-12)
    return (norm > threshold).float().reshape(maps.shape)


class ModelCamMasks(MaskSource):
    """Masks from a trained model's CAM, for the newly revealed label (``target = "label"``) or the
    model's prediction (``"pred"``). ``model`` names which of the round's models draws them
    (``"main"`` or an extra model of the trainer, e.g. SAL's ``"interp"``); ``explainer`` defaults
    to the suite's.

    ``map = "raw"`` (default; SAL §6.1: "a threshold of 0.5 is applied to the model CAM"): the
    model's class activation map **without ReLU** — the explainer's CAM method (``cam``,
    ``gradcam`` or ``hirescam`` with its weight pooling) or, for any other explainer, CAM itself
    (classifier weights · features) —, upsampled to the input, min-max normalised per sample,
    ``> threshold``. Where the CAM goes negative the cut is at ``(max + min) / 2``.
    ``map = "explainer"``: the explainer's map as it returns it, min-max normalised, ``> threshold``;
    for the CAM family (ReLU on by default) the cut is then at ``max / 2`` and the masks shrink
    where the CAM goes negative (xalbench's earlier reading, kept as an option)."""

    name: ClassVar[str] = "model-cam"
    summary: ClassVar[str] = "Masks drawn by a trained model's CAM (raw, min-max, > 0.5), e.g. SAL's AI saliency"
    paper: ClassVar[str] = "Boyd et al., SAL, Algorithm 1 and §6.1"
    supports_multilabel: ClassVar[bool] = False

    @dataclass(frozen=True)
    class Options(Options):
        model: str = "main"
        threshold: float = 0.5
        target: Literal["label", "pred"] = "label"
        explainer: str = ""
        map: Literal["raw", "explainer"] = "raw"
        human_budget: float = 0.0  # > 0: this method's own human-mask budget (count ≥ 1 or fraction ≤ 1)

        def __post_init__(self) -> None:
            if not 0.0 <= self.threshold < 1.0:
                raise ValueError(f"threshold must lie in [0, 1), got {self.threshold}")
            if self.human_budget < 0:
                raise ValueError(f"human_budget must be ≥ 0, got {self.human_budget}")

    def human_budget(self) -> int | float | None:
        b = self.options.human_budget
        if b <= 0:
            return None
        return b if b <= 1 else int(b)

    def maps(self, explainer: Explainer, net: ExplainableNet, images: Tensor, targets: Tensor | None) -> Tensor:
        """The maps to threshold (``B×spatial``, input resolution), per :attr:`Options.map`."""
        if self.options.map == "explainer":
            return explainer.explain(net, images, targets).detach()
        method, pool, closed = "cam", "spatial", True
        if isinstance(explainer, CoreCAMExplainer):
            eo = explainer.options
            method, pool, closed = explainer.method, eo.weight_pool, eo.closed_form
        return explain_images(net, images, targets, method=method, weight_pool=pool, closed_form=closed,
                              post=PostProcess(relu=False, resize=True, normalize="none")).detach()

    def generate(self, request: MaskRequest) -> Tensor | None:
        o = self.options
        net = request.models.get(o.model)
        explainer = request.create("explainer", o.explainer, None) if o.explainer else request.explainer
        if explainer is None:
            from xalbench.errors import ConfigError

            raise ConfigError("mask source 'model-cam' needs an explainer: set the suite's [explainer] or its option")
        x = request.images.to(request.device)
        flags = [(m, m.training) for m in net.modules()]
        net.eval()
        try:
            targets = request.labels.to(request.device) if o.target == "label" else None
            maps = self.maps(explainer, net, x, targets)
        finally:
            for m, flag in flags:
                m.training = flag
        return cam_masks(maps.cpu(), o.threshold)
