"""The four information-gain strategies (Mehta et al. 2022): ``eig``, ``aeig``, ``uig``, ``cfig``.

Each scores the unlabelled pool with :func:`xalbench_infogain.core.ig_scores` on the
round's shared cache (``ctx.cache.embeddings()``) plus one no-grad forward of the val
split (the evaluation set), and queries the top-``k`` scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

import xalbench
from xalbench.errors import OptionsError, UnsupportedError
from xalbench.strategies.common import topk_by_score
from xalbench_infogain.core import Weighting, class_frequencies, ig_scores

if TYPE_CHECKING:
    from xalbench.harness.context import StrategyContext

__all__ = ["AEIG", "CFIG", "EIG", "UIG", "val_embeddings"]

PAPER = (
    "Mehta, Shui, Nichyporuk & Arbel. Information Gain Sampling for Active Learning in Medical "
    "Image Classification. UNSURE @ MICCAI 2022 (arXiv:2208.00974)"
)


def val_embeddings(ctx: StrategyContext) -> torch.Tensor:
    """Penultimate embeddings of ``ctx.val`` (eval mode, no grad, training flags restored)."""
    model = ctx.model
    flags = [(m, m.training) for m in model.modules()]
    out = []
    try:
        model.eval()
        with torch.no_grad():
            for start in range(0, len(ctx.val), ctx.batch_size):
                x = ctx.val.images[start : start + ctx.batch_size].to(ctx.device)
                out.append(model.embed(model.features(x)))
    finally:
        for m, flag in flags:
            m.training = flag
    return torch.cat(out)


class _InfoGain(xalbench.Strategy):
    weighting: ClassVar[Weighting]
    paper: ClassVar[str] = PAPER
    supports_multilabel: ClassVar[bool] = False  # eq. (1) is a softmax over exclusive classes
    supports_3d: ClassVar[bool] = True  # works on pooled embeddings, any spatial dims

    @dataclass(frozen=True)
    class Options(xalbench.Options):
        """``lr``: size of the single last-layer SGD step (default: the paper's DR learning rate)."""

        lr: float = 5e-4
        chunk_size: int = 128

        def __post_init__(self) -> None:
            if not self.lr > 0:
                raise OptionsError(f"lr must be > 0 (the gradient step size), got {self.lr}")
            if self.chunk_size < 1:
                raise OptionsError(f"chunk_size must be ≥ 1, got {self.chunk_size}")

    def scores(self, ctx: StrategyContext) -> torch.Tensor:
        """Information gain of every unlabelled sample (aligned with ``ctx.unlabelled``)."""
        if ctx.task != "multi-class":
            raise UnsupportedError(f"strategy {self.name!r} supports multi-class datasets only")
        if len(ctx.val) == 0:
            raise UnsupportedError(f"strategy {self.name!r} needs a non-empty val split (its evaluation set)")
        head = ctx.model.classifier
        freq = class_frequencies(ctx.val.labels, ctx.num_classes)
        return ig_scores(
            head.weight, head.bias, ctx.cache.embeddings(), val_embeddings(ctx), freq,
            weighting=self.weighting, lr=self.options.lr, chunk_size=self.options.chunk_size,
        )

    def query(self, ctx: StrategyContext, k: int) -> np.ndarray:
        return topk_by_score(self.scores(ctx), ctx, k, who=f"strategy {self.name!r}")


class EIG(_InfoGain):
    """Expected information gain on the val set, eq. (1): ``H1 − Σ_c p(c|x_a) H2(a, c)``."""

    name: ClassVar[str] = "eig"
    summary: ClassVar[str] = "Expected information gain on the val set after one last-layer step (eq. 1)"
    weighting: ClassVar[Weighting] = "eig"


class AEIG(_InfoGain):
    """Adapted EIG, eq. (2): ``P = p(c|x_a) · |y_val = c| / |val|`` (not renormalised, as printed)."""

    name: ClassVar[str] = "aeig"
    summary: ClassVar[str] = "Adapted EIG: softmax weighted by val class frequencies (eq. 2)"
    weighting: ClassVar[Weighting] = "aeig"


class UIG(_InfoGain):
    """Uniform information gain (§4.2): ``P = 1/C``."""

    name: ClassVar[str] = "uig"
    summary: ClassVar[str] = "Information gain with uniform class weights P = 1/C (§4.2)"
    weighting: ClassVar[Weighting] = "uig"


class CFIG(_InfoGain):
    """Class-frequency information gain (§4.2): ``P = |y_val = c| / |val|``."""

    name: ClassVar[str] = "cfig"
    summary: ClassVar[str] = "Information gain with val class-frequency weights (§4.2)"
    weighting: ClassVar[Weighting] = "cfig"
