"""Registered explainers backed by the in-house CAM core: ``cam``, ``gradcam``, ``hirescam``.

All are differentiable (``create_graph=True`` keeps the graph for losses) and work from
cached explanation-layer activations (``from_features``), so the pool cache scores a
pool with one forward and a head-only backward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from torch import Tensor

from xalbench.base import ExplainableNet, Explainer
from xalbench.explain.cam import Method, PostProcess, eval_mode, explain_features, explain_images
from xalbench.options import Options

__all__ = ["CoreCAMExplainer", "CAMExplainer", "GradCAMExplainer", "HiResCAMExplainer"]


class CoreCAMExplainer(Explainer):
    """Shared implementation; subclasses set ``method``."""

    method: ClassVar[Method] = "gradcam"
    differentiable: ClassVar[bool] = True
    from_features: ClassVar[bool] = True
    supports_3d: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(Options):
        relu: bool = True
        resize: bool = True
        normalize: Literal["minmax", "max", "none"] = "minmax"
        eps: float = 1e-7
        align_corners: bool = False
        weight_pool: Literal["spatial", "hw"] = "spatial"
        detach_weights: bool = False
        closed_form: bool = True

    @property
    def post(self) -> PostProcess:
        o = self.options
        return PostProcess(relu=o.relu, resize=o.resize, normalize=o.normalize, eps=o.eps,
                           align_corners=o.align_corners)

    def explain(
        self,
        model: ExplainableNet,
        images: Tensor,
        targets: Tensor | None = None,
        *,
        all_classes: bool = False,
        create_graph: bool = False,
    ) -> Tensor:
        o = self.options
        return explain_images(
            model, images, targets, method=self.method, all_classes=all_classes, create_graph=create_graph,
            post=self.post, detach_weights=o.detach_weights, weight_pool=o.weight_pool, closed_form=o.closed_form,
        )

    def explain_from_features(
        self,
        model: ExplainableNet,
        features: Tensor,
        targets: Tensor | None = None,
        *,
        all_classes: bool = False,
        output_shape: tuple[int, ...] | None = None,
    ) -> Tensor:
        o = self.options
        with eval_mode(model):
            return explain_features(
                model, features, targets, method=self.method, all_classes=all_classes, output_shape=output_shape,
                post=self.post, weight_pool=o.weight_pool, closed_form=o.closed_form,
            ).detach()


class CAMExplainer(CoreCAMExplainer):
    """CAM: explanation-layer activations weighted by the classifier weights of the target class."""

    name: ClassVar[str] = "cam"
    summary: ClassVar[str] = "CAM: features x classifier weights (GAP + linear heads); fast, differentiable, 2D/3D"
    paper: ClassVar[str] = "Zhou et al., Learning Deep Features for Discriminative Localization, CVPR 2016 (eq. 2)"
    method: ClassVar[Method] = "cam"


class GradCAMExplainer(CoreCAMExplainer):
    """Grad-CAM: ReLU(Σ_c mean(∂y/∂A_c)·A_c), head-only backward; closed form for GAP + linear heads."""

    name: ClassVar[str] = "gradcam"
    summary: ClassVar[str] = "Grad-CAM (torch core): batched, differentiable, 2D/3D, all-class maps, head-only backward"
    paper: ClassVar[str] = "Selvaraju et al., Grad-CAM, ICCV 2017 (eqs. 1-2)"
    method: ClassVar[Method] = "gradcam"


class HiResCAMExplainer(CoreCAMExplainer):
    """HiResCAM: Σ_c ∂y/∂A_c ⊙ A_c (element-wise gradients, no spatial averaging)."""

    name: ClassVar[str] = "hirescam"
    summary: ClassVar[str] = "HiResCAM (torch core): element-wise gradient x activation; differentiable, 2D/3D"
    paper: ClassVar[str] = "Draelos & Carin, Use HiResCAM instead of Grad-CAM, arXiv 2011.08891 (eq. 4)"
    method: ClassVar[Method] = "hirescam"
