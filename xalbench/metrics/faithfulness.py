"""Faithfulness metrics: does the evaluation explainer's map point at what the model uses?

ROI alignment (Dice, pointing game) measures plausibility; these measure faithfulness, so a
leaderboard can ask whether an explanation-guided loss raises alignment *without* lowering
faithfulness. All are opt-in (``default = False``; list them in a suite's
``[evaluation] metrics``), multi-class only, and run on a **fixed subset** of the test split:
``n_images`` (default 32) images drawn without replacement with ``subset_seed`` (default 0),
the same for every round, method and seed. Each sample is explained for the model's
**predicted** class (faithfulness is about the model's decision, not the label), with the
suite's evaluation explainer; maps not at input resolution are resized (bilinear/trilinear).
The defaults are the main job's, measured on synth-lesion-2d (two trained small CNNs, all 200
test images): 8 steps instead of 16 change an image's AUC by about 0.01, the same for both
models (per-image correlation ≥ 0.99); a 32-image subset has a sampling error of about 0.03
(deletion) and 0.04 (insertion) AUC in a paired difference between two models, 64 images 0.02
and 0.03 at twice the cost (in 3D, where a forward pass costs ~20× a 2D one, about 3×).

* ``deletion`` (↓) — Petsiuk et al., RISE (BMVC 2018), sec. 4.1: ``AUC = ∫₀¹ p_c(x ⊖ top-f pixels) df``
  with removed pixels set to ``baseline`` (0 = black), ``steps`` equal steps (default 8), mean over images.
* ``insertion`` (↑) — the same paper's insertion game, ``∫₀¹ p_c(baseline ⊕ top-f pixels) df``, computed as
  the LeRF deletion curve (identical area, see :mod:`.perturbation`). Deviation: the canvas is the
  constant ``baseline``, not RISE's blurred image.
* ``road`` (↓) — Rong et al., ROAD (ICML 2022): accuracy (prediction still equal to the
  original prediction) after the top ``p`` % pixels are replaced by noisy linear imputation,
  for ``p`` in ``percentages`` (default 10…90); the value is the area under that MoRF curve
  over the percentage range, rescaled to [0, 1].
* ``randomisation`` (↓, once per cell) — Adebayo et al., Sanity Checks for Saliency Maps
  (NeurIPS 2018), cascading model-parameter randomisation: mean Spearman ρ between the
  maps of the final model and of the same model with every layer re-initialised (top-down,
  Quantus ``MPRT``). An explainer that ignores the weights (an edge detector) scores ρ ≈ 1;
  ρ ≥ 0.5 fails the check.

Backends (option ``backend``): ``"auto"`` uses Quantus where it is correct — 2D
single-channel images (and, for deletion/insertion, ``steps`` dividing H·W) — and the
torch/numpy implementation of :mod:`.perturbation` otherwise (3D volumes, multi-channel
images: Quantus 0.6 rejects or mishandles them); the tests check both agree on 2D images.
``randomisation`` always uses Quantus (it perturbs weights, not inputs, and runs in 3D).
Every metric leaves the model's mode, parameters and all RNG states as they were.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from xalbench.errors import ConfigError
from xalbench.metrics.base import Cost, Direction, Evaluation, Metric, Scope
from xalbench.metrics.perturbation import (
    class_probabilities,
    curve_auc,
    perturbation_curve,
    relevance_order,
    road_curve,
)
from xalbench.metrics.quantus_backend import (
    preserved_state,
    quantus_mprt,
    quantus_perturbation_curve,
    quantus_road,
)
from xalbench.options import Options

__all__ = [
    "FaithfulnessInputs",
    "faithfulness_inputs",
    "DeletionMetric",
    "InsertionMetric",
    "ROADMetric",
    "RandomisationMetric",
    "FAITHFULNESS_METRICS",
    "MPRT_FAIL_THRESHOLD",
]

#: Spearman ρ at or above which the randomisation check counts as failed.
MPRT_FAIL_THRESHOLD = 0.5

Backend = Literal["auto", "quantus", "torch"]


@dataclass(frozen=True)
class FaithfulnessInputs:
    """The fixed subset: test-split rows, images, predicted classes and the explainer's maps."""

    index: np.ndarray
    images: Tensor
    targets: Tensor
    maps: Tensor


def _at_input_size(maps: Tensor, images: Tensor) -> Tensor:
    spatial = tuple(images.shape[2:])
    if tuple(maps.shape[1:]) == spatial:
        return maps.float()
    if maps.dim() != images.dim() - 1:
        raise ConfigError(f"explainer maps {tuple(maps.shape)} do not match images {tuple(images.shape)}")
    mode = "bilinear" if len(spatial) == 2 else "trilinear"
    return F.interpolate(maps[:, None].float(), size=spatial, mode=mode, align_corners=False)[:, 0]


def faithfulness_inputs(ev: Evaluation, n_images: int, subset_seed: int) -> FaithfulnessInputs:
    """The subset and its maps, computed once per evaluation and shared by every faithfulness metric."""

    def compute() -> FaithfulnessInputs:
        n = len(ev.split)
        idx = np.sort(np.random.default_rng(subset_seed).choice(n, size=min(n_images, n), replace=False))
        images = ev.split.images[torch.as_tensor(idx, dtype=torch.long)]
        targets = torch.as_tensor(np.asarray(ev.probs)[idx].argmax(1), dtype=torch.long)
        with preserved_state(ev.model):
            maps = ev.explain(images, targets) if idx.size else images.new_zeros((0, *images.shape[2:]))
        return FaithfulnessInputs(idx, images, targets, _at_input_size(maps.detach().cpu(), images))

    return ev.cached(("faithfulness-inputs", n_images, subset_seed), compute)


def _quantus_supported(images: Tensor, steps: int | None) -> bool:
    pixels = math.prod(images.shape[2:])
    return images.dim() == 4 and images.shape[1] == 1 and (steps is None or pixels % steps == 0)


def _use_quantus(backend: Backend, images: Tensor, steps: int | None, who: str) -> bool:
    supported = _quantus_supported(images, steps)
    if backend == "quantus" and not supported:
        raise ConfigError(
            f"metric {who!r}: the Quantus backend handles only 2D single-channel images"
            f"{' with steps dividing H·W' if steps else ''}; got {tuple(images.shape[1:])}, use backend = 'auto'"
        )
    return backend != "torch" and supported


class FaithfulnessMetric(Metric):
    """Shared options and subset handling; subclasses implement :meth:`score`."""

    needs_explainer: ClassVar[bool] = True
    task: ClassVar[Literal["any", "multi-class", "multi-label"]] = "multi-class"
    default: ClassVar[bool] = False
    cost: ClassVar[Cost] = "moderate"

    @dataclass(frozen=True)
    class Options(Options):
        n_images: int = 32
        subset_seed: int = 0
        backend: Backend = "auto"

        def __post_init__(self) -> None:
            if self.n_images < 1:
                raise ValueError("n_images must be >= 1")

    def compute(self, ev: Evaluation) -> float:
        if ev.explainer is None or ev.task != "multi-class":
            return float("nan")
        inp = faithfulness_inputs(ev, self.options.n_images, self.options.subset_seed)
        if inp.index.size == 0:
            return float("nan")
        with preserved_state(ev.model):
            return float(self.score(ev, inp))

    def score(self, ev: Evaluation, inp: FaithfulnessInputs) -> float:
        raise NotImplementedError


class _CurveMetric(FaithfulnessMetric):
    lerf: ClassVar[bool] = False

    @dataclass(frozen=True)
    class Options(FaithfulnessMetric.Options):
        steps: int = 8
        baseline: float = 0.0

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.steps < 1:
                raise ValueError("steps must be >= 1")

    def curves(self, ev: Evaluation, inp: FaithfulnessInputs) -> np.ndarray:
        """Per-image curves ``N×(steps+1)``: column 0 is the intact image."""
        o = self.options
        order = relevance_order(inp.maps, ev.seed)
        if _use_quantus(o.backend, inp.images, o.steps, self.name):
            intact = class_probabilities(ev.model, inp.images, inp.targets, ev.batch_size).double().numpy()[:, None]
            rest = quantus_perturbation_curve(ev.model, inp.images, order, inp.targets, steps=o.steps,
                                              baseline=o.baseline, lerf=self.lerf, batch_size=ev.batch_size)
            return np.concatenate([intact, rest], 1)
        return perturbation_curve(ev.model, inp.images, order, inp.targets, steps=o.steps, baseline=o.baseline,
                                  lerf=self.lerf, batch_size=ev.batch_size)

    def score(self, ev: Evaluation, inp: FaithfulnessInputs) -> float:
        return float(curve_auc(self.curves(ev, inp)).mean())


class DeletionMetric(_CurveMetric):
    """Deletion AUC (MoRF): probability of the predicted class as the most relevant pixels are removed."""

    name: ClassVar[str] = "deletion"
    key: ClassVar[str] = "del_auc"
    display: ClassVar[str] = "deletion_AUC"
    summary: ClassVar[str] = "Deletion AUC (MoRF pixel removal, lower = more faithful); 32-image subset"
    paper: ClassVar[str] = "Petsiuk et al., RISE, BMVC 2018 (deletion, sec. 4.1); Quantus PixelFlipping"
    direction: ClassVar[Direction] = "min"


class InsertionMetric(_CurveMetric):
    """Insertion AUC: probability of the predicted class as the most relevant pixels are inserted (LeRF deletion)."""

    name: ClassVar[str] = "insertion"
    key: ClassVar[str] = "ins_auc"
    display: ClassVar[str] = "insertion_AUC"
    summary: ClassVar[str] = "Insertion AUC (= LeRF deletion area, higher = more faithful); 32-image subset"
    paper: ClassVar[str] = "Petsiuk et al., RISE, BMVC 2018 (insertion, sec. 4.1); Quantus PixelFlipping (LeRF)"
    direction: ClassVar[Direction] = "max"
    lerf: ClassVar[bool] = True


class ROADMetric(FaithfulnessMetric):
    """ROAD (MoRF): accuracy after noisy linear imputation of the most relevant pixels, area over percentages."""

    name: ClassVar[str] = "road"
    key: ClassVar[str] = "road"
    display: ClassVar[str] = "ROAD"
    summary: ClassVar[str] = "ROAD remove-and-debias MoRF accuracy area (lower = more faithful); 32-image subset"
    paper: ClassVar[str] = "Rong et al., A Consistent and Efficient Evaluation Strategy for Attribution Methods (ROAD), ICML 2022; Quantus ROAD"
    direction: ClassVar[Direction] = "min"
    cost: ClassVar[Cost] = "expensive"

    @dataclass(frozen=True)
    class Options(FaithfulnessMetric.Options):
        percentages: tuple[float, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90)
        noise: float = 0.01

        def __post_init__(self) -> None:
            super().__post_init__()
            p = self.percentages
            if not p or any(not 0 < v < 100 for v in p) or any(b <= a for a, b in zip(p, p[1:], strict=False)):
                raise ValueError("percentages must be increasing values in (0, 100)")
            if self.noise < 0:
                raise ValueError("noise must be >= 0")

    def accuracy_curve(self, ev: Evaluation, inp: FaithfulnessInputs) -> np.ndarray:
        """Mean accuracy per percentage."""
        o = self.options
        order = relevance_order(inp.maps, ev.seed)
        if _use_quantus(o.backend, inp.images, None, self.name):
            return quantus_road(ev.model, inp.images, order, inp.targets, percentages=o.percentages, noise=o.noise,
                                seed=ev.seed, batch_size=ev.batch_size)
        return road_curve(ev.model, inp.images, order, inp.targets, percentages=o.percentages, noise=o.noise,
                          seed=ev.seed, batch_size=ev.batch_size).mean(0)

    def score(self, ev: Evaluation, inp: FaithfulnessInputs) -> float:
        return float(curve_auc(self.accuracy_curve(ev, inp)[None], x=self.options.percentages)[0])


class RandomisationMetric(FaithfulnessMetric):
    """Model-parameter randomisation check: Spearman ρ of the maps before/after re-initialising every layer."""

    name: ClassVar[str] = "randomisation"
    key: ClassVar[str] = "mprt"
    display: ClassVar[str] = "MPRT_rho"
    summary: ClassVar[str] = "Model-parameter randomisation sanity check, Spearman rho (>= 0.5 fails); once per cell"
    paper: ClassVar[str] = "Adebayo et al., Sanity Checks for Saliency Maps, NeurIPS 2018 (cascading randomisation); Quantus MPRT"
    direction: ClassVar[Direction] = "min"
    scope: ClassVar[Scope] = "cell"
    aulc: ClassVar[bool] = False
    bounds: ClassVar[tuple[float, float] | None] = (-1.0, 1.0)

    @dataclass(frozen=True)
    class Options(FaithfulnessMetric.Options):
        average: bool = False  # mean ρ over the cascade (one explanation pass per layer) instead of the last

    def per_sample(self, ev: Evaluation, inp: FaithfulnessInputs) -> np.ndarray:
        if self.options.backend == "torch":
            raise ConfigError("metric 'randomisation' runs through Quantus only (backend = 'auto' or 'quantus')")
        explainer = ev.explainer
        assert explainer is not None
        return quantus_mprt(ev.model, inp.images, inp.targets, inp.maps,
                            lambda m, x, t: explainer.explain(m, x, t), seed=ev.seed,
                            average=self.options.average, batch_size=ev.batch_size)

    def score(self, ev: Evaluation, inp: FaithfulnessInputs) -> float:
        return float(self.per_sample(ev, inp).mean())


FAITHFULNESS_METRICS: tuple[type[FaithfulnessMetric], ...] = (
    DeletionMetric,
    InsertionMetric,
    ROADMetric,
    RandomisationMetric,
)
