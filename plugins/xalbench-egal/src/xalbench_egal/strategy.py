"""The EG-AL acquisition function (Uddin et al., "Learning to Select Like Humans").

``Score(x) = λ·H(x) + (1 − λ)·D_exp(x)``                                   (eq. 3)

* ``H(x) = −Σ_k p(y=k|x) log p(y=k|x)`` — Shannon entropy of the softmax, natural log,
  **not** normalised (eq. 1; the paper's Fig. 3 scores 1.011–1.079 exceed 1, which only an
  unnormalised entropy allows). ``normalise_entropy = True`` divides by ``log K``.
* ``D_exp(x) = 1 − 2·Σ(s·m) / (Σs + Σm)`` — one minus the soft Dice between the Grad-CAM
  ``s`` of the predicted class ``ŷ = argmax_k p(y=k|x)`` (a normalised heatmap in [0, 1])
  and the expert ROI ``m``; ``|·|`` = sum of pixel values, ``∩`` = element-wise product (eq. 2).

Everything comes from the round's shared pool cache: ``ctx.cache.probs()`` (one eval-mode
forward) and ``ctx.cache.saliency("pred")`` (head-only Grad-CAM from the cached
explanation-layer activations, the suite's ``[explainer]``); never a per-image loop. Maps and
ROIs are compared in float64 one block of pool rows at a time
(:func:`xalbench.strategies.blocks.row_blocks`), so memory stays bounded on large pools.
ROIs are ``ctx.pool_roi`` / ``ctx.pool_has_roi`` (aligned with ``ctx.unlabelled``), which
the harness shows only on tracks with ``pool_masks = "visible"`` — hence
``requires_pool_masks = True``.

**Pool samples without an ROI** (``has_roi`` False or an all-zero mask). Eq. 2 is not
defined by the paper for them (§III-B assumes every pool image has an expert annotation);
taken literally with ``Σm = 0`` it gives ``D_exp = 1`` for every non-zero map, i.e. *maximal*
misalignment without any evidence, so ROI-less images would flood every explanation-driven
batch. The default ``empty_roi = "entropy-term"`` keeps only the term the paper can define —
``Score = λ·H(x)`` (the misalignment term contributes nothing: no expert expectation, no
divergence from it). This keeps eq. 3's scale and its λ = 1 ≡ entropy limit; at λ = 0
ROI-less samples score 0 and come last. Alternatives: ``"entropy"`` (``Score = H(x)``) and
``"literal"`` (eq. 2 as printed with ``Σm = 0``: ``D_exp = 1`` if the map is non-zero).

**Multi-label** (an extension; the paper is multi-class): ``H`` is the mean binary entropy
over labels (as the core ``entropy`` strategy, so λ = 1 still ranks exactly as ``entropy``;
``normalise_entropy`` divides by ``log 2``), ``ŷ`` = the label with the largest logit (the
cache's ``"pred"`` target) and ``m`` = the sample's ROI, i.e. the union of its findings' boxes
— the comparison the paper's Fig. 3 draws for VinDr-CXR (one map against several boxes).

3D works unchanged when the cache's maps and the ROIs are ``U×D×H×W``; maps at another
resolution than the ROI (an explainer with ``resize = false``) are compared with the ROI
area-resampled to the map's grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

import xalbench
from xalbench.base import StrategyContext
from xalbench.errors import ConfigError
from xalbench.strategies.blocks import row_blocks
from xalbench.strategies.common import binary_entropy, categorical_entropy

__all__ = ["EGAL", "EGALScores", "egal_score", "entropy_term", "misalignment"]

PAPER = ("Uddin, Wang, Qin, Zhou & Santosh, Learning to Select Like Humans: Explainable Active Learning "
         "for Medical Imaging (EG-AL), arXiv 2602.13308, eqs. 1-3")

EmptyROI = Literal["entropy-term", "entropy", "literal"]


@dataclass(frozen=True)
class EGALScores:
    """Per-sample terms of eq. 3, aligned with ``ctx.unlabelled`` (float64 numpy).

    Array-like: ``np.asarray(terms)`` is ``terms.score``, so :meth:`EGAL.scores` returns the
    terms and still meets :meth:`xalbench.base.Strategy.scores`' contract.
    """

    score: np.ndarray
    entropy: np.ndarray
    misalignment: np.ndarray  # NaN where the sample has no ROI (D_exp undefined)
    has_roi: np.ndarray

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        score = self.score if dtype is None else self.score.astype(dtype, copy=False)
        return score.copy() if copy else score

    def __len__(self) -> int:
        return int(self.score.shape[0])


def entropy_term(probs: Tensor, *, multilabel: bool = False, normalise: bool = False) -> Tensor:
    """Eq. 1: ``−Σ_k p_k log p_k`` in nats (multi-label: mean binary entropy); ``/ log K`` if ``normalise``."""
    probs = probs.double()
    if multilabel:
        h = binary_entropy(probs).mean(1)
        scale = math.log(2.0)
    else:
        h = categorical_entropy(probs, 1)
        scale = math.log(probs.shape[1]) if probs.shape[1] > 1 else 1.0
    return h / scale if normalise else h


def _to_grid(roi: Tensor, shape: tuple[int, ...]) -> Tensor:
    """ROI ``N×spatial`` area-resampled to ``shape`` (identity if it already matches)."""
    if tuple(roi.shape[1:]) == tuple(shape):
        return roi
    if roi.dim() - 1 != len(shape):
        raise ConfigError(f"egal: saliency maps {tuple(shape)} and ROIs {tuple(roi.shape[1:])} have different "
                          "dimensionality; use an explainer whose maps match the dataset's ROIs")
    return F.adaptive_avg_pool2d(roi[:, None], shape)[:, 0] if len(shape) == 2 else \
        F.adaptive_avg_pool3d(roi[:, None], shape)[:, 0]


def misalignment(maps: Tensor, roi: Tensor) -> Tensor:
    """Eq. 2: ``1 − 2Σ(s·m)/(Σs + Σm)`` per sample (float64); NaN where ``Σs + Σm = 0``."""
    s = maps.double().flatten(1)
    m = _to_grid(roi.double(), tuple(maps.shape[1:])).flatten(1)
    den = s.sum(1) + m.sum(1)
    dice = 2.0 * (s * m).sum(1) / den
    return 1.0 - dice


def egal_score(entropy: Tensor, d_exp: Tensor, has_roi: Tensor, lam: float,
               empty_roi: EmptyROI = "entropy-term") -> Tensor:
    """Eq. 3 with the empty-ROI rule of the module docstring (``d_exp`` may be NaN where ``~has_roi``)."""
    entropy = entropy.double()
    if lam >= 1.0:  # eq. 3 at λ = 1 is pure entropy under every empty-ROI rule; D_exp is not needed
        return entropy.clone()
    d = torch.where(has_roi, d_exp.double(), torch.zeros_like(entropy))
    score = lam * entropy + (1.0 - lam) * d
    if empty_roi == "entropy":
        score = torch.where(has_roi, score, entropy)
    elif empty_roi == "literal":
        literal = lam * entropy + (1.0 - lam) * torch.nan_to_num(d_exp.double(), nan=0.0)
        score = torch.where(has_roi, score, literal)
    return score


class EGAL(xalbench.Strategy):
    """EG-AL: ``λ·H(x) + (1 − λ)·(1 − softDice(Grad-CAM_ŷ(x), ROI(x)))``, top-k (eq. 3, Alg. 1)."""

    name: ClassVar[str] = "egal"
    summary: ClassVar[str] = ("EG-AL: lam * softmax entropy + (1 - lam) * (1 - soft Dice(Grad-CAM of the "
                              "predicted class, expert ROI)); needs visible pool ROIs")
    paper: ClassVar[str] = PAPER
    requires_pool_masks: ClassVar[bool] = True
    supports_multilabel: ClassVar[bool] = True
    supports_3d: ClassVar[bool] = True
    tunable: ClassVar[dict[str, list[float]]] = {"lam": [0.25, 0.5, 0.75]}  # search space of [tuning]

    @dataclass(frozen=True)
    class Options(xalbench.Options):
        """``lam`` = λ of eq. 3 (paper: 0.5 BraTS/SIIM-COVID, 0.6 VinDr-CXR); see the module docstring."""

        lam: float = 0.5
        normalise_entropy: bool = False
        empty_roi: EmptyROI = "entropy-term"

        def __post_init__(self) -> None:
            if not 0.0 <= self.lam <= 1.0:
                raise ValueError(f"option 'lam' must lie in [0, 1] (eq. 3), got {self.lam!r}")

    def scores(self, ctx: StrategyContext) -> EGALScores:
        """Eq. 1–3 for every unlabelled sample, from the shared pool cache (the default
        ``query`` takes the top ``k`` of ``terms.score``)."""
        o = self.options
        multilabel = ctx.task == "multi-label"
        h = entropy_term(ctx.cache.probs().detach(), multilabel=multilabel, normalise=o.normalise_entropy)
        n = h.shape[0]
        has_roi = ctx.pool_has_roi.detach().to("cpu", torch.bool).reshape(-1)
        d = torch.full((n,), float("nan"), dtype=torch.float64)
        if n and o.lam < 1.0:  # λ = 1 is pure entropy: no explanation pass at all
            if ctx.explainer is None:
                raise ConfigError("strategy 'egal' needs saliency maps: set the suite's [explainer] "
                                  "(the paper uses name = \"gradcam\")")
            roi = ctx.pool_roi.detach()
            maps = ctx.cache.saliency("pred").detach()
            if maps.shape[0] != n:
                raise ConfigError(f"egal: the cache returned {maps.shape[0]} maps for {n} unlabelled samples")
            nonempty = torch.empty(n, dtype=torch.bool)
            for sl in row_blocks(n, maps[0].numel()):  # float64 one block of maps and ROIs at a time (same bits per sample)
                roi_b = roi[sl].to("cpu", torch.float64)
                nonempty[sl] = roi_b.flatten(1).amax(1) > 0
                d[sl] = misalignment(maps[sl].to("cpu", torch.float64), roi_b)
            has_roi = has_roi & nonempty
            # eq. 2 with an empty ROI and an all-zero map is 0/0: only the 'literal' rule reads it (as 0)
        h_cpu = h.cpu()
        score = egal_score(h_cpu, d, has_roi, float(o.lam), o.empty_roi)
        return EGALScores(score.numpy(), h_cpu.numpy(), torch.where(has_roi, d, torch.nan).numpy(),
                          has_roi.numpy())
