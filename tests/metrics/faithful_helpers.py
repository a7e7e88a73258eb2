"""Helpers for the faithfulness and Captum tests: a network whose decision provably depends only on a
known region, an :class:`Evaluation` stand-in, and explainers that return fixed maps or ignore the model."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from xalbench.base import ExplainableNet, Explainer, Split
from xalbench.explain.cam import eval_mode


class RegionNet(ExplainableNet):
    """``logit_0 − logit_1 = 2g·(mean of x over R − t)``: features are ``x·1_R``, so no pixel outside
    the region ``R`` (``mask``) can change the output; class 0 iff R is brighter than ``t``."""

    def __init__(self, mask: Tensor, threshold: float = 0.8, gain: float = 20.0) -> None:
        super().__init__()
        self.spatial_dims = mask.dim()
        self.register_buffer("mask", mask.float())
        self.classifier = nn.Linear(1, 2)
        frac = float(mask.float().mean())
        with torch.no_grad():
            self.classifier.weight.copy_(torch.tensor([[gain / frac], [-gain / frac]]))
            self.classifier.bias.copy_(torch.tensor([-gain * threshold, gain * threshold]))

    def features(self, x: Tensor) -> Tensor:
        return x.sum(1, keepdim=True) * self.mask


def region_mask(shape: tuple[int, ...], lo: int, hi: int) -> Tensor:
    mask = torch.zeros(shape)
    mask[tuple(slice(lo, hi) for _ in shape)] = 1.0
    return mask


def region_images(mask: Tensor, n: int, seed: int, channels: int = 1) -> Tensor:
    """Background uniform in [0, 0.6]; the region bright (0.85–1), so the net predicts class 0 for every image."""
    g = torch.Generator().manual_seed(seed)
    x = 0.6 * torch.rand(n, channels, *mask.shape, generator=g)
    bright = 0.85 + 0.15 * torch.rand(n, channels, *mask.shape, generator=g)
    x = torch.where(mask.bool(), bright / channels, x / channels)
    return x


class FixedMapExplainer(Explainer):
    """Returns the same map for every image (ignores model and targets)."""

    name: ClassVar[str] = "fixed-map"
    summary: ClassVar[str] = "test explainer"

    def __init__(self, map_: Tensor) -> None:
        super().__init__()
        self.map = map_

    def explain(self, model: Any, images: Tensor, targets: Tensor | None = None, *, all_classes: bool = False,
                create_graph: bool = False) -> Tensor:
        return self.map.expand(images.shape[0], *self.map.shape).clone()


class EdgeExplainer(Explainer):
    """An 'explainer' that ignores the model: gradient magnitude of the image (finite differences)."""

    name: ClassVar[str] = "edges"
    summary: ClassVar[str] = "test explainer"

    def explain(self, model: Any, images: Tensor, targets: Tensor | None = None, *, all_classes: bool = False,
                create_graph: bool = False) -> Tensor:
        x = images.sum(1)
        mag = torch.zeros_like(x)
        for d in range(1, x.dim()):
            diff = torch.diff(x, dim=d).abs()
            mag += torch.nn.functional.pad(diff, [0, 0] * (x.dim() - 1 - d) + [0, 1])
        flat = mag.flatten(1)
        lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
        return ((flat - lo) / (hi - lo + 1e-7)).reshape(mag.shape)


@dataclasses.dataclass
class FakeEvaluation:
    """What a metric may read (the harness' ``Evaluation``), for one model on one split."""

    model: ExplainableNet
    split: Split
    explainer: Explainer | None
    num_classes: int = 2
    task: str = "multi-class"
    spatial_dims: int = 2
    target: str = "pred"
    device: torch.device = torch.device("cpu")
    batch_size: int = 64
    seed: int = 0
    _cache: dict = dataclasses.field(default_factory=dict)

    @property
    def probs(self) -> np.ndarray:
        def compute() -> np.ndarray:
            with torch.no_grad(), eval_mode(self.model):
                return torch.softmax(self.model(self.split.images), 1).double().numpy()

        return self.cached("probs", compute)

    @property
    def labels(self) -> np.ndarray:
        return self.split.labels.numpy()

    def roi_pairs(self) -> None:
        return None

    def explain(self, images: Tensor, targets: Tensor | None) -> Tensor:
        assert self.explainer is not None
        with eval_mode(self.model):
            return self.explainer.explain(self.model, images, targets).detach().cpu()

    def cached(self, key: Any, compute: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


def make_eval(model: ExplainableNet, images: Tensor, explainer: Explainer | None, **kw: Any) -> FakeEvaluation:
    split = Split(images=images, labels=torch.zeros(images.shape[0], dtype=torch.long))
    return FakeEvaluation(model=model, split=split, explainer=explainer, spatial_dims=images.dim() - 2, **kw)


def three_maps(mask: Tensor, seed: int = 7) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"region": mask.clone(), "random": torch.rand(mask.shape, generator=g), "elsewhere": 1.0 - mask}
